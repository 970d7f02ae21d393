%% @doc The VM monitor bridge: `erlang:system_monitor/2' turned into events.
%%
%% The VM reports long garbage collections, processes or ports that ran
%% uninterrupted for too long (this is how a NIF or a driver that blocks a
%% scheduler shows up), large heaps after a collection, and processes
%% suspended on a busy port or a busy distribution port, to ONE process per
%% node: the system monitor. This process asks to be it and emits:
%%
%% <ul>
%% <li>`[beamprof, monitor, long_gc]': measurements `duration' (native
%% units), `duration_ms', `heap_size', `heap_block_size', `old_heap_size',
%% `old_heap_block_size', `mbuf_size', `stack_size', `total_heap_size' (all
%% bytes; the total is heap + old heap blocks + heap fragments),
%% `monotonic_time', `suppressed'; metadata naming the process.</li>
%% <li>`[beamprof, monitor, large_heap]': the same without the durations.</li>
%% <li>`[beamprof, monitor, long_schedule]': `duration', `duration_ms',
%% `monotonic_time', `suppressed'; metadata naming the process plus `in' and
%% `out' (the functions it was scheduled in and out at, or `undefined'), or
%% for a port `port', `port_name', `owner' and `port_op'.</li>
%% <li>`[beamprof, monitor, busy_port]' and `[beamprof, monitor,
%% busy_dist_port]': `monotonic_time', `suppressed'; metadata naming the
%% suspended process plus `port', `port_name' and `owner'.</li>
%% <li>`[beamprof, process, long_message_queue]' (OTP 27+, option
%% `long_message_queue', on by default): the VM says at once when a process's
%% queue reaches the application's `long_message_queue' threshold, so the
%% event comes between scans (the scan emits the same event, with `source =>
%% scan': see `beamprof_scan_server'). Measurements `message_queue_len' (the
%% length when the event is made; 0 for a process gone since) and
%% `suppressed'; metadata `pid', `name', `label', `initial_call',
%% `current_function', `threshold', `source => system_monitor'. The VM says
%% it again for that process only once its queue has been below half the
%% threshold; the next scan does not repeat it.</li>
%% <li>`[beamprof, monitor, suppressed]' (at most once a second per kind, only
%% after a storm): `count'; metadata `kind'.</li>
%% </ul>
%%
%% Metadata naming a process: `pid', `name' (registered name or
%% `undefined'), `label' (set with `proc_lib:set_label/1', OTP 27+; else
%% `undefined', always on OTP 25 and 26), `initial_call' (proc_lib's
%% `$initial_call' when the process was started by proc_lib),
%% `current_function', `node'. A process that has gone by the time the message
%% is handled is named with `undefined'.
%%
%% Where the VM has `trace:system/3' (OTP 28+), the bridge monitors in a
%% trace session of its own and never touches the node's
%% `erlang:system_monitor/2': another tool may hold that one, and both get
%% their messages ({@link status/0} says `via => session').
%%
%% Elsewhere (OTP 25 to 27, `via => system_monitor') only one system monitor
%% exists per node. If another process holds it when beamprof starts, beamprof
%% leaves it alone, logs a warning, reports `#{state => held, holder => Pid}'
%% from {@link status/0}, and looks again every 5 s: once the other holder has
%% let go it takes the monitor. When beamprof stops it restores what was there
%% before it took the monitor (`undefined': it only takes a free one), and only
%% if it still holds it.
%%
%% Rate limit: a token bucket per kind, `max_rate' events a second (default
%% 10) with a burst of as many. A message over the limit costs a map update
%% (no process is inspected, no handler runs); the number suppressed is
%% carried by the kind's next event (`suppressed') and, if none comes within
%% a second, by one `[beamprof, monitor, suppressed]' event.
-module(beamprof_monitor).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/1, status/0, defaults/0, check/1, options/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([options/0, kind/0, status/0]).

-type kind() :: long_gc | long_schedule | large_heap | busy_port | busy_dist_port
              | long_message_queue.
-type options() :: #{long_gc := pos_integer() | false,
                     long_schedule := pos_integer() | false,
                     large_heap := pos_integer() | false,
                     busy_port := boolean(),
                     busy_dist_port := boolean(),
                     long_message_queue := boolean(),
                     max_rate := pos_integer()}.
%% Thresholds: `long_gc' and `long_schedule' in milliseconds, `large_heap' in
%% bytes (the VM counts words; beamprof converts), `false' to leave a kind
%% off; `long_message_queue' whether the VM reports long queues (OTP 27+; the
%% threshold is the application's `long_message_queue' option); `max_rate' is
%% events a second per kind.
-type status() :: #{state := active | held | disabled | not_started,
                    via => session | system_monitor,
                    holder => pid() | undefined,
                    previous => undefined | {pid(), list()},
                    settings => list(),
                    options => options() | false,
                    received => #{kind() => non_neg_integer()},
                    emitted => #{kind() => non_neg_integer()},
                    suppressed => #{kind() => non_neg_integer()}}.

-define(KINDS, [long_gc, long_schedule, large_heap, busy_port, busy_dist_port,
                long_message_queue]).
-define(RECHECK_MS, 5000).
-define(FLUSH_MS, 1000).
-define(DEFAULT_QUEUE, 10000).
%% OTP 25 to 27 have no trace:system/3: the module is passed as an argument, so that
%% neither xref nor dialyzer sees a literal call to it there (as beamprof_events does).
-define(TRACE, trace).

-record(state, {options :: options() | false,
                settings = [] :: list(),
                via = system_monitor :: session | system_monitor,
                session :: term(),
                threshold = ?DEFAULT_QUEUE :: pos_integer(),
                mode = disabled :: active | held | disabled,
                holder :: pid() | undefined,
                buckets = #{} :: #{kind() => {float(), integer()}},
                pending = #{} :: #{kind() => non_neg_integer()},
                received = #{} :: #{kind() => non_neg_integer()},
                emitted = #{} :: #{kind() => non_neg_integer()},
                suppressed = #{} :: #{kind() => non_neg_integer()},
                flush = false :: boolean()}).

%% Options

%% @doc The defaults: long_gc and long_schedule at 100 ms, large_heap at
%% 128 MiB, busy ports and long message queues on, at most 10 events a second
%% per kind.
-spec defaults() -> options().
defaults() ->
    #{long_gc => 100, long_schedule => 100, large_heap => 128 * 1024 * 1024,
      busy_port => true, busy_dist_port => true, long_message_queue => true, max_rate => 10}.

%% @doc Checks the value of the `system_monitor' option: `false' (no
%% monitor), or a map or proplist of any of the keys of {@link defaults/0}.
-spec check(term()) -> ok | {error, Message :: string()}.
check(false) -> ok;
check(Options) when is_list(Options) ->
    case beamprof_opts:is_pairs(Options) of
        true -> check(maps:from_list(Options));
        false -> {error, "Expected system_monitor to be false, a map or a list of {Key, Value}"}
    end;
check(Options) when is_map(Options) ->
    maps:fold(fun(K, V, ok) -> check(K, V); (_, _, Error) -> Error end, ok, Options);
check(_) ->
    {error, "Expected system_monitor to be false, a map or a list of {Key, Value}"}.

check(Key, false) when Key =:= long_gc; Key =:= long_schedule; Key =:= large_heap -> ok;
check(Key, V) when (Key =:= long_gc orelse Key =:= long_schedule),
                   is_integer(V), V >= 1, V =< 3600000 -> ok;
check(large_heap, V) when is_integer(V), V >= 1 -> ok;
check(Key, V) when (Key =:= busy_port orelse Key =:= busy_dist_port
                    orelse Key =:= long_message_queue), is_boolean(V) -> ok;
check(max_rate, V) when is_integer(V), V >= 1, V =< 100000 -> ok;
check(Key, V) ->
    case maps:is_key(Key, defaults()) of
        true -> {error, lists:flatten(io_lib:format("Expected system_monitor option ~ts to be ~ts, "
                                                    "got: ~0tp", [Key, expectation(Key), V]))};
        false -> {error, lists:flatten(io_lib:format("Unknown system_monitor option ~0tp", [Key]))}
    end.

expectation(large_heap) -> "false or a positive integer of bytes";
expectation(max_rate) -> "an integer of events a second in 1..100000";
expectation(busy_port) -> "a boolean";
expectation(busy_dist_port) -> "a boolean";
expectation(long_message_queue) -> "a boolean";
expectation(_) -> "false or an integer of milliseconds in 1..3600000".

%% @doc The complete options: `Options' (checked with {@link check/1}) over
%% the defaults; `false' stays `false'.
-spec options(term()) -> options() | false.
options(false) -> false;
options(Options) when is_list(Options) -> options(maps:from_list(Options));
options(Options) when is_map(Options) -> maps:merge(defaults(), Options).

%% @doc The list `erlang:system_monitor/2' takes for `Options', with long
%% message queues (OTP 27+) reported from `Threshold' messages until the queue
%% is below half of it.
-spec vm_settings(options(), pos_integer()) -> list().
vm_settings(#{} = O, Threshold) ->
    Words = erlang:system_info(wordsize),
    [{K, V} || K <- [long_gc, long_schedule], V <- [maps:get(K, O)], V =/= false] ++
        [{large_heap, max(1, V div Words)} || V <- [maps:get(large_heap, O)], V =/= false] ++
        [K || K <- [busy_port, busy_dist_port], maps:get(K, O)] ++
        [{long_message_queue, {Threshold div 2, Threshold}}
         || maps:get(long_message_queue, O), release() >= 27].

release() -> list_to_integer(erlang:system_info(otp_release)).

%% Whether this VM monitors in trace sessions (trace:system/3, OTP 28+).
sessions(T) ->
    release() >= 28 andalso code:ensure_loaded(T) =:= {module, T}
        andalso erlang:function_exported(T, system, 3).

%% Process

%% @private
-spec start_link(beamprof_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @doc Whether beamprof holds the system monitor: `state' is `active' (it
%% does), `held' (another process does: `holder'), `disabled' (option
%% `system_monitor => false') or `not_started'; `via' says how it monitors
%% (`session': a trace session of its own, OTP 28+; `system_monitor': the
%% node's one system monitor); with the settings asked for and how many
%% messages of each kind were received, emitted as events and suppressed by
%% the rate limit.
-spec status() -> status().
status() ->
    try gen_server:call(?MODULE, status, 5000)
    catch exit:{noproc, _} -> #{state => not_started}
    end.

%% @private
-spec init(beamprof_config:config()) -> {ok, #state{}}.
init(Config) ->
    process_flag(trap_exit, true),
    Options = options(maps:get(system_monitor, Config, defaults())),
    Threshold = maps:get(long_message_queue, Config, ?DEFAULT_QUEUE),
    State = #state{options = Options, threshold = Threshold,
                   via = case sessions(?TRACE) of true -> session; false -> system_monitor end,
                   settings = case Options of
                                  false -> [];
                                  _ -> vm_settings(Options, Threshold)
                              end},
    {ok, claim(State)}.

%% @private
-spec handle_call(status, gen_server:from(), #state{}) -> {reply, status(), #state{}}.
handle_call(status, _From, State) ->
    {reply, status(State), State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({monitor, Who, Kind, Info}, State) ->
    {noreply, message(Kind, Who, Info, State)};
handle_info(recheck, #state{mode = held} = State) ->
    {noreply, claim(State)};
handle_info(recheck, #state{mode = active} = State) ->
    {noreply, watch(State)};
handle_info(flush, State) ->
    {noreply, flush(State#state{flush = false})};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
%% A session goes with everything it set. Otherwise beamprof took the monitor
%% only when nobody held it: what it restores is no monitor.
terminate(_Reason, #state{mode = active, via = session, session = Session}) ->
    destroy(?TRACE, Session);
terminate(_Reason, #state{mode = active}) ->
    Self = self(),
    case erlang:system_monitor() of
        {Self, _} -> restore(undefined);
        _ -> ok
    end;
terminate(_Reason, _State) ->
    ok.

destroy(T, Session) ->
    _ = T:session_destroy(Session),
    ok.

restore(undefined) -> _ = erlang:system_monitor(undefined), ok;
restore({Pid, Settings}) -> _ = erlang:system_monitor(Pid, Settings), ok.

%% Taking the monitor

%% Takes the monitor if nobody holds it. erlang:system_monitor/2 answers with
%% what it replaced: if another process set it between the look and the
%% take, it is put back at once and beamprof waits.
claim(#state{options = false} = State) ->
    State#state{mode = disabled};
claim(#state{via = session} = State) ->
    open_session(?TRACE, State);
claim(#state{settings = Settings} = State) ->
    case erlang:system_monitor() of
        undefined ->
            case erlang:system_monitor(self(), Settings) of
                undefined ->
                    _ = erlang:send_after(?RECHECK_MS, self(), recheck),
                    State#state{mode = active, holder = self()};
                {Pid, Theirs} = Previous ->
                    restore(Previous),
                    held(State, Pid, Theirs)
            end;
        {Pid, Theirs} ->
            held(State, Pid, Theirs)
    end.

%% A trace session of our own, this process its tracer, each setting turned on
%% in it (a bare kind is `true' there).
open_session(T, #state{settings = Settings} = State) ->
    Session = T:session_create(beamprof_monitor, self(), []),
    [ok = T:system(Session, K, V) || Setting <- Settings,
                                     {K, V} <- [case Setting of
                                                    {_, _} -> Setting;
                                                    Kind -> {Kind, true}
                                                end]],
    State#state{mode = active, holder = self(), session = Session}.

held(#state{mode = Mode} = State, Pid, Theirs) ->
    Mode =:= held orelse
        ?LOG_WARNING("beamprof: the system monitor is held by ~0p (~0p); beamprof leaves it "
                     "alone and emits no [beamprof, monitor, _] events until it is free",
                     [Pid, Theirs], #{domain => [beamprof, monitor]}),
    _ = erlang:send_after(?RECHECK_MS, self(), recheck),
    State#state{mode = held, holder = Pid}.

%% While active, looks every few seconds whether someone took the monitor
%% over (erlang:system_monitor/2 replaces silently).
watch(State) ->
    Self = self(),
    case erlang:system_monitor() of
        {Self, _} ->
            _ = erlang:send_after(?RECHECK_MS, self(), recheck),
            State;
        undefined -> claim(State);
        {Pid, Theirs} -> held(State, Pid, Theirs)
    end.

status(#state{mode = Mode, holder = Holder, settings = Settings, options = Options} = S) ->
    #{state => Mode, via => S#state.via, holder => Holder, previous => undefined,
      settings => Settings,
      options => Options, received => S#state.received, emitted => S#state.emitted,
      suppressed => S#state.suppressed}.

%% Messages

%% The VM also says when a long queue is below half the threshold again: no event. It only
%% ever reports local processes.
message(long_message_queue, Who, Info, State)
  when not (is_pid(Who) andalso node(Who) =:= node() andalso Info =:= true) ->
    State;
message(Kind, Who, Info, #state{options = Options} = State) when is_map(Options) ->
    case lists:member(Kind, ?KINDS) of
        true -> limit(Kind, Who, Info, bump(#state.received, Kind, State), Options);
        false -> State
    end;
message(_Kind, _Who, _Info, State) ->
    State.

limit(Kind, Who, Info, #state{buckets = Buckets} = State, #{max_rate := Rate}) ->
    Native = erlang:monotonic_time(),
    Now = erlang:convert_time_unit(Native, native, millisecond),
    {Tokens, Last} = maps:get(Kind, Buckets, {float(Rate), Now}),
    Refilled = min(float(Rate), Tokens + (Now - Last) * Rate / 1000),
    case Refilled >= 1.0 of
        true ->
            Suppressed = maps:get(Kind, State#state.pending, 0),
            emit(Kind, Who, Info, Suppressed, Native, State#state.threshold),
            bump(#state.emitted, Kind,
                 State#state{buckets = Buckets#{Kind => {Refilled - 1.0, Now}},
                             pending = maps:remove(Kind, State#state.pending)});
        false ->
            Pending = State#state.pending,
            S1 = State#state{buckets = Buckets#{Kind => {Refilled, Now}},
                             pending = Pending#{Kind => maps:get(Kind, Pending, 0) + 1}},
            arm_flush(bump(#state.suppressed, Kind, S1))
    end.

bump(Field, Kind, State) ->
    Counts = element(Field, State),
    setelement(Field, State, Counts#{Kind => maps:get(Kind, Counts, 0) + 1}).

arm_flush(#state{flush = true} = State) -> State;
arm_flush(State) ->
    _ = erlang:send_after(?FLUSH_MS, self(), flush),
    State#state{flush = true}.

flush(#state{pending = Pending} = State) ->
    maps:foreach(fun(Kind, Count) ->
                         beamprof_events:emit([monitor, suppressed], #{count => Count},
                                              #{kind => Kind})
                 end, Pending),
    State#state{pending = #{}}.

%% A long queue is a process event, the one the scan emits too: the scan is told, so that
%% it does not say it again.
emit(long_message_queue, Pid, _Info, Suppressed, _Native, Threshold) ->
    beamprof_scan_server:reported(Pid),
    beamprof_events:emit([process, long_message_queue],
                         #{message_queue_len => queue_len(Pid), suppressed => Suppressed},
                         (beamprof_names:process(Pid))#{pid => Pid, threshold => Threshold,
                                                        source => system_monitor});
emit(Kind, Who, Info, Suppressed, Native, _Threshold) ->
    {Measurements, Metadata} = event(Kind, Who, Info),
    beamprof_events:emit([monitor, Kind], Measurements#{suppressed => Suppressed,
                                                        monotonic_time => Native},
                         Metadata).

%% Measurements and metadata of one monitor message.
event(long_gc, Pid, Info) ->
    {maps:merge(duration(Info), heap(Info)), describe(Pid)};
event(large_heap, Pid, Info) ->
    {heap(Info), describe(Pid)};
event(long_schedule, Port, Info) when is_port(Port) ->
    {duration(Info), maps:merge(describe(Port), #{port_op => proplist(port_op, Info)})};
event(long_schedule, Pid, Info) ->
    {duration(Info), maps:merge(describe(Pid), #{in => proplist(in, Info),
                                                 out => proplist(out, Info)})};
event(_Busy, Pid, Port) ->
    {#{}, maps:merge(describe(Port), describe(Pid))}.

queue_len(Pid) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, Q} -> Q;
        undefined -> 0
    end.

duration(Info) ->
    Ms = case proplist(timeout, Info) of N when is_integer(N) -> N; _ -> 0 end,
    #{duration => erlang:convert_time_unit(Ms, millisecond, native), duration_ms => Ms}.

heap(Info) ->
    Words = erlang:system_info(wordsize),
    Sizes = maps:from_list([{K, words(proplist(K, Info)) * Words}
                            || K <- [heap_size, heap_block_size, old_heap_size,
                                     old_heap_block_size, mbuf_size, stack_size]]),
    Sizes#{total_heap_size => lists:sum([maps:get(K, Sizes) || K <- [heap_block_size,
                                                                     old_heap_block_size,
                                                                     mbuf_size]])}.

words(N) when is_integer(N) -> N;
words(_) -> 0.

proplist(Key, List) when is_list(List) ->
    case lists:keyfind(Key, 1, List) of
        {Key, V} -> V;
        false -> undefined
    end;
proplist(_Key, _) ->
    undefined.

%% @doc Names a local process (`pid', `node', and `name', `label', `initial_call',
%% `current_function' as `beamprof_names:process/1' gives them) or port (`port', `port_name',
%% `owner'), cheaply: one `process_info/2' of three items, plus the
%% dictionary only for a process started by proc_lib. Gone or remote: the
%% values are `undefined'.
-spec describe(pid() | port()) -> map().
describe(Pid) when is_pid(Pid), node(Pid) =:= node() ->
    (beamprof_names:process(Pid))#{pid => Pid, node => node(Pid)};
describe(Pid) when is_pid(Pid) ->
    #{pid => Pid, name => undefined, label => undefined, initial_call => undefined,
      current_function => undefined, node => node(Pid)};
describe(Port) when is_port(Port), node(Port) =:= node() ->
    #{name := Name, owner := Owner} = beamprof_names:port(Port),
    #{port => Port, port_name => port_name(Name), owner => Owner};
describe(Port) when is_port(Port) ->
    #{port => Port, port_name => undefined, owner => undefined}.

port_name(undefined) ->
    undefined;
port_name(Name) ->
    case unicode:characters_to_binary(Name) of
        Bin when is_binary(Bin) -> Bin;
        _ -> undefined
    end.
