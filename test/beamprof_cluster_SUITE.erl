%% Cluster views against real nodes: this node and `peer' nodes over Erlang
%% distribution (epmd and short names). Peers with beamprof get this node's
%% code path (`-pa'); a peer without it gets none, and the fakes of a slow or
%% incompatible beamprof are modules loaded into such a peer from binaries
%% compiled here (`beamprof_cluster' whose serve/1 never answers, or answers
%% another protocol).
-module(beamprof_cluster_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2]).

-define(MAILBOX, bpc_mailbox).
-define(MESSAGES, 5000).

all() ->
    [top_ranks_across_nodes, top_all_nodes, down_node_is_noconnection,
     slow_node_times_out, missing_beamprof, incompatible_protocol, beamprof_without_cluster,
     snapshot_per_node, top_cluster_screen, cluster_flame_graph, bad_options, info_on_each_node].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    case beamprof_ct:distribute("beamprof_cluster_ct") of
        {ok, Started} -> [{started_dist, Started} | Config];
        {skip, _} = Skip -> Skip
    end.

end_per_suite(Config) ->
    case ?config(started_dist, Config) of
        true -> ok = net_kernel:stop();
        false -> ok
    end.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    %% peers are linked to the case's process too: they stop with it anyway
    _ = [peer:stop(P) || {{peer, P}, _} <- get()],
    ok = beamprof:stop().

%% --- peers ------------------------------------------------------------------

%% A peer with this node's code path and beamprof started (or only loaded).
beamprof_peer(Start) ->
    Node = peer(["-pa" | code:get_path()]),
    {module, beamprof_nif} = erpc:call(Node, code, ensure_loaded, [beamprof_nif]),
    case Start of
        started -> ok = erpc:call(Node, beamprof, start, [#{interval => 200}]);
        loaded -> ok
    end,
    Node.

%% A peer without beamprof on its code path.
bare_peer() ->
    peer([]).

peer(Args) ->
    {ok, Peer, Node} = beamprof_ct:start_dist_peer("bpc", Args),
    put({peer, Peer}, Node),
    put({node, Node}, Peer),
    Node.

stop_peer(Node) ->
    Peer = get({node, Node}),
    ok = peer:stop(Peer),
    erase({peer, Peer}),
    wait_until(fun() -> not lists:member(Node, nodes()) end, 10000).

%% A registered process on Node with `?MESSAGES' messages in its mailbox.
fill_mailbox(Node) ->
    _ = erlang:spawn(Node, ?MODULE, mailbox, [?MESSAGES]),
    wait_until(fun() -> case erpc:call(Node, erlang, whereis, [?MAILBOX]) of
                            undefined -> false;
                            Pid -> {message_queue_len, Q} =
                                       erpc:call(Node, erlang, process_info,
                                                 [Pid, message_queue_len]),
                                   Q >= ?MESSAGES
                        end
               end, 10000).

mailbox(N) ->
    register(?MAILBOX, self()),
    [self() ! {msg, I} || I <- lists:seq(1, N)],
    receive stop -> ok end.

spin() ->
    spin(0).

spin(N) ->
    spin(N + 1).

%% Loads the module of Source (text) into Node from a binary compiled here.
load_fake(Node, Source) ->
    {ok, Tokens, _} = erl_scan:string(Source),
    Forms = [begin {ok, F} = erl_parse:parse_form(Ts), F end || Ts <- forms(Tokens, [])],
    {ok, Module, Bin} = compile:forms(Forms, [binary, return_errors]),
    {module, Module} = erpc:call(Node, code, load_binary,
                                 [Module, "/nonexistent/" ++ atom_to_list(Module) ++ ".beam",
                                  Bin]),
    ok.

forms([{dot, _} = Dot | Rest], Acc) -> [lists:reverse([Dot | Acc]) | forms(Rest, [])];
forms([T | Rest], Acc) -> forms(Rest, [T | Acc]);
forms([], []) -> [].

%% --- cases ------------------------------------------------------------------

%% Three nodes, the largest mailbox on a peer: it ranks first, with that
%% peer's node, its registered name (read there) and its queue length.
top_ranks_across_nodes(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    A = beamprof_peer(started),
    B = beamprof_peer(started),
    fill_mailbox(B),
    {ok, Rows, Failed} = beamprof:top(message_queue_len, 5, #{nodes => [node(), A, B]}),
    ct:log("~p", [Rows]),
    ?assertEqual([], Failed),
    ?assertEqual(5, length(Rows)),
    [First | Rest] = Rows,
    ?assertMatch(#{node := B, name := ?MAILBOX, value := V} when V >= ?MESSAGES, First),
    ?assertEqual(B, node(maps:get(pid, First))),
    [?assert(maps:get(value, R) =< maps:get(value, First)) || R <- Rest],
    Values = [maps:get(value, R) || R <- Rows],
    ?assertEqual(lists:reverse(lists:sort(Values)), Values),
    [?assert(lists:member(N, [node(), A, B])) || #{node := N} <- Rows],
    %% each row's pid lives on its row's node
    [?assertEqual(N, node(P)) || #{node := N, pid := P} <- Rows],
    %% by memory too: every node's rows are ranked together
    {ok, MemRows, []} = beamprof:top(memory, 30, #{nodes => [node(), A, B]}),
    ?assertEqual(lists:sort([node(), A, B]),
                 lists:usort([N || #{node := N} <- MemRows])).

%% `nodes => all' (and no option): this node and every connected one.
top_all_nodes(_Config) ->
    A = beamprof_peer(loaded),
    fill_mailbox(A),
    {ok, [First | _], []} = beamprof:top(message_queue_len, 3, #{}),
    ?assertMatch(#{node := A, name := ?MAILBOX}, First),
    {ok, Rows, []} = beamprof:top(message_queue_len, 50, #{nodes => all, timeout => 10000}),
    ?assertEqual(lists:sort([node() | nodes()]), lists:usort([N || #{node := N} <- Rows])).

%% A node stopped before the call is named as down; the others answer.
down_node_is_noconnection(_Config) ->
    A = beamprof_peer(loaded),
    C = beamprof_peer(loaded),
    stop_peer(C),
    {ok, Rows, Failed} = beamprof:top(message_queue_len, 1000, #{nodes => [node(), A, C]}),
    ?assertEqual([{C, noconnection}], Failed),
    ?assertEqual(lists:sort([node(), A]), lists:usort([N || #{node := N} <- Rows])).

%% A node whose beamprof_cluster never answers: `timeout', and the call
%% returns within its timeout (a generous bound: ten times it) with the
%% others' rows.
slow_node_times_out(_Config) ->
    A = beamprof_peer(loaded),
    Slow = bare_peer(),
    load_fake(Slow, "-module(beamprof_cluster). -export([serve/1]). "
                    "serve(_) -> receive after infinity -> ok end."),
    Timeout = 1000,
    T0 = erlang:monotonic_time(millisecond),
    {ok, Rows, Failed} = beamprof:top(message_queue_len, 1000,
                                      #{nodes => [node(), Slow, A], timeout => Timeout}),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:log("elapsed ~B ms", [Elapsed]),
    ?assertEqual([{Slow, timeout}], Failed),
    ?assert(Elapsed >= Timeout),
    ?assert(Elapsed < 10 * Timeout),
    ?assertEqual(lists:sort([node(), A]), lists:usort([N || #{node := N} <- Rows])).

%% A node without beamprof on its code path: named, with a message that
%% says every node needs beamprof loaded.
missing_beamprof(_Config) ->
    Bare = bare_peer(),
    {ok, Rows, [{Bare, {beamprof_missing, Message}}]} =
        beamprof:top(message_queue_len, 3, #{nodes => [node(), Bare]}),
    ct:log("~ts", [Message]),
    ?assertNotEqual(nomatch, string:find(Message, "not on the node's code path")),
    ?assertNotEqual(nomatch, string:find(Message, "needs beamprof loaded")),
    ?assertNotEqual(nomatch, string:find(Message, atom_to_binary(Bare))),
    ?assertEqual([node()], lists:usort([N || #{node := N} <- Rows])).

%% A beamprof_cluster that speaks protocol 2: incompatible, with its info.
incompatible_protocol(_Config) ->
    Other = bare_peer(),
    load_fake(Other, "-module(beamprof_cluster). -export([serve/1]). "
                     "serve(_) -> {beamprof_cluster, #{protocol => 2, version => <<\"9.0.0\">>},"
                     " {ok, []}}."),
    {ok, _Rows, [{Other, Reason}]} = beamprof:top(message_queue_len, 3,
                                                   #{nodes => [node(), Other]}),
    ?assertMatch({incompatible, #{protocol := 2, version := <<"9.0.0">>}}, Reason),
    Text = beamprof_cluster:describe(Reason),
    ?assertNotEqual(nomatch, string:find(Text, "protocol 2")).

%% A node with a beamprof that predates cluster support (a `beamprof'
%% module, no `beamprof_cluster'): incompatible, protocol undefined.
beamprof_without_cluster(_Config) ->
    Old = bare_peer(),
    load_fake(Old, "-module(beamprof). -export([gate/0]). gate() -> open."),
    {ok, _Rows, [{Old, Reason}]} = beamprof:top(message_queue_len, 3,
                                                 #{nodes => [node(), Old]}),
    ?assertMatch({incompatible, #{protocol := undefined}}, Reason),
    ?assertNotEqual(nomatch, string:find(beamprof_cluster:describe(Reason), "older")).

%% A sample per node that runs beamprof; a node where it is loaded and not
%% started is named `not_started'; the shape is top/3's.
snapshot_per_node(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    A = beamprof_peer(started),
    L = beamprof_peer(loaded),
    wait_until(fun() -> is_map(erpc:call(A, beamprof, snapshot, [])) end, 10000),
    wait_until(fun() -> is_map(beamprof:snapshot()) end, 10000),
    {ok, Samples, Failed} = beamprof:snapshot(#{nodes => [node(), A, L]}),
    ?assertEqual([{L, not_started}], Failed),
    ?assertEqual(lists:sort([node(), A]), lists:sort(maps:keys(Samples))),
    [?assertMatch(#{schedulers := _, memory := _, gate := _}, S) || S <- maps:values(Samples)].

%% top(cluster): a line per node (this one, a peer with the largest
%% mailbox, a peer without beamprof, named as failed), the peer's mailbox
%% first in the process table, every line within 80 columns.
top_cluster_screen(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    A = beamprof_peer(started),
    Bare = bare_peer(),
    fill_mailbox(A),
    ct:capture_start(),
    ok = beamprof:top(cluster),
    ct:capture_stop(),
    Text = unicode:characters_to_binary(ct:capture_get()),
    ct:log("~ts", [Text]),
    Lines = string:split(string:trim(Text, trailing), "\n", all),
    [?assert(beamprof_top:width(L) =< 80) || L <- Lines],
    Starts = fun(Node) -> fun(L) -> string:prefix(L, beamprof_top:cut_middle(
                                                        atom_to_binary(Node), 24)) =/= nomatch
                          end
             end,
    [NodeLine] = lists:filter(Starts(A), Lines),
    ?assertNotEqual(nomatch, string:find(NodeLine, "5.0k")),
    ?assertMatch([_], lists:filter(Starts(node()), Lines)),
    [BareLine] = lists:filter(Starts(Bare), Lines),
    ?assertNotEqual(nomatch, string:find(BareLine, "FAILED")),
    ?assertNotEqual(nomatch, string:find(Text, "needs beamprof")),
    [Title | Table] = lists:dropwhile(fun(L) -> string:find(L, "top processes") =:= nomatch
                                      end, Lines),
    ?assertNotEqual(nomatch, string:find(Title, "message queue")),
    [_Header, FirstRow | _] = Table,
    ?assertNotEqual(nomatch, string:find(FirstRow, atom_to_binary(?MAILBOX))),
    ?assertNotEqual(nomatch, string:find(FirstRow, beamprof_top:cut_middle(atom_to_binary(A), 16))).

%% A flame graph over two peers that spin: one file, each node's stacks
%% under its own root frame, a summary per node.
cluster_flame_graph(Config) ->
    case beamprof_native_nif:info() of
        {error, Reason} ->
            {skip, lists:flatten(io_lib:format("native sampler unavailable: ~0tp", [Reason]))};
        _ ->
            flame_graph_two_peers(Config)
    end.

flame_graph_two_peers(Config) ->
    A = beamprof_peer(loaded),
    B = beamprof_peer(loaded),
    Bare = bare_peer(),
    _ = [erlang:spawn(N, ?MODULE, spin, []) || N <- [A, B]],
    Out = filename:join(?config(priv_dir, Config), "cluster.folded"),
    {ok, Summary, Failed} = beamprof:flame_graph(1000, #{nodes => [A, B, Bare], output => Out}),
    ct:log("~p~n~p", [Summary, Failed]),
    ?assertMatch([{Bare, {beamprof_missing, _}}], Failed),
    #{nodes := PerNode, samples := Samples, file := Out} = Summary,
    ?assertEqual(lists:sort([A, B]), lists:sort(maps:keys(PerNode))),
    [?assert(maps:get(samples, maps:get(N, PerNode)) > 0) || N <- [A, B]],
    ?assertEqual(Samples, lists:sum([maps:get(samples, S) || S <- maps:values(PerNode)])),
    {ok, Folded} = file:read_file(Out),
    Roots = lists:usort([hd(binary:split(L, <<";">>))
                         || L <- binary:split(Folded, <<"\n">>, [global, trim_all]),
                            binary:first(L) =/= $#]),
    ?assertEqual(lists:sort([atom_to_binary(A), atom_to_binary(B)]), Roots),
    %% every warning carries its node's name before the message
    [?assert(lists:any(fun(N) -> string:prefix(M, atom_to_binary(N)) =/= nomatch end, [A, B]))
     || #{message := M} <- maps:get(warnings, Summary)],
    %% no node answered: an error naming them
    ?assertMatch({error, {all_failed, [{Bare, {beamprof_missing, _}}]}},
                 beamprof:flame_graph(100, #{nodes => [Bare], output => Out})).

%% Options are checked before any node is asked.
bad_options(_Config) ->
    ?assertError({badarg, _}, beamprof:top(message_queue_len, 5, #{nodes => []})),
    ?assertError({badarg, _}, beamprof:top(message_queue_len, 5, #{nodes => ["a@b"]})),
    ?assertError({badarg, _}, beamprof:top(message_queue_len, 5, #{timeout => -1})),
    ?assertError({badarg, _}, beamprof:top(message_queue_len, 5, #{bogus => 1})),
    ?assertError({badarg, _}, beamprof:top(bogus, 5, #{})),
    ?assertError({badarg, _}, beamprof:top(message_queue_len, 0, #{})),
    ?assertError({badarg, _}, beamprof:snapshot(#{nodes => x})),
    ?assertError({badarg, _}, beamprof:flame_graph(100, #{nodes => all, bogus => 1})),
    ?assertError({badarg, _}, beamprof:flame_graph(100, #{nodes => all, output => "x.bogus"})),
    ?assertMatch({error, {unwritable, _, _}},
                 beamprof:flame_graph(100, #{nodes => all, output => "/nonexistent/dir/x.svg"})).

%% info/0 names the protocol and the version, on a node where the
%% application's spec was never loaded too (a peer with beamprof on its path).
info_on_each_node(_Config) ->
    _ = application:load(beamprof),
    {ok, Vsn} = application:get_key(beamprof, vsn),
    Expected = #{protocol => 1, version => list_to_binary(Vsn),
                 otp_release => list_to_binary(erlang:system_info(otp_release))},
    ?assertEqual(Expected, beamprof_cluster:info()),
    A = peer(["-pa" | code:get_path()]),
    ?assertEqual(undefined, erpc:call(A, application, get_key, [beamprof, vsn])),
    ?assertEqual(Expected, erpc:call(A, beamprof_cluster, info, [])).
