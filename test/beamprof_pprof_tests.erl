%% EUnit tests of the pprof encoder, read back by the independent decoder
%% (beamprof_pprof_decode, written from profile.proto): random profiles
%% round-trip (frames and weights), sample types per unit, labels, comments,
%% errors; native address data (locations with addresses and mappings,
%% thread kinds, truncation, overflow, the fallback to frames when the data
%% does not add up) through the aggregator as the collector feeds it; the
%% process sampler's pid, name and files.
-module(beamprof_pprof_tests).

-include_lib("eunit/include/eunit.hrl").

decode(Bin) ->
    ?assertMatch(<<31, 139, _/binary>>, Bin),
    {ok, D} = beamprof_pprof_decode:decode(Bin),
    D.

%% --- frames ----------------------------------------------------------------------------

random_roundtrip_test() ->
    rand:seed(exsss, {1, 2, 3}),
    [roundtrip(random_profile()) || _ <- lists:seq(1, 200)].

random_profile() ->
    Pool = [<<"m:f/0">>, <<"m:g/1">>, <<"caf", 233/utf8, ":x/2">>, <<"beam.smp+0x1a2b">>,
            <<"[normal]">>, <<"a;b">>, <<"process_main">>, <<"x">>, <<"日本:語/3"/utf8>>],
    Stacks = [{[lists:nth(rand:uniform(length(Pool)), Pool)
                || _ <- lists:seq(1, rand:uniform(12) - 1)],
               rand:uniform(1 bsl (rand:uniform(60))) }
              || _ <- lists:seq(1, rand:uniform(40))],
    #{stacks => Stacks, unit => lists:nth(rand:uniform(3), [samples, microseconds, bytes])}.

roundtrip(#{stacks := Stacks} = P) ->
    D = decode(beamprof_pprof:encode(P)),
    Got = [{Frames, Vs} || {Frames, Vs, _} <- beamprof_pprof_decode:stacks(D)],
    Want = [{case F of [] -> [<<"[no frames]">>]; _ -> F end, [W]} || {F, W} <- Stacks],
    ?assertEqual(Want, Got),
    %% every id referenced exists, ids are unique
    check_ids(D).

check_ids(#{samples := Samples, locations := Locs, functions := Funs, mappings := Maps}) ->
    LocIds = [Id || #{id := Id} <- Locs],
    FunIds = [Id || #{id := Id} <- Funs],
    MapIds = [Id || #{id := Id} <- Maps],
    [?assertEqual(length(L), length(lists:usort(L))) || L <- [LocIds, FunIds, MapIds]],
    [?assert(lists:member(L, LocIds)) || #{location_ids := Ls} <- Samples, L <- Ls],
    [?assert(lists:member(F, FunIds)) || #{lines := Ls} <- Locs, #{function_id := F} <- Ls],
    [?assert(M =:= 0 orelse lists:member(M, MapIds)) || #{mapping_id := M} <- Locs],
    ok.

units_test() ->
    Types = fun(P) -> maps:get(sample_type, decode(beamprof_pprof:encode(P))) end,
    S = [{[<<"a">>], 1}],
    ?assertEqual([#{type => <<"samples">>, unit => <<"count">>}], Types(#{stacks => S})),
    ?assertEqual([#{type => <<"time">>, unit => <<"microseconds">>}],
                 Types(#{stacks => S, unit => microseconds})),
    ?assertEqual([#{type => <<"space">>, unit => <<"bytes">>}],
                 Types(#{stacks => S, unit => bytes})).

labels_test() ->
    P = #{stacks => [{[<<"a">>], 1}, {[<<"b">>], 2}]},
    Node = atom_to_binary(node()),
    [{_, _, L1}, {_, _, L2}] = beamprof_pprof_decode:stacks(decode(beamprof_pprof:encode(P))),
    ?assertEqual([{<<"node">>, Node}], L1),
    ?assertEqual(L1, L2),
    Extra = #{<<"application">> => <<"shop">>, <<"node">> => <<"other@host">>},
    [{_, _, L3} | _] = beamprof_pprof_decode:stacks(
                         decode(beamprof_pprof:encode(P, #{labels => Extra}))),
    ?assertEqual([{<<"application">>, <<"shop">>}, {<<"node">>, <<"other@host">>}], L3).

comments_test() ->
    P = #{stacks => [{[<<"a">>], 1}], title => "My title", notes => [<<"first note">>],
          warnings => [beamprof_warnings:new(profile_no_samples, "none at all")]},
    #{comments := C} = decode(beamprof_pprof:encode(P)),
    ?assertEqual([<<"My title">>, <<"first note">>,
                  <<"warning profile_no_samples: none at all">>], C).

names_cleaned_test() ->
    P = #{stacks => [{[<<"bad", 255, "\nname">>], 1}]},
    [{[Name], _, _}] = beamprof_pprof_decode:stacks(decode(beamprof_pprof:encode(P))),
    ?assertEqual(<<"bad", 16#FFFD/utf8, " name">>, Name).

empty_profile_test() ->
    D = decode(beamprof_pprof:encode(#{stacks => []})),
    ?assertEqual([], maps:get(samples, D)).

badarg_test_() ->
    Bad = [not_a_map, #{}, #{stacks => x}, #{stacks => [x]}, #{stacks => [{[<<"a">>], 0}]},
           #{stacks => [{[<<"a">>], 1.0}]}, #{stacks => [{[a], 1}]},
           #{stacks => [{[<<"a">> | <<"b">>], 1}]}, #{stacks => [], unit => seconds},
           #{stacks => [], title => [-1]}, #{stacks => [], notes => x}],
    [?_assertError({badarg, M} when is_list(M), beamprof_pprof:encode(P)) || P <- Bad] ++
    [?_assertError({badarg, _}, beamprof_pprof:encode(#{stacks => []}, O))
     || O <- [x, #{labels => x}, #{labels => #{a => <<"b">>}}, #{labels => #{<<"a">> => 1}}]].

%% write_profile/3 and the flame module take pprof as one more format
write_profile_test() ->
    Dir = string:trim(os:cmd("mktemp -d")),
    Path = filename:join(Dir, "p.pb.gz"),
    P = #{stacks => [{[<<"m:f/0">>], 3}]},
    ?assertEqual({ok, Path}, beamprof:write_profile(P, Path, pprof)),
    {ok, Bin} = file:read_file(Path),
    ?assertMatch([{[<<"m:f/0">>], [3], _}], beamprof_pprof_decode:stacks(decode(Bin))),
    ?assertEqual({ok, pprof}, beamprof_flame:format_of(Path)),
    ?assertMatch({error, {badarg, _}}, beamprof:write_profile(#{}, Path, pprof)),
    os:cmd("rm -rf " ++ Dir).

%% --- native address data ----------------------------------------------------------------

-define(JIT, 16#7F0000001000).
-define(C, 16#5600000A0000).

native_profile(Samples, Maps) ->
    Acc = beamprof_native_agg:add(Samples, beamprof_native_agg:new()),
    Data = (beamprof_native_agg:pprof(Acc))#{kind => native, period_ns => 10101010,
                                             mappings => Maps, time_nanos => 1,
                                             duration_nanos => 1000000000},
    (beamprof_native_agg:totals(Acc))#{stacks => beamprof_native_agg:stacks(Acc),
                                       unit => samples, pprof => Data}.

maps() ->
    [#{start => ?C, limit => ?C + 16#10000, offset => 16#2000,
       file => <<"/usr/bin/beam.smp">>, build_id => <<"abcd">>},
     #{start => ?JIT, limit => ?JIT + 16#1000, offset => 0, file => <<"[jit]">>,
       build_id => <<>>}].

native_test() ->
    Samples = [{normal, 1, 3, false, [<<"m:spin/1">>, <<"m:outer/1">>], [?JIT + 16, ?JIT + 65]},
               {normal, 2, 2, false, [<<"m:spin/1">>, <<"m:outer/1">>], [?JIT + 20, ?JIT + 65]},
               {dirty_cpu, 1, 5, true, [<<"memcpy">>, <<"nif_fun">>, <<"m:outer/1">>],
                [?C + 8, ?C + 101, ?JIT + 65]},
               {normal, 1, 1, false, [<<"m:spin/1">>, <<"m:outer/1">>], [?JIT + 16, ?JIT + 65]}],
    P = native_profile(Samples, maps()),
    D = decode(beamprof_pprof:encode(P)),
    check_ids(D),
    ?assertEqual([#{type => <<"samples">>, unit => <<"count">>},
                  #{type => <<"cpu">>, unit => <<"nanoseconds">>}], maps:get(sample_type, D)),
    ?assertEqual(#{type => <<"cpu">>, unit => <<"nanoseconds">>}, maps:get(period_type, D)),
    ?assertEqual(10101010, maps:get(period, D)),
    ?assertEqual(<<"cpu">>, maps:get(default_sample_type, D)),
    Stacks = beamprof_pprof_decode:stacks(D),
    %% one sample per address stack; weights add up, cpu = weight * period
    ?assertEqual(3, length(Stacks)),
    ?assertEqual(11, lists:sum([W || {_, [W, _], _} <- Stacks])),
    [?assertEqual(W * 10101010, Ns) || {_, [W, Ns], _} <- Stacks],
    ?assertEqual([{[<<"m:outer/1">>, <<"m:spin/1">>], [2, 20202020],
                   [{<<"node">>, atom_to_binary(node())}, {<<"thread_kind">>, <<"normal">>}]},
                  {[<<"m:outer/1">>, <<"m:spin/1">>], [4, 40404040],
                   [{<<"node">>, atom_to_binary(node())}, {<<"thread_kind">>, <<"normal">>}]},
                  {[<<"m:outer/1">>, <<"nif_fun">>, <<"memcpy">>], [5, 50505050],
                   [{<<"node">>, atom_to_binary(node())}, {<<"thread_kind">>, <<"dirty_cpu">>},
                    {<<"truncated">>, <<"true">>}]}],
                 lists:sort(Stacks)),
    %% one location per address: the leaf's as sampled, callers' less one,
    %% each in its mapping
    Locs = maps:get(locations, D),
    Addrs = lists:sort([A || #{address := A} <- Locs]),
    ?assertEqual(lists:sort([?JIT + 16, ?JIT + 20, ?JIT + 64, ?C + 8, ?C + 100]), Addrs),
    [#{id := CMap, filename := <<"/usr/bin/beam.smp">>, build_id := <<"abcd">>,
       memory_start := ?C, file_offset := 16#2000, has_functions := true},
     #{id := JitMap, filename := <<"[jit]">>}] = maps:get(mappings, D),
    [?assertEqual(if A >= ?JIT -> JitMap; true -> CMap end, M)
     || #{address := A, mapping_id := M} <- Locs],
    %% the functions are named once each
    ?assertEqual(4, length(maps:get(functions, D))).

native_filter_test() ->
    Samples = [{normal, 1, 3, false, [<<"a">>], [?JIT]},
               {dirty_io, 1, 2, false, [<<"b">>], [?C]}],
    P = beamprof_native_agg:filter(native_profile(Samples, maps()), [dirty_io]),
    Stacks = beamprof_pprof_decode:stacks(decode(beamprof_pprof:encode(P))),
    ?assertMatch([{[<<"b">>], [2, _], _}], Stacks).

%% Data that does not add up to the stacks (a profile edited or merged
%% after sampling) is not used: the file comes from the frames.
native_mismatch_test() ->
    P0 = native_profile([{normal, 1, 3, false, [<<"a">>], [?JIT]}], maps()),
    P = P0#{stacks => [{[<<"[normal]">>, <<"a">>], 3}, {[<<"other">>], 1}]},
    D = decode(beamprof_pprof:encode(P)),
    ?assertEqual([], maps:get(mappings, D)),
    ?assertEqual([{[<<"[normal]">>, <<"a">>], [3]}, {[<<"other">>], [1]}],
                 [{S, V} || {S, V, _} <- beamprof_pprof_decode:stacks(D)]),
    %% and the file says why it has no addresses
    ?assert(lists:any(fun(C) -> binary:match(C, <<"Addresses and mappings left out">>) =/= nomatch
                      end, maps:get(comments, D))).

%% Samples without addresses add to the frames only: the data then does not
%% add up, and the file comes from the frames.
native_without_addresses_test() ->
    P = native_profile([{normal, 1, 3, false, [<<"a">>]}], maps()),
    D = decode(beamprof_pprof:encode(P)),
    ?assertEqual([{[<<"[normal]">>, <<"a">>], [3]}],
                 [{S, V} || {S, V, _} <- beamprof_pprof_decode:stacks(D)]).

native_overflow_test_() ->
    {timeout, 120, fun() ->
        %% 100,000 distinct address stacks are kept; more are [overflow]
        Samples = [{normal, 1, 1, false, [<<"f">>], [?JIT + N]} || N <- lists:seq(1, 100005)]
            ++ [{dirty_io, 1, 7, false, [<<"g">>], [?C]}],
        P = native_profile(Samples, maps()),
        #{samples := S, overflow := O, names := Names} = maps:get(pprof, P),
        ?assertEqual(100000, map_size(S)),
        ?assertEqual(#{normal => 5, dirty_io => 7}, O),
        ?assertEqual(100000, map_size(Names)),
        D = decode(beamprof_pprof:encode(P)),
        Stacks = beamprof_pprof_decode:stacks(D),
        ?assertEqual(100005 + 7, lists:sum([W || {_, [W, _], _} <- Stacks])),
        ?assertEqual([{[<<"[overflow]">>], [5, 5 * 10101010]}, {[<<"[overflow]">>], [7, 7 * 10101010]}],
                     lists:sort([{F, V} || {[<<"[overflow]">>] = F, V, _} <- Stacks]))
    end}.

covering_test() ->
    Maps = [#{start => 100, limit => 200, n => a}, #{start => 300, limit => 400, n => b},
            #{start => 500, limit => 600, n => c}],
    ?assertEqual([], beamprof_pprof_native:covering(Maps, [])),
    ?assertEqual([a, c], [N || #{n := N} <- beamprof_pprof_native:covering(Maps, [50, 100, 599, 700])]),
    ?assertEqual([b], [N || #{n := N} <- beamprof_pprof_native:covering(Maps, [399])]).

read_maps_test() ->
    case os:type() of
        {unix, linux} ->
            Maps = beamprof_pprof_native:read_maps(),
            %% the main executable first: beam.smp
            [#{file := Main} | _] = Maps,
            ?assertEqual(<<"beam.smp">>, filename:basename(Main)),
            [?assert(S < L) || #{start := S, limit := L} <- Maps];
        _ ->
            ?assertEqual([], beamprof_pprof_native:read_maps())
    end.

%% --- process stacks ---------------------------------------------------------------------

process_test() ->
    Self = self(),
    Result = #{samples => 3, started => true, truncated => 0,
               stacks => #{[{lists, seq, 2}, {m, f, 0}] => 2, [{lists, seq, 2}] => 1},
               files => #{lists => <<"lists.erl">>},
               process => #{<<"pid">> => list_to_binary(pid_to_list(Self)),
                            <<"registered_name">> => <<"shop">>},
               interval => 10, since => 1000, until => 31000},
    P = beamprof_profile_sample:profile(Result, "t"),
    D = decode(beamprof_pprof:encode(P)),
    ?assertEqual([#{type => <<"samples">>, unit => <<"count">>},
                  #{type => <<"wall">>, unit => <<"nanoseconds">>}], maps:get(sample_type, D)),
    ?assertEqual(10000000, maps:get(period, D)),
    ?assertEqual(30000, maps:get(duration_nanos, D)),
    ?assertEqual(1000, maps:get(time_nanos, D)),
    [{[<<"lists:seq/2">>, <<"m:f/0">>], [2, 20000000], Labels}, {[<<"lists:seq/2">>], [1, _], _}]
        = beamprof_pprof_decode:stacks(D),
    ?assertEqual([{<<"node">>, atom_to_binary(node())},
                  {<<"pid">>, list_to_binary(pid_to_list(Self))},
                  {<<"registered_name">>, <<"shop">>}], Labels),
    Files = maps:from_list([{N, F} || #{name := N, filename := F} <- maps:get(functions, D)]),
    ?assertEqual(#{<<"lists:seq/2">> => <<"lists.erl">>, <<"m:f/0">> => <<>>}, Files).

%% A real run of the sampler: pid, registered name, the source file of the
%% module it ran in.
process_sampler_test() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        register(pprof_sampled, self()),
                        Parent ! ready,
                        busy(erlang:monotonic_time(millisecond) + 30000)
                end),
    receive ready -> ok end,
    Result = sample_until(Pid, erlang:monotonic_time(millisecond) + 20000),
    exit(Pid, kill),
    P = beamprof_profile_sample:profile(Result, "t"),
    D = decode(beamprof_pprof:encode(P)),
    [{_, _, Labels} | _] = beamprof_pprof_decode:stacks(D),
    ?assertEqual(list_to_binary(pid_to_list(Pid)), proplists:get_value(<<"pid">>, Labels)),
    ?assertEqual(<<"pprof_sampled">>, proplists:get_value(<<"registered_name">>, Labels)),
    Files = [F || #{name := <<"beamprof_pprof_tests:", _/binary>>, filename := F}
                      <- maps:get(functions, D)],
    ?assertNotEqual([], Files),
    [?assertEqual(<<"beamprof_pprof_tests.erl">>, filename:basename(F)) || F <- Files].

busy(Deadline) ->
    _ = lists:sum(lists:seq(1, 500)),
    case erlang:monotonic_time(millisecond) > Deadline of
        true -> ok;
        false -> busy(Deadline)
    end.

%% Runs of the sampler until one has readings (a loaded machine may give it
%% none in a short run), 20 s at most.
sample_until(Pid, Deadline) ->
    S = beamprof_profile_sample:start(Pid, #{interval => 5, duration => 2000, delay => 0}),
    receive after 100 -> ok end,
    case beamprof_profile_sample:stop(S) of
        #{samples := N} = Result when N > 0 -> Result;
        _ ->
            ?assert(erlang:monotonic_time(millisecond) < Deadline),
            sample_until(Pid, Deadline)
    end.
