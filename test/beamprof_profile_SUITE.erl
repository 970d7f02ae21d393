%% The profiling API against a real VM: events and their keys, results and exceptions
%% passed through, the rate's binomial bound, the sampler finding the hot callee,
%% profile_if_slow, a really closed gate, the node-wide tracing lock, trace cleanup,
%% flame graph files, async, env, and the PropEr properties (prop_beamprof_profile).
-module(beamprof_profile_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("kernel/include/file.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2]).

-define(EVENTS, [start, stop, exception, sample, slow_operation, production, memory, calls,
                 complete]).
%% Tests not about the gate do not depend on this shared machine's load.
-define(NOLOAD, #{check_load => false}).

all() ->
    [events_of_a_sampled_call, exception_reraised_after_event, fun_metadata_and_user_metadata,
     rate_within_binomial_bound, enabled_false_and_rate_zero, sample_puts_hot_callee_on_top,
     profile_if_slow_profiles_only_slow_calls, production_event, memory_strategy,
     calls_strategies, gate_closed_nothing_profiled, busy_tracing_lock,
     trace_cleaned_after_exception_and_kill, beside_dbg, beside_global_tracer,
     global_tracer_said, fprof_back_to_back, flame_graph_writes_file, async_off_callers_path,
     env_option, emit_metrics_false, nested_calls_profiled_once, duration_caps_sampling,
     backtrace_depth_restored, options_refused, prop_transparent, prop_transparent_traced,
     prop_bad_options_refused, saturated_node_runs_calls_unprofiled, no_samples_says_why,
     chardata_output_paths, async_analysis_off_callers_path, call_graph_lists_functions_once,
     output_checked_before_the_call, write_failure_logged_and_reported,
     write_failure_log_printed_by_plain_erl, async_back_to_back].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(gate_closed_nothing_profiled, Config) ->
    Config;
init_per_testcase(saturated_node_runs_calls_unprofiled, Config) ->
    Config;
init_per_testcase(_Case, Config) ->
    ok = beamprof:start(#{interval => 1000}),
    attach(),
    Config.

end_per_testcase(_Case, _Config) ->
    application:unset_env(beamprof, env),
    ok = beamprof:stop(),
    ok = beamprof_ct:detach_all().

%% --- events ------------------------------------------------------------------------------

events_of_a_sampled_call(_Config) ->
    %% 500 ms: on a loaded 2-core machine the sampler may not run within 50
    ?assertEqual(42, beamprof:profile(fun() -> spin(500), 42 end, ?NOLOAD)),
    [{start, S, Meta}, {stop, #{duration := D}, _}, {sample, #{samples := N}, SMeta},
     {complete, C, _}] = events(4),
    ?assertMatch(#{system_time := _}, S),
    ?assertEqual([system_time], maps:keys(S)),
    ?assert(D > 0),
    ?assert(N >= 1),
    ?assertEqual([duration, memory_delta, samples], lists:sort(maps:keys(C))),
    ?assertMatch(#{samples := N, duration := D}, C),
    ?assertMatch(#{strategy := sample, module := ?MODULE, arity := 0, metadata := #{}}, Meta),
    #{profile := #{stacks := Stacks, unit := samples}} = SMeta,
    ?assertEqual(N, lists:sum([W || {_, W} <- Stacks])),
    [?assert(is_binary(F)) || {Frames, _} <- Stacks, F <- Frames],
    no_more_events().

exception_reraised_after_event(_Config) ->
    [begin
         {Class, Reason, Stack} = catch_it(fun() -> beamprof:profile(fun() -> raise(Class, Reason) end, ?NOLOAD) end),
         {Class, Reason, Plain} = catch_it(fun() -> raise(Class, Reason) end),
         ?assertEqual(hd(Plain), hd(Stack)),
         [{start, _, _}, {exception, #{duration := _}, Meta} | _] = events(4),
         ?assertMatch(#{kind := Class, reason := Reason, stacktrace := [_ | _]}, Meta),
         ?assertEqual(hd(Stack), hd(maps:get(stacktrace, Meta)))
     end || {Class, Reason} <- [{error, boom}, {exit, {shutdown, x}}, {throw, #{a => 1}}]].

fun_metadata_and_user_metadata(_Config) ->
    Fun = fun ?MODULE:spin/1,
    ok = beamprof:profile(fun() -> Fun(1) end, noload(#{metadata => #{request => 7}})),
    [{start, _, #{module := ?MODULE, function := F, arity := 0, metadata := #{request := 7}}} | _] = events(4),
    ?assert(is_atom(F)).

%% 100k calls at rate 0.01: 1000 expected, standard deviation sqrt(100000 * 0.01 * 0.99) =
%% 31.5; the bound is 6 deviations either side.
rate_within_binomial_bound(_Config) ->
    detach(),
    Counter = counters:new(1, []),
    ok = beamprof:attach(count, [beamprof, profile, stop],
                         fun(_, _, _, C) -> counters:add(C, 1, 1) end, Counter),
    Opts = noload(#{strategy => memory, rate => 0.01}),
    [ok = beamprof:profile_memory(fun() -> ok end, Opts) || _ <- lists:seq(1, 100000)],
    Profiled = counters:get(Counter, 1),
    ct:log("profiled ~B of 100000 at rate 0.01", [Profiled]),
    ?assert(Profiled >= 1000 - 189 andalso Profiled =< 1000 + 189).

enabled_false_and_rate_zero(_Config) ->
    [ok = beamprof:profile(fun() -> ok end, O)
     || O <- [#{enabled => false}, #{rate => 0.0}, #{rate => 0}, [{rate, 0.0}]]],
    no_more_events().

%% burn/1 takes nearly all the time; wrapper/1 around it only calls it.
sample_puts_hot_callee_on_top(_Config) ->
    ok = beamprof:profile(fun() -> wrapper(400) end, noload(#{interval => 2})),
    [#{profile := #{stacks := Stacks}}] = [M || {sample, _, M} <- events(4)],
    Leaves = lists:foldl(fun({Frames, W}, Acc) ->
                                 maps:update_with(lists:last(Frames), fun(V) -> V + W end, W, Acc)
                         end, #{}, Stacks),
    [{Top, _} | _] = lists:reverse(lists:keysort(2, maps:to_list(Leaves))),
    ct:log("leaves: ~p", [Leaves]),
    ?assertEqual(<<"beamprof_profile_SUITE:burn/1">>, Top),
    %% Root first: the profiled fun, then wrapper, then burn.
    [{[Root | _], _} | _] = Stacks,
    ?assertNotEqual(nomatch, binary:match(Root, <<"beamprof_profile_SUITE:">>)).

profile_if_slow_profiles_only_slow_calls(_Config) ->
    Opts = noload(#{threshold => 100}),
    [fast = beamprof:profile_if_slow(fun() -> fast end, Opts) || _ <- lists:seq(1, 20)],
    slow = beamprof:profile_if_slow(fun() -> timer:sleep(250), slow end, Opts),
    Events = events(2 * 21 + 3),
    Slow = [M || {slow_operation, M, _} <- Events],
    ?assertMatch([#{duration := _, threshold := 100}], Slow),
    [#{duration := D}] = Slow,
    ?assert(erlang:convert_time_unit(D, native, millisecond) >= 250),
    [{#{samples := N}, #{profile := #{stacks := Stacks}}}] = [{M, Meta} || {sample, M, Meta} <- Events],
    ?assert(N >= 1),
    %% Sampled from the threshold on: the slow call sleeps.
    ?assert(lists:any(fun({Frames, _}) -> lists:member(<<"timer:sleep/1">>, Frames) end, Stacks)),
    no_more_events().

production_event(_Config) ->
    ok = beamprof:profile_production(fun() -> ok end, #{sample_rate => 1.0, check_load => false}),
    ?assertMatch([_], [M || {production, #{duration := _} = M, _} <- events(5)]),
    ?assertError({badarg, "Expected only one of rate and sample_rate"},
                 beamprof:profile_production(fun() -> ok end, #{sample_rate => 1.0, rate => 1.0})).

memory_strategy(_Config) ->
    L = beamprof:profile_memory(fun() -> lists:seq(1, 200000) end, ?NOLOAD),
    ?assertEqual(200000, length(L)),
    [{memory, #{before := B, 'after' := A, delta := D}, Meta}] =
        [E || {memory, _, _} = E <- events(4)],
    ?assertEqual(A - B, D),
    #{by_type := #{total := #{delta := D}, processes := _}, process := #{total_heap_size := #{delta := H}}} = Meta,
    ?assert(H > 200000 * 8),
    %% Below the threshold: no memory event.
    ok = beamprof:profile_memory(fun() -> ok end, noload(#{threshold => 1 bsl 40})),
    ?assertEqual([], [E || {memory, _, _} = E <- events(3)]),
    %% No threshold: every call's figures, whatever their sign (a threshold of
    %% undefined once compared above every number and silenced the event).
    [ok = beamprof:profile(fun() -> ok end, noload(#{strategy => memory})) || _ <- [1, 2, 3]],
    ?assertMatch([_, _, _], [E || {memory, _, _} = E <- events(12)]).

%% Every strategy finds sum/1 (1001 calls of it); calls and cprof count exactly; each says
%% how it traced (a session of its own where the VM has them) and has no warnings: nothing
%% else traces here.
calls_strategies(_Config) ->
    [begin
         ?assertEqual(500500, beamprof:profile_calls(fun() -> sum(1000) end, noload(#{strategy => S}))),
         [{calls, #{calls := N}, #{functions := Fs, strategy := S} = Meta}] =
             [E || {calls, _, _} = E <- events(4)],
         ?assert(N >= 1000),
         ?assert(lists:any(fun(F) -> element(1, F) =:= {?MODULE, sum, 1} end, Fs), S),
         ?assertMatch(#{warnings := [], tracing := _}, Meta),
         ?assertEqual(tracing(S), maps:get(tracing, Meta)),
         [?assert(lists:member({{?MODULE, sum, 1}, 1001}, Fs)) || S =:= calls orelse S =:= cprof]
     end || S <- [calls, eprof, cprof, fprof, call_graph]],
    ok = beamprof:profile_calls(fun() -> sum(3), ok end, noload(#{strategy => call_graph})),
    [#{call_graph := Graph}] = [M || {calls, _, M} <- events(4)],
    ?assert(lists:any(fun(#{function := {?MODULE, sum, 1}, callers := Cs}) -> Cs =/= [];
                         (_) -> false end, Graph)).

%% A node whose memory limit is 1 byte: the C thread closes the gate on its first tick.
gate_closed_nothing_profiled(_Config) ->
    ok = beamprof:start(#{memory_limit => 1, tick => 10}),
    attach(),
    wait_until(fun() -> beamprof:gate() =:= closed end, 5000),
    [?assertEqual(7, beamprof:Entry(fun() -> 7 end, #{strategy => S}))
     || {Entry, S} <- [{profile, sample}, {profile_memory, memory}, {profile_calls, calls},
                       {profile_calls, fprof}]],
    Events = events(4),
    ?assertEqual([stop, stop, stop, stop], [E || {E, _, _} <- Events]),
    [?assertMatch(#{skipped := gate_closed}, M) || {_, _, M} <- Events],
    ?assertEqual(none, beamprof_profile_trace:lock_holder()),
    %% check_load => false profiles anyway.
    ok = beamprof:profile(fun() -> ok end, #{check_load => false}),
    ?assertMatch([start, stop | _], [E || {E, _, _} <- events(4)]),
    no_more_events().

%% The application running with its defaults and one spinning process per scheduler: the
%% gate closes, and every strategy (check_load defaults to true) runs the call unprofiled:
%% no start event, a stop event with skipped => gate_closed and a profile_skipped warning,
%% no file written. The same for a decorated function.
saturated_node_runs_calls_unprofiled(Config) ->
    ok = beamprof:start(),
    attach(),
    Spinners = [spawn(fun spinner/0) || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Path = filename:join(?config(priv_dir, Config), "saturated.svg"),
    try
        Calls = [{profile, #{strategy => S}} || S <- [sample, memory, calls, eprof, cprof, fprof,
                                                      call_graph]]
            ++ [{flame_graph, #{output => Path}}, {profile, #{strategy => sample, async => true}},
                {profile_calls, #{strategy => eprof, async => true}}],
        [begin
             wait_until(fun() -> beamprof:gate() =:= closed end, 20000),
             ?assertEqual(7, beamprof:Entry(fun() -> 7 end, Opts)),
             [{stop, _, Meta}] = events(1),
             ?assertMatch(#{skipped := gate_closed,
                            warnings := [#{code := profile_skipped, message := <<_/binary>>}]},
                          Meta, {Entry, Opts})
         end || {Entry, Opts} <- Calls],
        wait_until(fun() -> beamprof:gate() =:= closed end, 20000),
        ?assertEqual(8, beamprof_profile:decorated(?MODULE, decorated, 0, fun() -> 8 end,
                                                   #{strategy => sample})),
        [{stop, _, #{skipped := gate_closed, module := ?MODULE, function := decorated}}] =
            events(1),
        no_more_events(),
        ?assertNot(filelib:is_file(Path))
    after
        [exit(P, kill) || P <- Spinners]
    end.

spinner() ->
    _ = erlang:phash2(erlang:unique_integer()),
    spinner().

%% A call shorter than the sampling interval has no samples: its stop, sample and complete
%% events say why (profile_no_samples), and so does the profile's title.
no_samples_says_why(Config) ->
    Path = filename:join(?config(priv_dir, Config), "empty.folded"),
    ok = beamprof:flame_graph(fun() -> ok end, noload(#{interval => 1000, output => Path})),
    [{start, _, _}, {stop, _, Stop}, {sample, #{samples := 0}, Sample}, {complete, _, Complete}] =
        events(4),
    [#{code := profile_no_samples, message := Message}] = maps:get(warnings, Sample),
    ct:log("~ts", [Message]),
    ?assertNotEqual(nomatch, binary:match(Message, <<"less than the sampling interval (1000 ms)">>)),
    ?assertEqual(maps:get(warnings, Sample), maps:get(warnings, Stop)),
    ?assertEqual(maps:get(warnings, Sample), maps:get(warnings, Complete)),
    #{profile := #{title := Title}} = Sample,
    ?assertNotEqual(nomatch, binary:match(Title, <<"no samples">>)),
    %% With samples: an empty list.
    ok = beamprof:profile(fun() -> spin(300) end, ?NOLOAD),
    [#{warnings := []}] = [M || {sample, #{samples := N}, M} <- events(4), N > 0].

%% The output may be a binary (Elixir passes binaries) or any chardata: the format still
%% comes from its extension.
chardata_output_paths(Config) ->
    Dir = ?config(priv_dir, Config),
    [begin
         ok = beamprof:flame_graph(fun() -> wrapper(50) end, noload(#{output => Output})),
         {ok, Bin} = file:read_file(filename:join(Dir, Name)),
         ?assertNotEqual(nomatch, binary:match(Bin, Expect), Name),
         _ = events(4)
     end || {Output, Name, Expect} <-
                [{unicode:characters_to_binary(filename:join(Dir, "bin.svg")), "bin.svg", <<"<svg">>},
                 {[Dir, <<"/deep.html">>], "deep.html", <<"<html">>},
                 {[unicode:characters_to_binary(Dir), "/", [<<"list.json">>]], "list.json",
                  <<"speedscope">>}]].

%% async => true, every strategy: the call returns its value while the events (and so the
%% analysis that feeds them) are still to come, and they come from another process. The
%% handler of each event blocks until the test lets it go: were it run by the caller, the
%% call would not return first.
async_analysis_off_callers_path(_Config) ->
    detach(),
    Self = self(),
    Handler = fun([_, _, E], _, _, _) ->
                      Self ! {blocked, E, self()},
                      receive go -> ok after 10000 -> ok end
              end,
    ok = beamprof:attach_many(blocking, [[beamprof, profile, E] || E <- [stop, sample, memory,
                                                                        calls, complete]],
                              Handler, nil),
    try
        [begin
             ?assertEqual(55, beamprof:profile(fun() -> sum(10) end,
                                               noload(#{async => true, strategy => S}))),
             Emitters = release_blocked([]),
             ?assertNot(lists:member(self(), Emitters), S),
             ?assertMatch([_ | _], Emitters)
         end || S <- [sample, memory, calls, eprof, cprof, fprof, call_graph]]
    after
        beamprof:detach(blocking)
    end.

%% Async profiles one right after the other from one process: each finds the lock (global
%% tracing) held by the previous one's analysis, and waits for it rather than answering
%% {error, {busy, _}}.
async_back_to_back(_Config) ->
    [?assertEqual(55, beamprof:profile_calls(fun() -> sum(10) end,
                                             noload(#{async => true, strategy => S})))
     || _ <- [1, 2, 3], S <- [fprof, call_graph, calls, eprof, cprof]],
    %% Each analysis reports when it is done: wait for all 15 (10 s each at most).
    ?assertEqual(15, length(calls_events(15))).

%% The events up to complete, in order (10 s for each at most).
until_complete() ->
    receive
        {profile_event, complete, M, Meta} -> [{complete, M, Meta}];
        {profile_event, E, M, Meta} -> [{E, M, Meta} | until_complete()]
    after 10000 -> ct:fail(no_complete)
    end.

calls_events(0) -> [];
calls_events(N) ->
    receive
        {profile_event, calls, _, Meta} -> [Meta | calls_events(N - 1)];
        {profile_event, _, _, _} -> calls_events(N)
    after 10000 -> []
    end.

%% Lets each blocked handler go, up to the complete event; returns the emitting processes.
release_blocked(Acc) ->
    receive
        {blocked, complete, Pid} -> Pid ! go, [Pid | Acc];
        {blocked, _, Pid} -> Pid ! go, release_blocked([Pid | Acc])
    after 10000 -> ct:fail({no_complete, Acc})
    end.

%% fprof's analysis lists each function for all processes, then again per process: the
%% call graph and the function list hold each function once.
call_graph_lists_functions_once(_Config) ->
    [begin
         ok = beamprof:profile_calls(fun() -> sum(3), _ = lists:seq(1, 3), ok end,
                                     noload(#{strategy => S})),
         [Meta] = [M || {calls, _, M} <- events(4)],
         Functions = [element(1, F) || F <- maps:get(functions, Meta)],
         ?assertEqual(length(lists:usort(Functions)), length(Functions)),
         ?assert(lists:member({?MODULE, sum, 1}, Functions)),
         case S of
             call_graph ->
                 Graph = [F || #{function := F} <- maps:get(call_graph, Meta)],
                 ct:log("~B entries", [length(Graph)]),
                 ?assertEqual(length(lists:usort(Graph)), length(Graph)),
                 [#{calls := 4}] = [E || #{function := {?MODULE, sum, 1}} = E
                                             <- maps:get(call_graph, Meta)];
             fprof -> ok
         end
     end || S <- [call_graph, fprof]].

%% Options, the output's directory included, are checked before the call: the API answers
%% at once without calling the fun (no event); a decorated function must run: it runs
%% unprofiled, and its stop event and the log say why.
output_checked_before_the_call(_Config) ->
    Missing = "/nonexistent/x.svg",
    ?assertEqual({error, {unwritable, Missing, enoent}},
                 beamprof:flame_graph(fun() -> ct:fail(must_not_run) end,
                                      noload(#{output => Missing}))),
    ?assertEqual({error, {unwritable, <<"/nonexistent/y.svg">>, enoent}},
                 beamprof:profile(fun() -> ct:fail(must_not_run) end,
                                  noload(#{output => <<"/nonexistent/y.svg">>}))),
    ?assertError({badarg, "Expected option format" ++ _},
                 beamprof:flame_graph(fun() -> ct:fail(must_not_run) end,
                                      noload(#{output => "x.svg", format => bad}))),
    no_more_events(),
    add_log_handler(),
    try
        ?assertEqual(9, beamprof_profile:decorated(?MODULE, decorated, 0, fun() -> 9 end,
                                                   noload(#{strategy => flame_graph,
                                                            output => Missing}))),
        [{stop, _, #{skipped := {unwritable, Missing, enoent},
                     warnings := [#{code := profile_skipped}]}}] = events(4),
        ?assertMatch([{warning, write_failed, _}], logged())
    after
        logger:remove_handler(?MODULE)
    end.

%% The directory goes while the call runs: the call's value is unchanged (raised exceptions
%% too), the stop, sample and complete events carry error => {write_failed, Path, enoent},
%% and the failure is logged.
write_failure_logged_and_reported(Config) ->
    add_log_handler(),
    try
        [begin
             Dir = filename:join(?config(priv_dir, Config), "gone" ++ integer_to_list(I)),
             ok = file:make_dir(Dir),
             Path = filename:join(Dir, "x.svg"),
             Body = fun() -> wrapper(50), ok = file:del_dir(Dir), 42 end,
             ?assertEqual(42, Entry(Body, noload(#{output => Path, async => Async}))),
             Events = until_complete(),
             [?assertMatch(#{error := {write_failed, Path, enoent}, output := undefined}, M, E)
              || {E, _, M} <- Events, E =/= start],
             ?assertEqual([start, stop, sample, complete], [E || {E, _, _} <- Events]),
             [{warning, write_failed, Text}] = logged(),
             ?assertNotEqual(nomatch, string:find(Text, Path))
         end || {I, Entry, Async} <- [{1, fun beamprof:flame_graph/2, false},
                                      {2, fun beamprof:profile/2, true}]]
    after
        logger:remove_handler(?MODULE)
    end.

%% The log line of a failed write shows in a plain `erl' (OTP's default handler drops
%% every domain but [], [otp] and [otp, sasl]: beamprof logs with none).
write_failure_log_printed_by_plain_erl(_Config) ->
    Erl = filename:join([code:root_dir(), "bin", "erl"]),
    Ebin = filename:dirname(code:which(beamprof_file)),
    Out = os:cmd(Erl ++ " -noshell -pa " ++ Ebin ++ " -eval 'beamprof_file:write_failed("
                 "\"/nonexistent/z.svg\", enoent), timer:sleep(200), halt().' 2>&1"),
    ct:log("~ts", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "could not write /nonexistent/z.svg")).

add_log_handler() ->
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}, level => all}).

%% logger handler callback: forwards beamprof's log events to the test.
log(#{level := Level, msg := Msg, meta := #{beamprof := Domain}}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
               {Format, Args} when is_list(Format) -> lists:flatten(io_lib:format(Format, Args));
               {string, S} -> unicode:characters_to_list(S);
               Other -> lists:flatten(io_lib:format("~0tp", [Other]))
           end,
    Pid ! {logged, Level, Domain, Text};
log(_, _) ->
    ok.

%% The log events received so far (waiting 500 ms for the first).
logged() ->
    receive {logged, L, D, T} -> [{L, D, T} | logged_more()]
    after 500 -> []
    end.

logged_more() ->
    receive {logged, L, D, T} -> [{L, D, T} | logged_more()]
    after 100 -> []
    end.

%% A profile held open (its fun waits) by a `calls' profile, then by an `fprof' one; meanwhile
%% every strategy is tried. Two on global tracing never run at once ({busy, Held}); on OTP
%% 27+ calls, eprof and cprof run in sessions of their own, beside anything.
busy_tracing_lock(_Config) ->
    [begin
         Holder = hold(Held),
         ?assertEqual(case tracing(Held) of global -> Held; session -> none end,
                      beamprof_profile_trace:lock_holder()),
         [case {tracing(Held), tracing(S)} of
              {global, global} ->
                  ?assertEqual({error, {busy, Held}},
                               beamprof:profile_calls(fun() -> ct:fail(must_not_run) end,
                                                      noload(#{strategy => S})));
              _ ->
                  ?assertEqual(55, beamprof:profile_calls(fun() -> sum(10) end,
                                                          noload(#{strategy => S}))),
                  [#{functions := Fs}] = [M || {calls, _, M} <- events(4)],
                  ?assert(lists:any(fun(F) -> element(1, F) =:= {?MODULE, sum, 1} end, Fs), S)
          end || S <- [calls, eprof, cprof, fprof, call_graph]],
         case tracing(Held) of
             global ->
                 ?assertEqual({error, {busy, Held}},
                              beamprof:profile(fun() -> ct:fail(must_not_run) end,
                                               noload(#{strategy => fprof})));
             session -> ok
         end,
         release(Holder),
         ?assertEqual(none, beamprof_profile_trace:lock_holder())
     end || Held <- [calls, fprof]],
    ?assertEqual(3, beamprof:profile_calls(fun() -> 3 end, ?NOLOAD)).

%% A process inside profile_calls with Strategy, waiting for `go'.
hold(Strategy) ->
    Self = self(),
    Holder = spawn_link(fun() ->
                                R = beamprof:profile_calls(fun() -> Self ! {holding, self()},
                                                                    receive go -> held end end,
                                                           noload(#{strategy => Strategy})),
                                Self ! {done, self(), R}
                        end),
    receive {holding, Holder} -> Holder after 10000 -> ct:fail(no_holder) end.

release(Holder) ->
    Holder ! go,
    receive {done, Holder, held} -> ok after 10000 -> ct:fail(holder_not_done) end,
    _ = events(4),
    ok.

trace_cleaned_after_exception_and_kill(_Config) ->
    [begin
         ?assertError(boom, beamprof:profile_calls(fun() -> error(boom) end, noload(#{strategy => S}))),
         assert_no_breakpoints(),
         ?assertEqual(none, beamprof_profile_trace:lock_holder())
     end || S <- [calls, eprof, cprof, fprof]],
    Self = self(),
    Victim = spawn(fun() -> beamprof:profile_calls(fun() -> Self ! traced, receive never -> ok end end,
                                                   noload(#{strategy => eprof})) end),
    receive traced -> ok after 10000 -> ct:fail(not_traced) end,
    case tracing(eprof) of
        global -> ?assertEqual({call_time, []}, erlang:trace_info({lists, seq, 2}, call_time));
        session -> ?assert(lists:member(beamprof_profile, session_names({lists, seq, 2})))
    end,
    exit(Victim, kill),
    wait_until(fun() -> beamprof_profile_trace:lock_holder() =:= none andalso
                            not lists:member(beamprof_profile, session_names(all)) end, 5000),
    assert_no_breakpoints().

%% dbg traces this process's calls of sum/1 while each counting strategy runs. OTP 27+: both
%% work, side by side (dbg gets its 1001 call messages, the profile counts 1001 calls); its
%% settings are still there after. OTP 25 and 26: calls and eprof cannot trace a process
%% another tracer traces and answer {error, already_traced} (dbg keeps working); cprof counts
%% every process without tracing one and says that it shared global tracing.
beside_dbg(_Config) ->
    Self = self(),
    {ok, _} = dbg:tracer(process, {fun(Msg, _) -> Self ! {dbg, Msg}, ok end, ok}),
    try
        {ok, _} = dbg:p(self(), [call]),
        {ok, _} = dbg:tpl(?MODULE, sum, 1, []),
        [beside(S, fun() -> dbg_calls(1001) end) || S <- [calls, eprof, cprof]],
        ?assertEqual(6, sum(3)),
        dbg_calls(4)
    after
        dbg:stop()
    end.

dbg_calls(N) -> traced_calls(dbg, N).

%% The same with a tracer that uses the BIFs as recon_trace does (global tracing on every
%% release).
beside_global_tracer(_Config) ->
    Self = self(),
    Tracer = spawn_link(fun() -> forward(Self) end),
    1 = erlang:trace(self(), true, [call, {tracer, Tracer}]),
    1 = erlang:trace_pattern({?MODULE, sum, 1}, true, [local]),
    try
        [beside(S, fun() -> traced_calls(bif, 1001) end) || S <- [calls, eprof, cprof]],
        ?assertEqual(6, sum(3)),
        traced_calls(bif, 4),
        ?assertEqual({tracer, Tracer}, erlang:trace_info(self(), tracer))
    after
        _ = erlang:trace(self(), false, [call]),
        _ = erlang:trace_pattern({?MODULE, sum, 1}, false, [local]),
        unlink(Tracer),
        exit(Tracer, kill)
    end.

forward(To) ->
    receive Msg -> To ! {bif, Msg}, forward(To) end.

beside(S, TracerGotCalls) ->
    case {tracing(S), beamprof:profile_calls(fun() -> sum(1000) end, noload(#{strategy => S}))} of
        {session, 500500} ->
            TracerGotCalls(),
            [#{functions := Fs, tracing := session, warnings := []}] =
                [M || {calls, _, M} <- events(4)],
            [N] = [element(2, F) || F <- Fs, element(1, F) =:= {?MODULE, sum, 1}],
            ?assertEqual(1001, N);
        {global, 500500} when S =:= cprof ->
            TracerGotCalls(),
            [#{functions := Fs, tracing := global, warnings := Ws}] =
                [M || {calls, _, M} <- events(4)],
            ?assert(lists:member({{?MODULE, sum, 1}, 1001}, Fs)),
            ?assertMatch([#{code := global_tracer_active, message := <<_/binary>>}], Ws);
        {global, Answer} ->
            ?assertEqual({error, already_traced}, Answer),
            ?assertEqual([], [M || {calls, _, M} <- events(4)]),
            ?assertEqual(500500, sum(1000)),
            TracerGotCalls()
    end.

%% Exactly N call messages about sum/1 from the other tracer (Tag: dbg or bif), within 10 s.
traced_calls(Tag, N) ->
    Self = self(),
    [receive {Tag, {trace, Self, call, {?MODULE, sum, [_]}}} -> ok
     after 10000 -> ct:fail({missing_trace_messages, Tag, I})
     end || I <- lists:seq(1, N)],
    receive {Tag, {trace, Self, call, _}} = Extra -> ct:fail({extra_trace_message, Extra})
    after 50 -> ok
    end.

%% Another process traced by another tracer (global tracing, as recon_trace does): every
%% strategy on global tracing says so in a global_tracer_active warning; a session-based
%% one has nothing to say.
global_tracer_said(_Config) ->
    Self = self(),
    Tracer = spawn_link(fun() -> forward(Self) end),
    Traced = spawn_link(fun() -> receive stop -> ok end end),
    try
        [begin
             %% Again each time: fprof turns every process's tracing off when it stops.
             1 = erlang:trace(Traced, true, [call, {tracer, Tracer}]),
             ?assertEqual(55, beamprof:profile_calls(fun() -> sum(10) end, noload(#{strategy => S}))),
             [#{warnings := Ws, tracing := Tracing}] = [M || {calls, _, M} <- events(4)],
             ?assertEqual(tracing(S), Tracing),
             case Tracing of
                 session -> ?assertEqual([], Ws);
                 global ->
                     ?assertMatch([#{code := global_tracer_active}], Ws),
                     [#{message := Message}] = Ws,
                     ?assertNotEqual(nomatch, binary:match(Message, <<"1 process traced">>)),
                     ?assert(beamprof_warnings:is_warning(hd(Ws)))
             end
         end || S <- [calls, eprof, cprof, fprof, call_graph]]
    after
        [begin unlink(P), exit(P, kill) end || P <- [Traced, Tracer]]
    end.

%% fprof profiles one right after the other: each finds the previous one's fprof server gone
%% (fprof:stop/0 answers before its server exits).
fprof_back_to_back(_Config) ->
    [begin
         ?assertEqual(3, beamprof:profile_calls(fun() -> sum(2) end, noload(#{strategy => S}))),
         [#{functions := [_ | _]}] = [M || {calls, _, M} <- events(4)]
     end || _ <- lists:seq(1, 15), S <- [fprof, call_graph]].

assert_no_breakpoints() ->
    ?assertEqual({call_time, false}, erlang:trace_info({lists, seq, 2}, call_time)),
    ?assertEqual({call_count, false}, erlang:trace_info({lists, seq, 2}, call_count)),
    ?assertEqual({flags, []}, erlang:trace_info(self(), flags)),
    ?assertNot(lists:member(beamprof_profile, session_names(all))).

%% How Strategy traces on this VM.
tracing(S) when S =:= calls; S =:= eprof; S =:= cprof ->
    case beamprof_profile_session:available() of
        true -> session;
        false -> global
    end;
tracing(_S) -> global.

%% The names of the trace sessions that affect What (all: every session); none before OTP 27.
session_names(What) ->
    case beamprof_profile_session:available() of
        true -> [Name || {Name, _} <- trace:session_info(What)];
        false -> []
    end.

flame_graph_writes_file(Config) ->
    Dir = ?config(priv_dir, Config),
    [begin
         Path = filename:join(Dir, "work." ++ Ext),
         ?assertEqual(ok, beamprof:flame_graph(fun() -> wrapper(100) end, noload(#{output => Path}))),
         {ok, #file_info{mode = Mode}} = file:read_file_info(Path),
         ?assertEqual(8#600, Mode band 8#777),
         {ok, Bin} = file:read_file(Path),
         ?assertNotEqual(nomatch, binary:match(Bin, Expect), Ext),
         [#{output := Written}] = [M || {complete, _, M} <- events(4)],
         ?assertEqual(Path, unicode:characters_to_list(Written))
     end || {Ext, Expect} <- [{"svg", <<"<svg">>}, {"folded", <<"burn/1 ">>},
                              {"json", <<"speedscope">>}, {"html", <<"burn/1">>}]],
    ?assertError({badarg, "Expected option output" ++ _}, beamprof:flame_graph(fun() -> ok end, #{})).

async_off_callers_path(_Config) ->
    Self = self(),
    ok = beamprof:attach(who, [beamprof, profile, complete],
                         fun(_, _, _, _) -> Self ! {complete_from, self()} end, nil),
    [begin
         ok = beamprof:profile(fun() -> ok end, noload(#{async => true, strategy => S})),
         receive {complete_from, Pid} -> ?assertNotEqual(self(), Pid)
         after 5000 -> ct:fail(no_complete)
         end
     end || S <- [sample, memory, calls]],
    ok = beamprof:profile(fun() -> ok end, noload(#{async => false})),
    receive {complete_from, Pid} -> ?assertEqual(self(), Pid) after 5000 -> ct:fail(no_complete) end.

env_option(_Config) ->
    ok = application:set_env(beamprof, env, prod),
    ok = beamprof:profile(fun() -> ok end, noload(#{env => [staging]})),
    no_more_events(),
    ok = beamprof:profile(fun() -> ok end, noload(#{env => [staging, prod]})),
    ?assertMatch([start | _], [E || {E, _, _} <- events(4)]),
    ok = application:set_env(beamprof, env, fun() -> staging end),
    ok = beamprof:profile(fun() -> ok end, noload(#{env => [staging]})),
    ?assertMatch([start | _], [E || {E, _, _} <- events(4)]).

emit_metrics_false(Config) ->
    Path = filename:join(?config(priv_dir, Config), "quiet.folded"),
    ok = beamprof:flame_graph(fun() -> wrapper(50) end, noload(#{emit_metrics => false, output => Path})),
    no_more_events(),
    ?assertMatch({ok, _}, file:read_file_info(Path)).

nested_calls_profiled_once(_Config) ->
    Inner = fun() -> beamprof:profile(fun() -> 1 end, ?NOLOAD) end,
    ?assertEqual(1, beamprof:profile(fun() -> beamprof:profile(Inner, ?NOLOAD) end, ?NOLOAD)),
    ?assertEqual(1, length([S || {start, _, _} = S <- events(4)])),
    no_more_events().

duration_caps_sampling(_Config) ->
    ok = beamprof:profile(fun() -> timer:sleep(400) end, noload(#{duration => 50, interval => 5})),
    [N] = [N || {sample, #{samples := N}, _} <- events(4)],
    ct:log("samples with a 50 ms cap at 5 ms: ~B", [N]),
    ?assert(N >= 1 andalso N =< 12).

backtrace_depth_restored(_Config) ->
    Old = erlang:system_flag(backtrace_depth, 5),
    try
        Self = self(),
        %% The depth in force shows as the length of the current stacktrace of a process
        %% 40 calls deep (a and b call each other), read once the sampler has started.
        {Pid, Ref} = spawn_monitor(fun() ->
                                           ok = beamprof:profile(fun() -> timer:sleep(100),
                                                                          _ = a(40, Self), ok end,
                                                                 ?NOLOAD)
                                   end),
        receive {deep, Pid} -> ok after 5000 -> ct:fail(not_deep) end,
        {current_stacktrace, Deep} = erlang:process_info(Pid, current_stacktrace),
        Pid ! go,
        receive {'DOWN', Ref, process, Pid, normal} -> ok after 5000 -> ct:fail(no_exit) end,
        ct:log("~B frames: ~p", [length(Deep), Deep]),
        ?assert(length(Deep) > 40),
        wait_until(fun() -> whereis(beamprof_profile_depth) =:= undefined end, 5000),
        ?assertEqual(5, erlang:system_flag(backtrace_depth, 5)),
        %% Samplers overlapping in time: the flag comes back once the last one ends.
        Pids = [spawn_monitor(fun() -> beamprof:profile(fun() -> timer:sleep(20 * I) end, ?NOLOAD) end)
                || I <- lists:seq(1, 6)],
        [receive {'DOWN', R, process, P, normal} -> ok after 5000 -> ct:fail(no_exit) end
         || {P, R} <- Pids],
        wait_until(fun() -> whereis(beamprof_profile_depth) =:= undefined end, 5000),
        ?assertEqual(5, erlang:system_flag(backtrace_depth, 5))
    after
        erlang:system_flag(backtrace_depth, Old)
    end.

options_refused(_Config) ->
    ?assertError({badarg, "Unknown option nope" ++ _}, beamprof:profile(fun() -> ok end, #{nope => 1})),
    ?assertError({badarg, "Expected option rate" ++ _}, beamprof:profile(fun() -> ok end, #{rate => 2})),
    ?assertError({badarg, "Expected option strategy of profile_if_slow" ++ _},
                 beamprof:profile_if_slow(fun() -> ok end, #{strategy => calls})),
    ?assertError({badarg, "Option threshold applies" ++ _},
                 beamprof:profile(fun() -> ok end, #{strategy => cprof, threshold => 5})),
    ?assertError({badarg, "Expected Fun, the first argument of profile/2, to be a fun of arity 0"
                  ++ _}, beamprof_profile:profile(fun(_) -> ok end, #{})),
    ?assertError({badarg, "Expected a fun of arity 0" ++ _},
                 beamprof:flame_graph(fun(_) -> ok end, #{})).

prop_transparent(_Config) -> check(prop_beamprof_profile:prop_transparent(), 300).
prop_transparent_traced(_Config) -> check(prop_beamprof_profile:prop_transparent_traced(), 30).
prop_bad_options_refused(_Config) -> check(prop_beamprof_profile:prop_bad_options_refused(), 300).

check(Prop, N) ->
    detach(),
    beamprof_ct:quickcheck(Prop, N).

%% Options of a case not about the gate: Opts with check_load off (maps:merge/2: OTP 27
%% warns that `?NOLOAD#{...}' updates a literal).
noload(Opts) -> maps:merge(?NOLOAD, Opts).

%% --- workloads -----------------------------------------------------------------------------

wrapper(Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wrapper_loop(Deadline).

wrapper_loop(Deadline) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> _ = burn(2000), wrapper_loop(Deadline)
    end.

burn(0) -> ok;
burn(N) -> _ = erlang:phash2(N), burn(N - 1).

spin(Ms) -> wrapper(Ms).

%% Mutual recursion: a stacktrace collapses a function calling itself, not two alternating.
a(0, P) -> P ! {deep, self()}, receive go -> 0 end;
a(N, P) -> 1 + b(N - 1, P).

b(N, P) -> 1 + a(N, P).

sum(0) -> 0;
sum(N) -> N + sum(N - 1).

raise(Class, Reason) -> erlang:Class(Reason).

catch_it(Fun) ->
    try Fun() of V -> ct:fail({returned, V})
    catch Class:Reason:Stack -> {Class, Reason, Stack}
    end.

%% --- events --------------------------------------------------------------------------------

attach() ->
    Self = self(),
    ok = beamprof:attach_many(?MODULE, [[beamprof, profile, E] || E <- ?EVENTS],
                              fun([_, _, E], M, Meta, _) -> Self ! {profile_event, E, M, Meta} end,
                              nil).

detach() ->
    _ = beamprof:detach(?MODULE),
    ok.

%% Up to N events, in order; stops early after 500 ms with none.
events(N) ->
    events(N, []).

events(0, Acc) -> lists:reverse(Acc);
events(N, Acc) ->
    receive {profile_event, E, M, Meta} -> events(N - 1, [{E, M, Meta} | Acc])
    after 500 -> lists:reverse(Acc)
    end.

no_more_events() ->
    receive {profile_event, E, _, _} = Ev -> ct:fail({unexpected_event, E, Ev})
    after 100 -> ok
    end.
