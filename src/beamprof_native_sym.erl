%% @private
%% @doc Turns native samples (leaf-first addresses) into frames (binaries).
%%
%% Erlang frames come from the JIT's names: the perf map when the VM runs
%% with `+JPperf map | true' (source `perf_map'), else a snapshot of
%% beam.smp's GDB JIT table (`gdb_jit', a VM internal: not with the
%% `vm_internals' switch off), else none. Everything else goes
%% through `dladdr' in one batch per call (`beamprof_native_nif:symbolize/1'),
%% cached by address. Return addresses (every frame but the leaf) are looked
%% up at address - 1, so a call at the very end of a function is not
%% attributed to the next one.
-module(beamprof_native_sym).
-include("beamprof_doc.hrl").
?MODULEDOC("Symbolizes native samples: JIT names, then dladdr.").

-export([new/0, new/1, new/2, source/1, refresh/1, symbolize/2, close/1]).
-export_type([sym/0, source/0]).

-type source() :: perf_map | gdb_jit | none.
-opaque sym() :: #{source := source(),
                   perfmap := beamprof_perfmap:perfmap() | undefined,
                   jit := beamprof_symtab:table() | undefined,
                   jit_at := integer(),
                   jit_missed := boolean(),
                   vm_internals := boolean(),
                   cache := #{non_neg_integer() => binary() | undefined}}.

-define(UNKNOWN, <<"[unknown]">>).
-define(CACHE_MAX, 50000).
-define(JIT_REFRESH_MS, 1000).

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
    Sym = #{source => none, perfmap => undefined, jit => undefined, jit_at => 0,
            jit_missed => false, vm_internals => VmInternals, cache => #{}},
    choose(Want, Sym).

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
        ok -> Sym#{source := gdb_jit, jit := Tab, jit_at := now_ms()};
        error -> beamprof_symtab:delete(Tab), Sym
    end;
choose(none, Sym) ->
    Sym.

load_jit(Tab) ->
    case beamprof_native_nif:jit_symbols(true) of
        {ok, Ranges, _Info} ->
            lists:foreach(fun({S, E, N}) -> beamprof_symtab:insert(Tab, S, E, N) end, Ranges);
        {error, _} ->
            error
    end.

%% @doc Where Erlang frames come from.
-spec source(sym()) -> source().
source(#{source := Source}) -> Source.

%% @doc Catches up with code loaded since the last call: reads what the
%% perf map gained, or re-snapshots the GDB JIT table (at most once a
%% second, and only after a lookup missed).
-spec refresh(sym()) -> sym().
refresh(#{source := perf_map, perfmap := Map} = Sym) ->
    Sym#{perfmap := beamprof_perfmap:refresh(Map)};
refresh(#{source := gdb_jit, jit_missed := true, jit_at := At} = Sym) ->
    case now_ms() - At >= ?JIT_REFRESH_MS of
        true -> reload_jit(Sym);
        false -> Sym
    end;
refresh(Sym) ->
    Sym.

reload_jit(#{jit := Old} = Sym) ->
    New = beamprof_symtab:new(),
    case load_jit(New) of
        ok ->
            beamprof_symtab:delete(Old),
            Sym#{jit := New, jit_at := now_ms(), jit_missed := false};
        error ->
            beamprof_symtab:delete(New),
            Sym#{jit_at := now_ms()}
    end.

%% @doc Frames of each stack, leaf first, one list per input list.
-spec symbolize([[non_neg_integer()]], sym()) -> {[[binary()]], sym()}.
symbolize(Stacks, Sym0) ->
    Adjusted = [adjust(Addrs) || Addrs <- Stacks],
    %% Each distinct address is named once per batch (stacks share most of
    %% their frames): the JIT's name first, then dladdr's (cached).
    Unique = lists:usort(lists:append(Adjusted)),
    Jit = [{A, jit_name(A, Sym0)} || A <- Unique],
    Sym1 = resolve_native([A || {A, undefined} <- Jit], Sym0),
    Names = maps:from_list([{A, name(A, J, Sym1)} || {A, J} <- Jit]),
    Frames = [[maps:get(A, Names) || A <- Addrs] || Addrs <- Adjusted],
    {Frames, Sym1}.

adjust([]) -> [];
adjust([Leaf | Callers]) -> [Leaf | [max(A - 1, 0) || A <- Callers]].

%% Batch-resolves, with dladdr, the addresses (distinct, no JIT name
%% covers them) that the cache does not hold.
resolve_native(Addrs, #{cache := Cache0} = Sym) ->
    Cache = case map_size(Cache0) > ?CACHE_MAX of true -> #{}; false -> Cache0 end,
    Wanted = [A || A <- Addrs, not is_map_key(A, Cache)],
    Names = symbolize_chunks(Wanted),
    Missed = lists:member(undefined, Names),
    New = lists:foldl(fun({A, N}, C) -> C#{A => simple(N)} end, Cache,
                      lists:zip(Wanted, Names)),
    Sym#{cache := New, jit_missed := maps:get(jit_missed, Sym) orelse Missed}.

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

symbolize_chunks([]) ->
    [];
symbolize_chunks(Addrs) when length(Addrs) > 10000 ->
    {Chunk, Rest} = lists:split(10000, Addrs),
    names(Chunk) ++ symbolize_chunks(Rest);
symbolize_chunks(Addrs) ->
    names(Addrs).

%% dladdr names; none when the native library is unavailable (a collector
%% only runs once it started, so this is the library gone since).
names(Addrs) ->
    case beamprof_native_nif:symbolize(Addrs) of
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

%% @doc Frees the tables.
-spec close(sym()) -> ok.
close(#{perfmap := Map, jit := Tab}) ->
    _ = Map =/= undefined andalso beamprof_perfmap:close(Map) =:= ok,
    _ = Tab =/= undefined andalso beamprof_symtab:delete(Tab) =:= ok,
    ok.

now_ms() ->
    erlang:monotonic_time(millisecond).
