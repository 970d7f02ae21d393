%% @doc Test-only decoder of a recording (doc/recording-format.md), written
%% from the format's text apart from the real reader, so that the writer's
%% tests do not depend on it: header check, frame scan at every multiple of
%% 8, CRC-32 with `erlang:crc32/1', sort by sequence number, safe decode.
-module(beamprof_recorder_decode).

-export([file/1, header/1, frames/1]).

-define(MAGIC, "BPREC\0v1").
-define(FRAME_MAGIC, 16#46525042).

%% @doc `{ok, Header, Records}' (Records oldest first, each the payload map
%% with `seq', `mono_ns', `time' (ms) added), or `{error, Reason}'.
-spec file(file:filename_all()) -> {ok, map(), [map()]} | {error, term()}.
file(Path) ->
    %% the format's atoms, as every reader must have them (safe decoding)
    _ = beamprof_recording:vocabulary(),
    case file:read_file(Path) of
        {ok, Bin} ->
            case header(Bin) of
                {ok, #{ring_size := Ring} = H} ->
                    <<_:4096/binary, RingBin:Ring/binary>> = Bin,
                    {ok, H, records(frames(RingBin))};
                Error -> Error
            end;
        Error -> Error
    end.

%% @doc The header's fields, checked (magic, version, size, CRC).
-spec header(binary()) -> {ok, map()} | {error, term()}.
header(<<?MAGIC, 1:32/little, 4096:32/little, Ring:64/little, Pid:64/little,
         Opened:64/little-signed, Crc:32/little, _/binary>> = Bin) ->
    <<First:40/binary, _/binary>> = Bin,
    case erlang:crc32(First) =:= Crc andalso byte_size(Bin) =:= 4096 + Ring of
        true -> {ok, #{ring_size => Ring, os_pid => Pid, opened_us => Opened}};
        false -> {error, corrupt}
    end;
header(_) ->
    {error, not_a_recording}.

%% @doc Valid frames of a ring, in ring order: `{Seq, MonoNs, SysUs, Payload}'.
-spec frames(binary()) -> [{integer(), integer(), integer(), binary()}].
frames(Ring) ->
    frames(Ring, 0, byte_size(Ring), []).

frames(Ring, Off, Size, Acc) when Off + 40 =< Size ->
    case Ring of
        <<_:Off/binary, ?FRAME_MAGIC:32/little, L:32/little, Seq:64/little,
          Mono:64/little-signed, Sys:64/little-signed, Crc:32/little, _:32, Rest/binary>>
          when L >= 1, L =< Size - Off - 40 ->
            <<Payload:L/binary, _/binary>> = Rest,
            <<_:Off/binary, _:4/binary, Head:28/binary, _/binary>> = Ring,
            case erlang:crc32(<<Head/binary, Payload/binary>>) of
                Crc ->
                    End = (Off + 40 + L + 7) band (bnot 7),
                    frames(Ring, End, Size, [{Seq, Mono, Sys, Payload} | Acc]);
                _ ->
                    frames(Ring, Off + 8, Size, Acc)
            end;
        _ ->
            frames(Ring, Off + 8, Size, Acc)
    end;
frames(_Ring, _Off, _Size, Acc) ->
    lists:reverse(Acc).

records(Frames) ->
    Sorted = lists:keysort(1, Frames),
    Seqs = [S || {S, _, _, _} <- Sorted],
    Dups = Seqs -- lists:usort(Seqs),
    [Term#{seq => Seq, mono_ns => Mono, time => Sys div 1000}
     || {Seq, Mono, Sys, Payload} <- Sorted, not lists:member(Seq, Dups),
        Term <- decode(Payload)].

decode(Payload) ->
    try binary_to_term(Payload, [safe]) of
        Term when is_map(Term) -> [Term];
        _ -> []
    catch error:badarg -> []
    end.
