%% The flight recorder's write path (issue 14): records reach the file with
%% the format's framing, the C thread's ticks keep coming while every
%% scheduler is saturated, foreign and locked files are refused, and a node
%% killed with SIGKILL leaves a recording that reaches to within a second of
%% the kill and names its growing mailbox. Files are read back with the
%% test-only decoder beamprof_recorder_decode (written from the format's
%% text, apart from the real reader).
-module(beamprof_recorder_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("kernel/include/file.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2]).

all() ->
    [options_refused, records_framed, events_recorded, vocabulary_covers_records,
     failed_builds_noted, mailboxes_while_gate_closed, restart_resumes, upgrade_keeps_recording, foreign_file_untouched, second_writer_locked,
     ticks_while_saturated, killed_node_leaves_recording].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    [{file, filename:join(Dir, "node.rec")} | Config].

end_per_testcase(_Case, _Config) ->
    ok = beamprof:stop(),
    ok = beamprof:stop_recorder().

%% --- options ---------------------------------------------------------------

options_refused(Config) ->
    File = ?config(file, Config),
    ?assertError({badarg, "Expected recorder" ++ _}, beamprof:start(#{recorder => on})),
    ?assertError({badarg, "Expected recorder size" ++ _},
                 beamprof:start(#{recorder => #{file => File, size => 1000}})),
    ?assertError({badarg, "Expected recorder file" ++ _},
                 beamprof:start(#{recorder => #{file => ""}})),
    ?assertError({badarg, "Unknown recorder option" ++ _},
                 beamprof:start(#{recorder => #{file => File, nope => 1}})),
    ?assertError({badarg, _}, beamprof:start_recorder(#{size => 65536})),
    ?assertNot(filelib:is_file(File)),
    ?assertEqual(off, maps:get(recorder, beamprof_config:defaults())),
    ?assertEqual(undefined, beamprof:recorder_info()).

%% --- framing and records ---------------------------------------------------

%% The application with a recorder: the header first (seq 1), then ticks
%% every 100 ms, an interval record per interval and a scan record per
%% scan, each frame valid per the format (magic, length, CRC, padding).
records_framed(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start(#{recorder => #{file => File, size => 262144},
                          interval => 300, scan_interval => 300}),
    wait_until(fun() -> count(File, interval) >= 2 andalso count(File, scan) >= 2
                            andalso count(File, tick) >= 10 end, 30000),
    {ok, Bin} = file:read_file(File),
    ?assertEqual(4096 + 262144, byte_size(Bin)),
    {ok, #file_info{mode = Mode}} = file:read_file_info(File),
    ?assertEqual(8#600, Mode band 8#777),
    {ok, #{ring_size := 262144, os_pid := OsPid}, [First | _] = Records} =
        beamprof_recorder_decode:file(File),
    ?assertEqual(list_to_integer(os:getpid()), OsPid),
    ?assertMatch(#{kind := header, seq := 1, ring_size := 262144, tick_ms := 100,
                   interval_ms := 300, schedulers := _, node := <<_/binary>>,
                   otp_release := <<_/binary>>, beamprof_version := <<_/binary>>}, First),
    Seqs = [S || #{seq := S} <- Records],
    ?assertEqual(lists:seq(1, length(Seqs)), Seqs),
    Frames = beamprof_recorder_decode:frames(binary:part(Bin, 4096, 262144)),
    ?assertEqual(length(Seqs), length(Frames)),
    [Tick | _] = [R || #{kind := tick} = R <- Records],
    NormalThreads = [T || #{kind := normal} = T <- maps:get(threads, Tick)],
    ?assertEqual(erlang:system_info(schedulers), length(NormalThreads)),
    ?assertMatch(#{demand := D, rss := Rss, memory_limit := _, gate := open,
                   gate_reason := none, tick_ms := Ms}
                   when is_float(D) andalso Rss > 0 andalso Ms > 0, Tick),
    [Interval | _] = [R || #{kind := interval} = R <- Records],
    #{utilization := #{normal := Normal}, run_queues := RQ, memory := #{total := Total},
      process_count := PC} = Interval,
    ?assertEqual(erlang:system_info(schedulers), length(Normal)),
    ?assertEqual(length(erlang:statistics(run_queue_lengths_all)), length(RQ)),
    ?assert(Total > 0 andalso PC > 0),
    [#{top := Top} | _] = [R || #{kind := scan} = R <- Records],
    [#{pid := <<"<", _/binary>>, name := <<_/binary>>, value := V} | _] =
        maps:get(reductions, Top),
    ?assert(is_integer(V)),
    Info = beamprof:recorder_info(),
    ct:log("info ~p", [Info]),
    ?assertMatch(#{ring_size := 262144, dropped := 0, encode_failed := 0}, Info),
    ?assertEqual(iolist_to_binary(filename:absname(File)), maps:get(file, Info)),
    ok = beamprof:stop(),
    ?assertEqual(undefined, beamprof:recorder_info()),
    ?assertNot(beamprof_recorder:active()).

%% Threshold crossings, monitor events, gate flips and profiles become
%% records through the events beamprof emits.
events_recorded(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start(#{recorder => #{file => File, size => 262144},
                          scan_interval => 200, long_message_queue => 1000}),
    Holder = spawn_link(fun() -> register(bp_rec_holder, self()), hold() end),
    [Holder ! {msg, I} || I <- lists:seq(1, 2000)],
    Self = self(),
    {module, _} = code:ensure_loaded(beamprof_profile),
    _ = beamprof:profile(fun() -> Self end, #{strategy => sample, threshold => 0}),
    ok = beamprof_events:emit([gate, closed], #{monotonic_time => 0, ratio => 0.9},
                              #{reason => {scheduler, 0.9}, kind => scheduler,
                                source => erlang, blind => false, warnings => []}),
    ok = beamprof_events:emit([monitor, long_gc], #{duration_ms => 120, heap_size => 800},
                              (beamprof_names:process(Holder))#{pid => Holder,
                                                                node => node()}),
    %% The long queue is the scan's threshold crossing, or (OTP 27+, where
    %% the system monitor has long_message_queue) the monitor's event.
    wait_until(fun() -> count(File, threshold) + count(File, monitor) >= 2 andalso
                            count(File, profile) >= 2 end, 30000),
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    ct:log("~p", [[R || #{kind := K} = R <- Records, K =/= tick, K =/= interval, K =/= scan]]),
    HolderPid = list_to_binary(pid_to_list(Holder)),
    case [R || #{kind := threshold} = R <- Records] of
        [] -> ?assertMatch([#{pid := HolderPid, name := <<"bp_rec_holder">>,
                              info := #{message_queue_len := Q}} | _] when Q >= 1000,
                           [R || #{kind := monitor, event := long_message_queue} = R <- Records]);
        Thresholds ->
            ?assertMatch([#{key := message_queue_len, pid := HolderPid,
                            name := <<"bp_rec_holder">>, limit := 1000, value := Q} | _]
                           when Q >= 1000, Thresholds)
    end,
    ?assertMatch([#{state := closed, reason := scheduler}],
                 [R || #{kind := gate} = R <- Records]),
    ?assertMatch([#{pid := HolderPid, name := <<"bp_rec_holder">>,
                    info := #{duration_ms := 120, heap_size := 800}}],
                 [R || #{kind := monitor, event := long_gc} = R <- Records]),
    ?assertMatch([#{event := start, strategy := sample, target := <<_/binary>>},
                  #{event := stop, strategy := sample, ms := Ms}] when is_integer(Ms),
                 [R || #{kind := profile} = R <- Records]),
    unlink(Holder),
    exit(Holder, kill).

hold() ->
    receive stop -> ok end.

%% Every atom in the records (keys and values) is one of vocabulary/0's.
vocabulary_covers_records(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start(#{recorder => #{file => File, size => 262144},
                          interval => 200, scan_interval => 200}),
    wait_until(fun() -> count(File, scan) >= 1 andalso count(File, interval) >= 1 end, 30000),
    ok = beamprof:stop(),
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    Vocabulary = beamprof_recording:vocabulary(),
    Atoms = lists:usort(atoms(Records)),
    ?assertEqual([], Atoms -- Vocabulary),
    ?assert(lists:member(undefined, Vocabulary) andalso lists:member(tick, Atoms)).

atoms(A) when is_atom(A) -> [A];
atoms(L) when is_list(L) -> lists:flatmap(fun atoms/1, L);
atoms(M) when is_map(M) -> atoms(maps:keys(M)) ++ atoms(maps:values(M));
atoms(_) -> [].

%% A record beamprof cannot build from what it was handed (a sample, a scan
%% and an event of the wrong shape) is not lost silently: recorder_info()
%% counts it and the file holds a `note' naming it at the 1st, 2nd, 4th, ...
%% failure (the counter is the VM's, so the expected notes follow from its
%% value before).
failed_builds_noted(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start_recorder(#{file => File, size => 262144}),
    #{build_failed := Before} = beamprof:recorder_info(),
    ok = beamprof_recorder:interval(#{schedulers => not_rows}),
    ok = beamprof_recorder:scan(#{message_queue_len => [not_a_row]}),
    ok = beamprof_recorder:event([process, large_memory], #{}, #{}),
    [ok = beamprof_recorder:interval(#{}) || _ <- lists:seq(1, 3)],
    #{build_failed := After} = beamprof:recorder_info(),
    ?assertEqual(Before + 6, After),
    ok = beamprof:stop_recorder(),
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    Notes = [M || #{kind := note, message := M} <- Records],
    Expected = [N || N <- lists:seq(Before + 1, After), N band (N - 1) =:= 0],
    ?assertEqual(length(Expected), length(Notes)),
    ?assert(length(Notes) >= 2),
    ct:log("~p", [Notes]),
    ?assert(lists:all(fun(M) -> binary:match(M, <<" record was not written (">>) =/= nomatch
                      end, Notes)),
    [?assertNotEqual(nomatch, binary:match(M, integer_to_binary(N)))
     || {M, N} <- lists:zip(Notes, Expected)].

%% With the gate closed (here by memory: a limit of 1 MiB, so the node stays
%% above the high mark from the first tick) the periodic scan waits, but a
%% recording still gets mailbox-only `scan' records, marked `gate =>
%% closed', that name a growing mailbox.
mailboxes_while_gate_closed(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start(#{recorder => #{file => File, size => 262144},
                          memory_limit => 1048576, scan_interval => 300}),
    Holder = spawn_link(fun() -> register(bp_rec_gated, self()), hold() end),
    [Holder ! {msg, I} || I <- lists:seq(1, 3000)],
    Named = fun(#{top := #{message_queue_len := [#{name := <<"bp_rec_gated">>, value := Q} | _]}})
                  -> Q >= 3000;
               (_) -> false
            end,
    wait_until(fun() ->
                       {ok, _, Rs} = beamprof_recorder_decode:file(File),
                       lists:any(Named, [R || #{kind := scan, gate := closed} = R <- Rs])
               end, 30000),
    ?assertEqual(closed, beamprof:gate()),
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    Scans = [R || #{kind := scan} = R <- Records],
    ?assert(Scans =/= []),
    %% every scan so far was taken under the closed gate, and ranked queues only
    ?assertEqual([], [R || R <- Scans, maps:get(gate, R, open) =/= closed]),
    ?assertEqual([[message_queue_len]], lists:usort([maps:keys(T) || #{top := T} <- Scans])),
    ?assertMatch(#{paused := P} when P > 0, beamprof_scan_server:stats()),
    %% beamprof's own reader takes the field too
    {ok, Read} = beamprof:read_recording(File),
    ?assert(lists:any(Named, [R || #{kind := scan, gate := closed} = R <- Read])),
    unlink(Holder),
    exit(Holder, kill).

%% The application restarted on its own recording: no .prev, the sequence
%% numbers continue, a second header.
restart_resumes(Config) ->
    File = ?config(file, Config),
    Opts = #{recorder => #{file => File, size => 65536}},
    ok = beamprof:start(Opts),
    wait_until(fun() -> count(File, tick) >= 3 end, 30000),
    ok = beamprof:stop(),
    {ok, _, R1} = beamprof_recorder_decode:file(File),
    Last = lists:max([S || #{seq := S} <- R1]),
    ok = beamprof:start(Opts),
    ?assertEqual({error, already_open}, beamprof:start_recorder(#{file => File})),
    wait_until(fun() -> count(File, tick) >= length(R1) + 2 end, 30000),
    ok = beamprof:stop(),
    ?assertNot(filelib:is_file(File ++ ".prev")),
    {ok, _, R2} = beamprof_recorder_decode:file(File),
    Headers = [S || #{kind := header, seq := S} <- R2],
    ?assertEqual([1, Last + 1], Headers),
    %% start_recorder/stop_recorder on a node whose application runs
    ok = beamprof:start(),
    ok = beamprof:start_recorder(#{file => File, size => 65536}),
    wait_until(fun() -> count(File, header) >= 3 end, 30000),
    ok = beamprof:stop_recorder(),
    ?assertEqual(undefined, beamprof:recorder_info()).

%% A reload of beamprof_nif while old code holds the library (an upgrade)
%% hands the open recording to the new library, which resumes it: the same
%% file, no fd more, sequence numbers going on. A fresh load after the old
%% library is unloaded starts closed, and the lock was released.
upgrade_keeps_recording(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start_recorder(#{file => File, size => 65536}),
    Fds = fd_count(),
    [begin
         ok = beamprof_recorder:record(note, #{message => <<"before reload">>}),
         _ = code:purge(beamprof_nif),
         true = code:delete(beamprof_nif),
         {module, beamprof_nif} = code:load_file(beamprof_nif),
         ?assertMatch(#{file := _, frames := 0}, beamprof:recorder_info())
     end || _ <- lists:seq(1, 10)],
    %% the last old library (its /proc files) goes with the purge
    _ = code:purge(beamprof_nif),
    ?assertEqual(Fds, fd_count()),
    ok = beamprof_recorder:record(note, #{message => <<"after">>}),
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    ?assertMatch([#{kind := header, seq := 1} | _], Records),
    Notes = [S || #{kind := note, seq := S} <- Records],
    ?assertEqual(lists:seq(2, 12), Notes),
    _ = code:purge(beamprof_nif),
    true = code:delete(beamprof_nif),
    _ = code:purge(beamprof_nif),
    {module, beamprof_nif} = code:load_file(beamprof_nif),
    ?assertEqual(undefined, beamprof:recorder_info()),
    %% the old library's unload (which closes its file) may run after the
    %% purge returns: locked until then
    wait_until(fun() -> beamprof:start_recorder(#{file => File, size => 65536}) =:= ok end,
               10000),
    ok = beamprof:stop_recorder().

fd_count() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    length(Fds).

%% --- refusals ----------------------------------------------------------------

foreign_file_untouched(Config) ->
    File = ?config(file, Config),
    Content = <<"precious: not a recording">>,
    ok = file:write_file(File, Content),
    ?assertEqual({error, not_a_recording}, beamprof:start_recorder(#{file => File})),
    %% the application starts without the recording and says why, in every
    %% sample, until a recording opens
    ok = beamprof:start(#{recorder => #{file => File}, interval => 100}),
    try
        wait_until(fun() -> unavailable(beamprof:snapshot()) =/= [] end, 10000),
        [Message] = unavailable(beamprof:snapshot()),
        ?assertNotEqual(nomatch, string:find(Message, File)),
        ?assertNotEqual(nomatch, string:find(Message, "not_a_recording")),
        ?assertEqual(undefined, beamprof:recorder_info()),
        Other = File ++ ".other",
        ok = beamprof:start_recorder(#{file => Other}),
        wait_until(fun() -> unavailable(beamprof:snapshot()) =:= [] end, 10000)
    after
        ok = beamprof:stop()
    end,
    ?assertEqual({ok, Content}, file:read_file(File)),
    ?assertNot(filelib:is_file(File ++ ".prev")),
    Link = File ++ ".link",
    ok = file:make_symlink(File, Link),
    ?assertEqual({error, {unwritable, eloop}}, beamprof:start_recorder(#{file => Link})),
    ?assertEqual({error, {unwritable, enotdir}},
                 beamprof:start_recorder(#{file => filename:join(File, "x")})),
    ?assertEqual({error, {unwritable, enoent}},
                 beamprof:start_recorder(#{file => File ++ ".d/none/x"})),
    ?assertEqual({ok, Content}, file:read_file(File)).

%% Two VMs on one file: the second is refused while the first writes.
second_writer_locked(Config) ->
    File = ?config(file, Config),
    ok = beamprof:start_recorder(#{file => File, size => 65536}),
    {ok, Peer, _Node} = beamprof_ct:start_peer(#{}),
    try
        ?assertEqual({error, locked},
                     peer:call(Peer, beamprof, start_recorder, [#{file => File}])),
        ok = beamprof:stop_recorder(),
        ?assertEqual(ok, peer:call(Peer, beamprof, start_recorder,
                                   [#{file => File, size => 65536}])),
        ?assertEqual({error, locked}, beamprof:start_recorder(#{file => File})),
        ok = peer:call(Peer, beamprof, stop_recorder, [])
    after
        peer:stop(Peer)
    end,
    %% the peer's recording named another pid: ours moved it aside
    ok = beamprof:start_recorder(#{file => File, size => 65536}),
    ?assert(filelib:is_file(File ++ ".prev")).

%% --- under load --------------------------------------------------------------

%% High-priority spinners on every scheduler for 3 s starve the Erlang
%% side; the C thread's tick records keep coming at its 100 ms tick.
ticks_while_saturated(Config) ->
    File = ?config(file, Config),
    {ok, Peer, _Node} = beamprof_ct:start_peer(#{}),
    try
        ok = peer:call(Peer, beamprof, start, [#{recorder => #{file => File, size => 1048576}}]),
        wait_until(fun() -> count(File, tick) >= 3 end, 30000),
        {ok, _, Before} = beamprof_recorder_decode:file(File),
        Seq0 = lists:max([S || #{seq := S} <- Before]),
        T0 = os:system_time(millisecond),
        ok = peer:call(Peer, ?MODULE, saturate, [3000]),
        %% the call returns once the spinners run; the peer answers nothing
        %% more until they end
        wait_until(fun() -> os:system_time(millisecond) > T0 + 3500 end, 20000),
        {ok, _, After} = beamprof_recorder_decode:file(File),
        During = [R || #{seq := S, time := T} = R <- After, S > Seq0,
                       T >= T0 + 500, T =< T0 + 2500],
        Ticks = [R || #{kind := tick} = R <- During],
        Busy = [lists:sum([C || #{kind := normal, cpu := C} <- Th]) || #{threads := Th} <- Ticks],
        ct:log("2 s saturated: ~B ticks, ~B other records; normal threads' CPU per tick ~p",
               [length(Ticks), length(During) - length(Ticks), Busy]),
        ?assert(length(Ticks) >= 10),
        ?assert(lists:all(fun(#{demand := D}) -> D > 0.5 end, Ticks))
    after
        catch_stop(Peer)
    end.

%% Runs on the peer: a high-priority spinner per scheduler (online), each
%% ending after Ms milliseconds. Returns once they are spawned.
saturate(Ms) ->
    End = erlang:monotonic_time(millisecond) + Ms,
    [spawn_opt(fun() -> spin(End) end, [{priority, high}, {scheduler, I}])
     || I <- lists:seq(1, erlang:system_info(schedulers_online))],
    ok.

spin(End) ->
    case erlang:monotonic_time(millisecond) >= End of
        true -> ok;
        false -> _ = lists:seq(1, 100), spin(End)
    end.

%% A peer records under load (a registered mailbox growing by thousands of
%% messages a second, a process whose heap grows); its OS process is killed
%% with SIGKILL; this node reads the file: the newest record is within 1 s
%% of the kill, and the scans name the mailbox with its queue rising. A new
%% VM on the same file moves the killed one's recording to .prev.
killed_node_leaves_recording(Config) ->
    File = ?config(file, Config),
    Opts = #{recorder => #{file => File}, scan_interval => 500},
    {ok, Peer, _Node} = start_unlinked_peer(),
    OsPid = peer:call(Peer, os, getpid, []),
    ok = peer:call(Peer, beamprof, start, [Opts]),
    ok = peer:call(Peer, ?MODULE, load, []),
    wait_until(fun() -> length(queues(File)) >= 3 end, 60000),
    Killed = os:system_time(millisecond),
    _ = os:cmd("kill -9 " ++ OsPid),
    Dead = os:system_time(millisecond), % the shell's kill has returned
    catch_stop(Peer),
    {ok, #{os_pid := P}, Records} = beamprof_recorder_decode:file(File),
    ?assertEqual(list_to_integer(OsPid), P),
    %% the real readers see the same records: this node's, and the command
    %% line's (no VM), and the report draws them
    ?assertEqual({ok, Records}, beamprof:read_recording(File)),
    ?assertEqual([S || #{seq := S} <- Records], command_line_seqs(File)),
    Report = filename:join(?config(priv_dir, Config), "killed.html"),
    {ok, Report} = beamprof:recording_report(File, Report),
    {ok, Html} = file:read_file(Report),
    ?assertMatch([_, _, _ | _], binary:matches(Html, <<"<svg">>)),
    Newest = lists:max([T || #{time := T} <- Records]),
    Queues = queues(File),
    ct:log("killed at ~B, newest record ~B ms before; ~B records; queues of bp_rec_mailbox "
           "over the scans ~w", [Killed, Killed - Newest, length(Records), Queues]),
    ?assert(Killed - Newest < 1000),
    ?assert(Newest =< Dead + 10),
    ?assert(lists:last(Queues) > hd(Queues)),
    Heaps = [V || #{kind := scan, top := #{memory := Rows}} <- Records,
                  #{name := <<"bp_rec_heap">>, value := V} <- Rows],
    ct:log("memory of bp_rec_heap over the scans ~w", [Heaps]),
    ?assertMatch([_, _ | _], Heaps),
    %% a new VM on the same file: the killed node's recording is kept
    {ok, Peer2, _} = start_unlinked_peer(),
    try
        ok = peer:call(Peer2, beamprof, start, [Opts]),
        {ok, #{os_pid := P2}, [#{kind := header, seq := 1} | _]} =
            beamprof_recorder_decode:file(File),
        ?assertNotEqual(P, P2),
        ?assertMatch({ok, #{os_pid := P}, Records},
                     beamprof_recorder_decode:file(File ++ ".prev")),
        ?assertEqual({ok, Records}, beamprof:read_recording(File ++ ".prev"))
    after
        catch_stop(Peer2)
    end.

%% The sequence numbers beamprof_read (the command-line reader) prints for
%% File, one JSON line per record, in its order.
command_line_seqs(File) ->
    Exe = filename:join(code:priv_dir(beamprof), "beamprof_read"),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["--json", File]}, exit_status, binary, stream]),
    {0, Out} = beamprof_ct:port_output(Port),
    [binary_to_integer(S)
     || L <- binary:split(Out, <<"\n">>, [global, trim_all]),
        {match, [S]} <- [re:run(L, <<"\"seq\":([0-9]+)">>, [{capture, all_but_first, binary}])]].

start_unlinked_peer() ->
    peer:start(#{connection => standard_io, args => ["-pa" | code:get_path()]}).

catch_stop(Peer) ->
    try peer:stop(Peer) catch _:_ -> ok end.

%% Runs on the peer: a registered process whose mailbox grows (a sender
%% adds 200 messages every 50 ms: 4000/s) and one whose heap grows.
load() ->
    Mailbox = spawn(fun() -> register(bp_rec_mailbox, self()), hold() end),
    spawn(fun() -> feed(Mailbox) end),
    spawn(fun() -> register(bp_rec_heap, self()), grow([]) end),
    ok.

feed(Pid) ->
    [Pid ! {msg, I, <<"payload">>} || I <- lists:seq(1, 200)],
    receive after 50 -> feed(Pid) end.

grow(Acc) ->
    receive after 50 -> grow([lists:seq(1, 2000) | Acc]) end.

%% The queue lengths of bp_rec_mailbox over the file's scan records.
%% Read with beamprof's own reader while the node writes the file.
queues(File) ->
    case beamprof:read_recording(File, #{kinds => [scan]}) of
        {ok, Records} ->
            [V || #{kind := scan, top := #{message_queue_len := Rows}} <- Records,
                  #{name := <<"bp_rec_mailbox">>, value := V} <- Rows];
        {error, _} -> []
    end.

%% Read with beamprof's own reader while the node writes the file.
count(File, Kind) ->
    case beamprof:read_recording(File, #{kinds => [Kind]}) of
        {ok, Records} -> length(Records);
        {error, _} -> 0
    end.

%% The messages of the sample's recorder_unavailable warnings.
unavailable(#{warnings := Ws}) ->
    [M || #{code := recorder_unavailable, message := M} <- Ws];
unavailable(_) ->
    [].
