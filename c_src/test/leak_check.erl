%% Run by `make leak-check`: loads the ASan builds of both libraries into a
%% VM with the ASan runtime preloaded and LeakSanitizer on, exercises every
%% NIF of the core and 50 reloads (upgrade and fresh load paths) with the
%% sampler running, then the native sampler where it is built: runs, drains,
%% reloads of its module while running and of the core under a run (the
%% channel), purges both modules and halts. LeakSanitizer then reports
%% anything the libraries left allocated (the VM's own leftovers are
%% suppressed in test/lsan.supp).
-module(leak_check).
-export([run/0]).

-define(NIF, beamprof_nif).
-define(NATIVE, beamprof_native_nif).

run() ->
    {module, ?NIF} = code:ensure_loaded(?NIF),
    Cfg = #{tick_ms => 5, scheduler_high => 0.8, scheduler_low => 0.6,
            memory_high => 0.9, memory_low => 0.85, reopen_ticks => 1,
            memory_limit => 1},
    ok = ?NIF:sampler_start(Cfg, self()),
    [cycle(I) || I <- lists:seq(1, 50)],
    ok = ?NIF:sampler_stop(),
    ok = ?NIF:recorder_close(),
    _ = [file:delete(F) || F <- [rec_file(), rec_file() ++ ".prev"]],
    native(),
    [begin _ = code:purge(M), true = code:delete(M), _ = code:purge(M) end
     || M <- [?NATIVE, ?NIF]],
    io:format("leak_check: done~n"),
    halt(0).

cycle(I) ->
    _ = ?NIF:report_utilization(0.1),
    _ = [?NIF:F() || F <- [gate, gate_info, sched_cpu, memory, history, sampler_info,
                           native_channel]],
    scan_blocks(),
    recorder(I),
    reload(?NIF, I rem 5 =:= 0), %% an upgrade carries the open recording over %% fresh load every fifth: the thread is not carried
    ok = ?NIF:sampler_start(#{tick_ms => 5, scheduler_high => 0.8,
                              scheduler_low => 0.6, memory_high => 0.9,
                              memory_low => 0.85, reopen_ticks => 1,
                              memory_limit => I rem 2}, self()),
    receive after 12 -> ok end.

%% The flight recorder: a ring file open across the sampler's tick records
%% (ei's encoder and its buffer), an append, the info; reopened (resumed)
%% when an upgrade closed it or a fresh load dropped it.
recorder(I) ->
    case ?NIF:recorder_open(list_to_binary(rec_file()), 65536, 0,
                            term_to_binary(#{kind => header})) of
        {ok, _} -> ok;
        {error, already_open} -> ok; %% carried over by the upgrade
        {error, locked} -> ok %% a fresh load: the old library's unload is still to come
    end,
    _ = ?NIF:recorder_append(term_to_binary(#{kind => note, message => integer_to_binary(I)})),
    _ = {?NIF:recorder_info(), ?NIF:recorder_active()},
    ok.

rec_file() ->
    "/tmp/beamprof_leak_check." ++ os:getpid() ++ ".rec".

%% Large blocks the reaper thread frees: a window's replaced tables, and a
%% window and an id buffer dropped by a process that dies holding them.
scan_blocks() ->
    W = ?NIF:scan_window_new(),
    [_ = ?NIF:scan_window_begin(W, N) || N <- [100000, 100000, 10, 10]],
    {Pid, Ref} = spawn_monitor(fun() ->
                                       W2 = ?NIF:scan_window_new(),
                                       _ = ?NIF:scan_window_begin(W2, 100000),
                                       B = ?NIF:scan_buf_new(),
                                       _ = ?NIF:scan_buf_put(B, lists:duplicate(5000, self())),
                                       exit(done)
                               end),
    receive {'DOWN', Ref, process, Pid, done} -> ok end,
    _ = ?NIF:scan_reaper_info(),
    ok.

reload(Mod, Fresh) ->
    _ = code:purge(Mod),
    true = code:delete(Mod),
    case Fresh of
        true -> _ = code:purge(Mod);
        false -> ok
    end,
    {module, Mod} = code:load_file(Mod),
    ok.

%% The native sampler, where this machine builds it.
native() ->
    case ?NATIVE:load() of
        ok -> native_runs();
        {error, {unsupported, Why}} -> io:format("leak_check: native sampler skipped: ~p~n", [Why])
    end.

native_runs() ->
    Spin = spawn(fun Loop() -> Loop() end),
    [begin
         %% the vm_internals switch on and off in turn (this VM has no
         %% beamprof_config: every call says it)
         Internals = I rem 2 =:= 0,
         ok = ?NATIVE:start(#{hz => 999, vm_internals => Internals}),
         receive after 20 -> ok end,
         _ = ?NATIVE:drain(1000),
         reload(?NATIVE, I rem 5 =:= 0), %% upgrade (the run carried) or fresh
         ok = ?NATIVE:load(),
         reload(?NIF, false),            %% the core under a run: the channel holds it
         _ = ?NATIVE:info(Internals),
         Addrs = [A || {_, _, _, _, As} <- ?NATIVE:drain(100), A <- As],
         _ = ?NATIVE:symbolize(Addrs),
         %% full symbol tables: freed with the table term (GC below)
         Table = ?NATIVE:symbol_table("/usr/lib/debug"),
         _ = ?NATIVE:symbolize(Table, Addrs),
         _ = ?NATIVE:symbol_objects(Table),
         _ = ?NATIVE:jit_symbols(Internals),
         ok = ?NATIVE:stop(),
         _ = ?NATIVE:drain(1000000)
     end || I <- lists:seq(1, 20)],
    exit(Spin, kill),
    true = erlang:garbage_collect(), %% channel terms made here
    ok.
