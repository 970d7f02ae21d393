%% @doc Cluster views: the same questions asked of many nodes at once over
%% Erlang distribution (`erpc'), answers merged, each failed node named.
%%
%% `beamprof:top/3', `beamprof:snapshot/1', `beamprof:flame_graph/2' with
%% `nodes' and `beamprof:top(cluster)' come here. No agent and no protocol
%% of our own underneath: one `erpc:multicall/5' per question, to
%% `beamprof_cluster:serve/1' on every node, in parallel, under one deadline.
%%
%% <b>Every node must have beamprof loaded</b> (the same version, on its code
%% path: in its release, or `code:add_patha/1' of beamprof's ebin and priv),
%% since the work is done there: a scan's rows named on their own node, a
%% profile symbolized on its own node. A node that lacks it is not waited on:
%% it is in `Failed' as `{beamprof_missing, Message}'.
%%
%% Options common to the cluster calls: `nodes' (`all', the default: this
%% node and every visible connected node, `[node() | nodes()]'; or a list of
%% node names) and `timeout' (ms, default 5000: the most the call waits for
%% any node; a node that answers later is `timeout', and the others'
%% answers are not delayed by it).
%%
%% Answers are `{ok, Value, Failed}', `Failed' a list of `{Node, Reason}':
%% <ul>
%% <li>`noconnection': the node is down, unreachable, or went away during
%% the call;</li>
%% <li>`timeout': no answer within `timeout' ms;</li>
%% <li>`{beamprof_missing, Message}': beamprof is not on the node's code
%% path, or not loaded there (a release in embedded mode);</li>
%% <li>`{incompatible, Info}': the node runs a beamprof without cluster
%% support (`Info' `#{protocol => undefined}') or one speaking another
%% protocol (`Info' is its `info/0');</li>
%% <li>`not_started': beamprof is loaded there but not started (only
%% `snapshot/1' and the figures of `top(cluster)' need it started; `top/3'
%% and flame graphs run on a node where beamprof is loaded and not
%% started);</li>
%% <li>`{crashed, {Class, Reason}}': beamprof raised there;</li>
%% <li>anything the operation answered there as `{error, Reason}' (for a
%% flame graph, `{unsupported, ...}' where the native sampler cannot run,
%% `already_started' while another native run holds it).</li>
%% </ul>
%% `describe/1' turns a reason into a line for a person.
%%
%% Cost: one request and one answer per node (rows, a sample or a profile:
%% kilobytes), the work itself being that of the one-node call on each node,
%% all nodes at once. See doc/cluster.md and bench/cluster_bench.erl.
-module(beamprof_cluster).

-export([top/3, snapshot/1, flame_graph/2, screen/1, info/0, serve/1, describe/1,
         options/3, rank/2]).
-export_type([options/0, failed/0]).

-type options() :: #{nodes => all | [node()], timeout => non_neg_integer()}.
-type failed() :: beamprof_cluster_rpc:failed().

-define(TIMEOUT, 5000).

%% @doc The `N' processes with the largest `Key' over the nodes of `Opts':
%% each node's `beamprof:top(Key, N)' (ranked and named on its node), merged
%% and ranked by `value', best first, each row with `node'. Returns
%% `{ok, Rows, Failed}'. `Key' and `N' as `beamprof:top/2'; a bad argument
%% or option raises `{badarg, Message}' before any node is asked.
-spec top(Key, N, Opts) -> {ok, [Row], failed()} when
      Key :: beamprof_scan:key(), N :: 1..10000, Opts :: options(),
      Row :: #{node := node(), _ => _}.
top(Key, N, Opts) ->
    beamprof_scan:check_top(Key, N),
    #{nodes := Nodes, timeout := Timeout} = options(Opts, [], [Key, N, Opts]),
    {Answers, Failed} = beamprof_cluster_rpc:call(Nodes, {top, Key, N}, Timeout),
    {ok, rank([Row#{node => Node} || {Node, Rows} <- Answers, Row <- Rows], N), Failed}.

%% @private
%% @doc The first `N' of `Rows' by `value', best first; equal values keep the
%% order of the nodes and rows.
-spec rank([map()], non_neg_integer()) -> [map()].
rank(Rows, N) ->
    Keyed = lists:zip(lists:seq(1, length(Rows)), Rows),
    Sorted = lists:sort(fun({I, A}, {J, B}) ->
                                {-maps:get(value, A), I} =< {-maps:get(value, B), J}
                        end, Keyed),
    lists:sublist([Row || {_, Row} <- Sorted], N).

%% @doc The latest sample of every node of `Opts' (`beamprof:snapshot/0'
%% there): `{ok, #{Node => Sample}, Failed}'. A node where beamprof is
%% loaded but not started is in `Failed' as `not_started'. The same shape
%% as `top/3''s, so that a caller handles the failed nodes of every cluster
%% call one way.
-spec snapshot(Opts) -> {ok, #{node() => beamprof_vm:sample()}, failed()} when
      Opts :: options().
snapshot(Opts) ->
    #{nodes := Nodes, timeout := Timeout} = options(Opts, [], [Opts]),
    {Answers, Failed} = beamprof_cluster_rpc:call(Nodes, snapshot, Timeout),
    {ok, maps:from_list(Answers), Failed}.

%% @doc A native CPU flame graph of every node of `Opts' at once
%% (`beamprof:flame_graph(Ms, #{nodes => ...})'): `beamprof_native:sample/2'
%% on each node, its profile symbolized there (the JIT's names and C objects
%% are that node's), the profiles merged under a root frame per node
%% (`<<"node@host">>', then the thread kind, then the stack) and written
%% with `beamprof_flame' (the format from the output's extension, as
%% `beamprof:flame_graph/2' on one node). `Opts': `nodes', `timeout' (here
%% the margin over `Ms' that the call waits for the profiles, default
%% 5000 ms), and `output', `format', `hz', `threads', `depth', all checked,
%% and the output's directory, before any node samples. Returns
%% `{ok, Summary, Failed}': `Summary' has `nodes' (per node: samples,
%% weighted, rates, gate figures, warnings and notes), the summed `samples'
%% and `weighted', the `warnings' and `notes' of every node with its name
%% before the message, and `file' (or the merged profile under `profile'
%% without `output'). A node without the native sampler is in `Failed' with
%% `{unsupported, Why}'. `{error, {all_failed, Failed}}' when no node gave a
%% profile.
-spec flame_graph(Ms, Opts) -> {ok, map(), failed()} | {error, term()} when
      Ms :: pos_integer(), Opts :: map().
flame_graph(Ms, Opts) ->
    beamprof_cluster_flame:run(Ms, Opts).

%% @doc The text of `beamprof:top(cluster)' (see `beamprof_cluster_top').
-spec screen(Opts) -> binary() when Opts :: options() | #{width => pos_integer()}.
screen(Opts) ->
    beamprof_cluster_top:screen(Opts).

%% @doc What this node's beamprof speaks: `#{protocol, version,
%% otp_release}'. `protocol' changes when a request or an answer of
%% `serve/1' changes shape; nodes of one call must speak the same.
-spec info() -> #{protocol := pos_integer(), version := binary() | undefined,
                  otp_release := binary()}.
info() ->
    #{protocol => beamprof_cluster_rpc:protocol(), version => version(),
      otp_release => list_to_binary(erlang:system_info(otp_release))}.

%% The application's version; its spec is loaded first when it is not (a
%% node where beamprof's modules are on the path and the application was
%% never loaded).
version() ->
    case application:get_key(beamprof, vsn) of
        {ok, Vsn} -> list_to_binary(Vsn);
        undefined ->
            case application:load(beamprof) of
                ok -> version();
                {error, _} -> undefined
            end
    end.

%% @private
%% @doc The entry point other nodes call (`erpc'): `{Protocol, Op}' answered
%% `{beamprof_cluster, info(), Result}', `Result' `{ok, Value}' or
%% `{error, Reason}'. A request of another protocol is answered
%% `{error, unknown_request}' with this node's `info()', which the caller
%% reads as incompatible.
-spec serve(term()) -> {beamprof_cluster, map(), {ok, term()} | {error, term()}}.
serve(Request) ->
    Protocol = beamprof_cluster_rpc:protocol(),
    {beamprof_cluster, info(),
     case Request of
         {Protocol, Op} -> op(Op);
         _ -> {error, unknown_request}
     end}.

op({top, Key, N}) -> {ok, beamprof_scan:top(Key, N)};
op(snapshot) ->
    case beamprof:snapshot() of
        {error, _} = Error -> Error;
        Sample -> {ok, Sample}
    end;
op({sample, Ms, StartOpts}) -> beamprof_native:sample(Ms, StartOpts);
op({summary, N}) -> {ok, beamprof_cluster_top:summary(N)};
op(_) -> {error, unknown_request}.

%% @doc A failure reason of a cluster call as a line for a person.
-spec describe(beamprof_cluster_rpc:reason()) -> binary().
describe(noconnection) -> <<"down or unreachable (noconnection)">>;
describe(timeout) -> <<"no answer within the timeout">>;
describe({beamprof_missing, Message}) when is_binary(Message) -> Message;
describe({incompatible, #{protocol := undefined}}) ->
    <<"incompatible: its beamprof has no cluster support (an older version)">>;
describe({incompatible, #{protocol := P} = Info}) ->
    fmt("incompatible: protocol ~0tp, version ~0tp (this node: protocol ~B, version ~ts)",
        [P, maps:get(version, Info, undefined), beamprof_cluster_rpc:protocol(),
         case version() of undefined -> "?"; V -> V end]);
describe(not_started) -> <<"beamprof is loaded there but not started">>;
describe({crashed, {Class, Reason}}) -> fmt("beamprof raised there: ~ts:~0tP", [Class, Reason, 12]);
describe({unsupported, _} = Reason) -> fmt("native sampler unavailable: ~0tP", [Reason, 12]);
describe(Reason) -> fmt("~0tP", [Reason, 12]).

fmt(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).

%% @private
%% @doc `Opts' (a map or a `{Key, Value}' list) checked, with `nodes' and
%% `timeout' set to their defaults when absent; `Extra' are the other keys
%% the caller accepts (not checked here). Raises `{badarg, Message}' naming
%% an unknown key or a bad value.
-spec options(term(), [atom()], list()) -> map().
options(Opts, Extra, Args) ->
    Map = beamprof_opts:to_map(Opts),
    maps:foreach(fun(K, V) -> check(K, V, Extra, Args) end, Map),
    Nodes = case maps:get(nodes, Map, all) of
                all -> [node() | nodes()];
                List -> unique(List)
            end,
    Map#{nodes => Nodes, timeout => maps:get(timeout, Map, ?TIMEOUT)}.

check(nodes, all, _, _) -> ok;
check(nodes, [_ | _] = Nodes, _, Args) ->
    lists:all(fun is_atom/1, Nodes) orelse bad_nodes(Nodes, Args);
check(nodes, Nodes, _, Args) -> bad_nodes(Nodes, Args);
check(timeout, T, _, _) when is_integer(T), T >= 0 -> ok;
check(timeout, T, _, Args) ->
    beamprof_opts:bad_value(timeout, "a non-negative integer (ms)", T, Args);
check(K, _, Extra, Args) ->
    lists:member(K, Extra) orelse beamprof_opts:unknown(K, [nodes, timeout | Extra], Args).

-spec bad_nodes(term(), term()) -> no_return().
bad_nodes(Nodes, Args) ->
    beamprof_opts:bad_value(nodes, "all or a non-empty list of node names", Nodes, Args).

unique(Nodes) ->
    lists:reverse(lists:foldl(fun(N, Acc) -> case lists:member(N, Acc) of
                                                 true -> Acc;
                                                 false -> [N | Acc]
                                             end
                              end, [], Nodes)).
