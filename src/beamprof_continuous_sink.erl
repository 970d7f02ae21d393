%% @private
%% @doc One continuous profiling sink: a process with a bounded queue.
%%
%% Each profile is encoded here as it arrives (`Module:encode/3': the sink's
%% item, a gzipped pprof for files and HTTP), queued (at most `queue'
%% items waiting: a full queue drops its oldest, counted `dropped'), and
%% delivered by a short-lived process per attempt (`Module:deliver/2',
%% killed after `Module:deadline/1' ms), so that this process always answers
%% and never holds more than the queue and the item in flight. A failed
%% attempt is retried `retries' times, after `backoff' ms doubled each time
%% (at most 60 s); then the profile is `lost'. Counters are written to the
%% continuous profiler's ETS table after every change (`info/0' reads them
%% without a call).
%%
%% A sink module exports `check/1,2' (options to a map; throws `{bad,
%% Message}'), `name/1' (a one-line description), `encode(Profile, Meta,
%% Opts) -> Item', `deliver(Item, Opts) -> ok | {error, Reason}',
%% `retryable(Reason) -> boolean()' and `deadline(Opts) -> Ms'.
-module(beamprof_continuous_sink).
-behaviour(gen_server).

-export([start_link/3, deliver/3, reason_text/1, attempt/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(BACKOFF_MAX, 60000).

%% @doc Starts the sink `{Module, Opts}' number `Index', counting in `Tab'.
-spec start_link(pos_integer(), {module(), map()}, ets:table()) -> {ok, pid()}.
start_link(Index, Sink, Tab) ->
    gen_server:start_link(?MODULE, {Index, Sink, Tab}, []).

%% @doc Hands a period's profile to the sink (never blocks).
-spec deliver(pid(), map(), map()) -> ok.
deliver(Pid, Profile, Meta) ->
    gen_server:cast(Pid, {deliver, Profile, Meta}).

%% @doc One delivery attempt, in a process of its own: exits with
%% `{delivered, Result}'.
-spec attempt(module(), term(), map()) -> no_return().
attempt(Mod, Item, Opts) ->
    exit({delivered, Mod:deliver(Item, Opts)}).

%% @doc A reason as one line of text.
-spec reason_text(term()) -> binary().
reason_text(Reason) ->
    unicode:characters_to_binary(io_lib:format("~0tP", [Reason, 12])).

%% @private
init({Index, {Mod, Opts}, Tab}) ->
    State = #{index => Index, mod => Mod, opts => Opts, tab => Tab, queue => queue:new(),
              busy => undefined, retry_at => undefined,
              counters => #{name => Mod:name(Opts), sent => 0, failed => 0, dropped => 0,
                            lost => 0, queue => 0, failing => false, last_error => none}},
    {ok, publish(State)}.

%% @private
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
handle_cast({deliver, Profile, Meta}, #{mod := Mod, opts := Opts} = State) ->
    Next = try Mod:encode(Profile, Meta, Opts) of
               Item -> enqueue({Item, 0}, State)
           catch Class:Reason ->
               count(lost, failed({encode, {Class, Reason}}, State))
           end,
    {noreply, publish(send(Next))}.

%% @private
handle_info({'DOWN', MRef, process, _, Result}, #{busy := {_, MRef, Item, TRef}} = State) ->
    _ = erlang:cancel_timer(TRef),
    Done = State#{busy := undefined},
    Next = case Result of
               {delivered, ok} -> succeeded(Done);
               {delivered, {error, Reason}} -> retry(Item, Reason, Done);
               Other -> retry(Item, {crashed, Other}, Done)
           end,
    {noreply, publish(send(Next))};
handle_info({deadline, MRef}, #{busy := {Pid, MRef, _, _}} = State) ->
    exit(Pid, kill),
    {noreply, State};
handle_info(retry, State) ->
    {noreply, publish(send(State#{retry_at := undefined}))};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, #{busy := {Pid, _, _, _}}) ->
    exit(Pid, kill),
    ok;
terminate(_Reason, _State) ->
    ok.

enqueue(Entry, #{queue := Q, opts := #{queue := Max}} = State) ->
    case queue:len(Q) >= Max of
        true -> count(dropped, State#{queue := queue:in(Entry, queue:drop(Q))});
        false -> State#{queue := queue:in(Entry, Q)}
    end.

%% Starts an attempt when none runs, no backoff is under way and an item waits.
send(#{busy := undefined, retry_at := undefined, queue := Q, mod := Mod,
       opts := Opts} = State) ->
    case queue:out(Q) of
        {{value, {Item, _} = Entry}, Rest} ->
            {Pid, MRef} = spawn_monitor(?MODULE, attempt, [Mod, Item, Opts]),
            TRef = erlang:send_after(Mod:deadline(Opts), self(), {deadline, MRef}),
            State#{busy := {Pid, MRef, Entry, TRef}, queue := Rest};
        {empty, _} ->
            State
    end;
send(State) ->
    State.

succeeded(#{counters := C} = State) ->
    count(sent, State#{counters := C#{failing := false}}).

%% A failed attempt: back at the head of the queue after a backoff, or lost.
retry({Item, Attempt}, Reason, #{mod := Mod, opts := #{retries := Max, backoff := B},
                                 queue := Q} = State0) ->
    State = failed(Reason, State0),
    case Attempt < Max andalso Mod:retryable(Reason) of
        true ->
            Delay = min(B bsl min(Attempt, 20), ?BACKOFF_MAX),
            _ = erlang:send_after(Delay, self(), retry),
            State#{queue := queue:in_r({Item, Attempt + 1}, Q), retry_at := Delay};
        false ->
            count(lost, State)
    end.

failed(Reason, #{counters := C} = State) ->
    count(failed, State#{counters := C#{failing := true, last_error := Reason}}).

count(Key, #{counters := C} = State) ->
    State#{counters := C#{Key := maps:get(Key, C) + 1}}.

publish(#{tab := Tab, index := I, counters := C, queue := Q} = State) ->
    true = ets:insert(Tab, {{sink, I}, C#{queue := queue:len(Q)}}),
    State.
