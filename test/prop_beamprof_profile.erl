%% PropEr properties of the profiling API: a profiled call returns exactly what the
%% unprofiled call returns, and raises exactly what it raises (class, reason, and the
%% frame that raised), whatever the strategy, rate or entry point.
-module(prop_beamprof_profile).

-include_lib("proper/include/proper.hrl").

-export([prop_transparent/0, prop_transparent_traced/0, prop_bad_options_refused/0]).
-export([behave/1]).

%% The strategies that do not trace: run them many times.
prop_transparent() ->
    ?FORALL({Behaviour, Entry, Opts}, {behaviour(), entry(), options()},
            same(Behaviour, fun(F) -> beamprof_profile:Entry(F, Opts) end)).

%% The tracing strategies set breakpoints on every function: fewer runs.
prop_transparent_traced() ->
    ?FORALL({Behaviour, Strategy}, {behaviour(), oneof([calls, eprof, cprof])},
            same(Behaviour, fun(F) -> beamprof_profile:profile_calls(F, #{strategy => Strategy}) end)).

%% Any unknown key, or a known key with a value of the wrong type, raises {badarg, Message}
%% with the key's name in the message.
prop_bad_options_refused() ->
    ?FORALL({Key, Value}, bad_option(),
            try beamprof_profile:profile(fun() -> ok end, #{Key => Value}) of
                _ -> false
            catch
                error:{badarg, Message} -> string:find(Message, atom_to_list(Key)) =/= nomatch
            end).

same(Behaviour, Profiled) ->
    Plain = run(fun() -> behave(Behaviour) end),
    Wrapped = run(fun() -> Profiled(fun() -> behave(Behaviour) end) end),
    ?WHENFAIL(io:format("plain ~p~nprofiled ~p~n", [Plain, Wrapped]), Plain =:= Wrapped).

%% The outcome, with the top frame of the stacktrace (the frames below it are the caller's,
%% which profiling adds to by design).
run(Fun) ->
    try {ok, Fun()}
    catch Class:Reason:Stack -> {Class, Reason, hd(Stack)}
    end.

behave({return, Term}) -> Term;
behave({raise, Class, Term}) -> erlang:raise(Class, Term, [{?MODULE, behave, 1, []}]);
behave({error, Term}) -> erlang:error(Term);
behave({exit, Term}) -> exit(Term);
behave({throw, Term}) -> throw(Term);
behave({work, N, Term}) -> _ = lists:sum(lists:seq(1, N)), Term.

behaviour() ->
    oneof([{return, any()}, {error, any()}, {exit, any()}, {throw, any()},
           {raise, oneof([error, exit, throw]), any()}, {work, range(0, 20000), any()}]).

entry() ->
    oneof([profile, profile_if_slow, profile_production, profile_memory]).

options() ->
    ?LET(Pairs, list(oneof([{rate, oneof([0.0, 0.5, 1.0, 1])}, {sample_rate_is_not_rate, x},
                            {interval, range(1, 5)}, {async, boolean()},
                            {emit_metrics, boolean()}, {check_load, boolean()},
                            {metadata, ?LET(KVs, list({atom(), any()}), maps:from_list(KVs))}, {enabled, boolean()}])),
         maps:remove(sample_rate_is_not_rate, maps:from_list(Pairs))).

bad_option() ->
    oneof([{oneof([nope, strategyy, ratee, timeout]), any()},
           {rate, oneof([-0.1, 1.5, x, "1"])},
           {strategy, oneof([fast, "sample", 1])},
           {interval, oneof([0, -1, 1.5, a])},
           {duration, oneof([0, a, -5])},
           {async, oneof([1, yes, "true"])},
           {metadata, oneof([[], a, 1])},
           {format, oneof([png, "svg"])}]).
