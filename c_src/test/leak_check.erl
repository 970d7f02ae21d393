%% Run by `make leak-check`: loads the ASan build of the library into a VM
%% with the ASan runtime preloaded and LeakSanitizer on, exercises every NIF
%% and 50 reloads (upgrade and fresh load paths) with the sampler running,
%% purges the module and halts. LeakSanitizer then reports anything the
%% library left allocated (the VM's own leftovers are suppressed in
%% test/lsan.supp).
-module(leak_check).
-export([run/0]).

-define(NIF, beamprof_nif).

run() ->
    {module, ?NIF} = code:ensure_loaded(?NIF),
    Cfg = #{tick_ms => 5, scheduler_high => 0.8, scheduler_low => 0.6,
            memory_high => 0.9, memory_low => 0.85, reopen_ticks => 1,
            memory_limit => 1},
    ok = ?NIF:sampler_start(Cfg, self()),
    [cycle(I) || I <- lists:seq(1, 50)],
    ok = ?NIF:sampler_stop(),
    _ = code:purge(?NIF),
    true = code:delete(?NIF),
    _ = code:purge(?NIF),
    io:format("leak_check: done~n"),
    halt(0).

cycle(I) ->
    _ = ?NIF:report_utilization(0.1),
    _ = [?NIF:F() || F <- [gate, gate_info, sched_cpu, memory, history, sampler_info]],
    _ = code:purge(?NIF),
    true = code:delete(?NIF),
    case I rem 5 of
        0 -> _ = code:purge(?NIF); %% fresh load: the thread is not carried
        _ -> ok
    end,
    {module, ?NIF} = code:load_file(?NIF),
    ok = ?NIF:sampler_start(#{tick_ms => 5, scheduler_high => 0.8,
                              scheduler_low => 0.6, memory_high => 0.9,
                              memory_low => 0.85, reopen_ticks => 1,
                              memory_limit => I rem 2}, self()),
    receive after 12 -> ok end.
