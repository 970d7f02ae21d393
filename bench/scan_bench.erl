%% What finding the top processes costs, beamprof's scan against the naive
%% way that asks the same item (and recon's proc_count/2 and proc_window/3
%% when recon is on the code path), on a peer node of 10k, 100k and 500k
%% idle processes (+P raised).
%%
%% The baseline of each row is the naive way of the same key, measured in
%% the same run: for `message_queue_len' and `memory',
%% `[{P, process_info(P, Key)} || P <- processes()]', sorted, the first 10;
%% for `reductions', the same asked twice a window apart and diffed through a
%% map. recon's row of the same key is a second baseline when recon is on
%% the code path (it is not installed here: its rows are then skipped, and
%% the table says so).
%%
%% For each method: CPU of the whole peer VM (`statistics(runtime)', all
%% threads, ms; the peer is otherwise quiet), the peak heap of the process
%% doing the work (garbage-collection trace: heap + old heap blocks + heap
%% fragments; for beamprof running, its scanner process), and a 1 ms
%% pinger's worst gap between wakes (1 ms when nothing delays it) and its
%% gaps over 2 ms per second of the method's wall time; the "idle window"
%% row is the same pinger on the same peer doing nothing for 1 s, in the
%% same rounds: what this machine and VM do with no scan at all. Three rounds
%% of every method, one after the other (a slow spell of the host then falls
%% on all methods); per method the median CPU, the worst gap of the 3 and
%% the gaps over 2 ms per second over all 3. The floor row asks
%% `process_info(P, memory)' of every process and keeps nothing: what any
%% exact cold memory scan pays on OTP 25. For beamprof's own passes, also
%% the pid list's hand-off (erlang:processes() in a helper, into the C
%% buffer: 'fill') and the longest slice (wall), the largest of the 3 runs.
%% The reductions window is 1000 ms for every method; its CPU is what the
%% VM spent over the whole call ('beyond window' subtracts the idle row).
%% Then `beamprof:top()' (the whole screen) with beamprof running, wall and
%% CPU, and `beamprof_top:render/3' alone (the screen's text from a sample
%% and three tables already taken).
-module(scan_bench).

-export([run/0, run/1]).
%% run on the peer
-export([measure/2, measure_screen/0, start_running/0]).

-define(RUNS, 3).
-define(WINDOW_MS, 1000).

run() ->
    run([10000, 100000, 500000]).

run(Sizes) ->
    io:format("~nscan_bench: top 10 processes, beamprof against the naive way asking the same "
              "item (CPU of the whole VM, peak heap of the worker, a 1 ms pinger's gaps)~n"),
    Recon = code:which(recon) =/= non_existing,
    Recon orelse io:format("  (recon is not on the code path: its rows and the 'vs recon' "
                           "column are not run)~n"),
    lists:foreach(fun(N) -> size_run(N, Recon) end, Sizes).

size_run(N, Recon) ->
    Paths = lists:append([["-pa", P] || P <- code:get_path()]),
    {ok, Peer, _} = peer:start_link(#{connection => standard_io,
                                      args => ["+P", integer_to_list(2 * N + 100000) | Paths]}),
    try
        ok = peer:call(Peer, beamprof_ct, spawn_idle, [N], 120000),
        Methods = methods(Recon),
        %% Round after round of every method, so that a slow spell of the host
        %% falls on all of them rather than on one method's runs.
        Rounds = [[{Name, run_once(Peer, Method)} || {Name, Method} <- Methods]
                  || _ <- lists:seq(1, ?RUNS)],
        Rows = [{Name, summary([R || Round <- Rounds, {Name1, R} <- Round, Name1 =:= Name])}
                || {Name, _} <- Methods],
        io:format("~n  ~B idle processes~n", [N]),
        {_, #{cpu_ns := Idle}} = lists:keyfind({idle, window}, 1, Rows),
        bench_util:print_table(
          ["method", "cpu ms", "beyond window", "baseline", "vs baseline", "vs recon",
           "peak heap KiB", "worst gap ms", "gaps > 2 ms", "per s", "fill ms",
           "longest slice ms"],
          [[label(Name), bench_util:fmt(Cpu / 1.0e6), beyond(Name, Cpu, Idle),
            baseline(Name), ratio(Name, naive, Cpu, Rows), ratio(Name, recon, Cpu, Rows),
            bench_util:fmt(Heap div 1024), bench_util:fmt(Gap / 1000),
            io_lib:format("~B of ~B", [maps:get(over_2ms, R), maps:get(pings, R)]),
            bench_util:per_s(maps:get(over_2ms, R), maps:get(wall_us, R)),
            ms(maps:get(fill_us, R, none)), ms(maps:get(slice_us, R, none))]
           || {Name, #{cpu_ns := Cpu, heap_bytes := Heap, gap_us := Gap} = R} <- Rows]),
        io:format("  (naive K: [{P, process_info(P, K)} || P <- processes()] + sort, top 10; "
                  "naive reductions: the same twice, ~B ms apart, diffed in a map; 'beyond "
                  "window' subtracts the idle row; 'per s': gaps over 2 ms per second of the "
                  "method's wall time, all 3 rounds; the idle window row is the pinger alone)~n",
                  [?WINDOW_MS]),
        #{wall_ms := SW, cpu_ms := SC, runs := SR, render_us := RU} =
            peer:call(Peer, ?MODULE, measure_screen, [], 300000),
        io:format("  beamprof:top() (the whole screen: snapshot + top_all(5), beamprof running): "
                  "wall ~s ms, cpu ~s ms (median of ~B); beamprof_top:render/3 alone ~s ms~n",
                  [bench_util:fmt(SW), bench_util:fmt(SC), SR, bench_util:fmt(RU / 1000)])
    after
        peer:stop(Peer)
    end.

methods(Recon) ->
    Base = [{{idle, window}, idle},
            {{beamprof, message_queue_len}, {beamprof, [message_queue_len]}},
            {{naive, message_queue_len}, {naive, message_queue_len}},
            {{beamprof, memory}, {beamprof, [memory]}},
            {{'beamprof running', memory}, {running, memory}},
            {{naive, memory}, {naive, memory}},
            {{floor, memory}, {asks, memory}},
            {{beamprof, reductions}, {beamprof, [reductions]}},
            {{naive, reductions}, {naive_window, reductions}}],
    case Recon of
        true -> Base ++ [{{recon, memory}, {recon, memory}},
                         {{recon, message_queue_len}, {recon, message_queue_len}},
                         {{recon, reductions}, {recon_window, reductions}}];
        false -> Base
    end.

ms(none) -> "";
ms(Us) -> bench_util:fmt(Us / 1000).

label({idle, window}) -> "idle window (pinger alone, 1 s)";
label({floor, Key}) -> atom_to_list(Key) ++ " asks alone (floor)";
label({beamprof, memory}) -> "beamprof memory (cold)";
label({beamprof, reductions}) -> "beamprof reductions (1 s)";
label({naive, reductions}) -> "naive reductions (map diff)";
label({Who, Key}) -> atom_to_list(Who) ++ " " ++ atom_to_list(Key).
%% 'beamprof running memory': beamprof:top(memory, 10) with beamprof started
%% (through its scan server, after one periodic pass).

baseline({idle, _}) -> "";
baseline({naive, _}) -> "itself";
baseline({_, Key}) -> "naive " ++ atom_to_list(Key).

beyond({_, reductions}, Cpu, Idle) -> bench_util:fmt(max(0, Cpu - Idle) / 1.0e6);
beyond(_, _, _) -> "".

%% The row's CPU against the naive (or recon's) row of the same key.
ratio({idle, _}, _, _, _) -> "";
ratio({Who, _}, Who, _, _) -> "";
ratio({_, Key}, Base, Cpu, Rows) ->
    case lists:keyfind({Base, Key}, 1, Rows) of
        {_, #{cpu_ns := BaseCpu}} -> bench_util:ratio(Cpu, BaseCpu);
        false -> "n/a"
    end.

run_once(Peer, {running, _} = Method) ->
    ok = peer:call(Peer, ?MODULE, start_running, [], 300000),
    try peer:call(Peer, ?MODULE, measure, [Method, self()], 300000)
    after peer:call(Peer, beamprof, stop, [])
    end;
run_once(Peer, Method) ->
    peer:call(Peer, ?MODULE, measure, [Method, self()], 300000).

summary(Runs) ->
    All = fun(K) -> [maps:get(K, R) || R <- Runs] end,
    Phases = maps:from_list([{K, lists:max(All(K))}
                             || K <- [fill_us, slice_us], lists:all(fun(R) -> maps:is_key(K, R) end, Runs)]),
    Phases#{cpu_ns => bench_util:median(All(cpu_ns)),
            heap_bytes => round(bench_util:median(All(heap_bytes))),
            gap_us => lists:max(All(gap_us)), over_2ms => lists:sum(All(over_2ms)),
            pings => lists:sum(All(pings)), wall_us => lists:sum(All(wall_us))}.

%% --- on the peer ---------------------------------------------------------------

%% beamprof running, one periodic pass done (it keeps the memory of every
%% process in the scan window; the next pass asks again only processes
%% whose reductions or queue changed).
start_running() ->
    ok = logger:set_primary_config(level, warning),
    ok = beamprof:start(#{}),
    ok = beamprof_scan_server:scan_now().

%% beamprof:top() with beamprof running: the sample plus one pass through the
%% periodic scanner (three tables), printed into a group leader that drops
%% the text. Wall and whole-VM CPU, median of ?RUNS.
measure_screen() ->
    ok = logger:set_primary_config(level, warning),
    ok = beamprof:start(#{}),
    try
        _ = beamprof_scan_server:stats(),            % the baseline pass is done
        Null = spawn_link(fun null_io/0),
        Runs = [begin
                    {C0, _} = erlang:statistics(runtime),
                    T0 = erlang:monotonic_time(microsecond),
                    Self = self(),
                    spawn(fun() -> group_leader(Null, self()), Self ! {top, beamprof:top()} end),
                    ok = receive {top, R} -> R end,
                    {C1, _} = erlang:statistics(runtime),
                    {(erlang:monotonic_time(microsecond) - T0) / 1000, C1 - C0}
                end || _ <- lists:seq(1, ?RUNS)],
        unlink(Null),
        exit(Null, kill),
        Snapshot = beamprof:snapshot(),
        Tops = beamprof_scan:top_all(5),
        Render = [element(1, timer:tc(beamprof_top, render, [Snapshot, Tops, #{}]))
                  || _ <- lists:seq(1, 21)],
        #{wall_ms => bench_util:median([W || {W, _} <- Runs]),
          cpu_ms => bench_util:median([C || {_, C} <- Runs]), runs => ?RUNS,
          render_us => bench_util:median(Render)}
    after
        beamprof:stop()
    end.

null_io() ->
    receive
        {io_request, From, Ref, _Request} -> From ! {io_reply, Ref, ok}, null_io();
        _ -> null_io()
    end.

%% Runs Method in a fresh process traced for GC, with a 1 ms pinger. The
%% figures include the worker's exit (the naive ways free 74-130 MiB of heap
%% then): measured after it, that work fell into the next method's figures.
measure(Method, _Caller) ->
    erlang:garbage_collect(),
    settle(50),
    Watch = bench_util:watch(),
    Tracer = spawn(fun() -> gc_peak(0) end),
    Self = self(),
    {Worker, Mon} = spawn_monitor(fun() -> receive go -> ok end,
                                           Self ! {done, phases(work(Method))} end),
    1 = erlang:trace(Worker, true, [garbage_collection, {tracer, Tracer}]),
    %% beamprof running: the scan runs in its server; its heap is the scanner's
    _ = [erlang:trace(S, true, [garbage_collection, {tracer, Tracer}])
         || {running, _} <- [Method], S <- [whereis(beamprof_scan_server)], is_pid(S)],
    timer:sleep(20),
    {C0, _} = erlang:statistics(runtime),
    Worker ! go,
    Phases = receive {done, Ph} -> Ph end,
    receive {'DOWN', Mon, process, Worker, _} -> ok end,
    {C1, _} = erlang:statistics(runtime),
    #{max_us := Gap, count := Pings, over_2ms := Over, wall_us := Wall} =
        bench_util:unwatch(Watch),
    Tracer ! {stop, self()},
    Peak = receive {peak, P} -> P end,
    Phases#{cpu_ns => (C1 - C0) * 1000000, heap_bytes => Peak * erlang:system_info(wordsize),
            gap_us => Gap, pings => Pings, over_2ms => Over, wall_us => Wall}.

%% Waits (5 s at most) until the VM is quiet: under 5 ms of CPU in 100 ms.
%% The allocators give freed carriers back in the background, for a while
%% after a method that held 100 MiB ends: that work is not the next method's.
settle(0) -> ok;
settle(Tries) ->
    {_, _} = erlang:statistics(runtime),
    timer:sleep(100),
    case erlang:statistics(runtime) of
        {_, Ms} when Ms < 5 -> ok;
        _ -> settle(Tries - 1)
    end.

%% beamprof's own figures of the pass: the pid list's hand-off and the
%% longest slice (wall).
phases(#{fill_us := F, max_slice_us := S}) -> #{fill_us => F, slice_us => S};
phases(_) -> #{}.

work({running, Key}) ->
    beamprof:top(Key, 10);
work({beamprof, Keys}) ->
    beamprof_scan:local_top(Keys, 10, #{window_ms => ?WINDOW_MS});
work({asks, Item}) ->
    lists:foreach(fun(P) -> _ = erlang:process_info(P, Item) end, erlang:processes());
work(idle) ->
    timer:sleep(?WINDOW_MS);
work({naive, ItemOrItems}) ->
    lists:sublist(lists:reverse(lists:keysort(2, [{P, erlang:process_info(P, ItemOrItems)}
                                                   || P <- erlang:processes()])), 10);
work({naive_window, reductions}) ->
    First = maps:from_list([{P, R} || P <- erlang:processes(),
                                      {reductions, R} <- [erlang:process_info(P, reductions)]]),
    timer:sleep(?WINDOW_MS),
    Deltas = [{P, R - maps:get(P, First, 0)}
              || P <- erlang:processes(), {reductions, R} <- [erlang:process_info(P, reductions)]],
    lists:sublist(lists:reverse(lists:keysort(2, Deltas)), 10);
work({recon, Key}) ->
    apply(recon, proc_count, [Key, 10]);
work({recon_window, Key}) ->
    apply(recon, proc_window, [Key, 10, ?WINDOW_MS]).


gc_peak(Peak) ->
    receive
        {trace, _, _Event, Info} when is_list(Info) ->
            Size = proplists:get_value(heap_block_size, Info, 0)
                + proplists:get_value(old_heap_block_size, Info, 0)
                + proplists:get_value(mbuf_size, Info, 0),
            gc_peak(max(Peak, Size));
        {stop, From} ->
            From ! {peak, Peak}
    end.
