%% Where the scan's pids come from (beamprof_enum:choose/1): every branch,
%% pure.
-module(beamprof_enum_tests).
-include_lib("eunit/include/eunit.hrl").

%% --- where the scan's pids come from --------------------------------------------

facts(Erts, Iterator, Internals) ->
    #{erts => Erts, iterator => Iterator, vm_internals => Internals}.

iterator_wins_whatever_else_test() ->
    [?assertEqual({processes_iterator, []}, beamprof_enum:choose(facts(E, true, I)))
     || E <- ["17.1", "13.1.5", "99.0"], I <- [true, false]].

verified_erts_walks_the_table_test() ->
    ?assertEqual({ptab_walk, []}, beamprof_enum:choose(facts("13.1.5", false, true))),
    ?assertEqual({ptab_walk, []}, beamprof_enum:choose(facts("15.2.7", false, true))),
    [?assertEqual({ptab_walk, []}, beamprof_enum:choose(facts(P ++ "0", false, true)))
     || P <- beamprof_enum:verified_erts()].

unverified_erts_falls_back_with_its_version_test() ->
    {processes, [W]} = beamprof_enum:choose(facts("14.2.5", false, true)),
    ?assertMatch(#{code := enumeration_fallback}, W),
    ?assertEqual(<<"process table layout not verified on ERTS 14.2.5; "
                   "using erlang:processes()">>, maps:get(message, W)),
    ?assertEqual(<<"process table layout not verified on ERTS 14.2.5">>,
                 beamprof_warnings:short(W)),
    %% a prefix is a whole major version: 1.3 is not 13.x, 150.1 not 15.x
    ?assertMatch({processes, [_]}, beamprof_enum:choose(facts("1.3", false, true))),
    ?assertMatch({processes, [_]}, beamprof_enum:choose(facts("150.1", false, true))).

switch_off_forces_processes_test() ->
    [?assertMatch({processes, [#{code := vm_internals_off}]},
                  beamprof_enum:choose(facts(E, false, false)))
     || E <- ["13.1.5", "15.2.7", "14.0"]].

table_not_found_names_the_running_erts_test() ->
    #{code := enumeration_fallback, message := M} = beamprof_enum:table_not_found(),
    ?assertNotEqual(nomatch, binary:match(M, list_to_binary(erlang:system_info(version)))).
