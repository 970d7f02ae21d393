%% The application against a real VM: lifecycle, options, events, the
%% scheduler_wall_time flag, utilization against OTP's scheduler module,
%% busy-wait spinning, and the load gate under starvation and memory use.
-module(beamprof_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2, wait_events/2, start_peer/1]).

all() ->
    [start_stop, start_options_refused, start_when_running, start_when_running_env,
     handlers_before_start, handler_detached_before_start, handlers_kept_across_restart,
     handler_failure_printed_by_plain_erl, snapshot_shape, top_prints,
     sample_events, poller_events, poller_events_off, event_prefix,
     flag_left_as_found, flag_kept_for_others,
     utilization_agrees_with_scheduler_module, idle_utilization_near_zero,
     spinning_schedulers_show_os_cpu, gate_closes_when_starved,
     gate_closes_with_schedulers_offline,
     gate_closes_on_memory, sampler_survives_kill, thread_restarted_after_stop,
     scheduler_threads_all_seen, scheduler_threads_missing_reported,
     gate_not_running, blind_gate_closes_on_scheduler_wall_time,
     blind_gate_closes_when_starved, heartbeat_while_demand_reads_zero,
     gate_history_and_native_info].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = beamprof:stop(),
    ok = beamprof_ct:detach_all().

%% --- lifecycle and options ---------------------------------------------------

start_stop(_Config) ->
    ok = beamprof:start(),
    ok = beamprof:start(),
    ?assertMatch(#{running := true}, beamprof_nif:sampler_info()),
    ?assert(lists:member(beamprof:gate(), [open, closed])),
    ?assertEqual({error, {already_started, #{interval => #{running => 1000, asked => 100}}}},
                 beamprof:start(#{interval => 100})),
    ok = beamprof:stop(),
    ?assertMatch(#{running := false}, beamprof_nif:sampler_info()),
    ?assertEqual(open, beamprof:gate()),
    ?assertEqual({error, not_started}, beamprof:snapshot()),
    ok = beamprof:stop().

start_options_refused(_Config) ->
    ?assertError({badarg, "Unknown option nope" ++ _}, beamprof:start(#{nope => 1})),
    ?assertError({badarg, "Expected option interval" ++ _}, beamprof:start([{interval, -1}])),
    ?assertError({badarg, "Expected scheduler_low to be below scheduler_high"},
                 beamprof:start(#{scheduler_low => 0.9})),
    ?assertNot(lists:keymember(beamprof, 1, application:which_applications())).

%% On a running beamprof: start() is ok; start(Options) is ok when each option given has
%% the running value, else names each that differs; bad options raise badarg as before a
%% start (checked first, against what runs); nothing restarts.
start_when_running(_Config) ->
    Opts = #{interval => 500, tick => 50, system_monitor => #{long_gc => 20}},
    ok = beamprof:start(Opts),
    Sup = whereis(beamprof_sup),
    ok = beamprof:start(),
    ok = beamprof:start(Opts),
    ok = beamprof:start([{tick, 50}]),
    ok = beamprof:start(#{}),
    %% the defaults run where nothing was asked; system_monitor compares complete
    ok = beamprof:start(#{scan_interval => 10000, memory_limit => auto}),
    ok = beamprof:start(#{system_monitor => [{long_gc, 20}, {max_rate, 10}]}),
    ?assertEqual({error, {already_started, #{tick => #{running => 50, asked => 100}}}},
                 beamprof:start(#{tick => 100, interval => 500})),
    {error, {already_started, Diffs}} =
        beamprof:start([{interval, 1000}, {vm_events, false}, {system_monitor, false}]),
    ?assertEqual([interval, system_monitor, vm_events], lists:sort(maps:keys(Diffs))),
    ?assertEqual(#{running => 500, asked => 1000}, maps:get(interval, Diffs)),
    ?assertEqual(#{running => true, asked => false}, maps:get(vm_events, Diffs)),
    ?assertMatch(#{running := #{long_gc := 20, long_schedule := 100}, asked := false},
                 maps:get(system_monitor, Diffs)),
    %% validation first, running or not: each message names the option
    ?assertError({badarg, "Unknown option bogus" ++ _}, beamprof:start(#{bogus => 1})),
    ?assertError({badarg, "Expected option tick" ++ _}, beamprof:start(#{tick => 1})),
    ?assertError({badarg, "Expected options to be a map" ++ _}, beamprof:start(tick)),
    %% the marks are checked against the running ones
    ?assertError({badarg, "Expected scheduler_low to be below scheduler_high"},
                 beamprof:start(#{scheduler_low => 0.85})),
    ?assertEqual(Sup, whereis(beamprof_sup)),
    ok = beamprof:stop(),
    %% a later start(Options) starts with those options
    ok = beamprof:start(#{tick => 100}),
    ?assertMatch(#{tick_ms := 100}, beamprof_nif:sampler_info()),
    ok = beamprof:start(#{tick => 100}).

%% The application environment counts as what runs (mix starts beamprof as a
%% dependency with `config :beamprof'); start() clears earlier start options.
start_when_running_env(_Config) ->
    _ = application:load(beamprof),
    ok = application:set_env(beamprof, tick, 200),
    try
        ok = beamprof:start(#{interval => 300}),
        ok = beamprof:start(#{tick => 200, interval => 300}),
        ?assertEqual({error, {already_started, #{tick => #{running => 200, asked => 100}}}},
                     beamprof:start(#{tick => 100})),
        %% the marks: a scheduler_low valid over the environment's scheduler_high
        ok = beamprof:stop(),
        ok = application:set_env(beamprof, scheduler_high, 0.95),
        ok = beamprof:start(#{scheduler_low => 0.9}),
        ok = beamprof:start(#{scheduler_low => 0.9}),
        ok = beamprof:stop(),
        ok = beamprof:start(),
        ?assertEqual({error, {already_started, #{interval => #{running => 1000,
                                                               asked => 300}}}},
                     beamprof:start(#{interval => 300}))
    after
        application:unset_env(beamprof, tick),
        application:unset_env(beamprof, scheduler_high)
    end.

%% --- handlers before start -------------------------------------------------

forward(Event, Measurements, _Metadata, {Pid, Tag}) ->
    Pid ! {Tag, Event, Measurements}.

%% A handler attached before start is kept and installed when beamprof starts: the first
%% samples reach it.
handlers_before_start(_Config) ->
    ok = beamprof:stop(),
    Event = [beamprof, vm, sample],
    ok = beamprof:attach(early, Event, fun ?MODULE:forward/4, {self(), early}),
    ok = beamprof:attach_many(early_many, [Event, [beamprof, scheduler, utilization]],
                              fun ?MODULE:forward/4, {self(), early_many}),
    ?assertEqual({error, already_exists},
                 beamprof:attach(early, Event, fun ?MODULE:forward/4, nil)),
    ?assertEqual([early, early_many, early_many], ids(beamprof:list_handlers([]))),
    ok = beamprof:start(#{interval => 100}),
    receive {early, Event, #{}} -> ok after 10000 -> ct:fail(no_event) end,
    receive {early_many, Event, #{}} -> ok after 10000 -> ct:fail(no_event) end,
    ?assertEqual([early, early_many, early_many], ids(beamprof:list_handlers([]))).

%% Attached, then detached, before start: nothing arrives once beamprof runs (two
%% samples seen by a handler attached after the start).
handler_detached_before_start(_Config) ->
    Event = [beamprof, vm, sample],
    ok = beamprof:attach(gone, Event, fun ?MODULE:forward/4, {self(), gone}),
    ok = beamprof:detach(gone),
    ?assertEqual({error, not_found}, beamprof:detach(gone)),
    ok = beamprof:start(#{interval => 100}),
    wait_events(Event, 2),
    receive {gone, _, _} = Msg -> ct:fail({unexpected, Msg}) after 0 -> ok end,
    ?assertEqual([], beamprof:list_handlers([])).

%% Handlers stay attached across stop() and start(), and across a restart of the handler
%% table by its supervisor, until detached.
handlers_kept_across_restart(_Config) ->
    Event = [beamprof, vm, sample],
    ok = beamprof:start(#{interval => 100}),
    ok = beamprof:attach(kept, Event, fun ?MODULE:forward/4, {self(), kept}),
    ok = beamprof:stop(),
    ?assertEqual([kept], ids(beamprof:list_handlers([]))),
    ok = beamprof:start(#{interval => 100}),
    flush(kept),
    receive {kept, Event, _} -> ok after 10000 -> ct:fail(no_event) end,
    Table = whereis(beamprof_handlers),
    exit(Table, kill),
    wait_until(fun() -> not lists:member(whereis(beamprof_handlers), [undefined, Table]) end,
               10000),
    flush(kept),
    receive {kept, Event, _} -> ok after 10000 -> ct:fail(no_event_after_restart) end,
    ok = beamprof:detach(kept),
    ok = beamprof:stop(),
    ok = beamprof:start(#{interval => 100}),
    wait_events(Event, 2),
    flush(kept),
    ?assertEqual([], beamprof:list_handlers([])).

flush(Tag) ->
    receive {Tag, _, _} -> flush(Tag) after 0 -> ok end.

ids(Handlers) ->
    lists:sort([Id || #{id := Id} <- Handlers]).

%% A crashing handler's log line shows in a plain `erl' (OTP's default logger handler,
%% whose filters drop every domain but [otp] and [otp, sasl]): a VM of this release with
%% nothing configured attaches a crashing handler before start, starts beamprof, emits
%% once and stops; its standard output must hold the line.
handler_failure_printed_by_plain_erl(_Config) ->
    Erl = filename:join([code:root_dir(), "bin", "erl"]),
    Ebin = filename:dirname(code:which(beamprof)),
    Eval = "ok = beamprof:attach(crashing, [plain, erl], fun(_, _, _, _) -> error(boom) end, nil), "
           "ok = beamprof:start(), "
           "ok = beamprof_events:execute([plain, erl], #{}, #{}), "
           "[] = beamprof:list_handlers([]), "
           "io:format(\"emitted~n\"), "
           "init:stop().",
    Port = open_port({spawn_executable, Erl},
                     [{args, ["-noshell", "-pa", Ebin, "-eval", Eval]},
                      exit_status, stderr_to_stdout, binary]),
    Deadline = erlang:monotonic_time(millisecond) + 60000,
    {Status, Out} = port_output(Port, Deadline, []),
    ct:log("exit status ~p:~n~ts", [Status, Out]),
    ?assertEqual(0, Status),
    ?assertNotEqual(nomatch, string:find(Out, "emitted")),
    ?assertNotEqual(nomatch, string:find(Out, "=ERROR REPORT")),
    ?assertNotEqual(nomatch,
                    string:find(Out, "beamprof event handler crashing has failed and has "
                                     "been detached")),
    ?assertNotEqual(nomatch, string:find(Out, "Reason: boom")).

port_output(Port, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, Data}} -> port_output(Port, Deadline, [Acc, Data]);
        {Port, {exit_status, Status}} -> {Status, unicode:characters_to_list(Acc)}
    after Left ->
        port_close(Port),
        ct:fail({timeout, unicode:characters_to_list(Acc)})
    end.

snapshot_shape(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_events([beamprof, vm, sample], 1),
    S = beamprof:snapshot(),
    ?assertMatch(#{schedulers := [_ | _], utilization := #{normal := _, dirty_cpu := _,
                                                          dirty_io := _, total := _},
                   run_queues := #{total := _, cpu := _, io := _},
                   memory := #{erlang := #{total := _}, rss := _, limit := _, ratio := _,
                               limit_source := _, mem_total := _, mem_available := _},
                   system := #{process_count := _, process_limit := _, port_count := _,
                               port_limit := _, atom_count := _, atom_limit := _},
                   rates := #{reductions := _, gc := _, io_in := _, io_out := _},
                   gate := #{state := _, reason := _}, window_ms := _}, S),
    #{schedulers := Rows, memory := #{rss := Rss}, run_queues := #{total := T, cpu := C, io := IO}} = S,
    ?assert(IO >= 0 andalso C >= 0 andalso C + IO =:= T),
    Expected = erlang:system_info(schedulers) + erlang:system_info(dirty_cpu_schedulers)
        + erlang:system_info(dirty_io_schedulers),
    ?assertEqual(Expected, length(Rows)),
    [?assert(is_float(Os) andalso Os >= 0.0 andalso Os =< 1.0) || #{os_cpu := Os} <- Rows],
    ?assert(Rss > 10 * 1024 * 1024),
    ?assert(maps:get(window_ms, S) > 100).

%% The screen's text is checked in beamprof_top_SUITE.
top_prints(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_events([beamprof, vm, sample], 1),
    ok = beamprof:top().

sample_events(_Config) ->
    ok = beamprof:start(#{interval => 100}),
    [{_, M, Meta} | _] = wait_events([beamprof, vm, sample], 3),
    [?assert(is_number(maps:get(K, M)))
     || K <- [utilization, os_cpu, run_queue, run_queue_cpu, run_queue_io, memory_total,
              memory_processes, memory_binary, memory_ets, rss, memory_limit, memory_ratio,
              process_count, port_count, atom_count, reductions_per_second, gc_per_second,
              io_in_bytes_per_second, io_out_bytes_per_second, gate_closed]],
    ?assertMatch(#{node := _, gate := _, memory_limit_source := _}, Meta),
    [{_, U, UMeta} | _] = wait_events([beamprof, scheduler, utilization], 1),
    ?assertMatch(#{normal := _, dirty_cpu := _, dirty_io := _, total := _, os_cpu := _}, U),
    #{schedulers := [#{id := 1, type := normal, utilization := _, os_cpu := _} | _]} = UMeta.

poller_events(_Config) ->
    ok = beamprof:start(#{interval => 100}),
    [{_, Mem, _} | _] = wait_events([vm, memory], 1),
    ?assertEqual(lists:sort([K || {K, _} <- erlang:memory()]), lists:sort(maps:keys(Mem))),
    [{_, RQ, _} | _] = wait_events([vm, total_run_queue_lengths], 1),
    ?assertEqual([cpu, io, total], lists:sort(maps:keys(RQ))),
    [{_, Counts, _} | _] = wait_events([vm, system_counts], 1),
    ?assertEqual([atom_count, atom_limit, port_count, port_limit, process_count, process_limit],
                 lists:sort(maps:keys(Counts))).

poller_events_off(_Config) ->
    ok = beamprof:start(#{interval => 100, vm_events => false}),
    Self = self(),
    ok = beamprof:attach(vm_memory, [vm, memory], fun(_, _, _, _) -> Self ! vm_memory end, nil),
    wait_events([beamprof, vm, sample], 3),
    receive vm_memory -> ct:fail(vm_events_not_off) after 0 -> ok end.

event_prefix(_Config) ->
    ok = beamprof:start(#{interval => 100, event_prefix => [my, app]}),
    wait_events([my, app, vm, sample], 1),
    ok = beamprof:stop(),
    ok = beamprof:start(#{interval => 100}),
    wait_events([beamprof, vm, sample], 1).

%% --- the scheduler_wall_time flag ------------------------------------------

flag_left_as_found(_Config) ->
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ok = beamprof:start(),
    ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ok = beamprof:stop(),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

flag_kept_for_others(_Config) ->
    Self = self(),
    Other = spawn(fun() ->
                          erlang:system_flag(scheduler_wall_time, true),
                          Self ! enabled,
                          receive stop -> ok end
                  end),
    receive enabled -> ok end,
    ok = beamprof:start(),
    ok = beamprof:stop(),
    ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time)),
    Ref = monitor(process, Other),
    Other ! stop,
    receive {'DOWN', Ref, _, _, _} -> ok end,
    wait_until(fun() -> erlang:statistics(scheduler_wall_time) =:= undefined end, 5000).

%% --- utilization ---------------------------------------------------------------

%% The handler runs in the sampler right after its reading, so OTP's sample
%% taken there covers the same window to within microseconds.
utilization_agrees_with_scheduler_module(_Config) ->
    Hogs = hogs(erlang:system_info(schedulers_online), normal),
    try
        ok = beamprof:start(#{interval => 500}),
        Self = self(),
        ok = beamprof:attach(cmp, [beamprof, scheduler, utilization],
                             fun(_, M, Meta, _) -> Self ! {util, M, Meta, scheduler:sample_all()} end,
                             nil),
        [First | Rest] = collect_util(4),
        compare(First, Rest)
    after
        [exit(H, kill) || H <- Hogs]
    end.

collect_util(N) ->
    [receive {util, M, Meta, S} -> {M, Meta, S} after 10000 -> ct:fail(no_utilization_event) end
     || _ <- lists:seq(1, N)].

compare(_, []) -> ok;
compare({_, _, S0}, [{M, Meta, S1} = Next | Rest]) ->
    Otp = scheduler:utilization(S0, S1),
    {total, OtpTotal, _} = lists:keyfind(total, 1, Otp),
    ct:log("beamprof total ~.4f normal ~.4f; OTP total ~.4f", [maps:get(total, M), maps:get(normal, M), OtpTotal]),
    ?assert(abs(maps:get(total, M) - OtpTotal) =< 0.02),
    ?assert(maps:get(normal, M) > 0.5),
    [?assert(abs(U - otp_util(Type, Id, Otp)) =< 0.02)
     || #{id := Id, type := Type, utilization := U} <- maps:get(schedulers, Meta)],
    compare(Next, Rest).

otp_util(normal, Id, Otp) -> element(3, lists:keyfind(Id, 2, [T || {normal, _, _, _} = T <- Otp]));
otp_util(dirty_cpu, Id, Otp) -> element(3, lists:keyfind(Id, 2, [T || {cpu, _, _, _} = T <- Otp]));
otp_util(dirty_io, Id, Otp) -> element(3, lists:keyfind(Id, 2, [T || {io, _, _, _} = T <- Otp])).

idle_utilization_near_zero(_Config) ->
    ok = beamprof:start(#{interval => 300}),
    Events = wait_events([beamprof, scheduler, utilization], 3),
    Lowest = lists:min([maps:get(normal, M) || {_, M, _} <- Events]),
    ct:log("idle normal utilization: ~p", [[maps:get(normal, M) || {_, M, _} <- Events]]),
    ?assert(Lowest < 0.1).

%% A node whose schedulers busy-wait a long time after each short burst of
%% work (+sbwt very_long, woken often by 40 ping-pong pairs each pausing
%% 1 ms): the OS CPU of the scheduler threads is high, scheduler_wall_time
%% utilization stays low, and the gate (fed by the Erlang side) stays open.
%% Measured here: utilization 0.03-0.07 against OS CPU 0.38-0.49 (OTP 25).
%% No +swt very_low: with it, OTP 29.1's scheduler_wall_time read 0.65-0.86
%% on this workload while the threads' OS CPU was 0.13-0.23 (3 of 6 runs).
spinning_schedulers_show_os_cpu(_Config) ->
    {ok, Peer, _Node} = start_peer(#{args => ["+sbwt", "very_long"]}),
    try
        ok = peer:call(Peer, beamprof, start, [#{interval => 1000}]),
        ok = peer:call(Peer, ?MODULE, start_pairs, [40]),
        Snaps = [begin timer:sleep(1100), peer:call(Peer, beamprof, snapshot, []) end
                 || _ <- lists:seq(1, 3)],
        #{utilization := #{normal := U, os_cpu := Os}, gate := Gate} = lists:last(Snaps),
        ct:log("spinning node: utilization ~.3f, os cpu ~.3f, gate ~p", [U, Os, Gate]),
        ?assert(U < 0.3),
        ?assert(Os > U + 0.1),
        ?assertEqual(open, peer:call(Peer, beamprof, gate, []))
    after
        peer:stop(Peer)
    end.

%% N pairs: a sender that pauses 1 ms, then a round trip to its echo.
start_pairs(N) ->
    lists:foreach(fun(_) ->
                          Echo = spawn(fun Echo() -> receive {P, x} -> P ! y, Echo() end end),
                          spawn(fun Send() ->
                                        receive after 1 -> ok end,
                                        Echo ! {self(), x},
                                        receive y -> ok end,
                                        Send()
                                end)
                  end, lists:seq(1, N)).

%% --- the gate ------------------------------------------------------------------

%% High-priority hogs on every scheduler starve the normal-priority sampler
%% process: its reports stop, and the C thread closes the gate from the
%% scheduler threads' CPU clocks. This process runs at max priority to watch.
gate_closes_when_starved(_Config) ->
    ok = beamprof:start(#{interval => 1000, tick => 100}),
    Self = self(),
    ok = beamprof:attach_many(gate, [[beamprof, gate, closed], [beamprof, gate, open]],
                         fun(E, M, Meta, _) -> Self ! {E, M, Meta} end, nil),
    Ticks = maps:get(ticks, beamprof_nif:sampler_info()),
    wait_until(fun() -> maps:get(ticks, beamprof_nif:sampler_info()) >= Ticks + 2 end, 5000),
    Old = process_flag(priority, max),
    Hogs = hogs(erlang:system_info(schedulers_online), high),
    T0 = erlang:monotonic_time(millisecond),
    try
        wait_until(fun() -> beamprof:gate() =:= closed end, 3000),
        Elapsed = erlang:monotonic_time(millisecond) - T0,
        Info = beamprof:gate_info(),
        ct:log("closed after ~B ms: ~p", [Elapsed, Info]),
        ?assertMatch(#{state := closed, reason := {scheduler, _}, source := os_cpu}, Info)
    after
        [exit(H, kill) || H <- Hogs],
        process_flag(priority, Old)
    end,
    receive {[beamprof, gate, closed], #{ratio := R}, #{reason := {scheduler, R}, kind := scheduler}} ->
            ?assert(R > 0.8)
    after 5000 -> ct:fail(no_closed_event)
    end,
    wait_until(fun() -> beamprof:gate() =:= open end, 10000),
    receive {[beamprof, gate, open], #{duration := D}, #{closed_reason := {scheduler, _}}} ->
            ?assert(D > 0)
    after 5000 -> ct:fail(no_open_event)
    end.

%% With one scheduler online (taken offline after start: the sampler tells
%% the C thread at its next interval), a single high-priority hog saturates
%% the node; the offline scheduler's sleeping thread must not halve demand.
gate_closes_with_schedulers_offline(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    Online = erlang:system_flag(schedulers_online, 1),
    try
        wait_events([beamprof, vm, sample], 2),
        Old = process_flag(priority, max),
        [Hog] = hogs(1, high),
        try
            wait_until(fun() -> beamprof:gate() =:= closed end, 3000),
            ?assertMatch(#{reason := {scheduler, _}, source := os_cpu}, beamprof:gate_info())
        after
            exit(Hog, kill),
            process_flag(priority, Old)
        end
    after
        erlang:system_flag(schedulers_online, Online)
    end.

gate_closes_on_memory(_Config) ->
    #{rss := Rss} = beamprof_nif:memory(),
    Limit = Rss + 64 * 1024 * 1024,
    ok = beamprof:start(#{memory_limit => Limit}),
    ?assertMatch(#{limit := Limit, limit_source := option}, beamprof_nif:memory()),
    timer:sleep(300), % three ticks with the small heap: the gate must stay open
    ?assertEqual(open, beamprof:gate()),
    Holder = beamprof_ct:hold_binary(96 * 1024 * 1024),
    try
        wait_until(fun() -> beamprof:gate() =:= closed end, 5000),
        #{reason := {memory, R}} = beamprof:gate_info(),
        ?assert(R > 0.9)
    after
        Holder ! stop
    end.

%% --- self-healing ----------------------------------------------------------------

sampler_survives_kill(_Config) ->
    ok = beamprof:start(#{interval => 100}),
    Old = whereis(beamprof_sampler),
    exit(Old, kill),
    wait_until(fun() -> is_pid(whereis(beamprof_sampler)) andalso whereis(beamprof_sampler) =/= Old end, 5000),
    wait_events([beamprof, vm, sample], 1),
    ?assertMatch(#{running := true}, beamprof_nif:sampler_info()).

thread_restarted_after_stop(_Config) ->
    ok = beamprof:start(#{interval => 100}),
    ok = beamprof_nif:sampler_stop(),
    wait_until(fun() -> maps:get(running, beamprof_nif:sampler_info()) end, 5000).

%% --- helpers -----------------------------------------------------------------------

hogs(N, Priority) ->
    [spawn(fun() -> process_flag(priority, Priority), spin(0) end) || _ <- lists:seq(1, N)].

spin(N) -> spin(N + 1).

%% --- scheduler threads against erlang:system_info/1 -------------------------------

%% On this release the C side finds every scheduler thread by its name (OTP
%% 25: 1_scheduler, 26+: erts_sched_1, ...): nothing to warn about in the
%% snapshot, the events or the screen.
scheduler_threads_all_seen(_Config) ->
    ?assertEqual(#{normal => erlang:system_info(schedulers),
                   dirty_cpu => erlang:system_info(dirty_cpu_schedulers),
                   dirty_io => erlang:system_info(dirty_io_schedulers)},
                 beamprof_vm:thread_counts()),
    ok = beamprof:start(#{interval => 100}),
    [{_, _, Meta} | _] = wait_events([beamprof, vm, sample], 1),
    ?assertEqual([], maps:get(warnings, Meta)),
    [{_, _, UMeta} | _] = wait_events([beamprof, scheduler, utilization], 1),
    ?assertEqual([], maps:get(warnings, UMeta)),
    ?assertMatch(#{warnings := []}, beamprof:snapshot()).

%% A peer whose scheduler threads the C side cannot all find: every dirty
%% CPU scheduler thread and one dirty IO one renamed before the library
%% loads. The snapshot, both sampler events and top()'s header carry the
%% warnings, and each is logged once over several samples.
scheduler_threads_missing_reported(_Config) ->
    {ok, Peer, _Node} = start_peer(#{}),
    try
        #{counts := Counts, expected := Expected, snapshot := Snap, sample := Meta,
          utilization := UMeta, screen := Screen, logs := Logs} =
            peer:call(Peer, ?MODULE, missing_threads, [], 60000),
        ct:log("counts ~p, expected ~p~nwarnings ~p~nlogs ~p~n~ts",
               [Counts, Expected, Snap, Logs, Screen]),
        #{dirty_cpu := DC, dirty_io := DIO} = Expected,
        ?assertEqual(Expected#{dirty_cpu := 0, dirty_io := DIO - 1}, Counts),
        ?assertMatch([#{code := scheduler_threads_unseen}, #{code := scheduler_threads_mismatch}],
                     Snap),
        [#{message := Unseen}, #{message := Mismatch}] = Snap,
        ?assertEqual(iolist_to_binary(io_lib:format(
                                        "found no dirty_cpu scheduler thread, the VM says ~B; "
                                        "their OS CPU is not measured", [DC])), Unseen),
        ?assertEqual(iolist_to_binary(io_lib:format(
                                        "found ~B dirty_io scheduler threads, the VM says ~B; "
                                        "their OS CPU is partial", [DIO - 1, DIO])), Mismatch),
        ?assertEqual(Snap, Meta),
        ?assertEqual(Snap, UMeta),
        %% top() wraps a long warning onto indented lines (80 columns): joined again
        Joined = re:replace(Screen, "\n +", " ", [global, unicode, {return, binary}]),
        ?assertNotEqual(nomatch, string:find(Joined, ["warning    ", Unseen])),
        ?assertNotEqual(nomatch, string:find(Joined, ["warning    ", Mismatch])),
        ?assertEqual(lists:sort([<<"beamprof: ", Unseen/binary>>,
                                 <<"beamprof: ", Mismatch/binary>>]), lists:sort(Logs))
    after
        peer:stop(Peer)
    end.

%% Runs on the peer: renames the threads, starts beamprof, waits for three
%% samples, and returns what each place says.
missing_threads() ->
    Threads = [{Tid, Name} || Tid <- element(2, file:list_dir("/proc/self/task")),
                              {ok, Name} <- [file:read_file(comm(Tid))]],
    DirtyCpu = [T || {T, N} <- Threads, kind(N) =:= dirty_cpu],
    [DirtyIo | _] = [T || {T, N} <- Threads, kind(N) =:= dirty_io],
    [ok = file:write_file(comm(T), <<"renamed">>) || T <- [DirtyIo | DirtyCpu]],
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    ok = logger:add_handler(bp_threads_log, ?MODULE, #{config => #{pid => self()}}),
    ok = beamprof:start(#{interval => 100}),
    [{_, _, Meta} | _] = wait_events([beamprof, vm, sample], 3),
    [{_, _, UMeta} | _] = wait_events([beamprof, scheduler, utilization], 1),
    Snapshot = beamprof:snapshot(),
    %% wide: each warning on one line (at 80 columns they wrap)
    Screen = beamprof_top:render(Snapshot, beamprof_scan:top_all(3), #{width => 200}),
    ok = beamprof:stop(),
    ok = logger:remove_handler(bp_threads_log),
    #{counts => beamprof_vm:thread_counts(), expected => beamprof_vm:expected_threads(),
      snapshot => maps:get(warnings, Snapshot), sample => maps:get(warnings, Meta),
      utilization => maps:get(warnings, UMeta), screen => unicode:characters_to_list(Screen),
      logs => logs()}.

comm(Tid) -> "/proc/self/task/" ++ Tid ++ "/comm".

%% OTP 25: "1_dirty_cpu_sch"; 26+: "erts_dcpus_1".
kind(Name) ->
    case {binary:match(Name, [<<"dirty_cpu">>, <<"erts_dcpus">>]),
          binary:match(Name, [<<"dirty_io">>, <<"erts_dios">>])} of
        {nomatch, nomatch} -> other;
        {nomatch, _} -> dirty_io;
        _ -> dirty_cpu
    end.

logs() ->
    receive {bp_log, Text} -> [Text | logs()] after 0 -> [] end.

%% A logger handler (on the peer): beamprof's log lines, as text, to pid.
log(#{msg := {Format, Args}}, #{config := #{pid := Pid}}) when is_list(Format) ->
    Text = unicode:characters_to_binary(io_lib:format(Format, Args)),
    case Text of
        <<"beamprof: ", _/binary>> -> Pid ! {bp_log, Text};
        _ -> ok
    end;
log(_Event, _Config) ->
    ok.

%% --- the blind gate and the heartbeat ------------------------------------------------

%% Not running: the gate reads open and says why.
gate_not_running(_Config) ->
    ok = beamprof:stop(),
    ?assertEqual(open, beamprof:gate()),
    ?assertMatch(#{state := open, reason := not_running, running := false, blind := false,
                   warnings := []}, beamprof:gate_info()),
    ok = beamprof:start(#{tick => 100}),
    ?assertMatch(#{running := true, reason := none}, beamprof:gate_info()),
    ok = beamprof:stop(),
    ?assertMatch(#{state := open, reason := not_running}, beamprof:gate_info()).

%% A C thread that sees no scheduler thread (the test option hides them)
%% gates on scheduler_wall_time: one normal-priority spinner per scheduler
%% leaves the gate process its turn to measure, utilization reads ~1.0 and
%% the gate closes with source erlang; gate_info, snapshot, top's header and
%% the gate events say the gate is blind. Before, a blind thread read demand
%% 0 and the gate stayed open.
blind_gate_closes_on_scheduler_wall_time(_Config) ->
    ok = beamprof:start(#{tick => 100, interval => 200, test_hide_threads => true}),
    wait_until(fun() -> maps:get(blind, beamprof:gate_info()) end, 5000),
    Self = self(),
    ok = beamprof:attach_many(gate, [[beamprof, gate, closed], [beamprof, gate, open]],
                              fun(E, M, Meta, _) -> Self ! {E, M, Meta} end, nil),
    Hogs = hogs(erlang:system_info(schedulers_online), normal),
    try
        wait_until(fun() -> beamprof:gate() =:= closed end, 10000),
        Info = beamprof:gate_info(),
        ct:log("blind gate closed: ~p", [Info]),
        ?assertMatch(#{state := closed, reason := {scheduler, _}, blind := true,
                       warnings := [#{code := gate_blind}]}, Info),
        ?assert(lists:member(maps:get(source, Info), [erlang, starved])),
        receive {[beamprof, gate, closed], _, Meta} ->
                ?assertMatch(#{blind := true, warnings := [#{code := gate_blind}]}, Meta)
        after 5000 -> ct:fail(no_closed_event)
        end,
        Snap = beamprof:snapshot(),
        ?assertMatch(#{gate := #{blind := true}}, Snap),
        ?assert(lists:member(gate_blind, [C || #{code := C} <- maps:get(warnings, Snap)])),
        Screen = beamprof_top:render(Snap, {error, not_scanned}, #{width => 200}),
        ?assertMatch({_, _}, binary:match(Screen, <<"blind">>)),
        ?assertMatch({_, _}, binary:match(Screen, <<"scheduler_wall_time">>))
    after
        [exit(H, kill) || H <- Hogs]
    end,
    wait_until(fun() -> beamprof:gate() =:= open end, 10000),
    receive {[beamprof, gate, open], _, OpenMeta} ->
            ?assertMatch(#{blind := true}, OpenMeta)
    after 5000 -> ct:fail(no_open_event)
    end,
    ?assertMatch(#{source := erlang, blind := true}, beamprof:gate_info()).

%% Blind and starved: high-priority hogs leave the gate process no turn, its
%% answers stop, and the blind thread takes the schedulers as busy.
blind_gate_closes_when_starved(_Config) ->
    ok = beamprof:start(#{tick => 100, test_hide_threads => true}),
    wait_until(fun() -> maps:get(blind, beamprof:gate_info()) end, 5000),
    Old = process_flag(priority, max),
    Hogs = hogs(erlang:system_info(schedulers_online), high),
    try
        wait_until(fun() -> beamprof:gate() =:= closed end, 5000),
        Info = beamprof:gate_info(),
        ct:log("blind and starved: ~p", [Info]),
        ?assertMatch(#{reason := {scheduler, _}, blind := true}, Info),
        ?assert(lists:member(maps:get(source, Info), [erlang, starved]))
    after
        [exit(H, kill) || H <- Hogs],
        process_flag(priority, Old)
    end,
    wait_until(fun() -> beamprof:gate() =:= open end, 10000).

%% On an idle node the thread's demand reads ~0, below every mark; the
%% heartbeat still asks the Erlang side for scheduler_wall_time: pings and
%% answers keep coming, about one per heartbeat. Before, nothing was asked
%% while demand stayed below the mark.
heartbeat_while_demand_reads_zero(_Config) ->
    ok = beamprof:start(#{tick => 100, heartbeat => 200}),
    ?assertMatch(#{heartbeat_ms := 200, blind := false}, beamprof:gate_info()),
    #{pings := P0} = beamprof:gate_info(),
    T0 = erlang:monotonic_time(),
    wait_until(fun() -> maps:get(pings, beamprof:gate_info()) >= P0 + 5 end, 10000),
    wait_until(fun() -> case beamprof:gate_info() of
                            #{reported_at := At} when is_integer(At) ->
                                At > erlang:convert_time_unit(T0, native, nanosecond);
                            _ -> false
                        end
               end, 5000),
    #{pings := P1} = beamprof:gate_info(),
    Ms = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, millisecond),
    ct:log("~B pings in ~B ms at a 200 ms heartbeat", [P1 - P0, Ms]),
    %% not one per tick (a 100 ms tick would give twice as many)
    ?assert(P1 - P0 =< Ms div 200 + 2),
    [{_, Demand} | _] = [{M, D} || {M, _, _, _, _, _, _, _, D} <- beamprof_nif:history()],
    ?assert(Demand < 0.8).

%% --- the C side's own figures -------------------------------------------------

%% gate_history/0 gives the C thread's ticks as maps, newest first, and
%% native_info/0 the native library's state, through the public module.
gate_history_and_native_info(_Config) ->
    ok = beamprof:start(#{tick => 50}),
    wait_until(fun() -> length(beamprof:gate_history()) >= 5 end, 10000),
    [Newest, Older | _] = History = beamprof:gate_history(),
    ?assert(length(History) =< 600),
    Keys = [demand, gate, memory_limit, memory_ratio, memory_used, mono_ns, os_cpu,
            scheduler, source],
    ?assertEqual([Keys], lists:usort([lists:sort(maps:keys(T)) || T <- History])),
    ?assert(maps:get(mono_ns, Newest) > maps:get(mono_ns, Older)),
    ?assert(maps:get(mono_ns, Newest) =< erlang:monotonic_time(nanosecond)),
    ?assert(lists:member(maps:get(gate, Newest), [open, closed])),
    ?assert(maps:get(memory_used, Newest) > 0),
    ?assert(maps:get(memory_limit, Newest) >= maps:get(memory_used, Newest)),
    case beamprof:native_info() of
        #{frame_pointers := FP, mode := Mode} ->
            ?assert(is_boolean(FP)),
            ?assert(is_atom(Mode));
        {error, {unsupported, _}} = Unsupported ->
            ct:comment("native library absent: ~p", [Unsupported])
    end.
