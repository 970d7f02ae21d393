%% The native run's report (beamprof_native_report): fields from the C
%% side's counters, and the warnings of a lowered rate, an empty run (each
%% reason) and denied stack reads.
-module(beamprof_native_report_tests).
-include_lib("eunit/include/eunit.hrl").

info(Over) ->
    maps:merge(#{hz => 99, hz_under_gate => 99, samples => 10, dropped => 0, thinned => 0,
                 gated => 0, gate_closed_ns => 0, wall_ns => 1000000000,
                 cpu_ns => 500000000, slots => 2, stray => 7, vm_readv => ok}, Over).

codes(Info) -> [C || #{code := C} <- beamprof_native_report:warnings(Info)].

message(Code, Info) ->
    [M] = [M || #{code := C, message := M} <- beamprof_native_report:warnings(Info),
                C =:= Code],
    M.

fields_test() ->
    F = beamprof_native_report:fields(info(#{gate_closed_ns => 250000000, gated => 4,
                                             thinned => 9}), 5),
    ?assertEqual(#{hz_under_gate => 99, gate_closed_ms => 250, gate_closed_pct => 25.0,
                   gated => 4, thinned => 9, stray => 2, vm_readv => ok}, F),
    %% the library gone: nothing known
    ?assertMatch(#{gate_closed_ms := 0, stray := 0,
                   vm_readv := untested}, beamprof_native_report:fields(#{}, 3)),
    ?assert(maps:get(gate_closed_pct, beamprof_native_report:fields(#{}, 3)) == 0).

a_plain_run_has_no_warning_test() ->
    ?assertEqual([], codes(info(#{}))),
    ?assertEqual([], codes(#{})).

rate_lowered_only_when_lowered_test() ->
    Closed = #{gate_closed_ns => 2000000000, gated => 50},
    ?assertEqual([], codes(info(Closed))), %% 99 Hz kept under the gate
    Lowered = info(Closed#{hz => 999, thinned => 120}),
    ?assertEqual([native_rate_lowered], codes(Lowered)),
    M = message(native_rate_lowered, Lowered),
    ?assertNotEqual(nomatch, binary:match(M, <<"2000 ms">>)),
    ?assertNotEqual(nomatch, binary:match(M, <<"99 Hz instead of 999 Hz">>)).

empty_runs_say_why_test() ->
    Short = info(#{samples => 0, wall_ns => 3000000, cpu_ns => 1000000}),
    ?assertNotEqual(nomatch, binary:match(message(native_no_samples, Short), <<"too short">>)),
    Idle = info(#{samples => 0, cpu_ns => 4000000}),
    ?assertNotEqual(nomatch, binary:match(message(native_no_samples, Idle), <<"idle">>)),
    Dropped = info(#{samples => 0, dropped => 12}),
    ?assertNotEqual(nomatch, binary:match(message(native_no_samples, Dropped), <<"dropped">>)),
    NoSignal = info(#{samples => 0, cpu_ns => 900000000}),
    ?assertNotEqual(nomatch, binary:match(message(native_no_samples, NoSignal),
                                          <<"no CPU-time timer signal">>)).

leaf_only_test() ->
    ?assertEqual([native_leaf_only], codes(info(#{vm_readv => denied}))),
    [?assert(beamprof_warnings:is_warning(W))
     || W <- beamprof_native_report:warnings(info(#{samples => 0, vm_readv => denied,
                                                    hz => 999, gated => 1}))].
