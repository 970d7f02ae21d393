%% continuous_soak: memory stays flat under continuous profiling.
%%
%% beamprof runs at its defaults (the C sampler's tick at 100 ms), with the
%% periodic scan every second, on a node of 50k idle processes and one
%% worker busy half the time (sorting, building and dropping terms: stacks
%% to sample). Continuous profiling runs at 99 Hz with a 10 s period to a
%% dir sink (keep 10) in a temporary directory. Every minute it prints the
%% VM's RSS (VmRSS of /proc/self/status) and erlang:memory(total), the
%% periods delivered and the files kept; at the end the growth of both over
%% the last 10 minutes (or the whole run when shorter), against the target
%% of 1 MiB, then their least-squares trend and RSS's range over the same
%% minutes.
%%
%% Minutes: the argument, else BEAMPROF_SOAK_MIN, else 20.
-module(continuous_soak).

-export([run/0, run/1]).

-define(PROCS, 50000).
-define(TARGET, 1024 * 1024).

run() ->
    run(case os:getenv("BEAMPROF_SOAK_MIN") of
            false -> 20;
            M -> list_to_integer(M)
        end).

run(Minutes) ->
    Dir = filename:join(["/tmp", "beamprof_continuous_soak." ++ os:getpid()]),
    Procs = [spawn(fun idle/0) || _ <- lists:seq(1, ?PROCS)],
    Worker = spawn(fun work/0),
    ok = bench_util:start_beamprof(#{scan_interval => 1000,
                                     continuous => #{hz => 99, period => 10000,
                                                     sink => {dir, Dir, #{keep => 10}}}}),
    io:format("continuous_soak: ~B min, ~B processes, continuous 99 Hz / 10 s to ~ts, "
              "scan every 1 s, tick 100 ms; OTP ~ts~n",
              [Minutes, ?PROCS, Dir, erlang:system_info(otp_release)]),
    io:format("~6s ~12s ~14s ~8s ~6s~n", ["minute", "rss_kib", "erlang_total", "periods",
                                         "files"]),
    Rows = [minute(M, Dir) || M <- lists:seq(0, Minutes)],
    report(Rows, Minutes),
    ok = beamprof:stop(),
    exit(Worker, kill),
    [exit(P, kill) || P <- Procs],
    _ = [file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*"))],
    _ = file:del_dir(Dir),
    ok.

idle() ->
    receive stop -> ok end.

%% Busy about half the time, in code with a few distinct stacks.
work() ->
    T0 = erlang:monotonic_time(millisecond),
    busy(T0 + 50),
    receive after 50 -> ok end,
    work().

busy(Until) ->
    _ = lists:sort([rand:uniform(1000) || _ <- lists:seq(1, 2000)]),
    _ = term_to_binary(lists:duplicate(100, {a, b, c})),
    case erlang:monotonic_time(millisecond) < Until of
        true -> busy(Until);
        false -> ok
    end.

minute(0, Dir) ->
    row(0, Dir);
minute(M, Dir) ->
    receive after 60000 -> ok end,
    row(M, Dir).

row(M, Dir) ->
    Rss = rss_kib(),
    Total = erlang:memory(total),
    Periods = case beamprof:continuous_info() of
                  #{periods := P} -> P;
                  _ -> -1
              end,
    Files = length(filelib:wildcard(filename:join(Dir, "*.pb.gz"))),
    io:format("~6B ~12B ~14B ~8B ~6B~n", [M, Rss, Total, Periods, Files]),
    {M, Rss * 1024, Total}.

rss_kib() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    {match, [Kib]} = re:run(Bin, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, list}]),
    list_to_integer(Kib).

report(Rows, Minutes) ->
    Span = min(10, Minutes),
    Last = lists:nthtail(Minutes - Span, Rows),
    {_, Rss1, Tot1} = lists:last(Last),
    {_, Rss0, Tot0} = hd(Last),
    Verdict = case Rss1 - Rss0 < ?TARGET of
                  true -> "PASS";
                  false -> "FAIL"
              end,
    io:format("growth over the last ~B min: RSS ~.1f KiB, erlang:memory(total) ~.1f KiB "
              "(target: RSS < 1024 KiB): ~ts~n",
              [Span, (Rss1 - Rss0) / 1024, (Tot1 - Tot0) / 1024, Verdict]),
    %% Two readings can catch the allocators mid-swing: the trend and the
    %% range over the same minutes say more.
    Rss = [R || {_, R, _} <- Last],
    io:format("over the last ~B min: RSS trend ~.1f KiB/min (least squares), range ~.1f KiB "
              "(~.1f..~.1f MiB); erlang:memory(total) trend ~.1f KiB/min~n",
              [Span, slope([{M, R} || {M, R, _} <- Last]) / 1024,
               (lists:max(Rss) - lists:min(Rss)) / 1024, lists:min(Rss) / 1048576,
               lists:max(Rss) / 1048576, slope([{M, T} || {M, _, T} <- Last]) / 1024]).

%% Least-squares slope of Y over X.
slope(Points) ->
    N = length(Points),
    Mx = lists:sum([X || {X, _} <- Points]) / N,
    My = lists:sum([Y || {_, Y} <- Points]) / N,
    case lists:sum([(X - Mx) * (X - Mx) || {X, _} <- Points]) of
        0.0 -> 0.0;
        Sxx -> lists:sum([(X - Mx) * (Y - My) || {X, Y} <- Points]) / Sxx
    end.
