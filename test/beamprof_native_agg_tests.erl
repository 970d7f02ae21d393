%% EUnit tests of the native profile aggregation: root-first stacks under
%% the thread kind, collapsed recursion, truncation marks, filter and top.
-module(beamprof_native_agg_tests).
-include_lib("eunit/include/eunit.hrl").

acc() ->
    beamprof_native_agg:add(
      [{normal, 1, 2, false, [<<"spin">>, <<"spin">>, <<"outer">>]},
       {normal, 2, 1, false, [<<"spin">>, <<"outer">>]},
       {dirty_cpu, 1, 3, true, [<<"busy_leaf">>, <<"busy_top">>]},
       {dirty_io, 1, 1, false, []}],
      beamprof_native_agg:new()).

stacks_test() ->
    Stacks = beamprof_native_agg:stacks(acc()),
    ?assertEqual([{[<<"[dirty_cpu]">>, <<"[truncated]">>, <<"busy_top">>, <<"busy_leaf">>], 3},
                  {[<<"[normal]">>, <<"outer">>, <<"spin">>], 3},
                  {[<<"[dirty_io]">>], 1}], Stacks),
    ?assertMatch(#{samples := 4, weighted := 7, truncated := 1,
                   kinds := #{normal := 3, dirty_cpu := 3, dirty_io := 1},
                   threads := #{{normal, 1} := 2, {normal, 2} := 1}},
                 beamprof_native_agg:totals(acc())).

filter_test() ->
    P = #{stacks => beamprof_native_agg:stacks(acc()), kinds => #{normal => 3, dirty_cpu => 3}},
    F = beamprof_native_agg:filter(P, [normal]),
    ?assertEqual([{[<<"[normal]">>, <<"outer">>, <<"spin">>], 3}], maps:get(stacks, F)),
    ?assertEqual(3, maps:get(weighted, F)),
    ?assertEqual(#{normal => 3}, maps:get(kinds, F)).

top_test() ->
    P = #{stacks => beamprof_native_agg:stacks(acc())},
    [First, Second | _] = Top = beamprof_native_agg:top(P, 10),
    ?assertMatch(#{self := 3, total := 3}, First),
    ?assertMatch(#{self := 3, total := 3}, Second),
    Outer = hd([R || #{frame := <<"outer">>} = R <- Top]),
    ?assertMatch(#{self := 0, total := 3}, Outer),
    ?assert(abs(maps:get(total_pct, Outer) - 300 / 7) < 1.0e-9),
    ?assertEqual([], [R || #{frame := <<"[", _/binary>>} = R <- Top]),
    ?assertEqual(2, length(beamprof_native_agg:top(P, 2))).
