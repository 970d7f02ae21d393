%% @doc pprof files from a profile: a gzipped `perftools.profiles.Profile'
%% message (google/pprof's `profile.proto'), what `go tool pprof',
%% Pyroscope, Parca and Grafana read. Written by beamprof's own protobuf
%% writer (`beamprof_protobuf'); no dependency.
%%
%% `encode/1,2' take any profile of the flame contract (`beamprof_flame':
%% `#{stacks := [{RootFirstFrames, Weight}], unit => samples |
%% microseconds | bytes}'). What goes in the file:
%% <ul>
%% <li>Native profiles (`beamprof_native', `flame_graph(Ms, _)'): built
%% from the sampler's own data, not from the frames: one sample per
%% distinct address stack, thread kind and truncation; one location per
%% address (the leaf's as sampled, each caller's return address less one,
%% as it was named) with one line naming its function; sample types
%% `samples/count' (the weight: CPU time in sampling periods) and
%% `cpu/nanoseconds' (the weight times the period, `1e9 div hz'),
%% `period_type' `cpu/nanoseconds'; mappings for the executable objects
%% that hold the addresses (start, limit, file offset, file, build id when
%% the symbol tables read it), and one `[jit]' mapping per region of JIT
%% code (the VM's executable memory of no file), so every address has a
%% mapping; labels `thread_kind' (`normal', `dirty_cpu', `dirty_io') and
%% `truncated' (`true', on a stack the sampler cut short). Stacks beyond
%% the aggregator's bound (100,000 address stacks) are one `[overflow]'
%% sample per thread kind. A native profile whose address data does not
%% add up to its stacks (a profile merged or edited after sampling) is
%% written from its frames, as any profile, and a comment says so.</li>
%% <li>Process-stack profiles (the `sample' and `flame_graph' strategies
%% of `beamprof:profile/2'): one sample per stack, one location and
%% function per frame (`system_name' `m:f/a', `filename' the module's
%% source file from the stack traces the sampler read); sample types
%% `samples/count' and `wall/nanoseconds' (a reading every `interval' ms
%% of wall-clock time, whether the process ran or waited), `period_type'
%% `wall/nanoseconds'; labels `pid', and `registered_name' or
%% `process_label' (a `proc_lib' label, OTP 27+, printed unless it is
%% text) when the process had one.</li>
%% <li>Any other profile: one location and function per frame name, no
%% address, no mapping; sample type by `unit': `samples/count',
%% `time/microseconds' or `space/bytes'.</li>
%% </ul>
%% Every sample has the label `node' (this node's name, unless the labels
%% given to `encode/2' say otherwise) and the labels given. The title,
%% the notes and the warnings' messages (`warning code: message') are the
%% profile's comments; `time_nanos' and `duration_nanos' are set when the
%% profile knows them. Frame names are cleaned as `beamprof_flame' does
%% (valid UTF-8, no control characters).
%%
%% The profile's `pprof' key is internal: the data native and process
%% profiles keep for this module. Its shape may change.
-module(beamprof_pprof).

-export([encode/1, encode/2]).
-export_type([options/0]).

-type options() :: #{labels => #{binary() => binary()}}.

-define(PB, beamprof_protobuf).

%% @doc The gzipped pprof bytes of `Profile' (see the module doc). Raises
%% `{badarg, Message}' when `Profile' is not a profile.
-spec encode(beamprof_flame:profile()) -> binary().
encode(Profile) ->
    encode(Profile, #{}).

%% @doc As `encode/1', with `labels' (binary keys and values) on every
%% sample, for example `#{<<"application">> => <<"shop">>}'. Raises
%% `{badarg, Message}' for a bad profile or bad options.
-spec encode(beamprof_flame:profile(), options()) -> binary().
encode(Profile, Opts) ->
    Labels = labels(Opts),
    Stacks = stacks(Profile),
    Total = lists:foldl(fun({_, W}, Sum) -> Sum + W end, 0, Stacks),
    Source = source(Profile, Total),
    {Types, Body} = case Source of
                        {native, Data} -> native(Data, Labels);
                        {process, Data} -> frames(Stacks, Data, Labels, Profile);
                        generic -> frames(Stacks, #{}, Labels, Profile)
                    end,
    Said = case Source of
               generic -> without_addresses(Profile);
               _ -> Profile
           end,
    zlib:gzip(message(Types, Body, Said)).

%% A native profile written from its frames says why its addresses and
%% mappings are not in the file.
without_addresses(#{pprof := #{kind := native}} = Profile) ->
    Notes = case maps:get(notes, Profile, []) of
                L when is_list(L) -> L;
                Other -> Other      % comments/1 raises on it
            end,
    Profile#{notes => Notes ++ [<<"Addresses and mappings left out: the profile's stacks do not "
                                  "add up to the sampler's address data (a profile merged or "
                                  "edited after sampling); functions are the frames' names">>]};
without_addresses(Profile) ->
    Profile.

%% --- checks --------------------------------------------------------------------------

labels(Opts) when is_map(Opts) ->
    Extra = maps:get(labels, Opts, #{}),
    is_map(Extra) andalso
        maps:fold(fun(K, V, Ok) -> Ok andalso is_binary(K) andalso is_binary(V) end, true,
                  Extra) orelse
        badarg("Expected labels to be a map of binary keys to binary values", Opts),
    maps:merge(#{<<"node">> => atom_to_binary(node())}, Extra);
labels(Opts) ->
    badarg("Expected options to be a map", Opts).

stacks(#{stacks := Stacks} = Profile) when is_list(Stacks) ->
    lists:foreach(fun stack/1, Stacks),
    case maps:get(unit, Profile, samples) of
        U when U =:= samples; U =:= microseconds; U =:= bytes -> Stacks;
        U -> badarg("Expected unit to be samples, microseconds or bytes", U)
    end;
stacks(Profile) ->
    badarg("Expected a profile: a map with a list under stacks", Profile).

stack({Frames, W} = S) when is_list(Frames), is_integer(W), W > 0 ->
    binaries(Frames) orelse badarg("Expected frames to be a proper list of binaries", S);
stack(S) ->
    badarg("Expected each stack to be {[Frame :: binary()], Weight :: pos_integer()}", S).

binaries([B | Rest]) when is_binary(B) -> binaries(Rest);
binaries([]) -> true;
binaries(_) -> false.

%% Native address data is used only when it adds up to the stacks.
source(#{pprof := #{kind := native, samples := Samples, overflow := Over} = Data}, Total) ->
    Sum = maps:fold(fun(_, W, S) -> S + W end, 0, Samples) +
        maps:fold(fun(_, W, S) -> S + W end, 0, Over),
    case Sum =:= Total of
        true -> {native, Data};
        false -> generic
    end;
source(#{pprof := #{kind := process} = Data}, _Total) ->
    {process, Data};
source(_Profile, _Total) ->
    generic.

%% --- the tables ----------------------------------------------------------------------
%% Strings, functions and locations are numbered as they are met; each
%% table keeps its encoded entries, newest first.

new() ->
    #{strings => #{<<>> => 0}, string_list => [<<>>], funs => #{}, fun_list => [],
      locs => #{}, loc_list => [], clean => #{}}.

str(S, #{strings := Strings, string_list := List} = T) ->
    case Strings of
        #{S := I} -> {I, T};
        _ ->
            I = map_size(Strings),
            {I, T#{strings := Strings#{S => I}, string_list := [S | List]}}
    end.

%% A function per (cleaned) name and file.
function(Name0, File, T0) ->
    {Name, T1} = clean(Name0, T0),
    Key = {Name, File},
    case T1 of
        #{funs := #{Key := Id}} -> {Id, T1};
        #{funs := Funs, fun_list := List} ->
            Id = map_size(Funs) + 1,
            {N, T2} = str(Name, T1),
            {F, T3} = str(File, T2),
            Msg = [?PB:uint(1, Id), ?PB:optional(2, {int, N}), ?PB:optional(3, {int, N}),
                   ?PB:optional(4, {int, F})],
            {Id, T3#{funs := Funs#{Key => Id}, fun_list := [?PB:message(5, Msg) | List]}}
    end.

clean(Name, #{clean := C} = T) ->
    case C of
        #{Name := Clean} -> {Clean, T};
        _ -> Clean = beamprof_flame:clean(Name), {Clean, T#{clean := C#{Name => Clean}}}
    end.

%% A location: `{addr, Address}' (with its mapping) or `{frame, Name}'.
location(Key, Describe, T0) ->
    case T0 of
        #{locs := #{Key := Id}} -> {Id, T0};
        #{locs := Locs, loc_list := List} ->
            Id = map_size(Locs) + 1,
            {FunId, Mapping, Address, T1} = Describe(T0),
            Line = ?PB:message(4, ?PB:uint(1, FunId)),
            Msg = [?PB:uint(1, Id), ?PB:optional(2, {uint, Mapping}),
                   ?PB:optional(3, {uint, Address}), Line],
            {Id, T1#{locs := Locs#{Key => Id}, loc_list := [?PB:message(4, Msg) | List]}}
    end.

%% Sample labels: string labels, sorted by key, cleaned as names are.
sample_labels(Labels, T0) ->
    lists:mapfoldl(fun({K, V}, T) ->
                           {KI, T1} = str(beamprof_flame:clean(K), T),
                           {VI, T2} = str(beamprof_flame:clean(V), T1),
                           {?PB:message(3, [?PB:uint(1, KI), ?PB:uint(2, VI)]), T2}
                   end, T0, lists:sort(maps:to_list(Labels))).

sample(LocIds, Values, LabelFields) ->
    ?PB:message(2, [?PB:packed(1, LocIds), ?PB:packed(2, Values) | LabelFields]).

%% --- native profiles -----------------------------------------------------------------

native(#{samples := Samples, overflow := Over, names := Names, mappings := Maps,
         period_ns := Period} = Data, Labels) ->
    %% mapping ids in the file's order, ranges sorted by start for the search
    Sorted = list_to_tuple(lists:keysort(1, [{S, L, I} || {#{start := S, limit := L}, I}
                                                  <- lists:zip(Maps, lists:seq(1, length(Maps)))])),
    {Fields, T1} = lists:mapfoldl(
                     fun({{Kind, Truncated, Addrs}, W}, T) ->
                             {Ids, Ta} = addr_locations(Addrs, Names, Sorted, T, []),
                             {LF, Tb} = native_sample_labels(Labels, Kind, Truncated, Ta),
                             {sample(Ids, [W, W * Period], LF), Tb}
                     end, (new())#{addrs => #{}, label_fields => #{}},
                     lists:sort(maps:to_list(Samples))),
    {OverFields, T2} = lists:mapfoldl(
                         fun({Kind, W}, T) ->
                                 {Id, Ta} = location({frame, <<"[overflow]">>},
                                                     fun(Tx) -> frame_fun(<<"[overflow]">>, <<>>, Tx) end,
                                                     T),
                                 {LF, Tb} = sample_labels(native_labels(Labels, Kind, false), Ta),
                                 {sample([Id], [W, W * Period], LF), Tb}
                         end, T1, lists:sort(maps:to_list(Over))),
    {MapFields, T3} = lists:mapfoldl(fun mapping/2, T2,
                                     lists:zip(lists:seq(1, length(Maps)), Maps)),
    Types = #{types => [{<<"samples">>, <<"count">>}, {<<"cpu">>, <<"nanoseconds">>}],
              period => {{<<"cpu">>, <<"nanoseconds">>}, Period},
              default => <<"cpu">>, time => maps:with([time_nanos, duration_nanos], Data)},
    {Types, {[Fields, OverFields], MapFields, T3}}.

native_labels(Labels, Kind, true) ->
    (native_labels(Labels, Kind, false))#{<<"truncated">> => <<"true">>};
native_labels(Labels, Kind, false) ->
    Labels#{<<"thread_kind">> => atom_to_binary(Kind)}.

%% The labels of a kind and truncation, encoded once.
native_sample_labels(Labels, Kind, Truncated, #{label_fields := Cache} = T) ->
    case Cache of
        #{{Kind, Truncated} := LF} -> {LF, T};
        _ ->
            {LF, T1} = sample_labels(native_labels(Labels, Kind, Truncated), T),
            {LF, T1#{label_fields := Cache#{{Kind, Truncated} => LF}}}
    end.

%% The location ids of addresses: the hot loop, one map lookup for an
%% address met before.
addr_locations([A | As], Names, Ranges, #{addrs := Known} = T, Acc) ->
    case Known of
        #{A := Id} ->
            addr_locations(As, Names, Ranges, T, [Id | Acc]);
        _ ->
            {Id, T1} = location({addr, A},
                                fun(Tx) ->
                                        {FunId, Ty} = function(maps:get(A, Names, <<"[unknown]">>),
                                                               <<>>, Tx),
                                        {FunId, mapping_of(A, Ranges), A, Ty}
                                end, T),
            addr_locations(As, Names, Ranges, T1#{addrs := Known#{A => Id}}, [Id | Acc])
    end;
addr_locations([], _Names, _Ranges, T, Acc) ->
    {lists:reverse(Acc), T}.

frame_fun(Name, File, T) ->
    {FunId, T1} = function(Name, File, T),
    {FunId, 0, 0, T1}.

%% The mapping holding A (binary search of sorted, disjoint ranges); 0
%% when none does.
mapping_of(A, Ranges) -> mapping_of(A, Ranges, 1, tuple_size(Ranges)).

mapping_of(_A, _Ranges, Lo, Hi) when Lo > Hi -> 0;
mapping_of(A, Ranges, Lo, Hi) ->
    Mid = (Lo + Hi) div 2,
    case element(Mid, Ranges) of
        {S, _, _} when A < S -> mapping_of(A, Ranges, Lo, Mid - 1);
        {_, L, _} when A >= L -> mapping_of(A, Ranges, Mid + 1, Hi);
        {_, _, Id} -> Id
    end.

mapping({Id, #{start := S, limit := L, offset := O, file := F} = M}, T0) ->
    {FI, T1} = str(F, T0),
    {BI, T2} = str(maps:get(build_id, M, <<>>), T1),
    {?PB:message(3, [?PB:uint(1, Id), ?PB:optional(2, {uint, S}), ?PB:optional(3, {uint, L}),
                     ?PB:optional(4, {uint, O}), ?PB:optional(5, {int, FI}),
                     ?PB:optional(6, {int, BI}), ?PB:bool(7, true)]), T2}.

%% --- profiles of frames ---------------------------------------------------------------

frames(Stacks, Data, Labels0, Profile) ->
    Files = maps:get(files, Data, #{}),
    Labels = maps:merge(maps:get(labels, Data, #{}), Labels0),
    {LF, T0} = sample_labels(Labels, new()),
    Values = values(Profile, Data),
    {Fields, T1} = lists:mapfoldl(
                     fun({Frames, W}, T) ->
                             Leaf = case Frames of [] -> [<<"[no frames]">>]; _ -> lists:reverse(Frames) end,
                             {Ids, Ta} = lists:mapfoldl(
                                           fun(F, Tx) ->
                                                   File = maps:get(F, Files, <<>>),
                                                   location({frame, F, File},
                                                            fun(Ty) -> frame_fun(F, File, Ty) end,
                                                            Tx)
                                           end, T, Leaf),
                             {sample(Ids, Values(W), LF), Ta}
                     end, T0, Stacks),
    {types(Profile, Data), {Fields, [], T1}}.

values(#{unit := samples}, #{period_ns := P}) -> fun(W) -> [W, W * P] end;
values(_Profile, _Data) -> fun(W) -> [W] end.

types(Profile, Data) ->
    Time = maps:with([time_nanos, duration_nanos], Data),
    case {maps:get(unit, Profile, samples), Data} of
        {samples, #{period_ns := P}} ->
            #{types => [{<<"samples">>, <<"count">>}, {<<"wall">>, <<"nanoseconds">>}],
              period => {{<<"wall">>, <<"nanoseconds">>}, P}, default => <<"wall">>,
              time => Time};
        {samples, _} -> #{types => [{<<"samples">>, <<"count">>}], time => Time};
        {microseconds, _} -> #{types => [{<<"time">>, <<"microseconds">>}], time => Time};
        {bytes, _} -> #{types => [{<<"space">>, <<"bytes">>}], time => Time}
    end.

%% --- the message -----------------------------------------------------------------------

message(Types, {SampleFields, MapFields, T0}, Profile) ->
    {TypeFields, T1} = lists:mapfoldl(fun(VT, T) -> value_type(1, VT, T) end, T0,
                                      maps:get(types, Types)),
    {PeriodFields, T2} = case Types of
                             #{period := {VT, P}} ->
                                 {F, Tp} = value_type(11, VT, T1),
                                 {[F, ?PB:int(12, P)], Tp};
                             _ -> {[], T1}
                         end,
    {Comments, T3} = lists:mapfoldl(fun str/2, T2, comments(Profile)),
    {Default, T4} = case Types of
                        #{default := D} -> str(D, T3);
                        _ -> {0, T3}
                    end,
    Time = maps:get(time, Types),
    #{fun_list := Funs, loc_list := Locs, string_list := Strings} = T4,
    [TypeFields, SampleFields, MapFields, lists:reverse(Locs), lists:reverse(Funs),
     [?PB:bytes(6, S) || S <- lists:reverse(Strings)],
     ?PB:optional(9, {int, maps:get(time_nanos, Time, 0)}),
     ?PB:optional(10, {int, maps:get(duration_nanos, Time, 0)}),
     PeriodFields, ?PB:packed(13, Comments), ?PB:optional(14, {int, Default})].

value_type(Field, {Type, Unit}, T0) ->
    {TI, T1} = str(Type, T0),
    {UI, T2} = str(Unit, T1),
    {?PB:message(Field, [?PB:uint(1, TI), ?PB:uint(2, UI)]), T2}.

%% The title, the notes, then each warning: what a reader must know. A
%% title or note that is not chardata raises, as in the other formats.
comments(Profile) ->
    Title = case maps:get(title, Profile, undefined) of
                undefined -> [];
                T -> [T]
            end,
    Notes = case maps:get(notes, Profile, []) of
                L when is_list(L) -> L;
                L -> badarg("Expected notes to be a list of unicode:chardata()", L)
            end,
    Warnings = case maps:get(warnings, Profile, []) of
                   Ws when is_list(Ws) ->
                       [[<<"warning ">>, atom_to_binary(C), <<": ">>, M]
                        || #{code := C, message := M} <- Ws, is_atom(C)];
                   _ -> []
               end,
    [comment(C) || C <- Title ++ Notes ++ Warnings].

comment(Text) ->
    try unicode:characters_to_binary(Text) of
        Bin when is_binary(Bin) -> beamprof_flame:clean(Bin);
        _ -> badarg("Expected the title, notes and warnings to be unicode:chardata()", Text)
    catch error:badarg -> badarg("Expected the title, notes and warnings to be unicode:chardata()", Text)
    end.

-spec badarg(string(), term()) -> no_return().
badarg(Message, Term) ->
    erlang:error({badarg, Message}, [Term]).
