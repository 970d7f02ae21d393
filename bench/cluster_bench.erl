%% beamprof:top/3 over three nodes (this one and two peers on the same
%% machine) against the naive way of asking the same question: an
%% erpc:multicall of a recon-like scan on each node (recon's proc_count/2:
%% process_info/2 of the key and the naming items for every process, sorted
%% there, the first N kept) and the nodes' lists merged by hand here. Both run
%% on every node at once; the figures are the median wall time of a whole
%% call, as the caller waits for it. The sequential baseline (one erpc:call
%% after another, what a shell loop over nodes() does) is printed beside.
%%
%% Each node holds `Procs' idle processes and one with a long mailbox. The
%% peers are started here (distribution with short names, see
%% beamprof_ct:distribute/1) with beamprof's code path, and stopped at the end.
-module(cluster_bench).

-export([run/0, run/1, run/2, naive_top/2, hold/2]).

-define(N, 10).

run() ->
    run(20000).

run(Procs) ->
    run(Procs, 7).

run(Procs, Runs) ->
    {ok, _} = beamprof_ct:distribute("cluster_bench"),
    Peers = [start_peer() || _ <- [1, 2]],
    Nodes = [node() | [N || {_, N} <- Peers]],
    %% the longest mailbox on the last peer: 5000 messages more on each node
    Holders = [erpc:call(N, ?MODULE, hold, [Procs, 5000 * I])
               || {I, N} <- lists:zip(lists:seq(1, length(Nodes)), Nodes)],
    io:format("cluster_bench: ~B nodes on this machine (~B schedulers each), ~B idle "
              "processes on each, top ~B, median of ~B runs~n",
              [length(Nodes), erlang:system_info(schedulers_online), Procs, ?N, Runs]),
    Rows = [row(Key, Nodes, Runs) || Key <- [message_queue_len, memory]],
    bench_util:print_table(["key", "beamprof:top/3 ms", "naive multicall ms",
                            "naive sequential ms", "naive / top/3"], Rows),
    _ = [exit(H, kill) || H <- Holders],
    _ = [peer:stop(P) || {P, _} <- Peers],
    ok.

row(Key, Nodes, Runs) ->
    Top = fun() -> {ok, Rows, []} = beamprof:top(Key, ?N, #{nodes => Nodes, timeout => 60000}),
                   Rows
          end,
    Naive = fun() -> merge(erpc:multicall(Nodes, ?MODULE, naive_top, [Key, ?N], 60000)) end,
    Sequential = fun() -> merge([{ok, erpc:call(N, ?MODULE, naive_top, [Key, ?N], 60000)}
                                 || N <- Nodes])
                 end,
    %% the same winner both ways (the last peer's mailbox)
    Key =:= memory orelse begin
                              [#{pid := Pid} | _] = Top(),
                              [{_, Pid, _} | _] = Naive()
                          end,
    [T, M, S] = [median_ms(F, Runs) || F <- [Top, Naive, Sequential]],
    [atom_to_list(Key), bench_util:fmt(T), bench_util:fmt(M), bench_util:fmt(S),
     bench_util:ratio(M, T)].

median_ms(Fun, Runs) ->
    bench_util:median([begin
                           T0 = erlang:monotonic_time(microsecond),
                           _ = Fun(),
                           (erlang:monotonic_time(microsecond) - T0) / 1000
                       end || _ <- lists:seq(1, Runs)]).

%% The nodes' lists merged by hand: the N largest of all.
merge(Results) ->
    lists:sublist(lists:reverse(lists:sort([X || {ok, L} <- Results, X <- L])), ?N).

%% recon's proc_count/2 the naive way: every process's key and naming items,
%% sorted, the first N.
naive_top(Key, N) ->
    Items = [Key, registered_name, current_function, initial_call],
    All = [{V, P, Info} || P <- processes(),
                           [{_, V} | Info] <- [erlang:process_info(P, Items)]],
    lists:sublist(lists:reverse(lists:sort(All)), N).

%% Spawns Procs idle processes on this node, the first with Msgs messages in
%% its mailbox, held by a process of their own (killing it ends them all).
hold(Procs, Msgs) ->
    Self = self(),
    Holder = spawn(fun() ->
                           Pids = [spawn_link(fun() -> receive stop -> ok end end)
                                   || _ <- lists:seq(1, Procs)],
                           [hd(Pids) ! {msg, I} || I <- lists:seq(1, Msgs)],
                           Self ! {held, self()},
                           receive stop -> ok end
                   end),
    receive {held, Holder} -> Holder end.

start_peer() ->
    {ok, Peer, Node} = beamprof_ct:start_dist_peer("cluster_bench", ["-pa" | code:get_path()]),
    {Peer, Node}.
