%% A stand-in for the telemetry library, loaded by beamprof_events_SUITE only (CT data
%% directories are not compiled by rebar3). It keeps telemetry's contract simply:
%% handlers in a public ETS table the suite creates, and every execute/3 call reported
%% as a message to the process registered as telemetry_standin_sink, if any. With the
%% environment's {telemetry_standin, stopped} true, attaching exits as telemetry's does
%% when it is loaded but its application is not started.
-module(telemetry).
-export([execute/3, attach/4, attach_many/4, detach/1, list_handlers/1]).

-define(TABLE, telemetry_standin_handlers).
-define(SINK, telemetry_standin_sink).

execute(EventName, Measurements, Metadata) ->
    case whereis(?SINK) of
        undefined -> ok;
        Sink -> Sink ! {telemetry_execute, EventName, Measurements, Metadata}
    end,
    _ = [Fun(EventName, Measurements, Metadata, Config)
         || {{_Id, Event}, Fun, Config} <- ets:tab2list(?TABLE), Event =:= EventName],
    ok.

attach(Id, EventName, Fun, Config) ->
    attach_many(Id, [EventName], Fun, Config).

attach_many(Id, EventNames, Fun, Config) ->
    not_started(),
    case [Key || {{HandlerId, _}, _, _} = Key <- ets:tab2list(?TABLE), HandlerId =:= Id] of
        [] ->
            true = ets:insert(?TABLE, [{{Id, Event}, Fun, Config} || Event <- EventNames]),
            ok;
        _ ->
            {error, already_exists}
    end.

detach(Id) ->
    case [Key || {{HandlerId, _} = Key, _, _} <- ets:tab2list(?TABLE), HandlerId =:= Id] of
        [] -> {error, not_found};
        Keys -> lists:foreach(fun(Key) -> ets:delete(?TABLE, Key) end, Keys)
    end.

list_handlers(Prefix) ->
    [#{id => Id, event_name => Event, function => Fun, config => Config}
     || {{Id, Event}, Fun, Config} <- ets:tab2list(?TABLE), lists:prefix(Prefix, Event)].

not_started() ->
    case application:get_env(telemetry_standin, stopped, false) of
        true -> exit({noproc, {gen_server, call, [telemetry_handler_table, attach]}});
        false -> ok
    end.
