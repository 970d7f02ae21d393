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
%% alone. An idle node therefore costs no Erlang work at all between
%% samples.
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
%% `duration' (native units the gate was closed); metadata `reason' (`none')
%% and `closed_reason'.</li>
%% </ul>
-module(beamprof_gate).
-behaviour(gen_server).

-include("beamprof_doc.hrl").
?MODULEDOC("Owner of the C load gate thread; turns gate flips into events.").

-export([start_link/1, refresh/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(state, {config :: beamprof_config:config(),
                measuring = false :: boolean(),
                closed_at :: integer() | undefined,
                closed_reason = none :: term()}).

-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Hands the C sampler thread the configuration again, starting it if
%% it is not running (after the NIF library was reloaded, say) and telling
%% it how many schedulers are online now. Asynchronous.
-spec refresh() -> ok.
refresh() ->
    gen_server:cast(?MODULE, refresh).

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
    {noreply, State#state{measuring = false}};
handle_info({beamprof_gate, closed, Reason, Ns}, State) ->
    Time = erlang:convert_time_unit(Ns, nanosecond, native),
    #{source := Source} = beamprof_nif:gate_info(),
    {Kind, Ratio} = reason(Reason),
    ok = beamprof_events:emit([gate, closed], #{monotonic_time => Time, ratio => Ratio},
                              #{reason => Reason, kind => Kind, source => Source}),
    {noreply, State#state{closed_at = Time, closed_reason = Reason}};
handle_info({beamprof_gate, open, _Reason, Ns}, #state{closed_at = ClosedAt} = State) ->
    Time = erlang:convert_time_unit(Ns, nanosecond, native),
    Duration = case ClosedAt of undefined -> 0; _ -> Time - ClosedAt end,
    ok = beamprof_events:emit([gate, open], #{monotonic_time => Time, duration => Duration},
                              #{reason => none, closed_reason => State#state.closed_reason}),
    {noreply, State#state{closed_at = undefined, closed_reason = none}};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    ok = beamprof_nif:sampler_stop(),
    _ = erlang:system_flag(scheduler_wall_time, false),
    ok.

start_thread(Config) ->
    beamprof_nif:sampler_start(beamprof_config:nif_config(Config), self()).

reason({Kind, Ratio}) -> {Kind, Ratio};
reason(none) -> {none, 0.0}.
