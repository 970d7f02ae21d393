%% @doc The profiling API: wrap a call, profile it as configured, emit events, return the
%% call's own result.
%%
%% Entry points (also in the `beamprof' facade): `profile/2', `profile_if_slow/2',
%% `profile_production/2', `profile_memory/2', `profile_calls/2', `flame_graph/2'; and
%% `decorated/5', which the Erlang parse transform (`beamprof_transform') and the Elixir
%% decorator (`Beamprof.Decorator') generate calls to.
%%
%% A call goes: `enabled' false, or the rate's draw says no: `Fun()' as a tail call, nothing
%% else (one random draw: `rand:mwc59/1' on a state in the process dictionary). Drawn: the
%% `env' check; then the output (strategies `sample' and `flame_graph' with `output'): its
%% directory must exist and be writable, and the path must not be a directory, or the API
%% answers `{error, {unwritable, Path, Reason}}' without calling `Fun' (a decorated
%% function runs unprofiled, the problem is logged and its stop event says `skipped =>
%% {unwritable, Path, Reason}'); then the gate (`check_load', default `true'): a closed gate
%% runs `Fun' unprofiled and emits the stop (or exception) event with `skipped =>
%% gate_closed' in its metadata, every strategy alike. Otherwise the strategy runs around
%% the call. An exception in `Fun' is re-raised with its class, reason and stacktrace after
%% the exception event. Every other option is checked when the options are compiled,
%% before anything runs (`{badarg, Message}').
%%
%% The output may be any chardata (a string, a binary as Elixir passes, a deep list of
%% both); the format comes from its extension unless `format' is given (see
%% `beamprof_flame:format_of/1'; an extension that names none raises `{badarg, Message}').
%%
%% A file that still cannot be written after the call (its directory removed meanwhile) is
%% logged (a logger warning with no domain, so that a plain shell prints it; metadata
%% `beamprof => write_failed') and said in the events (`error'); the call's own value is
%% returned unchanged: decorated production code never sees it.
%%
%% `async => true': the caller returns the call's value as soon as the call is done, for
%% every strategy; its stop or exception event, the reports and all the work that feeds
%% them run in another process: the sampler (`sample', `flame_graph'), a spawned process
%% (`memory', and the stop event of a call that ran unprofiled), or the process that holds
%% the trace settings for the tracing strategies (the lock's holder, or the trace
%% session's owner on OTP 27+), which walks call_time, analyses cprof or runs fprof's
%% profile and analysis, reports, and only then clears the settings and releases the lock.
%% An API call that finds the lock held by such an analysis waits for it (60 s at most);
%% a decorated call runs unprofiled (`skipped => {busy, Strategy}').
%%
%% Events (prefix `[beamprof]' by default), all with metadata `module', `function', `arity',
%% `strategy', `metadata' (the user's), `entry' (the entry point: profile, profile_if_slow, ...):
%% <ul>
%% <li>`[profile, start]' `#{system_time}'</li>
%% <li>`[profile, stop]' `#{duration}' (native units). A call that ran unprofiled has
%%     `skipped' (`gate_closed', `{busy, Strategy}', `already_traced', `{unavailable,
%%     Module}', `{unwritable, Path, Reason}') and `warnings' (one `profile_skipped' entry
%%     saying why). For `sample' and `flame_graph' it comes once the profile is built and
%%     written and carries what `sample' does below: `warnings', `output' and `error'.</li>
%% <li>`[profile, exception]' `#{duration}'; metadata `kind', `reason', `stacktrace' (and
%%     the same keys as stop)</li>
%% <li>`[profile, sample]' `#{samples}'; metadata `profile' (the flame-graph profile; its
%%     title says why when it holds no sample), `truncated', `output' (the file written, or
%%     `undefined'), `error' (`{write_failed, Path, Reason}' when the file could not be
%%     written), `warnings' (`[]', or a `profile_no_samples' entry: the call was shorter
%%     than the interval, or the sampler got no reading in on a loaded node)</li>
%% <li>`[profile, slow_operation]' `#{duration, threshold}' (native units, ms)</li>
%% <li>`[profile, production]' `#{duration}'</li>
%% <li>`[profile, memory]' `#{before, after, delta}' (bytes of `erlang:memory(total)');
%%     metadata `by_type', `process'</li>
%% <li>`[profile, calls]' `#{calls}'; metadata `functions' (top 100, each function once),
%%     `call_graph' (each function once, with its callers and callees), `time_us' (eprof),
%%     `tracing' (`session': a trace session of its own, OTP 27+ for calls, eprof and
%%     cprof; `global': global tracing, under the node-wide lock) and `warnings'
%%     (`beamprof_warnings' entries; `global_tracer_active' when another tracer used
%%     global tracing as the profile started)</li>
%% <li>`[profile, complete]' `#{duration, memory_delta, samples}': the profile is done
%%     (after the file is written); `memory_delta' is the calling process's memory change
%%     in bytes; for `sample' and `flame_graph' the metadata has `warnings', `output' and
%%     `error' as `sample' does</li>
%% </ul>
-module(beamprof_profile).

-export([profile/2, profile_if_slow/2, profile_production/2, profile_memory/2,
         profile_calls/2, flame_graph/2, decorated/5]).

-type options() :: map() | [{atom(), term()}].
-type body() :: fun(() -> term()).

-define(RNG, '$beamprof_profile_rng').
-define(FULL, 16#100000000).
-define(ACTIVE, '$beamprof_profile_active').

%% @doc Profiles `Fun' with `Options' (strategy `sample' by default) and returns its result.
%% Strategies on global tracing (`fprof', `call_graph'; all tracing strategies on OTP 25 and
%% 26) return `{error, {busy, Strategy}}' without calling `Fun' while another such profile
%% runs on the node.
-spec profile(Fun, Options) -> term() when Fun :: body(), Options :: options().
profile(Fun, Options) -> api(profile, Fun, Options).

%% @doc Samples `Fun' only when it runs longer than `threshold' ms (default 100): sampling
%% starts at the threshold, and `slow_operation' is emitted for a slow call.
-spec profile_if_slow(Fun, Options) -> term() when Fun :: body(), Options :: options().
profile_if_slow(Fun, Options) -> api(profile_if_slow, Fun, Options).

%% @doc Samples a small fraction of calls (`sample_rate' or `rate', default 0.001), asking
%% the gate; emits `production' for each profiled call.
-spec profile_production(Fun, Options) -> term() when Fun :: body(), Options :: options().
profile_production(Fun, Options) -> api(profile_production, Fun, Options).

%% @doc Memory before and after `Fun'; the `memory' event when the growth reaches
%% `threshold' bytes (default none: every call).
-spec profile_memory(Fun, Options) -> term() when Fun :: body(), Options :: options().
profile_memory(Fun, Options) -> api(profile_memory, Fun, Options).

%% @doc Counts the calls `Fun' makes (strategy `calls'; or `cprof', `eprof', `fprof',
%% `call_graph').
-spec profile_calls(Fun, Options) -> term() when Fun :: body(), Options :: options().
profile_calls(Fun, Options) -> api(profile_calls, Fun, Options).

%% @doc Samples `Fun' and writes a flame graph to `output' (`format' svg, html, speedscope,
%% folded or pprof; from the file name's extension by default). Answers `{error, {unwritable,
%% Path, Reason}}' without calling `Fun' when the file cannot be written there.
-spec flame_graph(Fun, Options) -> term() when Fun :: body(), Options :: options().
flame_graph(Fun, Options) -> api(flame_graph, Fun, Options).

%% @doc The body of a decorated function `Module:Function/Arity': `Options' is what
%% `beamprof_profile_opts:compile/2' made at compile time (or raw options, validated here).
%% Unlike the API, a busy trace lock runs the function unprofiled (`skipped => {busy, S}').
-spec decorated(Module, Function, Arity, Fun, Options) -> term() when
      Module :: module(), Function :: atom(), Arity :: arity(), Fun :: body(),
      Options :: beamprof_profile_opts:compiled() | options().
decorated(Module, Function, Arity, Fun, #{compiled := true} = C) ->
    case draw(C) of
        true -> drawn(C, Fun, {Module, Function, Arity}, decorated);
        false -> Fun()
    end;
decorated(Module, Function, Arity, Fun, Options) ->
    run(beamprof_profile_opts:cached(profile, Options), Fun, {Module, Function, Arity}, decorated).

%% --- the fast path -------------------------------------------------------------------------

api(Kind, Fun, Options) when is_function(Fun, 0) ->
    run(beamprof_profile_opts:cached(Kind, Options), Fun, undefined, api);
api(Kind, Options, Fun) when is_function(Fun, 0) ->
    erlang:error({badarg, lists:flatten(
                            io_lib:format("Arguments in the wrong order: ~ts(Fun, Options) "
                                          "takes the fun first", [Kind]))}, [Options, Fun]);
api(Kind, Fun, Options) ->
    erlang:error({badarg, lists:flatten(
                            io_lib:format("Expected Fun, the first argument of ~ts/2, to be a "
                                          "fun of arity 0, got: ~0tP", [Kind, Fun, 8]))},
                 [Fun, Options]).

run(C, Fun, MFA, Mode) ->
    case draw(C) of
        true -> drawn(C, Fun, MFA, Mode);
        false -> Fun()
    end.

%% Is this call profiled? One map lookup: `draw' is -1 when disabled, 2^32 when every call
%% is profiled, else compared with a 32-bit random draw.
draw(#{draw := Draw}) ->
    if
        Draw < 0 -> false;
        Draw >= ?FULL -> true;
        true -> draw() < Draw
    end.

%% One step of a 59-bit multiply-with-carry generator kept in the process dictionary
%% (rand:mwc59/1: a few nanoseconds; rand:uniform_real/0 costs about 110 ns here).
draw() ->
    X = case get(?RNG) of
            undefined -> rand:mwc59_seed();
            X0 -> rand:mwc59(X0)
        end,
    _ = put(?RNG, X),
    rand:mwc59_value32(X).

%% A call inside a call this process is profiling already (a decorated function that
%% recurses, a profiled call inside another) runs as it is: the outer profile covers it.
drawn(#{env := Envs} = C, Fun, MFA, Mode) ->
    case get(?ACTIVE) =:= undefined andalso
        (Envs =:= all orelse lists:member(beamprof_profile_opts:current_env(), Envs)) of
        false -> Fun();
        true -> writable(C, Fun, meta(C, Fun, MFA), Mode)
    end.

%% A file to write is checked before anything runs: the API answers `{error, {unwritable,
%% Path, Reason}}' without calling Fun; a decorated function runs unprofiled (it must run)
%% and the problem is logged and said in its stop event.
writable(#{output := Output, strategy := S} = C, Fun, Meta, Mode)
  when Output =/= undefined, (S =:= sample orelse S =:= flame_graph) ->
    case beamprof_file:check_writable(Output) of
        ok -> gated(C, Fun, Meta, Mode);
        {error, Reason} when Mode =:= api -> {error, {unwritable, Output, Reason}};
        {error, Reason} ->
            _ = beamprof_file:write_failed(Output, Reason),
            unprofiled(C, Fun, skipped(Meta, {unwritable, Output, Reason}))
    end;
writable(C, Fun, Meta, Mode) ->
    gated(C, Fun, Meta, Mode).

gated(#{check_load := true} = C, Fun, Meta, Mode) ->
    case beamprof_nif:gate() of
        open -> profiled(C, Fun, Meta, Mode);
        closed -> unprofiled(C, Fun, skipped(Meta, gate_closed))
    end;
gated(C, Fun, Meta, Mode) ->
    profiled(C, Fun, Meta, Mode).

meta(#{strategy := S, metadata := User, kind := Entry}, Fun, MFA) ->
    {M, F, A} = case MFA of
                    undefined -> fun_mfa(Fun);
                    _ -> MFA
                end,
    #{module => M, function => F, arity => A, strategy => S, metadata => User, entry => Entry}.

fun_mfa(Fun) ->
    {module, M} = erlang:fun_info(Fun, module),
    {name, F} = erlang:fun_info(Fun, name),
    {arity, A} = erlang:fun_info(Fun, arity),
    {M, F, A}.

%% --- profiled calls ------------------------------------------------------------------------

unprofiled(C, Fun, Meta) ->
    {Outcome, Duration, _} = timed(Fun),
    off_path(C, fun() -> ended(C, Outcome, Duration, Meta) end),
    result(Outcome).

profiled(#{strategy := S} = C, Fun, Meta, _Mode) when S =:= sample; S =:= flame_graph ->
    start_event(C, Meta),
    Sampler = beamprof_profile_sample:start(self(), sampler_options(C)),
    {Outcome, Duration, MemDelta} = timed(Fun),
    Report = fun(R) -> sample_report(C, Meta, Outcome, Duration, MemDelta, R) end,
    case C of
        #{async := true} -> beamprof_profile_sample:stop_async(Sampler, Report);
        _ -> Report(beamprof_profile_sample:stop(Sampler))
    end,
    result(Outcome);
profiled(#{strategy := memory} = C, Fun, Meta, _Mode) ->
    start_event(C, Meta),
    Before = beamprof_profile_memory:before(),
    {Outcome, Duration, MemDelta} = timed(Fun),
    Result = beamprof_profile_memory:after_call(Before),
    off_path(C, fun() ->
                        ended(C, Outcome, Duration, Meta),
                        memory_report(C, Meta, Duration, MemDelta, Result)
                end),
    result(Outcome);
profiled(#{strategy := S, async := Async} = C, Fun, Meta, Mode) ->
    Started = fun() -> start_event(C, Meta) end,
    %% Only Fun runs inside the traced window: the readings here are not counted.
    Call = fun() -> outcome(Fun) end,
    Run = #{async => Async, wait => Mode =:= api},
    {Traced, MemDelta} = active(fun() -> beamprof_profile_trace:run(S, Started, Call, Run) end),
    Report = fun(Outcome, Duration) ->
                     fun(Result) ->
                             ended(C, Outcome, Duration, Meta),
                             calls_report(C, Meta, Duration, MemDelta, Result)
                     end
             end,
    case Traced of
        {ok, Outcome, Duration, Result} ->
            (Report(Outcome, Duration))(Result),
            result(Outcome);
        {async, Outcome, Duration, Then} ->
            %% The holder of the trace settings analyses and reports.
            ok = Then(Report(Outcome, Duration)),
            result(Outcome);
        {error, Reason} when Mode =:= api ->
            {error, Reason};
        {error, Reason} ->
            unprofiled(C, Fun, skipped(Meta, Reason))
    end.

sampler_options(#{interval := I, duration := D, threshold := T}) ->
    #{interval => I, duration => D, delay => case T of undefined -> 0; _ -> T end}.

timed(Fun) ->
    {{Outcome, Duration}, MemDelta} =
        active(fun() ->
                       T0 = erlang:monotonic_time(),
                       Outcome = outcome(Fun),
                       {Outcome, erlang:monotonic_time() - T0}
               end),
    {Outcome, Duration, MemDelta}.

%% Runs Work with this process marked as profiling (so nested profiled calls run as they
%% are); returns its result and the process's memory change over it.
active(Work) ->
    M0 = beamprof_profile_memory:process_memory(),
    _ = put(?ACTIVE, true),
    Result = Work(),
    _ = erase(?ACTIVE),
    {Result, beamprof_profile_memory:process_memory() - M0}.

outcome(Fun) ->
    try {ok, Fun()}
    catch Class:Reason:Stack -> {Class, Reason, Stack}
    end.

result({ok, Value}) -> Value;
result({Class, Reason, Stack}) -> erlang:raise(Class, Reason, Stack).

off_path(#{async := true}, Work) -> _ = spawn(Work), ok;
off_path(_, Work) -> Work().

%% --- reports -------------------------------------------------------------------------------

start_event(C, Meta) ->
    emit(C, start, #{system_time => erlang:system_time()}, Meta).

ended(C, {ok, _}, Duration, Meta) ->
    emit(C, stop, #{duration => Duration}, Meta);
ended(C, {Class, Reason, Stack}, Duration, Meta) ->
    emit(C, exception, #{duration => Duration},
         Meta#{kind => Class, reason => Reason, stacktrace => Stack}).

sample_report(C, Meta, Outcome, Duration, _MemDelta, #{started := false}) ->
    %% A call faster than the threshold: never sampled, nothing to report.
    ended(C, Outcome, Duration, Meta),
    production(C, Meta, Duration);
sample_report(#{threshold := T, output := Output, format := Format} = C, Meta, Outcome,
              Duration, MemDelta, #{samples := N, truncated := Cut} = Result) ->
    Warnings = no_samples(C, N, Duration),
    Profile = beamprof_profile_sample:profile(Result, title(Meta, Warnings)),
    Done = maps:merge(Meta#{warnings => Warnings}, write(Profile, Output, Format)),
    ended(C, Outcome, Duration, Done),
    slow(C, Meta, Duration, T),
    production(C, Meta, Duration),
    emit(C, sample, #{samples => N}, Done#{profile => Profile, truncated => Cut}),
    emit(C, complete, #{duration => Duration, memory_delta => MemDelta, samples => N}, Done).

%% A profile without samples says why: the call was shorter than the interval, or the
%% sampler got no reading in (a loaded node: it waits for a scheduler like any process).
no_samples(#{interval := I, threshold := T}, 0, Duration) ->
    Ms = erlang:convert_time_unit(Duration, native, millisecond),
    Sampled = Ms - case T of undefined -> 0; _ -> T end,
    Message = case Sampled < I of
                  true -> io_lib:format("no samples: the call took ~B ms, less than the "
                                        "sampling interval (~B ms); use a smaller interval, "
                                        "or strategy calls or eprof for short calls", [Ms, I]);
                  false -> io_lib:format("no samples: no reading of the call's stack was "
                                         "made in ~B ms at ~B ms intervals (the sampler got "
                                         "no scheduler in time: a loaded node)", [Sampled, I])
              end,
    [beamprof_warnings:new(profile_no_samples, Message)];
no_samples(_C, _N, _Duration) ->
    [].

%% Meta of a call that ran unprofiled: why (`skipped') and a warning saying it.
skipped(Meta, Reason) ->
    Meta#{skipped => Reason,
          warnings => [beamprof_warnings:new(profile_skipped,
                                             ["the call ran unprofiled: ", skip_text(Reason)])]}.

skip_text(gate_closed) ->
    "beamprof's load gate was closed (the node is busy); check_load => false profiles anyway";
skip_text({busy, S}) ->
    io_lib:format("a ~0tp profile held global tracing", [S]);
skip_text({unwritable, Path, Reason}) ->
    io_lib:format("the output ~0tp cannot be written (~0tp)", [Path, Reason]);
skip_text(Reason) ->
    io_lib:format("~0tp", [Reason]).

memory_report(#{threshold := T} = C, Meta, Duration, MemDelta,
              #{before := B, 'after' := A, delta := D} = Result) ->
    %% No threshold: every call's figures; a threshold: growth reaching it
    %% (a number always compares below the atom, so undefined is explicit).
    case T =:= undefined orelse max(D, MemDelta) >= T of
        true -> emit(C, memory, #{before => B, 'after' => A, delta => D},
                     Meta#{by_type => maps:get(by_type, Result), process => maps:get(process, Result)});
        false -> ok
    end,
    production(C, Meta, Duration),
    emit(C, complete, #{duration => Duration, memory_delta => MemDelta, samples => 0}, Meta).

calls_report(C, Meta, Duration, MemDelta, #{calls := Calls} = Result) ->
    emit(C, calls, #{calls => Calls}, maps:merge(Meta, maps:remove(calls, Result))),
    emit(C, complete, #{duration => Duration, memory_delta => MemDelta, samples => 0}, Meta).

slow(_C, _Meta, _Duration, undefined) -> ok;
slow(C, Meta, Duration, Threshold) ->
    case erlang:convert_time_unit(Duration, native, millisecond) >= Threshold of
        true -> emit(C, slow_operation, #{duration => Duration, threshold => Threshold}, Meta);
        false -> ok
    end.

production(#{kind := profile_production} = C, Meta, Duration) ->
    emit(C, production, #{duration => Duration}, Meta);
production(_C, _Meta, _Duration) ->
    ok.

title(#{module := M, function := F, arity := A}, Warnings) ->
    unicode:characters_to_binary([io_lib:format("~ts:~ts/~B", [M, F, A]),
                                  [[" (", Message, ")"] || #{message := Message} <- Warnings]]).

%% What the events say of the file: `output' (the path written, or undefined), and
%% `error' when writing failed (logged too: nobody may be watching the events).
write(_Profile, undefined, _Format) -> #{output => undefined};
write(Profile, Output, Format) ->
    case beamprof_flame:write(Profile, Output, Format) of
        {ok, Path} -> #{output => Path};
        {error, Reason} -> #{output => undefined,
                             error => beamprof_file:write_failed(Output, Reason)}
    end.

emit(#{emit_metrics := false}, _Event, _Measurements, _Meta) -> ok;
emit(_C, Event, Measurements, Meta) ->
    beamprof_events:emit([profile, Event], Measurements, Meta).
