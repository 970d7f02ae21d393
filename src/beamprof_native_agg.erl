%% @private
%% @doc Aggregates symbolized native samples into a profile (the flame
%% contract: root-first stacks with weights) and answers questions about
%% one: filter by thread kind, hottest functions.
%%
%% Each stack's root frame is its thread kind (`[normal]', `[dirty_cpu]',
%% `[dirty_io]'), so one flame graph separates the scheduler kinds and
%% `filter/2' keeps some of them. A stack the sampler cut short gets
%% `[truncated]' right under the kind. Direct recursion (the same frame
%% repeated) is collapsed to one frame. At most 100,000 distinct stacks are
%% kept; further new stacks are counted under `[kind];[overflow]'.
%%
%% For the pprof file (`beamprof_pprof') it also keeps, from samples that
%% carry their addresses (`{Kind, Index, Weight, Truncated, Frames,
%% Addrs}', both leaf first), the address stacks by thread kind and
%% truncation with their weights (every caller's address less one, as it
%% was named), and the name of each address the first time it was seen (a
%% JIT address reused for other code after a purge keeps its first name).
%% The same bound: at most 100,000 distinct address stacks, the weight of
%% further new ones counted per kind (`overflow'); names only for the
%% stacks kept.
-module(beamprof_native_agg).

-export([new/0, add/2, stacks/1, totals/1, kind_frame/1, filter/2, top/2, pprof/1]).
-export_type([acc/0, kind/0, sample/0, pprof/0]).

-type kind() :: normal | dirty_cpu | dirty_io.
-type sample() :: {kind(), pos_integer(), pos_integer(), boolean(), [binary()]}
                | {kind(), pos_integer(), pos_integer(), boolean(), [binary()],
                   [non_neg_integer()]}.
-type pprof() :: #{samples := #{{kind(), boolean(), [non_neg_integer()]} => pos_integer()},
                   overflow := #{kind() => pos_integer()},
                   names := #{non_neg_integer() => binary()}}.
-opaque acc() :: #{stacks := #{[binary()] => pos_integer()},
                   kinds := #{kind() => non_neg_integer()},
                   threads := #{{kind(), pos_integer()} => non_neg_integer()},
                   samples := non_neg_integer(), weighted := non_neg_integer(),
                   truncated := non_neg_integer(), pprof := pprof()}.

-define(MAX_STACKS, 100000).
-define(TRUNCATED, <<"[truncated]">>).

%% @doc An empty accumulator.
-spec new() -> acc().
new() ->
    #{stacks => #{}, kinds => #{}, threads => #{}, samples => 0, weighted => 0,
      truncated => 0, pprof => #{samples => #{}, overflow => #{}, names => #{}}}.

%% @doc Adds symbolized samples: `{Kind, Index, Weight, Truncated, Frames}'
%% with Frames leaf first, or `{Kind, Index, Weight, Truncated, Frames,
%% Addrs}' with the addresses the frames name (leaf first, as sampled).
-spec add([sample()], acc()) -> acc().
add(Samples, Acc) ->
    lists:foldl(fun add_one/2, Acc, Samples).

add_one({Kind, Index, Weight, Truncated, Frames, Addrs}, #{pprof := P} = Acc) ->
    add_one({Kind, Index, Weight, Truncated, Frames},
            Acc#{pprof := add_addrs(Kind, Weight, Truncated, Frames, Addrs, P)});
add_one({Kind, Index, Weight, Truncated, Frames}, Acc) ->
    #{stacks := Stacks, kinds := Kinds, threads := Threads, samples := N,
      weighted := W, truncated := T} = Acc,
    Stack = stack(Kind, Truncated, Frames),
    Key = case is_map_key(Stack, Stacks) orelse map_size(Stacks) < ?MAX_STACKS of
              true -> Stack;
              false -> [kind_frame(Kind), <<"[overflow]">>]
          end,
    Acc#{stacks := maps:update_with(Key, fun(V) -> V + Weight end, Weight, Stacks),
         kinds := maps:update_with(Kind, fun(V) -> V + Weight end, Weight, Kinds),
         threads := maps:update_with({Kind, Index}, fun(V) -> V + Weight end, Weight, Threads),
         samples := N + 1, weighted := W + Weight,
         truncated := T + case Truncated of true -> 1; false -> 0 end}.

%% Root first: the kind, a truncation mark, then callers down to the leaf.
stack(Kind, Truncated, LeafFirst) ->
    Frames = collapse(lists:reverse(LeafFirst)),
    Root = case Truncated of
               true -> [kind_frame(Kind), ?TRUNCATED];
               false -> [kind_frame(Kind)]
           end,
    Root ++ Frames.

%% The address stack under its kind and truncation, callers' addresses less
%% one (the call, not the return address: as beamprof_native_sym names
%% them); each address named once.
add_addrs(Kind, Weight, Truncated, Frames, [_ | _] = Sampled,
          #{samples := Samples, overflow := Over, names := Names} = P) ->
    Addrs = beamprof_native_sym:call_sites(Sampled),
    Key = {Kind, Truncated, Addrs},
    case is_map_key(Key, Samples) orelse map_size(Samples) < ?MAX_STACKS of
        true ->
            P#{samples := maps:update_with(Key, fun(V) -> V + Weight end, Weight, Samples),
               names := name_addrs(Addrs, Frames, Names)};
        false ->
            P#{overflow := maps:update_with(Kind, fun(V) -> V + Weight end, Weight, Over)}
    end;
add_addrs(Kind, Weight, _Truncated, _Frames, [], #{overflow := Over} = P) ->
    P#{overflow := maps:update_with(Kind, fun(V) -> V + Weight end, Weight, Over)}.

name_addrs([A | As], [_ | Fs], Names) when is_map_key(A, Names) -> name_addrs(As, Fs, Names);
name_addrs([A | As], [F | Fs], Names) -> name_addrs(As, Fs, Names#{A => F});
name_addrs(_, _, Names) -> Names.

%% @doc The address data kept for the pprof file: address stacks (leaf
%% first) by `{Kind, Truncated, Addrs}' with their weights, the weight of
%% the stacks over the bound per kind, and each address's name.
-spec pprof(acc()) -> pprof().
pprof(#{pprof := P}) -> P.

collapse([F, F | Rest]) -> collapse([F | Rest]);
collapse([F | Rest]) -> [F | collapse(Rest)];
collapse([]) -> [].

%% @doc The root frame naming a thread kind.
-spec kind_frame(kind()) -> binary().
kind_frame(normal) -> <<"[normal]">>;
kind_frame(dirty_cpu) -> <<"[dirty_cpu]">>;
kind_frame(dirty_io) -> <<"[dirty_io]">>.

%% @doc The stacks, heaviest first (ties in stack order).
-spec stacks(acc()) -> [{[binary()], pos_integer()}].
stacks(#{stacks := Stacks}) ->
    [{S, W} || {_, S, W} <- lists:sort([{-W, S, W} || {S, W} <- maps:to_list(Stacks)])].

%% @doc Counts: samples, weighted, truncated, per kind and per thread.
-spec totals(acc()) -> #{samples := non_neg_integer(), weighted := non_neg_integer(),
                         truncated := non_neg_integer(),
                         kinds := #{kind() => non_neg_integer()},
                         threads := #{{kind(), pos_integer()} => non_neg_integer()}}.
totals(Acc) ->
    maps:with([samples, weighted, truncated, kinds, threads], Acc).

%% @doc The profile restricted to the thread kinds in Kinds (its stacks and
%% per-kind figures; `weighted' recomputed).
-spec filter(Profile, [kind()]) -> Profile when Profile :: map().
filter(#{stacks := Stacks} = Profile, Kinds) ->
    Roots = [kind_frame(K) || K <- Kinds],
    Kept = [S || {[Root | _], _} = S <- Stacks, lists:member(Root, Roots)],
    Filtered = Profile#{stacks := Kept, weighted => lists:sum([W || {_, W} <- Kept]),
                        filter => Kinds},
    Pprof = case Profile of
                #{pprof := #{samples := Samples, overflow := Over} = P} ->
                    Filtered#{pprof := P#{samples := maps:filter(fun({K, _, _}, _) ->
                                                                         lists:member(K, Kinds)
                                                                 end, Samples),
                                          overflow := maps:with(Kinds, Over)}};
                _ -> Filtered
            end,
    case Profile of
        #{kinds := ByKind} -> Pprof#{kinds := maps:with(Kinds, ByKind)};
        _ -> Pprof
    end.

%% @doc The N hottest frames of a profile by self weight, each with its
%% self and total weight and their percentages of the profile's weight.
%% Total counts a frame once per stack it appears in. Kind roots and marks
%% are not functions and are left out.
-spec top(#{stacks := [{[binary()], pos_integer()}], _ => _}, pos_integer()) ->
          [#{frame := binary(), self := non_neg_integer(), total := non_neg_integer(),
             self_pct := float(), total_pct := float()}].
top(#{stacks := Stacks}, N) ->
    All = lists:sum([W || {_, W} <- Stacks]),
    {Self, Total} = lists:foldl(fun count_stack/2, {#{}, #{}}, Stacks),
    Rows = [row(F, maps:get(F, Self, 0), T, All) || {F, T} <- maps:to_list(Total)],
    Sorted = lists:sort(fun(#{self := A, total := TA}, #{self := B, total := TB}) ->
                                {A, TA} >= {B, TB}
                        end, Rows),
    lists:sublist(Sorted, N).

count_stack({Frames, W}, {Self, Total}) ->
    case [F || F <- Frames, not is_mark(F)] of
        [] ->
            {Self, Total};
        Funs ->
            Leaf = lists:last(Funs),
            {maps:update_with(Leaf, fun(V) -> V + W end, W, Self),
             lists:foldl(fun(F, Acc) -> maps:update_with(F, fun(V) -> V + W end, W, Acc) end,
                         Total, lists:usort(Funs))}
    end.

is_mark(<<"[normal]">>) -> true;
is_mark(<<"[dirty_cpu]">>) -> true;
is_mark(<<"[dirty_io]">>) -> true;
is_mark(?TRUNCATED) -> true;
is_mark(<<"[overflow]">>) -> true;
is_mark(_) -> false.

row(F, Self, Total, All) ->
    #{frame => F, self => Self, total => Total, self_pct => pct(Self, All),
      total_pct => pct(Total, All)}.

pct(_, 0) -> 0.0;
pct(X, All) -> 100.0 * X / All.
