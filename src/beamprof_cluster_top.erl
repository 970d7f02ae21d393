%% @private
%% @doc What `beamprof:top(cluster)' prints: one screen for the cluster.
%%
%% A line per node that answered (normal schedulers' utilization over the
%% last sample, the VM's memory, the load gate, the process count, the
%% largest mailbox), a line per failed node saying why
%% (`beamprof_cluster:describe/1'), then the cluster's top processes by
%% message queue, each with its node. By message queue because a backlog
%% is what moves across a cluster (a slow consumer on one node fills the
%% mailboxes that feed it from the others), and because it is the cheapest
%% key to rank: one `process_info/2' item per process, no window to wait
%% for. Every line fits `width' columns (default: the terminal's, see
%% `beamprof_top:columns/0'), laid out with `beamprof_top''s helpers.
-module(beamprof_cluster_top).

-export([screen/1, summary/1, render/3]).

-define(ROWS, 10).
-define(NODE_COLUMN, 24).

%% @doc Asks every node of `Opts' (`nodes', `timeout', and `width') for its
%% `summary/1' and renders the screen.
-spec screen(map()) -> binary().
screen(Opts) ->
    Width = maps:get(width, Opts, beamprof_top:columns()),
    Cluster = beamprof_cluster:options(maps:without([width], Opts), [], [Opts]),
    #{nodes := Nodes, timeout := Timeout} = Cluster,
    {Answers, Failed} = beamprof_cluster_rpc:call(Nodes, {summary, ?ROWS}, Timeout),
    render(Answers, Failed, Width).

%% @doc This node's line and its top `N' processes by message queue: what
%% `screen/1' asks of each node. The figures of the last sample when
%% beamprof runs here (`utilization' `undefined' otherwise).
-spec summary(pos_integer()) -> map().
summary(N) ->
    Rows = beamprof_scan:top(message_queue_len, N),
    Sample = case beamprof:snapshot() of
                 #{} = S -> S;
                 {error, _} -> #{}
             end,
    Utilization = maps:get(utilization, Sample, #{}),
    Memory = maps:get(memory, Sample, #{}),
    #{utilization => maps:get(normal, Utilization, undefined),
      schedulers => erlang:system_info(schedulers_online),
      rss => maps:get(rss, Memory, undefined),
      erlang_total => erlang:memory(total),
      gate => beamprof_gate:info(),
      processes => erlang:system_info(process_count),
      largest_mailbox => case Rows of [#{message_queue_len := Q} | _] -> Q; [] -> 0 end,
      rows => Rows}.

%% @doc The screen from the nodes' summaries and the failed nodes. Pure.
-spec render([{node(), map()}], beamprof_cluster:failed(), pos_integer()) -> binary().
render(Answers, Failed, W) ->
    Rows = beamprof_cluster:rank([R#{node => N} || {N, #{rows := Rs}} <- Answers, R <- Rs],
                                 ?ROWS),
    Lines = beamprof_top:pack("", "  ", " - ",
                              [["beamprof cluster on ", atom_to_binary(node())],
                               io_lib:format("~B nodes answered, ~B failed",
                                             [length(Answers), length(Failed)])], W)
        ++ ["" | node_lines(Answers, Failed, W)]
        ++ ["" | beamprof_top:process_table(["top processes by message queue, all nodes"],
                                            Rows, W)],
    unicode:characters_to_binary([[beamprof_top:fit(L, W), $\n] || L <- Lines]).

%% The table of nodes: a header, a line per node that answered, a line (or
%% two) per failed node.
node_lines(Answers, Failed, W) ->
    NodeW = max(8, min(?NODE_COLUMN, W - 56)),
    Header = ["node", "sched", "rss", "erlang", "gate", "procs", "max msgq"],
    [row(Header, NodeW) | [row(node_cells(N, S), NodeW) || {N, S} <- Answers]]
        ++ lists:append([failed_lines(N, R, NodeW, W) || {N, R} <- Failed]).

node_cells(Node, S) ->
    [Node, beamprof_format:percent(maps:get(utilization, S)),
     bytes(maps:get(rss, S)), bytes(maps:get(erlang_total, S)),
     gate(maps:get(gate, S)), count(maps:get(processes, S)),
     count(maps:get(largest_mailbox, S))].

row([Node | Figures], NodeW) ->
    Widths = [6, 10, 10, 8, 6, 9],
    [node_cell(Node, NodeW),
     [[" ", beamprof_top:pad(beamprof_top:truncate(F, Fw), Fw, leading)]
      || {F, Fw} <- lists:zip(Figures, Widths)]].

%% The reason after the node's name, without the name again when the
%% reason's text starts with it.
failed_lines(Node, Reason, NodeW, W) ->
    Indent = lists:duplicate(NodeW + 1, $\s),
    Text = beamprof_cluster:describe(Reason),
    Why = case string:prefix(Text, [atom_to_binary(Node), ": "]) of
              nomatch -> Text;
              Rest -> Rest
          end,
    Words = string:lexemes(unicode:characters_to_list(["FAILED: ", Why]), " "),
    beamprof_top:pack([node_cell(Node, NodeW), " "], Indent, " ", Words, W).

%% A node's name padded to the column, cut in the middle when longer.
node_cell(Node, NodeW) when is_atom(Node) ->
    beamprof_top:pad(beamprof_top:cut_middle(atom_to_binary(Node), NodeW), NodeW, trailing);
node_cell(Header, NodeW) ->
    beamprof_top:pad(Header, NodeW, trailing).

%% The gate in one word or two: `open', `CLOSED', `off' when beamprof does
%% not run there.
gate(#{running := false}) -> "off";
gate(#{state := closed}) -> "CLOSED";
gate(Gate) -> beamprof_top:gate(Gate).

bytes(N) when is_number(N) -> beamprof_format:bytes(N);
bytes(_) -> "-".

count(N) when is_number(N) -> beamprof_format:count(N);
count(_) -> "-".
