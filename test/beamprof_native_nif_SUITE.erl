%% Common Test suite of the native sampler's capture NIFs (beamprof_native_nif:
%% start/1, stop/0, drain/1, info/0) in a real VM: which threads
%% get samples, that weights add up to CPU time x rate, thread selection,
%% 1,000 start/stop cycles under a GC-heavy load, refusal of a foreign
%% SIGPROF handler, stray signals after stop, module purge/reload while
%% stopped and while running, the channel from the core library (what is
%% refused) and the core instance a run's channel came from staying loaded,
%% with the gate it reads, until the run stops.
-module(beamprof_native_nif_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([off_costs_nothing/1, start_badarg/1, samples_shape/1,
         idle_schedulers_get_none/1, weights_match_cpu_time/1,
         thread_selection/1, already_started/1, start_stop_cycles/1,
         foreign_handler_refused/1, stray_signal_after_stop/1,
         reload_while_stopped/1, reload_while_running/1, channel_checked/1,
         gate_through_channel/1, core_reload_while_running/1, vm_readv_denied/1,
         info_while_start_holds_lock/1]).

-define(NIF, beamprof_native_nif).
-define(HELPER, bp_sigprof_helper).

all() ->
    [off_costs_nothing, start_badarg, samples_shape, idle_schedulers_get_none,
     weights_match_cpu_time, thread_selection, already_started,
     foreign_handler_refused, stray_signal_after_stop, start_stop_cycles,
     reload_while_stopped, reload_while_running, channel_checked, gate_through_channel,
     core_reload_while_running, vm_readv_denied, info_while_start_holds_lock].

init_per_suite(Config) ->
    case beamprof_ct:native_suite(Config) of
        {skip, _} = Skip ->
            Skip;
        _ ->
            ok = build_helper(?config(data_dir, Config), ?config(priv_dir, Config)),
            Config
    end.

end_per_suite(_Config) ->
    ok = ?NIF:stop().

init_per_testcase(_Case, Config) ->
    ok = ?NIF:stop(),
    _ = ?NIF:drain(1000000),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = ?HELPER:restore(),
    ok = ?NIF:stop(),
    _ = ?NIF:drain(1000000),
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
    #{cpu_ns := C} = ?NIF:info(),
    case C >= Ns orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> ok;
        false -> receive after 20 -> wait_cpu(Ns, Deadline) end
    end.

drain_all() -> drain_all([]).
drain_all(Acc) ->
    case ?NIF:drain(500) of
        [] -> lists:append(lists:reverse(Acc));
        S -> drain_all([S | Acc])
    end.

%%--------------------------------------------------------------------
%% Cases

off_costs_nothing(_Config) ->
    Info = ?NIF:info(),
    ct:log("~p", [Info]),
    #{running := false, threads := 0, frame_pointers := FP, mode := Mode} = Info,
    ?assert(lists:member(FP, [true, false, unknown])),
    ?assert(lists:member(Mode, [fp, scan, leaf])),
    ?assertNot(lists:member(<<"beamprof_native">>, task_names())),
    [] = ?NIF:drain(10).

start_badarg(_Config) ->
    Bad = [foo, [], #{hz => 0}, #{hz => 10001}, #{hz => 99.0}, #{hz => -1},
           #{threads => []}, #{threads => [normal | dirty_cpu]}, #{threads => [foo]},
           #{threads => normal}, #{depth => 0}, #{depth => 1025},
           #{stack_bytes => 7}, #{stack_bytes => 65544}, #{ring_bytes => 100000},
           #{ring_bytes => 1024}, #{ring_bytes => 1 bsl 27}, #{test_hooks => [nope]},
           #{test_hooks => deny_vm_readv}, #{test_hooks => [deny_vm_readv | x]}],
    [?assertError(badarg, ?NIF:start(B)) || B <- Bad],
    {error, {invalid, ring_bytes}} =
        ?NIF:start(#{ring_bytes => 65536, stack_bytes => 65536}),
    %% The ring must hold 4 records: header (112) + stack window + frames + the
    %% 512 stitch bytes; 112 + 15752 + 8 + 512 = 16384, a quarter of 64 KiB.
    ok = ?NIF:start(#{ring_bytes => 65536, stack_bytes => 15752, depth => 1}),
    ok = ?NIF:stop(),
    {error, {invalid, ring_bytes}} =
        ?NIF:start(#{ring_bytes => 65536, stack_bytes => 15752, depth => 2}),
    [?assertError(badarg, ?NIF:drain(B)) || B <- [0, -1, foo, 1.0, []]],
    [] = ?NIF:drain(1 bsl 70),
    #{running := false} = ?NIF:info().

samples_shape(_Config) ->
    Stop = busy_on(1, 1),
    ok = ?NIF:start(#{hz => 999, depth => 16}),
    ok = wait_cpu(300),
    S = ?NIF:drain(1000000),
    ok = ?NIF:stop(),
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
    #{drained := D} = ?NIF:info(),
    ?assertEqual(length(S), D).

%% A process spinning on normal scheduler 1 for ~1 s of CPU: scheduler 1
%% gets the samples; the dirty IO schedulers, idle, get none (the one
%% running native_start/stop itself may get a few).
idle_schedulers_get_none(_Config) ->
    Stop = busy_on(1, 1),
    ok = ?NIF:start(#{hz => 199}),
    ok = wait_cpu(1000),
    ok = ?NIF:stop(),
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

%% The weights of all signals (kept and dropped) add up to the
%% sampled threads' CPU time x hz, though the kernel delivers at most its
%% tick rate per thread (the overrun is the weight).
weights_match_cpu_time(_Config) ->
    Stop = busy_on(1, 1),
    Rates = [begin
                 ok = ?NIF:start(#{hz => Hz, threads => [normal]}),
                 ok = wait_cpu(1000),
                 ok = ?NIF:stop(),
                 #{weighted := W, lost_weight := L, cpu_ns := C, effective_hz := E,
                   samples := N} = ?NIF:info(),
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
    ok = ?NIF:start(#{threads => [dirty_cpu], hz => 999}),
    #{slots := Slots, thread_kinds := [dirty_cpu]} = ?NIF:info(),
    ?assertEqual(erlang:system_info(dirty_cpu_schedulers), Slots),
    receive after 300 -> ok end,
    ok = ?NIF:stop(),
    [] = [S || S <- drain_all(), element(1, S) =/= dirty_cpu],
    ok = ?NIF:start(#{threads => [normal], hz => 999}),
    #{slots := N2} = ?NIF:info(),
    ?assertEqual(erlang:system_info(schedulers), N2),
    ok = wait_cpu(200),
    ok = ?NIF:stop(),
    Stop(),
    S2 = drain_all(),
    ?assert(length(S2) > 0),
    [] = [S || S <- S2, element(1, S) =/= normal].

already_started(_Config) ->
    Base = task_count(),
    ok = ?NIF:start(#{}),
    ?assertEqual(Base + 1, task_count()),
    ?assert(lists:member(<<"beamprof_native">>, task_names())),
    {error, already_started} = ?NIF:start(#{}),
    #{running := true, hz := 99, depth := 128} = ?NIF:info(),
    ok = ?NIF:stop(),
    ok = ?NIF:stop(),
    ?assertEqual(Base, task_count()),
    %% our own scheduler threads are not counted: the thread has its name
    {_, Rows} = beamprof_nif:sched_cpu(),
    ?assertEqual(erlang:system_info(schedulers), length([x || {normal, _, _} <- Rows])).

foreign_handler_refused(_Config) ->
    ok = ?HELPER:install(),
    foreign = ?HELPER:disposition(),
    {error, {sigprof_in_use, Desc}} = ?NIF:start(#{}),
    ct:log("~ts", [Desc]),
    ?assertMatch({_, _}, binary:match(Desc, <<"bp_sigprof_helper">>)),
    foreign = ?HELPER:disposition(), %% not clobbered
    #{running := false} = ?NIF:info(),
    ok = ?HELPER:restore(),
    ok = ?NIF:start(#{}),
    handler_onstack = ?HELPER:disposition(),
    ok = ?NIF:stop().

%% After stop our handler stays: a stray SIGPROF is counted, not fatal.
%% A SIGPROF after stop finds our handler still installed, is counted as
%% stray (info/0's `stray', since the library was loaded), and the VM goes
%% on: from the helper NIF (raise on the calling scheduler thread) and from
%% `kill -PROF' of the OS pid (to any thread of the process).
stray_signal_after_stop(_Config) ->
    ok = ?NIF:start(#{}),
    ok = ?NIF:stop(),
    handler_onstack = ?HELPER:disposition(),
    #{stray := S0} = ?NIF:info(),
    %% one at a time: a pending SIGPROF absorbs another one sent meanwhile
    Send = fun(Sender, S) ->
                   ok = Sender(),
                   ok = beamprof_ct:wait_until(fun() -> stray() > S end, 10000),
                   stray()
           end,
    S1 = lists:foldl(fun(_, S) -> Send(fun ?HELPER:stray/0, S) end, S0, lists:seq(1, 5)),
    S2 = Send(fun() -> "" = os:cmd("kill -PROF " ++ os:getpid()), ok end, S1),
    ct:log("stray: ~p -> ~p -> ~p", [S0, S1, S2]),
    ?assert(S1 >= S0 + 5),
    #{running := false} = ?NIF:info(),
    handler_onstack = ?HELPER:disposition().

stray() -> maps:get(stray, ?NIF:info()).

start_stop_cycles(_Config) ->
    Base = task_count(),
    Stop = gc_workers(4),
    Busy = busy_on(1, 1),
    {Us, _} = timer:tc(fun() ->
        [begin
             ok = ?NIF:start(#{hz => 999}),
             _ = I rem 50 =:= 0 andalso is_list(?NIF:drain(100)),
             ok = ?NIF:stop()
         end || I <- lists:seq(1, 1000)]
    end),
    Stop(),
    Busy(),
    Info = ?NIF:info(),
    ct:log("1000 cycles in ~p ms; last run: ~p", [Us div 1000, Info]),
    ct:comment("1000 start/stop cycles: ~p ms", [Us div 1000]),
    #{running := false} = Info,
    ?assertEqual(Base, task_count()).

%%--------------------------------------------------------------------
%% Reload and purge (see beamprof_nif_SUITE for the mechanics)

purge() -> _ = code:purge(?NIF), ok.

lib_path() ->
    case os:getenv("BEAMPROF_NATIVE_NIF") of
        false -> filename:join(code:priv_dir(beamprof), "beamprof_native_nif");
        Path -> Path
    end.

%% New code over the running library: its first use (load/0 here) loads the
%% library again, which takes the old instance's run over (upgrade).
upgrade() ->
    ok = purge(),
    true = code:delete(?NIF),
    {module, ?NIF} = code:load_file(?NIF),
    ok = ?NIF:load().

%% The library unloaded (purge), then fresh code without it: loaded again on
%% first use.
fresh() ->
    ok = purge(),
    true = code:delete(?NIF),
    ok = purge(),
    {module, ?NIF} = code:load_file(?NIF).

reload_while_stopped(_Config) ->
    Base = task_count(),
    ok = ?NIF:start(#{}),
    ok = ?NIF:stop(),
    [begin upgrade(), #{running := false} = ?NIF:info() end || _ <- lists:seq(1, 10)],
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
    ok = ?NIF:start(#{}),
    handler_onstack = ?HELPER:disposition(),
    ok = ?NIF:stop(),
    ?assertEqual(Base, task_count()).

reload_while_running(_Config) ->
    Base = task_count(),
    Busy = busy_on(1, 1),
    ok = ?NIF:start(#{hz => 999, threads => [normal]}),
    [begin
         upgrade(),
         #{running := true, hz := 999, thread_kinds := [normal]} = ?NIF:info(),
         ?assertEqual(Base + 1, task_count())
     end || _ <- lists:seq(1, 20)],
    ok = wait_cpu(100),
    #{samples := N} = ?NIF:info(),
    ?assert(N > 0),
    ?assertNotEqual([], drain_all()),
    fresh(), %% unload while running: timers gone, handler released
    ignore = ?HELPER:disposition(),
    #{running := false} = ?NIF:info(),
    Busy(),
    ok = purge(),
    ?assertEqual(Base, task_count()).

%%--------------------------------------------------------------------
%% The channel from the core library (c_src/README.md, "The channel")

%% Only a channel the core made in this VM is taken: a copy of its bytes,
%% another binary or another term raise badarg, before anything starts.
channel_checked(_Config) ->
    Ch = beamprof_nif:native_channel(),
    ?assert(is_binary(Ch)),
    Bad = [binary:copy(Ch), binary_to_term(term_to_binary(Ch)), <<>>,
           binary:part(Ch, 0, byte_size(Ch) - 1), <<0:(8 * byte_size(Ch))>>, foo, [Ch]],
    [?assertError(badarg, ?NIF:start(#{}, B)) || B <- Bad],
    #{running := false} = ?NIF:info(),
    ok = ?NIF:start(#{}, Ch),
    {error, already_started} = ?NIF:start(#{}, beamprof_nif:native_channel()),
    ok = ?NIF:stop(),
    %% a config error is still badarg with a good channel
    ?assertError(badarg, ?NIF:start(#{hz => 0}, Ch)).

core_config(Limit) ->
    #{tick_ms => 20, scheduler_high => 0.80, scheduler_low => 0.60,
      memory_high => 0.90, memory_low => 0.85, reopen_ticks => 1, memory_limit => Limit}.

%% The run reads the core's published gate through the channel: while the
%% core's sampler holds it closed (memory over a 1-byte limit) the run keeps
%% sampling, at hz_under_gate (99) instead of 999: samples are `gated',
%% signals in between `thinned', the closed time counted; once it reopens
%% samples are no longer gated.
gate_through_channel(_Config) ->
    Busy = busy_on(1, 1),
    ok = beamprof_nif:sampler_start(core_config(1), self()),
    receive {beamprof_gate, closed, {memory, _}, _} -> ok
    after 10000 -> ct:fail(no_close_message)
    end,
    ok = ?NIF:start(#{hz => 999, threads => [normal]}),
    #{hz_under_gate := 99} = ?NIF:info(),
    beamprof_ct:wait_until(fun() -> maps:get(gated, ?NIF:info()) >= 10 end, 30000),
    #{thinned := T1, samples := S1, gated := G1, gate_closed_ns := C1} = ?NIF:info(),
    ct:log("gate closed: ~p thinned, ~p samples (~p gated), closed ~p ms",
           [T1, S1, G1, C1 div 1000000]),
    ?assert(T1 > 0),
    ?assertEqual(S1, G1),
    ok = beamprof_nif:sampler_start(core_config(0), self()), %% reconfigured: reopens
    receive {beamprof_gate, open, _, _} -> ok
    after 10000 -> ct:fail(no_open_message)
    end,
    beamprof_ct:wait_until(fun() -> #{samples := S, gated := G} = ?NIF:info(),
                                    S - G > 10 end, 30000),
    ok = ?NIF:stop(),
    #{gate_closed_ns := C2, wall_ns := W2} = ?NIF:info(),
    ?assert(C2 >= C1 andalso C2 =< W2),
    ok = beamprof_nif:sampler_stop(),
    Busy().

core_lib_path() ->
    case os:getenv("BEAMPROF_NIF") of
        false -> filename:join(code:priv_dir(beamprof), "beamprof_nif");
        Path -> Path
    end.

%% Loads beamprof_nif from the library at Path (without ".so") as new code.
load_core(Path) ->
    true = os:putenv("BEAMPROF_NIF", Path),
    _ = code:purge(beamprof_nif),
    true = code:delete(beamprof_nif),
    {module, beamprof_nif} = code:load_file(beamprof_nif),
    ok.

core_mapped(Path) ->
    {ok, Maps} = file:read_file("/proc/self/maps"),
    binary:match(Maps, list_to_binary(Path ++ ".so")) =/= nomatch.

%% A run keeps the core instance its channel came from: that instance's
%% module purged (two copies of the core library, so its mapping can be
%% told apart), its library stays mapped and the run keeps sampling and
%% reading its gate; once the run stops and the channel term is gone, ERTS
%% runs the deferred unload and unmaps it.
core_reload_while_running(Config) ->
    Priv = ?config(priv_dir, Config),
    Orig = os:getenv("BEAMPROF_NIF"),
    Src = core_lib_path(),
    [A, B] = [begin
                  Base = filename:join([Priv, N, "beamprof_nif"]),
                  ok = filelib:ensure_dir(Base),
                  {ok, _} = file:copy(Src ++ ".so", Base ++ ".so"),
                  Base
              end || N <- ["core_a", "core_b"]],
    Busy = busy_on(1, 1),
    try
        ok = load_core(A),
        ok = ?NIF:start(#{hz => 999, threads => [normal]}),
        ok = load_core(B),
        _ = code:purge(beamprof_nif), %% A's instance: old code, purged
        ?assert(core_mapped(A)),
        #{samples := S0} = ?NIF:info(),
        beamprof_ct:wait_until(fun() -> maps:get(samples, ?NIF:info()) > S0 + 10 end, 30000),
        #{running := true, gated := 0, thinned := 0} = ?NIF:info(),
        ?assertNotEqual([], drain_all()),
        ok = ?NIF:stop(),
        true = erlang:garbage_collect(), %% the channel terms start/1 made here
        beamprof_ct:wait_until(fun() -> not core_mapped(A) end, 10000),
        ?assert(core_mapped(B))
    after
        Busy(),
        case Orig of
            false -> os:unsetenv("BEAMPROF_NIF");
            _ -> os:putenv("BEAMPROF_NIF", Orig)
        end,
        ok = load_core(core_lib_path()),
        _ = code:purge(beamprof_nif)
    end,
    beamprof_ct:wait_until(fun() -> not core_mapped(B) end, 10000).

%%--------------------------------------------------------------------
%% Fallbacks and the control lock

%% process_vm_readv denied at start (the test-only hook makes the probe
%% report it): the run still samples, reads no stack (no window copied, no
%% JIT frame walked: one address per sample) and info says vm_readv =>
%% denied; the next start without the hook probes again and reads stacks.
vm_readv_denied(_Config) ->
    #{vm_readv := V0} = ?NIF:info(),
    ?assert(lists:member(V0, [ok, untested])),
    %% GC-heavy workers: samples in C (the collector) that have callers to
    %% unwind when the stack can be read; a spinner's samples are JIT code
    %% alone where the VM keeps no frame pointers
    Busy = gc_workers(2),
    ok = ?NIF:start(#{hz => 999, threads => [normal], test_hooks => [deny_vm_readv]}),
    ok = wait_cpu(300),
    ok = ?NIF:stop(),
    #{vm_readv := denied, stack_bytes := 0, jit_walks := 0} = ?NIF:info(),
    Samples = drain_all(),
    ?assert(length(Samples) > 10),
    [] = [S || {_, _, _, _, Addrs} = S <- Samples, length(Addrs) =/= 1],
    ok = ?NIF:start(#{hz => 999, threads => [normal]}),
    ok = wait_cpu(300),
    ok = ?NIF:stop(),
    Busy(),
    #{vm_readv := ok, stack_bytes := 16384} = ?NIF:info(),
    ?assert(lists:any(fun({_, _, _, _, Addrs}) -> length(Addrs) > 1 end, drain_all())).

%% info never waits for the control lock: while a start holds it (the
%% test-only slow_start hook keeps it 3 s longer), info answers from the
%% last copy (cached => true) before the start has returned.
info_while_start_holds_lock(_Config) ->
    #{cached := false} = ?NIF:info(),
    Self = self(),
    Starter = spawn_link(fun() ->
                                 Self ! {started, ?NIF:start(#{test_hooks => [slow_start]})}
                         end),
    ok = beamprof_ct:wait_until(fun() -> maps:get(cached, ?NIF:info()) end, 10000),
    Info = ?NIF:info(),
    %% the start still holds the lock: it has not answered yet
    receive {started, _} = Early -> ct:fail({start_answered_first, Early})
    after 0 -> ok
    end,
    ct:log("while start holds the lock: ~p", [Info]),
    receive {started, ok} -> ok
    after 60000 -> ct:fail(start_never_answered)
    end,
    unlink(Starter),
    #{running := true, cached := false} = ?NIF:info(),
    ok = ?NIF:stop().
