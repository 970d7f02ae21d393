%% native_names: how many native samples keep a C frame without a name.
%%
%% The workload of `make demo''s native section (a process summing
%% lists:seq/2, one reversing it: list building and GC in beam.smp), sampled
%% at 999 Hz for 2 s, Runs times; prints per run the share of the weight
%% whose stack holds a C frame named only `Object+0xOffset' (the profile's
%% `unnamed_pct'), the share whose leaf is one (`unnamed_leaf_pct'), the
%% first share per object, and the `c_symbols_missing'
%% warnings. Start the VM with
%% +JPperf map as the demo does. `run(Runs, DebugRoot)' looks for debug
%% files under DebugRoot instead of /usr/lib/debug (the `debug_root'
%% environment of the beamprof application).
%%
%%   erlc -o /tmp bench/native_names.erl
%%   erl +JPperf map -noshell -pa _build/default/lib/beamprof/ebin -pa /tmp \
%%       -eval 'native_names:run(3), halt().'
-module(native_names).

-export([run/0, run/1, run/2]).

run() -> run(3).

run(Runs) ->
    run(Runs, undefined).

run(Runs, DebugRoot) ->
    _ = DebugRoot =:= undefined orelse application:set_env(beamprof, debug_root, DebugRoot),
    {ok, _} = application:ensure_all_started(beamprof),
    ok = application:stop(beamprof), % no load gate: under this load it would lower 999 Hz to 99 Hz
    Load = [spawn(fun Hot() -> _ = lists:sum(lists:seq(1, 5000)), Hot() end),
            spawn(fun Gc() -> _ = lists:reverse(lists:seq(1, 20000)), Gc() end)],
    Rows = [once() || _ <- lists:seq(1, Runs)],
    [exit(P, kill) || P <- Load],
    Pcts = lists:sort([Pct || {Pct, _} <- Rows]),
    io:format("native_names: unnamed_pct over ~b runs: median ~.1f%, min ~.1f%, max ~.1f%~n",
              [Runs, lists:nth((Runs + 1) div 2, Pcts), hd(Pcts), lists:last(Pcts)]),
    {_, #{warnings := Warnings}} = lists:last(Rows),
    [io:format("  warning ~p: ~ts~n", [C, M]) || #{code := C, message := M} <- Warnings],
    ok.

once() ->
    {ok, _} = beamprof_native:start(#{hz => 999}),
    timer:sleep(2000),
    {ok, P} = beamprof_native:stop(),
    #{unnamed_pct := Pct, unnamed_leaf_pct := Leaf, unnamed := PerObject, samples := N} = P,
    io:format("~b samples: unnamed_pct ~.1f% (leaf ~.1f%), per object ~p~n",
              [N, Pct, Leaf, PerObject]),
    {Pct, P}.
