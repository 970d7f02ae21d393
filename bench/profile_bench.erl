%% profile_bench: what the profiling API costs.
%%
%% Part 1: one fixed workload (a call-heavy recursion and a sort, about 5 ms) run
%% unprofiled and under each strategy, in the same run: median wall time of RUNS runs (3
%% for fprof and call_graph, which take seconds) and the ratio to the unprofiled median.
%% check_load is off so the shared machine's load does not skip any run; flame_graph writes
%% a folded file to a temporary directory; sample is shown at its default 10 ms interval
%% (the call is shorter: the fixed cost of starting and stopping the sampler) and at 1 ms.
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
-define(CALLS, 1000000).

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

fib(N) when N < 2 -> N;
fib(N) -> fib(N - 1) + fib(N - 2).

strategies() ->
    Dir = filename:join(filename:basedir(user_cache, "beamprof"), "bench-" ++ os:getpid()),
    ok = filelib:ensure_path(Dir),
    Base = median_ms(fun workload/0),
    Rows = [row(S, Base, Dir) || S <- [sample, {sample, 1}, memory, flame_graph, cprof, calls,
                                        eprof, fprof, call_graph]],
    _ = file:del_dir_r(Dir),
    io:format("~nprofile_bench: the workload (fib(20) + sorting 20k integers) unprofiled "
              "and under each strategy, median of ~B runs, check_load off~n", [?RUNS]),
    bench_util:print_table(["strategy", "ms", "ratio to unprofiled"],
                           [["none (unprofiled)", bench_util:fmt(Base), "1.00x"] | Rows]).

row({sample, Interval}, Base, _Dir) ->
    Ms = median_ms(fun() -> ok = beamprof:profile(fun workload/0, #{interval => Interval,
                                                                    check_load => false}) end),
    ["sample, interval " ++ integer_to_list(Interval) ++ " ms", bench_util:fmt(Ms),
     bench_util:ratio(Ms, Base)];
row(Strategy, Base, Dir) ->
    Opts0 = #{strategy => Strategy, check_load => false},
    Opts = case Strategy of
               flame_graph -> Opts0#{output => filename:join(Dir, "bench.folded")};
               _ -> Opts0
           end,
    Runs = case Strategy of fprof -> 3; call_graph -> 3; _ -> ?RUNS end,
    Ms = median_ms(fun() -> ok = beamprof:profile(fun workload/0, Opts) end, Runs),
    [atom_to_list(Strategy), bench_util:fmt(Ms), bench_util:ratio(Ms, Base)].

median_ms(Fun) -> median_ms(Fun, ?RUNS).

median_ms(Fun, Runs) ->
    Fun(),
    bench_util:median([begin
                           T0 = erlang:monotonic_time(microsecond),
                           Fun(),
                           (erlang:monotonic_time(microsecond) - T0) / 1000
                       end || _ <- lists:seq(1, Runs)]).

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
