%% @private
%% @doc PLACEHOLDER of the continuous branch, to be replaced by the pprof
%% branch's `beamprof_pprof' at merge (take theirs). It writes a gzipped
%% `profile.proto' message with one sample type (samples/count), one
%% function and location per distinct frame, one sample per stack, and the
%% labels as string labels on every sample: enough for the continuous
%% profiler's sinks to run before the real encoder is merged.
-module(beamprof_pprof).

-export([encode/1, encode/2]).

%% @doc `encode(Profile, #{})'.
-spec encode(map()) -> binary().
encode(Profile) ->
    encode(Profile, #{}).

%% @doc The profile's stacks as a gzipped pprof.
-spec encode(map(), #{labels => #{binary() => binary()}}) -> binary().
encode(#{stacks := Stacks}, Opts) ->
    Labels = maps:to_list(maps:get(labels, Opts, #{})),
    Frames = lists:usort([F || {Fs, _} <- Stacks, F <- Fs]),
    Strings = [<<>>, <<"samples">>, <<"count">>] ++ Frames ++
        lists:append([[K, V] || {K, V} <- Labels]),
    Index = maps:from_list(lists:zip(Strings, lists:seq(0, length(Strings) - 1))),
    Ids = maps:from_list(lists:zip(Frames, lists:seq(1, length(Frames)))),
    Type = msg(1, [int(1, 1), int(2, 2)]),
    Samples = [msg(2, [packed(1, [maps:get(F, Ids) || F <- lists:reverse(Fs)]),
                       packed(2, [W]) |
                       [msg(3, [int(1, maps:get(K, Index)), int(2, maps:get(V, Index))])
                        || {K, V} <- Labels]])
               || {Fs, W} <- Stacks],
    Locations = [msg(4, [int(1, I), msg(4, [int(1, I)])]) || {_, I} <- lists:keysort(2, maps:to_list(Ids))],
    Functions = [msg(5, [int(1, I), int(2, maps:get(F, Index))]) || {F, I} <- lists:keysort(2, maps:to_list(Ids))],
    Table = [bytes(6, S) || S <- Strings],
    zlib:gzip(iolist_to_binary([Type, Samples, Locations, Functions, Table])).

int(Field, V) -> [varint(Field bsl 3), varint(V)].
bytes(Field, Bin) -> [varint(Field bsl 3 bor 2), varint(byte_size(Bin)), Bin].
msg(Field, Parts) -> bytes(Field, iolist_to_binary(Parts)).
packed(Field, Vs) -> bytes(Field, iolist_to_binary([varint(V) || V <- Vs])).

varint(V) when V < 128 -> <<V>>;
varint(V) -> <<1:1, (V band 127):7, (varint(V bsr 7))/binary>>.
