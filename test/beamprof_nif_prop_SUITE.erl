%% Runs the PropEr properties of the NIF boundary (prop_beamprof_nif) from
%% Common Test, so `rebar3 ct` picks them up.
-module(beamprof_nif_prop_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([nullary/1, report_utilization/1, sampler_start/1]).
-export([native_start/1, native_drain/1, native_internals/1]).

-define(NUMTESTS, 2000).

all() -> [nullary, report_utilization, sampler_start, native_start, native_drain,
          native_internals].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

%% The native sampler's properties need its library (x86_64 only).
init_per_testcase(Case, Config) when Case =:= native_start; Case =:= native_drain;
                                     Case =:= native_internals ->
    beamprof_ct:native_suite(Config);
init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

end_per_suite(_Config) ->
    ok = beamprof_nif:sampler_stop(),
    ok = beamprof_native_nif:stop().

nullary(_Config) -> check(prop_beamprof_nif:prop_nullary(), 200).

report_utilization(_Config) -> check(prop_beamprof_nif:prop_report_utilization(), ?NUMTESTS).

sampler_start(_Config) -> check(prop_beamprof_nif:prop_sampler_start(), ?NUMTESTS).

%% Each start creates timers and a thread: fewer runs.
native_start(_Config) -> check(prop_beamprof_nif:prop_native_start(), 300).

native_drain(_Config) -> check(prop_beamprof_nif:prop_native_drain(), 500).

%% A GDB JIT snapshot per true: fewer runs.
native_internals(_Config) -> check(prop_beamprof_nif:prop_native_internals(), 100).

check(Prop, N) ->
    beamprof_ct:quickcheck(Prop, N).
