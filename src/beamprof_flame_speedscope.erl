%% @doc The speedscope file (https://www.speedscope.app/file-format-schema.json)
%% of a `beamprof_flame:graph()': `shared.frames' holds each distinct frame
%% name once; one profile of type `sampled' holds a sample per distinct
%% stack (frame indices, root first) with its weight, so the weights sum to
%% the profile's total. The graph's notes follow its title in the names of
%% the file and of the profile (what speedscope shows).
-module(beamprof_flame_speedscope).

-export([render/1]).

-define(SCHEMA, <<"https://www.speedscope.app/file-format-schema.json">>).

%% @doc The speedscope JSON text of `Graph'.
-spec render(Graph) -> iodata() when Graph :: beamprof_flame:graph().
render(#{tree := {_, Total, Children}, unit := Unit} = Graph) ->
    Title = beamprof_flame:titled(Graph),
    {Index, Samples} = lists:foldl(fun(C, Acc) -> walk(C, [], Acc) end, {#{}, []}, Children),
    Frames = [#{name => N} || {N, _} <- lists:keysort(2, maps:to_list(Index))],
    {Stacks, Weights} = lists:unzip(lists:reverse(Samples)),
    Profile = #{type => <<"sampled">>, name => Title, unit => unit(Unit),
                startValue => 0, endValue => Total,
                samples => Stacks, weights => Weights},
    [beamprof_json:encode(#{'$schema' => ?SCHEMA,
                            shared => #{frames => Frames},
                            profiles => [Profile],
                            name => Title,
                            activeProfileIndex => 0,
                            exporter => <<"beamprof">>}), $\n].

%% Depth first; Path holds the frame indices leaf first.
walk({Name, Total, Children}, Path, {Index0, Samples0}) ->
    {I, Index1} = index(Name, Index0),
    Path1 = [I | Path],
    Self = Total - lists:sum([T || {_, T, _} <- Children]),
    Samples1 = case Self > 0 of
                   true -> [{lists:reverse(Path1), Self} | Samples0];
                   false -> Samples0
               end,
    lists:foldl(fun(C, Acc) -> walk(C, Path1, Acc) end, {Index1, Samples1}, Children).

index(Name, Index) ->
    case Index of
        #{Name := I} -> {I, Index};
        _ -> I = map_size(Index), {I, Index#{Name => I}}
    end.

unit(samples) -> <<"none">>;
unit(microseconds) -> <<"microseconds">>;
unit(bytes) -> <<"bytes">>.
