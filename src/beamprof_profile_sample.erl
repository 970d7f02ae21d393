%% @doc The statistical sampler of the profiling API: a process of its own that reads
%% `process_info(Target, current_stacktrace)' of one process every `interval' ms and
%% counts the stacks it sees.
%%
%% It starts after `delay' ms (0, or a slow-call threshold: calls that finish earlier
%% are never sampled), stops sampling at `duration' ms after it started, or when the
%% target dies, and answers `stop/1' with the profile. Stacks are counted as tuples and
%% turned into binaries `<<"m:f/a">>' once at the end, root first, cut at the profiling
%% wrapper (the frames of `beamprof_profile' and its callers are not the profiled
%% call's). While it samples it holds `backtrace_depth' at 64 or more
%% (`beamprof_profile_depth').
%%
%% For the pprof file (`beamprof_pprof') it also keeps, from its own readings, each
%% module's source file as the stack traces name it (one map entry per module), the
%% target's pid, registered name and `proc_lib' label (read once, as sampling starts) and
%% the wall-clock span; `profile/2' puts them under the profile's internal `pprof' key.
%%
%% Cost to the target: each reading is a signal the target answers between reductions (a
%% few microseconds for a stack of tens of frames); at the default 10 ms that is well
%% under 0.1% of its time. The counting is done by the sampler process.
-module(beamprof_profile_sample).

-export([start/2, stop/1, stop_async/2, profile/2]).
-export_type([options/0, result/0]).

-type options() :: #{interval := pos_integer(), duration := pos_integer() | infinity,
                     delay := non_neg_integer()}.
-type result() :: #{samples := non_neg_integer(), started := boolean(),
                    stacks := #{[mfa()] => pos_integer()}, truncated := non_neg_integer(),
                    files => #{module() => binary()}, process => #{binary() => binary()},
                    interval => pos_integer(), since => integer(), until => integer()}.

-define(DEPTH, 64).
-define(WRAPPER, beamprof_profile).

%% @doc Starts sampling `Target' (normally the caller).
-spec start(Target, Options) -> pid() when Target :: pid(), Options :: options().
start(Target, #{interval := Interval, duration := Duration, delay := Delay}) ->
    spawn(fun() -> init(Target, Interval, Duration, Delay) end).

%% @doc Stops the sampler and returns what it counted.
-spec stop(Sampler) -> result() when Sampler :: pid().
stop(Sampler) ->
    Ref = monitor(process, Sampler),
    Sampler ! {stop, self(), Ref},
    receive
        {Ref, Result} -> demonitor(Ref, [flush]), Result;
        {'DOWN', Ref, process, _, _} -> empty(false)
    end.

%% @doc Stops the sampler without waiting: the sampler itself calls `Then(Result)' (the
%% profiling work that is kept off the caller's path) and exits.
-spec stop_async(Sampler, Then) -> ok when Sampler :: pid(), Then :: fun((result()) -> any()).
stop_async(Sampler, Then) ->
    Sampler ! {stop_async, Then},
    ok.

%% @doc The counted stacks as a profile of the flame-graph contract: frames as binaries,
%% root first, weights in samples; its `pprof' key (internal) holds what the pprof file
%% adds: the process's labels, the source file of each frame, the sampling period.
-spec profile(Result, Title) -> map() when Result :: result(), Title :: unicode:chardata().
profile(#{stacks := Stacks, samples := N} = Result, Title) ->
    {Rows, Cache} = maps:fold(fun(Stack, Count, {Acc, Cache}) ->
                                      {Frames, Cache1} = names(Stack, Cache, []),
                                      {[{Frames, Count} | Acc], Cache1}
                              end, {[], #{}}, Stacks),
    Profile = #{stacks => lists:reverse(lists:keysort(2, Rows)), unit => samples,
                title => Title, samples => N},
    case Result of
        #{interval := Interval, process := Labels, since := Since} ->
            Until = maps:get(until, Result, Since),
            Files = maps:get(files, Result, #{}),
            Profile#{pprof => #{kind => process, period_ns => Interval * 1000000,
                                labels => Labels, time_nanos => Since,
                                duration_nanos => max(0, Until - Since),
                                files => frame_files(Cache, Files)}};
        _ ->
            Profile
    end.

%% --- the sampler process -------------------------------------------------------------

init(Target, Interval, Duration, 0) ->
    sample(Target, monitor(process, Target), Interval, Duration);
init(Target, Interval, Duration, Delay) ->
    Mon = monitor(process, Target),
    receive
        Stop when element(1, Stop) =:= stop; element(1, Stop) =:= stop_async ->
            finish(Stop, empty(false));
        {'DOWN', Mon, process, _, _} ->
            ok
    after Delay ->
            sample(Target, Mon, Interval, Duration)
    end.

sample(Target, Mon, Interval, Duration) ->
    _ = beamprof_profile_depth:acquire(?DEPTH),
    Now = erlang:monotonic_time(millisecond),
    Acc = (empty(true))#{process => process_labels(Target), interval => Interval,
                         since => os:system_time(nanosecond), files => #{}},
    loop(Target, Mon, Interval, Now + Interval, deadline(Duration), Acc).

%% The source file of each frame name whose module's file is known.
frame_files(Names, Files) ->
    maps:fold(fun({M, _, _}, Name, Acc) ->
                      case Files of
                          #{M := File} -> Acc#{Name => File};
                          _ -> Acc
                      end
              end, #{}, Names).

%% The target's pid, and its registered name and proc_lib label when it has them (as
%% beamprof_names reads them on every release; a label is printed unless it is text).
process_labels(Target) ->
    #{name := Name, label := Label} = beamprof_names:process(Target),
    Pid = #{<<"pid">> => list_to_binary(pid_to_list(Target))},
    Named = case Name of
                undefined -> Pid;
                _ -> Pid#{<<"registered_name">> => atom_to_binary(Name)}
            end,
    case Label of
        undefined -> Named;
        _ -> Named#{<<"process_label">> => label_text(Label)}
    end.

label_text(Label) when is_binary(Label) -> Label;
label_text(Label) ->
    case io_lib:printable_unicode_list(Label) of
        true -> unicode:characters_to_binary(Label);
        false -> unicode:characters_to_binary(io_lib:format("~0tp", [Label]))
    end.

deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

%% Readings on a fixed schedule (Next, in ms), so the time a reading takes does not stretch
%% the interval; a reading that comes too late skips the ticks it missed.
loop(Target, Mon, Interval, Next, Deadline, Acc) ->
    receive
        Stop when element(1, Stop) =:= stop; element(1, Stop) =:= stop_async ->
            finish(Stop, Acc);
        {'DOWN', Mon, process, _, _} ->
            ok
    after max(0, Next - erlang:monotonic_time(millisecond)) ->
            Acc1 = read(Target, Acc),
            Now = erlang:monotonic_time(millisecond),
            case expired(Deadline) of
                true -> wait_stop(Mon, Acc1);
                false -> loop(Target, Mon, Interval, max(Next + Interval, Now), Deadline, Acc1)
            end
    end.

expired(infinity) -> false;
expired(Deadline) -> erlang:monotonic_time(millisecond) >= Deadline.

%% The duration is over: keep the counts until asked. The target is the only one that asks
%% (stop before its exit, in order), so its exit ends the sampler.
wait_stop(Mon, Acc) ->
    receive
        Stop when element(1, Stop) =:= stop; element(1, Stop) =:= stop_async ->
            finish(Stop, Acc);
        {'DOWN', Mon, process, _, _} ->
            ok
    end.

finish(Stop, #{since := _} = Acc) -> finish1(Stop, Acc#{until => os:system_time(nanosecond)});
finish(Stop, Acc) -> finish1(Stop, Acc).

finish1({stop, From, Ref}, Acc) -> From ! {Ref, Acc}, ok;
finish1({stop_async, Then}, Acc) -> _ = Then(Acc), ok.

empty(Started) ->
    #{samples => 0, started => Started, stacks => #{}, truncated => 0}.

read(Target, Acc) ->
    case erlang:process_info(Target, current_stacktrace) of
        {current_stacktrace, Trace} ->
            case trim(Trace, []) of
                {[], _} -> Acc;
                {Stack, Cut} -> count(Stack, Cut, files(Trace, Acc))
            end;
        undefined ->
            Acc
    end.

count(Stack, Cut, #{samples := N, stacks := Stacks, truncated := T} = Acc) ->
    Acc#{samples := N + 1, stacks := maps:update_with(Stack, fun(C) -> C + 1 end, 1, Stacks),
         truncated := T + case Cut of true -> 0; false -> 1 end}.

%% Each module's source file, the first time a trace names it (until the wrapper).
files(Trace, #{files := Files} = Acc) ->
    Acc#{files := files1(Trace, Files)}.

files1([{?WRAPPER, _, _, _} | _], Files) -> Files;
files1([{M, _, _, Loc} | Rest], Files) when not is_map_key(M, Files) ->
    case lists:keyfind(file, 1, Loc) of
        {file, File} ->
            case unicode:characters_to_binary(File) of
                Bin when is_binary(Bin) -> files1(Rest, Files#{M => Bin});
                _ -> files1(Rest, Files)
            end;
        false -> files1(Rest, Files)
    end;
files1([_ | Rest], Files) -> files1(Rest, Files);
files1([], Files) -> Files.

%% Leaf first in, root first out; stops at the first frame of the wrapper (true), or at the
%% end of a stack cut by backtrace_depth (false).
trim([], Acc) -> {Acc, false};
trim([{?WRAPPER, _, _, _} | _], Acc) -> {Acc, true};
trim([{M, F, A, _} | Rest], Acc) when is_list(A) -> trim(Rest, [{M, F, length(A)} | Acc]);
trim([{M, F, A, _} | Rest], Acc) -> trim(Rest, [{M, F, A} | Acc]).

names([], Cache, Acc) -> {lists:reverse(Acc), Cache};
names([MFA | Rest], Cache, Acc) ->
    case Cache of
        #{MFA := Name} -> names(Rest, Cache, [Name | Acc]);
        _ ->
            Name = name(MFA),
            names(Rest, Cache#{MFA => Name}, [Name | Acc])
    end.

name({M, F, A}) ->
    <<(atom_to_binary(M))/binary, $:, (atom_to_binary(F))/binary, $/, (integer_to_binary(A))/binary>>.
