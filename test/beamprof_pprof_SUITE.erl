%% Common Test suite of pprof files written by beamprof, read by two
%% readers that share no code with the writer: the decoder written from
%% profile.proto (beamprof_pprof_decode) and, where Go is installed, `go
%% tool pprof'. A native profile of spinning processes in a peer started
%% with +JPperf map (sample types, ids, mappings holding the C addresses,
%% thread kinds, totals, node), written by write_profile/3 and by
%% flame_graph(Ms, "x.pb.gz"); a process-stack profile of this process
%% (pid, registered name, label, source files), which needs no native
%% library and runs everywhere.
-module(beamprof_pprof_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2]).
-export([native_profile/1, native_flame_graph/1, native_go_pprof/1, process_profile/1,
         process_go_pprof/1, profile_api_output/1]).
-export([spin/1, pprof_hot/2, pprof_gc/2, sample_spinning/2]).

all() ->
    [{group, native}, {group, process}].

groups() ->
    [{native, [sequence], [native_profile, native_go_pprof, native_flame_graph]},
     {process, [sequence], [process_profile, process_go_pprof, profile_api_output]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

%% The native sampler exists on Linux x86_64 only: elsewhere the group is
%% skipped with the library's reason (process stacks still run).
init_per_group(native, Config) ->
    case beamprof_ct:native_suite(Config) of
        {skip, _} = Skip ->
            Skip;
        _ ->
            {ok, Peer, _Node} = peer:start(#{connection => standard_io,
                                             args => ["-pa" | code:get_path()] ++
                                                 ["+JPperf", "map"]}),
            {module, beamprof_nif} = peer:call(Peer, code, ensure_loaded, [beamprof_nif]),
            [{peer, Peer} | Config]
    end;
init_per_group(process, Config) ->
    Config.

end_per_group(native, Config) ->
    peer:stop(?config(peer, Config));
end_per_group(process, _Config) ->
    ok.

call(Config, M, F, A) ->
    peer:call(?config(peer, Config), M, F, A, 120000).

%%--------------------------------------------------------------------
%% Workloads (run in the peer)

%% Two processes spinning in pprof_hot/2 for Ms, and one collecting its
%% heap over and over (C code: a spinner's samples are JIT code, and on a
%% loaded machine a 2 s run may catch none of its rare garbage collections).
spin(Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Pids = [spawn_monitor(?MODULE, pprof_gc, [Deadline, lists:seq(1, 20000)])
            | [spawn_monitor(?MODULE, pprof_hot, [Deadline, 0]) || _ <- [1, 2]]],
    [receive {'DOWN', Ref, process, _, _} -> ok end || {_, Ref} <- Pids],
    ok.

%% Garbage collections of a 20000-element list's heap until the deadline.
pprof_gc(Deadline, Heap) ->
    true = erlang:garbage_collect(),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> length(Heap);
        false -> pprof_gc(Deadline, Heap)
    end.

%% A tuple a round: a BIF and garbage collections, C code under the loop.
pprof_hot(Deadline, N) ->
    _ = erlang:make_tuple(8, N),
    case N rem 100000 =:= 0 andalso erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> pprof_hot(Deadline, N + 1)
    end.

%% The profile of Ms of sampling while two processes spin (they start first
%% and outlast it).
sample_spinning(Ms, Write) ->
    Self = self(),
    Load = spawn(fun() -> Self ! {spun, spin(Ms + 2000)} end),
    Result = case Write of
                 undefined -> beamprof_native:sample(Ms, #{});
                 Path -> beamprof_native:flame_graph(Ms, Path)
             end,
    receive {spun, ok} -> ok after 60000 -> exit(Load, kill) end,
    Result.

%%--------------------------------------------------------------------
%% Native

native_profile(Config) ->
    Profile = sampled(Config, erlang:monotonic_time(millisecond) + 60000),
    ct:log("profile: ~p", [maps:without([stacks, pprof], Profile)]),
    Path = filename:join(?config(priv_dir, Config), "native.pb.gz"),
    {ok, Path} = call(Config, beamprof, write_profile, [Profile, Path, pprof]),
    {ok, Bin} = file:read_file(Path),
    {ok, D} = beamprof_pprof_decode:decode(Bin),
    ct:log("mappings: ~p~nfunctions: ~p", [maps:get(mappings, D), length(maps:get(functions, D))]),
    PeerNode = atom_to_binary(call(Config, erlang, node, [])),
    check_native(D, Profile, PeerNode),
    {save_config, [{native_file, Path}]}.

%% A profile with samples, C frames among them: a run on a loaded machine
%% (the release matrix runs beside other work) may get few or none in 2 s;
%% another is taken until the deadline.
sampled(Config, Deadline) ->
    {ok, Profile} = call(Config, ?MODULE, sample_spinning, [2000, undefined]),
    case lists:any(fun({Frames, _}) -> lists:any(fun is_c/1, Frames) end,
                   maps:get(stacks, Profile)) of
        true -> Profile;
        false ->
            ct:log("no samples, again: ~p", [maps:without([stacks, pprof], Profile)]),
            ?assert(erlang:monotonic_time(millisecond) < Deadline),
            sampled(Config, Deadline)
    end.

check_native(D, #{stacks := Stacks, weighted := Weighted, kinds := Kinds, hz := Hz}, Node) ->
    ?assertEqual([#{type => <<"samples">>, unit => <<"count">>},
                  #{type => <<"cpu">>, unit => <<"nanoseconds">>}], maps:get(sample_type, D)),
    ?assertEqual(#{type => <<"cpu">>, unit => <<"nanoseconds">>}, maps:get(period_type, D)),
    Period = 1000000000 div Hz,
    ?assertEqual(Period, maps:get(period, D)),
    ?assert(maps:get(duration_nanos, D) > 0),
    check_ids(D),
    Samples = beamprof_pprof_decode:stacks(D),
    ?assert(length(Samples) > 0),
    %% totals: the file's samples add up to the profile's weight, per kind
    ?assertEqual(Weighted, lists:sum([W || {_, W} <- Stacks])),
    ?assertEqual(Weighted, lists:sum([W || {_, [W, _], _} <- Samples])),
    [?assertEqual(W * Period, Ns) || {_, [W, Ns], _} <- Samples],
    ByKind = lists:foldl(fun({_, [W, _], L}, Acc) ->
                                 K = binary_to_existing_atom(proplists:get_value(<<"thread_kind">>, L)),
                                 maps:update_with(K, fun(V) -> V + W end, W, Acc)
                         end, #{}, Samples),
    ?assertEqual(maps:filter(fun(_, V) -> V > 0 end, Kinds), ByKind),
    %% every sample: thread kind and node
    [begin
         ?assert(lists:member(proplists:get_value(<<"thread_kind">>, L),
                              [<<"normal">>, <<"dirty_cpu">>, <<"dirty_io">>])),
         ?assertEqual(Node, proplists:get_value(<<"node">>, L))
     end || {_, _, L} <- Samples],
    %% the hot function is there, in JIT code
    Hot = <<"beamprof_pprof_SUITE:pprof_hot/2">>,
    ?assert(lists:any(fun({Frames, _, _}) -> lists:member(Hot, Frames) end, Samples)),
    check_mappings(D, Hot).

%% A C function's name (dladdr's, the symbol tables' or Object+0xOffset),
%% not the JIT's stubs (global::...) or beamprof's marks.
is_c(<<"global::", _/binary>>) -> false;
is_c(<<"[unknown]">>) -> false;
is_c(Name) -> beamprof_flame:kind(Name) =:= native.

check_ids(#{samples := Samples, locations := Locs, functions := Funs, mappings := Maps}) ->
    LocIds = [Id || #{id := Id} <- Locs],
    FunIds = [Id || #{id := Id} <- Funs],
    MapIds = [Id || #{id := Id} <- Maps],
    [?assertEqual(length(L), length(lists:usort(L))) || L <- [LocIds, FunIds, MapIds]],
    [?assert(Id > 0) || Id <- LocIds ++ FunIds ++ MapIds],
    [?assert(lists:member(L, LocIds)) || #{location_ids := Ls} <- Samples, L <- Ls],
    [?assert(lists:member(F, FunIds)) || #{lines := Ls} <- Locs, #{function_id := F} <- Ls],
    [?assert(M =:= 0 orelse lists:member(M, MapIds)) || #{mapping_id := M} <- Locs],
    ok.

%% Every C frame's address lies in a mapping that holds it: a file's, or
%% [jit] for the JIT's own stubs (`global::...'); the hot Erlang function's
%% addresses in a [jit] mapping; beam.smp is the first mapping.
check_mappings(#{locations := Locs, functions := Funs, mappings := Maps}, Hot) ->
    MapById = maps:from_list([{Id, M} || #{id := Id} = M <- Maps]),
    FunById = maps:from_list([{Id, N} || #{id := Id, name := N} <- Funs]),
    %% beam.smp first when a sample is in it (the main binary for pprof)
    case [F || #{filename := F} <- Maps, filename:basename(F) =:= <<"beam.smp">>] of
        [] -> ok;
        [Main] -> ?assertMatch([#{filename := Main} | _], Maps)
    end,
    Placed = [{maps:get(F, FunById), A, maps:get(M, MapById, none)}
              || #{address := A, mapping_id := M, lines := [#{function_id := F}]} <- Locs],
    ?assert(length(Placed) > 0),
    [?assert(A > 0) || {_, A, _} <- Placed],
    C = [P || {Name, _, _} = P <- Placed, is_c(Name)],
    ?assertNotEqual([], C),
    ct:log("C locations: ~p", [lists:sublist(C, 20)]),
    [begin
         ?assertMatch(#{}, M, Name),
         #{memory_start := S, memory_limit := L, filename := File} = M,
         ?assert(S =< A andalso A < L),
         ?assertNotEqual(<<"[jit]">>, File)
     end || {Name, A, M} <- C],
    HotPlaced = [M || {N, _, M} <- Placed, N =:= Hot],
    ?assertNotEqual([], HotPlaced),
    [?assertMatch(#{filename := <<"[jit]">>}, M) || M <- HotPlaced],
    ok.

native_flame_graph(Config) ->
    Path = filename:join(?config(priv_dir, Config), "flame.pb.gz"),
    {ok, #{file := Path, weighted := Weighted}} =
        call(Config, ?MODULE, sample_spinning, [1500, Path]),
    {ok, Bin} = file:read_file(Path),
    {ok, D} = beamprof_pprof_decode:decode(Bin),
    ?assertEqual(Weighted, lists:sum([W || {_, [W, _], _} <- beamprof_pprof_decode:stacks(D)])),
    ?assertEqual(<<"cpu">>, maps:get(default_sample_type, D)),
    %% format => pprof, without the extension saying it
    Other = filename:join(?config(priv_dir, Config), "flame.bin"),
    {ok, #{file := Other}} = call(Config, beamprof_native, flame_graph,
                                  [300, #{output => Other, format => pprof}]),
    {ok, Bin2} = file:read_file(Other),
    ?assertMatch({ok, #{sample_type := [_, _]}}, beamprof_pprof_decode:decode(Bin2)).

native_go_pprof(Config) ->
    {native_profile, Saved} = ?config(saved_config, Config),
    File = ?config(native_file, Saved),
    go_top(File, "beamprof_pprof_SUITE:pprof_hot/2").

%%--------------------------------------------------------------------
%% Process stacks

process_profile(Config) ->
    Path = filename:join(?config(priv_dir, Config), "process.pb.gz"),
    true = register(pprof_profiled, self()),
    ok = beamprof_ct:set_label({pprof, test}),
    try
        Deadline = erlang:monotonic_time(millisecond) + 1500,
        ok = beamprof:flame_graph(fun() -> pprof_hot(Deadline, 0) end,
                                  #{output => Path, interval => 5})
    after
        unregister(pprof_profiled)
    end,
    {ok, Bin} = file:read_file(Path),
    {ok, D} = beamprof_pprof_decode:decode(Bin),
    check_ids(D),
    ?assertEqual([#{type => <<"samples">>, unit => <<"count">>},
                  #{type => <<"wall">>, unit => <<"nanoseconds">>}], maps:get(sample_type, D)),
    ?assertEqual(5000000, maps:get(period, D)),
    Samples = beamprof_pprof_decode:stacks(D),
    ?assert(length(Samples) > 0),
    Pid = list_to_binary(pid_to_list(self())),
    Node = atom_to_binary(node()),
    [begin
         ?assertEqual(Pid, proplists:get_value(<<"pid">>, L)),
         ?assertEqual(<<"pprof_profiled">>, proplists:get_value(<<"registered_name">>, L)),
         ?assertEqual(Node, proplists:get_value(<<"node">>, L)),
         case beamprof_ct:labels() of
             true -> ?assertEqual(<<"{pprof,test}">>, proplists:get_value(<<"process_label">>, L));
             false -> ?assertEqual(undefined, proplists:get_value(<<"process_label">>, L))
         end
     end || {_, _, L} <- Samples],
    Hot = <<"beamprof_pprof_SUITE:pprof_hot/2">>,
    [#{system_name := Hot, filename := File}] =
        [F || #{name := N} = F <- maps:get(functions, D), N =:= Hot],
    ?assertEqual("beamprof_pprof_SUITE.erl", filename:basename(binary_to_list(File))),
    {save_config, [{process_file, Path}]}.

process_go_pprof(Config) ->
    {process_profile, Saved} = ?config(saved_config, Config),
    go_top(?config(process_file, Saved), "beamprof_pprof_SUITE:pprof_hot/2").

%% The profiling API's output option: the extension and the format option.
profile_api_output(Config) ->
    Dir = ?config(priv_dir, Config),
    Deadline = erlang:monotonic_time(millisecond) + 300,
    Work = fun() -> pprof_hot(Deadline, 0) end,
    A = filename:join(Dir, "api.pb.gz"),
    ok = beamprof:profile(Work, #{output => A, interval => 5}),
    B = filename:join(Dir, "api.out"),
    ok = beamprof:profile(fun() -> pprof_hot(erlang:monotonic_time(millisecond) + 300, 0) end,
                          #{output => B, format => pprof, interval => 5}),
    [?assertMatch({ok, #{sample_type := [#{unit := <<"count">>}, _]}},
                  beamprof_pprof_decode:decode(element(2, file:read_file(F))))
     || F <- [A, B]],
    ?assertError({badarg, _}, beamprof:profile(Work, #{output => B, format => pb})).

%%--------------------------------------------------------------------
%% go tool pprof

%% `go tool pprof -top' reads the file and lists Hot among its functions;
%% `-raw' prints its samples. Where Go is not installed (the OTP roots of
%% the release matrix) the case is skipped: the decoder has read the file.
go_top(File, Hot) ->
    case os:find_executable("go") of
        false ->
            {skip, "go not on PATH (Go is a host-only test dependency: scripts/setup.sh "
                   "--host-list); the profile.proto decoder checked the file"};
        Go ->
            Top = go(Go, ["tool", "pprof", "-top", File]),
            ct:log("go tool pprof -top:~n~ts", [Top]),
            ?assertNotEqual(nomatch, string:find(Top, Hot)),
            Raw = go(Go, ["tool", "pprof", "-raw", File]),
            ct:log("go tool pprof -raw:~n~ts", [Raw]),
            ?assertNotEqual(nomatch, string:find(Raw, "Samples:")),
            ok
    end.

go(Go, Args) ->
    Home = case os:getenv("HOME") of
               false -> "/tmp";
               H -> H
           end,
    Port = open_port({spawn_executable, Go},
                     [{args, Args}, exit_status, binary, stream, stderr_to_stdout,
                      {env, [{"HOME", Home}]}]),
    {Status, Out} = beamprof_ct:port_output(Port),
    ?assertEqual(0, Status, Out),
    unicode:characters_to_list(Out).
