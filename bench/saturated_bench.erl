%% saturated_bench: what the native sampler costs a SATURATED node, measured
%% independently of the sampler's own timers.
%%
%% One worker per online scheduler runs a fixed unit of CPU-bound work (a
%% 20k-step tail-recursive loop and a 200-element list reversed) over and
%% over for the whole bench, counting the units it completes (one `counters'
%% slot per worker). Each setting is a window of WindowMs wall-clock
%% milliseconds, after SETTLE_MS for the setting to take hold: the units
%% completed per second over the window (throughput) and the VM's CPU over it
%% (OS CPU time of the whole VM process, utime + stime from /proc/self/stat:
%% every thread, the sampler's C thread and signal handler included, at the
%% clock tick's resolution) as % of one core. Settings: sampling off, the
%% native sampler (`beamprof:native_start/1') at 99 Hz (the default) and at
%% 999 Hz, in rounds whose order rotates (off, 99, 999; 99, 999, off; ...), so
%% that drift and the host's slow spells fall on all three. Per setting: the
%% median, the spread (min..max) and the ratio of the median to the off
%% median, for throughput and for VM CPU; for the sampler, the rate it
%% reports it achieved (`effective_hz'), its samples, the share of the run
%% the gate was closed (`gate_closed_pct'), the samples taken under the
%% closed gate (`gated') at the rate it keeps there (`hz_under_gate':
%% min(hz, 99)), and its own cost (`overhead.pct'), medians over the rounds.
%%
%% Two modes, each with its own off rounds:
%%   app_stopped: the beamprof application is not running (native_start/1
%%     needs only the native library; beamprof's load gate does not run);
%%   app_running: beamprof started with its defaults: with every scheduler
%%     busy its gate closes, and the effective rate says what the sampler did
%%     under a closed gate (it samples on, at min(hz, 99) per thread).
%% bench/run.sh saturated_bench (SATURATED_ROUNDS, SATURATED_WINDOW_MS).
-module(saturated_bench).

-export([run/0, run/2]).

-define(SETTLE_MS, 300).
-define(SPIN, 20000).

run() -> run(5, 2000).

run(Rounds, WindowMs) ->
    process_flag(priority, high),               % the controller wakes on time
    _ = bench_util:proc_cpu_ns(),               % CLK_TCK asked before any window
    Workers = erlang:system_info(schedulers_online),
    Counters = counters:new(Workers, [write_concurrency]),
    Pids = [spawn_link(fun() -> worker(Counters, I) end) || I <- lists:seq(1, Workers)],
    io:format("~nsaturated_bench: ~B workers (one per online scheduler) doing a fixed CPU-bound "
              "unit in a loop; ~B rounds of ~B ms windows per setting (order rotated each "
              "round); throughput = units completed per second of wall time; VM CPU = "
              "utime + stime of the VM process (/proc/self/stat), % of one core~n",
              [Workers, Rounds, WindowMs]),
    Modes = [{app_stopped, "beamprof application not running"},
             {app_running, "beamprof application running (defaults: its load gate closes on a "
                           "saturated node)"}],
    lists:foreach(fun({Mode, Label}) -> mode(Mode, Label, Rounds, WindowMs, Counters) end, Modes),
    [begin unlink(P), exit(P, kill) end || P <- Pids],
    ok.

mode(Mode, Label, Rounds, WindowMs, Counters) ->
    Started = start_mode(Mode),
    Results = lists:append([round_once(I, WindowMs, Counters) || I <- lists:seq(1, Rounds)]),
    Gate = gate_state(Mode),
    stop_mode(Mode, Started),
    io:format("~n  ~s (~s)~n", [Mode, Label]),
    Of = fun(S) -> [R || {S1, R} <- Results, S1 =:= S] end,
    #{rate := OffRate, cpu := OffCpu} = Off = summary(Of(off)),
    bench_util:print_table(
      ["setting", "units/s (median)", "min..max", "ratio to off", "VM CPU %", "min..max",
       "ratio to off", "effective Hz", "samples", "gate closed %", "gated", "Hz under gate",
       "own CPU (pct)"],
      [row("sampling off", Off, OffRate, OffCpu),
       row("native sampler, 99 Hz", summary(Of(99)), OffRate, OffCpu),
       row("native sampler, 999 Hz", summary(Of(999)), OffRate, OffCpu)]),
    Warnings = lists:usort(lists:append([W || {_, #{warnings := W}} <- Results])),
    io:format("  (gate at the end of the mode: ~0p; the sampler's warnings: ~0p)~n",
              [Gate, Warnings]).

start_mode(app_stopped) ->
    _ = application:stop(beamprof),
    none;
start_mode(app_running) ->
    bench_util:start_beamprof(#{}),
    started.

stop_mode(_, none) -> ok;
stop_mode(_, started) -> ok = beamprof:stop().

gate_state(app_stopped) -> not_running;
gate_state(app_running) -> beamprof:gate().

%% One round: each setting once, in an order rotated by the round number.
round_once(I, WindowMs, Counters) ->
    Settings = [off, 99, 999],
    {A, B} = lists:split(I rem length(Settings), Settings),
    [{S, window(S, WindowMs, Counters)} || S <- B ++ A].

window(off, WindowMs, Counters) ->
    measure(WindowMs, Counters);
window(Hz, WindowMs, Counters) ->
    case beamprof:native_start(#{hz => Hz}) of
        {ok, _} ->
            M = measure(WindowMs, Counters),
            {ok, P} = beamprof:native_stop(),
            M#{hz => maps:get(effective_hz, P, 0), samples => maps:get(samples, P, 0),
               closed => maps:get(gate_closed_pct, P, 0),
               gated => maps:get(gated, P, 0),
               under => maps:get(hz_under_gate, P, 0),
               warnings => [C || #{code := C} <- maps:get(warnings, P, [])],
               own => maps:get(pct, maps:get(overhead, P, #{}), 0)};
        Error ->
            io:format("  native_start(#{hz => ~B}): ~0p~n", [Hz, Error]),
            #{}
    end.

%% Units per second and VM CPU (% of one core) over WindowMs, after the
%% setting has had SETTLE_MS to take hold.
measure(WindowMs, Counters) ->
    receive after ?SETTLE_MS -> ok end,
    {U0, C0, T0} = reading(Counters),
    receive after WindowMs -> ok end,
    {U1, C1, T1} = reading(Counters),
    Wall = T1 - T0,
    #{rate => (U1 - U0) * 1.0e9 / Wall, cpu => 100 * (C1 - C0) / Wall}.

reading(Counters) ->
    N = counters:info(Counters),
    Units = lists:sum([counters:get(Counters, I) || I <- lists:seq(1, maps:get(size, N))]),
    {Units, bench_util:proc_cpu_ns(), erlang:monotonic_time(nanosecond)}.

summary([]) -> #{};
summary(Rs) ->
    All = fun(K) -> [V || #{K := V} <- Rs] end,
    {Rate, _, _} = RateRange = range(All(rate)),
    {Cpu, _, _} = CpuRange = range(All(cpu)),
    #{rate => Rate, cpu => Cpu, ranges => #{rate => RateRange, cpu => CpuRange},
      extra => maps:from_list([{K, bench_util:median(Vs)}
                               || K <- [hz, samples, closed, gated, under, own], Vs <- [All(K)], Vs =/= []])}.

range(Vs) -> {bench_util:median(Vs), lists:min(Vs), lists:max(Vs)}.

row(Name, #{ranges := #{rate := {Rate, RMin, RMax}, cpu := {Cpu, CMin, CMax}}, extra := X},
    OffRate, OffCpu) ->
    [Name, bench_util:fmt(Rate), bench_util:fmt(RMin) ++ ".." ++ bench_util:fmt(RMax),
     bench_util:ratio(Rate, OffRate), bench_util:fmt(Cpu),
     bench_util:fmt(CMin) ++ ".." ++ bench_util:fmt(CMax), bench_util:ratio(Cpu, OffCpu),
     extra(hz, X), extra(samples, X), extra(closed, X), extra(gated, X), extra(under, X),
     case X of #{own := O} -> float_to_list(float(O), [{decimals, 2}]) ++ "%"; _ -> "-" end];
row(Name, _, _, _) ->
    [Name, "n/a", "", "", "", "", "", "", "", "", "", "", ""].

extra(hz, #{hz := V}) -> bench_util:fmt(float(V));
extra(K, X) ->
    case X of #{K := V} -> bench_util:fmt(round(V)); _ -> "-" end.

%% A worker: the fixed unit, counted, forever.
worker(Counters, I) ->
    _ = spin(?SPIN),
    _ = lists:reverse(lists:seq(1, 200)),
    counters:add(Counters, I, 1),
    worker(Counters, I).

spin(0) -> 0;
spin(N) -> spin(N - 1).
