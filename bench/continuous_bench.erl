%% continuous_bench: what continuous profiling costs at its defaults on a busy
%% node, against the naive way of getting the same files.
%%
%% A spinner per online scheduler (sorting lists: stacks to sample) keeps
%% every normal scheduler busy; beamprof runs at its defaults. Two modes,
%% each for Periods periods of PeriodMs:
%%   continuous: beamprof:start_continuous(#{period => PeriodMs, sink =>
%%     [{dir, Dir}, telemetry]}) at the default 19 Hz; the telemetry sink
%%     hands each period's profile to the bench, which sums its `overhead';
%%   naive: per period, beamprof_native:sample/2's path at 19 Hz (start,
%%     wait PeriodMs, stop: the C sampler started and stopped, a new
%%     symbolizer each time) and the profile written as a gzipped pprof file.
%% Per mode, as % of one core over the wall time: `sampler' (the signal
%% handler, the rescan thread and the C drains, in CPU time: the profiles'
%% overhead.handler_ns + rescan_ns + drain_ns), `collector' (the Erlang
%% collector's drain rounds, symbolizing and aggregating, in wall time: an
%% upper bound), `sink' (pprof encoding and the file's write, timed here on
%% each period's profile), `startstop' (naive only: each period's wall time
%% beyond PeriodMs, the start and stop of the sampler and collector), and
%% their total; the collector's reductions per second (a measure of its work
%% that waiting for a scheduler does not inflate); then the ratio of the
%% naive total to the continuous one.
-module(continuous_bench).

-export([run/2]).

run(Periods, PeriodMs) ->
    N = erlang:system_info(schedulers_online),
    Spinners = [spawn(fun spin/0) || _ <- lists:seq(1, N)],
    Dir = filename:join(["/tmp", "beamprof_continuous_bench." ++ os:getpid()]),
    ok = filelib:ensure_path(Dir),
    ok = bench_util:start_beamprof(#{}),
    io:format("continuous_bench: ~B periods of ~B ms per mode, ~B spinners (one per online "
              "scheduler), 19 Hz; OTP ~ts~n",
              [Periods, PeriodMs, N, erlang:system_info(otp_release)]),
    Cont = continuous(Periods, PeriodMs, Dir),
    Naive = naive(Periods, PeriodMs, Dir),
    ok = beamprof:stop(),
    [exit(P, kill) || P <- Spinners],
    _ = [file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*"))],
    _ = file:del_dir(Dir),
    report(Cont, Naive).

spin() ->
    _ = lists:sort([rand:uniform(1000) || _ <- lists:seq(1, 500)]),
    spin().

continuous(Periods, PeriodMs, Dir) ->
    Self = self(),
    Ref = make_ref(),
    ok = beamprof:attach(Ref, [beamprof, profile, native],
                         fun(_, _, #{profile := P}, _) -> Self ! {Ref, P} end, nil),
    T0 = erlang:monotonic_time(nanosecond),
    ok = beamprof:start_continuous(#{period => PeriodMs, sink => [{dir, Dir}, telemetry]}),
    Collector = whereis(beamprof_native_collector),
    R0 = reductions(Collector),
    Profiles = [receive {Ref, P} -> P after PeriodMs * 3 -> exit(no_period) end
                || _ <- lists:seq(1, Periods)],
    Reds = reductions(Collector) - R0,
    Wall = erlang:monotonic_time(nanosecond) - T0,
    ok = beamprof:stop_continuous(),
    ok = beamprof:detach(Ref),
    (sums(Profiles, [sink_ns(P, Dir) || P <- Profiles], 0, Wall))#{reductions => Reds}.

reductions(Pid) ->
    {reductions, R} = erlang:process_info(Pid, reductions),
    R.

naive(Periods, PeriodMs, Dir) ->
    Rounds = [naive_round(PeriodMs, Dir) || _ <- lists:seq(1, Periods)],
    Profiles = [P || {P, _, _, _} <- Rounds],
    Beyond = lists:sum([E - PeriodMs * 1000000 || {_, E, _, _} <- Rounds]),
    Wall = lists:sum([E + S || {_, E, S, _} <- Rounds]),
    (sums(Profiles, [S || {_, _, S, _} <- Rounds], Beyond, Wall))#{
        reductions => lists:sum([R || {_, _, _, R} <- Rounds])}.

%% beamprof_native:sample/2's path (start, wait, stop), with the
%% collector's reductions read before its stop.
naive_round(PeriodMs, Dir) ->
    T0 = erlang:monotonic_time(nanosecond),
    {ok, Collector} = beamprof_native:start(#{hz => 19}),
    receive after PeriodMs -> ok end,
    Reds = reductions(Collector),
    {ok, Profile} = beamprof_native:stop(),
    Elapsed = erlang:monotonic_time(nanosecond) - T0,
    {Profile, Elapsed, sink_ns(Profile, Dir), Reds}.

%% The dir sink's work for one profile: encode, write.
sink_ns(Profile, Dir) ->
    T0 = erlang:monotonic_time(nanosecond),
    Bin = beamprof_continuous:pprof(Profile, #{<<"node">> => atom_to_binary(node())}),
    Path = filename:join(Dir, "bench-" ++ integer_to_list(erlang:unique_integer([positive]))
                         ++ ".pb.gz"),
    ok = beamprof_file:write(Path, Bin),
    erlang:monotonic_time(nanosecond) - T0.

sums(Profiles, SinkNs, StartStop, Wall) ->
    Over = [maps:get(overhead, P) || P <- Profiles],
    Sampler = lists:sum([H + R + D || #{handler_ns := H, rescan_ns := R, drain_ns := D} <- Over]),
    Collector = lists:sum([C || #{collector_ns := C} <- Over]),
    #{sampler => Sampler, collector => Collector, sink => lists:sum(SinkNs),
      startstop => StartStop, wall => Wall,
      samples => lists:sum([maps:get(samples, P, 0) || P <- Profiles]) div max(1, length(Profiles)),
      effective_hz => [maps:get(effective_hz, P, 0) || P <- Profiles]}.

pct(Ns, Wall) -> 100 * Ns / max(1, Wall).

total(#{sampler := S, collector := C, sink := K, startstop := T}) -> S + C + K + T.

report(Cont, Naive) ->
    io:format("~-11s ~9s ~10s ~7s ~10s ~8s ~10s ~12s  ~ts~n",
              ["mode", "sampler%", "collector%", "sink%", "startstop%", "total%",
               "samples/p", "coll_reds/s", "effective_hz per period"]),
    [io:format("~-11s ~9.4f ~10.4f ~7.4f ~10.4f ~8.4f ~10B ~12B  ~0p~n",
               [Name, pct(S, W), pct(C, W), pct(K, W), pct(T, W), pct(total(M), W), N,
                round(R * 1.0e9 / W), Hz])
     || {Name, #{sampler := S, collector := C, sink := K, startstop := T, wall := W,
                 samples := N, effective_hz := Hz, reductions := R} = M}
            <- [{"continuous", Cont},
                                                             {"naive", Naive}]],
    Ratio = pct(total(Naive), maps:get(wall, Naive)) /
        max(1.0e-9, pct(total(Cont), maps:get(wall, Cont))),
    io:format("naive / continuous (total % of one core): ~.2fx~n", [Ratio]).
