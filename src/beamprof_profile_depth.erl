%% @doc Holds the VM's `backtrace_depth' flag high while stack samplers run, and puts it
%% back.
%%
%% `process_info(Pid, current_stacktrace)' is cut to `backtrace_depth' frames (8 by
%% default), too few for a flame graph. The flag is VM-wide, so one registered process,
%% started on demand, owns the change: the first holder raises it (never lowers it),
%% each holder is monitored, and when the last one releases or dies the flag is restored
%% to what it was found and the process exits. It restores before it unregisters, so a
%% holder that arrives later reads the original value.
-module(beamprof_profile_depth).

-export([acquire/1]).

-define(NAME, beamprof_profile_depth).

%% @doc Raises `backtrace_depth' to at least `Depth' for as long as the calling process lives
%% (the release is its exit). Returns the depth in force.
-spec acquire(Depth) -> pos_integer() when Depth :: pos_integer().
acquire(Depth) ->
    Server = server(),
    Ref = monitor(process, Server),
    Server ! {acquire, self(), Ref, Depth},
    receive
        {Ref, InForce} -> demonitor(Ref, [flush]), InForce;
        {'DOWN', Ref, process, _, _} -> acquire(Depth)
    end.

server() ->
    case whereis(?NAME) of
        undefined ->
            Self = self(),
            {Pid, Ref} = spawn_monitor(fun() -> start(Self) end),
            receive
                {registered, Pid} -> demonitor(Ref, [flush]), Pid;
                {'DOWN', Ref, process, Pid, _} -> server()
            end;
        Pid ->
            Pid
    end.

start(Parent) ->
    try register(?NAME, self()) of
        true -> Parent ! {registered, self()}, loop(undefined, 0, #{})
    catch
        error:badarg -> ok
    end.

loop(Original, InForce, Holders) ->
    receive
        {acquire, Pid, Ref, Depth} when Original =:= undefined ->
            Found = erlang:system_flag(backtrace_depth, Depth),
            Now = max(Found, Depth),
            _ = Now > Depth andalso erlang:system_flag(backtrace_depth, Now),
            Pid ! {Ref, Now},
            loop(Found, Now, Holders#{monitor(process, Pid) => Pid});
        {acquire, Pid, Ref, Depth} ->
            Now = max(InForce, Depth),
            _ = Now > InForce andalso erlang:system_flag(backtrace_depth, Now),
            Pid ! {Ref, Now},
            loop(Original, Now, Holders#{monitor(process, Pid) => Pid});
        {'DOWN', Ref, process, _, _} ->
            Rest = maps:remove(Ref, Holders),
            case map_size(Rest) of
                0 ->
                    _ = erlang:system_flag(backtrace_depth, Original),
                    unregister(?NAME);
                _ ->
                    loop(Original, InForce, Rest)
            end
    end.
