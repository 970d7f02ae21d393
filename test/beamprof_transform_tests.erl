%% EUnit tests of the parse transform: a decorated module behaves as the same source
%% compiled without it (results, exceptions, the line of the raising frame), apart from
%% the events, which carry the real module, function and arity; bad attributes are
%% compile errors naming the problem.
-module(beamprof_transform_tests).
-include_lib("eunit/include/eunit.hrl").

-define(SOURCE, "
-module('$MOD').
-export([classify/1, fact/1, fail/2, total/2]).
-beamprof_profile({classify, 1, #{strategy => sample, check_load => false}}).
-beamprof_profile({fact, 1, profile_if_slow, #{threshold => 1000, check_load => false}}).
-beamprof_profile({fail, 2, profile_memory, #{check_load => false}}).
-beamprof_profile({total, 2, #{rate => 0.5, check_load => false}}).
-spec classify(term()) -> atom().
classify(X) when is_integer(X), X > 0 -> positive;
classify(0) -> zero;
classify(X) when is_integer(X) -> negative;
classify(_) -> other.
fact(0) -> 1;
fact(N) -> N * fact(N - 1).
fail(error, R) -> error(R);
fail(exit, R) -> exit(R);
fail(throw, R) -> throw(R).
total([], Acc) -> Acc;
total([X | Xs], Acc) -> total(Xs, Acc + X).
").

-define(EVENTS, [[beamprof, profile, E] || E <- [start, stop, exception, sample, memory, complete]]).

transform_test_() ->
    {setup,
     fun() ->
             {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
             ok = beamprof:start(),
             load(beamprof_dec, [{parse_transform, beamprof_transform}]),
             load(beamprof_plain, [])
     end,
     fun(_) -> beamprof:stop() end,
     [fun same_results/0, fun same_exceptions/0, fun events_carry_real_mfa/0,
      fun recursion_profiled_once/0, fun example_module_through_hrl/0,
      fun missing_function_is_an_error/0, fun bad_options_are_an_error/0]}.

same_results() ->
    [?assertEqual(beamprof_plain:classify(X), beamprof_dec:classify(X))
     || X <- [1, 0, -5, a, 1.5, "x"]],
    ?assertEqual(beamprof_plain:fact(20), beamprof_dec:fact(20)),
    [?assertEqual(beamprof_plain:total(L, 0), beamprof_dec:total(L, 0))
     || L <- [[], [1, 2, 3], lists:seq(1, 1000)]].

same_exceptions() ->
    [begin
         {Class, Reason, [Plain | _]} = caught(fun() -> beamprof_plain:fail(Class, Reason) end),
         {C, R, [Dec | _]} = caught(fun() -> beamprof_dec:fail(Class, Reason) end),
         ?assertEqual({Class, Reason}, {C, R}),
         ?assert(is_integer(line(Plain))),
         ?assertEqual(line(Plain), line(Dec))
     end || {Class, Reason} <- [{error, boom}, {exit, normal}, {throw, {a, 1}}]],
    ?assertError(function_clause, beamprof_dec:fail(other, x)).

events_carry_real_mfa() ->
    Ref = attach(),
    try
        positive = beamprof_dec:classify(3),
        [{start, Meta} | _] = events(Ref),
        ?assertMatch(#{module := beamprof_dec, function := classify, arity := 1,
                       strategy := sample}, Meta),
        ?assertError(boom, beamprof_dec:fail(error, boom)),
        Names = [E || {E, _} <- events(Ref)],
        ?assertEqual([start, exception, memory, complete], Names)
    after
        beamprof:detach(Ref)
    end.

recursion_profiled_once() ->
    Ref = attach(),
    try
        _ = beamprof_transform_example:fact(30),
        Starts = [M || {start, M} <- events(Ref)],
        ?assertMatch([#{module := beamprof_transform_example, function := fact, arity := 1}],
                     Starts)
    after
        beamprof:detach(Ref)
    end.

example_module_through_hrl() ->
    Ref = attach(),
    try
        ?assertEqual(positive, beamprof_transform_example:classify(2)),
        ?assertEqual(6, beamprof_transform_example:total([1, 2, 3], 0)),
        Metas = [M || {memory, M} <- events(Ref)],
        ?assertMatch([#{function := total, arity := 2, metadata := #{team := core}}], Metas)
    after
        beamprof:detach(Ref)
    end.

missing_function_is_an_error() ->
    {error, [{_, [{Line, beamprof_transform, E}]}], _} =
        compile_source("-module(m).\n-beamprof_profile({nope, 2, #{}}).\nf() -> ok.\n"),
    ?assertEqual(2, Line),
    ?assertEqual("beamprof_profile: function nope/2 is not defined",
                 beamprof_transform:format_error(E)).

bad_options_are_an_error() ->
    {error, [{_, [{_, beamprof_transform, E}]}], _} =
        compile_source("-module(m).\n-export([f/0]).\n-beamprof_profile({f, 0, #{rate => 7}}).\nf() -> ok.\n"),
    Message = beamprof_transform:format_error(E),
    ?assertNotEqual(nomatch, string:find(Message, "rate")),
    {error, [{_, [{_, beamprof_transform, E2}]}], _} =
        compile_source("-module(m).\n-beamprof_profile(f).\nf() -> ok.\n"),
    ?assertNotEqual(nomatch, string:find(beamprof_transform:format_error(E2), "expected {Name, Arity}")).

%% --- helpers -------------------------------------------------------------------------------

load(Module, Options) ->
    Source = string:replace(?SOURCE, "'$MOD'", atom_to_list(Module)),
    {ok, Module, Bin} = compile_source(lists:flatten(Source), [binary | Options]),
    {module, Module} = code:load_binary(Module, atom_to_list(Module) ++ ".erl", Bin).

compile_source(Source) ->
    compile_source(Source, [binary, return_errors, {parse_transform, beamprof_transform}]).

compile_source(Source, Options) ->
    {ok, Tokens, _} = erl_scan:string(Source, 1),
    Forms = split(Tokens, [], []),
    compile:forms(Forms, [return_errors | Options]).

split([], [], Acc) -> lists:reverse(Acc);
split([{dot, _} = Dot | Rest], Cur, Acc) ->
    {ok, Form} = erl_parse:parse_form(lists:reverse([Dot | Cur])),
    split(Rest, [], [Form | Acc]);
split([T | Rest], Cur, Acc) -> split(Rest, [T | Cur], Acc).

caught(Fun) ->
    try Fun() of V -> error({returned, V})
    catch C:R:S -> {C, R, S}
    end.

%% The raising frame's function (the decorated one is renamed) is not compared; its line is.
line({_, _, _, Loc}) -> proplists:get_value(line, Loc).

attach() ->
    Ref = make_ref(),
    Self = self(),
    ok = beamprof:attach_many(Ref, ?EVENTS,
                              fun([_, _, E], _, M, _) -> Self ! {Ref, E, M} end, nil),
    Ref.

events(Ref) ->
    receive {Ref, E, M} -> [{E, M} | events(Ref)]
    after 200 -> []
    end.
