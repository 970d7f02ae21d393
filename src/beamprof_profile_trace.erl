-module(beamprof_profile_trace).
-include("beamprof_doc.hrl").
?MODULEDOC(
"The strategies that trace: `calls`, `eprof` (call_time breakpoints, as OTP's eprof), "
"`cprof` (OTP cprof: call_count breakpoints, every process), `fprof` and `call_graph` (OTP "
"fprof: a trace file, then its analysis).\n\n"
"Tracing is VM-wide, so one node-wide lock guards it: a holder process registered as "
"`beamprof_profile_trace`. A second caller finds the name taken and gets "
"`{error, {busy, Strategy}}` with the strategy that holds the lock. The holder monitors the "
"caller and is the one that clears the trace patterns (and stops fprof, removes its files), "
"on release or when the caller dies mid-call, so nothing is left set even when the profiled "
"call raises or its process is killed.\n\n"
"Cost: setting breakpoints on every loaded function takes milliseconds, and every traced "
"call is slower (2-10x for call-heavy code, far more for fprof, which writes every call to "
"a file). These are development tools; the profiling API refuses them while the gate is "
"closed.").

-export([run/3, lock_holder/0]).

-define(LOCK, beamprof_profile_trace).
-define(TOP, 100).

%% @doc Takes the lock, calls `Locked()', then runs `Call' (which must not raise) under
%% `Strategy'. Returns what `Call' returned, its duration (native units, read outside the
%% traced window so the reading itself is not counted) and what was measured; or
%% `{error, {busy, Held}}' (or `{error, {unavailable, Module}}' when OTP's tools are not
%% installed) without calling either.
-spec run(Strategy, Locked, Call) -> {ok, Result, integer(), map()} | {error, term()} when
      Strategy :: calls | eprof | cprof | fprof | call_graph, Locked :: fun(() -> any()),
      Call :: fun(() -> Result), Result :: term().
run(Strategy, Locked, Call) ->
    case code:ensure_loaded(tool(Strategy)) of
        {module, _} -> locked(Strategy, Locked, Call);
        {error, _} -> {error, {unavailable, tool(Strategy)}}
    end.

%% cprof and fprof come with OTP's tools application, which a release may leave out.
tool(cprof) -> cprof;
tool(fprof) -> fprof;
tool(call_graph) -> fprof;
tool(_) -> erlang.

locked(Strategy, Locked, Call) ->
    case lock(Strategy) of
        {busy, Held} -> {error, {busy, Held}};
        {ok, Holder} ->
            try
                _ = Locked(),
                traced(Strategy, Holder, Call)
            after release(Holder)
            end
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
            {ok, Outcome, Duration, call_time(Strategy, self())};
        _ ->
            {error, already_traced}
    end;
traced(cprof, _Holder, Call) ->
    _ = cprof:start(),
    {Outcome, Duration} = timed(Call, fun cprof:pause/0),
    {Total, Modules} = cprof:analyse(),
    Rows = lists:reverse(lists:keysort(2, [Row || {_, _, Fs} <- Modules, {MFA, _} = Row <- Fs,
                                                  not own(MFA)])),
    {ok, Outcome, Duration, #{calls => Total, functions => lists:sublist(Rows, ?TOP)}};
traced(Strategy, Holder, Call) ->
    Dir = private_dir(),
    Holder ! {dir, Dir},
    Trace = filename:join(Dir, "trace"),
    _ = quietly(Holder, fun fprof:start/0),
    case fprof:trace([start, {file, Trace}, {procs, [self()]}]) of
        ok ->
            {Outcome, Duration} = timed(Call, fun() -> fprof:trace(stop) end),
            {ok, Outcome, Duration, quietly(Holder, fun() -> fprof_result(Strategy, Dir, Trace) end)};
        Error ->
            Error
    end.

%% Call, then Stop (always). cprof counts every process and fprof records everything, so
%% the clock readings here are among what they see.
timed(Call, Stop) ->
    T0 = erlang:monotonic_time(),
    Outcome = try Call() after Stop() end,
    {Outcome, erlang:monotonic_time() - T0}.

%% Every loaded function's call_time entry for Pid: [{MFA, Calls, Microseconds}].
call_time(Strategy, Pid) ->
    Rows = [{MFA, N - own_calls(MFA), S * 1000000 + Us}
            || {M, _} <- code:all_loaded(), not own_module(M),
               {F, A} <- erlang:get_module_info(M, functions),
               MFA <- [{M, F, A}],
               {P, N, S, Us} <- entries(erlang:trace_info(MFA, call_time)),
               P =:= Pid, N > own_calls(MFA)],
    Total = lists:sum([N || {_, N, _} <- Rows]),
    case Strategy of
        calls ->
            Sorted = lists:reverse(lists:keysort(2, Rows)),
            #{calls => Total, functions => [{MFA, N} || {MFA, N, _} <- lists:sublist(Sorted, ?TOP)]};
        eprof ->
            Sorted = lists:reverse(lists:keysort(3, Rows)),
            #{calls => Total, time_us => lists:sum([T || {_, _, T} <- Rows]),
              functions => lists:sublist(Sorted, ?TOP)}
    end.

%% The call that turns the trace off is seen once on its way in.
own_calls({erlang, trace, 3}) -> 1;
own_calls({erts_internal, trace, 3}) -> 1;
own_calls({erlang, ensure_tracer_module_loaded, 2}) -> 1;
own_calls(_) -> 0.

entries({call_time, L}) when is_list(L) -> L;
entries(_) -> [].

fprof_result(Strategy, Dir, Trace) ->
    Analysis = filename:join(Dir, "analysis"),
    ok = fprof:profile({file, Trace}),
    ok = fprof:analyse([{dest, Analysis}, {totals, true}, {details, Strategy =:= call_graph}]),
    {ok, Terms} = file:consult(Analysis),
    Total = hd([Cnt || [{totals, Cnt, _, _}] <- Terms] ++ [0]),
    Entries = [E || {_, {MFA, _, _, _}, _} = E <- Terms, is_tuple(MFA), not own(MFA)],
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

%% fprof prints its progress to the caller's group leader: make it the holder (which answers
%% I/O requests and prints nothing) for the time of Fun.
quietly(Holder, Fun) ->
    Leader = group_leader(),
    true = group_leader(Holder, self()),
    try Fun()
    after group_leader(Leader, self())
    end.

own({M, _, _}) -> own_module(M);
own(_) -> false.

own_module(M) ->
    lists:member(M, [beamprof_profile, beamprof_profile_trace, beamprof_profile_opts, fprof, cprof]).

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

%% --- the lock ------------------------------------------------------------------------------

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
    _ = quietly(fun() -> fprof:stop() end),
    case Dir of
        undefined -> ok;
        _ -> _ = file:del_dir_r(Dir), ok
    end.

%% erlang:trace/3 on the calling process: the count it answers, or `error' when the
%% process is already traced by another tracer (badarg).
try_trace(Pid, Flags) ->
    try erlang:trace(Pid, true, Flags) catch error:badarg -> error end.

%% Runs a cleanup whose failure (nothing left to stop) does not matter.
quietly(Fun) ->
    try Fun() catch _:_ -> ok end.
