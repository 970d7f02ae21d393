%% native_bench: what the native sampler costs a CPU-bound node.
%%
%% The same fixed workload (two processes, one per scheduler, each running a
%% fixed number of iterations of a tail-recursive loop and list building)
%% runs with sampling off, at 99 Hz and at 999 Hz requested (interleaved,
%% Runs times each), then once under eprof and once under fprof (tracing
%% profilers, for scale: they run a part of the workload, grown until the
%% profiled run lasts at least MIN_MS (1 s) of wall time so that their setup
%% is not what is measured; their CPU time is scaled up to the whole
%% workload, and only the profiling run is timed, not the analysis; the
%% setup alone, the same on no work, is printed beside).
%% The figure is the change of the whole VM's CPU time (the sum of every
%% thread's /proc/self/task/*/schedstat, ns resolution) over the workload,
%% median of the runs; overhead is against the median with sampling off.
%% The effective rate is the sampler's own (samples per second per busy
%% thread, capped by the kernel tick). Many short rounds (off, 99, 999 in
%% an order rotated every round) give a median and its spread (IQR, the
%% 25th to 75th percentile of the change). Beside that differential figure,
%% which a loaded machine drowns in noise, the sampler's own cost as it
%% measures it: `overhead.pct' (CPU time in the signal handler, timed
%% inside it, plus the rescans and the C drain with its unwinding, against
%% the sampled threads' CPU time) and `overhead.pct_max' (with the
%% collector's rounds in wall time instead of the drain: an upper bound),
%% and the signal handler's CPU time per sample (`overhead.handler_ns' over
%% `samples').
-module(native_bench).

-export([run/0, run/1]).

-define(ITER, 30000).
%% eprof and fprof trace every call (fprof writes each to a file): they run
%% part of the workload, at least MIN_MS of wall time, scaled back up.
-define(MIN_MS, 1000).
-define(TRACE_START, 30).

run() -> run(15).

run(Runs) ->
    _ = work(100), % warm up: code loaded, heaps grown
    Rounds = [round_once(I) || I <- lists:seq(1, Runs)],
    Off = bench_util:median([O || {O, _, _} <- Rounds]),
    Row99 = row("native sampler, 99 Hz", [R || {_, R, _} <- Rounds], Off),
    Row999 = row("native sampler, 999 Hz", [R || {_, _, R} <- Rounds], Off),
    Eprof = tracer_row("eprof", fun eprof_run/1, Off),
    Fprof = tracer_row("fprof trace", fun fprof_run/1, Off),
    io:format("~nnative_bench: fixed CPU-bound workload (2 processes), ~b interleaved rounds, "
              "median VM CPU time (IQR of the change); own CPU = the sampler's own "
              "measured cost, own max = with the collector in wall time~n", [Runs]),
    bench_util:print_table(
      ["what", "CPU ms", "overhead", "IQR", "ratio to off", "effective Hz", "samples",
       "own CPU", "own max", "handler us/sample"],
      [["sampling off", ms(Off), "-", iqr([O || {O, _, _} <- Rounds], Off), "1.00x", "-", "-",
        "-", "-", "-"],
       Row99, Row999, Eprof, Fprof]).

%% The three settings in an order rotated every round, so no setting always
%% runs first (warm-up and drift spread over all three).
round_once(I) ->
    Steps = [{off, fun() -> cpu_of(fun() -> work(?ITER) end) end},
             {hz99, fun() -> sampled(99) end}, {hz999, fun() -> sampled(999) end}],
    {A, B} = lists:split(I rem 3, Steps),
    R = maps:from_list([{K, F()} || {K, F} <- B ++ A]),
    {maps:get(off, R), maps:get(hz99, R), maps:get(hz999, R)}.

sampled(Hz) ->
    case beamprof:native_start(#{hz => Hz}) of
        {ok, _} ->
            Cpu = cpu_of(fun() -> work(?ITER) end),
            {ok, P} = beamprof:native_stop(),
            #{pct := Own, pct_max := Max} = Overhead = maps:get(overhead, P),
            Samples = maps:get(samples, P, 0),
            HandlerUs = maps:get(handler_ns, Overhead, 0) / max(1, Samples) / 1000,
            {Cpu, maps:get(effective_hz, P, 0), Samples, Own, Max, HandlerUs};
        Error ->
            io:format("native_start(~p): ~p~n", [Hz, Error]),
            {undefined, 0, 0, 0, 0, 0}
    end.

row(Name, Results, Off) ->
    case [C || {C, _, _, _, _, _} <- Results, C =/= undefined] of
        [] ->
            [Name, "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"];
        Cpus ->
            Cpu = bench_util:median(Cpus),
            [Name, ms(Cpu), pct(Cpu, Off), iqr(Cpus, Off), bench_util:ratio(Cpu, Off),
             bench_util:fmt(bench_util:median([H || {_, H, _, _, _, _} <- Results])),
             bench_util:fmt(bench_util:median([S || {_, _, S, _, _, _} <- Results])),
             own(bench_util:median([O || {_, _, _, O, _, _} <- Results])),
             own(bench_util:median([M || {_, _, _, _, M, _} <- Results])),
             bench_util:fmt(bench_util:median([U || {_, _, _, _, _, U} <- Results]))]
    end.

own(P) -> float_to_list(float(P), [{decimals, 2}]) ++ "%".

%% The 25th and 75th percentiles of the change against Off.
iqr(Cpus, Off) when Off > 0 ->
    Sorted = lists:sort(Cpus),
    N = length(Sorted),
    Q = fun(F) -> lists:nth(max(1, min(N, round(F * (N - 1)) + 1)), Sorted) end,
    pct(Q(0.25), Off) ++ ".." ++ pct(Q(0.75), Off);
iqr(_, _) -> "n/a".

%% A tracer's row: the part of the workload it ran (grown until the profiled
%% run lasts MIN_MS), its CPU scaled to the whole workload, and its setup
%% alone (the same on no work, CPU).
tracer_row(Name, Run, Off) ->
    {Iter, Cpu, Wall} = long_enough(Run, ?TRACE_START),
    Scaled = Cpu * ?ITER / Iter,
    Setup = cpu_of(fun() -> Run(0) end),
    [io_lib:format("~s (~B of ~B iterations, ~s s, x~s; setup ~s ms)",
                   [Name, Iter, ?ITER, bench_util:fmt(Wall / 1000), bench_util:fmt(?ITER / Iter),
                    ms(Setup)]),
     ms(Scaled), pct(Scaled, Off), "-", bench_util:ratio(Scaled, Off), "-", "-", "-", "-", "-"].

long_enough(Run, Iter) ->
    T0 = erlang:monotonic_time(millisecond),
    Cpu = cpu_of(fun() -> Run(Iter) end),
    Wall = erlang:monotonic_time(millisecond) - T0,
    case Wall >= ?MIN_MS orelse Iter >= ?ITER of
        true -> {Iter, Cpu, Wall};
        false -> long_enough(Run, min(?ITER, ceil(Iter * 1.2 * ?MIN_MS / max(1, Wall))))
    end.

eprof_run(Iter) ->
    {ok, _} = eprof:start(),
    _ = eprof:profile([], fun() -> work(Iter) end),
    stopped = eprof:stop(),
    ok.

fprof_run(Iter) ->
    File = filename:join(os:getenv("TMPDIR", "/tmp"),
                         "native_bench_fprof_" ++ os:getpid() ++ ".trace"),
    _ = fprof:apply(fun() -> work(Iter) end, [], [{file, File}]),
    _ = fprof:stop(),
    _ = file:delete(File),
    ok.

%% The workload: two processes, each ITER rounds of a 20k-step loop and a
%% 200-element list reversed.
work(Iter) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> worker(Iter), Parent ! {done, self()} end) || _ <- [1, 2]],
    [receive {done, P} -> ok end || P <- Pids],
    ok.

worker(0) -> ok;
worker(N) ->
    _ = spin(20000),
    _ = lists:reverse(lists:seq(1, 200)),
    worker(N - 1).

spin(0) -> 0;
spin(N) -> spin(N - 1).

cpu_of(Fun) ->
    garbage_collect(),
    C0 = vm_cpu_ns(),
    ok = Fun(),
    vm_cpu_ns() - C0.

%% The VM's CPU time in ns: every thread's schedstat run time.
vm_cpu_ns() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    lists:sum([task_ns(T) || T <- Tasks]).

task_ns(T) ->
    case file:read_file("/proc/self/task/" ++ T ++ "/schedstat") of
        {ok, B} -> binary_to_integer(hd(binary:split(B, <<" ">>)));
        _ -> 0
    end.

ms(Ns) -> bench_util:fmt(Ns / 1.0e6).

pct(Cpu, Off) when Off > 0 ->
    P = 100 * (Cpu - Off) / Off,
    Sign = case P >= 0 of true -> "+"; false -> "" end,
    Sign ++ float_to_list(P, [{decimals, 2}]) ++ "%";
pct(_, _) -> "n/a".
