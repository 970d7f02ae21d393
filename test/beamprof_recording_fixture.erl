%% A realistic recording for the readers' and the report's tests, with
%% the payloads of doc/recording-format.md: a node of 4 normal schedulers
%% (2 dirty CPU, 2 dirty IO) whose load rises for a while, a mailbox that
%% grows (<<"my_app_ingest">>), memory climbing towards a 2 GiB limit, the
%% gate closing and reopening, a profile, system-monitor events, a
%% threshold crossing and a note. Written with beamprof_recording_enc.
-module(beamprof_recording_fixture).

-export([timeline/1, write/3, write/4]).

-define(T0_US, 1764896400000000).   % 2025-12-05T01:00:00Z
-define(LIMIT, 2147483648).

%% [{SysUs, Payload}] for Seconds seconds: a tick every 100 ms, an interval
%% every second, a scan every 2 s; Opts: #{interval => false} leaves the
%% interval records out (the report then uses the ticks' CPU), #{scan =>
%% false} the scans.
timeline(Opts) ->
    Seconds = maps:get(seconds, Opts, 60),
    Ticks = [{?T0_US + I * 100000, tick(I, Seconds)} || I <- lists:seq(1, Seconds * 10)],
    Intervals = [{?T0_US + S * 1000000 + 50000, interval(S, Seconds)} || S <- lists:seq(1, Seconds),
                                                                       maps:get(interval, Opts, true)],
    Scans = [{?T0_US + S * 1000000 + 70000, scan(S)} || S <- lists:seq(2, Seconds, 2),
                                                       maps:get(scan, Opts, true)],
    Events = events(Seconds),
    Header = {?T0_US, header()},
    [Header | lists:keysort(1, Ticks ++ Intervals ++ Scans ++ Events)].

write(Path, Ring, Timeline) ->
    write(Path, Ring, Timeline, #{}).

%% Writes the timeline (oldest first) as frames; returns the encoder.
write(Path, Ring, Timeline, Opts) ->
    E0 = beamprof_recording_enc:create(Path, Ring, Opts#{time_us => ?T0_US}),
    E = lists:foldl(fun({Us, T}, E) -> beamprof_recording_enc:append(E, T, Us) end, E0, Timeline),
    ok = beamprof_recording_enc:close(E),
    E.

header() ->
    #{kind => header, node => <<"app@host-1">>, otp_release => <<"27">>,
      erts_version => <<"15.2.3">>, beamprof_version => <<"0.9.0">>, os_pid => 4242,
      schedulers => 4, schedulers_online => 4, dirty_cpu_schedulers => 2,
      dirty_io_schedulers => 2, tick_ms => 100, interval_ms => 1000, memory_limit => ?LIMIT,
      ring_size => 16777216}.

%% Load: low, then a hot stretch in the middle third, then low again.
load(T, Seconds) ->
    case T > Seconds / 3 andalso T < 2 * Seconds / 3 of
        true -> 0.93;
        false -> 0.2
    end.

tick(I, Seconds) ->
    T = I / 10,
    L = load(T, Seconds),
    Threads = [#{kind => normal, index => J, cpu => min(1.0, L + J * 0.01)} || J <- lists:seq(1, 4)]
        ++ [#{kind => dirty_cpu, index => J, cpu => 0.05} || J <- lists:seq(1, 2)]
        ++ [#{kind => dirty_io, index => J, cpu => 0.01} || J <- lists:seq(1, 2)],
    Closed = L > 0.9,
    #{kind => tick, threads => Threads, demand => L, rss => rss(T, Seconds),
      memory_limit => ?LIMIT, gate => if Closed -> closed; true -> open end,
      gate_reason => if Closed -> scheduler; true -> none end, tick_ms => 100.0 + (I rem 3) / 10}.

rss(T, Seconds) -> round(400 bsl 20 + (1500 bsl 20) * T / Seconds).

interval(S, Seconds) ->
    L = load(S, Seconds),
    #{kind => interval,
      utilization => #{normal => [min(1.0, L + J * 0.02) || J <- lists:seq(1, 4)],
                       dirty_cpu => [0.04, 0.06], dirty_io => [0.01, 0.0]},
      run_queues => [round(L * 20) + J || J <- lists:seq(1, 4)] ++ [0, 1],
      memory => #{total => rss(S, Seconds) - (50 bsl 20), processes => 200 bsl 20,
                  binary => 50 bsl 20, ets => 30 bsl 20, atom => 1 bsl 20, code => 40 bsl 20,
                  system => 100 bsl 20},
      process_count => 1200 + S, port_count => 30}.

scan(S) ->
    Q = fun(Name, Pid, V) -> #{pid => Pid, name => Name, value => V} end,
    #{kind => scan,
      top => #{message_queue_len => [Q(<<"my_app_ingest">>, <<"<0.412.0>">>, S * 1500),
                                     Q(<<"logger_std_h_default">>, <<"<0.98.0>">>, 40 + S rem 7),
                                     Q(<<"my_app_worker_sup:init/1">>, <<"<0.500.0>">>, 12)],
               memory => [Q(<<"my_app_ingest">>, <<"<0.412.0>">>, S * 900000)],
               reductions => [Q(<<"my_app_cruncher">>, <<"<0.433.0>">>, 5000000)]}}.

events(Seconds) ->
    Hot = Seconds div 3 + 1,
    Cool = 2 * Seconds div 3,
    [{?T0_US + Hot * 1000000 + 1000, #{kind => gate, state => closed, reason => scheduler}},
     {?T0_US + Cool * 1000000 + 1000, #{kind => gate, state => open, reason => none}},
     {?T0_US + 5000000 + 3000, #{kind => profile, event => start, target => <<"my_app:run/1">>,
                                 strategy => sample}},
     {?T0_US + 8000000 + 3000, #{kind => profile, event => stop, target => <<"my_app:run/1">>,
                                 strategy => sample, ms => 3000}},
     {?T0_US + 30000000 + 5000, #{kind => threshold, key => message_queue_len,
                                  pid => <<"<0.412.0>">>, name => <<"my_app_ingest">>,
                                  value => 45000, limit => 10000}},
     {?T0_US + 31000000 + 5000, #{kind => monitor, event => long_gc, pid => <<"<0.412.0>">>,
                                  name => <<"my_app_ingest">>,
                                  info => #{timeout => 250, heap_size => 1000000,
                                            note => <<"fullsweep">>}}},
     {?T0_US + 32000000 + 5000, #{kind => note, message => <<"frames dropped: 2 (payload too large)">>}}].
