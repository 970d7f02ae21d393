%% @private
%% @doc Turns native samples (leaf-first addresses) into frames (binaries).
%%
%% Erlang frames come from the JIT's names: the perf map when the VM runs
%% with `+JPperf map | true' (source `perf_map'), else a snapshot of
%% beam.smp's GDB JIT table (`gdb_jit', a VM internal: not with the
%% `vm_internals' switch off), else none. Everything else goes
%% through `dladdr' and the objects' full symbol tables (`.symtab', else a
%% debug file found by build-id or `.gnu_debuglink' under the debug root:
%% `beamprof_native_nif:symbol_table/1') in one batch per call, cached by
%% address. A C frame that stays unnamed is `Object+0xOffset' and is
%% remembered (`unnamed/1'), so that `beamprof_native_csyms' can say what
%% share of the samples it touches and which package names it. Return
%% addresses (every frame but the leaf) are looked up at address - 1, so a
%% call at the very end of a function is not attributed to the next one.
%%
%% The debug root is `/usr/lib/debug' (gdb's and perf's default), or the
%% `beamprof' application's `debug_root' environment value (a directory
%% name; meant for tests and for debug files kept elsewhere).
-module(beamprof_native_sym).

-export([new/0, new/1, new/2, new/3, source/1, refresh/1, symbolize/2, call_sites/1, close/1,
         unnamed/1,
         objects/1, debug_root/0]).
-export_type([sym/0, source/0]).

-type source() :: perf_map | gdb_jit | none.
-opaque sym() :: #{source := source(),
                   perfmap := beamprof_perfmap:perfmap() | undefined,
                   jit := beamprof_symtab:table() | undefined,
                   jit_at := integer(),
                   jit_missed := boolean(),
                   jit_size := non_neg_integer(), % a hash of the code ranges
                   jit_every := pos_integer(),
                   vm_internals := boolean(),
                   cache := #{non_neg_integer() => binary() | undefined},
                   table := beamprof_native_nif:symbol_table() | undefined,
                   debug_root := binary(),
                   unnamed := #{binary() => binary()}}.

-define(UNKNOWN, <<"[unknown]">>).
-define(CACHE_MAX, 50000).
-define(JIT_REFRESH_MS, 1000).
-define(JIT_REFRESH_MAX_MS, 60000).
-define(UNNAMED_MAX, 100000).
-define(DEBUG_ROOT, <<"/usr/lib/debug">>).

%% @doc Chooses the best source this VM offers.
-spec new() -> sym().
new() ->
    new(auto).

%% @doc As new/0, or forcing a source (for tests and comparisons).
-spec new(auto | source()) -> sym().
new(Want) ->
    new(Want, beamprof_config:vm_internals()).

%% @doc As new/1 with the `vm_internals' switch given: `false' never reads
%% the GDB JIT table (a forced `gdb_jit' gives source `none').
-spec new(auto | source(), VmInternals :: boolean()) -> sym().
new(Want, VmInternals) when is_boolean(VmInternals) ->
    new(Want, VmInternals, debug_root()).

%% @doc As new/2, looking for C debug files under `DebugRoot' instead of
%% `debug_root/0'.
-spec new(auto | source(), VmInternals :: boolean(), DebugRoot :: file:filename_all()) -> sym().
new(Want, VmInternals, DebugRoot) when is_boolean(VmInternals) ->
    Root = unicode:characters_to_binary(DebugRoot, file:native_name_encoding()),
    Table = case beamprof_native_nif:symbol_table(Root) of
                {error, _} -> undefined;
                T -> T
            end,
    Sym = #{source => none, perfmap => undefined, jit => undefined, jit_at => 0,
            jit_missed => false, jit_size => 0, jit_every => ?JIT_REFRESH_MS, vm_internals => VmInternals, cache => #{},
            table => Table, debug_root => Root, unnamed => #{}},
    choose(Want, Sym).

%% @doc Where C debug files are looked for: the `beamprof' application's
%% `debug_root' (a non-empty directory name), else `/usr/lib/debug'.
-spec debug_root() -> binary().
debug_root() ->
    case application:get_env(beamprof, debug_root) of
        {ok, Dir} when is_list(Dir), Dir =/= []; is_binary(Dir), Dir =/= <<>> ->
            case unicode:characters_to_binary(Dir, file:native_name_encoding()) of
                Bin when is_binary(Bin) -> Bin;
                _ -> erlang:error({badarg, "Expected debug_root to be a directory name"}, [Dir])
            end;
        {ok, Dir} ->
            erlang:error({badarg, "Expected debug_root to be a directory name"}, [Dir]);
        undefined ->
            ?DEBUG_ROOT
    end.

choose(Want, Sym) when Want =:= auto; Want =:= perf_map ->
    case beamprof_perfmap:open() of
        {ok, Map} -> Sym#{source := perf_map, perfmap := Map};
        {error, _} when Want =:= auto -> choose(gdb_jit, Sym);
        {error, _} -> Sym
    end;
choose(gdb_jit, #{vm_internals := false} = Sym) ->
    Sym;
choose(gdb_jit, #{vm_internals := true} = Sym) ->
    Tab = beamprof_symtab:new(),
    case load_jit(Tab) of
        {ok, Size} -> Sym#{source := gdb_jit, jit := Tab, jit_at := now_ms(), jit_size := Size};
        error -> beamprof_symtab:delete(Tab), Sym
    end;
choose(none, Sym) ->
    Sym.

load_jit(Tab) ->
    case beamprof_native_nif:jit_symbols(true) of
        {ok, Ranges, _Info} ->
            lists:foreach(fun({S, E, N}) -> beamprof_symtab:insert(Tab, S, E, N) end, Ranges),
            {ok, erlang:phash2(Ranges)};
        {error, _} ->
            error
    end.

%% @doc Where Erlang frames come from.
-spec source(sym()) -> source().
source(#{source := Source}) -> Source.

%% @doc Catches up with code loaded since the last call: reads what the
%% perf map gained, or re-snapshots the GDB JIT table (only after a lookup
%% missed, at most once a second; a snapshot that found no new code range
%% (the same ranges) doubles that wait, up to a minute, and one that did
%% resets it: a sampler
%% left on, as continuous profiling's is, does not pay a snapshot every
%% second for addresses no code range names).
-spec refresh(sym()) -> sym().
refresh(#{source := perf_map, perfmap := Map} = Sym) ->
    Sym#{perfmap := beamprof_perfmap:refresh(Map)};
refresh(#{source := gdb_jit, jit_missed := true, jit_at := At, jit_every := Every} = Sym) ->
    case now_ms() - At >= Every of
        true -> reload_jit(Sym);
        false -> Sym
    end;
refresh(Sym) ->
    Sym.

reload_jit(#{jit := Old, jit_size := OldSize, jit_every := Every} = Sym) ->
    New = beamprof_symtab:new(),
    case load_jit(New) of
        {ok, Size} ->
            beamprof_symtab:delete(Old),
            Next = case Size =:= OldSize of
                       true -> min(2 * Every, ?JIT_REFRESH_MAX_MS);
                       false -> ?JIT_REFRESH_MS
                   end,
            Sym#{jit := New, jit_at := now_ms(), jit_missed := false, jit_size := Size,
                 jit_every := Next};
        error ->
            beamprof_symtab:delete(New),
            Sym#{jit_at := now_ms()}
    end.

%% @doc Frames of each stack, leaf first, one list per input list.
-spec symbolize([[non_neg_integer()]], sym()) -> {[[binary()]], sym()}.
symbolize(Stacks, Sym0) ->
    Adjusted = [call_sites(Addrs) || Addrs <- Stacks],
    %% Each distinct address is named once per batch (stacks share most of
    %% their frames): the JIT's name first, then dladdr's (cached).
    Unique = lists:usort(lists:append(Adjusted)),
    Jit = [{A, jit_name(A, Sym0)} || A <- Unique],
    Sym1 = resolve_native([A || {A, undefined} <- Jit], Sym0),
    Names = maps:from_list([{A, name(A, J, Sym1)} || {A, J} <- Jit]),
    Frames = [[maps:get(A, Names) || A <- Addrs] || Addrs <- Adjusted],
    {Frames, Sym1}.

%% @doc The addresses of a stack (leaf first) as they are named: the leaf
%% as sampled, each caller's return address less one (its call).
-spec call_sites([non_neg_integer()]) -> [non_neg_integer()].
call_sites([]) -> [];
call_sites([Leaf | Callers]) -> [Leaf | [max(A - 1, 0) || A <- Callers]].

%% Batch-resolves, with dladdr, the addresses (distinct, no JIT name
%% covers them) that the cache does not hold.
resolve_native(Addrs, #{cache := Cache0} = Sym) ->
    Cache = case map_size(Cache0) > ?CACHE_MAX of true -> #{}; false -> Cache0 end,
    Wanted = [A || A <- Addrs, not is_map_key(A, Cache)],
    Results = symbolize_chunks(Wanted, maps:get(table, Sym)),
    Missed = lists:member(undefined, Results),
    {Names, Unnamed} = frames(Results, maps:get(unnamed, Sym)),
    New = lists:foldl(fun({A, N}, C) -> C#{A => N} end, Cache, lists:zip(Wanted, Names)),
    Sym#{cache := New, unnamed := Unnamed,
         jit_missed := maps:get(jit_missed, Sym) orelse Missed}.

%% Results as frames: a name (simplified), `Object+0xOffset' for an
%% address no table names (remembered in Unnamed), undefined.
frames(Results, Unnamed0) ->
    lists:mapfoldl(fun frame/2, Unnamed0, Results).

frame({Object, Offset}, Unnamed) ->
    Hex = string:lowercase(integer_to_binary(Offset, 16)),
    Bin = <<Object/binary, "+0x", Hex/binary>>,
    case map_size(Unnamed) < ?UNNAMED_MAX of
        true -> {Bin, Unnamed#{Bin => Object}};
        false -> {Bin, Unnamed}
    end;
frame(undefined, Unnamed) ->
    {undefined, Unnamed};
frame(Name, Unnamed) ->
    {simple(Name), Unnamed}.

%% A plain C++ function's mangled name (`_Z<len><name>...', no namespace)
%% as its name: `_Z17beam_jit_call_nifP7process...' -> `beam_jit_call_nif'.
simple(<<"_Z", Rest/binary>> = Name) ->
    case string:to_integer(Rest) of
        {Len, Tail} when is_integer(Len), Len > 0, byte_size(Tail) >= Len ->
            binary:part(Tail, 0, Len);
        _ ->
            Name
    end;
simple(Name) ->
    Name.

symbolize_chunks([], _Table) ->
    [];
symbolize_chunks(Addrs, Table) when length(Addrs) > 10000 ->
    {Chunk, Rest} = lists:split(10000, Addrs),
    names(Chunk, Table) ++ symbolize_chunks(Rest, Table);
symbolize_chunks(Addrs, Table) ->
    names(Addrs, Table).

%% dladdr and full-table names; none when the native library is unavailable
%% (a collector only runs once it started, so this is the library gone
%% since). Without a table (out of memory), dladdr's alone.
names(Addrs, Table) ->
    Result = case Table of
                 undefined -> beamprof_native_nif:symbolize(Addrs);
                 _ -> beamprof_native_nif:symbolize(Table, Addrs)
             end,
    case Result of
        Names when is_list(Names) -> Names;
        {error, _} -> [undefined || _ <- Addrs]
    end.

name(A, undefined, #{cache := Cache}) ->
    case maps:get(A, Cache, undefined) of
        undefined -> ?UNKNOWN;
        Name -> Name
    end;
name(_A, JitName, _Sym) ->
    JitName.

jit_name(A, #{source := perf_map, perfmap := Map}) -> beamprof_perfmap:lookup(Map, A);
jit_name(A, #{source := gdb_jit, jit := Tab}) -> beamprof_symtab:lookup(Tab, A);
jit_name(_A, _Sym) -> undefined.

%% @doc The C frames that stayed unnamed so far (`Object+0xOffset', at
%% most 100,000 of them), each with its object's file name.
-spec unnamed(sym()) -> #{Frame :: binary() => Object :: binary()}.
unnamed(#{unnamed := Unnamed}) -> Unnamed.

%% @doc What the full symbol tables found for each object met so far (see
%% `beamprof_native_nif:symbol_objects/1'), and the debug root searched.
-spec objects(sym()) -> {[beamprof_native_nif:symbol_object()], DebugRoot :: binary()}.
objects(#{table := undefined, debug_root := Root}) ->
    {[], Root};
objects(#{table := Table, debug_root := Root}) ->
    case beamprof_native_nif:symbol_objects(Table) of
        Objects when is_list(Objects) -> {Objects, Root};
        {error, _} -> {[], Root}
    end.

%% @doc Frees the tables (the C symbol tables go with the last reference
%% to the symbolizer: `unnamed/1' and `objects/1' still answer).
-spec close(sym()) -> ok.
close(#{perfmap := Map, jit := Tab}) ->
    _ = Map =/= undefined andalso beamprof_perfmap:close(Map) =:= ok,
    _ = Tab =/= undefined andalso beamprof_symtab:delete(Tab) =:= ok,
    ok.

now_ms() ->
    erlang:monotonic_time(millisecond).
