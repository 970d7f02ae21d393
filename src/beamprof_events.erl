%% @doc Events, telemetry-style: the emit side and the user-facing handler calls.
%%
%% An event is `EventName :: [atom(), ...]', `Measurements :: map()', `Metadata ::
%% map()'. `execute/3' runs the handlers attached to exactly that name in the built-in
%% table (`beamprof_handlers'), synchronously in the calling process, and also calls
%% `telemetry:execute/3' when the `telemetry' module is loaded, so its handlers,
%% `telemetry_metrics' and reporters see every beamprof event unchanged. The check is
%% `erlang:function_exported/3' on each call (never catching `undef': that searches the
%% code path, about 3 ms a call). `ensure_telemetry/0', called at application start,
%% loads an available telemetry once.
%%
%% While telemetry is loaded (and started), `attach/4' and `attach_many/4' go to
%% telemetry; handlers attached to the built-in table earlier keep receiving events,
%% since both are dispatched. Otherwise they go to the built-in table, which keeps them
%% while beamprof is not running (`beamprof_handlers'): a handler attached before
%% `beamprof:start/0,1' is installed when beamprof starts, in telemetry if telemetry is
%% loaded by then, else in the built-in table; it stays attached across a stop and a
%% start until `detach/1'. Emitting never fails, running or not.
%%
%% A handler that raises, throws or exits is detached from all its events, an error is
%% logged (handler id, event, kind, reason, stacktrace; metadata `beamprof =>
%% handler_failed' and `handler_id', and no logger domain, so that OTP's default
%% handler prints it in a plain `erl' shell: its filters drop every domain but `[otp]'
%% and `[otp, sasl]') and `[telemetry, handler,
%% failure]' is emitted through the built-in table with measurements `monotonic_time',
%% `system_time' and metadata `event_name', `handler_id', `handler_config', `kind',
%% `reason', `stacktrace' (telemetry's keys). The remaining handlers still run; the
%% emitter never sees the exception.
%%
%% The event prefix (default `[beamprof]') lives in `persistent_term': reading it costs
%% nothing, but `set_prefix/1' with a new value makes the VM scan every process's heap,
%% so it belongs in configuration at start, never on a hot path (the same value is not
%% written again).
%%
%% Cost of `execute/3' (OTP 25.2.3 JIT, 2 cores, median of 100k-call runs, handlers
%% doing nothing): 0 handlers 0.18-0.22 µs, 1 handler 0.25-0.28 µs, 10 handlers
%% 0.77-0.95 µs, the same with or without telemetry loaded (plus telemetry's own cost
%% when it is); 0.3-0.4 µs when the table does not exist (a caught `badarg'). The
%% `function_exported/3' check is about 15 ns. Most of the base cost is the
%% `ets:lookup/2' of a `read_concurrency' bag, which is slower for one reader (110-150
%% ns against 45 ns) and scales with many.
-module(beamprof_events).
-include_lib("kernel/include/logger.hrl").

-export([execute/3, emit/3, prefix/0, set_prefix/1, ensure_telemetry/0,
         attach/4, attach_many/4, detach/1, list_handlers/1, names/0]).

-export_type([event_name/0, event_prefix/0, measurements/0, metadata/0]).

-define(PREFIX_KEY, {beamprof, event_prefix}).
-define(DEFAULT_PREFIX, [beamprof]).
-define(FAILURE_EVENT, [telemetry, handler, failure]).
%% What names/0 lists: the events under the prefix (by emitting module), then the rest.
-define(SUFFIXES,
        [[vm, sample], [scheduler, utilization],                                 % sampler
         [gate, closed], [gate, open],                                           % gate
         [process, scan], [process, long_message_queue], [process, large_memory], % scan
         [port, busy],
         [monitor, long_gc], [monitor, long_schedule], [monitor, large_heap],    % monitor
         [monitor, busy_port], [monitor, busy_dist_port], [monitor, suppressed],
         [profile, start], [profile, stop], [profile, exception],                % profile
         [profile, sample], [profile, slow_operation], [profile, production],
         [profile, memory], [profile, calls], [profile, complete],
         [native, stop],                                                         % native
         [profile, native]]).                                                    % continuous
-define(UNPREFIXED, [[vm, memory], [vm, total_run_queue_lengths], [vm, system_counts],
                     ?FAILURE_EVENT]).
%% Passed as an argument so that neither the compiler nor dialyzer sees a literal call to
%% a module that is optional (dialyzer's `unknown` warning).
-define(TELEMETRY, telemetry).

-type event_name() :: beamprof_handlers:event_name().
-type event_prefix() :: beamprof_handlers:event_prefix().
-type measurements() :: beamprof_handlers:measurements().
-type metadata() :: beamprof_handlers:metadata().
-type handler_id() :: beamprof_handlers:handler_id().
-type handler_function() :: beamprof_handlers:handler_function().
-type handler_config() :: beamprof_handlers:handler_config().
-type handler() :: beamprof_handlers:handler().

%% Emitting

%% @doc Runs the built-in handlers attached to exactly `EventName', then forwards to
%% `telemetry:execute/3' when telemetry is loaded. Always returns `ok'.
-spec execute(EventName, Measurements, Metadata) -> ok when
      EventName :: event_name(), Measurements :: measurements(), Metadata :: metadata().
execute(EventName, Measurements, Metadata) ->
    dispatch(beamprof_handlers:lookup(EventName), EventName, Measurements, Metadata),
    forward(?TELEMETRY, EventName, Measurements, Metadata).

%% @doc `execute(prefix() ++ Suffix, Measurements, Metadata)', after handing the
%% event to the flight recorder (`beamprof_recorder:event/3': a record when a
%% recording is open, one atomic load otherwise).
-spec emit(Suffix, Measurements, Metadata) -> ok when
      Suffix :: [atom()], Measurements :: measurements(), Metadata :: metadata().
emit(Suffix, Measurements, Metadata) ->
    ok = beamprof_recorder:event(Suffix, Measurements, Metadata),
    execute(prefix() ++ Suffix, Measurements, Metadata).

%% @doc The event prefix, `[beamprof]' unless `set_prefix/1' changed it.
-spec prefix() -> Prefix when Prefix :: event_name().
prefix() ->
    persistent_term:get(?PREFIX_KEY, ?DEFAULT_PREFIX).

%% @doc Sets the event prefix. Writes `persistent_term' only when the value changes: a
%% changed value costs a scan of every process (global GC), so call it at start.
-spec set_prefix(Prefix) -> ok when Prefix :: event_name().
set_prefix(Prefix) ->
    case beamprof_handlers:is_event_name(Prefix) of
        true -> ok;
        false -> erlang:error({badarg, "Expected event_prefix to be a non-empty list of atoms"},
                              [Prefix])
    end,
    case prefix() of
        Prefix -> ok;
        _ -> persistent_term:put(?PREFIX_KEY, Prefix)
    end.

%% @doc Loads `telemetry' if it is on the code path (once, at application start) and
%% returns whether events are forwarded to it.
-spec ensure_telemetry() -> Forwarding when Forwarding :: boolean().
ensure_telemetry() ->
    _ = code:ensure_loaded(?TELEMETRY),
    telemetry_exported(execute, 3).

%% @doc Every event beamprof emits, by its full name under the default prefix
%% `[beamprof]' (with the `event_prefix' option set, the prefix replaces the leading
%% `beamprof'), then the four names that carry no prefix: telemetry_poller's
%% `[vm, memory]', `[vm, total_run_queue_lengths]', `[vm, system_counts]'
%% (`vm_events' option) and telemetry's `[telemetry, handler, failure]'.
%% `include/beamprof_events.hrl' has a macro for each (`?BEAMPROF_EVENT_GATE_CLOSED',
%% ...); a test keeps the two lists and the emitting code in step.
-spec names() -> [event_name(), ...].
names() ->
    [[beamprof | Suffix] || Suffix <- ?SUFFIXES] ++ ?UNPREFIXED.

%% Handlers

%% @doc Attaches `Fun' to `EventName' under `Id' (unique across all events): to
%% telemetry when it is loaded and started, to the built-in table otherwise (kept
%% there until beamprof starts when it is not running).
-spec attach(Id, EventName, Fun, Config) -> ok | {error, Reason} when
      Id :: handler_id(), EventName :: event_name(), Fun :: handler_function(),
      Config :: handler_config(), Reason :: already_exists.
attach(Id, EventName, Fun, Config) ->
    Args = [Id, EventName, Fun, Config],
    case beamprof_handlers:check_attach(Id, EventName, Fun) of
        ok -> attach_to(telemetry_exported(attach, 4), attach, Args);
        Bad -> erlang:error(Bad, Args)
    end.

%% @doc Attaches `Fun' to several events under one `Id'; see `attach/4'.
-spec attach_many(Id, EventNames, Fun, Config) -> ok | {error, Reason} when
      Id :: handler_id(), EventNames :: [event_name(), ...], Fun :: handler_function(),
      Config :: handler_config(), Reason :: already_exists.
attach_many(Id, EventNames, Fun, Config) ->
    Args = [Id, EventNames, Fun, Config],
    case beamprof_handlers:check_attach_many(Id, EventNames, Fun) of
        ok -> attach_to(telemetry_exported(attach_many, 4), attach_many, Args);
        Bad -> erlang:error(Bad, Args)
    end.

%% @doc Detaches `Id' from the built-in table (a handler kept for beamprof's start
%% too), or else from telemetry when it is loaded.
-spec detach(Id) -> ok | {error, Reason} when
      Id :: handler_id(), Reason :: not_found.
detach(Id) ->
    case beamprof_handlers:detach(Id) of
        ok -> ok;
        {error, _} = Error -> detach_from(telemetry_exported(detach, 1), ?TELEMETRY, Id, Error)
    end.

%% @doc Handlers whose event name starts with `Prefix' (`[]': all), from the built-in
%% table and, when it is loaded, from telemetry.
-spec list_handlers(Prefix) -> [Handler] when Prefix :: event_prefix(), Handler :: handler().
list_handlers(Prefix) ->
    case beamprof_handlers:check_prefix(Prefix) of
        ok -> ok;
        Bad -> erlang:error(Bad, [Prefix])
    end,
    beamprof_handlers:list_handlers(Prefix)
        ++ list_from(telemetry_exported(list_handlers, 1), ?TELEMETRY, Prefix).

%% Internal

dispatch([], _EventName, _Measurements, _Metadata) ->
    ok;
dispatch([{_, Id, Fun, Config} | Rest], EventName, Measurements, Metadata) ->
    _ = try
            Fun(EventName, Measurements, Metadata, Config)
        catch
            Kind:Reason:Stacktrace ->
                handler_failed(EventName, Id, Config, Kind, Reason, Stacktrace)
        end,
    dispatch(Rest, EventName, Measurements, Metadata).

handler_failed(EventName, Id, Config, Kind, Reason, Stacktrace) ->
    _ = try beamprof_handlers:detach(Id) catch exit:_ -> ok end,
    ?LOG_ERROR("beamprof event handler ~0p has failed and has been detached.~n"
               "Event: ~0p~nKind: ~0p~nReason: ~0p~nStacktrace: ~0p",
               [Id, EventName, Kind, Reason, Stacktrace],
               #{beamprof => handler_failed, handler_id => Id}),
    Measurements = #{monotonic_time => erlang:monotonic_time(),
                     system_time => erlang:system_time()},
    Metadata = #{event_name => EventName, handler_id => Id, handler_config => Config,
                 kind => Kind, reason => Reason, stacktrace => Stacktrace},
    dispatch(beamprof_handlers:lookup(?FAILURE_EVENT), ?FAILURE_EVENT, Measurements, Metadata).

forward(Telemetry, EventName, Measurements, Metadata) ->
    case erlang:function_exported(Telemetry, execute, 3) of
        true ->
            %% telemetry catches its handlers' faults; this guards against it being
            %% purged between the check and the call.
            _ = try Telemetry:execute(EventName, Measurements, Metadata)
                catch _:_ -> ok
                end,
            ok;
        false ->
            ok
    end.

attach_to(true, Function, [Id | _] = Args) ->
    case beamprof_handlers:is_attached(Id) of
        true -> {error, already_exists};
        false ->
            try erlang:apply(?TELEMETRY, Function, Args)
            catch
                %% telemetry loaded but not started: its table's server is missing
                exit:{noproc, _} -> attach_to(false, Function, Args)
            end
    end;
attach_to(false, Function, Args) ->
    erlang:apply(beamprof_handlers, Function, Args).

detach_from(true, Telemetry, Id, _Error) -> Telemetry:detach(Id);
detach_from(false, _Telemetry, _Id, Error) -> Error.

list_from(true, Telemetry, Prefix) -> Telemetry:list_handlers(Prefix);
list_from(false, _Telemetry, _Prefix) -> [].

telemetry_exported(Function, Arity) ->
    erlang:function_exported(?TELEMETRY, Function, Arity).
