%% sampler_overhead: what leaving beamprof on costs an idle node.
%%
%% 100k idle processes (each waiting in receive), then four phases:
%%   1. beamprof started with defaults for Seconds: its CPU = the C sampler
%%      thread's CPU (beamprof_nif:sampler_info() cpu_ns delta) + the Erlang
%%      sampler's busy time (beamprof_sampler:stats() busy_ns delta); the
%%      periodic scan runs too (its first pass comes after 10 s): its passes
%%      and their CPU (beamprof_scan_server:stats()) are printed beside;
%%   1b. the same with the periodic scan off (scan_interval => off);
%%   2. beamprof stopped, a naive Erlang poller at the same rates instead: every
%%      tick (100 ms, beamprof's default tick, at which its gate is kept current)
%%      scheduler:sample() and the utilization since the previous one; every
%%      interval (1 s) also what telemetry_poller's default VM measurements read
%%      (erlang:memory(), run queue lengths, system counts and limits,
%%      persistent_term:info()). Busy time = wall time around each poll;
%%   3. nothing running, for the VM's own idle CPU.
%% Each is printed as % of one core, with the VM's whole CPU (/proc/self/stat
%% utime+stime) per phase: noisy on a shared machine with one-tick resolution.
-module(sampler_overhead).

-export([run/0, run/1]).

-define(PROCS, 100000).
-define(TICK_MS, 100).
-define(INTERVAL_MS, 1000).

run() -> run(20).

run(Seconds) ->
    Procs = [spawn(fun idle/0) || _ <- lists:seq(1, ?PROCS)],
    Ms = Seconds * 1000,
    {BpCpu, BpVm, BpDetail} = beamprof_phase(Ms, #{}),
    {OffCpu, OffVm, OffDetail} = beamprof_phase(Ms, #{scan_interval => off}),
    {NaiveCpu, NaiveVm, Polls} = naive_phase(Ms),
    IdleMs = max(1000, Ms div 2),
    IdleVm = vm_phase(fun() -> timer:sleep(IdleMs) end),
    [exit(P, kill) || P <- Procs],
    io:format("~nsampler_overhead: ~b idle processes, ~b s per phase (idle phase ~b s), "
              "% of one core~n", [?PROCS, Seconds, IdleMs div 1000]),
    bench_util:print_table(
      ["what", "own CPU %", "VM CPU % (noisy)", "own: beamprof / naive"],
      [["beamprof (C thread + Erlang sampler)", pct(BpCpu), pct(BpVm),
        bench_util:ratio(BpCpu, NaiveCpu)],
       ["beamprof, periodic scan off", pct(OffCpu), pct(OffVm),
        bench_util:ratio(OffCpu, NaiveCpu)],
       ["naive Erlang poller", pct(NaiveCpu), pct(NaiveVm), "1.00x"],
       ["nothing (idle VM)", "-", pct(IdleVm), "-"]]),
    io:format("  beamprof detail: ~ts~n  scan off detail: ~ts~n"
              "  naive poller: ~b polls, ~ts us busy per poll~n",
              [BpDetail, OffDetail, Polls, bench_util:fmt(NaiveCpu * Ms * 1.0e6 / max(1, Polls) / 1000)]).

idle() ->
    receive stop -> ok end.

pct(Fraction) when is_number(Fraction) -> bench_util:fmt(100 * Fraction);
pct(_) -> "n/a".

%% Runs Fun, returns the VM's CPU over it as a fraction of one core.
vm_phase(Fun) ->
    C0 = bench_util:proc_cpu_ns(),
    T0 = erlang:monotonic_time(nanosecond),
    Fun(),
    (bench_util:proc_cpu_ns() - C0) / max(1, erlang:monotonic_time(nanosecond) - T0).

beamprof_phase(Ms, Opts) ->
    bench_util:start_beamprof(Opts),
    C0 = beamprof_cpu(),
    T0 = erlang:monotonic_time(nanosecond),
    Vm = vm_phase(fun() -> timer:sleep(Ms) end),
    C1 = beamprof_cpu(),
    Elapsed = erlang:monotonic_time(nanosecond) - T0,
    Scan = bench_util:call_if_exported(beamprof_scan_server, stats, []),
    ok = beamprof:stop(),
    case {C0, C1} of
        {{ok, Thread0, Busy0}, {ok, Thread1, Busy1}} ->
            Thread = Thread1 - Thread0,
            Busy = Busy1 - Busy0,
            Detail = io_lib:format("C thread ~ts ms CPU, Erlang sampler ~ts ms busy, over ~ts s;"
                                   " periodic scan ~0p",
                                   [bench_util:fmt(Thread / 1.0e6), bench_util:fmt(Busy / 1.0e6),
                                    bench_util:fmt(Elapsed / 1.0e9), Scan]),
            {(Thread + Busy) / Elapsed, Vm, Detail};
        _ ->
            {undefined, Vm, io_lib:format("cpu_ns/busy_ns not available: ~0p ~0p", [C0, C1])}
    end.

%% {ok, C thread cpu_ns, Erlang sampler busy_ns}, or what was found instead.
beamprof_cpu() ->
    Info = bench_util:call_if_exported(beamprof_nif, sampler_info, []),
    Stats = bench_util:call_if_exported(beamprof_sampler, stats, []),
    case {Info, Stats} of
        {#{cpu_ns := Cpu}, #{busy_ns := Busy}} -> {ok, Cpu, Busy};
        Other -> Other
    end.

naive_phase(Ms) ->
    Self = self(),
    Poller = spawn(fun() -> naive_start(Self) end),
    Vm = vm_phase(fun() -> timer:sleep(Ms) end),
    Poller ! {stop, Self},
    receive {naive, Busy, Polls, Elapsed} -> {Busy / Elapsed, Vm, Polls} end.

naive_start(Parent) ->
    T0 = erlang:monotonic_time(nanosecond),
    Sample = scheduler:sample(),
    naive_loop(Parent, T0, Sample, 0, 0, 1).

naive_loop(Parent, T0, Prev, Busy, Polls, Tick) ->
    receive
        {stop, Parent} ->
            Parent ! {naive, Busy, Polls, erlang:monotonic_time(nanosecond) - T0}
    after ?TICK_MS ->
        B0 = erlang:monotonic_time(nanosecond),
        Sample = scheduler:sample(),
        _ = scheduler:utilization(Prev, Sample),
        Tick rem (?INTERVAL_MS div ?TICK_MS) =:= 0 andalso telemetry_poller_defaults(),
        B = erlang:monotonic_time(nanosecond) - B0,
        naive_loop(Parent, T0, Sample, Busy + B, Polls + 1, Tick + 1)
    end.

%% What telemetry_poller's default VM measurements read.
telemetry_poller_defaults() ->
    _ = erlang:memory(),
    _ = {erlang:statistics(total_run_queue_lengths_all), erlang:statistics(total_run_queue_lengths)},
    _ = [erlang:system_info(K) || K <- [process_count, atom_count, port_count,
                                        process_limit, atom_limit, port_limit]],
    _ = persistent_term:info(),
    true.
