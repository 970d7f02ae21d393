%% @private
%% @doc The cluster's native CPU flame graph: `beamprof_native:sample/2' on
%% every node at once, each profile symbolized on its own node (the JIT's
%% names and the C objects are that node's), merged under a root frame per
%% node (`<<"node@host">>', then the thread kind, then the stack).
-module(beamprof_cluster_flame).

-export([run/2]).

-define(FIGURES, [samples, weighted, effective_hz, signal_hz, truncated, frame_source,
                  frame_layout_source, hz, hz_under_gate, gate_closed_ms, gate_closed_pct,
                  gated, stray, overhead, hint, unnamed_pct, unnamed_leaf_pct, duration_ms,
                  warnings, notes]).

%% @doc Samples every node of `Opts' for `Ms' ms at once and writes one flame
%% graph (or returns the merged profile under `profile' without `output').
%% `Opts': `nodes' and `timeout' (here the margin over `Ms' that the call
%% waits for the profiles, default 5000 ms), and `beamprof:flame_graph/2''s
%% (`output', `format' from the extension, `hz', `threads', `depth'), all
%% checked, and the output's directory, before any node samples. Returns
%% `{ok, Summary, Failed}': `Summary' has `nodes' (per node: its samples,
%% rates, gate figures, warnings and notes), the summed `samples' and
%% `weighted', `warnings' and `notes' of every node prefixed with its name,
%% and `file' (or `profile'); `{error, {all_failed, Failed}}' when no node
%% gave a profile.
-spec run(pos_integer(), map()) -> {ok, map(), beamprof_cluster:failed()} | {error, term()}.
run(Ms, Opts) when is_integer(Ms), Ms > 0, is_map(Opts) ->
    Cluster = maps:with([nodes, timeout], Opts),
    #{nodes := Nodes, timeout := Margin} = beamprof_cluster:options(Cluster, [], [Ms, Opts]),
    case beamprof_native:flame_options(maps:without([nodes, timeout], Opts)) of
        {ok, Output, Format, StartOpts} ->
            case beamprof_cluster_rpc:call(Nodes, {sample, Ms, StartOpts}, Ms + Margin) of
                {[], Failed} -> {error, {all_failed, Failed}};
                {Profiles, Failed} -> write(merge(Profiles), Profiles, Output, Format, Failed)
            end;
        {error, _} = Error ->
            Error
    end;
run(Ms, Opts) ->
    erlang:error({badarg, "Expected a duration in ms (a positive integer) and a map of options"},
                 [Ms, Opts]).

%% One profile: each node's stacks under its name.
merge(Profiles) ->
    #{stacks => [{[atom_to_binary(Node) | Frames], W}
                 || {Node, P} <- Profiles, {Frames, W} <- maps:get(stacks, P, [])],
      unit => samples,
      title => iolist_to_binary(io_lib:format("beamprof native CPU profile, ~B nodes",
                                              [length(Profiles)])),
      notes => prefixed(notes, Profiles),
      warnings => prefixed(warnings, Profiles)}.

%% Each node's notes or warnings, their text after the node's name.
prefixed(Key, Profiles) ->
    [prefix(Node, X) || {Node, P} <- Profiles, X <- maps:get(Key, P, [])].

prefix(Node, #{code := Code, message := Message}) ->
    beamprof_warnings:new(Code, [atom_to_binary(Node), ": ", Message]);
prefix(Node, Note) ->
    unicode:characters_to_binary([atom_to_binary(Node), ": ", Note]).

write(Merged, Profiles, Output, Format, Failed) ->
    Summary = #{nodes => maps:from_list([{N, maps:with(?FIGURES, P)} || {N, P} <- Profiles]),
                samples => lists:sum([maps:get(samples, P, 0) || {_, P} <- Profiles]),
                weighted => lists:sum([maps:get(weighted, P, 0) || {_, P} <- Profiles]),
                warnings => maps:get(warnings, Merged), notes => maps:get(notes, Merged)},
    case Output of
        undefined ->
            {ok, Summary#{profile => Merged}, Failed};
        _ ->
            case beamprof_flame:write(Merged, Output, Format) of
                {ok, File} -> {ok, Summary#{file => File}, Failed};
                {error, {badarg, _}} = Error -> Error;
                {error, Reason} -> {error, beamprof_file:write_failed(Output, Reason)}
            end
    end.
