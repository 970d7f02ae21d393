%% EUnit tests of beamprof_symtab against a model: the name at an address
%% is that of the last inserted range covering it.
-module(beamprof_symtab_tests).
-include_lib("eunit/include/eunit.hrl").

normalize_test() ->
    ?assertEqual(<<"m:f/1">>, beamprof_symtab:normalize(<<"$m:f/1-CodeInfoPrologue">>)),
    ?assertEqual(<<"m:f/1">>, beamprof_symtab:normalize(<<"m:f/1">>)),
    ?assertEqual(<<"global::call_nif_shared">>,
                 beamprof_symtab:normalize(<<"$global::call_nif_shared">>)),
    ?assertEqual(<<"-CodeInfoPrologue">>, beamprof_symtab:normalize(<<"-CodeInfoPrologue">>)).

overlap_test() ->
    T = beamprof_symtab:new(),
    ok = beamprof_symtab:insert(T, 100, 200, <<"a">>),
    ok = beamprof_symtab:insert(T, 150, 160, <<"b">>),
    ?assertEqual(<<"a">>, beamprof_symtab:lookup(T, 149)),
    ?assertEqual(<<"b">>, beamprof_symtab:lookup(T, 150)),
    ?assertEqual(<<"a">>, beamprof_symtab:lookup(T, 160)),
    ?assertEqual(undefined, beamprof_symtab:lookup(T, 200)),
    ?assertEqual(undefined, beamprof_symtab:lookup(T, 99)),
    ok = beamprof_symtab:insert(T, 50, 300, <<"c">>),
    ?assertEqual(1, beamprof_symtab:size(T)),
    ?assertEqual(<<"c">>, beamprof_symtab:lookup(T, 155)),
    ok = beamprof_symtab:insert(T, 10, 10, <<"empty">>),
    ?assertEqual(undefined, beamprof_symtab:lookup(T, 10)),
    beamprof_symtab:delete(T).

model_test() ->
    rand:seed(exsss, {1, 2, 3}),
    T = beamprof_symtab:new(),
    Ranges = [begin S = rand:uniform(1000), {S, S + rand:uniform(80), integer_to_binary(I)} end
              || I <- lists:seq(1, 400)],
    [ok = beamprof_symtab:insert(T, S, E, N) || {S, E, N} <- Ranges],
    Model = fun(A) ->
                    case [N || {S, E, N} <- Ranges, S =< A, A < E] of
                        [] -> undefined;
                        Ns -> lists:last(Ns)
                    end
            end,
    [?assertEqual(Model(A), beamprof_symtab:lookup(T, A)) || A <- lists:seq(0, 1100)],
    beamprof_symtab:delete(T).
