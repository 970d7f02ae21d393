%% @private
%% @doc Aggregation windows of the one native sampler: several consumers
%% (a `native_start/1' run, the continuous profiler, flame graphs taken
%% while it runs) share one C sampler, each with a window of its own.
%%
%% Every drained batch goes to every open window (restricted to the thread
%% kinds it asked for); a window closed gives the profile of its span, its
%% memory released with it. The C side's counters run over the whole run:
%% a window keeps their values at its opening and reports the difference
%% (`delta/2'), so its `samples', `effective_hz', gate share and overhead
%% are its own.
-module(beamprof_native_window).

-export([new/3, add/2, acc/1, delta/2, started/1, stray0/1, collector_ns0/1, owner/1,
         asked/1, t0/1]).
-export_type([window/0]).

-opaque window() :: #{acc := beamprof_native_agg:acc(),
                      kinds := all | [beamprof_native_agg:kind()],
                      info0 := map(),
                      whole_run := boolean(),
                      started := integer(),
                      t0 := integer(),
                      collector_ns0 := non_neg_integer(),
                      owner := pid() | undefined,
                      asked := map()}.

%% Counters of beamprof_native_nif:info/1 that grow over a run.
-define(COUNTERS, [samples, weighted, dropped, thinned, gated, gate_closed_ns, lost_weight,
                   cpu_ns, wall_ns, handler_ns, drain_ns, rescan_ns, drained, rescans,
                   jit_walks]).

%% @doc A window opened now: `Info0' the C side's counters now, or
%% `{run_start, Stray}' for the window that starts the sampler (its counters
%% start at zero; `Stray' the library's stray count then),
%% `CollectorNs' the collector's time so far, `Asked' the options its
%% consumer gave (`threads' restricts it to those kinds), `Owner' the
%% process whose exit closes it (`undefined': none).
-spec new(map() | {run_start, non_neg_integer()}, non_neg_integer(),
          {map(), pid() | undefined}) -> window().
new({run_start, Stray}, CollectorNs, Consumer) ->
    (new(#{stray => Stray}, CollectorNs, Consumer))#{whole_run := true};
new(Info0, CollectorNs, {Asked, Owner}) ->
    #{acc => beamprof_native_agg:new(), kinds => maps:get(threads, Asked, all),
      info0 => Info0, whole_run => false, started => erlang:monotonic_time(millisecond),
      t0 => erlang:monotonic_time(), collector_ns0 => CollectorNs, owner => Owner,
      asked => Asked}.

%% @doc Adds symbolized samples of the kinds the window takes.
-spec add([beamprof_native_agg:sample()], window()) -> window().
add(Samples, #{kinds := all, acc := Acc} = W) ->
    W#{acc := beamprof_native_agg:add(Samples, Acc)};
add(Samples, #{kinds := Kinds, acc := Acc} = W) ->
    W#{acc := beamprof_native_agg:add([S || S <- Samples,
                                            lists:member(element(1, S), Kinds)], Acc)}.

%% @doc The window's accumulator.
-spec acc(window()) -> beamprof_native_agg:acc().
acc(#{acc := Acc}) -> Acc.

%% @doc The C side's counters over the window's span (`Info' now against
%% those at its opening; a counter never goes below 0), with the rates
%% recomputed from them.
-spec delta(map(), window()) -> map().
delta(Info, #{whole_run := true}) ->
    Info;
delta(Info, #{info0 := Info0}) ->
    D = maps:from_list([{K, max(0, maps:get(K, Info, 0) - maps:get(K, Info0, 0))}
                        || K <- ?COUNTERS, is_map_key(K, Info)]),
    Merged = maps:merge(Info, D),
    #{samples := S, dropped := Dr, thinned := T, cpu_ns := Cpu} =
        maps:merge(#{samples => 0, dropped => 0, thinned => 0, cpu_ns => 0}, Merged),
    Merged#{effective_hz => rate(S, Cpu), signal_hz => rate(S + Dr + T, Cpu)}.

rate(_, 0) -> 0.0;
rate(Events, CpuNs) -> Events * 1.0e9 / CpuNs.

%% @doc When the window opened (monotonic ms).
-spec started(window()) -> integer().
started(#{started := S}) -> S.

%% @doc When the window opened (monotonic, native units).
-spec t0(window()) -> integer().
t0(#{t0 := T}) -> T.

%% @doc The `stray' count at the window's opening.
-spec stray0(window()) -> non_neg_integer().
stray0(#{info0 := Info0}) -> maps:get(stray, Info0, 0).

%% @doc The collector's time at the window's opening.
-spec collector_ns0(window()) -> non_neg_integer().
collector_ns0(#{collector_ns0 := Ns}) -> Ns.

%% @doc The process whose exit closes the window, or `undefined'.
-spec owner(window()) -> pid() | undefined.
owner(#{owner := Owner}) -> Owner.

%% @doc The options the window's consumer asked for.
-spec asked(window()) -> map().
asked(#{asked := Asked}) -> Asked.
