%% PropEr properties of the recording reader (beamprof_recording) against
%% files written by the test encoder (beamprof_recording_enc), which keeps
%% a model of what the ring holds: an untouched file reads back exactly the
%% frames still whole, oldest first, filtered as asked; random bytes,
%% truncated files and flipped bits give an error or a subset of what was
%% written (by sequence number and payload), never a crash and never a
%% record that was not written.
-module(prop_beamprof_recording).

-include_lib("proper/include/proper.hrl").

-export([prop_untouched/1, prop_flipped_bits/1, prop_truncated/1, prop_random_bytes/1,
         prop_random_ring/1]).
-export([expected/2, check_subset/2, record_payload/1]).

-define(T0, 1700000000000000).
-define(MONO0, 5000000000).

%%--------------------------------------------------------------------
%% properties

%% Untouched: exactly the live frames whose payload decodes, with their
%% times; the filters keep what the model keeps; the info counts the
%% undecodable ones.
prop_untouched(Dir) ->
    ?FORALL({Ring, Payloads, Filter}, {ring_size(), payloads(), filter()},
            begin
                Path = path(Dir),
                Enc = write(Path, Ring, Payloads),
                Live = beamprof_recording_enc:live(Enc),
                Opts = filter_opts(Filter, Live),
                {ok, Got, Info} = beamprof_recording:read(Path, Opts#{info => true}),
                Expected = [R || R <- expected(Live, Opts)],
                %% Only payloads within since/until are decoded, so counted.
                Undecodable = length([S || {S, P} <- Live, decoded(P) =:= error,
                                           in_time(S, Opts)]),
                Wrapped = length(beamprof_recording_enc:written(Enc)) > length(Live),
                collect(if Wrapped -> wrapped; true -> not_wrapped end,
                ?WHENFAIL(io:format("ring ~p opts ~p~ngot ~p~nexpected ~p~ninfo ~p~n",
                                    [Ring, Opts, Got, Expected, Info]),
                          Got =:= Expected andalso
                          maps:get(undecodable, Info) =:= Undecodable andalso
                          maps:get(frames, Info) =:= length(Live) andalso
                          maps:get(duplicates, Info) =:= 0 andalso
                          maps:get(records, Info) =:= length(Got)))
            end).

%% Bits flipped anywhere in the file: an error, or records that were all
%% written, oldest first.
prop_flipped_bits(Dir) ->
    ?FORALL({Ring, Payloads, Flips}, {ring_size(), payloads(), list({float(0.0, 1.0), range(0, 7)})},
            begin
                Path = path(Dir),
                Enc = write(Path, Ring, Payloads),
                {ok, Bin} = file:read_file(Path),
                ok = file:write_file(Path, flip(Bin, Flips)),
                Result = beamprof_recording:read(Path),
                ?WHENFAIL(io:format("flips ~p~nresult ~p~n", [Flips, Result]),
                          check_subset(Result, beamprof_recording_enc:written(Enc)))
            end).

%% Any shorter file: not a recording when empty, truncated otherwise.
prop_truncated(Dir) ->
    ?FORALL({Ring, Payloads, Cut}, {ring_size(), payloads(), float(0.0, 1.0)},
            begin
                Path = path(Dir),
                _ = write(Path, Ring, Payloads),
                {ok, Bin} = file:read_file(Path),
                Size = trunc(Cut * byte_size(Bin)),
                ok = file:write_file(Path, binary:part(Bin, 0, Size)),
                Result = beamprof_recording:read(Path),
                ?WHENFAIL(io:format("cut at ~p of ~p: ~p~n", [Size, byte_size(Bin), Result]),
                          case Size of
                              0 -> Result =:= {error, not_a_recording};
                              _ -> element(1, element(2, Result)) =:= truncated
                          end)
            end).

%% Random bytes, with or without the magic in front: an error or nothing.
prop_random_bytes(Dir) ->
    ?FORALL(Bin, random_file(),
            begin
                Path = path(Dir),
                ok = file:write_file(Path, Bin),
                Result = beamprof_recording:read(Path),
                ?WHENFAIL(io:format("~P -> ~p~n", [Bin, 20, Result]),
                          case Result of
                              {ok, []} -> true;
                              {error, _} -> true;
                              _ -> false
                          end)
            end).

%% A valid header over a ring of random bytes sown with frame magics and
%% frame-like headers: no record.
prop_random_ring(Dir) ->
    ?FORALL({Ring, Sown}, {ring_size(), list({float(0.0, 1.0), sown()})},
            begin
                Path = path(Dir),
                Noise = rand_bytes(Ring),
                Bytes = lists:foldl(fun({At, What}, Acc) -> sow(Acc, At, What) end, Noise, Sown),
                ok = file:write_file(Path, [beamprof_recording_enc:header(Ring, 1, 0), Bytes]),
                Result = beamprof_recording:read(Path, #{info => true}),
                ?WHENFAIL(io:format("~p~n", [Result]),
                          element(1, Result) =:= ok andalso element(2, Result) =:= [])
            end).

%%--------------------------------------------------------------------
%% the model's side

%% The records a read of the live frames Live must return under Opts.
expected(Live, Opts) ->
    Since = maps:get(since, Opts, undefined),
    Until = maps:get(until, Opts, undefined),
    Kinds = maps:get(kinds, Opts, all),
    [R || {Seq, P} <- Live, {ok, Map} <- [decoded(P)],
          R <- [Map#{seq => Seq, time => (?T0 + (Seq - 1) * 1000) div 1000,
                     mono_ns => ?MONO0 + (Seq - 1) * 1000000}],
          Since =:= undefined orelse maps:get(time, R) >= Since,
          Until =:= undefined orelse maps:get(time, R) =< Until,
          Kinds =:= all orelse lists:member(maps:get(kind, R), Kinds)].

in_time(Seq, Opts) ->
    T = (?T0 + (Seq - 1) * 1000) div 1000,
    maps:get(since, Opts, T) =< T andalso T =< maps:get(until, Opts, T).

%% What the reader must make of a payload.
decoded(P) ->
    Size = byte_size(P),
    try binary_to_term(P, [safe, used]) of
        {#{kind := K} = M, Size} when is_atom(K) -> {ok, M};
        _ -> error
    catch error:badarg -> error
    end.

%% An error, or records each written with that payload, seq increasing.
check_subset({error, _}, _Written) -> true;
check_subset({ok, Records}, Written) ->
    Index = maps:from_list(Written),
    Seqs = [S || #{seq := S} <- Records],
    Seqs =:= lists:usort(Seqs) andalso
        lists:all(fun(#{seq := S} = R) ->
                          case Index of
                              #{S := P} -> decoded(P) =:= {ok, record_payload(R)};
                              _ -> false
                          end
                  end, Records).

%% The payload map of a record (what the reader added removed).
record_payload(R) -> maps:without([time, seq, mono_ns], R).

%%--------------------------------------------------------------------
%% generators

ring_size() ->
    ?LET(K, oneof([0, range(0, 64), range(0, 4000)]), 65536 + 8 * K).

payloads() ->
    ?SIZED(S, resize(min(S, 60), list(payload()))).

%% Mostly records; some large (to wrap the ring), some not records at all.
payload() ->
    frequency([{20, ?LET(T, record(), term_to_binary(T))},
               {6, ?LET({T, N}, {record(), range(4000, 30000)},
                        term_to_binary(T#{message => binary:copy(<<"x">>, N)}))},
               {1, non_empty(binary())},
               {1, ?LET(T, value(), term_to_binary(T))},
               {1, ?LET(T, record(), <<(term_to_binary(T))/binary, 0>>)},
               {1, ?LET(T, record(), term_to_binary(maps:remove(kind, T)))}]).

record() ->
    ?LET({Kind, Fields}, {oneof(beamprof_recording:kinds()),
                          list({oneof([message, value, pid, name, rss, demand, threads, info]),
                                value()})},
         maps:from_list([{kind, Kind} | Fields])).

value() ->
    ?SIZED(S, value(min(S, 4))).

value(0) ->
    oneof([integer(), range(0, 1 bsl 62), float(), binary(),
           oneof([open, closed, none, normal, dirty_cpu, undefined, true])]);
value(N) ->
    frequency([{4, value(0)},
               {1, list(value(N div 2))},
               {1, ?LET(L, list({oneof([kind, index, cpu, value]), value(N div 2)}),
                        maps:from_list(L))}]).

filter() ->
    {oneof([none, float(0.0, 1.0)]), oneof([none, float(0.0, 1.0)]),
     oneof([all, list(oneof(beamprof_recording:kinds()))])}.

%% since/until placed among the live frames' times.
filter_opts({Since, Until, Kinds}, Live) ->
    Times = [(?T0 + (S - 1) * 1000) div 1000 || {S, _} <- Live],
    maps:from_list([{since, pick(Since, Times)} || Since =/= none]
                   ++ [{until, pick(Until, Times)} || Until =/= none]
                   ++ [{kinds, Kinds} || Kinds =/= all]).

pick(_F, []) -> ?T0 div 1000;
pick(F, Times) -> lists:nth(1 + trunc(F * (length(Times) - 1)), Times).

random_file() ->
    oneof([binary(),
           ?LET(B, binary(), <<"BPREC", 0, "v1", B/binary>>),
           ?LET({Ring, B}, {ring_size(), binary()},
                <<(beamprof_recording_enc:header(Ring, 1, 0))/binary, B/binary>>),
           ?LET({V, H, Ring, B}, {range(0, 3), oneof([4096, range(0, 10000)]),
                                  oneof([65536, range(0, 1 bsl 20), range(0, 1 bsl 64 - 1)]),
                                  binary()},
                begin
                    F = <<"BPREC", 0, "v1", V:32/little, H:32/little, Ring:64/little, 1:64/little,
                          0:64>>,
                    <<F/binary, (erlang:crc32(F)):32/little, 0:(4052 * 8), B/binary>>
                end)]).

%% What to sow into a random ring: a bare magic, or a frame head with a
%% plausible length and a wrong CRC.
sown() ->
    oneof([magic, ?LET({L, Seq}, {range(0, 70000), range(1, 100)}, {head, L, Seq})]).

sow(Bin, At, What) ->
    Bytes = case What of
                magic -> <<16#46525042:32/little>>;
                {head, L, Seq} -> <<16#46525042:32/little, L:32/little, Seq:64/little, 0:128,
                                    16#DEADBEEF:32/little, 0:32>>
            end,
    Pos = min(byte_size(Bin) - byte_size(Bytes), trunc(At * byte_size(Bin))) band -8,
    <<Before:Pos/binary, _:(byte_size(Bytes))/binary, After/binary>> = Bin,
    <<Before/binary, Bytes/binary, After/binary>>.

%%--------------------------------------------------------------------
%% helpers

write(Path, Ring, Payloads) ->
    Enc = lists:foldl(fun(P, E) when byte_size(P) =< Ring - 40 ->
                              beamprof_recording_enc:append_raw(E, P);
                         (_, E) -> E
                      end, beamprof_recording_enc:create(Path, Ring), Payloads),
    ok = beamprof_recording_enc:close(Enc),
    Enc.

flip(Bin, Flips) ->
    lists:foldl(fun({At, Bit}, Acc) ->
                        Pos = min(byte_size(Acc) - 1, trunc(At * byte_size(Acc))),
                        <<Before:Pos/binary, Byte, After/binary>> = Acc,
                        <<Before/binary, (Byte bxor (1 bsl Bit)), After/binary>>
                end, Bin, Flips).

rand_bytes(N) -> rand:bytes(N).

path(Dir) -> filename:join(Dir, "prop.bprec").
