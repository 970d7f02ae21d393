%% PropEr properties of the scan's NIFs: the top-K and the histogram against
%% pure Erlang models (sorting; exact nearest-rank percentiles and the same
%% bucket function), the window table against a map of the previous
%% generation, and random terms into every scan NIF: badarg or a value,
%% never a crash.
-module(prop_beamprof_scan).

-include_lib("proper/include/proper.hrl").

-export([prop_topk/0, prop_hist/0, prop_window/0, prop_window_cached/0, prop_window_reds/0,
         prop_random_args/0, prop_window_reds_dirty/0, prop_hist_many_percentiles/0,
         prop_window_regrowth/0]).

-define(NIF, beamprof_nif).
-define(U64, 18446744073709551615).

%%--------------------------------------------------------------------
%% top-K

prop_topk() ->
    ?FORALL({K, Offers}, {range(1, 20), list({range(-50, 50), term()})},
            begin
                T = ?NIF:scan_topk_new(K),
                lists:foreach(fun({V, I}) -> ?NIF:scan_topk_add(T, I, V) end, Offers),
                Got = ?NIF:scan_topk_list(T),
                Expected = model_topk(K, Offers),
                ?WHENFAIL(io:format("K ~p~ngot ~p~nexpected ~p~n", [K, Got, Expected]),
                          Got =:= Expected)
            end).

%% The K largest, ties in offer order (a stable sort on the value).
model_topk(K, Offers) ->
    Indexed = lists:zip(lists:seq(1, length(Offers)), Offers),
    Sorted = lists:sort(fun({IA, {VA, _}}, {IB, {VB, _}}) -> VA > VB orelse (VA =:= VB andalso IA < IB) end,
                        Indexed),
    [{V, I} || {_, {V, I}} <- lists:sublist(Sorted, K)].

%%--------------------------------------------------------------------
%% histogram

prop_hist() ->
    ?FORALL({Values, Ps}, {non_empty(list(value())), list(percent())},
            begin
                H = ?NIF:scan_hist_new(),
                [ok = ?NIF:scan_hist_add(H, V) || V <- Values],
                Got = ?NIF:scan_hist_percentiles(H, Ps),
                Sorted = lists:sort(Values),
                Info = ?NIF:scan_hist_info(H),
                Checks = [check_percentile(P, G, Sorted) || {P, G} <- lists:zip(Ps, Got)],
                ?WHENFAIL(io:format("~p ~p -> ~p ~p~n", [Values, Ps, Got, Info]),
                          lists:all(fun(X) -> X end, Checks) andalso
                          Info =:= #{count => length(Values), min => hd(Sorted),
                                     max => lists:last(Sorted),
                                     sum => min(?U64, lists:sum(Values))})
            end).

value() ->
    oneof([range(0, 100), range(0, 1 bsl 20), range(0, ?U64)]).

percent() ->
    oneof([range(0, 100), float(0.0, 100.0)]).

%% The answer is in the same bucket as the exact nearest-rank value, and
%% not below it.
check_percentile(P, Got, Sorted) ->
    N = length(Sorted),
    Rank = max(1, min(N, ceil(P / 100 * N))),
    Exact = lists:nth(Rank, Sorted),
    index(Got) =:= index(Exact) andalso Got >= Exact.

%% The C bucket function (bp_hist_index) in Erlang.
index(V) when V < 64 -> V;
index(V) ->
    Msb = msb(V, 0),
    Shift = Msb - 5,
    (Shift + 1) * 32 + ((V bsr Shift) - 32).

msb(1, N) -> N;
msb(V, N) -> msb(V bsr 1, N + 1).

%%--------------------------------------------------------------------
%% window

%% Generations of updates over a pool of live pids: each delta is the value
%% minus the previous generation's value for that pid (the value itself
%% when new, or when it went down; 0 in the first generation), and the
%% risen flags are those not set in the previous generation.
prop_window() ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 8)],
    ?FORALL(Gens, non_empty(list(list({range(1, 8), range(0, 1000), range(0, 15)}))),
            begin
                W = ?NIF:scan_window_new(),
                R = run_gens(W, Gens, Pids, 1, #{}),
                R
            end).

run_gens(_W, [], _Pids, _G, _Prev) -> true;
run_gens(W, [Updates | Rest], Pids, G, Prev) ->
    G = ?NIF:scan_window_begin(W, length(Updates)),
    {Ok, Cur} = lists:foldl(
                  fun({I, V, F}, {Ok0, Cur0}) ->
                          P = lists:nth(I, Pids),
                          Got = ?NIF:scan_window_update(W, P, V, F),
                          Exp = model_update(G, maps:find(P, Prev), V, F),
                          {Ok0 andalso Got =:= Exp, Cur0#{P => {V, F}}}
                  end, {true, #{}}, Updates),
    Ok andalso run_gens(W, Rest, Pids, G + 1, Cur).

model_update(G, Found, V, F) ->
    {Delta, PrevF} = case {G, Found} of
                         {1, _} -> {0, 0};
                         {_, error} -> {V, 0};
                         {_, {ok, {PV, PF}}} when V >= PV -> {V - PV, PF};
                         {_, {ok, {_, PF}}} -> {V, PF}
                     end,
    case F band (bnot PrevF) of
        0 -> Delta;
        Risen -> {Delta, Risen}
    end.

%% The memory kept beside the value (scan_window_update/6) is given back by
%% scan_window_cached/4 of the next generation exactly when the value and
%% queue length it is asked with are those recorded then (and the pair fits
%% the kept word: queue below 65535, memory below 2^48 - 1).
prop_window_cached() ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 6)],
    Mem = oneof([range(0, 100000), skipped, 1 bsl 50, (1 bsl 48) - 2]),
    Mql = oneof([range(0, 2), 65534, 65535, 1 bsl 40]),
    ?FORALL(Gens, non_empty(list(list({range(1, 6), range(0, 3), Mql, Mem}))),
            begin
                W = ?NIF:scan_window_new(),
                run_cached(W, Gens, Pids, #{})
            end).

run_cached(_W, [], _Pids, _Prev) -> true;
run_cached(W, [Updates | Rest], Pids, Prev) ->
    _ = ?NIF:scan_window_begin(W, length(Updates)),
    {Ok, Cur} = lists:foldl(
                  fun({I, V, Q, M}, {Ok0, Cur0}) ->
                          P = lists:nth(I, Pids),
                          Got = ?NIF:scan_window_cached(W, P, V, Q),
                          Exp = case maps:find(P, Prev) of
                                    {ok, {V, Q, PM}} when is_integer(PM), Q < 65535,
                                                          PM =< (1 bsl 48) - 2 -> PM;
                                    _ -> none
                                end,
                          _ = ?NIF:scan_window_update(W, P, V, 0, Q, M),
                          {Ok0 andalso Got =:= Exp, Cur0#{P => {V, Q, M}}}
                  end, {true, #{}}, Updates),
    Ok andalso run_cached(W, Rest, Pids, Cur).

%% A slice through scan_window_reds/4 does what scan_window_update/4 one id
%% at a time does: the same deltas (seen through a top-3 of them), and the
%% `undefined' values (gone processes) are counted and not recorded.
prop_window_reds() ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 6)],
    ?FORALL(Gens, non_empty(list(list({range(1, 6), oneof([range(0, 1000), undefined])}))),
            begin
                A = ?NIF:scan_window_new(),
                B = ?NIF:scan_window_new(),
                lists:all(fun(Slice) -> reds_gen(A, B, Slice, Pids) end, Gens)
            end).

reds_gen(A, B, Slice, Pids) ->
    _ = ?NIF:scan_window_begin(A, length(Slice)),
    _ = ?NIF:scan_window_begin(B, length(Slice)),
    T = ?NIF:scan_topk_new(3),
    Ids = [lists:nth(I, Pids) || {I, _} <- Slice],
    Values = [V || {_, V} <- Slice],
    {Gone, Floor} = ?NIF:scan_window_reds(A, T, Ids, Values),
    Deltas = [case ?NIF:scan_window_update(B, P, V, 0) of D when is_integer(D) -> D end
              || {P, V} <- lists:zip(Ids, Values), V =/= undefined],
    Top = lists:sublist(lists:reverse(lists:sort(Deltas)), 3),
    ExpFloor = case length(Deltas) >= 3 of true -> lists:last(Top); false -> -(1 bsl 63) end,
    Gone =:= length([u || undefined <- Values])
        andalso [V || {V, _} <- ?NIF:scan_topk_list(T)] =:= Top
        andalso Floor =:= ExpFloor
        andalso ?NIF:scan_window_info(A) =:= ?NIF:scan_window_info(B).

%% Slices beyond 1024 ids run on a dirty CPU scheduler (bp_scan_nif.c): the
%% same answers as one id at a time.
prop_window_reds_dirty() ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 6)],
    ?FORALL(Gens, non_empty(list(?LET(N, range(1025, 3000),
                                      vector(N, {range(1, 6),
                                                 oneof([range(0, 1000), undefined])})))),
            begin
                A = ?NIF:scan_window_new(),
                B = ?NIF:scan_window_new(),
                lists:all(fun(Slice) -> reds_gen(A, B, Slice, Pids) end, Gens)
            end).

%% More than 64 percentiles are answered on a dirty CPU scheduler: the same
%% values as asked one at a time.
prop_hist_many_percentiles() ->
    ?FORALL({Values, Ps}, {non_empty(list(value())), ?LET(N, range(65, 1000), vector(N, percent()))},
            begin
                H = ?NIF:scan_hist_new(),
                [ok = ?NIF:scan_hist_add(H, V) || V <- Values],
                ?NIF:scan_hist_percentiles(H, Ps)
                    =:= [hd(?NIF:scan_hist_percentiles(H, [P])) || P <- Ps]
            end).

%% A window begun at any sizes, small and large, in any order: each begin
%% answers the next generation with room for its size; the tables it
%% replaces go to the reaper thread (scan_reaper_info/0 counts the large
%% ones), whose count never goes down.
prop_window_regrowth() ->
    ?FORALL(Sizes, non_empty(list(oneof([range(0, 100), range(20000, 200000)]))),
            begin
                W = ?NIF:scan_window_new(),
                #{freed := F0} = ?NIF:scan_reaper_info(),
                Ok = lists:all(fun({I, S}) ->
                                       #{capacity := C} = ?NIF:scan_window_info(W),
                                       G = ?NIF:scan_window_begin(W, S),
                                       #{generation := G2, capacity := C2} =
                                           ?NIF:scan_window_info(W),
                                       G =:= I andalso G2 =:= I andalso C2 >= S
                                           andalso is_integer(C)
                               end, lists:zip(lists:seq(1, length(Sizes)), Sizes)),
                ok = ?NIF:scan_window_release(W),
                #{freed := F1} = ?NIF:scan_reaper_info(),
                Ok andalso F1 >= F0
            end).

%%--------------------------------------------------------------------
%% random arguments

prop_random_args() ->
    Res = #{buf => ?NIF:scan_buf_new(), topk => ?NIF:scan_topk_new(3),
            hist => ?NIF:scan_hist_new(), window => ?NIF:scan_window_new()},
    ?FORALL({F, Args}, call_like(Res),
            begin
                R = try apply(?NIF, F, Args)
                    catch error:badarg -> badarg
                    end,
                ?WHENFAIL(io:format("~p~p -> ~p~n", [F, Args, R]), valid(F, R))
            end).

call_like(Res) ->
    ?LET({F, Arity}, oneof([{scan_buf_new, 0}, {scan_buf_put, 2}, {scan_buf_take, 2},
                            {scan_buf_info, 1}, {scan_topk_new, 1}, {scan_topk_add, 3},
                            {scan_topk_list, 1}, {scan_hist_new, 0}, {scan_hist_add, 2},
                            {scan_hist_percentiles, 2}, {scan_hist_info, 1},
                            {scan_window_new, 0}, {scan_window_begin, 2},
                            {scan_window_update, 4}, {scan_window_update, 6},
                            {scan_window_cached, 4}, {scan_window_reds, 4},
                            {scan_window_info, 1}, {scan_window_release, 1},
                            {scan_buf_release, 1},
                            {scan_thread_cpu, 0}, {scan_ptab_fill, 3},
                            {scan_reaper_info, 0}]),
         {F, vector(Arity, arg(Res))}).

arg(Res) ->
    oneof([term(), integer(), range(-2, 20000), float(), list(oneof([self(), term()])),
           self(), hd(erlang:ports()), oneof(maps:values(Res)),
           erlang:system_info(process_limit)]).

valid(_, badarg) -> true;
valid(F, R) when F =:= scan_buf_new; F =:= scan_topk_new; F =:= scan_hist_new;
                 F =:= scan_window_new -> is_reference(R);
valid(scan_buf_put, R) -> is_list(R);
valid(scan_buf_take, R) -> is_list(R);
valid(scan_topk_add, R) -> is_integer(R);
valid(scan_topk_list, R) -> is_list(R);
valid(scan_hist_add, R) -> R =:= ok;
valid(scan_hist_percentiles, R) -> is_list(R);
valid(scan_window_begin, R) -> is_integer(R) orelse R =:= {error, enomem};
valid(scan_window_update, R) -> is_integer(R) orelse is_tuple(R);
valid(scan_window_reds, R) -> is_tuple(R);
valid(scan_window_cached, R) -> is_integer(R) orelse R =:= none;
valid(scan_thread_cpu, R) -> is_integer(R);
valid(scan_window_release, R) -> R =:= ok;
valid(scan_buf_release, R) -> R =:= ok;
valid(scan_reaper_info, #{freed := N} = R) -> map_size(R) =:= 1 andalso is_integer(N)
                                                 andalso N >= 0;
valid(scan_reaper_info, _) -> false;
valid(scan_ptab_fill, {more, Next}) -> is_integer(Next);
valid(scan_ptab_fill, R) -> lists:member(R, [done, {error, unavailable}, {error, enomem}]);
valid(_, R) -> is_map(R).
