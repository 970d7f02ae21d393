%% @private
%% @doc The strategies that count or time calls (`calls', `eprof', `cprof') in
%% a trace session of their own (OTP 27+, `trace:session_create/3').
%%
%% A session has its own breakpoints and process flags: `dbg', `recon_trace'
%% or any other tracer (global tracing, or a session of its own) neither
%% disturbs these profiles nor is disturbed by them, and two of them may run
%% at once. No node-wide lock is taken.
%%
%% The session belongs to an owner process, which is also its tracer (these
%% strategies set counters, so no trace message is sent): it monitors the
%% caller and destroys the session on release or when the caller dies, which
%% undoes every setting of the session at once. With `async', the caller hands
%% the owner the reading of the counters and the report: the owner does them,
%% then destroys the session. Were the owner killed, the
%% session would go with the last copy of its handle (a dropped handle
%% destroys its session).
-module(beamprof_profile_session).

-export([available/0, applies/1, run/4]).

%% OTP 25 and 26 have no `trace' module: it is passed as an argument, so that neither
%% xref nor dialyzer sees a literal call to it there (as beamprof_events does for telemetry).
-define(TRACE, trace).

%% @doc Whether this VM has trace sessions (the `trace' module, OTP 27+).
-spec available() -> boolean().
available() ->
    %% The release first: on OTP 25 and 26 ensure_loaded would search the code path.
    list_to_integer(erlang:system_info(otp_release)) >= 27
        andalso code:ensure_loaded(?TRACE) =:= {module, ?TRACE}
        andalso erlang:function_exported(?TRACE, session_create, 3).

%% @doc Whether `Strategy' runs in a session here.
-spec applies(atom()) -> boolean().
applies(Strategy) ->
    (Strategy =:= calls orelse Strategy =:= eprof orelse Strategy =:= cprof)
        andalso available().

%% @doc As `beamprof_profile_trace:run/4', in a session of its own: calls
%% `Started()', then `Call' under `Strategy'. The result says
%% `tracing => session' and has no warnings. With `async', the session's
%% owner reads the counters, reports and destroys the session.
-spec run(Strategy, Started, Call, Mode) -> beamprof_profile_trace:outcome() when
      Strategy :: calls | eprof | cprof, Started :: fun(() -> any()),
      Call :: fun(() -> term()), Mode :: beamprof_profile_trace:mode().
run(Strategy, Started, Call, #{async := Async}) ->
    run(?TRACE, Strategy, Started, Call, Async).

run(T, Strategy, Started, Call, Async) ->
    {Owner, Session} = open(T),
    try
        _ = Started(),
        traced(T, Strategy, {Owner, Session}, Call)
    of
        {ok, Outcome, Duration, Analyse0} ->
            Analyse = fun() -> (Analyse0())#{tracing => session, warnings => []} end,
            case Async of
                true -> {async, Outcome, Duration, beamprof_profile_trace:handoff(Owner, Analyse)};
                false -> try {ok, Outcome, Duration, Analyse()} after close(Owner) end
            end
    catch Class:Reason:Stack ->
            close(Owner),
            erlang:raise(Class, Reason, Stack)
    end.

%% cprof counts every process's calls: pausing the counters is seen on its way in (the
%% trace module's calls are left out as beamprof's own; the BIF under them is taken off).
traced(T, cprof, {_Owner, S}, Call) ->
    _ = T:function(S, on_load, true, [call_count]),
    _ = T:function(S, {'_', '_', '_'}, true, [call_count]),
    T0 = erlang:monotonic_time(),
    Outcome = try Call()
              after
                  _ = T:function(S, {'_', '_', '_'}, pause, [call_count]),
                  _ = T:function(S, on_load, false, [call_count])
              end,
    Duration = erlang:monotonic_time() - T0,
    {ok, Outcome, Duration,
     fun() ->
             beamprof_profile_counts:call_count(fun(MFA) -> T:info(S, MFA, call_count) end,
                                                #{{erts_internal, trace_pattern, 4} => 1})
     end};
%% calls and eprof count this process's calls only: the owner turns its flag off, so that
%% no call of ours is counted after Call (a send and a receive are not calls).
traced(T, Strategy, {Owner, S}, Call) ->
    _ = T:function(S, {'_', '_', '_'}, true, [call_time]),
    Self = self(),
    Mon = monitor(process, Owner),
    T0 = erlang:monotonic_time(),
    _ = T:process(S, Self, true, [call]),
    Outcome = try Call()
              after
                  Owner ! {untrace, Self},
                  receive
                      {Owner, untraced} -> ok;
                      {'DOWN', Mon, process, Owner, _} -> ok
                  end
              end,
    Duration = erlang:monotonic_time() - T0,
    demonitor(Mon, [flush]),
    {ok, Outcome, Duration,
     fun() ->
             beamprof_profile_counts:call_time(Strategy, Self,
                                               fun(MFA) -> T:info(S, MFA, call_time) end, #{})
     end}.

%% --- the session's owner -------------------------------------------------------------------

open(T) ->
    Caller = self(),
    {Pid, Ref} = spawn_monitor(fun() -> owner(T, Caller) end),
    receive
        {Pid, session, Session} -> demonitor(Ref, [flush]), {Pid, Session};
        {'DOWN', Ref, process, Pid, Reason} -> erlang:error({trace_session_failed, Reason})
    end.

close(Owner) ->
    Ref = monitor(process, Owner),
    Owner ! {release, self()},
    receive {'DOWN', Ref, process, Owner, _} -> ok end.

owner(T, Caller) ->
    Session = T:session_create(beamprof_profile, self(), []),
    Mon = monitor(process, Caller),
    Caller ! {self(), session, Session},
    owner_loop(T, Caller, Mon, Session).

%% Drains whatever a tracer may be sent until the caller is done or gone.
owner_loop(T, Caller, Mon, Session) ->
    receive
        {untrace, Caller} ->
            _ = T:process(Session, Caller, false, [call]),
            Caller ! {self(), untraced},
            owner_loop(T, Caller, Mon, Session);
        {release, Caller} -> _ = T:session_destroy(Session), ok;
        {analyse, Caller, Work} ->
            beamprof_profile_trace:analyse(Work),
            _ = T:session_destroy(Session),
            ok;
        {'DOWN', Mon, process, Caller, _} -> _ = T:session_destroy(Session), ok;
        _ -> owner_loop(T, Caller, Mon, Session)
    end.
