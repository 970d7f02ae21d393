%% events_bench: what emitting an event costs in the built-in dispatcher.
%%
%% ns per beamprof_events:execute/3 with 0, 1 and 10 handlers attached to the
%% event (handlers do nothing), against a plain local function call taking the
%% same three arguments. telemetry is not loaded, so only the built-in table
%% is dispatched. 1M calls per case, empty loop subtracted, median of 5 runs.
-module(events_bench).

-export([run/0, run/1, noop/4]).

-define(CALLS, 1000000).
-define(RUNS, 5).
-define(EVENT, [bench, events, fired]).

run() -> run(?CALLS).

run(Calls) ->
    bench_util:start_beamprof(#{}),
    Telemetry = erlang:function_exported(telemetry, execute, 3),
    Measurements = #{duration => 1000, count => 1},
    Metadata = #{who => ?MODULE},
    Baseline = bench_util:ns_per_call(
                 fun(N) -> local_loop(Measurements, Metadata, N) end, Calls, ?RUNS),
    Rows = [case_row(H, Calls, Measurements, Metadata, Baseline) || H <- [0, 1, 10]],
    io:format("~nevents_bench: ns per call, ~b calls x ~b runs (median), empty loop "
              "subtracted, telemetry loaded: ~p~n", [Calls, ?RUNS, Telemetry]),
    bench_util:print_table(
      ["operation", "ns/call", "this / local call"],
      [["local function call (baseline)", bench_util:fmt(Baseline), "1.00x"] | Rows]),
    ok = beamprof:stop().

case_row(Handlers, Calls, Measurements, Metadata, Baseline) ->
    Ids = [{?MODULE, I} || I <- lists:seq(1, Handlers)],
    [ok = beamprof:attach(Id, ?EVENT, fun ?MODULE:noop/4, []) || Id <- Ids],
    Ns = bench_util:ns_per_call(fun(N) -> execute_loop(Measurements, Metadata, N) end,
                                Calls, ?RUNS),
    [ok = beamprof:detach(Id) || Id <- Ids],
    Label = io_lib:format("beamprof_events:execute/3, ~b handler~ts", [Handlers, plural(Handlers)]),
    [lists:flatten(Label), bench_util:fmt(Ns), bench_util:ratio(Ns, Baseline)].

plural(1) -> "";
plural(_) -> "s".

noop(_Event, _Measurements, _Metadata, _Config) -> ok.

execute_loop(_, _, 0) -> ok;
execute_loop(Me, Md, N) -> beamprof_events:execute(?EVENT, Me, Md), execute_loop(Me, Md, N - 1).

local_loop(_, _, 0) -> ok;
local_loop(Me, Md, N) -> _ = local(?EVENT, Me, Md), local_loop(Me, Md, N - 1).

local(_Event, _Measurements, _Metadata) -> ok.
