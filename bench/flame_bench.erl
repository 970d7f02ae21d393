%% Flame graph rendering: merging 100k stacks (1.5M frames) into a tree and
%% writing each format, beside a naive baseline in the same run: folded
%% text the naive Erlang way (each stack joined with io_lib, counted in a
%% map, sorted). bench/run.sh flame_bench
-module(flame_bench).
-export([run/0]).

run() ->
    Stacks = stacks(100000),
    Frames = lists:sum([length(S) || {S, _} <- Stacks]),
    {Naive, _} = timer:tc(fun() -> naive_folded(Stacks) end),
    {Merge, #{tree := Tree}} = timer:tc(beamprof_flame, graph, [#{stacks => Stacks}]),
    io:format("flame graphs: ~B stacks, ~B frames, ~B tree nodes~n",
              [length(Stacks), Frames, tree_nodes(Tree)]),
    Rows = [["merge into a tree", ms(Merge), "-", ratio(Merge, Naive)] |
            [begin
                 {T, Out} = timer:tc(fun() -> iolist_to_binary(beamprof_flame:render(#{stacks => Stacks}, F)) end),
                 [atom_to_list(F) ++ " (incl. merge)", ms(T), integer_to_list(byte_size(Out)), ratio(T, Naive)]
             end || F <- [folded, svg, html, speedscope]]],
    bench_util:print_table(["what", "ms", "bytes", "vs naive folded (" ++ ms(Naive) ++ " ms)"], Rows).

ms(Us) -> bench_util:fmt(Us / 1000).
ratio(A, B) -> bench_util:ratio(A, B).

%% Paths through a fixed call tree (branching 3, depth 6..25) over 400 names.
stacks(N) ->
    rand:seed(exsss, {1, 2, 3}),
    Names = list_to_tuple([list_to_binary(io_lib:format("mod~B:fun~B/~B", [M, F, F rem 4]))
                           || M <- lists:seq(1, 40), F <- lists:seq(1, 10)]),
    [{[element(1 + erlang:phash2(lists:sublist(Path, D), 400), Names) || D <- lists:seq(1, length(Path))], 1}
     || _ <- lists:seq(1, N), Path <- [[rand:uniform(3) || _ <- lists:seq(1, 5 + rand:uniform(20))]]].

naive_folded(Stacks) ->
    Counts = lists:foldl(fun({Frames, W}, M) ->
                                 Key = lists:flatten(lists:join(";", [binary_to_list(F) || F <- Frames])),
                                 maps:update_with(Key, fun(C) -> C + W end, W, M)
                         end, #{}, Stacks),
    iolist_to_binary([io_lib:format("~s ~B~n", [K, V]) || {K, V} <- lists:sort(maps:to_list(Counts))]).

tree_nodes({_, _, C}) -> 1 + lists:sum([tree_nodes(X) || X <- C]).
