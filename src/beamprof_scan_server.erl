%% @doc The periodic process and port scan of the beamprof application.
%%
%% Every `scan_interval' (default 10 s), or less often when the CPU budget
%% asks for it (`scan_budget', default 0.01 of one core: the next scan comes
%% no sooner than the last scan's CPU time divided by the budget; that CPU
%% is the larger of the scanner's own and the schedulers' over the pass,
%% since the processes asked answer on their own schedulers), it walks
%% every process and port (see `beamprof_scan_walk') at low priority and
%% emits:
%%
%% <ul>
%% <li>`[beamprof, process, scan]': measurements `scanned', `skipped' (memory
%% not asked: queue of `scan_skip_queue' or more), `gone' (exited during the
%% scan), `duration' and `cpu' (native time units), `ports',
%% `message_queue_len_p50', `_p90', `_p99', `_max' (messages) and
%% `memory_p50', `_p90', `_p99', `_max' (bytes, over the processes whose
%% memory was asked); metadata `trigger' (`periodic' | `on_demand' | `gated'),
%% `window_ms', `generation', `crossings_dropped', `source' (where the pids
%% came from: `ptab_walk', `processes_iterator' or `processes', see
%% `beamprof_enum') and `warnings' (`beamprof_warnings': why the source is a
%% fallback, `[]' when it is not).</li>
%% <li>`[beamprof, process, long_message_queue]' (measurement
%% `message_queue_len') and `[beamprof, process, large_memory]' (`memory',
%% bytes), once when a process reaches the threshold (`long_message_queue',
%% `large_memory'), again only after a scan has seen it below; metadata
%% `pid', `name', `label', `initial_call', `current_function', `threshold',
%% `source => scan'. At most 100 of each kind per scan (the rest counted in
%% `crossings_dropped'). On OTP 27+ the system monitor bridge
%% (`beamprof_monitor') emits the long queue event as it happens, between
%% scans (`source => system_monitor'), and tells this server: a queue it
%% reported since the last scan is not reported again by the next (unless the
%% scan met it first, a narrow race).</li>
%% <li>`[beamprof, port, busy]' (measurement `queue_size', bytes) when a
%% port's queue reaches `busy_port_queue' (default 8192, the VM's default
%% busy mark), re-armed likewise; metadata `port', `name', `owner',
%% `threshold'.</li>
%% </ul>
%%
%% The first pass after start only records reductions (the window's start).
%% It waits for the load gate like every periodic pass: while the gate is
%% closed (`beamprof:gate/0'), periodic passes wait (checked every second)
%% and are counted in `stats/0' as `paused'; only while a flight recording is
%% open, a pass that ranks mailboxes alone (`message_queue_len', no memory
%% asked) still runs at the periodic spacing for the recording's `scan'
%% record (event `trigger' `gated'). Asked by `beamprof_scan:top_all/1'
%% or `top(reductions, N)', it scans at once (whatever the gate: an operator
%% asked), with the reductions window since its previous pass (taking that
%% first pass now if it was not taken), waiting first until that window is at
%% least 500 ms.
%%
%% With `scan_interval => off' there is no periodic pass, no first pass and
%% no window table: `top/2' answers `{error, off}' (`beamprof_scan' then
%% scans in a process of its own, with a window that lives for that call);
%% `scan_now/0' makes the tables on its first call and keeps them.
%%
%% The window tables (two generations of a hash table in C, linear in the
%% process count) are allocated at each pass's start; when that fails the
%% pass goes on without them and says so (`scan_window_unavailable' in the
%% event's and the result's `warnings': reductions not ranked, thresholds not
%% checked). The last pass's `source' and `warnings' are kept for
%% `beamprof:snapshot/0' (`last/0').
-module(beamprof_scan_server).
-behaviour(gen_server).

-export([start_link/1, top/2, stats/0, scan_now/0, reported/1, last/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(state, {config :: map(),
                window :: reference() | undefined,      % made by the first pass
                port_window :: reference() | undefined,
                last_at :: integer() | undefined,   % ms, start of the last pass
                timer :: reference() | undefined,
                scans = 0 :: non_neg_integer(),
                paused = 0 :: non_neg_integer(),
                last_cpu_us = 0 :: non_neg_integer(),
                last_duration_us = 0 :: non_neg_integer(),
                next_ms = 0 :: non_neg_integer(),
                deferred = 0 :: non_neg_integer(),   % on-demand tops waiting for their window
                %% long queues the system monitor reported since the last scan
                reported = #{} :: #{pid() => true}}).

-define(PAUSE_RETRY_MS, 1000).
-define(MIN_WINDOW_MS, 500).    % shortest reductions window an on-demand top answers with
-define(PERCENTILES, [50, 90, 99, 100]).
-define(MAX_REPORTED, 10000).   % long queues remembered between two scans
-define(LAST, beamprof_scan_last). % ETS: the last pass's source and warnings

-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Scans now and returns the rows per key of `Keys' (top `N') with the
%% pass's figures; `{error, not_started}' when the server does not run,
%% `{error, off}' when it runs with `scan_interval => off'.
-spec top([beamprof_scan:key()], 1..10000) -> {ok, map()} | {error, not_started | off}.
top(Keys, N) ->
    call({top, Keys, N}).

%% @doc What the periodic scan has done: scans, scans put off by a closed
%% gate, the last scan's CPU and wall time, the spacing now in force, whether
%% the first pass (the reductions window's start) was taken, and whether the
%% window tables exist.
-spec stats() -> map() | {error, not_started}.
stats() ->
    call(stats).

%% @doc Tells the scan that the system monitor has just reported `Pid''s long
%% message queue: the next scan does not report it again. Returns at once.
-spec reported(pid()) -> ok.
reported(Pid) ->
    gen_server:cast(?MODULE, {reported, Pid}).

%% @doc Runs a periodic-style scan now (events included) and returns `ok'.
-spec scan_now() -> ok | {error, not_started}.
scan_now() ->
    call(scan_now).

%% @doc The last pass's `#{source, warnings}' (where its pids came from, what
%% was degraded), `undefined' before the first pass or when the server does
%% not run. An ETS read: never waits for a pass.
-spec last() -> #{source := beamprof_enum:source(), warnings := [beamprof_warnings:warning()]}
                    | undefined.
last() ->
    try ets:lookup(?LAST, last) of
        [{last, Last}] -> Last;
        [] -> undefined
    catch error:badarg -> undefined
    end.

call(Request) ->
    try gen_server:call(?MODULE, Request, 120000)
    catch exit:{noproc, _} -> {error, not_started}
    end.

%% @private
-spec init(beamprof_config:config()) -> {ok, #state{}}.
init(Config) ->
    _ = ets:new(?LAST, [named_table, protected, {read_concurrency, true}]),
    State = #state{config = Config},
    case interval(Config) of
        off -> {ok, State};
        %% The first pass once the gate is open; it reads open before the C
        %% thread's first tick, so the first look comes two ticks later.
        _ -> {ok, schedule(2 * maps:get(tick, Config, 100), State)}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({top, _Keys, _N}, _From, #state{config = #{scan_interval := off}} = State) ->
    {reply, {error, off}, State};
handle_call({top, _, _} = Top, From, #state{last_at = undefined} = State) ->
    handle_call(Top, From, baseline(State));
handle_call({top, Keys, N}, From, State) ->
    %% A reductions window shorter than ?MIN_WINDOW_MS (just after start, or
    %% right after another pass) would rank noise: the answer waits for it.
    Short = ?MIN_WINDOW_MS - (erlang:monotonic_time(millisecond) - State#state.last_at),
    case lists:member(reductions, Keys) andalso Short > 0 of
        true ->
            _ = erlang:send_after(Short, self(), {deferred_top, Keys, N, From}),
            {noreply, State#state{deferred = State#state.deferred + 1}};
        false ->
            {Result, State1} = scan(Keys, N, on_demand, State),
            {reply, {ok, Result}, State1}
    end;
handle_call(scan_now, _From, State) ->
    {reply, ok, periodic(State)};
handle_call(stats, _From, State) ->
    {reply, #{scans => State#state.scans, paused => State#state.paused,
              last_cpu_us => State#state.last_cpu_us,
              last_duration_us => State#state.last_duration_us,
              spacing_ms => State#state.next_ms,
              first_pass => State#state.last_at =/= undefined,
              window_tables => State#state.window =/= undefined}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({reported, Pid}, #state{reported = Reported} = State)
  when map_size(Reported) < ?MAX_REPORTED ->
    {noreply, State#state{reported = Reported#{Pid => true}}};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({deferred_top, Keys, N, From}, State) ->
    {Result, State1} = scan(Keys, N, on_demand, State#state{deferred = State#state.deferred - 1}),
    gen_server:reply(From, {ok, Result}),
    {noreply, State1};
handle_info({timeout, Ref, scan}, #state{timer = Ref, deferred = Deferred} = State)
  when Deferred > 0 ->
    %% a periodic pass now would cut the window a waiting top was promised
    {noreply, schedule(?MIN_WINDOW_MS, State)};
handle_info({timeout, Ref, scan}, #state{timer = Ref} = State) ->
    case beamprof_nif:gate() of
        closed ->
            Paused = State#state{paused = State#state.paused + 1},
            {noreply, schedule(?PAUSE_RETRY_MS, gated(Paused))};
        open when State#state.last_at =:= undefined ->
            Old = process_flag(priority, low),
            State1 = baseline(State),
            _ = process_flag(priority, Old),
            {noreply, schedule(interval(State1#state.config), State1)};
        open ->
            Old = process_flag(priority, low),
            State1 = periodic(State),
            _ = process_flag(priority, Old),
            {noreply, schedule(spacing(State1), State1)}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

interval(#{scan_interval := Interval}) -> Interval.

%% A periodic pass. While a recording is open it also ranks the top
%% processes by queue, memory and reductions for the recording's `scan'
%% record (beamprof_recorder); otherwise it ranks nothing.
periodic(State) ->
    case beamprof_recorder:scan_keys() of
        {[], _} ->
            {_, State1} = scan([], 1, periodic, State),
            State1;
        {Keys, N} ->
            {Result, State1} = scan(Keys, N, periodic, State),
            ok = beamprof_recorder:scan(Result),
            State1
    end.

%% While the gate is closed and a recording is open, a pass that ranks the
%% mailboxes alone (the cheapest item, no memory asked) for the recording,
%% spaced like periodic passes (the interval, or the CPU budget's spacing):
%% a node saturated for minutes is when a growing mailbox matters most. Its
%% `scan' record says `gate => closed'; its event's `trigger' is `gated'.
gated(#state{last_at = LastAt} = State) ->
    Due = case spacing(State) of
              off -> false;
              Ms -> LastAt =:= undefined orelse
                        erlang:monotonic_time(millisecond) - LastAt >= Ms
          end,
    case Due andalso beamprof_recorder:scan_keys() of
        {[_ | _], N} ->
            Old = process_flag(priority, low),
            {Result, State1} = scan([message_queue_len], N, gated, State),
            _ = process_flag(priority, Old),
            ok = beamprof_recorder:scan(Result#{gate => closed}),
            State1;
        _ ->
            State
    end.

%% The first pass: makes the window tables and records reductions only.
baseline(#state{config = Config} = State0) ->
    #state{window = Window} = State = windows(State0),
    T0 = erlang:monotonic_time(millisecond),
    R = beamprof_scan_walk:processes(
          (walk_opts(Config))#{keys => [], n => 1, window => Window,
                               skip_queue => maps:get(scan_skip_queue, Config)}),
    keep_last(R),
    State#state{last_at = T0}.

windows(#state{window = undefined} = State) ->
    State#state{window = beamprof_nif:scan_window_new(),
                port_window = beamprof_nif:scan_window_new()};
windows(State) ->
    State.

%% Test only: test_window_enomem makes the walk act as if its window table
%% could not be allocated.
walk_opts(#{test_window_enomem := true}) -> #{test_window_enomem => true};
walk_opts(_Config) -> #{}.

keep_last(#{source := Source, warnings := Warnings}) ->
    true = ets:insert(?LAST, {last, #{source => Source, warnings => Warnings}}),
    ok.

%% The next scan: the interval, or later if the last scan's CPU over the
%% budget asks for more room.
spacing(#state{config = #{scan_budget := Budget} = Config, last_cpu_us = Cpu}) ->
    case interval(Config) of
        off -> off;
        Ms -> max(Ms, round(Cpu / 1000 / Budget))
    end.

schedule(off, State) ->
    State#state{timer = undefined};
schedule(Ms, State) ->
    State#state{timer = erlang:start_timer(Ms, self(), scan), next_ms = Ms}.

%% One pass over processes and ports, its events, and rows for Keys.
scan(Keys, N, Trigger, #state{window = undefined} = State) ->
    scan(Keys, N, Trigger, windows(State));
scan(Keys, N, Trigger, #state{config = Config, window = Window} = State) ->
    Skip = maps:get(scan_skip_queue, Config),
    T0 = erlang:monotonic_time(millisecond),
    Vm0 = scheduler_cpu_ns(),
    R0 = beamprof_scan_walk:processes(
          (walk_opts(Config))#{keys => Keys, n => N, skip_queue => Skip, window => Window,
                               histograms => true,
                               long_message_queue => maps:get(long_message_queue, Config),
                               large_memory => maps:get(large_memory, Config)}),
    P = beamprof_scan_walk:ports((walk_opts(Config))#{
                                   keys => [], n => 1, window => State#state.port_window,
                                   busy_port_queue => maps:get(busy_port_queue, Config)}),
    R = R0#{warnings => beamprof_warnings:merge(maps:get(warnings, R0), maps:get(warnings, P))},
    keep_last(R),
    WindowMs = T0 - last_at(State#state.last_at, T0),
    emit(R, P, Trigger, WindowMs, Config, State#state.reported),
    Own = maps:get(cpu_us, R) + maps:get(cpu_us, P),
    %% The scanner's own CPU misses what the scanned processes spend answering
    %% (process_info(P, memory) is a signal P handles on its own scheduler):
    %% the budget counts the schedulers' CPU over the pass when it is larger,
    %% which on a busy node also counts others' work and spaces scans further.
    Cpu = max(Own, (scheduler_cpu_ns() - Vm0) div 1000),
    State1 = State#state{last_at = T0, scans = State#state.scans + 1, last_cpu_us = Cpu,
                         reported = #{},
                         last_duration_us = maps:get(duration_us, R) + maps:get(duration_us, P)},
    {beamprof_scan:result(Keys, R, Skip, WindowMs), State1}.

emit(R, P, Trigger, WindowMs, Config, Reported) ->
    #{histograms := #{message_queue_len := QH, memory := MH}} = R,
    M = maps:merge(percentiles([message_queue_len_p50, message_queue_len_p90,
                                message_queue_len_p99, message_queue_len_max], QH),
                   percentiles([memory_p50, memory_p90, memory_p99, memory_max], MH)),
    ok = beamprof_events:emit(
           [process, scan],
           M#{scanned => maps:get(scanned, R), skipped => maps:get(skipped, R),
              gone => maps:get(gone, R), ports => maps:get(scanned, P),
              duration => native(maps:get(duration_us, R)),
              cpu => native(maps:get(cpu_us, R))},
           #{trigger => Trigger, window_ms => WindowMs, generation => maps:get(generation, R),
             crossings_dropped => maps:get(crossings_dropped, R)
                 + maps:get(crossings_dropped, P),
             source => maps:get(source, R), warnings => maps:get(warnings, R)}),
    lists:foreach(fun(C) -> crossing(C, Config) end,
                  [C || C <- maps:get(crossings, R) ++ maps:get(crossings, P),
                        not reported(C, Reported)]).

reported({long_message_queue, Pid, _}, Reported) -> is_map_key(Pid, Reported);
reported(_Crossing, _Reported) -> false.

%% Measurements Keys (p50, p90, p99, max, the order of ?PERCENTILES) of Hist.
percentiles(Keys, Hist) ->
    maps:from_list(lists:zip(Keys, beamprof_nif:scan_hist_percentiles(Hist, ?PERCENTILES))).

crossing({long_message_queue, Pid, Q}, Config) ->
    process_event(long_message_queue, #{message_queue_len => Q}, Pid,
                  maps:get(long_message_queue, Config));
crossing({large_memory, Pid, M}, Config) ->
    process_event(large_memory, #{memory => M}, Pid, maps:get(large_memory, Config));
crossing({busy, Port, Q}, Config) ->
    beamprof_events:emit([port, busy], #{queue_size => Q},
                         (beamprof_names:port(Port))#{port => Port,
                                                      threshold => maps:get(busy_port_queue, Config)}).

process_event(Kind, Measurements, Pid, Threshold) ->
    Names = beamprof_names:process(Pid),
    beamprof_events:emit([process, Kind], Measurements,
                         Names#{pid => Pid, threshold => Threshold, source => scan}).

native(Us) -> erlang:convert_time_unit(Us, microsecond, native).

%% A pass without an earlier one (scan_now/0 with scan_interval off) has no
%% window: 0 ms.
last_at(undefined, T0) -> T0;
last_at(LastAt, _T0) -> LastAt.

%% CPU time of the normal and dirty CPU scheduler threads, ns (C, one clock
%% read per thread).
scheduler_cpu_ns() ->
    {_, Threads} = beamprof_nif:sched_cpu(),
    lists:sum([Ns || {Type, _, Ns} <- Threads, Type =/= dirty_io]).
