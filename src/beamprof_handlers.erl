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
%% Arguments are validated in the caller, so a bad call raises there, never in the
%% server. When the server is not running, writes return `{error, not_started}' and
%% reads `[]'. The table dies with the server: handlers do not survive its restart.
-module(beamprof_handlers).

-behaviour(gen_server).

-export([start_link/0, attach/4, attach_many/4, detach/1, is_attached/1,
         list_handlers/1, lookup/1, check_attach/2, check_attach_many/2, check_prefix/1,
         is_event_name/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-export_type([handler_id/0, event_name/0, event_prefix/0, measurements/0, metadata/0,
              handler_config/0, handler_function/0, handler/0]).

-define(TABLE, ?MODULE).

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

%% API

%% @doc Starts the table owner; meant to be a child of `beamprof_sup'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Attaches `Fun' to one event under `Id', unique across all events.
-spec attach(Id, Event, Fun, Config) -> ok | {error, already_exists | not_started} when
      Id :: handler_id(), Event :: event_name(), Fun :: handler_function(),
      Config :: handler_config().
attach(Id, Event, Fun, Config) ->
    case check_attach(Event, Fun) of
        ok -> call({attach, Id, [Event], Fun, Config});
        Bad -> erlang:error(Bad, [Id, Event, Fun, Config])
    end.

%% @doc Attaches `Fun' to several events under one `Id'.
-spec attach_many(Id, Events, Fun, Config) ->
          ok | {error, already_exists | not_started} when
      Id :: handler_id(), Events :: [event_name(), ...], Fun :: handler_function(),
      Config :: handler_config().
attach_many(Id, Events, Fun, Config) ->
    case check_attach_many(Events, Fun) of
        ok -> call({attach, Id, lists:usort(Events), Fun, Config});
        Bad -> erlang:error(Bad, [Id, Events, Fun, Config])
    end.

%% @doc Detaches the handler `Id' from all its events.
-spec detach(Id) -> ok | {error, not_found | not_started} when Id :: handler_id().
detach(Id) ->
    call({detach, Id}).

%% @doc Whether a handler with this id is attached to the built-in table.
-spec is_attached(Id) -> boolean() when Id :: handler_id().
is_attached(Id) ->
    call({is_attached, Id}) =:= true.

%% @doc Handlers whose event name starts with `Prefix' (`[]' lists all).
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
%% first bad one, for the caller to raise with its own arguments.
-spec check_attach(Event, Fun) -> ok | {badarg, Message} when
      Event :: term(), Fun :: term(), Message :: string().
check_attach(Event, Fun) ->
    case is_event_name(Event) of
        true -> check_function(Fun);
        false -> {badarg, "Expected event_name to be a non-empty list of atoms"}
    end.

%% @doc Checks the arguments of `attach_many/4', like `check_attach/2'.
-spec check_attach_many(Events, Fun) -> ok | {badarg, Message} when
      Events :: term(), Fun :: term(), Message :: string().
check_attach_many([_ | _] = Events, Fun) ->
    case lists:all(fun is_event_name/1, Events) of
        true -> check_function(Fun);
        false -> bad_event_names()
    end;
check_attach_many(_Events, _Fun) ->
    bad_event_names().

%% @doc Checks a `list_handlers/1' prefix, like `check_attach/2'.
-spec check_prefix(Prefix) -> ok | {badarg, Message} when
      Prefix :: term(), Message :: string().
check_prefix(Prefix) ->
    case is_list(Prefix) andalso lists:all(fun erlang:is_atom/1, Prefix) of
        true -> ok;
        false -> {badarg, "Expected prefix to be a list of atoms"}
    end.

%% gen_server

%% @private
-spec init([]) -> {ok, state()}.
init([]) ->
    _ = ets:new(?TABLE, [bag, named_table, protected, {read_concurrency, true}]),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call({attach, Id, Events, Fun, Config}, _From, State) ->
    case State of
        #{Id := _} ->
            {reply, {error, already_exists}, State};
        #{} ->
            Entries = [{Event, Id, Fun, Config} || Event <- Events],
            true = ets:insert(?TABLE, Entries),
            {reply, ok, State#{Id => Entries}}
    end;
handle_call({detach, Id}, _From, State) ->
    case maps:take(Id, State) of
        {Entries, Rest} ->
            _ = [ets:delete_object(?TABLE, Entry) || Entry <- Entries],
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

call(Request) ->
    try
        gen_server:call(?MODULE, Request)
    catch
        exit:{noproc, _} -> {error, not_started}
    end.

all_entries() ->
    try
        ets:tab2list(?TABLE)
    catch
        error:badarg -> []
    end.

%% @doc Whether `Term' is an event name: a non-empty list of atoms.
-spec is_event_name(Term) -> boolean() when Term :: term().
is_event_name([_ | _] = Event) -> lists:all(fun erlang:is_atom/1, Event);
is_event_name(_) -> false.

check_function(Fun) when is_function(Fun, 4) -> ok;
check_function(_Fun) -> {badarg, "Expected function to be a fun of arity 4"}.

bad_event_names() ->
    {badarg, "Expected event_names to be a non-empty list of event names, "
             "each a non-empty list of atoms"}.
