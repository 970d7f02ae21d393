%% What delays a 1 ms pinger while beamprof scans: 3 s of each piece of a
%% scan, run over and over, against 3 s of the VM doing nothing (the idle VM
%% row: what this machine and VM do with no scan), on a node of N idle
%% processes (run.sh raises +P).
%%
%% Pieces: the pid source alone (beamprof_scan_walk:fill_processes/1: the
%% process-table walk on OTP 25 and 27, the process iterator on 28+, into a
%% fresh buffer, as each scan starts), queue slices alone (process_info(P,
%% message_queue_len) for 0.5 ms, charged a timeslice, yield: the walker's
%% loop), whole `top(message_queue_len, 10)' passes and whole
%% `top(memory, 10)' passes (cold). Three rounds of every piece, one after
%% the other. Per piece and round: the pinger's worst gap between wakes (1 ms
%% when nothing delays it), its gaps over 2 ms and those per second; then per
%% piece over the 3 rounds, beside the idle VM's. Then listing every pid
%% once: erlang:processes() against beamprof's pid source (see listings/0).
-module(gap_bench).

-export([run/1]).

-define(SECONDS, 3).
-define(ROUNDS, 3).

run(N) ->
    io:format("~ngap_bench: a 1 ms pinger's gaps over ~B s of each piece of a scan, "
              "~B idle processes~n", [?SECONDS, N]),
    ok = beamprof_ct:spawn_idle(N),
    timer:sleep(1000),
    Pieces = [{"idle VM", fun idle/1}, {"table walks", fun walks/1},
              {"queue slices", fun slices/1},
              {"top(message_queue_len, 10)", passes([message_queue_len])},
              {"top(memory, 10) cold", passes([memory])}],
    Runs = [{Name, Round, measure(Piece)}
            || Round <- lists:seq(1, ?ROUNDS), {Name, Piece} <- Pieces],
    bench_util:print_table(["piece", "round", "pings", "worst gap ms", "gaps > 2 ms", "per s"],
                           [[Name, integer_to_list(Round), integer_to_list(Count),
                             bench_util:fmt(Max / 1000), integer_to_list(Over),
                             bench_util:per_s(Over, Wall)]
                            || {Name, _} <- Pieces,
                               {Name1, Round, #{count := Count, over_2ms := Over, max_us := Max,
                                               wall_us := Wall}} <- Runs,
                               Name1 =:= Name]),
    Of = fun(Name) -> [R || {Name1, _, R} <- Runs, Name1 =:= Name] end,
    #{per_s := IdlePerS} = IdleSum = total(Of("idle VM")),
    io:format("~n  all ~B rounds, beside the idle VM's~n", [?ROUNDS]),
    bench_util:print_table(["piece", "worst gap ms", "gaps > 2 ms per s", "idle VM's worst ms",
                            "idle VM's per s"],
                           [[Name, bench_util:fmt(Max / 1000), bench_util:fmt(PerS),
                             bench_util:fmt(maps:get(max_us, IdleSum) / 1000),
                             bench_util:fmt(IdlePerS)]
                            || {Name, _} <- Pieces, #{max_us := Max, per_s := PerS} <- [total(Of(Name))]]),
    listings().

%% Listing every pid once, as a scan starts: erlang:processes() (the
%% baseline: OTP 25's only way) against beamprof's pid source into its C
%% buffer, each in a fresh process traced for `running': wall time, the
%% longest time it ran without being scheduled out (how long it held a
%% scheduler) and how many times it was scheduled in, median and worst of
%% ROUNDS runs.
listings() ->
    Ways = [{"erlang:processes() (baseline)", fun() -> length(erlang:processes()) end},
            {"beamprof_scan_walk:fill_processes(auto)",
             fun() -> {Buf, Source, _} = beamprof_scan_walk:fill_processes(auto),
                      ok = beamprof_nif:scan_buf_release(Buf),
                      Source
             end}],
    Rows = [{Name, [listing(F) || _ <- lists:seq(1, ?ROUNDS)]} || {Name, F} <- Ways],
    [{_, BaseRuns} | _] = Rows,
    BaseWall = bench_util:median([W || #{wall_us := W} <- BaseRuns]),
    io:format("~n  listing every pid once (~B runs each; running trace of the lister)~n",
              [?ROUNDS]),
    bench_util:print_table(["way", "gave", "wall ms (median)", "vs baseline",
                            "longest run ms (worst)", "scheduled in (median)"],
                           [[Name, io_lib:format("~0p", [maps:get(result, hd(Runs))]),
                             bench_util:fmt(Wall / 1000), bench_util:ratio(Wall, BaseWall),
                             bench_util:fmt(lists:max([L || #{longest_us := L} <- Runs]) / 1000),
                             bench_util:fmt(bench_util:median([I || #{ins := I} <- Runs]))]
                            || {Name, Runs} <- Rows,
                               Wall <- [bench_util:median([W || #{wall_us := W} <- Runs])]]).

listing(Fun) ->
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() -> receive go -> ok end, Self ! {listed, Fun()} end),
    Tracer = spawn(fun() -> runs(undefined, 0, 0) end),
    1 = erlang:trace(Pid, true, [running, monotonic_timestamp, {tracer, Tracer}]),
    garbage_collect(),
    T0 = erlang:monotonic_time(microsecond),
    Pid ! go,
    Result = receive {listed, R} -> R end,
    Wall = erlang:monotonic_time(microsecond) - T0,
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    Ref = erlang:trace_delivered(Pid),
    receive {trace_delivered, Pid, Ref} -> ok end,
    Tracer ! {stop, self()},
    receive {runs, Longest, Ins} ->
            #{result => Result, wall_us => Wall, longest_us => Longest, ins => Ins}
    end.

%% The tracer: the longest in..out interval (us) and how many ins.
runs(In, Longest, Ins) ->
    receive
        {trace_ts, _, in, _, Ts} ->
            runs(Ts, Longest, Ins + 1);
        {trace_ts, _, out, _, Ts} when In =/= undefined ->
            runs(undefined, max(Longest, erlang:convert_time_unit(Ts - In, native, microsecond)),
                 Ins);
        {stop, From} ->
            From ! {runs, Longest, Ins};
        _ ->
            runs(In, Longest, Ins)
    end.

total(Rs) ->
    #{max_us => lists:max([M || #{max_us := M} <- Rs]),
      per_s => lists:sum([O || #{over_2ms := O} <- Rs]) * 1.0e6
          / max(1, lists:sum([W || #{wall_us := W} <- Rs]))}.

%% Runs Piece in a fresh process until ?SECONDS have passed; the process
%% gets its ready state (the pid list for slices) before the pingers start.
measure(Piece) ->
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() -> State = Piece(prepare), garbage_collect(),
                                        Self ! ready, receive go -> ok end,
                                        Piece({State, erlang:monotonic_time(millisecond) + ?SECONDS * 1000}),
                                        Self ! done end),
    ok = receive ready -> ok; {'DOWN', Mon, process, Pid, Why} -> {piece_failed, Why} end,
    Watch = bench_util:watch(),
    timer:sleep(20),
    Pid ! go,
    ok = receive done -> ok; {'DOWN', Mon, process, Pid, Why2} -> {piece_failed, Why2} end,
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    bench_util:unwatch(Watch).

until(Deadline) ->
    erlang:monotonic_time(millisecond) < Deadline.

idle(prepare) -> none;
idle({_, Deadline}) ->
    receive after max(0, Deadline - erlang:monotonic_time(millisecond)) -> ok end.

walks(prepare) -> none;
walks({_, Deadline} = Arg) ->
    case until(Deadline) of
        true ->
            {Buf, _Source, _} = beamprof_scan_walk:fill_processes(auto),
            ok = beamprof_nif:scan_buf_release(Buf),   % as a scan does when it is done
            walks(Arg);
        false -> ok
    end.

slices(prepare) -> erlang:processes();
slices({Pids, Deadline}) ->
    slices(Pids, Pids, Deadline).

slices(All, [], Deadline) -> slices(All, All, Deadline);
slices(All, Pids, Deadline) ->
    case until(Deadline) of
        true ->
            Rest = slice(Pids, erlang:monotonic_time(nanosecond) + 500000),
            erlang:bump_reductions(4000),
            erlang:yield(),
            slices(All, Rest, Deadline);
        false -> ok
    end.

slice([], _End) -> [];
slice([P | Pids], End) ->
    _ = erlang:process_info(P, message_queue_len),
    case erlang:monotonic_time(nanosecond) > End of
        true -> Pids;
        false -> slice(Pids, End)
    end.

passes(Keys) ->
    fun(prepare) -> none;
       ({_, Deadline}) -> passes(Keys, Deadline)
    end.

passes(Keys, Deadline) ->
    case until(Deadline) of
        true -> _ = beamprof_scan:local_top(Keys, 10, #{}), passes(Keys, Deadline);
        false -> ok
    end.
