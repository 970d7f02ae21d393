%% @private
%% @doc The address data a native profile keeps for its pprof file (the
%% profile's internal `pprof' key, see `beamprof_pprof'): the sampler's
%% address stacks with their weights and thread kinds, each address's name
%% as it was symbolized, and the executable mappings of this VM that hold
%% those addresses, read from `/proc/self/maps' when the profile is built.
%%
%% Mappings: every executable mapping of a file gives its start, limit,
%% file offset and file name, and its build id when the symbol tables
%% already read it (`beamprof_native_sym:objects/1'; nothing is opened for
%% it here). Executable mappings of no file (the JIT's code: a `memfd' or
%% anonymous memory) are named `[jit]'; `[vdso]' keeps its name. Only the
%% mappings that hold a sampled address are kept. The main executable
%% (`/proc/self/exe', beam.smp) comes first, as pprof readers expect.
-module(beamprof_pprof_native).

-export([data/4, read_maps/0, covering/2]).
-export_type([data/0, mapping/0]).

-type mapping() :: #{start := non_neg_integer(), limit := non_neg_integer(),
                     offset := non_neg_integer(), file := binary(), build_id := binary()}.
-type data() :: #{kind := native, period_ns := pos_integer(),
                  samples := #{{beamprof_native_agg:kind(), boolean(), [non_neg_integer()]}
                               => pos_integer()},
                  overflow := #{beamprof_native_agg:kind() => pos_integer()},
                  names := #{non_neg_integer() => binary()},
                  mappings := [mapping()], time_nanos := integer(),
                  duration_nanos := non_neg_integer()}.

%% @doc The pprof data of a run: the aggregator's address stacks (see
%% `beamprof_native_agg:pprof/1'), the sampling period at `Hz', the
%% mappings holding the addresses (build ids from `Objects', the symbol
%% tables' objects) and the run's wall-clock span.
-spec data(beamprof_native_agg:pprof(), pos_integer(),
           [beamprof_native_nif:symbol_object()], DurationMs :: non_neg_integer()) -> data().
data(#{samples := Samples} = Agg, Hz, Objects, DurationMs) ->
    Addrs = lists:usort([A || {_, _, As} <- maps:keys(Samples), A <- As]),
    BuildIds = maps:from_list([{P, B} || #{path := P, build_id := B} <- Objects,
                                         is_binary(B)]),
    Mappings = [M#{build_id => maps:get(F, BuildIds, <<>>)}
                || #{file := F} = M <- covering(read_maps(), Addrs)],
    Agg#{kind => native, period_ns => max(1, 1000000000 div Hz), mappings => Mappings,
         time_nanos => os:system_time(nanosecond) - DurationMs * 1000000,
         duration_nanos => DurationMs * 1000000}.

%% @doc The executable mappings of this VM (`/proc/self/maps'), the main
%% executable first, then by address; `[]' where there is no such file.
-spec read_maps() -> [#{start := non_neg_integer(), limit := non_neg_integer(),
                        offset := non_neg_integer(), file := binary()}].
read_maps() ->
    case file:read_file("/proc/self/maps") of
        {ok, Bin} ->
            Maps = lists:keysort(1, [M || L <- binary:split(Bin, <<"\n">>, [global]),
                                          M <- parse(L)]),
            Exe = case file:read_link("/proc/self/exe") of
                      {ok, Path} -> unicode:characters_to_binary(Path, file:native_name_encoding());
                      {error, _} -> undefined
                  end,
            {Main, Rest} = lists:partition(fun({_, #{file := F}}) -> F =:= Exe end, Maps),
            [M || {_, M} <- Main ++ Rest];
        {error, _} ->
            []
    end.

%% "start-limit perms offset dev inode [path]": executable ones only.
parse(Line) ->
    case binary:split(Line, <<" ">>, [global, trim_all]) of
        [Range, <<_, _, $x, _>>, Offset, _Dev, _Inode | Path] ->
            [S, E] = binary:split(Range, <<"-">>),
            Start = binary_to_integer(S, 16),
            [{Start, #{start => Start, limit => binary_to_integer(E, 16),
                       offset => binary_to_integer(Offset, 16), file => file(Path, Line)}}];
        _ ->
            []
    end.

%% The path as the line has it (it may hold spaces); code of no file is
%% the JIT's.
file([], _Line) -> <<"[jit]">>;
file([<<"/memfd:", _/binary>> | _], _Line) -> <<"[jit]">>;
file([<<"[anon", _/binary>> | _], _Line) -> <<"[jit]">>;
file([<<"[", _/binary>> = Name], _Line) -> Name;
file([First | _], Line) ->
    {Pos, _} = binary:match(Line, First),
    Path = binary:part(Line, Pos, byte_size(Line) - Pos),
    case binary:longest_common_suffix([Path, <<" (deleted)">>]) of
        10 -> binary:part(Path, 0, byte_size(Path) - 10);
        _ -> Path
    end.

%% @doc The mappings of `Maps' that hold at least one of `Addrs' (sorted
%% ascending), in the order of `Maps'.
-spec covering([M], [non_neg_integer()]) -> [M] when M :: map().
covering(Maps, Addrs) ->
    Sorted = lists:sort(fun(#{start := A}, #{start := B}) -> A =< B end, Maps),
    Hit = hits(Sorted, Addrs, #{}),
    [M || #{start := S} = M <- Maps, is_map_key(S, Hit)].

hits([#{start := S, limit := L} | Ms] = All, [A | As], Hit) ->
    if
        A < S -> hits(All, As, Hit);
        A >= L -> hits(Ms, [A | As], Hit);
        true -> hits(All, As, Hit#{S => true})
    end;
hits(_, _, Hit) ->
    Hit.
