%% Common Test suite of the native sampler's capture NIFs (native_start/1,
%% native_stop/0, native_drain/1, native_info/0) in a real VM: which threads
%% get samples, that weights add up to CPU time x rate, thread selection,
%% 1,000 start/stop cycles under a GC-heavy load, refusal of a foreign
%% SIGPROF handler, stray signals after stop, and module purge/reload while
%% stopped and while running.
-module(beamprof_native_nif_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([off_costs_nothing/1, start_badarg/1, samples_shape/1,
         idle_schedulers_get_none/1, weights_match_cpu_time/1,
         thread_selection/1, already_started/1, start_stop_cycles/1,
         foreign_handler_refused/1, stray_signal_after_stop/1,
         reload_while_stopped/1, reload_while_running/1]).

-define(NIF, beamprof_nif).
-define(HELPER, bp_sigprof_helper).

all() ->
    [off_costs_nothing, start_badarg, samples_shape, idle_schedulers_get_none,
     weights_match_cpu_time, thread_selection, already_started,
     foreign_handler_refused, stray_signal_after_stop, start_stop_cycles,
     reload_while_stopped, reload_while_running].

init_per_suite(Config) ->
    {module, ?NIF} = code:ensure_loaded(?NIF),
    ok = build_helper(?config(data_dir, Config), ?config(priv_dir, Config)),
    Config.

end_per_suite(_Config) ->
    ok = ?NIF:native_stop().

init_per_testcase(_Case, Config) ->
    ok = ?NIF:native_stop(),
    _ = ?NIF:native_drain(1000000),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = ?HELPER:restore(),
    ok = ?NIF:native_stop(),
    _ = ?NIF:native_drain(1000000),
    ok.

%%--------------------------------------------------------------------
%% Helpers

%% Builds the test-only NIF that installs a foreign SIGPROF handler. The
%% compiler runs without the ASan runtime the VM may have preloaded.
build_helper(Data, Priv) ->
    Inc = filename:join([code:root_dir(), "erts-" ++ erlang:system_info(version), "include"]),
    So = filename:join(Priv, "bp_sigprof_helper"),
    Cmd = io_lib:format("env -u LD_PRELOAD cc -std=c11 -O1 -fPIC -shared -D_GNU_SOURCE "
                        "-I~ts -o ~ts.so ~ts 2>&1",
                        [Inc, So, filename:join(Data, "bp_sigprof_helper.c")]),
    Out = os:cmd(lists:flatten(Cmd)),
    ct:log("cc: ~ts", [Out]),
    {ok, ?HELPER, Bin} = compile:file(filename:join(Data, "bp_sigprof_helper.erl"),
                                      [binary, report]),
    {module, ?HELPER} = code:load_binary(?HELPER, "bp_sigprof_helper.erl", Bin),
    ok = ?HELPER:load(So).

task_names() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    [string:trim(B) || T <- Tasks,
                       {ok, B} <- [file:read_file("/proc/self/task/" ++ T ++ "/comm")]].

task_count() -> length(task_names()).

%% Busy processes bound to normal scheduler 1 (spawn_opt's scheduler
%% option) until the returned stop fun is called.
busy_on(Sched, N) ->
    Pids = [spawn_opt(fun spin/0, [{scheduler, Sched}]) || _ <- lists:seq(1, N)],
    fun() -> [exit(P, kill) || P <- Pids], ok end.

spin() -> spin(0).
spin(N) when N > 100000000 -> spin(0);
spin(N) -> spin(N + 1).

%% GC-heavy workers: build and drop lists.
gc_workers(N) ->
    Pids = [spawn(fun gc_loop/0) || _ <- lists:seq(1, N)],
    fun() -> [exit(P, kill) || P <- Pids], ok end.

gc_loop() ->
    _ = lists:reverse(lists:seq(1, 5000)),
    gc_loop().

%% Waits until the sampled threads used at least Ms of CPU (deadline 30 s).
wait_cpu(Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + 30000,
    wait_cpu(Ms * 1000000, Deadline).

wait_cpu(Ns, Deadline) ->
    #{cpu_ns := C} = ?NIF:native_info(),
    case C >= Ns orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> ok;
        false -> receive after 20 -> wait_cpu(Ns, Deadline) end
    end.

drain_all() -> drain_all([]).
drain_all(Acc) ->
    case ?NIF:native_drain(500) of
        [] -> lists:append(lists:reverse(Acc));
        S -> drain_all([S | Acc])
    end.

%%--------------------------------------------------------------------
%% Cases

off_costs_nothing(_Config) ->
    Info = ?NIF:native_info(),
    ct:log("~p", [Info]),
    #{running := false, threads := 0, frame_pointers := FP, mode := Mode} = Info,
    ?assert(lists:member(FP, [true, false, unknown])),
    ?assert(lists:member(Mode, [fp, scan, leaf])),
    ?assertNot(lists:member(<<"beamprof_native">>, task_names())),
    [] = ?NIF:native_drain(10).

start_badarg(_Config) ->
    Bad = [foo, [], #{hz => 0}, #{hz => 10001}, #{hz => 99.0}, #{hz => -1},
           #{threads => []}, #{threads => [normal | dirty_cpu]}, #{threads => [foo]},
           #{threads => normal}, #{depth => 0}, #{depth => 1025},
           #{stack_bytes => 7}, #{stack_bytes => 65544}, #{ring_bytes => 100000},
           #{ring_bytes => 1024}, #{ring_bytes => 1 bsl 27}],
    [?assertError(badarg, ?NIF:native_start(B)) || B <- Bad],
    {error, {invalid, ring_bytes}} =
        ?NIF:native_start(#{ring_bytes => 65536, stack_bytes => 65536}),
    %% The ring must hold 4 records: header (112) + stack window + frames + the
    %% 512 stitch bytes; 112 + 15752 + 8 + 512 = 16384, a quarter of 64 KiB.
    ok = ?NIF:native_start(#{ring_bytes => 65536, stack_bytes => 15752, depth => 1}),
    ok = ?NIF:native_stop(),
    {error, {invalid, ring_bytes}} =
        ?NIF:native_start(#{ring_bytes => 65536, stack_bytes => 15752, depth => 2}),
    [?assertError(badarg, ?NIF:native_drain(B)) || B <- [0, -1, foo, 1.0, []]],
    [] = ?NIF:native_drain(1 bsl 70),
    #{running := false} = ?NIF:native_info().

samples_shape(_Config) ->
    Stop = busy_on(1, 1),
    ok = ?NIF:native_start(#{hz => 999, depth => 16}),
    ok = wait_cpu(300),
    S = ?NIF:native_drain(1000000),
    ok = ?NIF:native_stop(),
    Stop(),
    ?assert(length(S) > 10),
    [begin
         ?assert(lists:member(K, [normal, dirty_cpu, dirty_io])),
         ?assert(is_integer(I) andalso I >= 1),
         ?assert(is_integer(W) andalso W >= 1),
         ?assert(is_boolean(T) orelse T =:= unrooted),
         ?assert(is_list(A) andalso A =/= [] andalso length(A) =< 16),
         [?assert(is_integer(X) andalso X >= 0) || X <- A]
     end || {K, I, W, T, A} <- S],
    #{drained := D} = ?NIF:native_info(),
    ?assertEqual(length(S), D).

%% A process spinning on normal scheduler 1 for ~1 s of CPU: scheduler 1
%% gets the samples; the dirty IO schedulers, idle, get none (the one
%% running native_start/stop itself may get a few).
idle_schedulers_get_none(_Config) ->
    Stop = busy_on(1, 1),
    ok = ?NIF:native_start(#{hz => 199}),
    ok = wait_cpu(1000),
    ok = ?NIF:native_stop(),
    Stop(),
    S = drain_all(),
    Count = fun(K, I) -> length([x || {K2, I2, _, _, _} <- S, K2 =:= K, I2 =:= I]) end,
    Busy = Count(normal, 1),
    IdleIo = [I || I <- lists:seq(1, erlang:system_info(dirty_io_schedulers)),
                   Count(dirty_io, I) =:= 0],
    ct:log("samples: ~p on normal 1, ~p on normal 2; dirty IO with none: ~p of ~p",
           [Busy, Count(normal, 2), length(IdleIo), erlang:system_info(dirty_io_schedulers)]),
    ?assert(Busy > 50),
    ?assert(length(IdleIo) >= erlang:system_info(dirty_io_schedulers) - 2).

%% The weights of all signals (kept, dropped and paused) add up to the
%% sampled threads' CPU time x hz, though the kernel delivers at most its
%% tick rate per thread (the overrun is the weight).
weights_match_cpu_time(_Config) ->
    Stop = busy_on(1, 1),
    Rates = [begin
                 ok = ?NIF:native_start(#{hz => Hz, threads => [normal]}),
                 ok = wait_cpu(1000),
                 ok = ?NIF:native_stop(),
                 #{weighted := W, lost_weight := L, cpu_ns := C, effective_hz := E,
                   samples := N} = ?NIF:native_info(),
                 _ = drain_all(),
                 Expected = C / 1.0e9 * Hz,
                 ct:log("hz ~p: ~p samples, weight ~p (+~p lost), expected ~.1f "
                        "over ~p ms CPU; effective ~.1f Hz", [Hz, N, W, L, Expected, C div 1000000, E]),
                 ?assert(W + L > 0.6 * Expected andalso W + L < 1.4 * Expected),
                 ?assert(E > 0.0 andalso E =< Hz * 1.2),
                 {Hz, E}
             end || Hz <- [99, 999]],
    Stop(),
    ct:comment("effective rates: ~p", [Rates]).

thread_selection(_Config) ->
    Stop = busy_on(1, 1),
    ok = ?NIF:native_start(#{threads => [dirty_cpu], hz => 999}),
    #{slots := Slots, thread_kinds := [dirty_cpu]} = ?NIF:native_info(),
    ?assertEqual(erlang:system_info(dirty_cpu_schedulers), Slots),
    receive after 300 -> ok end,
    ok = ?NIF:native_stop(),
    [] = [S || S <- drain_all(), element(1, S) =/= dirty_cpu],
    ok = ?NIF:native_start(#{threads => [normal], hz => 999}),
    #{slots := N2} = ?NIF:native_info(),
    ?assertEqual(erlang:system_info(schedulers), N2),
    ok = wait_cpu(200),
    ok = ?NIF:native_stop(),
    Stop(),
    S2 = drain_all(),
    ?assert(length(S2) > 0),
    [] = [S || S <- S2, element(1, S) =/= normal].

already_started(_Config) ->
    Base = task_count(),
    ok = ?NIF:native_start(#{}),
    ?assertEqual(Base + 1, task_count()),
    ?assert(lists:member(<<"beamprof_native">>, task_names())),
    {error, already_started} = ?NIF:native_start(#{}),
    #{running := true, hz := 99, depth := 128} = ?NIF:native_info(),
    ok = ?NIF:native_stop(),
    ok = ?NIF:native_stop(),
    ?assertEqual(Base, task_count()),
    %% our own scheduler threads are not counted: the thread has its name
    {_, Rows} = ?NIF:sched_cpu(),
    ?assertEqual(erlang:system_info(schedulers), length([x || {normal, _, _} <- Rows])).

foreign_handler_refused(_Config) ->
    ok = ?HELPER:install(),
    foreign = ?HELPER:disposition(),
    {error, {sigprof_in_use, Desc}} = ?NIF:native_start(#{}),
    ct:log("~ts", [Desc]),
    ?assertMatch({_, _}, binary:match(Desc, <<"bp_sigprof_helper">>)),
    foreign = ?HELPER:disposition(), %% not clobbered
    #{running := false} = ?NIF:native_info(),
    ok = ?HELPER:restore(),
    ok = ?NIF:native_start(#{}),
    handler_onstack = ?HELPER:disposition(),
    ok = ?NIF:native_stop().

%% After stop our handler stays: a stray SIGPROF is counted, not fatal.
stray_signal_after_stop(_Config) ->
    ok = ?NIF:native_start(#{}),
    ok = ?NIF:native_stop(),
    handler_onstack = ?HELPER:disposition(),
    [ok = ?HELPER:stray() || _ <- lists:seq(1, 20)],
    receive after 100 -> ok end,
    #{running := false} = ?NIF:native_info(),
    handler_onstack = ?HELPER:disposition().

start_stop_cycles(_Config) ->
    Base = task_count(),
    Stop = gc_workers(4),
    Busy = busy_on(1, 1),
    {Us, _} = timer:tc(fun() ->
        [begin
             ok = ?NIF:native_start(#{hz => 999}),
             _ = I rem 50 =:= 0 andalso is_list(?NIF:native_drain(100)),
             ok = ?NIF:native_stop()
         end || I <- lists:seq(1, 1000)]
    end),
    Stop(),
    Busy(),
    Info = ?NIF:native_info(),
    ct:log("1000 cycles in ~p ms; last run: ~p", [Us div 1000, Info]),
    ct:comment("1000 start/stop cycles: ~p ms", [Us div 1000]),
    #{running := false} = Info,
    ?assertEqual(Base, task_count()).

%%--------------------------------------------------------------------
%% Reload and purge (see beamprof_nif_SUITE for the mechanics)

purge() -> _ = code:purge(?NIF), ok.

lib_path() ->
    case os:getenv("BEAMPROF_NIF") of
        false -> filename:join(code:priv_dir(beamprof), "beamprof_nif");
        Path -> Path
    end.

upgrade() ->
    ok = purge(),
    true = code:delete(?NIF),
    {module, ?NIF} = code:load_file(?NIF).

fresh() ->
    ok = purge(),
    true = code:delete(?NIF),
    ok = purge(),
    {module, ?NIF} = code:load_file(?NIF).

reload_while_stopped(_Config) ->
    Base = task_count(),
    ok = ?NIF:native_start(#{}),
    ok = ?NIF:native_stop(),
    [begin upgrade(), #{running := false} = ?NIF:native_info() end || _ <- lists:seq(1, 10)],
    %% the last instance that installed the handler is gone: SIG_IGN, never
    %% a pointer into unloaded code, never SIG_DFL
    fresh(),
    ignore = ?HELPER:disposition(),
    %% the library that installed the handler stays mapped (pinned): a signal
    %% already on its way when the disposition changed still finds its code
    {ok, Maps} = file:read_file("/proc/self/maps"),
    %% (by file name: priv/ may be reached through a link, maps shows the target)
    Name = list_to_binary(filename:basename(lib_path()) ++ ".so"),
    ?assertNotEqual(nomatch, binary:match(Maps, <<"/", Name/binary, "\n">>)),
    ok = ?NIF:native_start(#{}),
    handler_onstack = ?HELPER:disposition(),
    ok = ?NIF:native_stop(),
    ?assertEqual(Base, task_count()).

reload_while_running(_Config) ->
    Base = task_count(),
    Busy = busy_on(1, 1),
    ok = ?NIF:native_start(#{hz => 999, threads => [normal]}),
    [begin
         upgrade(),
         #{running := true, hz := 999, thread_kinds := [normal]} = ?NIF:native_info(),
         ?assertEqual(Base + 1, task_count())
     end || _ <- lists:seq(1, 20)],
    ok = wait_cpu(100),
    #{samples := N} = ?NIF:native_info(),
    ?assert(N > 0),
    ?assertNotEqual([], drain_all()),
    fresh(), %% unload while running: timers gone, handler released
    ignore = ?HELPER:disposition(),
    #{running := false} = ?NIF:native_info(),
    Busy(),
    ok = purge(),
    ?assertEqual(Base, task_count()).
