%% @doc beamprof: profiling and load sampling for the Erlang VM.
%%
%% This is the module a person types at the shell (`beamprof:top().') and
%% the API an application calls. From Elixir it is `:beamprof', or the
%% `Beamprof' facade.
%%
%% <ul>
%% <li>`start/0,1', `stop/0': the application: a C sampler thread that keeps
%% the load gate current every `tick' (100 ms), and an Erlang sampler
%% process that emits the VM's figures every `interval' (1 s).</li>
%% <li>`gate/0': may I profile now? One atomic read in C, tens of
%% nanoseconds: safe on any hot path. `gate_info/0' says why.</li>
%% <li>`snapshot/0': the latest sample as a map; `top/0' prints it.</li>
%% <li>`attach/4', `attach_many/4', `detach/1', `list_handlers/1': event
%% handlers, telemetry's contract; forwarded to telemetry when it is
%% loaded.</li>
%% </ul>
%%
%% Costs (see the README, "Cost and scheduler use"): the C thread wakes 10
%% times a second and reads each normal scheduler thread's schedstat and two
%% small /proc files; only when the schedulers' demand reaches the gate's
%% mark does it ask an Erlang process for `scheduler_wall_time'; the Erlang
%% sampler reads the whole VM (`erlang:memory/0', counts, statistics) once
%% per interval.
-module(beamprof).

-include("beamprof_doc.hrl").
?MODULEDOC("beamprof: profiling and load sampling for the Erlang VM.").

-export([start/0, start/1, stop/0, snapshot/0, top/0, gate/0, gate_info/0,
         attach/4, attach_many/4, detach/1, list_handlers/1]).
-export([top/1]).
-export([top/2, top_ports/2]).

-type event_name() :: [atom(), ...].
-type handler_fun() :: fun((event_name(), map(), map(), term()) -> any()).

%% @doc Starts beamprof with the application environment's options (or the
%% defaults). Returns `ok' when it is running.
-spec start() -> ok | {error, term()}.
start() ->
    case running() of
        true -> ok;
        false ->
            ok = beamprof_config:clear_start_options(),
            ensure_started()
    end.

%% @doc Starts beamprof with `Options' over the application environment.
%% Options: `interval' (ms), `tick' (ms), `scheduler_high', `scheduler_low',
%% `memory_high', `memory_low' (ratios), `reopen_ticks', `memory_limit'
%% (bytes or `auto'), `event_prefix', `vm_events'. An unknown or ill-typed
%% option raises `{badarg, Message}' naming it; if beamprof is already
%% running, `{error, already_started}'.
-spec start(Options) -> ok | {error, term()} when Options :: beamprof_config:options().
start(Options) ->
    case running() of
        true -> {error, already_started};
        false ->
            ok = beamprof_config:set_start_options(Options),
            ensure_started()
    end.

ensure_started() ->
    case application:ensure_all_started(beamprof) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

running() ->
    lists:keymember(beamprof, 1, application:which_applications()).

%% @doc Stops beamprof: the sampler thread is joined, the
%% `scheduler_wall_time' flag left as it was found.
-spec stop() -> ok.
stop() ->
    case application:stop(beamprof) of
        ok -> ok;
        {error, {not_started, beamprof}} -> ok
    end.

%% @doc The latest sample (at most one interval old): schedulers, run
%% queues, memory, counts, rates, the gate and `system_monitor'
%% (`beamprof_monitor:status/0'). See the README for the keys.
-spec snapshot() -> beamprof_vm:sample() | {error, not_started}.
snapshot() ->
    case beamprof_sampler:snapshot() of
        {error, _} = Error -> Error;
        Sample -> Sample#{system_monitor => beamprof_monitor:status()}
    end.

%% @doc Prints one screen (`beamprof_top:render/3'): scheduler utilization
%% per scheduler and in total, memory by kind and against the limit, the
%% gate and the system monitor, and the top 5 processes by message queue, by
%% memory and by reductions over the scan's window.
-spec top() -> ok | {error, not_started}.
top() ->
    case screen() of
        {error, _} = Error -> Error;
        Text -> beamprof_top:print(Text)
    end.

%% @doc `top(live)': prints `top()' in place every second until Enter (or q
%% and Enter) is pressed. A shell reads whole lines, so a single key cannot
%% stop it.
-spec top(live) -> ok | {error, not_started}.
top(live) ->
    case snapshot() of
        {error, _} = Error -> Error;
        _ -> beamprof_top:live(fun() -> case screen() of
                                             {error, _} -> "beamprof is not running\n";
                                             Text -> Text
                                         end
                               end, #{})
    end.

screen() ->
    case snapshot() of
        {error, _} = Error -> Error;
        Sample -> beamprof_top:render(Sample, top_tables(5), #{})
    end.

%% The three tables of one scan. A scan that fails leaves the VM's figures
%% on the screen and says why the tables are missing.
top_tables(N) ->
    try beamprof_scan:top_all(N)
    catch Class:Reason -> {error, {Class, Reason}}
    end.

%% @doc The `N' processes with the largest `Key' (`message_queue_len',
%% `memory', `reductions' over a window, `total_heap_size') as rows; see
%% `beamprof_scan:top/3'. Yields every millisecond; its heap stays flat.
-spec top(Key :: beamprof_scan:key(), N :: 1..10000) -> [beamprof_scan_rows:row()].
top(Key, N) ->
    beamprof_scan:top(Key, N).

%% @doc The `N' ports with the largest `Key' (`queue_size', `memory',
%% `input', `output') as rows; see `beamprof_scan:top_ports/3'.
-spec top_ports(Key :: beamprof_scan:port_key(), N :: 1..10000) ->
          [beamprof_scan_rows:port_row()].
top_ports(Key, N) ->
    beamprof_scan:top_ports(Key, N).

%% @doc `open' when profiling is allowed now, `closed' when the node is too
%% busy or too short of memory. `open' when beamprof is not running.
-spec gate() -> open | closed.
gate() ->
    beamprof_nif:gate().

%% @doc The gate with its reason: `#{state, reason, source, running,
%% changed_at}'; `reason' is `none', `{scheduler, Ratio}' or
%% `{memory, Ratio}'.
-spec gate_info() -> map().
gate_info() ->
    beamprof_nif:gate_info().

%% @doc Attaches `Fun' to `EventName' under the unique `Id'.
-spec attach(Id, EventName, Fun, Config) -> ok | {error, already_exists | not_started} when
      Id :: term(), EventName :: event_name(), Fun :: handler_fun(), Config :: term().
attach(Id, EventName, Fun, Config) ->
    beamprof_events:attach(Id, EventName, Fun, Config).

%% @doc Attaches `Fun' to every name of `EventNames' under the unique `Id'.
-spec attach_many(Id, EventNames, Fun, Config) -> ok | {error, already_exists | not_started} when
      Id :: term(), EventNames :: [event_name()], Fun :: handler_fun(), Config :: term().
attach_many(Id, EventNames, Fun, Config) ->
    beamprof_events:attach_many(Id, EventNames, Fun, Config).

%% @doc Detaches the handler `Id' from all its events.
-spec detach(Id) -> ok | {error, not_found | not_started} when Id :: term().
detach(Id) ->
    beamprof_events:detach(Id).

%% @doc The handlers whose event names start with `Prefix'.
-spec list_handlers(Prefix) -> [map()] when Prefix :: [atom()].
list_handlers(Prefix) ->
    beamprof_events:list_handlers(Prefix).
