%% @doc The strategies that trace: `calls', `eprof' (call_time breakpoints, as OTP's
%% eprof), `cprof' (call_count breakpoints, every process), `fprof' and `call_graph'
%% (OTP fprof: a trace file, then its analysis).
%%
%% On OTP 27+ `calls', `eprof' and `cprof' run in a trace session of their own
%% (`beamprof_profile_session'): they take no lock, and neither disturb nor are
%% disturbed by `dbg', `recon_trace' or another tracer. fprof has no session API, so
%% `fprof' and `call_graph' use global tracing on every release, as all five do on OTP
%% 25 and 26.
%%
%% Global tracing is VM-wide, so one node-wide lock guards it: a holder process
%% registered as `beamprof_profile_trace'. A second caller finds the name taken and gets
%% `{error, {busy, Strategy}}' with the strategy that holds the lock. The holder
%% monitors the caller and is the one that clears the trace patterns (and stops fprof,
%% removes its files), on release or when the caller dies mid-call, so nothing is left
%% set even when the profiled call raises or its process is killed. Another tracer using
%% global tracing at the same time (`dbg', `recon_trace') shares it with the profile:
%% each may change or clear the other's settings. The result says so: `warnings' holds a
%% `global_tracer_active' entry when, as the profile started, some other process was
%% traced or some function had a trace pattern (finding out reads the trace state of
%% every process and loaded function: milliseconds on a large node, small beside the
%% profile itself). Every result says how it traced: `tracing => global | session'.
%%
%% Cost: setting breakpoints on every loaded function takes milliseconds, and every
%% traced call is slower (2-10x for call-heavy code, far more for fprof, which writes
%% every call to a file). These are development tools; the profiling API refuses them
%% while the gate is closed.
%%
%% With `async => true' the caller only runs its call traced: reading what was measured
%% (the call_time walk, cprof's analysis, fprof's profile and analysis) and the report
%% are handed to the process that holds the trace settings (the lock's holder here, the
%% session's owner in `beamprof_profile_session'), which clears them and lets go of the
%% lock afterwards. fprof's analysis lists each function once (the totals section: the
%% per-process sections repeat it).
-module(beamprof_profile_trace).

-export([run/4, lock_holder/0, handoff/2, analyse/1]).
-export_type([mode/0, outcome/0]).

-include_lib("kernel/include/logger.hrl").

-type mode() :: #{async := boolean(), wait := boolean()}.
%% `async': the analysis is handed to another process (see `run/4'); `wait': a lock held
%% by a profile that is only analysing (its call has returned) is waited for, not busy.
-type outcome() :: {ok, term(), integer(), map()}
                 | {async, term(), integer(), fun((fun((map()) -> any())) -> ok)}
                 | {error, term()}.

-define(LOCK, beamprof_profile_trace).
-define(TOP, 100).
-define(WAIT_MS, 60000).
%% The call that turns the trace off is seen once on its way in.
-define(OWN, #{{erlang, trace, 3} => 1, {erts_internal, trace, 3} => 1,
               {erlang, ensure_tracer_module_loaded, 2} => 1}).

%% @doc Takes the lock (global tracing only), calls `Locked()', then runs `Call' (which
%% must not raise) under `Strategy'. Returns what `Call' returned, its duration (native
%% units, read outside the traced window so the reading itself is not counted) and what was
%% measured, with `tracing' and `warnings'; or `{error, {busy, Held}}' (or
%% `{error, {unavailable, Module}}' when OTP's tools are not installed) without calling
%% either.
%%
%% With `async => true' nothing is measured in the caller once `Call' has returned and
%% tracing is off: the answer is `{async, Outcome, Duration, Then}', and the caller calls
%% `Then(Report)' at once; the process that holds the trace settings (the lock's holder, or
%% the session's owner) then reads them (call_time walk, cprof analysis, fprof's profile
%% and analysis), calls `Report(Result)', and only then clears the settings and lets go
%% of the lock.
-spec run(Strategy, Locked, Call, Mode) -> outcome() when
      Strategy :: calls | eprof | cprof | fprof | call_graph, Locked :: fun(() -> any()),
      Call :: fun(() -> term()), Mode :: mode().
run(Strategy, Locked, Call, Mode) ->
    case beamprof_profile_session:applies(Strategy) of
        true -> beamprof_profile_session:run(Strategy, Locked, Call, Mode);
        false -> global(Strategy, Locked, Call, Mode)
    end.

global(Strategy, Locked, Call, Mode) ->
    case code:ensure_loaded(tool(Strategy)) of
        {module, _} -> locked(Strategy, Locked, Call, Mode);
        {error, _} -> {error, {unavailable, tool(Strategy)}}
    end.

%% cprof and fprof come with OTP's tools application, which a release may leave out.
tool(cprof) -> cprof;
tool(fprof) -> fprof;
tool(call_graph) -> fprof;
tool(_) -> erlang.

locked(Strategy, Locked, Call, #{async := Async, wait := Wait}) ->
    case lock(Strategy, Wait) of
        {busy, Held} -> {error, {busy, Held}};
        {ok, Holder} ->
            try traced_locked(Strategy, Holder, Locked, Call) of
                {ok, Outcome, Duration, Analyse} when Async ->
                    {async, Outcome, Duration, handoff(Holder, Analyse)};
                {ok, Outcome, Duration, Analyse} ->
                    try {ok, Outcome, Duration, Analyse()} after release(Holder) end;
                Error ->
                    release(Holder),
                    Error
            catch Class:Reason:Stack ->
                    release(Holder),
                    erlang:raise(Class, Reason, Stack)
            end
    end.

traced_locked(Strategy, Holder, Locked, Call) ->
    _ = Locked(),
    Warnings = others(),
    case traced(Strategy, Holder, Call) of
        {ok, Outcome, Duration, Analyse} ->
            {ok, Outcome, Duration,
             fun() -> (Analyse())#{tracing => global, warnings => Warnings} end};
        Error ->
            Error
    end.

%% @doc The `Then' of an async answer: hands `Analyse' and the caller's `Report' to `Pid'
%% (which holds the trace settings and must run `analyse/1' on the message
%% `{analyse, Caller, Work}' before clearing them).
-spec handoff(pid(), fun(() -> map())) -> fun((fun((map()) -> any())) -> ok).
handoff(Pid, Analyse) ->
    Caller = self(),
    fun(Report) ->
            Pid ! {analyse, Caller, fun() -> Report(Analyse()) end},
            ok
    end.

%% @doc Runs the work handed over by `handoff/2' in the process that received it, with
%% its output to nobody (fprof prints its progress); a failure is logged, not raised, so
%% that the settings are cleared after it all the same.
-spec analyse(fun(() -> any())) -> ok.
analyse(Work) ->
    put('$beamprof_analysing', true),
    try silenced(Work), ok
    catch Class:Reason:Stack ->
            ?LOG_WARNING("beamprof: a profile's analysis failed: ~0tp",
                         [{Class, Reason, Stack}], #{beamprof => analysis_failed})
    end.

%% @doc The strategy holding the lock now, or `none'.
-spec lock_holder() -> atom().
lock_holder() ->
    case whereis(?LOCK) of
        undefined -> none;
        Pid -> held(Pid)
    end.

%% --- strategies ----------------------------------------------------------------------------

traced(Strategy, Holder, Call) when Strategy =:= calls; Strategy =:= eprof ->
    _ = erlang:trace_pattern({'_', '_', '_'}, true, [call_time]),
    T0 = erlang:monotonic_time(),
    case try_trace(self(), [call, {tracer, Holder}]) of
        1 ->
            Outcome = try Call() after erlang:trace(self(), false, [call]) end,
            Duration = erlang:monotonic_time() - T0,
            Self = self(),
            {ok, Outcome, Duration,
             fun() -> beamprof_profile_counts:call_time(Strategy, Self, fun call_time/1, ?OWN) end};
        _ ->
            {error, already_traced}
    end;
traced(cprof, _Holder, Call) ->
    _ = cprof:start(),
    {Outcome, Duration} = timed(Call, fun cprof:pause/0),
    {ok, Outcome, Duration, fun cprof_result/0};
traced(Strategy, Holder, Call) ->
    Dir = private_dir(),
    Holder ! {dir, Dir},
    Trace = filename:join(Dir, "trace"),
    _ = quietly(Holder, fun fprof:start/0),
    case fprof:trace([start, {file, Trace}, {procs, [self()]}]) of
        ok ->
            {Outcome, Duration} = timed(Call, fun() -> fprof:trace(stop) end),
            {ok, Outcome, Duration, fun() -> fprof_result(Strategy, Dir, Trace) end};
        Error ->
            Error
    end.

%% Call, then Stop (always). cprof counts every process and fprof records everything, so
%% the clock readings here are among what they see.
timed(Call, Stop) ->
    T0 = erlang:monotonic_time(),
    Outcome = try Call() after Stop() end,
    {Outcome, erlang:monotonic_time() - T0}.

call_time(MFA) -> erlang:trace_info(MFA, call_time).

cprof_result() ->
    {Total, Modules} = cprof:analyse(),
    Rows = lists:reverse(lists:keysort(2, [Row || {_, _, Fs} <- Modules, {MFA, _} = Row <- Fs,
                                                  not beamprof_profile_counts:own(MFA)])),
    #{calls => Total, functions => lists:sublist(Rows, ?TOP)}.

%% fprof prints its progress: to nobody (silenced/1), whichever process analyses.
fprof_result(Strategy, Dir, Trace) ->
    silenced(fun() -> fprof_analysis(Strategy, Dir, Trace) end).

fprof_analysis(Strategy, Dir, Trace) ->
    Analysis = filename:join(Dir, "analysis"),
    ok = fprof_profile(Trace, 3),
    ok = fprof:analyse([{dest, Analysis}, {totals, true}, {details, Strategy =:= call_graph}]),
    {ok, Terms} = file:consult(Analysis),
    Total = hd([Cnt || [{totals, Cnt, _, _}] <- Terms] ++ [0]),
    Entries = [E || {_, {MFA, _, _, _}, _} = E <- totals_section(Terms), is_tuple(MFA),
                    not beamprof_profile_counts:own(MFA)],
    Functions = lists:reverse(lists:keysort(4, [F || {_, {_, _, _, _} = F, _} <- Entries])),
    Result = #{calls => Total, functions => lists:sublist(Functions, ?TOP)},
    case Strategy of
        fprof -> Result;
        call_graph ->
            Result#{call_graph => [#{function => MFA, calls => Cnt, acc_ms => Acc, own_ms => Own,
                                     callers => [element(1, C) || C <- Callers],
                                     called => [element(1, C) || C <- Called]}
                                   || {Callers, {MFA, Cnt, Acc, Own}, Called} <- Entries]}
    end.

%% fprof's server links to the trace reader it has just spawned: a short trace can be read
%% to its end, and the reader gone, before the link, which then fails, and the profile
%% answers `{error, noproc}' (seen on a loaded machine). Its state is idle again: read it
%% again.
fprof_profile(Trace, Tries) ->
    case fprof:profile({file, Trace}) of
        {error, noproc} when Tries > 1 -> fprof_profile(Trace, Tries - 1);
        Result -> Result
    end.

%% The analysis lists every function once for all processes together (`{totals, true}'),
%% then again under each process's header (`[{"<0.90.0>", Cnt, Acc, Own}]'): the first
%% section alone has each function once.
totals_section([[{Pid, _, _, _}] | _]) when is_list(Pid) -> [];
totals_section([Term | Terms]) -> [Term | totals_section(Terms)];
totals_section([]) -> [].

%% Runs Fun with this process's group leader a process that answers every I/O request and
%% prints nothing.
silenced(Fun) ->
    Sink = spawn(fun sink/0),
    Leader = group_leader(),
    true = group_leader(Sink, self()),
    try Fun()
    after
        group_leader(Leader, self()),
        exit(Sink, kill)
    end.

sink() ->
    receive
        {io_request, From, ReplyAs, _} -> From ! {io_reply, ReplyAs, ok}, sink()
    end.

%% fprof prints its progress to the caller's group leader: make it the holder (which answers
%% I/O requests and prints nothing) for the time of Fun.
quietly(Holder, Fun) ->
    Leader = group_leader(),
    true = group_leader(Holder, self()),
    try Fun()
    after group_leader(Leader, self())
    end.

%% A directory only this user can read, created fresh (make_dir fails on anything already
%% there, a symbolic link included).
private_dir() ->
    Base = filename:basedir(user_cache, "beamprof"),
    ok = filelib:ensure_path(Base),
    Dir = filename:join(Base, "fprof-" ++ integer_to_list(erlang:unique_integer([positive]))
                        ++ "-" ++ os:getpid()),
    ok = file:make_dir(Dir),
    ok = file:change_mode(Dir, 8#700),
    Dir.

%% --- other users of global tracing -------------------------------------------------------

%% A `global_tracer_active' warning when, as a profile starts, another process is traced
%% (or new processes will be) or a function has a trace pattern or counter: all of it
%% global tracing (on OTP 27+, erlang:trace_info/2 answers for global tracing only, and
%% sessions of others' do not meet ours). Nothing of the profile's own is traced yet.
others() ->
    Procs = traced_processes(),
    Funs = length([MFA || MFA <- [on_load | loaded_functions()], patterned(MFA)]),
    case {Procs, Funs} of
        {0, 0} -> [];
        _ -> [beamprof_warnings:new(global_tracer_active,
                                    io_lib:format("another tracer uses global tracing (~B ~ts "
                                                  "traced, ~B ~ts with trace patterns); this "
                                                  "profile shares it: each may change or clear "
                                                  "the other's settings",
                                                  [Procs, plural(Procs, "process", "processes"),
                                                   Funs, plural(Funs, "function", "functions")]))]
    end.

traced_processes() ->
    New = case erlang:trace_info(new, tracer) of {tracer, []} -> 0; _ -> 1 end,
    New + length([P || P <- erlang:processes(),
                       case erlang:trace_info(P, tracer) of
                           {tracer, []} -> false;
                           undefined -> false;
                           _ -> true
                       end]).

loaded_functions() ->
    [{M, F, A} || {M, _} <- code:all_loaded(), {F, A} <- erlang:get_module_info(M, functions)].

patterned(MFA) ->
    case erlang:trace_info(MFA, all) of
        {all, Items} when is_list(Items) ->
            lists:any(fun({_, V}) -> V =/= false andalso V =/= undefined end, Items);
        _ -> false
    end.

plural(1, One, _Many) -> One;
plural(_, _One, Many) -> Many.

%% --- the lock ------------------------------------------------------------------------------

%% With Wait, a lock whose holder is only analysing a finished async profile (its call
%% has returned: the holder says so, or its caller is this process, which cannot be in
%% two profiles at once) is waited for (60 s at most), then asked again.
lock(Strategy, true) ->
    case lock(Strategy) of
        {busy, _} = Busy ->
            case analysing_holder() of
                undefined -> Busy;
                Pid -> gone(Pid), lock(Strategy)
            end;
        Locked ->
            Locked
    end;
lock(Strategy, false) ->
    lock(Strategy).

analysing_holder() ->
    case whereis(?LOCK) of
        undefined -> undefined;
        Pid ->
            case erlang:process_info(Pid, dictionary) of
                {dictionary, D} when is_list(D) ->
                    Mine = proplists:get_value('$beamprof_owner', D) =:= self(),
                    case Mine orelse proplists:get_value('$beamprof_analysing', D) =:= true of
                        true -> Pid;
                        false -> undefined
                    end;
                _ -> undefined
            end
    end.

gone(Pid) ->
    Ref = monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, _} -> ok
    after ?WAIT_MS -> demonitor(Ref, [flush]), ok
    end.

lock(Strategy) ->
    Owner = self(),
    {Pid, Ref} = spawn_monitor(fun() -> holder(Owner, Strategy) end),
    receive
        {Pid, locked} -> demonitor(Ref, [flush]), {ok, Pid};
        {'DOWN', Ref, process, Pid, busy} -> {busy, lock_holder()};
        {'DOWN', Ref, process, Pid, _} -> {busy, unknown}
    end.

release(Holder) ->
    Ref = monitor(process, Holder),
    Holder ! {release, self()},
    receive {'DOWN', Ref, process, Holder, _} -> ok end.

held(Pid) ->
    case erlang:process_info(Pid, dictionary) of
        {dictionary, D} -> proplists:get_value('$beamprof_strategy', D, unknown);
        undefined -> none
    end.

holder(Owner, Strategy) ->
    try register(?LOCK, self()) of
        true ->
            put('$beamprof_strategy', Strategy),
            put('$beamprof_owner', Owner),
            Mon = monitor(process, Owner),
            Owner ! {self(), locked},
            holder_loop(Owner, Mon, Strategy, undefined)
    catch
        error:badarg -> exit(busy)
    end.

holder_loop(Owner, Mon, Strategy, Dir) ->
    receive
        {dir, NewDir} -> holder_loop(Owner, Mon, Strategy, NewDir);
        {io_request, From, ReplyAs, _} ->
            From ! {io_reply, ReplyAs, ok},
            holder_loop(Owner, Mon, Strategy, Dir);
        {release, Owner} -> clean(Strategy, Dir);
        {analyse, Owner, Work} -> analyse(Work), clean(Strategy, Dir);
        {'DOWN', Mon, process, Owner, _} -> clean(Strategy, Dir)
    end.

clean(Strategy, _Dir) when Strategy =:= calls; Strategy =:= eprof ->
    _ = erlang:trace_pattern({'_', '_', '_'}, false, [call_time]),
    ok;
clean(cprof, _Dir) ->
    _ = cprof:stop(),
    ok;
clean(_Fprof, Dir) ->
    _ = quietly(fun() -> fprof:trace(stop) end),
    stop_fprof(),
    case Dir of
        undefined -> ok;
        _ -> _ = file:del_dir_r(Dir), ok
    end.

%% fprof:stop/0 returns when its server has answered, before the server has exited and let go
%% of its name: the next profile's fprof:start/0 would find the old server, which then goes.
%% So the lock is released only once the server is gone (5 s at most).
stop_fprof() ->
    case whereis(fprof_server) of
        undefined -> ok;
        Pid ->
            Ref = monitor(process, Pid),
            _ = quietly(fun() -> fprof:stop() end),
            receive {'DOWN', Ref, process, Pid, _} -> ok
            after 5000 -> demonitor(Ref, [flush]), ok
            end
    end.

%% erlang:trace/3 on the calling process: the count it answers, or `error' when the
%% process is already traced by another tracer (badarg).
try_trace(Pid, Flags) ->
    try erlang:trace(Pid, true, Flags) catch error:badarg -> error end.

%% Runs a cleanup whose failure (nothing left to stop) does not matter.
quietly(Fun) ->
    try Fun() catch _:_ -> ok end.
