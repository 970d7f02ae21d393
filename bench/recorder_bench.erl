%% recorder_bench: what the flight recorder costs, and how long its ring lasts.
%%
%% Phases, each Seconds long, in one VM with 10k idle processes:
%%   1. beamprof at its defaults without the recorder (the baseline): the C
%%      sampler thread's CPU (beamprof_nif:sampler_info() cpu_ns delta) and
%%      the Erlang sampler's busy time, as % of one core;
%%   2. the same with the recorder at its defaults (16 MiB ring, a file in a
%%      temporary directory): the same figures, and the C thread's CPU spent
%%      on tick records (recorder_info() tick_cpu_ns / tick_records: ns per
%%      tick record, measured around each record on the thread's CPU clock);
%%      bytes written per minute on this idle node;
%%   3. the recorder on a busy node: a spinner per scheduler, a mailbox
%%      growing by 2000 messages a second, the periodic scan every second;
%%      bytes per minute again.
%% Then: the cost of one Erlang-side record through the append NIF (an
%% interval-sized term: term_to_binary, the safe-decode check and the copy),
%% median of 5 runs of 20k appends; the record sizes by kind from the file
%% (decoded with test/beamprof_recorder_decode.erl); and the ring's coverage
%% in minutes at 16 MiB from the bytes per minute of phases 2 and 3, with
%% the tick record's size per scheduler thread for other machines.
-module(recorder_bench).

-export([run/0, run/1]).

-define(PROCS, 10000).
-define(RING, 16 * 1024 * 1024).

run() -> run(20).

run(Seconds) ->
    Procs = [spawn(fun idle/0) || _ <- lists:seq(1, ?PROCS)],
    Ms = Seconds * 1000,
    Dir = filename:join(["/tmp", "beamprof_recorder_bench." ++ os:getpid()]),
    ok = filelib:ensure_path(Dir),
    File = filename:join(Dir, "bench.rec"),
    Base = phase(Ms, #{}, idle),
    Idle = phase(Ms, #{recorder => #{file => File}}, idle),
    Sizes = sizes(File),
    ok = file:delete(File),
    Busy = phase(Ms, #{recorder => #{file => File}, scan_interval => 1000}, busy),
    BusySizes = sizes(File),
    Append = append_cost(File),
    [exit(P, kill) || P <- Procs],
    _ = [file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*"))],
    _ = file:del_dir(Dir),
    report(Seconds, Base, Idle, Busy, Sizes, BusySizes, Append).

idle() ->
    receive stop -> ok end.

%% One phase: beamprof with Opts for Ms; its CPU and the recorder's counters.
phase(Ms, Opts, Load) ->
    bench_util:start_beamprof(Opts),
    Stop = load(Load),
    #{cpu_ns := C0} = beamprof_nif:sampler_info(),
    #{busy_ns := B0} = beamprof_sampler:stats(),
    R0 = rec_info(),
    T0 = erlang:monotonic_time(nanosecond),
    timer:sleep(Ms),
    #{cpu_ns := C1} = beamprof_nif:sampler_info(),
    #{busy_ns := B1} = beamprof_sampler:stats(),
    R1 = rec_info(),
    Elapsed = erlang:monotonic_time(nanosecond) - T0,
    Stop(),
    ok = beamprof:stop(),
    #{thread => (C1 - C0) / Elapsed, erlang => (B1 - B0) / Elapsed, elapsed => Elapsed,
      bytes => maps:get(bytes_written, R1) - maps:get(bytes_written, R0),
      frames => maps:get(frames, R1) - maps:get(frames, R0),
      tick_ns => maps:get(tick_cpu_ns, R1) - maps:get(tick_cpu_ns, R0),
      ticks => maps:get(tick_records, R1) - maps:get(tick_records, R0)}.

rec_info() ->
    case beamprof:recorder_info() of
        undefined -> #{bytes_written => 0, frames => 0, tick_cpu_ns => 0, tick_records => 0};
        Info -> Info
    end.

load(idle) ->
    fun() -> ok end;
load(busy) ->
    Spinners = [spawn(fun spin/0) || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Mailbox = spawn(fun() -> register(bench_mailbox, self()), idle() end),
    Feeder = spawn(fun() -> feed(Mailbox) end),
    fun() -> [exit(P, kill) || P <- [Feeder, Mailbox | Spinners]], ok end.

spin() ->
    _ = lists:seq(1, 100),
    spin().

feed(Pid) ->
    [Pid ! {msg, I} || I <- lists:seq(1, 100)],
    receive after 50 -> feed(Pid) end.

%% ns per Erlang-side record: term_to_binary + append NIF, and the NIF alone.
append_cost(File) ->
    ok = beamprof:start_recorder(#{file => File, size => ?RING}),
    Record = #{kind => interval,
               utilization => #{normal => [0.5 || _ <- lists:seq(1, 8)], dirty_cpu => [0.0],
                                dirty_io => [0.0]},
               run_queues => [0 || _ <- lists:seq(1, 10)],
               memory => maps:from_list([{K, 123456789} || K <- [total, processes, binary, ets,
                                                                 atom, code, system]]),
               process_count => 10000, port_count => 10},
    Bin = term_to_binary(Record),
    N = 20000,
    Whole = bench_util:median([per_call(fun() -> beamprof_nif:recorder_append(
                                                   term_to_binary(Record)) end, N)
                               || _ <- lists:seq(1, 5)]),
    Nif = bench_util:median([per_call(fun() -> beamprof_nif:recorder_append(Bin) end, N)
                             || _ <- lists:seq(1, 5)]),
    Encode = bench_util:median([per_call(fun() -> term_to_binary(Record) end, N)
                                || _ <- lists:seq(1, 5)]),
    ok = beamprof:stop_recorder(),
    #{whole => Whole, nif => Nif, encode => Encode, size => byte_size(Bin)}.

per_call(Fun, N) ->
    T0 = erlang:monotonic_time(nanosecond),
    loop(Fun, N),
    (erlang:monotonic_time(nanosecond) - T0) / N.

loop(_Fun, 0) -> ok;
loop(Fun, N) -> _ = Fun(), loop(Fun, N - 1).

%% Payload bytes per kind: #{Kind => {Count, MeanBytes}}; the tick's threads.
sizes(File) ->
    {ok, _, Records} = beamprof_recorder_decode:file(File),
    ByKind = lists:foldl(fun(#{kind := K} = R, Acc) ->
                                 Size = byte_size(term_to_binary(maps:without([seq, mono_ns, time], R))),
                                 maps:update_with(K, fun({C, S}) -> {C + 1, S + Size} end,
                                                  {1, Size}, Acc)
                         end, #{}, Records),
    Threads = case [T || #{kind := tick, threads := T} <- Records] of
                  [T | _] -> length(T);
                  [] -> 0
              end,
    {maps:map(fun(_, {C, S}) -> {C, S / C} end, ByKind), Threads}.

report(Seconds, Base, Idle, Busy, {IdleSizes, Threads}, {BusySizes, _}, Append) ->
    io:format("~nrecorder_bench: ~b s per phase, ~b idle processes, ~b schedulers; "
              "figures from a shared machine are indicative~n",
              [Seconds, ?PROCS, erlang:system_info(schedulers)]),
    bench_util:print_table(
      ["phase", "C thread % core", "Erlang sampler % core", "records", "KiB/min",
       "16 MiB lasts (min)"],
      [row("beamprof, no recorder (baseline)", Base),
       row("beamprof + recorder, idle node", Idle),
       row("beamprof + recorder, busy node", Busy)]),
    TickNs = maps:get(tick_ns, Idle) / max(1, maps:get(ticks, Idle)),
    BusyTickNs = maps:get(tick_ns, Busy) / max(1, maps:get(ticks, Busy)),
    io:format("  C thread per tick record (its CPU clock around encode + append): "
              "~ts ns idle, ~ts ns busy; recorder's share of one core at the 100 ms tick: "
              "~ts %~n",
              [bench_util:fmt(TickNs), bench_util:fmt(BusyTickNs),
               bench_util:fmt(TickNs * 10 / 1.0e7)]),
    io:format("  C thread with recorder / without: ~ts~n",
              [bench_util:ratio(maps:get(thread, Idle), maps:get(thread, Base))]),
    #{whole := W, nif := N, encode := E, size := S} = Append,
    io:format("  Erlang-side record of ~b bytes (interval-sized): term_to_binary + append "
              "~ts ns, append NIF alone ~ts ns (safe decode check + copy), term_to_binary "
              "alone ~ts ns~n", [S, bench_util:fmt(W), bench_util:fmt(N), bench_util:fmt(E)]),
    io:format("  payload bytes by kind (count, mean), idle: ~ts~n", [kinds(IdleSizes)]),
    io:format("  payload bytes by kind (count, mean), busy: ~ts~n", [kinds(BusySizes)]),
    {_, TickBytes} = maps:get(tick, IdleSizes, {0, 0.0}),
    PerThread = 47,
    io:format("  tick record: ~ts bytes with ~b scheduler threads here, about ~b bytes per "
              "thread more (frame head 40 + padding on top): a node with 16 normal, 16 dirty "
              "CPU and 10 dirty IO schedulers writes about ~ts KiB/min of ticks alone, "
              "16 MiB lasting about ~ts min~n",
              [bench_util:fmt(TickBytes), Threads, PerThread,
               bench_util:fmt(tick_kib_min(TickBytes + (42 - Threads) * PerThread)),
               bench_util:fmt(16 * 1024 / tick_kib_min(TickBytes + (42 - Threads) * PerThread))]).

tick_kib_min(Bytes) -> (Bytes + 44) * 600 / 1024.

row(Name, #{thread := T, erlang := E, bytes := B, frames := F, elapsed := El}) ->
    PerMin = B / (El / 6.0e10),
    [Name, bench_util:fmt(100 * T), bench_util:fmt(100 * E), integer_to_list(F),
     case B of 0 -> "-"; _ -> bench_util:fmt(PerMin / 1024) end,
     case B of 0 -> "-"; _ -> bench_util:fmt(?RING / PerMin) end].

kinds(Map) ->
    lists:join(", ", [io_lib:format("~ts ~b x ~ts", [K, C, bench_util:fmt(S)])
                      || {K, {C, S}} <- lists:sort(maps:to_list(Map))]).
