%% gate_bench: what asking the load gate costs on a hot path.
%%
%% ns per call of beamprof:gate() against the two usual ways to read a shared
%% flag: persistent_term:get/1 of a small term and ets:lookup/2 on a
%% read_concurrency set. 10M calls each in a tight loop, the empty loop's time
%% subtracted, median of 5 runs, with beamprof (and so its sampler) running.
-module(gate_bench).

-export([run/0, run/1]).

-define(CALLS, 10000000).
-define(RUNS, 5).
-define(PT_KEY, {?MODULE, flag}).

run() -> run(?CALLS).

run(Calls) ->
    bench_util:start_beamprof(#{}),
    persistent_term:put(?PT_KEY, open),
    Tab = ets:new(?MODULE, [set, public, {read_concurrency, true}]),
    true = ets:insert(Tab, {flag, open}),
    Gate = bench_util:ns_per_call(fun gate_loop/1, Calls, ?RUNS),
    Pt = bench_util:ns_per_call(fun pt_loop/1, Calls, ?RUNS),
    Ets = bench_util:ns_per_call(fun(N) -> ets_loop(Tab, N) end, Calls, ?RUNS),
    Empty = bench_util:median([empty_ns(Calls) || _ <- lists:seq(1, ?RUNS)]),
    io:format("~ngate_bench: ns per call, ~b calls x ~b runs (median), empty loop "
              "(~.2f ns/iteration) subtracted, sampler running, gate ~p~n",
              [Calls, ?RUNS, Empty, beamprof:gate()]),
    bench_util:print_table(
      ["operation", "ns/call", "beamprof:gate() / this"],
      [["beamprof:gate()", bench_util:fmt(Gate), "1.00x"],
       ["persistent_term:get/1, small term", bench_util:fmt(Pt), bench_util:ratio(Gate, Pt)],
       ["ets:lookup/2, read_concurrency set", bench_util:fmt(Ets), bench_util:ratio(Gate, Ets)]]),
    ok = beamprof:stop().

empty_ns(N) ->
    T0 = erlang:monotonic_time(nanosecond),
    bench_util:empty_loop(N),
    (erlang:monotonic_time(nanosecond) - T0) / N.

gate_loop(0) -> ok;
gate_loop(N) -> _ = beamprof:gate(), gate_loop(N - 1).

pt_loop(0) -> ok;
pt_loop(N) -> _ = persistent_term:get(?PT_KEY), pt_loop(N - 1).

ets_loop(_, 0) -> ok;
ets_loop(Tab, N) -> _ = ets:lookup(Tab, flag), ets_loop(Tab, N - 1).
