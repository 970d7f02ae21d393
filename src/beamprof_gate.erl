%% @doc The load gate's owner: starts and stops the C sampler thread that
%% keeps the gate current, answers its questions, and turns its flips into
%% events.
%%
%% The C thread decides alone while the scheduler threads' demand (CPU time
%% plus time runnable but waiting for a CPU) is below the gate's mark, since
%% utilization can only be lower. When demand reaches the mark it cannot
%% tell real work from busy-wait spinning, so it sends this process
%% `{beamprof_gate_ping, T}'; this process measures the normal schedulers'
%% utilization from `scheduler_wall_time' over half a tick and answers with
%% `beamprof_nif:report_utilization/1'. No answer within a tick means the
%% Erlang side is starved, and then the C thread closes the gate on demand
%% alone. Besides, the C thread pings this process at least every
%% `heartbeat' (default 1 s) whatever its demand reads: a scheduler blocked in
%% the kernel (a blocking NIF, page faults) is busy for `scheduler_wall_time'
%% while its thread's demand reads 0, and a fresh answer above demand decides
%% the gate (`source => erlang'). The cost on an idle node is that
%% heartbeat: one `scheduler_wall_time' reading per second.
%%
%% A blind C thread (it sees no normal scheduler thread: no readable
%% `/proc/self/task', thread names not matched, out of file descriptors) has
%% no demand figure at all. It then pings every tick and the gate runs on the
%% answers alone (`source => erlang'); a ping unanswered for a tick means the
%% Erlang side is starved, every scheduler busy, and the figure is 1.0
%% (`source => starved'). `info/0' (`beamprof:gate_info/0') says `blind =>
%% true' with a `gate_blind' warning, as do `beamprof:snapshot/0', the header
%% of `beamprof:top/0' and the gate events' metadata; this process logs it
%% once when it starts and once when it ends.
%%
%% When beamprof is not running, the gate reads `open' and `info/0' says
%% `reason => not_running', `running => false'.
%%
%% The gate itself lives in C (one atomic word): `beamprof:gate/0' reads it
%% in tens of nanoseconds and a flip touches nothing global in the VM. The
%% C thread sends this process `{beamprof_gate, open | closed, Reason, Ns}'
%% when the gate flips, and this process emits:
%%
%% <ul>
%% <li>`[beamprof, gate, closed]': measurements `monotonic_time' (native
%% units, when it closed) and `ratio' (the figure that closed it); metadata
%% `reason' (`{scheduler, Ratio}' or `{memory, Ratio}'), `kind' (`scheduler'
%% or `memory') and `source' (`erlang' when the scheduler figure came from
%% `scheduler_wall_time', `os_cpu' when the C thread's demand figure decided,
%% which at the mark means the Erlang side was starved).</li>
%% <li>`[beamprof, gate, open]': measurements `monotonic_time' and
%% `duration' (native units the gate was closed); metadata `reason' (`none'),
%% `closed_reason', `blind' and `warnings'.</li>
%% </ul>
-module(beamprof_gate).
-behaviour(gen_server).

-export([start_link/1, refresh/0, info/0, warnings/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(state, {config :: beamprof_config:config(),
                measuring = false :: boolean(),
                closed_at :: integer() | undefined,
                closed_reason = none :: term(),
                blind = false :: boolean()}).

-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Hands the C sampler thread the configuration again, starting it if
%% it is not running (after the NIF library was reloaded, say) and telling
%% it how many schedulers are online now. Asynchronous.
-spec refresh() -> ok.
refresh() ->
    gen_server:cast(?MODULE, refresh).

%% @doc The gate with its reason and how it is decided (`beamprof:gate_info/0'):
%% `state' (`open' | `closed'), `reason' (`none', `{scheduler, Ratio}',
%% `{memory, Ratio}', or `not_running' when beamprof is not running),
%% `source' (where the last scheduler figure came from: `os_cpu', `erlang'
%% (`scheduler_wall_time'), `starved', `none'), `running', `changed_at'
%% (Erlang monotonic ns of the last flip), `blind' (the C thread sees no
%% scheduler thread), `heartbeat_ms', `pings' (asked of the Erlang side so
%% far), `reported_at' (Erlang monotonic ns of the last answer, or
%% `undefined') and `warnings' (`gate_blind' when blind).
-spec info() -> map().
info() ->
    Info = beamprof_nif:gate_info(),
    Info#{warnings => warnings(Info)}.

%% @doc The warnings a `beamprof_nif:gate_info/0' map calls for.
-spec warnings(map()) -> [beamprof_warnings:warning()].
warnings(#{blind := true}) ->
    [beamprof_warnings:new(gate_blind, <<"the gate's C thread sees no scheduler thread "
                                         "(/proc/self/task unreadable or names not matched); "
                                         "the gate runs on scheduler_wall_time">>)];
warnings(_) ->
    [].

%% @private
-spec init(beamprof_config:config()) -> {ok, #state{}} | {stop, term()}.
init(Config) ->
    process_flag(trap_exit, true),
    _ = erlang:system_flag(scheduler_wall_time, true),
    case start_thread(Config) of
        ok -> {ok, #state{config = Config}};
        {error, Reason} -> {stop, {sampler_thread, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, unknown_call}, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(refresh, #state{config = Config} = State) ->
    _ = start_thread(Config),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({beamprof_gate_ping, _Ns}, #state{measuring = false, config = #{tick := Tick}} = State) ->
    _ = erlang:send_after(max(1, Tick div 2), self(), {measure, beamprof_vm:normal_active()}),
    {noreply, State#state{measuring = true}};
handle_info({beamprof_gate_ping, _Ns}, State) ->
    {noreply, State};
handle_info({measure, Before}, #state{config = Config} = State) ->
    Utilization = beamprof_vm:normal_utilization(Before, beamprof_vm:normal_active()),
    _ = case beamprof_nif:report_utilization(Utilization) of
            ok -> ok;
            not_running -> start_thread(Config)
        end,
    {noreply, note_blind(State#state{measuring = false})};
handle_info({beamprof_gate, closed, Reason, Ns}, State) ->
    Time = erlang:convert_time_unit(Ns, nanosecond, native),
    #{source := Source, blind := Blind} = Info = beamprof_nif:gate_info(),
    {Kind, Ratio} = reason(Reason),
    ok = beamprof_events:emit([gate, closed], #{monotonic_time => Time, ratio => Ratio},
                              #{reason => Reason, kind => Kind, source => Source,
                                blind => Blind, warnings => warnings(Info)}),
    {noreply, State#state{closed_at = Time, closed_reason = Reason}};
handle_info({beamprof_gate, open, _Reason, Ns}, #state{closed_at = ClosedAt} = State) ->
    Time = erlang:convert_time_unit(Ns, nanosecond, native),
    Duration = case ClosedAt of undefined -> 0; _ -> Time - ClosedAt end,
    #{blind := Blind} = Info = beamprof_nif:gate_info(),
    ok = beamprof_events:emit([gate, open], #{monotonic_time => Time, duration => Duration},
                              #{reason => none, closed_reason => State#state.closed_reason,
                                blind => Blind, warnings => warnings(Info)}),
    {noreply, State#state{closed_at = undefined, closed_reason = none}};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    ok = beamprof_nif:sampler_stop(),
    _ = erlang:system_flag(scheduler_wall_time, false),
    ok.

%% Logs once when the C thread turns blind and once when it sees again.
note_blind(#state{blind = Was} = State) ->
    case beamprof_nif:gate_info() of
        #{blind := Was} -> State;
        #{blind := true} = Info ->
            [logger:warning("beamprof: ~ts", [M]) || #{message := M} <- warnings(Info)],
            State#state{blind = true};
        #{blind := false} ->
            logger:notice("beamprof: the gate's C thread sees the scheduler threads again"),
            State#state{blind = false}
    end.

start_thread(Config) ->
    beamprof_nif:sampler_start(beamprof_config:nif_config(Config), self()).

reason({Kind, Ratio}) -> {Kind, Ratio};
reason(none) -> {none, 0.0}.
