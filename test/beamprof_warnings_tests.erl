%% The warnings shape (beamprof_warnings): the fixed set of codes, the
%% shape, refusals, merging and the short form.
-module(beamprof_warnings_tests).
-include_lib("eunit/include/eunit.hrl").

%% --- the shape -------------------------------------------------------------------

new_makes_the_shape_test() ->
    W = beamprof_warnings:new(enumeration_fallback, ["layout ", <<"not verified"/utf8>>, $!]),
    ?assertEqual(#{code => enumeration_fallback, message => <<"layout not verified!">>}, W),
    ?assert(beamprof_warnings:is_warning(W)),
    ?assertEqual(#{code => native_unsupported, message => <<"нет"/utf8>>},
                 beamprof_warnings:new(native_unsupported, [1085, 1077, 1090])).

the_required_codes_are_in_the_set_test() ->
    Required = [enumeration_fallback, vm_internals_off, scheduler_threads_mismatch,
                scheduler_threads_unseen, global_tracer_active, native_unsupported],
    ?assertEqual([], Required -- beamprof_warnings:codes()),
    [?assertMatch(<<_, _/binary>>, beamprof_warnings:meaning(C)) || C <- beamprof_warnings:codes()],
    [?assert(beamprof_warnings:is_warning(beamprof_warnings:new(C, "m")))
     || C <- beamprof_warnings:codes()].

unknown_code_is_refused_test() ->
    ?assertError({badarg, "Expected a warning code" ++ _},
                 beamprof_warnings:new(no_such_code, "m")),
    ?assertError({badarg, "Expected a warning code" ++ _},
                 beamprof_warnings:new("enumeration_fallback", "m")),
    ?assertError({badarg, "Expected a warning code" ++ _}, beamprof_warnings:meaning(nope)).

message_must_be_text_test() ->
    ?assertError({badarg, "Expected the message to be text" ++ _},
                 beamprof_warnings:new(vm_internals_off, [foo])),
    ?assertError({badarg, "Expected the message to be text" ++ _},
                 beamprof_warnings:new(vm_internals_off, <<255>>)),
    ?assertError({badarg, "Expected the message to be text" ++ _},
                 beamprof_warnings:new(vm_internals_off, 42)).

is_warning_wants_exactly_the_shape_test() ->
    ?assertNot(beamprof_warnings:is_warning(#{code => nope, message => <<"m">>})),
    ?assertNot(beamprof_warnings:is_warning(#{code => vm_internals_off, message => "m"})),
    ?assertNot(beamprof_warnings:is_warning(#{code => vm_internals_off, message => <<"m">>,
                                              extra => 1})),
    ?assertNot(beamprof_warnings:is_warning({vm_internals_off, <<"m">>})).

merge_keeps_order_and_drops_repeats_test() ->
    A = beamprof_warnings:new(vm_internals_off, "a"),
    B = beamprof_warnings:new(vm_internals_off, "b"),
    C = beamprof_warnings:new(native_unsupported, "a"),
    ?assertEqual([A, B, C], beamprof_warnings:merge([A, B], [B, C, A])),
    ?assertEqual([A], beamprof_warnings:merge([A, A], [])),
    ?assertEqual([], beamprof_warnings:merge([], [])).

short_is_what_was_lost_test() ->
    W = beamprof_warnings:new(enumeration_fallback, "not verified on ERTS 15.2; using x; y"),
    ?assertEqual(<<"not verified on ERTS 15.2">>, beamprof_warnings:short(W)),
    ?assertEqual(<<"plain">>, beamprof_warnings:short(beamprof_warnings:new(vm_internals_off,
                                                                            "plain"))).
