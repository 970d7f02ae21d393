%% @doc The VM sampler: a supervised process that emits the VM's figures.
%%
%% Every `interval' (default 1 s) it reads the whole VM and emits:
%%
%% <ul>
%% <li>`[beamprof, vm, sample]' (see `beamprof_vm:sample_event/1');</li>
%% <li>`[beamprof, scheduler, utilization]' (`beamprof_vm:utilization_event/1');</li>
%% <li>when `vm_events' is on, telemetry_poller's `[vm, memory]',
%% `[vm, total_run_queue_lengths]' and `[vm, system_counts]'.</li>
%% </ul>
%%
%% It turns the `scheduler_wall_time' flag on for itself; the flag is
%% counted per process by the VM, so turning it off again in `terminate/2'
%% (or dying) leaves it as it was for everyone else. It also has the C
%% sampler thread restarted if it finds it stopped (after a reload of the NIF
%% library) or told if the number of schedulers online changed.
%%
%% At start it checks the C side's scheduler thread table against
%% `erlang:system_info/1' (`beamprof_vm:thread_warnings/0'): a kind of
%% scheduler whose threads were not all found is logged once, here, and
%% stays in every sample's `warnings' (snapshot and event metadata). A blind
%% gate (`gate_blind', see `beamprof_gate') is added to the samples taken
%% while it lasts.
-module(beamprof_sampler).
-behaviour(gen_server).

-export([start_link/1, snapshot/0, stats/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(state, {config :: beamprof_config:config(),
                next_emit :: integer(),
                from :: beamprof_vm:reading(),
                last :: beamprof_vm:sample() | undefined,
                online :: pos_integer(),
                warnings :: [beamprof_warnings:warning()],
                busy = 0 :: non_neg_integer(),
                emits = 0 :: non_neg_integer()}).

-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc The latest sample; before the first interval has passed, a sample
%% over the time since the sampler started.
-spec snapshot() -> beamprof_vm:sample() | {error, not_started}.
snapshot() ->
    call(snapshot).

%% @doc What the sampler has cost so far: `busy_ns' is the wall time spent
%% making and emitting samples (an upper bound of its CPU time: it includes
%% waiting for every scheduler to answer `scheduler_wall_time').
-spec stats() -> #{busy_ns := non_neg_integer(), emits := non_neg_integer()}
                 | {error, not_started}.
stats() ->
    call(stats).

call(Request) ->
    try gen_server:call(?MODULE, Request, 5000)
    catch exit:{noproc, _} -> {error, not_started}
    end.

%% @private
-spec init(beamprof_config:config()) -> {ok, #state{}}.
init(#{interval := Interval} = Config) ->
    process_flag(trap_exit, true),
    _ = erlang:system_flag(scheduler_wall_time, true),
    Now = erlang:monotonic_time(millisecond),
    Warnings = beamprof_vm:thread_warnings(),
    _ = [logger:warning("beamprof: ~ts", [M]) || #{message := M} <- Warnings],
    {ok, schedule(#state{config = Config, next_emit = Now + Interval,
                         from = beamprof_vm:read(),
                         online = erlang:system_info(schedulers_online),
                         warnings = Warnings})}.

%% @private
-spec handle_call(snapshot | stats, gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(snapshot, _From, #state{last = undefined, from = From} = State) ->
    {reply, sample(From, beamprof_vm:read(), State), State};
handle_call(snapshot, _From, #state{last = Last} = State) ->
    {reply, Last, State};
handle_call(stats, _From, #state{busy = Busy, emits = Emits} = State) ->
    {reply, #{busy_ns => erlang:convert_time_unit(Busy, native, nanosecond),
              emits => Emits}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({timeout, _Ref, tick}, State) ->
    Start = erlang:monotonic_time(),
    State1 = emit(State),
    {noreply, schedule(State1#state{busy = State1#state.busy + erlang:monotonic_time() - Start})};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    _ = erlang:system_flag(scheduler_wall_time, false),
    ok.

emit(#state{config = #{interval := Interval} = Config, from = From, emits = Emits} = State) ->
    Reading = beamprof_vm:read(),
    Sample = sample(From, Reading, State),
    emit(Sample, Config),
    Online = erlang:system_info(schedulers_online),
    _ = case beamprof_nif:sampler_info() of
            #{running := true} when Online =:= State#state.online -> ok;
            _ -> beamprof_gate:refresh()
        end,
    Now = erlang:monotonic_time(millisecond),
    State#state{from = Reading, last = Sample, emits = Emits + 1, online = Online,
                next_emit = next(State#state.next_emit, Interval, Now)}.

%% The sample with the gate's info; its warnings are the thread check's and
%% the gate's (`gate_blind'), the recorder's (`recorder_unavailable') and
%% the continuous profiler's (`continuous_sink_failing',
%% `continuous_unavailable').
sample(From, Reading, #state{warnings = Warnings}) ->
    Gate = beamprof_gate:info(),
    Own = beamprof_warnings:merge(Warnings, maps:get(warnings, Gate)),
    Others = beamprof_warnings:merge(beamprof_recorder:warnings(),
                                     beamprof_continuous:warnings()),
    (beamprof_vm:sample(From, Reading, Gate))#{
        warnings => beamprof_warnings:merge(Own, Others)}.

%% The next deadline on the fixed grid; a late tick skips what it missed
%% rather than firing a burst.
next(Deadline, Period, Now) when Deadline + Period > Now -> Deadline + Period;
next(_Deadline, Period, Now) -> Now + Period.

schedule(#state{next_emit = Emit} = State) ->
    _ = erlang:start_timer(Emit, self(), tick, [{abs, true}]),
    State.

emit(Sample, #{vm_events := VmEvents}) ->
    ok = beamprof_recorder:interval(Sample),
    {M, Meta} = beamprof_vm:sample_event(Sample),
    ok = beamprof_events:emit([vm, sample], M, Meta),
    {UM, UMeta} = beamprof_vm:utilization_event(Sample),
    ok = beamprof_events:emit([scheduler, utilization], UM, UMeta),
    case VmEvents of
        true -> lists:foreach(fun({Event, EM, EMeta}) -> beamprof_events:execute(Event, EM, EMeta) end,
                              beamprof_vm:poller_events(Sample));
        false -> ok
    end.
