%% micro_bench: the small per-call figures doc/cost.md quotes, each beside a
%% baseline measured in the same run.
%%
%% 1. process_info/2 per item over every process of a node of PROCS idle
%%    processes: wall time per call and the VM's context switches per call
%%    (`statistics(context_switches)'), median of RUNS passes. `memory' and
%%    `total_heap_size' are answered by the process itself on OTP 25 (a
%%    signal round trip); the baseline is `message_queue_len', asked the same
%%    way of the same processes (answered by the caller).
%% 2. What beamprof's parts do each tick or interval (doc/cost.md, "At rest
%%    and on hot paths", "Where each part runs"), with 100k idle processes and
%%    beamprof running: the core NIFs beamprof_nif:memory/0, sched_cpu/0 and
%%    history/0, `statistics(scheduler_wall_time)' (the gate process reads it
%%    twice per ping) and `erlang:memory/0', in microseconds per call (median
%%    of 5 runs of CALLS calls); the VM sampler's busy time per emit
%%    (`beamprof_sampler:stats/0') over SAMPLER_S seconds at a 100 ms interval.
%%    The baseline: `erlang:memory/0', which the sampler calls each interval.
%% 3. The VM monitor bridge's rate limit (doc/cost.md, "The VM monitor bridge"): 100k
%%    `long_schedule' reports sent to beamprof_monitor while it is suspended,
%%    then the time and reductions it takes to handle them, with `max_rate' 1
%%    (all but one suppressed) and 100000 (all emitted, no handler attached);
%%    the baseline is a process that only receives the same 100k messages.
%% bench/run.sh micro_bench
-module(micro_bench).

-export([run/0]).

-define(PROCS, 200000).
-define(RUNS, 3).
-define(CALLS, 1000).
-define(SAMPLER_S, 3).
-define(REPORTS, 100000).

run() ->
    Idle = [spawn(fun idle/0) || _ <- lists:seq(1, 100000)],
    parts(),
    More = [spawn(fun idle/0) || _ <- lists:seq(1, ?PROCS - 100000)],
    process_info_items(),
    monitor_limit(),
    [exit(P, kill) || P <- Idle ++ More],
    ok.

idle() ->
    receive stop -> ok end.

%% --- 1 ------------------------------------------------------------------------

process_info_items() ->
    Pids = erlang:processes(),
    Rows = [{Item, item_cost(Item, Pids)}
            || Item <- [message_queue_len, reductions, heap_size, memory, total_heap_size]],
    {_, #{us := BaseUs}} = lists:keyfind(message_queue_len, 1, Rows),
    io:format("~nmicro_bench: process_info(P, Item) of every process, ~B processes, "
              "median of ~B passes (baseline: message_queue_len)~n", [length(Pids), ?RUNS]),
    bench_util:print_table(["item", "us per call", "vs message_queue_len",
                            "context switches per call"],
                           [[atom_to_list(Item), bench_util:fmt(Us), bench_util:ratio(Us, BaseUs),
                             bench_util:fmt(Cs)]
                            || {Item, #{us := Us, cs := Cs}} <- Rows]).

item_cost(Item, Pids) ->
    N = length(Pids),
    Runs = [begin
                garbage_collect(),
                {Cs0, _} = erlang:statistics(context_switches),
                T0 = erlang:monotonic_time(nanosecond),
                lists:foreach(fun(P) -> _ = erlang:process_info(P, Item) end, Pids),
                T1 = erlang:monotonic_time(nanosecond),
                {Cs1, _} = erlang:statistics(context_switches),
                {(T1 - T0) / N / 1000, (Cs1 - Cs0) / N}
            end || _ <- lists:seq(1, ?RUNS)],
    #{us => bench_util:median([U || {U, _} <- Runs]),
      cs => bench_util:median([C || {_, C} <- Runs])}.

%% --- 2 ------------------------------------------------------------------------

parts() ->
    bench_util:start_beamprof(#{interval => 100}),
    try
        #{busy_ns := B0, emits := E0} = beamprof_sampler:stats(),
        timer:sleep(?SAMPLER_S * 1000),
        #{busy_ns := B1, emits := E1} = beamprof_sampler:stats(),
        _ = erlang:system_flag(scheduler_wall_time, true),
        Calls = [{"erlang:memory/0 (baseline)", fun() -> erlang:memory() end},
                 {"beamprof_nif:memory/0", fun beamprof_nif:memory/0},
                 {"beamprof_nif:sched_cpu/0", fun beamprof_nif:sched_cpu/0},
                 {"beamprof_nif:history/0 (" ++ integer_to_list(length(beamprof_nif:history()))
                  ++ " ticks held)", fun beamprof_nif:history/0},
                 {"statistics(scheduler_wall_time)",
                  fun() -> erlang:statistics(scheduler_wall_time) end}],
        Rows = [{Name, us_per_call(F)} || {Name, F} <- Calls],
        [{_, Base} | _] = Rows,
        io:format("~nmicro_bench: what beamprof's parts call, ~B processes, beamprof running, "
                  "us per call (median of 5 x ~B calls; baseline erlang:memory/0)~n",
                  [erlang:system_info(process_count), ?CALLS]),
        bench_util:print_table(["call", "us per call", "vs erlang:memory/0"],
                               [[Name, bench_util:fmt(Us), bench_util:ratio(Us, Base)]
                                || {Name, Us} <- Rows] ++
                               [["VM sampler, busy per emit (interval 100 ms, "
                                 ++ integer_to_list(E1 - E0) ++ " emits)",
                                 bench_util:fmt((B1 - B0) / max(1, E1 - E0) / 1000),
                                 bench_util:ratio((B1 - B0) / max(1, E1 - E0) / 1000, Base)]])
    after
        ok = beamprof:stop()
    end.

us_per_call(F) ->
    _ = F(),
    bench_util:median([begin
                           T0 = erlang:monotonic_time(nanosecond),
                           calls(F, ?CALLS),
                           (erlang:monotonic_time(nanosecond) - T0) / ?CALLS / 1000
                       end || _ <- lists:seq(1, 5)]).

calls(_, 0) -> ok;
calls(F, N) -> _ = F(), calls(F, N - 1).

%% --- 3 ------------------------------------------------------------------------

monitor_limit() ->
    Who = spawn(fun idle/0),
    Info = [{timeout, 150}, {in, {m, f, 1}}, {out, {m, f, 1}}],
    Msg = {monitor, Who, long_schedule, Info},
    Base = drain_cost(spawn(fun sink/0), Msg, fun(P) -> Ref = make_ref(), P ! {sync, self(), Ref},
                                                        receive Ref -> ok end end),
    Rows = [{Rate, bridge(Rate, Msg)} || Rate <- [1, 100000]],
    exit(Who, kill),
    io:format("~nmicro_bench: ~B long_schedule reports handled by beamprof_monitor "
              "(no handler attached), per report (baseline: a process that only receives)~n",
              [?REPORTS]),
    {BaseUs, BaseReds} = Base,
    bench_util:print_table(["what", "us per report", "reductions per report", "vs baseline (us)"],
                           [["a process that only receives (baseline)", bench_util:fmt(BaseUs),
                             bench_util:fmt(BaseReds), "1.00x"] |
                            [[label(Rate, Counts), bench_util:fmt(Us), bench_util:fmt(Reds),
                              bench_util:ratio(Us, BaseUs)]
                             || {Rate, {Us, Reds, Counts}} <- Rows]]).

label(Rate, #{emitted := E, suppressed := S}) ->
    io_lib:format("beamprof_monitor, max_rate ~B (~B emitted, ~B suppressed)", [Rate, E, S]).

bridge(Rate, Msg) ->
    bench_util:start_beamprof(#{system_monitor => #{max_rate => Rate}}),
    try
        Pid = whereis(beamprof_monitor),
        {Us, Reds} = drain_cost(Pid, Msg, fun(_) -> beamprof_monitor:status() end),
        #{emitted := E, suppressed := S} = beamprof_monitor:status(),
        {Us, Reds, #{emitted => maps:get(long_schedule, E, 0),
                     suppressed => maps:get(long_schedule, S, 0)}}
    after
        ok = beamprof:stop()
    end.

%% Suspends Pid, sends it REPORTS copies of Msg, resumes it and waits for
%% Sync(Pid) (answered once it has handled them): wall us and reductions per
%% report.
drain_cost(Pid, Msg, Sync) ->
    _ = Sync(Pid),
    true = erlang:suspend_process(Pid),
    [Pid ! Msg || _ <- lists:seq(1, ?REPORTS)],
    {reductions, R0} = erlang:process_info(Pid, reductions),
    T0 = erlang:monotonic_time(nanosecond),
    true = erlang:resume_process(Pid),
    _ = Sync(Pid),
    T1 = erlang:monotonic_time(nanosecond),
    {reductions, R1} = erlang:process_info(Pid, reductions),
    {(T1 - T0) / ?REPORTS / 1000, (R1 - R0) / ?REPORTS}.

sink() ->
    receive
        {sync, From, Ref} -> From ! Ref, sink();
        _ -> sink()
    end.
