%% @doc The built-in handler table behind `beamprof_events'.
%%
%% A small gen_server registered as `beamprof_handlers' owns a named, protected ETS
%% `bag' (also `beamprof_handlers', `read_concurrency') holding one `{EventName, Id,
%% Fun, Config}' object per attached event. Emitters read it directly (`lookup/1': one
%% `ets:lookup/2' in the calling process); writes go through the server, which
%% serialises them and keeps the id index (`Id => objects') in its state, so ids are
%% unique across all events and detaching never builds a match pattern from user data
%% (an id such as ``'_''' is safe).
%%
%% Handlers are kept: each attached handler is also recorded in the application
%% environment (key `$handlers', `#{Id => {EventNames, Fun, Config}}'), which outlives
%% this server and the application (until the application is unloaded). So a handler
%% can be attached before beamprof starts, and it stays attached across
%% `beamprof:stop()' and `beamprof:start()' and across a restart of this server by its
%% supervisor, as a telemetry handler outlives the code that emits to it: only
%% `detach/1', or the handler's crash, removes it. When the server starts it installs
%% the recorded handlers: in telemetry when telemetry is loaded by then (where
%% `beamprof_events:attach/4' would put them now; they leave the record), else in its
%% table. A write made while the server is not running goes to the record, under a
%% `global' lock on this node that the server's start takes too, so that a start in
%% between loses none.
%%
%% Arguments are validated in the caller, so a bad call raises there, never in the
%% server. `lookup/1' returns `[]' while the server is not running: kept handlers are
%% called once it runs.
-module(beamprof_handlers).

-behaviour(gen_server).

-export([start_link/0, attach/4, attach_many/4, detach/1, is_attached/1,
         list_handlers/1, lookup/1, check_attach/3, check_attach_many/3, check_prefix/1,
         is_event_name/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-export_type([handler_id/0, event_name/0, event_prefix/0, measurements/0, metadata/0,
              handler_config/0, handler_function/0, handler/0]).

-define(TABLE, ?MODULE).
-define(APP, beamprof).
-define(RECORD_KEY, '$handlers').
-define(LOCK, {beamprof_handlers_record, self()}).
%% Passed as an argument, as in beamprof_events: telemetry is optional.
-define(TELEMETRY, telemetry).

-type handler_id() :: term().
-type event_name() :: [atom(), ...].
-type event_prefix() :: [atom()].
-type measurements() :: map().
-type metadata() :: map().
-type handler_config() :: term().
-type handler_function() ::
        fun((event_name(), measurements(), metadata(), handler_config()) -> any()).
-type handler() :: #{id := handler_id(), event_name := event_name(),
                     function := handler_function(), config := handler_config()}.
-type entry() :: {event_name(), handler_id(), handler_function(), handler_config()}.
-type state() :: #{handler_id() => [entry(), ...]}.
-type kept() :: #{handler_id() => {[event_name(), ...], handler_function(), handler_config()}}.
-type request() :: {attach, handler_id(), [event_name(), ...], handler_function(),
                    handler_config()}
                 | {detach, handler_id()}.

%% API

%% @doc Starts the table owner; meant to be a child of `beamprof_sup'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Attaches `Fun' to one event under `Id', unique across all events; kept until
%% the server runs when it does not.
-spec attach(Id, Event, Fun, Config) -> ok | {error, already_exists} when
      Id :: handler_id(), Event :: event_name(), Fun :: handler_function(),
      Config :: handler_config().
attach(Id, Event, Fun, Config) ->
    case check_attach(Id, Event, Fun) of
        ok -> write({attach, Id, [Event], Fun, Config});
        Bad -> erlang:error(Bad, [Id, Event, Fun, Config])
    end.

%% @doc Attaches `Fun' to several events under one `Id'.
-spec attach_many(Id, Events, Fun, Config) -> ok | {error, already_exists} when
      Id :: handler_id(), Events :: [event_name(), ...], Fun :: handler_function(),
      Config :: handler_config().
attach_many(Id, Events, Fun, Config) ->
    case check_attach_many(Id, Events, Fun) of
        ok -> write({attach, Id, lists:usort(Events), Fun, Config});
        Bad -> erlang:error(Bad, [Id, Events, Fun, Config])
    end.

%% @doc Detaches the handler `Id' from all its events, a kept one too.
-spec detach(Id) -> ok | {error, not_found} when Id :: handler_id().
detach(Id) ->
    write({detach, Id}).

%% @doc Whether a handler with this id is attached to the built-in table (or kept for
%% its start).
-spec is_attached(Id) -> boolean() when Id :: handler_id().
is_attached(Id) ->
    case call({is_attached, Id}) of
        {error, not_started} -> is_map_key(Id, kept());
        Attached -> Attached
    end.

%% @doc Handlers whose event name starts with `Prefix' (`[]' lists all); the kept ones
%% while the server is not running.
-spec list_handlers(Prefix) -> [handler()] when Prefix :: event_prefix().
list_handlers(Prefix) ->
    case check_prefix(Prefix) of
        ok -> ok;
        Bad -> erlang:error(Bad, [Prefix])
    end,
    [#{id => Id, event_name => Event, function => Fun, config => Config}
     || {Event, Id, Fun, Config} <- all_entries(), lists:prefix(Prefix, Event)].

%% @doc The handlers attached to exactly `Event', read in the calling process; `[]' when
%% the table does not exist (server not started). Cost: one `ets:lookup/2', which copies
%% the matching objects.
-spec lookup(Event) -> [entry()] when Event :: event_name().
lookup(Event) ->
    try
        ets:lookup(?TABLE, Event)
    catch
        error:badarg -> []
    end.

%% @doc Checks the arguments of `attach/4': `ok', or the `badarg' reason naming the
%% first bad one (or saying that the arguments are in the wrong order), for the caller
%% to raise with its own arguments.
-spec check_attach(Id, Event, Fun) -> ok | {badarg, Message} when
      Id :: term(), Event :: term(), Fun :: term(), Message :: string().
check_attach(Id, Event, Fun) ->
    case {is_event_name(Event), is_function(Fun, 4)} of
        {true, true} -> ok;
        {false, _} when is_function(Event, 4) ->
            wrong_order("attach", "event name second and the fun third");
        {false, _} ->
            case is_event_name(Id) of
                true -> wrong_order("attach", "handler id first and the event name second");
                false -> expected("event_name to be a non-empty list of atoms", Event)
            end;
        {true, false} -> expected("function to be a fun of arity 4", Fun)
    end.

%% @doc Checks the arguments of `attach_many/4', like `check_attach/3'.
-spec check_attach_many(Id, Events, Fun) -> ok | {badarg, Message} when
      Id :: term(), Events :: term(), Fun :: term(), Message :: string().
check_attach_many(Id, Events, Fun) ->
    case {is_event_names(Events), is_function(Fun, 4)} of
        {true, true} -> ok;
        {false, _} when is_function(Events, 4) ->
            wrong_order("attach_many", "event names second and the fun third");
        {false, _} ->
            case is_event_names(Id) of
                true -> wrong_order("attach_many", "handler id first and the event names second");
                false -> expected("event_names to be a non-empty list of event names, "
                                  "each a non-empty list of atoms", Events)
            end;
        {true, false} -> expected("function to be a fun of arity 4", Fun)
    end.

%% @doc Checks a `list_handlers/1' prefix, like `check_attach/3'.
-spec check_prefix(Prefix) -> ok | {badarg, Message} when
      Prefix :: term(), Message :: string().
check_prefix(Prefix) ->
    case is_list(Prefix) andalso lists:all(fun erlang:is_atom/1, Prefix) of
        true -> ok;
        false -> expected("prefix to be a list of atoms", Prefix)
    end.

%% @doc Whether `Term' is an event name: a non-empty list of atoms.
-spec is_event_name(Term) -> boolean() when Term :: term().
is_event_name([_ | _] = Event) -> lists:all(fun erlang:is_atom/1, Event);
is_event_name(_) -> false.

%% gen_server

%% @private
-spec init([]) -> {ok, state()}.
init([]) ->
    _ = ets:new(?TABLE, [bag, named_table, protected, {read_concurrency, true}]),
    locked(fun() -> {ok, install(kept())} end).

%% @private
-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call({attach, Id, _Events, _Fun, _Config}, _From, State) when is_map_key(Id, State) ->
    {reply, {error, already_exists}, State};
handle_call({attach, Id, Events, Fun, Config}, _From, State) ->
    Entries = [{Event, Id, Fun, Config} || Event <- Events],
    true = ets:insert(?TABLE, Entries),
    ok = keep((kept())#{Id => {Events, Fun, Config}}),
    {reply, ok, State#{Id => Entries}};
handle_call({detach, Id}, _From, State) ->
    case maps:take(Id, State) of
        {Entries, Rest} ->
            _ = [ets:delete_object(?TABLE, Entry) || Entry <- Entries],
            ok = keep(maps:remove(Id, kept())),
            {reply, ok, Rest};
        error ->
            {reply, {error, not_found}, State}
    end;
handle_call({is_attached, Id}, _From, State) ->
    {reply, is_map_key(Id, State), State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% Internal

%% The kept handlers into telemetry when it is loaded (those it takes leave the
%% record), the rest into the table; returns the server's state.
-spec install(kept()) -> state().
install(Kept) ->
    Stay = maps:filter(fun(Id, Handler) -> not to_telemetry(Id, Handler) end, Kept),
    ok = keep(Stay),
    maps:map(fun(Id, {Events, Fun, Config}) ->
                     Entries = [{Event, Id, Fun, Config} || Event <- Events],
                     true = ets:insert(?TABLE, Entries),
                     Entries
             end, Stay).

to_telemetry(Id, {Events, Fun, Config}) ->
    Telemetry = ?TELEMETRY,
    erlang:function_exported(Telemetry, attach_many, 4) andalso
        try Telemetry:attach_many(Id, Events, Fun, Config) of
            ok -> true;
            _ -> false
        catch
            exit:_ -> false                               % loaded, not started
        end.

%% A write: to the server when it runs, else to the record under the lock that the
%% server's init takes. Never a call under the lock: the server is registered before
%% its init runs, and its init waits for the lock.
-spec write(request()) -> ok | {error, already_exists | not_found}.
write(Request) ->
    case call(Request) of
        {error, not_started} ->
            case locked(fun() -> write_kept(whereis(?MODULE), Request) end) of
                {done, Reply} -> Reply;
                retry -> write(Request)
            end;
        Reply ->
            Reply
    end.

write_kept(undefined, Request) -> {done, update(Request, kept())};
write_kept(_Pid, _Request) -> retry.

update({attach, Id, _Events, _Fun, _Config}, Kept) when is_map_key(Id, Kept) ->
    {error, already_exists};
update({attach, Id, Events, Fun, Config}, Kept) ->
    keep(Kept#{Id => {Events, Fun, Config}});
update({detach, Id}, Kept) when is_map_key(Id, Kept) ->
    keep(maps:remove(Id, Kept));
update({detach, _Id}, _Kept) ->
    {error, not_found}.

locked(Fun) ->
    global:trans(?LOCK, Fun, [node()], infinity).

-spec kept() -> kept().
kept() ->
    application:get_env(?APP, ?RECORD_KEY, #{}).

-spec keep(kept()) -> ok.
keep(Kept) when map_size(Kept) =:= 0 -> application:unset_env(?APP, ?RECORD_KEY);
keep(Kept) -> application:set_env(?APP, ?RECORD_KEY, Kept).

%% A server that is gone, or stopping, has not handled the request.
call(Request) ->
    try
        gen_server:call(?MODULE, Request)
    catch
        exit:{Reason, _} when Reason =:= noproc; Reason =:= normal; Reason =:= shutdown;
                              is_tuple(Reason), element(1, Reason) =:= shutdown ->
            {error, not_started}
    end.

all_entries() ->
    try
        ets:tab2list(?TABLE)
    catch
        error:badarg ->
            [{Event, Id, Fun, Config}
             || {Id, {Events, Fun, Config}} <- maps:to_list(kept()), Event <- Events]
    end.

is_event_names([_ | _] = Events) -> lists:all(fun is_event_name/1, Events);
is_event_names(_) -> false.

wrong_order(Function, Which) ->
    {badarg, lists:flatten(io_lib:format("Arguments in the wrong order: ~ts(Id, ~ts, Fun, "
                                         "Config) takes the ~ts",
                                         [Function, case Function of
                                                        "attach" -> "EventName";
                                                        _ -> "EventNames"
                                                    end, Which]))}.

expected(What, Got) ->
    {badarg, lists:flatten(io_lib:format("Expected ~ts, got: ~0tP", [What, Got, 8]))}.
