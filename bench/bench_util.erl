%% Helpers shared by the benchmarks: timing, medians, tables, /proc readings.
%% Benchmarks print figures and ratios measured in one run; nothing asserts.
-module(bench_util).

-export([median/1, ns_per_call/3, empty_loop/1, print_table/2, fmt/1, ratio/2,
         proc_cpu_ns/0, start_beamprof/1, call_if_exported/3, watch/0, unwatch/1,
         per_s/2]).

%% Median of a non-empty list of numbers.
median(Xs) ->
    Sorted = lists:sort(Xs),
    N = length(Sorted),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, Sorted);
        0 -> (lists:nth(N div 2, Sorted) + lists:nth(N div 2 + 1, Sorted)) / 2
    end.

%% Median over Runs of the wall-clock ns per iteration of Loop(N), minus the
%% empty loop's ns per iteration measured right before each run.
ns_per_call(Loop, N, Runs) ->
    median([max(0.0, time_ns(Loop, N) / N - time_ns(fun empty_loop/1, N) / N)
            || _ <- lists:seq(1, Runs)]).

time_ns(Loop, N) ->
    garbage_collect(),
    T0 = erlang:monotonic_time(nanosecond),
    Loop(N),
    erlang:monotonic_time(nanosecond) - T0.

%% The loop every benchmark loop is shaped like, doing nothing.
empty_loop(0) -> ok;
empty_loop(N) -> empty_loop(N - 1).

%% Prints a header line, then rows of strings in aligned columns.
print_table(Header, Rows) ->
    Widths = [lists:max([string:length(lists:nth(I, R)) || R <- [Header | Rows]])
              || I <- lists:seq(1, length(Header))],
    Line = fun(R) ->
                   Cells = [string:pad(C, W, case I of 1 -> trailing; _ -> leading end)
                            || {I, C, W} <- lists:zip3(lists:seq(1, length(R)), R, Widths)],
                   io:format("  ~ts~n", [lists:join("  ", Cells)])
           end,
    Line(Header),
    Line([lists:duplicate(W, $-) || W <- Widths]),
    lists:foreach(Line, Rows).

fmt(X) when is_integer(X) -> integer_to_list(X);
fmt(X) when is_float(X), abs(X) >= 100 -> float_to_list(X, [{decimals, 0}]);
fmt(X) when is_float(X), abs(X) >= 1 -> float_to_list(X, [{decimals, 2}]);
fmt(X) when is_float(X) -> float_to_list(X, [{decimals, 4}]);
fmt(X) -> io_lib:format("~tp", [X]).

ratio(_, B) when B == 0 -> "n/a";
ratio(A, B) -> float_to_list(A / B, [{decimals, 2}]) ++ "x".

%% CPU time (user + system) of the whole VM so far, in ns, from /proc/self/stat
%% (every thread's, at the clock tick's resolution: 10 ms at CLK_TCK 100).
proc_cpu_ns() ->
    {ok, Stat} = file:read_file("/proc/self/stat"),
    [_, AfterComm] = string:split(Stat, ")", trailing),
    Fields = string:lexemes(AfterComm, " "),
    Ticks = binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)),
    Ticks * (1000000000 div clock_ticks()).

%% The kernel's clock tick (CLK_TCK), asked once per VM: os:cmd/1 starts a
%% shell, which must not fall inside a measured window.
clock_ticks() ->
    case persistent_term:get({?MODULE, clk_tck}, undefined) of
        undefined ->
            Hz = case string:to_integer(os:cmd("getconf CLK_TCK")) of
                     {N, _} when is_integer(N), N > 0 -> N;
                     _ -> 100
                 end,
            persistent_term:put({?MODULE, clk_tck}, Hz),
            Hz;
        Hz ->
            Hz
    end.

%% Starts beamprof with Opts and says what started.
start_beamprof(Opts) ->
    case beamprof:start(Opts) of
        ok -> ok;
        Other -> io:format("beamprof:start(~0p) -> ~0p~n", [Opts, Other]), halt(1)
    end.

%% Calls M:F(A...) when exported (after loading M), else returns undefined.
call_if_exported(M, F, A) ->
    _ = code:ensure_loaded(M),
    case erlang:function_exported(M, F, length(A)) of
        true -> apply(M, F, A);
        false -> undefined
    end.

%% Starts a 1 ms pinger (beamprof_ct:start_pinger/0: a process that sets an
%% absolute timer for the next millisecond and notes the gap between wakes).
watch() ->
    {beamprof_ct:start_pinger(), erlang:monotonic_time(microsecond)}.

%% Stops it: its worst gap (max_us, 1000 when nothing delayed it), how many
%% gaps (count) and how many over 2 ms (over_2ms), over wall_us.
unwatch({Pinger, T0}) ->
    Gaps = beamprof_ct:stop_pinger(Pinger),
    (maps:with([max_us, count, over_2ms], Gaps))#{
      wall_us => erlang:monotonic_time(microsecond) - T0}.

%% Count per second of WallUs microseconds, as text.
per_s(_, 0) -> "n/a";
per_s(Count, WallUs) -> fmt(Count * 1.0e6 / WallUs).
