%% Common Test suite of the C core (beamprof_nif) in a real VM: every NIF's
%% happy path, the sampler's lifecycle, the load gate under real load, and
%% module reload/purge leaving nothing behind.
-module(beamprof_nif_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([gate_default_open/1, gate_info_shape/1, memory_reading/1,
         sched_cpu_lists_schedulers/1, sched_cpu_grows_under_load/1,
         sampler_info_shape/1, history_records/1, report_utilization_values/1,
         start_badarg/1, start_invalid_marks/1, start_stop_restart/1,
         reconfigure_in_place/1, stop_when_closed_notifies/1,
         light_load_never_closes/1, starvation_closes_gate/1, busy_demand_asks_erlang/1,
         memory_gate_closes/1, reload_leaves_nothing/1,
         upgrade_across_library_files/1, gate_cost/1,
         sampler_thread_named/1]).

-define(NIF, beamprof_nif).

all() ->
    [{group, readings}, {group, sampler}, {group, gate}, reload_leaves_nothing,
     upgrade_across_library_files, gate_cost].

groups() ->
    [{readings, [], [gate_default_open, gate_info_shape, memory_reading,
                     sched_cpu_lists_schedulers, sched_cpu_grows_under_load,
                     sampler_info_shape, report_utilization_values]},
     {sampler, [], [start_badarg, start_invalid_marks, start_stop_restart,
                    reconfigure_in_place, history_records,
                    stop_when_closed_notifies, sampler_thread_named]},
     {gate, [], [light_load_never_closes, starvation_closes_gate,
                 busy_demand_asks_erlang, memory_gate_closes]}].

init_per_suite(Config) ->
    %% Load eagerly: a failing on_load raced by several processes can block
    %% them forever on OTP 25 (erlang/otp#7466).
    {module, ?NIF} = code:ensure_loaded(?NIF),
    Config.

end_per_suite(_Config) ->
    ok = ?NIF:sampler_stop().

init_per_testcase(_Case, Config) ->
    ok = ?NIF:sampler_stop(),
    flush(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = ?NIF:sampler_stop(),
    flush(),
    ok.

%%--------------------------------------------------------------------
%% Helpers

config() ->
    #{tick_ms => 100, scheduler_high => 0.80, scheduler_low => 0.60,
      memory_high => 0.90, memory_low => 0.85, reopen_ticks => 3,
      memory_limit => 0}.

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% Polls Fun every 10 ms until it returns true or Timeout ms pass.
wait_until(Fun, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    wait_until_loop(Fun, Deadline).

wait_until_loop(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> receive after 10 -> ok end, wait_until_loop(Fun, Deadline)
            end
    end.

%% A stand-in for the Erlang sampler: reports Ratio every Interval ms at
%% normal priority.
start_reporter(Ratio, Interval) ->
    spawn_link(fun() -> reporter_loop(Ratio, Interval) end).

reporter_loop(Ratio, Interval) ->
    _ = ?NIF:report_utilization(Ratio),
    receive stop -> ok after Interval -> reporter_loop(Ratio, Interval) end.

stop_proc(Pid) ->
    unlink(Pid),
    exit(Pid, kill),
    ok.

busy_until(End) ->
    case erlang:monotonic_time(millisecond) >= End of
        true -> ok;
        false -> busy_until(End)
    end.

%% Threads of this OS process, not counting the core's reaper threads (one
%% per library image loaded, from load to unload: reaper_count/0).
task_count() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    length(Tasks) - reaper_count().

reaper_count() ->
    length([N || N <- thread_names(), N =:= <<"beamprof_reaper">>]).

fd_count() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    length(Fds).

thread_names() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    [string:trim(B) || T <- Tasks,
                       {ok, B} <- [file:read_file("/proc/self/task/" ++ T ++ "/comm")]].

is_ratio(R) -> is_float(R) andalso R >= 0.0 andalso R =< 1.0.

%%--------------------------------------------------------------------
%% Readings

gate_default_open(_Config) ->
    open = ?NIF:gate(),
    #{state := open, running := false, reason := not_running, blind := false} =
        ?NIF:gate_info().

gate_info_shape(_Config) ->
    #{state := S, reason := R, source := Src, running := Run, changed_at := At} =
        ?NIF:gate_info(),
    true = lists:member(S, [open, closed]),
    true = R =:= none orelse R =:= not_running orelse element(1, R) =:= scheduler
        orelse element(1, R) =:= memory,
    true = lists:member(Src, [erlang, os_cpu, starved, none]),
    true = is_boolean(Run),
    true = is_integer(At),
    %% changed_at is on the Erlang monotonic clock
    ?assert(At =< erlang:monotonic_time(nanosecond)).

memory_reading(_Config) ->
    #{rss := Rss, limit := Limit, limit_source := Src, ratio := Ratio,
      mem_total := Total, mem_available := Avail} = ?NIF:memory(),
    ?assert(Rss > 0),
    ?assert(Total > 0),
    ?assert(Avail > 0 andalso Avail =< Total),
    ?assert(Limit > 0 andalso Limit =< Total),
    ?assert(is_ratio(Ratio)),
    true = lists:member(Src, [cgroup_v2, cgroup_v1, machine]),
    %% RSS as the VM sees it (within a factor: the kernel counts shared pages)
    ?assert(Rss > erlang:memory(total) div 4),
    ct:log("memory: ~p", [?NIF:memory()]).

sched_cpu_lists_schedulers(_Config) ->
    {Mono, Rows} = ?NIF:sched_cpu(),
    ?assert(is_integer(Mono)),
    ?assert(abs(erlang:monotonic_time(nanosecond) - Mono) < 1000000000),
    Of = fun(Type) -> [I || {T, I, _} <- Rows, T =:= Type] end,
    N = erlang:system_info(schedulers),
    ?assertEqual(lists:seq(1, N), Of(normal)),
    ?assertEqual(lists:seq(1, erlang:system_info(dirty_cpu_schedulers)), Of(dirty_cpu)),
    ?assertEqual(lists:seq(1, erlang:system_info(dirty_io_schedulers)), Of(dirty_io)),
    %% sorted by type then index
    Order = fun(normal) -> 0; (dirty_cpu) -> 1; (dirty_io) -> 2 end,
    Keys = [{Order(T), I} || {T, I, _} <- Rows],
    ?assertEqual(lists:sort(Keys), Keys),
    [true = is_integer(C) andalso C >= 0 || {_, _, C} <- Rows].

sched_cpu_grows_under_load(_Config) ->
    Sum = fun() -> {_, Rows} = ?NIF:sched_cpu(),
                   lists:sum([C || {normal, _, C} <- Rows]) end,
    Before = Sum(),
    End = erlang:monotonic_time(millisecond) + 500,
    Pids = [spawn_link(fun() -> busy_until(End) end)
            || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    [begin Ref = monitor(process, P), receive {'DOWN', Ref, _, _, _} -> ok end end
     || P <- Pids],
    Delta = Sum() - Before,
    ct:log("normal scheduler CPU during 500 ms of busy loops: ~p ms", [Delta div 1000000]),
    ?assert(Delta > 100000000).

sampler_info_shape(_Config) ->
    #{running := false, ticks := T, tick_ms := Tick, cpu_ns := Cpu,
      threads := Threads} = ?NIF:sampler_info(),
    ?assert(is_integer(T) andalso T >= 0),
    ?assert(is_integer(Tick) andalso Tick > 0),
    ?assert(is_integer(Cpu) andalso Cpu >= 0),
    ?assertEqual(erlang:system_info(schedulers) + erlang:system_info(dirty_cpu_schedulers)
                 + erlang:system_info(dirty_io_schedulers), Threads).

report_utilization_values(_Config) ->
    not_running = ?NIF:report_utilization(0.5),
    not_running = ?NIF:report_utilization(0),
    not_running = ?NIF:report_utilization(1),
    not_running = ?NIF:report_utilization(1.0),
    not_running = ?NIF:report_utilization(0.0),
    [?assertError(badarg, ?NIF:report_utilization(Bad))
     || Bad <- [-0.1, 1.01, 2, -1, foo, "0.5", <<>>, 1 bsl 70]],
    ok = ?NIF:sampler_start(config(), self()),
    ok = ?NIF:report_utilization(0.25).

%%--------------------------------------------------------------------
%% Sampler lifecycle

start_badarg(_Config) ->
    C = config(),
    Bad = [maps:remove(K, C) || K <- maps:keys(C)] ++
          [C#{tick_ms := 0}, C#{tick_ms := 60001}, C#{tick_ms := 1.0},
           C#{scheduler_high := 1}, C#{scheduler_high := 0.0},
           C#{scheduler_high := 1.5}, C#{memory_low := -0.5},
           C#{reopen_ticks := 0}, C#{reopen_ticks := 1.0},
           C#{memory_limit := -1}, C#{memory_limit := 1 bsl 64},
           C#{memory_limit := foo},
           C#{heartbeat_ms => 9}, C#{heartbeat_ms => 3600001}, C#{heartbeat_ms => 1.0},
           C#{test_hide_threads => yes}],
    [?assertError(badarg, ?NIF:sampler_start(B, self())) || B <- Bad],
    ?assertError(badarg, ?NIF:sampler_start(C, not_a_pid)),
    ?assertError(badarg, ?NIF:sampler_start([], self())),
    %% extra keys are ignored
    ok = ?NIF:sampler_start(C#{extra => 1}, self()),
    ok.

start_invalid_marks(_Config) ->
    C = config(),
    {error, {invalid, scheduler_low}} =
        ?NIF:sampler_start(C#{scheduler_low := 0.8}, self()),
    {error, {invalid, memory_low}} =
        ?NIF:sampler_start(C#{memory_low := 0.95}, self()),
    #{running := false} = ?NIF:sampler_info().

start_stop_restart(_Config) ->
    Base = task_count(),
    ok = ?NIF:sampler_start(config(), self()),
    #{running := true} = ?NIF:sampler_info(),
    ?assertEqual(Base + 1, task_count()),
    ok = wait_until(fun() -> maps:get(ticks, ?NIF:sampler_info()) >= 3 end, 5000),
    ok = ?NIF:sampler_stop(),
    ok = ?NIF:sampler_stop(),
    #{running := false, ticks := T1} = ?NIF:sampler_info(),
    ?assertEqual(Base, task_count()),
    timer:sleep(250),
    #{ticks := T1} = ?NIF:sampler_info(),
    ok = ?NIF:sampler_start(config(), self()),
    ok = wait_until(fun() -> maps:get(ticks, ?NIF:sampler_info()) > T1 end, 5000),
    ok = ?NIF:sampler_stop(),
    %% stop is prompt even with a long tick
    ok = ?NIF:sampler_start((config())#{tick_ms := 60000}, self()),
    {Us, ok} = timer:tc(?NIF, sampler_stop, []),
    ct:log("stop with a 60 s tick took ~p us", [Us]),
    ?assert(Us < 1000000).

reconfigure_in_place(_Config) ->
    Base = task_count(),
    ok = ?NIF:sampler_start(config(), self()),
    ok = ?NIF:sampler_start((config())#{tick_ms := 20}, self()),
    ?assertEqual(Base + 1, task_count()),
    #{running := true, tick_ms := 20, ticks := T0} = ?NIF:sampler_info(),
    timer:sleep(500),
    #{ticks := T1} = ?NIF:sampler_info(),
    ct:log("ticks in 500 ms at 20 ms: ~p", [T1 - T0]),
    ?assert(T1 - T0 >= 10),
    %% reconfiguring more often than the tick never starves the ticks
    ok = ?NIF:sampler_start(config(), self()),
    #{ticks := T2} = ?NIF:sampler_info(),
    [begin ok = ?NIF:sampler_start(config(), self()), timer:sleep(10) end
     || _ <- lists:seq(1, 60)],
    #{ticks := T3, tick_ms := 100} = ?NIF:sampler_info(),
    ct:log("ticks in ~~600 ms of reconfiguring every 10 ms at 100 ms: ~p", [T3 - T2]),
    ?assert(T3 - T2 >= 3).

history_records(_Config) ->
    Reporter = start_reporter(0.05, 20),
    Start = erlang:monotonic_time(nanosecond),
    #{ticks := T0} = ?NIF:sampler_info(),
    #{pings := P0} = ?NIF:gate_info(),
    ok = ?NIF:sampler_start((config())#{tick_ms := 20}, self()),
    ok = wait_until(fun() -> maps:get(ticks, ?NIF:sampler_info()) >= T0 + 10 end, 5000),
    All = ?NIF:history(),
    #{pings := P1} = ?NIF:gate_info(),
    stop_proc(Reporter),
    %% the ring keeps earlier runs' records: look at this run's
    H = [E || E <- All, element(1, E) > Start],
    ?assert(length(H) >= 10),
    ?assert(length(H) =< 600),
    [{M1, _, _, _, _, _, _, _, _}, {M2, _, _, _, _, _, _, _, _} | _] = H,
    ?assert(M1 > M2),
    Now = erlang:monotonic_time(nanosecond),
    [begin
         ?assert(is_integer(Mono) andalso Mono =< Now andalso Now - Mono < 60000000000),
         ?assert(is_ratio(S) orelse S =:= -1.0),
         true = lists:member(Src, [erlang, os_cpu, starved, none]),
         ?assert(is_ratio(Os)),
         ?assert(is_ratio(D) andalso D >= Os),
         ?assert(is_integer(Used) andalso Used >= 0),
         ?assert(is_integer(Limit) andalso Limit > 0),
         ?assert(is_float(MR) andalso MR >= 0.0),
         true = lists:member(G, [open, closed])
     end || {Mono, S, Src, Os, Used, Limit, MR, G, D} <- H],
    %% below the mark nobody is asked before the first heartbeat (1 s: the
    %% ten ticks take 200 ms); the figure is demand, or the reporter's fresh
    %% 0.05 where that is higher (source erlang). A loaded host can push
    %% demand (CPU plus run-queue wait) to the mark: then a ping, and the
    %% figure is unknown until answered (none, -1.0) or the answer (erlang).
    AtMark = [E || {_, _, _, _, _, _, _, _, D} = E <- H, D >= 0.8],
    ?assert(AtMark =/= [] orelse P1 - P0 =< 1),
    ?assert(lists:all(fun({_, S, os_cpu, _, _, _, _, _, D}) -> S == D;
                         ({_, S, erlang, _, _, _, _, _, D}) -> S == 0.05 andalso
                                                                  (D < 0.05 orelse D >= 0.8);
                         ({_, S, none, _, _, _, _, _, D}) -> S == -1.0 andalso D >= 0.8;
                         (_) -> false
                      end, H)).

stop_when_closed_notifies(_Config) ->
    %% A memory limit of one byte closes the gate at the first tick.
    ok = ?NIF:sampler_start((config())#{memory_limit := 1}, self()),
    receive {beamprof_gate, closed, {memory, R}, T} when is_integer(T) -> ?assert(R > 1.0)
    after 5000 -> ct:fail(no_close_message)
    end,
    closed = ?NIF:gate(),
    ok = ?NIF:sampler_stop(),
    open = ?NIF:gate(),
    receive {beamprof_gate, open, none, _} -> ok
    after 1000 -> ct:fail(no_open_message)
    end,
    #{state := open, running := false} = ?NIF:gate_info().

sampler_thread_named(_Config) ->
    ok = ?NIF:sampler_start(config(), self()),
    Names = thread_names(),
    ct:log("threads: ~p", [Names]),
    ?assert(lists:member(<<"beamprof_sampl">>, Names)),
    %% our thread is never taken for a scheduler
    {_, Rows} = ?NIF:sched_cpu(),
    ?assertEqual(erlang:system_info(schedulers),
                 length([x || {normal, _, _} <- Rows])).

%%--------------------------------------------------------------------
%% The gate under load

light_load_never_closes(_Config) ->
    Reporter = start_reporter(0.05, 100),
    ok = ?NIF:sampler_start(config(), self()),
    End = erlang:monotonic_time(millisecond) + 2000,
    Seen = poll_gate(End, []),
    stop_proc(Reporter),
    ?assertEqual([open], lists:usort(Seen)),
    receive {beamprof_gate, _, _, _} = M -> ct:fail({unexpected, M}) after 0 -> ok end,
    H = ?NIF:history(),
    ?assert(length(H) >= 10),
    ct:log("sources: ~p", [lists:usort([element(3, E) || E <- H])]).

poll_gate(End, Acc) ->
    case erlang:monotonic_time(millisecond) >= End of
        true -> Acc;
        false -> receive after 20 -> ok end, poll_gate(End, [?NIF:gate() | Acc])
    end.

starvation_closes_gate(_Config) ->
    Reporter = start_reporter(0.05, 100),
    #{ticks := Ticks} = ?NIF:sampler_info(),
    ok = ?NIF:sampler_start(config(), self()),
    ok = wait_until(fun() -> maps:get(ticks, ?NIF:sampler_info()) >= Ticks + 2 end, 5000),
    open = ?NIF:gate(),
    process_flag(priority, max),
    HogMs = 3000,
    End = erlang:monotonic_time(millisecond) + HogMs,
    T0 = erlang:monotonic_time(millisecond),
    Hogs = [spawn_opt(fun() -> busy_until(End) end, [{priority, high}, monitor])
            || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Closed = wait_until(fun() -> ?NIF:gate() =:= closed end, HogMs),
    T1 = erlang:monotonic_time(millisecond),
    Info = ?NIF:gate_info(),
    Hist = ?NIF:history(),
    [receive {'DOWN', Ref, process, _, _} -> ok end || {_, Ref} <- Hogs],
    process_flag(priority, normal),
    ct:log("closed after ~p ms: ~p~nhistory: ~p", [T1 - T0, Info, lists:sublist(Hist, 12)]),
    ok = Closed,
    #{state := closed, source := os_cpu, reason := {scheduler, R}} = Info,
    ?assert(R > 0.8),
    receive {beamprof_gate, closed, {scheduler, R2}, _} -> ?assert(R2 > 0.8)
    after 1000 -> ct:fail(no_close_message)
    end,
    %% After the load ends, the reporter is fresh again and the gate reopens.
    ok = wait_until(fun() -> ?NIF:gate() =:= open end, 5000),
    receive {beamprof_gate, open, none, _} -> ok
    after 1000 -> ct:fail(no_open_message)
    end,
    stop_proc(Reporter).

%% Normal-priority hogs keep the scheduler threads' demand at the top, as
%% busy-wait spinning would: the C thread cannot tell, so it pings. While
%% the pings get a low utilization answer the gate stays open (source
%% erlang); when they go unanswered for a tick, it closes on demand.
busy_demand_asks_erlang(_Config) ->
    Self = self(),
    process_flag(priority, high),
    Answerer = spawn_link(fun() -> process_flag(priority, max), answer_pings(Self) end),
    ok = ?NIF:sampler_start(config(), Answerer),
    End = erlang:monotonic_time(millisecond) + 4000,
    Hogs = [spawn_opt(fun() -> busy_until(End) end, [monitor])
            || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Pings = receive {pings, N} -> N after 5000 -> ct:fail(no_pings) end,
    Seen = poll_gate(erlang:monotonic_time(millisecond) + 1000, []),
    Sources = lists:usort([element(3, E) || E <- lists:sublist(?NIF:history(), 10)]),
    Answerer ! stop,
    Closed = wait_until(fun() -> ?NIF:gate() =:= closed end, 2000),
    Info = ?NIF:gate_info(),
    [receive {'DOWN', Ref, process, _, _} -> ok end || {_, Ref} <- Hogs],
    process_flag(priority, normal),
    ct:log("pings answered: ~p, gate seen ~p, sources ~p, then ~p", [Pings, lists:usort(Seen), Sources, Info]),
    ?assert(Pings >= 5),
    ?assertEqual([open], lists:usort(Seen)),
    ?assert(lists:member(erlang, Sources)),
    ok = Closed,
    ?assertMatch(#{source := os_cpu, reason := {scheduler, _}}, Info).

%% Answers every ping with a low utilization; tells Owner after 10.
answer_pings(Owner) -> answer_pings(Owner, 0).

answer_pings(Owner, N) ->
    N =:= 10 andalso (Owner ! {pings, N}),
    receive
        {beamprof_gate_ping, T} when is_integer(T) ->
            ok = ?NIF:report_utilization(0.05),
            answer_pings(Owner, N + 1);
        stop -> ok;
        _ -> answer_pings(Owner, N)
    end.

memory_gate_closes(_Config) ->
    Reporter = start_reporter(0.05, 100),
    #{rss := Rss} = ?NIF:memory(),
    Limit = trunc(Rss / 0.8),
    ok = ?NIF:sampler_start((config())#{memory_limit := Limit}, self()),
    ok = wait_until(fun() -> length(?NIF:history()) >= 2 end, 5000),
    open = ?NIF:gate(),
    #{limit := Limit, limit_source := option} = ?NIF:memory(),
    %% Touch enough memory to go well past the limit.
    Big = binary:copy(<<1>>, Limit div 2),
    Closed = wait_until(fun() -> ?NIF:gate() =:= closed end, 5000),
    Info = ?NIF:gate_info(),
    ct:log("rss ~p limit ~p: ~p", [Rss, Limit, Info]),
    ok = Closed,
    #{reason := {memory, R}} = Info,
    ?assert(R > 0.9),
    receive {beamprof_gate, closed, {memory, R2}, _} -> ?assert(R2 > 0.9)
    after 1000 -> ct:fail(no_close_message)
    end,
    _ = byte_size(Big),
    stop_proc(Reporter).

%%--------------------------------------------------------------------
%% Reload and purge

reload_leaves_nothing(_Config) ->
    ok = ?NIF:sampler_stop(),
    BaseTasks = task_count(),
    BaseFds = fd_count(),
    #{rss := Rss0} = ?NIF:memory(),
    ok = ?NIF:sampler_start(config(), self()),
    %% purge + delete + load: the upgrade path (old code holds the library)
    [reload_upgrade(BaseTasks) || _ <- lists:seq(1, 100)],
    #{running := true} = ?NIF:sampler_info(),
    %% load_file on a loaded module is an upgrade too; then purge the old
    [begin
         ok = purge(),
         {module, ?NIF} = load_nif_module(),
         ?assertEqual(BaseTasks + 1, task_count())
     end || _ <- lists:seq(1, 20)],
    %% purge + delete + purge + load: a fresh load (no thread carried)
    [reload_fresh(BaseTasks) || _ <- lists:seq(1, 20)],
    ok = purge(),
    ok = wait_until(fun() -> task_count() =:= BaseTasks end, 5000),
    ?assertEqual(1, reaper_count()),
    ?assertEqual(BaseFds, fd_count()),
    #{rss := Rss1} = ?NIF:memory(),
    ct:log("RSS before ~p after ~p reloads: ~p KB more", [Rss0, 140, (Rss1 - Rss0) div 1024]),
    %% the library still works
    ok = ?NIF:sampler_start(config(), self()),
    ok = wait_until(fun() -> maps:get(ticks, ?NIF:sampler_info()) >= 2 end, 5000),
    open = ?NIF:gate(),
    ok = ?NIF:sampler_stop(),
    ?assertEqual(BaseTasks, task_count()).

purge() ->
    _ = code:purge(?NIF),
    ok.

%% code:load_file/1, once more after a purge when it answers not_purged: under
%% heavy load a full CT run saw that once (old code not yet gone); logged, so a
%% repeat shows in the case's log.
load_nif_module() ->
    case code:load_file(?NIF) of
        {error, not_purged} ->
            ct:log("load_file: not_purged, purging and loading again"),
            ok = purge(),
            code:load_file(?NIF);
        Other ->
            Other
    end.

reload_upgrade(BaseTasks) ->
    ok = purge(),
    true = code:delete(?NIF),
    {module, ?NIF} = load_nif_module(),
    %% the new library took the thread over: still exactly one
    ?assertEqual(BaseTasks + 1, task_count()),
    #{running := true} = ?NIF:sampler_info().

reload_fresh(BaseTasks) ->
    ok = purge(),
    true = code:delete(?NIF),
    ok = purge(),
    %% the library's unload (which joins the thread) may run after purge
    %% returns: on OTP 27 a count of one more was seen right after it
    ok = wait_until(fun() -> task_count() =:= BaseTasks end, 5000),
    %% the unloaded library's reaper was joined too (no other image is loaded)
    ok = wait_until(fun() -> reaper_count() =:= 0 end, 5000),
    {module, ?NIF} = load_nif_module(),
    ?assertEqual(1, reaper_count()),
    #{running := false} = ?NIF:sampler_info(),
    open = ?NIF:gate().

%% Two copies of the library are different dlopen handles: each upgrade
%% then stops the old thread through the *old* library's stop function and
%% the new library's statics are its own.
upgrade_across_library_files(Config) ->
    Priv = ?config(priv_dir, Config),
    Orig = os:getenv("BEAMPROF_NIF"),
    Src = case Orig of
              false -> filename:join(code:priv_dir(beamprof), "beamprof_nif");
              Path -> Path
          end,
    Copies = [begin
                  Dir = filename:join(Priv, Name),
                  ok = filelib:ensure_dir(filename:join(Dir, "x")),
                  Base = filename:join(Dir, "beamprof_nif"),
                  {ok, _} = file:copy(Src ++ ".so", Base ++ ".so"),
                  Base
              end || Name <- ["a", "b"]],
    BaseTasks = task_count(),
    BaseFds = fd_count(),
    Reporter = start_reporter(0.05, 100),
    %% a closed gate must be carried over, not reopened and not re-sent
    ok = ?NIF:sampler_start((config())#{memory_limit := 1}, self()),
    receive {beamprof_gate, closed, {memory, _}, _} -> ok
    after 5000 -> ct:fail(no_close_message)
    end,
    try
        [begin
             true = os:putenv("BEAMPROF_NIF", Lib),
             ok = purge(),
             true = code:delete(?NIF),
             {module, ?NIF} = load_nif_module(),
             ?assertEqual(BaseTasks + 1, task_count()),
             #{running := true, state := closed} =
                 maps:merge(?NIF:sampler_info(), ?NIF:gate_info()),
             closed = ?NIF:gate()
         end || _ <- lists:seq(1, 10), Lib <- Copies],
        ok = purge(),
        %% The VM may unmap a purged library after the purge returns (seen on
        %% OTP 29, where the unload also joins the reaper thread): wait for it.
        Mapped = fun() ->
                         {ok, Maps} = file:read_file("/proc/self/maps"),
                         [C || C <- Copies, binary:match(Maps, list_to_binary(C)) =/= nomatch]
                 end,
        T0 = erlang:monotonic_time(millisecond),
        _ = wait_until(fun() -> length(Mapped()) =:= 1 end, 5000),
        Loaded = Mapped(),
        ct:log("copies mapped ~B ms after purge: ~p",
               [erlang:monotonic_time(millisecond) - T0, Loaded]),
        ?assertEqual(1, length(Loaded)),
        receive {beamprof_gate, _, _, _} = M -> ct:fail({unexpected, M}) after 300 -> ok end
    after
        case Orig of
            false -> os:unsetenv("BEAMPROF_NIF");
            _ -> os:putenv("BEAMPROF_NIF", Orig)
        end,
        stop_proc(Reporter)
    end,
    ok = purge(),
    true = code:delete(?NIF),
    {module, ?NIF} = load_nif_module(),
    ok = purge(),
    ok = ?NIF:sampler_stop(),
    ?assertEqual(BaseTasks, task_count()),
    ?assertEqual(1, reaper_count()),
    ?assertEqual(BaseFds, fd_count()).

%%--------------------------------------------------------------------
%% Cost (printed, never asserted)

gate_cost(_Config) ->
    N = 1000000,
    Loop = fun L(0) -> ok; L(I) -> _ = ?NIF:gate(), L(I - 1) end,
    Empty = fun L(0) -> ok; L(I) -> _ = erlang:self(), L(I - 1) end,
    {TG, _} = timer:tc(fun() -> Loop(N) end),
    {TE, _} = timer:tc(fun() -> Empty(N) end),
    ok = ?NIF:sampler_start((config())#{tick_ms := 10}, self()),
    #{cpu_ns := C0, ticks := K0} = ?NIF:sampler_info(),
    timer:sleep(1000),
    #{cpu_ns := C1, ticks := K1} = ?NIF:sampler_info(),
    PerTick = (C1 - C0) div max(1, K1 - K0),
    Msg = io_lib:format("gate/0: ~.1f ns per call (loop overhead ~.1f ns); "
                        "sampler thread: ~p ns CPU per tick over ~p ticks",
                        [TG * 1000 / N, TE * 1000 / N, PerTick, K1 - K0]),
    ct:log("~s", [Msg]),
    ct:comment("~s", [Msg]),
    %% one call of each reading NIF (median of 201, sampler running)
    Costs = [{F, median_us(fun() -> ?NIF:F() end)}
             || F <- [gate_info, sched_cpu, memory, history, sampler_info]],
    ct:log("median cost per call, us: ~p", [Costs]).

median_us(Fun) ->
    Ts = lists:sort([element(1, timer:tc(Fun)) || _ <- lists:seq(1, 201)]),
    lists:nth(101, Ts).
