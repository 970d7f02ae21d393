%% @private
%% @doc The scan loop: walks every process (or port) in slices of about
%% 0.5 ms, yielding between slices, and aggregates into NIF resources (top-K,
%% histograms, the window table) so that the walking process's heap stays
%% flat whatever the process count.
%%
%% The pid list is never in the walker's heap: the pids go into a buffer
%% resource first, from the source `beamprof_enum' chooses for the release:
%% on OTP 28+ the walker takes them from `erlang:processes_iterator/0' a
%% chunk at a time, yielding between chunks; on the ERTS versions whose
%% layout a test verified, the NIF reads the VM's process table, a bounded
%% number of slots per call (c_src/bp_ptab.h); otherwise (and when the table
%% is not found) a short-lived helper process calls `erlang:processes()',
%% hands the pids to the buffer in chunks and exits. The walker takes slices
%% from the buffer, and gives its memory back on a dirty scheduler when done.
%% The result says which source gave the pids (`source') and, for a
%% fallback, why (`warnings').
%%
%% The window table is allocated at the pass's start (`scan_window_begin');
%% when that fails (`{error, enomem}') the pass goes on without it and says so
%% with a `scan_window_unavailable' warning: reductions are not ranked (the
%% only figure left is each process's lifetime total, which is not a delta
%% over the window) and no threshold is checked (a crossing is judged against
%% the previous pass, which the table holds). `test_window_enomem => true' in
%% the spec (tests only) makes the allocation fail.
%%
%% Per process it asks `message_queue_len' first (cheap), then, only when the
%% queue is below `skip_queue', the items that walk the queue (`memory',
%% `total_heap_size': linear in the queue's length, OTP issue 6494); those
%% are counted as skipped. `reductions' does not walk the queue and is always
%% asked when wanted.
%%
%% CPU: each slice reads the scheduler thread's CPU clock
%% (`CLOCK_THREAD_CPUTIME_ID', from the NIF) at both ends; when the walker
%% ran the whole slice on one scheduler the difference counts, otherwise the
%% slice's wall time (an overestimate). A slice that is preempted and resumed
%% on the same scheduler also counts what ran in between: the figure errs
%% high, which is the safe side for a CPU budget.
-module(beamprof_scan_walk).

-export([processes/1, ports/1, fill_processes/1]).
-export_type([spec/0, result/0, port_spec/0, port_result/0, crossing/0]).

-type key() :: message_queue_len | memory | reductions | total_heap_size.
-type port_key() :: queue_size | memory | input | output.

-type spec() :: #{keys := [key()], n := 1..10000, skip_queue := pos_integer(),
                  window => reference(), histograms => boolean(),
                  enumerate => auto | processes,
                  long_message_queue => pos_integer(), large_memory => pos_integer(),
                  test_window_enomem => boolean()}.
%% `window' is required for `reductions' and for the thresholds. `enumerate'
%% (default `auto') says where the pids come from: `auto' as
%% `beamprof_enum:choose/0' says, falling back to `erlang:processes()' when
%% the process table is chosen but not found; `processes' always takes
%% `erlang:processes()' (no warning: it was asked for).

-type crossing() :: {long_message_queue | large_memory, pid(), non_neg_integer()}
                  | {busy, port(), non_neg_integer()}.

-type result() :: #{tops := #{key() => [{integer(), pid()}]},
                    scanned := non_neg_integer(), skipped := non_neg_integer(),
                    gone := non_neg_integer(), duration_us := non_neg_integer(),
                    cpu_us := non_neg_integer(), slices := non_neg_integer(),
                    generation := non_neg_integer(), fill_us := non_neg_integer(),
                    max_slice_us := non_neg_integer(),
                    histograms := #{message_queue_len => reference(), memory => reference()},
                    crossings := [crossing()], crossings_dropped := non_neg_integer(),
                    source := beamprof_enum:source(),
                    warnings := [beamprof_warnings:warning()]}.

-type port_spec() :: #{keys := [port_key()], n := 1..10000,
                       window => reference(), busy_port_queue => pos_integer(),
                       test_window_enomem => boolean()}.
-type port_result() :: #{tops := #{port_key() => [{integer(), port()}]},
                         scanned := non_neg_integer(), gone := non_neg_integer(),
                         duration_us := non_neg_integer(), cpu_us := non_neg_integer(),
                         crossings := [crossing()], crossings_dropped := non_neg_integer(),
                         warnings := [beamprof_warnings:warning()]}.

-define(NIF, beamprof_nif).
-define(SLICE_NS, 500000).         % aim: 0.5 ms of work per slice
-define(SLICE_REDS, 4000).         % a full timeslice (CONTEXT_REDS)
-define(CHARGE_NS, 500000).        % charged a full timeslice per 0.5 ms
-define(ASK_REDS, 80).             % a memory request (a round trip, ~3-10 us)
-define(SLICE_MIN, 16).
-define(SLICE_MAX, 2048).
-define(SLICE_FIRST, 128).
-define(MAX_CROSSINGS, 100).      % per kind and scan; the rest are counted
-define(BIG_LIST, 20000).          % ids from which the pid-list helper's heap is preset
-define(ITER_CHUNK, 2000).         % pids taken from the process iterator per step
-define(FLAG_QUEUE, 1).
-define(FLAG_MEMORY, 2).
-define(FLAG_BUSY, 1).

%% The walker's state; every field is small (resources are references).
-record(w, {keys :: [atom()],
            need_mem :: boolean(),
            need_ths :: boolean(),
            need_reds :: boolean(),
            skip :: pos_integer(),
            window :: reference() | undefined,
            gen = 0 :: non_neg_integer(),
            lmq :: pos_integer() | infinity,
            lmem :: pos_integer() | infinity,
            qh :: reference() | undefined,
            mh :: reference() | undefined,
            tq :: reference() | undefined, fq = -1 :: integer(),
            tm :: reference() | undefined, fm = -1 :: integer(),
            tt :: reference() | undefined, ft = -1 :: integer(),
            tr :: reference() | undefined, fr = -1 :: integer(),
            skipped = 0 :: non_neg_integer(),
            gone = 0 :: non_neg_integer(),
            crossings = [] :: [crossing()],
            ncross = #{} :: #{atom() => non_neg_integer()},
            dropped = 0 :: non_neg_integer(),
            warnings = [] :: [beamprof_warnings:warning()]}).

%% ------------------------------------------------------------ processes

%% @doc One pass over every process; see the module doc.
-spec processes(spec()) -> result().
processes(#{keys := Keys, n := N, skip_queue := Skip} = Spec) ->
    Start = erlang:monotonic_time(),
    {Buf, Source, Warnings} = fill_processes(maps:get(enumerate, Spec, auto)),
    FillUs = us(erlang:monotonic_time() - Start),
    #{size := Size} = ?NIF:scan_buf_info(Buf),
    Window = maps:get(window, Spec, undefined),
    Hist = maps:get(histograms, Spec, false),
    W0 = #w{keys = Keys, skip = Skip, window = Window,
            need_mem = lists:member(memory, Keys) orelse Hist
                orelse maps:is_key(large_memory, Spec),
            need_ths = lists:member(total_heap_size, Keys),
            need_reds = lists:member(reductions, Keys) orelse Window =/= undefined,
            lmq = maps:get(long_message_queue, Spec, infinity),
            lmem = maps:get(large_memory, Spec, infinity),
            qh = hist(Hist), mh = hist(Hist),
            tq = topk(message_queue_len, Keys, N), tm = topk(memory, Keys, N),
            tt = topk(total_heap_size, Keys, N), tr = topk(reductions, Keys, N)},
    W1 = begin_window(W0, Size, Spec),
    {W, {Slices, Cpu, MaxSlice}} = slices(Buf, ?SLICE_FIRST, visitor(W1), W1, {0, 0, 0}),
    ok = ?NIF:scan_buf_release(Buf),
    #{tops => tops(W), scanned => Size - W#w.gone, skipped => W#w.skipped,
      gone => W#w.gone, duration_us => us(erlang:monotonic_time() - Start),
      cpu_us => Cpu div 1000, slices => Slices, generation => W#w.gen,
      fill_us => FillUs, max_slice_us => MaxSlice div 1000,
      histograms => maps:from_list([{K, R} || {K, R} <- [{message_queue_len, W#w.qh},
                                                           {memory, W#w.mh}],
                                              R =/= undefined]),
      crossings => lists:reverse(W#w.crossings), crossings_dropped => W#w.dropped,
      source => Source, warnings => beamprof_warnings:merge(Warnings, W#w.warnings)}.

hist(true) -> ?NIF:scan_hist_new();
hist(false) -> undefined.

topk(Key, Keys, N) ->
    case lists:member(Key, Keys) of
        true -> ?NIF:scan_topk_new(N);
        false -> undefined
    end.

%% Without the table: nothing ranks reductions (tr), nothing judges a
%% threshold (lmq, lmem), and the result says so.
begin_window(#w{window = undefined} = W, _Size, _Spec) -> W;
begin_window(#w{window = Window} = W, Size, Spec) ->
    case window_begin(Window, Size, Spec) of
        Gen when is_integer(Gen) -> W#w{gen = Gen};
        {error, enomem} ->
            W#w{window = undefined, tr = undefined, need_reds = false, lmq = infinity,
                lmem = infinity, warnings = [window_unavailable("processes")]}
    end.

window_begin(_Window, _Size, #{test_window_enomem := true}) -> {error, enomem};
window_begin(Window, Size, _Spec) -> ?NIF:scan_window_begin(Window, Size).

window_unavailable(What) ->
    beamprof_warnings:new(scan_window_unavailable,
                          ["no memory for the scan's window table of ", What,
                           ": reductions not ranked and thresholds not checked this pass"]).

tops(#w{tq = Q, tm = M, tt = T, tr = R}) ->
    maps:from_list([{K, ?NIF:scan_topk_list(Ref)}
                    || {K, Ref} <- [{message_queue_len, Q}, {memory, M},
                                    {total_heap_size, T}, {reductions, R}],
                       Ref =/= undefined]).

%% A buffer resource holding every pid, the source that gave them and the
%% warnings of a fallback. From the source `beamprof_enum:choose/0' says
%% (`auto'), or from erlang:processes(), whose last steps hold a scheduler
%% for milliseconds at hundreds of thousands of processes.
-spec fill_processes(auto | processes) ->
          {reference(), beamprof_enum:source(), [beamprof_warnings:warning()]}.
fill_processes(auto) ->
    {Source, Warnings} = beamprof_enum:choose(),
    fill_from(Source, Warnings);
fill_processes(processes) ->
    fill_from(processes, []).

fill_from(ptab_walk, Warnings) ->
    Buf = ?NIF:scan_buf_new(),
    case walk_table(Buf, erlang:system_info(process_limit), 0) of
        done -> {Buf, ptab_walk, Warnings};
        {error, unavailable} ->
            fill_from(processes, Warnings ++ [beamprof_enum:table_not_found()]);
        {error, enomem} = Error -> erlang:error({scan_buffer, Error})
    end;
fill_from(processes, Warnings) ->
    {fill(fun erlang:processes/0, erlang:system_info(process_count)), processes, Warnings};
fill_from(Source, Warnings) ->
    iterator_fill(Source, Warnings).

%% OTP 28+: the iterator's pids into a buffer, ?ITER_CHUNK at a time, each
%% step charged and followed by a yield (account/1): the walker's heap holds
%% one chunk (the VM hands the pids over a table slice at a time). Compiled
%% only where the iterator exists (beamprof_enum:iterator_compiled/0 says so,
%% and only then is it chosen).
-if(?OTP_RELEASE >= 28).
-spec iterator_fill(processes_iterator, [beamprof_warnings:warning()]) ->
          {reference(), processes_iterator, [beamprof_warnings:warning()]}.
iterator_fill(processes_iterator, Warnings) ->
    Buf = ?NIF:scan_buf_new(),
    ok = iterate(Buf, erlang:processes_iterator()),
    {Buf, processes_iterator, Warnings}.

iterate(Buf, Iter) ->
    T0 = erlang:monotonic_time(nanosecond),
    {Pids, Next} = next_pids(Iter, ?ITER_CHUNK, []),
    ok = put_all(Buf, Pids),
    account(erlang:monotonic_time(nanosecond) - T0),
    case Next of
        none -> ok;
        _ -> iterate(Buf, Next)
    end.

next_pids(Iter, 0, Acc) -> {Acc, Iter};
next_pids(Iter, Max, Acc) ->
    case erlang:processes_next(Iter) of
        {Pid, Next} -> next_pids(Next, Max - 1, [Pid | Acc]);
        none -> {Acc, none}
    end.
-else.
-spec iterator_fill(processes_iterator, [beamprof_warnings:warning()]) -> no_return().
iterator_fill(processes_iterator, _Warnings) ->
    erlang:error({badarg, "erlang:processes_iterator/0 needs OTP 28"}).
-endif.

%% Each call charges its own time at account/1's rate (consume_since in
%% c_src/bp_scan_nif.c), so the loop is scheduled out about every 0.5 ms.
walk_table(Buf, Limit, Slot) ->
    case ?NIF:scan_ptab_fill(Buf, Limit, Slot) of
        {more, Next} -> walk_table(Buf, Limit, Next);
        Other -> Other
    end.

%% A buffer resource holding what `ListFun' returns (about `Count' ids),
%% filled by a short-lived helper process (the list lives only in the
%% helper's heap). From ?BIG_LIST ids, the helper's heap is made large
%% enough for the list from the start: growing it while the list is live
%% meant garbage collections copying the list, 2-3 ms each at 500k
%% processes, without a yield. Below, the default heap (such a copy takes
%% microseconds).
fill(ListFun, Count) ->
    Buf = ?NIF:scan_buf_new(),
    Heap = case Count >= ?BIG_LIST of
               true -> [{min_heap_size, 2 * (Count + Count div 8) + 1024}];
               false -> []
           end,
    {Helper, Ref} = spawn_opt(fun() -> put_all(Buf, ListFun()) end, [monitor | Heap]),
    receive
        {'DOWN', Ref, process, Helper, normal} -> Buf;
        {'DOWN', Ref, process, Helper, Reason} -> erlang:error({scan_helper, Reason})
    end.

put_all(_Buf, []) -> ok;
put_all(_Buf, {error, enomem} = Error) -> erlang:error({scan_buffer, Error});
put_all(Buf, List) -> put_all(Buf, ?NIF:scan_buf_put(Buf, List)).

%% Slices: take Size ids, visit them, measure, yield, adapt Size to ~0.5 ms.
%% Counts slices, CPU ns and the longest slice's wall ns.
slices(Buf, Size, Visit, W, {Slices, Cpu, Max} = Acc) ->
    Sched = erlang:system_info(scheduler_id),
    C0 = ?NIF:scan_thread_cpu(),
    T0 = erlang:monotonic_time(nanosecond),
    case ?NIF:scan_buf_take(Buf, Size) of
        [] ->
            {W, Acc};
        Ids ->
            W1 = Visit(Ids, W),
            Wall = erlang:monotonic_time(nanosecond) - T0,
            SliceCpu = case erlang:system_info(scheduler_id) of
                           Sched -> ?NIF:scan_thread_cpu() - C0;
                           _ -> Wall
                       end,
            account(Wall),
            slices(Buf, adapt(Size, Wall), Visit, W1,
                   {Slices + 1, Cpu + SliceCpu, max(Max, Wall)})
    end.

%% Yields after a slice, having charged it to the scheduler at the rate of a
%% full timeslice per ?CHARGE_NS. A scheduler reads the clock (and fires due
%% timers) only once it has run about a timeslice of reductions, and
%% process_info/2 costs a reduction or two whatever its time: uncharged,
%% slices of process_info calls delayed other processes' timers by whole
%% milliseconds (a 1 ms pinger saw 3 ms gaps). Charged at a timeslice per
%% millisecond, timers could still fire up to a millisecond late; at one per
%% half millisecond the scheduler reads the clock at least that often while
%% the scan runs. The scan's NIFs charge their own time at the same rate.
account(WallNs) ->
    erlang:bump_reductions(max(1, min(?SLICE_REDS, WallNs * ?SLICE_REDS div ?CHARGE_NS))),
    erlang:yield().

adapt(Size, Wall) when Wall =< 0 -> min(?SLICE_MAX, Size * 2);
adapt(Size, Wall) ->
    Next = Size * ?SLICE_NS div Wall,
    max(?SLICE_MIN, min(?SLICE_MAX, min(Size * 2, Next))).

%% Reductions alone (no memory, no histogram, no queue threshold): the queue
%% is not asked, since `reductions' does not walk it.
visitor(#w{keys = Keys, need_mem = false, need_ths = false, qh = undefined,
           lmq = infinity, window = Window})
  when Window =/= undefined, (Keys =:= [] orelse Keys =:= [reductions]) ->
    fun visit_reds/2;
%% Memory with a window: the window keeps each process's memory from the
%% previous pass, asked again only when its reductions or queue changed.
visitor(#w{window = Window, need_mem = true, need_ths = false}) when Window =/= undefined ->
    each(fun visit_cached/2);
visitor(_W) ->
    each(fun visit/2).

%% A slice visitor from a per-id one.
each(Visit) ->
    fun(Ids, W) -> lists:foldl(Visit, W, Ids) end.

%% One NIF call per slice: the window's table is large and its probes miss
%% the cache; the NIF prefetches them a few ids ahead.
visit_reds(Ids, #w{window = Window, tr = T, gone = Gone} = W) ->
    Values = [reductions(P) || P <- Ids],
    case ?NIF:scan_window_reds(Window, T, Ids, Values) of
        {G, _Floor} when T =:= undefined -> W#w{gone = Gone + G};
        {G, Floor} -> W#w{gone = Gone + G, fr = Floor}
    end.

reductions(P) ->
    case erlang:process_info(P, reductions) of
        {reductions, R} -> R;
        undefined -> undefined
    end.

%% With a window, memory is the costly item (on OTP 25 the target answers it
%% through a signal round trip, about 10x a local item), and it cannot have
%% changed while a process neither ran nor got a message: reductions and
%% queue length equal to what the previous pass recorded (after its own
%% memory request, which counts a few reductions) reuse the memory kept
%% then. Everything that changes memory (running, a message, a link or
%% monitor signal, a GC request) changes one of the two, except
%% `erlang:suspend_process/1' (a suspend monitor, tens of bytes).
visit_cached(P, #w{skip = Skip, window = Window} = W) ->
    case erlang:process_info(P, [message_queue_len, reductions]) of
        [{message_queue_len, Q}, {reductions, R}] when Q >= Skip ->
            note_window(P, Q, skipped, R, offer_queue(P, Q, W#w{skipped = W#w.skipped + 1}));
        [{message_queue_len, Q}, {reductions, R}] ->
            W1 = offer_queue(P, Q, W),
            case ?NIF:scan_window_cached(Window, P, R, Q) of
                none -> ask_memory(P, Q, W1);
                M -> note_window(P, Q, M, R, offer_memory(P, M, W1))
            end;
        undefined ->
            W#w{gone = W#w.gone + 1}
    end.

%% Memory, then reductions again: the request itself counted some.
ask_memory(P, Q, W) ->
    case memory(P) of
        {memory, M} ->
            case erlang:process_info(P, reductions) of
                {reductions, R} -> note_window(P, Q, M, R, offer_memory(P, M, W));
                undefined -> W#w{gone = W#w.gone + 1}
            end;
        undefined ->
            W#w{gone = W#w.gone + 1}
    end.

%% A process's memory: a signal round trip on OTP 25 (the target answers
%% it), charged at ?ASK_REDS reductions, about what its few microseconds are
%% worth at account/1's rate (see there why charging matters to others).
memory(P) ->
    erlang:bump_reductions(?ASK_REDS),
    erlang:process_info(P, memory).

offer_memory(P, M, #w{tm = T, fm = F, mh = H} = W) ->
    _ = hist_add(H, M),
    case T =/= undefined andalso M > F of
        true -> W#w{fm = ?NIF:scan_topk_add(T, P, M)};
        false -> W
    end.

%% Records reductions, flags, queue and memory (or `skipped') in the window.
note_window(P, Q, M, R, #w{window = Window} = W) ->
    windowed(P, Q, M, ?NIF:scan_window_update(Window, P, R, flags(Q, M, W), Q, M), W).

%% The threshold flags of queue Q and memory M (or `skipped').
flags(Q, M, W) ->
    flag(Q, W#w.lmq, ?FLAG_QUEUE) bor flag(M, W#w.lmem, ?FLAG_MEMORY).

%% Offers the window's reductions delta and notes the thresholds it reports
%% risen.
windowed(P, _Q, _M, D, #w{tr = T, fr = F} = W) when is_integer(D) ->
    offer_reds(P, D, T, F, W);
windowed(P, Q, M, {D, Risen}, #w{tr = T, fr = F} = W) when is_integer(D) ->
    offer_reds(P, D, T, F, crossed(P, Risen, Q, M, W)).

%% The hot path: in the common case (nothing enters a top-K, no histogram)
%% the state is returned unchanged, so nothing is allocated per process
%% beyond what process_info/2 returns.
visit(P, #w{skip = Skip} = W) ->
    case erlang:process_info(P, message_queue_len) of
        {message_queue_len, Q} when Q >= Skip ->
            reds(P, Q, skipped, offer_queue(P, Q, W#w{skipped = W#w.skipped + 1}));
        {message_queue_len, Q} ->
            measure(P, Q, offer_queue(P, Q, W));
        undefined ->
            W#w{gone = W#w.gone + 1}
    end.

measure(P, Q, #w{need_mem = false} = W) ->
    reds(P, Q, 0, ths(P, W));
measure(P, Q, W) ->
    case memory(P) of
        {memory, M} ->
            reds(P, Q, M, ths(P, offer_memory(P, M, W)));
        undefined ->
            W#w{gone = W#w.gone + 1}
    end.

offer_queue(P, Q, #w{tq = T, fq = F, qh = H} = W) ->
    _ = hist_add(H, Q),
    case T =/= undefined andalso Q > F of
        true -> W#w{fq = ?NIF:scan_topk_add(T, P, Q)};
        false -> W
    end.

hist_add(undefined, _) -> ok;
hist_add(H, V) -> ?NIF:scan_hist_add(H, V).

ths(_P, #w{need_ths = false} = W) -> W;
ths(P, #w{tt = T, ft = F} = W) ->
    case erlang:process_info(P, total_heap_size) of
        {total_heap_size, V} when V > F -> W#w{ft = ?NIF:scan_topk_add(T, P, V)};
        _ -> W
    end.

%% M is the memory, or `skipped' (then no memory flag: a skipped process is
%% not judged on memory, and a memory crossing is re-armed).
reds(_P, _Q, _M, #w{need_reds = false} = W) -> W;
reds(P, Q, M, #w{window = Window, tr = T, fr = F} = W) ->
    case erlang:process_info(P, reductions) of
        {reductions, R} when Window =:= undefined ->
            offer_reds(P, R, T, F, W);
        {reductions, R} ->
            windowed(P, Q, M, ?NIF:scan_window_update(Window, P, R, flags(Q, M, W)), W);
        undefined -> W
    end.

flag(V, Threshold, Bit) when is_integer(V), V >= Threshold -> Bit;
flag(_, _, _) -> 0.

offer_reds(P, D, T, F, W) when T =/= undefined, D > F -> W#w{fr = ?NIF:scan_topk_add(T, P, D)};
offer_reds(_P, _D, _T, _F, W) -> W.

crossed(P, Risen, Q, M, W) ->
    W1 = case Risen band ?FLAG_QUEUE of
             0 -> W;
             _ -> note(long_message_queue, {long_message_queue, P, Q}, W)
         end,
    case Risen band ?FLAG_MEMORY of
        0 -> W1;
        _ -> note(large_memory, {large_memory, P, M}, W1)
    end.

note(Kind, Crossing, #w{ncross = Counts, crossings = Cs, dropped = D} = W) ->
    case maps:get(Kind, Counts, 0) of
        C when C >= ?MAX_CROSSINGS -> W#w{dropped = D + 1};
        C -> W#w{ncross = Counts#{Kind => C + 1}, crossings = [Crossing | Cs]}
    end.

us(Native) -> erlang:convert_time_unit(Native, native, microsecond).

%% ---------------------------------------------------------------- ports

-record(pw, {tops :: [{port_key(), reference(), integer()}],
             window :: reference() | undefined,
             busy :: pos_integer() | infinity,
             scanned = 0 :: non_neg_integer(),
             gone = 0 :: non_neg_integer(),
             crossings = [] :: [crossing()],
             ncross = #{} :: #{atom() => non_neg_integer()},
             dropped = 0 :: non_neg_integer()}).

%% @doc One pass over every port: `port_info/2' of each key asked (one item
%% per call; `queue_size' always, for the busy threshold).
-spec ports(port_spec()) -> port_result().
ports(#{keys := Keys, n := N} = Spec) ->
    Start = erlang:monotonic_time(),
    Buf = fill(fun erlang:ports/0, erlang:system_info(port_count)),
    #{size := Size} = ?NIF:scan_buf_info(Buf),
    Window = case maps:get(window, Spec, undefined) of
                 undefined -> undefined;
                 Win -> window_or_none(Win, window_begin(Win, Size, Spec))
             end,
    W0 = #pw{tops = [{K, ?NIF:scan_topk_new(N), -1} || K <- Keys], window = Window,
             busy = maps:get(busy_port_queue, Spec, infinity)},
    {W, {_Slices, Cpu, _MaxSlice}} = slices(Buf, ?SLICE_FIRST, each(fun visit_port/2), W0,
                                           {0, 0, 0}),
    ok = ?NIF:scan_buf_release(Buf),
    #{tops => maps:from_list([{K, ?NIF:scan_topk_list(T)} || {K, T, _} <- W#pw.tops]),
      scanned => W#pw.scanned, gone => W#pw.gone,
      duration_us => us(erlang:monotonic_time() - Start), cpu_us => Cpu div 1000,
      crossings => lists:reverse(W#pw.crossings), crossings_dropped => W#pw.dropped,
      warnings => [window_unavailable("ports") || Window =:= undefined,
                                                  maps:is_key(window, Spec)]}.

window_or_none(Win, Gen) when is_integer(Gen) -> Win;
window_or_none(_Win, {error, enomem}) -> undefined.

visit_port(P, W) ->
    case erlang:port_info(P, queue_size) of
        {queue_size, Q} -> port_tops(P, Q, W#pw.tops, [], busy(P, Q, W));
        undefined -> W#pw{gone = W#pw.gone + 1}
    end.

busy(_P, _Q, #pw{window = undefined} = W) -> W#pw{scanned = W#pw.scanned + 1};
busy(P, Q, #pw{window = Win, busy = B} = W) ->
    W1 = W#pw{scanned = W#pw.scanned + 1},
    case ?NIF:scan_window_update(Win, P, 0, flag(Q, B, ?FLAG_BUSY)) of
        {_, _Risen} -> note_port({busy, P, Q}, W1);
        _ -> W1
    end.

note_port(Crossing, #pw{ncross = Counts, crossings = Cs, dropped = D} = W) ->
    case maps:get(busy, Counts, 0) of
        C when C >= ?MAX_CROSSINGS -> W#pw{dropped = D + 1};
        C -> W#pw{ncross = Counts#{busy => C + 1}, crossings = [Crossing | Cs]}
    end.

port_tops(_P, _Q, [], Acc, W) -> W#pw{tops = lists:reverse(Acc)};
port_tops(P, Q, [{Key, T, F} | Rest], Acc, W) ->
    case port_value(P, Key, Q) of
        V when is_integer(V), V > F -> port_tops(P, Q, Rest, [{Key, T, ?NIF:scan_topk_add(T, P, V)} | Acc], W);
        _ -> port_tops(P, Q, Rest, [{Key, T, F} | Acc], W)
    end.

port_value(_P, queue_size, Q) -> Q;
port_value(P, Key, _Q) ->
    case erlang:port_info(P, Key) of
        {Key, V} -> V;
        undefined -> undefined
    end.
