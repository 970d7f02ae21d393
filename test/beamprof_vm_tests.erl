%% The scheduler thread check (beamprof_vm:check_threads/2) and the sample
%% events' warnings: pure.
-module(beamprof_vm_tests).
-include_lib("eunit/include/eunit.hrl").

%% --- scheduler thread counts -------------------------------------------------------

counts(N, C, IO) ->
    #{normal => N, dirty_cpu => C, dirty_io => IO}.

threads_agree_test() ->
    ?assertEqual([], beamprof_vm:check_threads(counts(4, 4, 10), counts(4, 4, 10))).

threads_mismatch_test() ->
    [W] = beamprof_vm:check_threads(counts(4, 4, 9), counts(4, 4, 10)),
    ?assertMatch(#{code := scheduler_threads_mismatch}, W),
    ?assertEqual(<<"found 9 dirty_io scheduler threads, the VM says 10; "
                   "their OS CPU is partial">>, maps:get(message, W)),
    %% more threads than the VM says is a mismatch as well
    ?assertMatch([#{code := scheduler_threads_mismatch}],
                 beamprof_vm:check_threads(counts(5, 4, 10), counts(4, 4, 10))).

threads_unseen_test() ->
    Ws = beamprof_vm:check_threads(counts(0, 0, 0), counts(2, 2, 10)),
    ?assertEqual([scheduler_threads_unseen, scheduler_threads_unseen, scheduler_threads_unseen],
                 [C || #{code := C} <- Ws]),
    [First | _] = Ws,
    ?assertEqual(<<"found no normal scheduler thread, the VM says 2; "
                   "their OS CPU is not measured">>, maps:get(message, First)),
    ?assertMatch([#{code := scheduler_threads_unseen}, #{code := scheduler_threads_mismatch}],
                 beamprof_vm:check_threads(counts(2, 0, 3), counts(2, 2, 10))),
    ?assertMatch([#{code := scheduler_threads_unseen}],
                 beamprof_vm:check_threads(#{normal => 2, dirty_cpu => 2}, counts(2, 2, 10))).

events_carry_the_sample_warnings_test() ->
    W = beamprof_warnings:new(scheduler_threads_unseen, "x"),
    Sample = #{utilization => #{normal => 0.5, os_cpu => undefined}, run_queues => #{total => 0},
               memory => #{erlang => #{total => 1}, rss => 1, limit => 2, ratio => 0.5,
                           mem_total => 2, mem_available => 1, limit_source => machine},
               system => #{}, rates => #{}, gate => #{state => open, reason => none},
               window_ms => 1000.0, schedulers => []},
    {_, Meta} = beamprof_vm:sample_event(Sample#{warnings => [W]}),
    ?assertEqual([W], maps:get(warnings, Meta)),
    {_, Meta0} = beamprof_vm:sample_event(Sample),
    ?assertEqual([], maps:get(warnings, Meta0)),
    {_, UMeta} = beamprof_vm:utilization_event(Sample#{warnings => [W]}),
    ?assertEqual([W], maps:get(warnings, UMeta)).
