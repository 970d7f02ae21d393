%% profile_bench: what the profiling API costs.
%%
%% Part 1: one fixed workload (a call-heavy recursion and a sort, a few ms) repeated K times
%% per call, K chosen per strategy so that the profiled call lasts at least MIN_MS (1 s):
%% the strategy's setup and analysis are then not what is measured. Per strategy: K, the
%% profiled call's median wall time over PART1_RUNS (3), the same K repetitions unprofiled
%% (median of as many, each run right before a profiled one: the baseline) and the ratio, and beside it the fixed cost:
%% the same options on a fun that does nothing (setup, stop and analysis alone). check_load
%% is off so the shared machine's load does not skip any run; flame_graph writes a folded
%% file to a temporary directory.
%%
%% Part 2: the path a call takes when the rate does not draw it (one random draw, no gate
%% check), in ns per call against a plain call of the same fun: through beamprof:profile/2
%% (options looked up in the process's one-entry cache), through a decorated function
%% (options compiled in), and beside them rand:uniform_real/0 and beamprof:gate(). rate 0.0
%% isolates the undrawn path exactly; the rate 0.01 row averages in the 1% of calls that are
%% profiled (memory strategy, no handlers attached).
-module(profile_bench).

-export([run/0, workload/0]).

-define(RUNS, 5).
-define(PART1_RUNS, 3).
-define(CALLS, 1000000).
-define(MIN_MS, 1000).
-define(MAX_REPS, 5000).

run() ->
    bench_util:start_beamprof(#{}),
    strategies(),
    unprofiled_path(),
    ok = beamprof:stop().

%% --- part 1 ------------------------------------------------------------------------------

workload() ->
    _ = fib(20),
    _ = lists:sort([erlang:phash2(I) || I <- lists:seq(1, 20000)]),
    ok.

workload(0) -> ok;
workload(K) -> ok = workload(), workload(K - 1).

fib(N) when N < 2 -> N;
fib(N) -> fib(N - 1) + fib(N - 2).

strategies() ->
    Dir = filename:join(filename:basedir(user_cache, "beamprof"), "bench-" ++ os:getpid()),
    ok = filelib:ensure_path(Dir),
    One = median_ms(fun workload/0, ?RUNS),
    Rows = [row(S, Dir) || S <- [sample, {sample, 1}, memory, flame_graph, cprof, calls,
                                  eprof, fprof, call_graph]],
    _ = file:del_dir_r(Dir),
    io:format("~nprofile_bench: the workload (fib(20) + sorting 20k integers, ~s ms) repeated "
              "K times so that each profiled call lasts >= ~B ms, against the same K "
              "unprofiled; median of ~B runs; check_load "
              "off; fixed cost = the same options on a fun that does nothing; (short): the "
              "median profiled call came out under that (a loaded machine), rerun~n",
              [bench_util:fmt(One), ?MIN_MS, ?PART1_RUNS]),
    bench_util:print_table(["strategy", "K", "profiled ms", "unprofiled ms", "ratio",
                            "fixed cost ms"], Rows).

row(Strategy, Dir) ->
    Opts = opts(Strategy, Dir),
    Runs = ?PART1_RUNS,
    Profiled = fun(K) -> fun() -> ok = beamprof:profile(fun() -> workload(K) end, Opts) end end,
    K = reps(Profiled, 1),
    %% Unprofiled and profiled alternate, so that the machine's slow spells
    %% fall on both.
    Pairs = [{time_ms(fun() -> workload(K) end), time_ms(Profiled(K))}
             || _ <- lists:seq(1, Runs)],
    Base = bench_util:median([B || {B, _} <- Pairs]),
    Ms = bench_util:median([P || {_, P} <- Pairs]),
    Fixed = median_ms(fun() -> ok = beamprof:profile(fun() -> ok end, Opts) end, Runs),
    [name(Strategy), integer_to_list(K),
     bench_util:fmt(Ms) ++ case Ms < ?MIN_MS of true -> " (short)"; false -> "" end,
     bench_util:fmt(Base),
     bench_util:ratio(Ms, Base), bench_util:fmt(Fixed)].

%% The repetitions that make one profiled call last MIN_MS (with a fifth
%% to spare, so that the median of the runs stays above it): profiled calls
%% of growing K until one does.
reps(Profiled, K) ->
    Ms = time_ms(Profiled(K)),
    case Ms >= 1.2 * ?MIN_MS orelse K >= ?MAX_REPS of
        true -> K;
        false -> reps(Profiled, min(?MAX_REPS, max(K + 1, ceil(K * 1.3 * ?MIN_MS / max(0.001, Ms)))))
    end.

opts({sample, Interval}, _Dir) ->
    #{interval => Interval, check_load => false};
opts(flame_graph, Dir) ->
    #{strategy => flame_graph, check_load => false, output => filename:join(Dir, "bench.folded")};
opts(Strategy, _Dir) ->
    #{strategy => Strategy, check_load => false}.

name({sample, Interval}) -> "sample, interval " ++ integer_to_list(Interval) ++ " ms";
name(sample) -> "sample, interval 10 ms (default)";
name(Strategy) -> atom_to_list(Strategy).

median_ms(Fun, Runs) ->
    bench_util:median([time_ms(Fun) || _ <- lists:seq(1, Runs)]).

time_ms(Fun) ->
    T0 = erlang:monotonic_time(microsecond),
    Fun(),
    (erlang:monotonic_time(microsecond) - T0) / 1000.

%% --- part 2 ------------------------------------------------------------------------------

unprofiled_path() ->
    F = fun() -> ok end,
    Plain = ns(fun(N) -> plain_loop(F, N) end),
    Api0 = ns(fun(N) -> api_loop(F, N) end),
    Dec0 = ns(fun(N) -> decorated_loop(F, beamprof_profile_opts:compile(profile, #{rate => 0.0}), N) end),
    Api1 = ns(fun(N) -> api1_loop(F, N) end),
    Rand = ns(fun rand_loop/1),
    Gate = ns(fun gate_loop/1),
    io:format("~nprofile_bench: a call the rate does not draw, ns per call (~B calls x ~B runs, "
              "median, empty loop subtracted), gate ~p~n", [?CALLS, ?RUNS, beamprof:gate()]),
    bench_util:print_table(
      ["path", "ns/call", "extra ns over plain"],
      [["plain call F()", bench_util:fmt(Plain), "-"],
       ["beamprof:profile(F, #{rate => 0.0})", bench_util:fmt(Api0), bench_util:fmt(Api0 - Plain)],
       ["decorated function, rate 0.0", bench_util:fmt(Dec0), bench_util:fmt(Dec0 - Plain)],
       ["beamprof:profile(F, #{rate => 0.01}), 1% profiled (memory)", bench_util:fmt(Api1),
        bench_util:fmt(Api1 - Plain)],
       ["reference: rand:uniform_real()", bench_util:fmt(Rand), "-"],
       ["reference: beamprof:gate()", bench_util:fmt(Gate), "-"]]).

ns(Loop) -> bench_util:ns_per_call(Loop, ?CALLS, ?RUNS).

plain_loop(_F, 0) -> ok;
plain_loop(F, N) -> ok = F(), plain_loop(F, N - 1).

api_loop(_F, 0) -> ok;
api_loop(F, N) -> ok = beamprof:profile(F, #{rate => 0.0}), api_loop(F, N - 1).

api1_loop(_F, 0) -> ok;
api1_loop(F, N) ->
    ok = beamprof:profile(F, #{rate => 0.01, strategy => memory, check_load => false}),
    api1_loop(F, N - 1).

decorated_loop(_F, _C, 0) -> ok;
decorated_loop(F, C, N) ->
    ok = beamprof_profile:decorated(?MODULE, workload, 0, F, C),
    decorated_loop(F, C, N - 1).

rand_loop(0) -> ok;
rand_loop(N) -> _ = rand:uniform_real(), rand_loop(N - 1).

gate_loop(0) -> ok;
gate_loop(N) -> _ = beamprof:gate(), gate_loop(N - 1).
