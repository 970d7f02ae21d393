%% The VM monitor bridge against a real VM: real long garbage collections,
%% large heaps, long schedules, a busy port and a long message queue; a monitor
%% someone else holds left alone and said so (OTP 25-27) or left alone while
%% beamprof monitors in a trace session of its own (OTP 28+); the one found
%% restored exactly on stop; the rate limit under a storm; process labels in
%% the events (OTP 27+).
-module(beamprof_monitor_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2]).

all() ->
    [takes_free_monitor_and_clears_it, long_gc_and_large_heap, long_schedule, busy_port,
     busy_dist_port_named, port_long_schedule_named, gone_process_named_undefined,
     existing_monitor_left_alone, beside_another_monitor, taken_when_freed,
     taken_over_while_running_is_left, restarted_after_crash, long_message_queue_between_scans,
     long_message_queue_off, storm_is_rate_limited, disabled, bad_options_refused].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    %% Nothing of the test framework's holds the monitor: what each case finds
    %% is what it set up.
    ?assertEqual(undefined, erlang:system_monitor()),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = beamprof:stop(),
    ok = beamprof_ct:detach_all(),
    _ = erlang:system_monitor(undefined),
    ok.

%% --- ownership ------------------------------------------------------------------

%% The settings asked for by default: long queues from OTP 27 on. OTP 25 to 27 take the
%% node's free system monitor and clear it on stop; OTP 28+ monitor in a trace session
%% and never touch it.
takes_free_monitor_and_clears_it(_Config) ->
    ok = beamprof:start(),
    Pid = whereis(beamprof_monitor),
    Words = erlang:system_info(wordsize),
    Settings = lists:sort([{long_gc, 100}, {long_schedule, 100},
                           {large_heap, 128 * 1024 * 1024 div Words}, busy_port, busy_dist_port]
                          ++ [{long_message_queue, {5000, 10000}} || release() >= 27]),
    #{state := active, holder := Pid, previous := undefined, settings := Asked, via := Via} =
        beamprof_monitor:status(),
    ?assertEqual(Settings, lists:sort(Asked)),
    ?assertEqual(via(), Via),
    case Via of
        system_monitor -> ?assertEqual({Pid, Settings}, sorted(erlang:system_monitor()));
        session -> ?assertEqual(undefined, erlang:system_monitor())
    end,
    ok = beamprof:stop(),
    ?assertEqual(undefined, erlang:system_monitor()),
    ?assertEqual(#{state => not_started}, beamprof_monitor:status()).

%% Another process holds the node's system monitor. OTP 25-27: beamprof leaves it alone,
%% says so (log and status) and is `held'. OTP 28+: beamprof monitors in its own session,
%% says nothing of the kind, and leaves the other's monitor as it was.
existing_monitor_left_alone(_Config) ->
    Holder = spawn_link(fun() -> receive stop -> ok end end),
    _ = erlang:system_monitor(Holder, [{long_gc, 500}, busy_port]),
    Before = erlang:system_monitor(),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    try
        ok = beamprof:start(),
        ?assertEqual(Before, erlang:system_monitor()),
        case via() of
            system_monitor ->
                ?assertMatch(#{state := held, holder := Holder}, beamprof_monitor:status()),
                receive
                    {log, warning, Text} ->
                        ?assertNotEqual(nomatch, string:find(Text, pid_to_list(Holder)))
                after 5000 -> ct:fail(no_warning_logged)
                end;
            session ->
                Pid = whereis(beamprof_monitor),
                ?assertMatch(#{state := active, holder := Pid, via := session},
                             beamprof_monitor:status()),
                receive {log, _, Text} -> ct:fail({logged, Text}) after 500 -> ok end
        end,
        ok = beamprof:stop(),
        ?assertEqual(Before, erlang:system_monitor())
    after
        _ = logger:remove_handler(?MODULE),
        unlink(Holder),
        exit(Holder, kill)
    end.

%% Another tool holds erlang:system_monitor/2 (large_heap) and a real process grows a large
%% heap. OTP 28+: both the other monitor and beamprof's bridge get the VM's message, and the
%% other's monitor is as it was after beamprof stops. OTP 25-27: only the other tool does;
%% beamprof receives nothing (`held').
beside_another_monitor(_Config) ->
    Self = self(),
    Other = spawn_link(fun() -> forward_monitor(Self) end),
    _ = erlang:system_monitor(Other, [{large_heap, 1024 * 1024}]),
    Before = erlang:system_monitor(),
    try
        ok = beamprof:start(#{system_monitor => #{large_heap => 1024 * 1024, long_gc => false,
                                                  long_schedule => false}}),
        Events = collect([[beamprof, monitor, large_heap]]),
        P = proc_lib:spawn_link(fun() -> heap_hog(lists:seq(1, 2000000)) end),
        try
            receive {other, {monitor, P, large_heap, _}} -> ok
            after 10000 -> ct:fail(other_monitor_got_nothing)
            end,
            case via() of
                session ->
                    {M, _} = wait_event(Events, large_heap, P),
                    ?assert(maps:get(total_heap_size, M) >= 1024 * 1024);
                system_monitor ->
                    ?assertMatch(#{state := held, holder := Other, received := R}
                                   when map_size(R) =:= 0, beamprof_monitor:status())
            end
        after
            stop_proc(P)
        end,
        ok = beamprof:stop(),
        ?assertEqual(Before, erlang:system_monitor())
    after
        unlink(Other),
        exit(Other, kill)
    end.

forward_monitor(To) ->
    receive Msg -> To ! {other, Msg}, forward_monitor(To) end.

%% OTP 25-27: beamprof takes the node's monitor once its holder lets go. OTP 28+: beamprof
%% is active from the start in its session and never takes the node's monitor.
taken_when_freed(_Config) ->
    Holder = spawn(fun() -> receive stop -> ok end end),
    _ = erlang:system_monitor(Holder, [busy_port]),
    ok = beamprof:start(#{system_monitor => #{long_gc => 250}}),
    Pid = whereis(beamprof_monitor),
    case via() of
        system_monitor ->
            ?assertMatch(#{state := held}, beamprof_monitor:status()),
            exit(Holder, kill),
            %% beamprof looks again every 5 s.
            wait_until(fun() -> maps:get(state, beamprof_monitor:status()) =:= active end, 15000),
            ?assertMatch({Pid, [_ | _]}, erlang:system_monitor());
        session ->
            ?assertMatch(#{state := active, holder := Pid}, beamprof_monitor:status()),
            exit(Holder, kill),
            wait_until(fun() -> erlang:system_monitor() =:= undefined end, 5000),
            ?assertMatch(#{state := active, holder := Pid}, beamprof_monitor:status())
    end,
    ok = beamprof:stop(),
    ?assertEqual(undefined, erlang:system_monitor()).

taken_over_while_running_is_left(_Config) ->
    ok = beamprof:start(),
    Other = spawn_link(fun() -> receive stop -> ok end end),
    _ = erlang:system_monitor(Other, [{long_schedule, 300}]),
    ok = beamprof:stop(),
    ?assertEqual({Other, [{long_schedule, 300}]}, erlang:system_monitor()),
    unlink(Other),
    exit(Other, kill).

restarted_after_crash(_Config) ->
    ok = beamprof:start(),
    Old = whereis(beamprof_monitor),
    exit(Old, kill),
    wait_until(fun() -> is_pid(whereis(beamprof_monitor)) andalso whereis(beamprof_monitor) =/= Old end,
               5000),
    New = whereis(beamprof_monitor),
    case via() of
        system_monitor -> ?assertMatch({New, _}, erlang:system_monitor());
        session -> ?assertEqual(undefined, erlang:system_monitor())
    end,
    ?assertMatch(#{state := active, holder := New}, beamprof_monitor:status()).

%% A real process whose mailbox grows past the long_message_queue threshold, with no
%% periodic scan. OTP 27+: the system monitor says it at once (source system_monitor), the
%% process named with its label; the scan that follows does not say it again; once the
%% queue has been below half the threshold, a new crossing is said again. OTP 25 and 26
%% (no such monitor): nothing until a scan, which says it (source scan).
long_message_queue_between_scans(_Config) ->
    ok = beamprof:start(#{scan_interval => off, long_message_queue => 100}),
    Events = collect([[beamprof, process, long_message_queue]]),
    Self = self(),
    P = proc_lib:spawn_link(fun() -> beamprof_ct:set_label({bp_queue, 1}),
                                     register(bp_long_queue, self()), Self ! {ready, self()},
                                     queue_holder() end),
    receive {ready, P} -> ok after 10000 -> ct:fail(not_started) end,
    try
        [P ! {m, I} || I <- lists:seq(1, 150)],
        case release() >= 27 of
            true ->
                {M, Meta} = wait_event(Events, long_message_queue, P),
                ?assertMatch(#{pid := P, name := bp_long_queue, label := {bp_queue, 1},
                               threshold := 100, source := system_monitor,
                               initial_call := {?MODULE, _, 0}}, Meta),
                ?assert(maps:get(message_queue_len, M) >= 100),
                ?assertMatch(#{suppressed := 0}, M),
                ok = beamprof_scan_server:scan_now(),
                no_event(Events, P),
                drain(P, 40),
                [P ! {m, I} || I <- lists:seq(1, 100)],
                {_, Meta2} = wait_event(Events, long_message_queue, P),
                ?assertMatch(#{source := system_monitor}, Meta2);
            false ->
                receive {Events, _, _, #{pid := P}} = E -> ct:fail({before_a_scan, E})
                after 500 -> ok
                end,
                ok = beamprof_scan_server:scan_now(),
                {M, Meta} = wait_event(Events, long_message_queue, P),
                ?assertEqual(150, maps:get(message_queue_len, M)),
                ?assertMatch(#{pid := P, name := bp_long_queue, label := undefined,
                               threshold := 100, source := scan}, Meta)
        end
    after
        stop_proc(P)
    end.

%% The option off: the scan alone says long queues, on every release.
long_message_queue_off(_Config) ->
    ok = beamprof:start(#{scan_interval => off, long_message_queue => 100,
                          system_monitor => #{long_message_queue => false}}),
    ?assertNot(lists:keymember(long_message_queue, 1,
                               maps:get(settings, beamprof_monitor:status()))),
    Events = collect([[beamprof, process, long_message_queue]]),
    P = spawn_link(fun() -> queue_holder() end),
    try
        [P ! {m, I} || I <- lists:seq(1, 150)],
        wait_until(fun() -> {message_queue_len, 150} =:= erlang:process_info(P, message_queue_len)
                   end, 5000),
        no_event(Events, P),
        ok = beamprof_scan_server:scan_now(),
        {_, Meta} = wait_event(Events, long_message_queue, P),
        ?assertMatch(#{source := scan}, Meta)
    after
        stop_proc(P)
    end.

%% Keeps its {m, _} messages queued; takes N of them when told.
queue_holder() ->
    receive
        {take, N, From} -> take(N), From ! {taken, self()}, queue_holder();
        stop -> ok
    end.

take(0) -> ok;
take(N) -> receive {m, _} -> take(N - 1) end.

%% Leaves Left messages in P's queue.
drain(P, Left) ->
    {message_queue_len, Q} = erlang:process_info(P, message_queue_len),
    P ! {take, Q - Left, self()},
    receive {taken, P} -> ok after 10000 -> ct:fail(not_drained) end.

no_event(Ref, Pid) ->
    receive {Ref, Kind, M, #{pid := Pid} = Meta} -> ct:fail({unexpected_event, Kind, M, Meta})
    after 500 -> ok
    end.

disabled(_Config) ->
    ok = beamprof:start(#{system_monitor => false}),
    ?assertMatch(#{state := disabled}, beamprof_monitor:status()),
    ?assertEqual(undefined, erlang:system_monitor()).

bad_options_refused(_Config) ->
    ?assertError({badarg, "Expected system_monitor option long_gc" ++ _},
                 beamprof:start(#{system_monitor => #{long_gc => 0}})),
    ?assertError({badarg, "Unknown system_monitor option nope"},
                 beamprof:start(#{system_monitor => [{nope, 1}]})),
    ?assertError({badarg, "Expected system_monitor to be" ++ _},
                 beamprof:start(#{system_monitor => true})),
    ?assertEqual(undefined, erlang:system_monitor()).

%% --- real monitor messages ----------------------------------------------------------

%% A proc_lib process with a registered name and a 2M-element live list
%% collects every 50 ms until told to stop: a collection of that heap takes
%% 3-30 ms here, well over the 1 ms threshold.
long_gc_and_large_heap(_Config) ->
    ok = beamprof:start(#{system_monitor => #{long_gc => 1, large_heap => 1024 * 1024,
                                              long_schedule => false}}),
    Events = collect([[beamprof, monitor, long_gc], [beamprof, monitor, large_heap]]),
    Words = erlang:system_info(wordsize),
    P = proc_lib:spawn_link(fun() -> register(bp_heap_hog, self()), heap_hog(lists:seq(1, 2000000)) end),
    try
        %% Bytes, not words: the 2M-element list alone is 4M words.
        {M, Meta} = wait_event(Events, long_gc, P,
                               fun(#{total_heap_size := T}) -> T >= 4000000 * Words end),
        ?assert(maps:get(duration_ms, M) >= 1),
        ?assertEqual(erlang:convert_time_unit(maps:get(duration_ms, M), millisecond, native),
                     maps:get(duration, M)),
        ?assertEqual(maps:get(total_heap_size, M),
                     lists:sum([maps:get(K, M) || K <- [heap_block_size, old_heap_block_size,
                                                        mbuf_size]])),
        ?assert(maps:get(heap_size, M) =< maps:get(heap_block_size, M)),
        assert_named(P, bp_heap_hog, Meta),
        {HM, HMeta} = wait_event(Events, large_heap, P),
        ?assert(maps:get(total_heap_size, HM) >= 1024 * 1024),
        ?assertNot(maps:is_key(duration, HM)),
        assert_named(P, bp_heap_hog, HMeta)
    after
        stop_proc(P)
    end.

heap_hog(List) ->
    erlang:garbage_collect(),
    receive stop -> length(List) after 50 -> heap_hog(List) end.

%% Copying a 4M-element tuple (setelement/3) runs without yielding: 20-40 ms
%% here, over the 1 ms threshold.
long_schedule(_Config) ->
    ok = beamprof:start(#{system_monitor => #{long_schedule => 1, long_gc => false,
                                              large_heap => false, max_rate => 1000}}),
    Events = collect([[beamprof, monitor, long_schedule]]),
    P = proc_lib:spawn_link(fun() -> tuple_copier(erlang:make_tuple(4000000, a), 0) end),
    try
        {M, Meta} = wait_event(Events, long_schedule, P),
        ?assert(maps:get(duration_ms, M) >= 1),
        ?assertMatch(#{pid := P, name := undefined, node := _, in := _, out := _}, Meta),
        ?assertMatch({?MODULE, _, 0}, maps:get(initial_call, Meta)),
        ?assertEqual(ok, beamprof_events_check(M))
    after
        stop_proc(P)
    end.

tuple_copier(T, N) ->
    T2 = setelement(1 + N rem 2, T, N),
    receive stop -> ok after 20 -> tuple_copier(T2, N + 1) end.

%% A port to a program that never reads its stdin: once the pipe and the
%% driver's queue are full, port_command/2 suspends the sender.
busy_port(_Config) ->
    ok = beamprof:start(),
    Events = collect([[beamprof, monitor, busy_port]]),
    Port = open_port({spawn_executable, "/bin/sh"}, [{args, ["-c", "exec sleep 30"]}, binary]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Chunk = binary:copy(<<0>>, 65536),
    Sender = spawn(fun() -> register(bp_port_writer, self()),
                            [port_command(Port, Chunk) || _ <- lists:seq(1, 100)] end),
    try
        {M, Meta} = wait_event(Events, busy_port, Sender),
        ?assertMatch(#{monotonic_time := _, suppressed := 0}, M),
        ?assertMatch(#{pid := Sender, name := bp_port_writer, port := Port}, Meta),
        ?assertEqual(self(), maps:get(owner, Meta)),
        ?assertEqual(<<"/bin/sh">>, maps:get(port_name, Meta))
    after
        %% unlinked first: killing the reader makes the port exit with epipe,
        %% which would take this process with it (seen on OTP 29)
        unlink(Port),
        exit(Sender, kill),
        close_port(Port),
        _ = os:cmd("kill " ++ integer_to_list(OsPid))
    end.

%% A busy distribution port needs a congested connection; the message is
%% the same shape as busy_port's, so it is handed to the bridge directly.
busy_dist_port_named(_Config) ->
    ok = beamprof:start(),
    Events = collect([[beamprof, monitor, busy_dist_port]]),
    Port = open_port({spawn_executable, "/bin/true"}, []),
    Suspended = spawn_link(fun() -> receive stop -> ok end end),
    whereis(beamprof_monitor) ! {monitor, Suspended, busy_dist_port, Port},
    {_, Meta} = wait_event(Events, busy_dist_port, Suspended),
    ?assertMatch(#{pid := Suspended, port := Port, owner := _}, Meta),
    close_port(Port),
    stop_proc(Suspended).

%% A port that ran too long (a driver callback): named by its port fields.
port_long_schedule_named(_Config) ->
    ok = beamprof:start(),
    Ref = make_ref(),
    Self = self(),
    ok = beamprof:attach(Ref, [beamprof, monitor, long_schedule],
                         fun(_, M, Meta, _) -> Self ! {Ref, M, Meta} end, nil),
    Port = open_port({spawn_executable, "/bin/cat"}, []),
    whereis(beamprof_monitor) ! {monitor, Port, long_schedule, [{timeout, 7}, {port_op, input}]},
    receive
        {Ref, M, Meta} ->
            ?assertMatch(#{duration_ms := 7}, M),
            ?assertEqual(#{port => Port, port_name => <<"/bin/cat">>, owner => self(),
                           port_op => input}, Meta)
    after 10000 -> ct:fail(no_event)
    end,
    port_close(Port).

gone_process_named_undefined(_Config) ->
    ok = beamprof:start(),
    Events = collect([[beamprof, monitor, long_gc]]),
    Dead = spawn(fun() -> ok end),
    Ref = monitor(process, Dead),
    receive {'DOWN', Ref, _, _, _} -> ok end,
    whereis(beamprof_monitor) ! {monitor, Dead, long_gc, [{timeout, 120}, {heap_size, 10}]},
    {M, Meta} = wait_event(Events, long_gc, Dead),
    ?assertMatch(#{duration_ms := 120, heap_size := _, mbuf_size := 0}, M),
    ?assertEqual(10 * erlang:system_info(wordsize), maps:get(heap_size, M)),
    ?assertMatch(#{pid := Dead, name := undefined, initial_call := undefined,
                   current_function := undefined}, Meta),
    ?assertMatch(#{state := active}, beamprof_monitor:status()).

%% 2000 long_schedule messages at once: at most max_rate a second plus the
%% burst become events; every other one is counted as suppressed and said.
storm_is_rate_limited(_Config) ->
    ok = beamprof:start(#{system_monitor => #{max_rate => 5}}),
    Events = collect([[beamprof, monitor, long_schedule], [beamprof, monitor, suppressed]]),
    Victim = spawn_link(fun() -> receive stop -> ok end end),
    Monitor = whereis(beamprof_monitor),
    Start = erlang:monotonic_time(millisecond),
    [Monitor ! {monitor, Victim, long_schedule, [{timeout, 150}, {in, undefined}, {out, undefined}]}
     || _ <- lists:seq(1, 2000)],
    wait_until(fun() -> #{received := #{long_schedule := R}} = beamprof_monitor:status(),
                        R =:= 2000 end, 10000),
    Elapsed = erlang:monotonic_time(millisecond) - Start,
    #{emitted := #{long_schedule := Emitted}, suppressed := #{long_schedule := Suppressed}} =
        beamprof_monitor:status(),
    ?assertEqual(2000, Emitted + Suppressed),
    ?assert(Emitted >= 5),
    ?assert(Emitted =< 5 + 5 * (Elapsed + 1000) div 1000),
    %% The suppressed count is said within about a second.
    {SM, SMeta} = wait_event(Events, suppressed, any),
    ?assertEqual(#{kind => long_schedule}, SMeta),
    ?assert(maps:get(count, SM) >= 1),
    stop_proc(Victim).

%% --- helpers ----------------------------------------------------------------------

beamprof_events_check(#{monotonic_time := T, suppressed := S}) when is_integer(T), is_integer(S) -> ok;
beamprof_events_check(M) -> {bad_measurements, M}.

assert_named(Pid, Name, Meta) ->
    ?assertMatch(#{pid := Pid, name := Name, node := _, label := undefined}, Meta),
    %% proc_lib's '$initial_call', not proc_lib:init_p/5.
    ?assertMatch({?MODULE, _, 0}, maps:get(initial_call, Meta)),
    ?assertMatch({_, _, _}, maps:get(current_function, Meta)).

sorted({Pid, Settings}) -> {Pid, lists:sort(Settings)};
sorted(Other) -> Other.

release() -> list_to_integer(erlang:system_info(otp_release)).

%% How beamprof monitors on this VM: in a trace session where trace:system/3 exists.
via() ->
    _ = code:ensure_loaded(trace),
    case erlang:function_exported(trace, system, 3) of
        true -> session;
        false -> system_monitor
    end.

%% Forwards the events to a collector; returns it.
collect(Names) ->
    Self = self(),
    Ref = make_ref(),
    ok = beamprof:attach_many(Ref, Names, fun([_, _, Kind], M, Meta, _) ->
                                                  Self ! {Ref, Kind, M, Meta}
                                          end, nil),
    Ref.

%% The first event of Kind about Who (any: any), within 10 s.
wait_event(Ref, Kind, Who) ->
    wait_event(Ref, Kind, Who, fun(_) -> true end).

%% The first such event whose measurements satisfy Pred.
wait_event(Ref, Kind, Who, Pred) ->
    Deadline = erlang:monotonic_time(millisecond) + 10000,
    wait_event(Ref, Kind, Who, Pred, Deadline).

wait_event(Ref, Kind, Who, Pred, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Ref, Kind, M, Meta} when Who =:= any; map_get(pid, Meta) =:= Who ->
            case Pred(M) of
                true -> {M, Meta};
                false -> wait_event(Ref, Kind, Who, Pred, Deadline)
            end
    after Left -> ct:fail({no_event, Kind, Who})
    end.

stop_proc(Pid) ->
    unlink(Pid),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, _, _, _} -> ok after 5000 -> exit(Pid, kill) end.


%% logger handler: forwards beamprof's monitor log lines to the test.
log(#{level := Level, msg := Msg, meta := #{domain := [beamprof, monitor]}}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
               {Format, Args} when is_list(Format) -> lists:flatten(io_lib:format(Format, Args));
               {string, S} -> unicode:characters_to_list(S);
               Other -> lists:flatten(io_lib:format("~p", [Other]))
           end,
    Pid ! {log, Level, Text};
log(_, _) ->
    ok.

%% Closes a port that may already be closed.
close_port(Port) ->
    try port_close(Port) catch error:badarg -> true end.
