%% @private
%% @doc The cluster's calls: one request to many nodes at once over Erlang
%% distribution (`erpc:multicall/5'), with one deadline for all of them, and
%% each node's failure named.
%%
%% A request is `beamprof_cluster:serve({Protocol, Op})' on every node, in
%% parallel: the answer of a slow or dead node never delays the others', and
%% the whole call returns within its timeout (plus, for the nodes that lack
%% `beamprof_cluster', one more round of `code:which/1' calls within what is
%% left of it). A node answers `{beamprof_cluster, Info, Result}', `Info'
%% being its `beamprof_cluster:info/0': a protocol other than ours is
%% `{incompatible, Info}', whatever the result.
%%
%% Failure reasons (`{Node, Reason}'): `noconnection' (down, unreachable, or
%% disconnected during the call), `timeout', `{beamprof_missing, Message}'
%% (no beamprof on that node's code path, or not loadable there),
%% `{incompatible, Info}' (a beamprof without cluster support, `protocol'
%% `undefined', or another protocol), `{crashed, {Class, Reason}}' (the
%% node's beamprof raised), or the `{error, Reason}' the operation answered
%% there, as `Reason' (`not_started', `{unsupported, ...}').
-module(beamprof_cluster_rpc).

-export([call/3, protocol/0]).
-export_type([failed/0, reason/0]).

-type reason() :: noconnection | timeout | {beamprof_missing, binary()}
                | {incompatible, map()} | {crashed, {atom(), term()}} | term().
-type failed() :: [{node(), reason()}].

-define(PROTOCOL, 1).

%% @doc The protocol this beamprof speaks: the first element of every request.
-spec protocol() -> pos_integer().
protocol() -> ?PROTOCOL.

%% @doc Sends `Op' to every node of `Nodes' at once and waits `Timeout' ms at
%% most for all of them. Returns the answers of the nodes that gave one
%% (`{ok, Value}' from `beamprof_cluster:serve/1'), in the order of `Nodes',
%% and the failed nodes with their reasons.
-spec call([node()], term(), non_neg_integer()) -> {[{node(), term()}], failed()}.
call(Nodes, Op, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    Results = erpc:multicall(Nodes, beamprof_cluster, serve, [{?PROTOCOL, Op}], Timeout),
    Outcomes = lists:zipwith(fun outcome/2, Nodes, Results),
    Undef = [N || {N, undef} <- Outcomes],
    Missing = classify(Undef, max(0, Deadline - erlang:monotonic_time(millisecond))),
    {[{N, V} || {N, {ok, V}} <- Outcomes],
     lists:filtermap(fun({N, undef}) -> {true, {N, maps:get(N, Missing)}};
                        ({N, {error, Reason}}) -> {true, {N, Reason}};
                        ({_, {ok, _}}) -> false
                     end, Outcomes)}.

outcome(Node, {ok, {beamprof_cluster, #{protocol := ?PROTOCOL}, {error, Reason}}}) ->
    {Node, {error, Reason}};
outcome(Node, {ok, {beamprof_cluster, #{protocol := ?PROTOCOL}, {ok, Value}}}) ->
    {Node, {ok, Value}};
outcome(Node, {ok, {beamprof_cluster, #{} = Info, _}}) ->
    {Node, {error, {incompatible, Info}}};
outcome(Node, {ok, Other}) ->
    {Node, {error, {incompatible, #{protocol => undefined, answer => Other}}}};
outcome(Node, {error, {erpc, Reason}}) when Reason =:= noconnection; Reason =:= timeout ->
    {Node, {error, Reason}};
outcome(Node, {error, {exception, undef, [{beamprof_cluster, serve, _, _} | _]}}) ->
    {Node, undef};
outcome(Node, {error, {exception, Reason, _Stack}}) ->
    {Node, {error, {crashed, {error, Reason}}}};
outcome(Node, {exit, {exception, Reason}}) ->
    {Node, {error, {crashed, {exit, Reason}}}};
outcome(Node, {throw, Value}) ->
    {Node, {error, {crashed, {throw, Value}}}};
outcome(Node, {error, {erpc, Reason}}) ->
    {Node, {error, Reason}}.

%% Why `beamprof_cluster:serve/1' is undefined on each of Nodes: no beamprof
%% at all, a beamprof without cluster support (older), or present but not
%% loadable (a release in embedded mode that did not load it).
classify([], _Timeout) ->
    #{};
classify(Nodes, Timeout) ->
    Beamprof = erpc:multicall(Nodes, code, which, [beamprof], Timeout),
    Cluster = erpc:multicall(Nodes, code, which, [beamprof_cluster], Timeout),
    maps:from_list(lists:zipwith3(fun undef_reason/3, Nodes, Beamprof, Cluster)).

undef_reason(Node, {ok, non_existing}, _) ->
    {Node, missing(Node, "beamprof is not on the node's code path")};
undef_reason(Node, {ok, _}, {ok, non_existing}) ->
    {Node, {incompatible, #{protocol => undefined, version => undefined}}};
undef_reason(Node, {ok, _}, {ok, _}) ->
    {Node, missing(Node, "beamprof is on the node's code path but not loaded (embedded mode?)")};
undef_reason(Node, _, _) ->
    {Node, missing(Node, "beamprof_cluster:serve/1 is undefined there")}.

missing(Node, Why) ->
    {beamprof_missing,
     iolist_to_binary([atom_to_binary(Node), ": ", Why, "; every node of a cluster call needs "
                       "beamprof loaded (in its release, or code:add_patha/1 of its ebin)"])}.
