%% @doc Continuous profiling: the native sampler stays on at a low rate and
%% every `period' the profile of that period goes to one or more sinks.
%%
%% Started by `beamprof:start(#{continuous => Options})' (or
%% `{beamprof, [{continuous, Options}]}' in sys.config, `config :beamprof,
%% continuous: [...]'), or on a running beamprof by
%% `beamprof:start_continuous(Options)'. Options (a map or `{Key, Value}'
%% pairs):
%% <ul>
%% <li>`hz' (1..10000, default 19): samples per second of each scheduler
%% thread's CPU time. Idle threads cost nothing.</li>
%% <li>`period' (ms, 1000..86400000, default 60000): each period's profile
%% is handed to the sinks, then its memory released.</li>
%% <li>`sink' (required): one sink or a list of them: `{dir, Dir}' or
%% `{dir, Dir, #{keep => N}}' (`beamprof_continuous_dir'), `telemetry'
%% (`beamprof_continuous_telemetry'), `{http, Url, Opts}'
%% (`beamprof_continuous_http', Pyroscope's ingest API). Every sink takes
%% `queue' (profiles waiting, 1..1000, default 4), `retries' (0..100,
%% default 3) and `backoff' (ms, default 1000, doubled per retry, at most
%% 60 s) in its options.</li>
%% </ul>
%%
%% One native sampler per node: this server holds the `continuous' window
%% of `beamprof_native' (see `beamprof_native:open_window/3'); flame graphs
%% taken meanwhile (`beamprof:flame_graph(Ms, Path)', cluster flame graphs
%% through `beamprof_native:sample/2') take windows on the same sampler, at
%% its rate. While a `beamprof:native_start/1' run owns the sampler the
%% server waits (`state => waiting', `reason' says why) and tries again
%% every period. Under a closed load gate the C sampler keeps `min(hz, 99)'
%% per thread, as for any native run (doc/gate.md): the profile says so.
%%
%% Each sink is a process of its own with a bounded queue, so a slow or
%% dead sink never blocks the sampler, the collector or a caller: a full
%% queue drops its oldest profile (`dropped'), a profile whose retries are
%% spent is `lost'; `info/0' counts them, and while a sink's last attempt
%% failed every sample, snapshot and `top()' carries a
%% `continuous_sink_failing' warning.
%%
%% Where the native library is absent, `beamprof:start_continuous/1'
%% answers `{error, {unsupported, Reason}}'; the `continuous' start option
%% does not fail beamprof's start (as the recorder's `recorder' option):
%% beamprof runs without it, logs why, and samples carry a
%% `continuous_unavailable' warning.
-module(beamprof_continuous).
-behaviour(gen_server).

-export([start/1, stop/0, info/0, check/1, warnings/0, child_spec/2, start_link/2]).
-export([pprof/2, defaults/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export_type([options/0, sink/0, info/0]).

-type sink() :: {dir, file:filename_all()} | {dir, file:filename_all(), map() | list()}
              | telemetry | {telemetry, map() | list()}
              | {http, unicode:chardata(), map() | list()}.
-type options() :: #{hz => 1..10000, period => 1000..86400000, sink := sink() | [sink()]}
                 | [{hz | period | sink, term()}].
-type info() :: #{state := running | waiting | unavailable, hz := pos_integer(),
                  period := pos_integer(), periods := non_neg_integer(),
                  reason => term(), sinks := [map()]}.

-define(SERVER, ?MODULE).
-define(TAB, beamprof_continuous_status).
-define(DEFAULTS, #{hz => 19, period => 60000}).

%% @doc The defaults: `#{hz => 19, period => 60000}'.
-spec defaults() -> #{hz := pos_integer(), period := pos_integer()}.
defaults() ->
    ?DEFAULTS.

%% @doc Checks continuous options: `ok' or `{error, Message}' naming what is
%% wrong (`beamprof_config' raises it as `badarg').
-spec check(term()) -> ok | {error, string()}.
check(Options) ->
    try beamprof_continuous_opts:parse(Options) of
        _ -> ok
    catch throw:{bad, Message} -> {error, Message}
    end.

%% @doc Starts continuous profiling on a running beamprof: `ok', `{error,
%% already_started}', `{error, not_started}' (beamprof is not running),
%% `{error, {unsupported, Reason}}' (no native sampler here). Raises
%% `{badarg, Message}' for bad options.
-spec start(options()) -> ok | {error, term()}.
start(Options) ->
    Parsed = parse(Options),
    case {whereis(beamprof_sup), beamprof_native_nif:load()} of
        {undefined, _} -> {error, not_started};
        {_, {error, _} = Unsupported} -> Unsupported;
        {_, ok} -> start_child(Parsed)
    end.

start_child(Parsed) ->
    case supervisor:start_child(beamprof_sup, child_spec(Parsed, explicit)) of
        {ok, _} -> ok;
        {error, {already_started, _}} -> {error, already_started};
        {error, already_present} ->
            _ = supervisor:delete_child(beamprof_sup, ?SERVER),
            start_child(Parsed);
        {error, {Reason, _Child}} -> {error, Reason}
    end.

parse(Options) ->
    try beamprof_continuous_opts:parse(Options)
    catch throw:{bad, Message} -> erlang:error({badarg, Message}, [Options])
    end.

%% @doc Stops continuous profiling (the period under way is not delivered;
%% profiles still queued in a sink are dropped). `ok' also when none runs.
-spec stop() -> ok.
stop() ->
    case whereis(beamprof_sup) of
        undefined -> ok;
        _ ->
            _ = supervisor:terminate_child(beamprof_sup, ?SERVER),
            _ = supervisor:delete_child(beamprof_sup, ?SERVER),
            ok
    end.

%% @doc The state (`running', `waiting' with its `reason', `unavailable'
%% with its `reason'), `hz', `period', `periods' delivered to the sinks,
%% and per sink (`sinks', in the order given): `sink' (what it is),
%% `sent', `failed' (attempts that failed), `dropped' (profiles pushed out
%% of a full queue), `lost' (profiles given up after their retries),
%% `queue' (waiting now), `failing' (its last attempt failed) and
%% `last_error'. `undefined' when it is not running.
-spec info() -> info() | undefined.
info() ->
    case whereis(?SERVER) of
        undefined -> undefined;
        _ -> try read_info() catch error:badarg -> undefined end
    end.

read_info() ->
    [{server, Server}] = ets:lookup(?TAB, server),
    Sinks = lists:sort([{I, S} || {{sink, I}, S} <- ets:tab2list(?TAB)]),
    Server#{sinks => [S || {_, S} <- Sinks]}.

%% @doc The warnings to carry in samples: `continuous_sink_failing' per
%% sink whose last attempt failed, `continuous_unavailable' when the
%% `continuous' option could not start (no native sampler). Two ETS reads.
-spec warnings() -> [beamprof_warnings:warning()].
warnings() ->
    case ets:whereis(?TAB) of
        undefined -> [];
        _ -> try ets:lookup(?TAB, warnings) of
                 [{warnings, Ws}] -> Ws ++ sink_warnings();
                 [] -> sink_warnings()
             catch error:badarg -> []
             end
    end.

sink_warnings() ->
    [beamprof_warnings:new(continuous_sink_failing,
                           io_lib:format("continuous profiling sink ~ts is failing (~ts): ~B "
                                         "sent, ~B failed attempts, ~B dropped, ~B lost",
                                         [Name, beamprof_continuous_sink:reason_text(Error),
                                          Sent, Failed, Dropped, Lost]))
     || {{sink, _}, #{failing := true, name := Name, last_error := Error, sent := Sent,
                      failed := Failed, dropped := Dropped, lost := Lost}}
            <- ets:tab2list(?TAB)].

%% @doc The supervisor's child for options already parsed; `How' is
%% `option' (the application's `continuous' option: an absent native
%% sampler leaves it `unavailable') or `explicit' (start/1).
-spec child_spec(map(), option | explicit) -> supervisor:child_spec().
child_spec(Parsed, How) ->
    #{id => ?SERVER, start => {?MODULE, start_link, [Parsed, How]}, restart => transient,
      shutdown => 10000}.

%% @private
-spec start_link(map(), option | explicit) -> {ok, pid()} | {error, term()}.
start_link(Parsed, How) ->
    gen_server:start_link({local, ?SERVER}, ?MODULE, {Parsed, How}, []).

%% @doc A profile as gzipped pprof with `Labels' (one call, so that the
%% encoder is replaced in one place).
-spec pprof(map(), #{binary() => binary()}) -> binary().
pprof(Profile, Labels) ->
    beamprof_pprof:encode(Profile, #{labels => Labels}).

%%--------------------------------------------------------------------
%% Server

%% @private
init({#{hz := Hz, period := Period, sinks := Sinks}, How}) ->
    process_flag(trap_exit, true),
    Tab = ets:new(?TAB, [named_table, public, {read_concurrency, true}]),
    Pids = [start_sink(I, S) || {I, S} <- lists:zip(lists:seq(1, length(Sinks)), Sinks)],
    State = #{hz => Hz, period => Period, sinks => Pids, periods => 0, tab => Tab,
              state => waiting, reason => starting, from => now_ms(),
              next => erlang:monotonic_time(millisecond) + Period},
    case open(State) of
        #{state := unavailable, reason := Reason} when How =:= explicit ->
            {stop, Reason};
        Opened ->
            _ = erlang:send_after(maps:get(next, Opened), self(), period, [{abs, true}]),
            {ok, publish(unavailable_warning(Opened))}
    end.

start_sink(Index, Sink) ->
    {ok, Pid} = beamprof_continuous_sink:start_link(Index, Sink, ?TAB),
    Pid.

open(#{hz := Hz} = State) ->
    case beamprof_native:open_window(continuous, #{hz => Hz}, self()) of
        {ok, _} -> State#{state := running, reason := none, from := now_ms()};
        {error, {unsupported, _} = Reason} -> State#{state := unavailable, reason := Reason};
        {error, Reason} -> State#{state := waiting, reason := Reason}
    end.

unavailable_warning(#{state := unavailable, reason := Reason} = State) ->
    Message = unicode:characters_to_binary(
                io_lib:format("continuous profiling cannot run: the native sampler is "
                              "unavailable (~0tp); beamprof runs without it", [Reason])),
    logger:warning("beamprof: ~ts", [Message]),
    true = ets:insert(?TAB, {warnings, [beamprof_warnings:new(continuous_unavailable, Message)]}),
    State;
unavailable_warning(State) ->
    State.

%% @private
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
handle_info(period, #{period := Period, next := Next} = State) ->
    After = period(State),
    Following = max(Next + Period, erlang:monotonic_time(millisecond) + 1),
    _ = erlang:send_after(Following, self(), period, [{abs, true}]),
    {noreply, publish(After#{next := Following})};
handle_info({'EXIT', Pid, Reason}, #{sinks := Pids} = State) ->
    case lists:member(Pid, Pids) of
        true -> {stop, {sink_exited, Reason}, State};
        false -> {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% One period: the running window's profile to every sink, a new window
%% in its place; a waiting server tries to open one.
period(#{state := running, sinks := Pids, periods := N, from := From, hz := Hz,
         period := Period} = State) ->
    case beamprof_native:rotate_window(continuous) of
        {ok, Profile} ->
            Until = now_ms(),
            Meta = #{from_ms => From, until_ms => Until, node => node(), hz => Hz,
                     period => Period},
            lists:foreach(fun(Pid) -> beamprof_continuous_sink:deliver(Pid, Profile, Meta) end,
                          Pids),
            State#{periods := N + 1, from := Until};
        {error, _} ->
            open(State)
    end;
period(#{state := waiting} = State) ->
    open(State);
period(State) ->
    State.

publish(#{state := S, reason := Reason, hz := Hz, period := Period, periods := N} = State) ->
    Info = #{state => S, hz => Hz, period => Period, periods => N},
    true = ets:insert(?TAB, {server, case S of
                                         running -> Info;
                                         _ -> Info#{reason => Reason}
                                     end}),
    State.

%% @private
terminate(_Reason, #{state := running, sinks := Pids}) ->
    _ = beamprof_native:close_window(continuous),
    stop_sinks(Pids);
terminate(_Reason, #{sinks := Pids}) ->
    stop_sinks(Pids).

stop_sinks(Pids) ->
    lists:foreach(fun(Pid) -> unlink(Pid), exit(Pid, shutdown) end, Pids).

now_ms() ->
    os:system_time(millisecond).
