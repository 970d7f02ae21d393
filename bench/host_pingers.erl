%% host_stalls: what this machine itself does to a thread that wakes every
%% millisecond, with nothing of ours running: one bench/host_pinger per CPU,
%% a real-time thread pinned to that CPU waking every millisecond outside the
%% VM (see the C file), for Seconds. Prints, per CPU and in all, the worst
%% gap between wakes and the gaps over 2 ms per second. Context for the
%% pinger figures of scan_bench and gap_bench (which compare with an idle
%% VM in the same run, not with this): nothing in the guest at normal
%% priority can delay a real-time thread. run.sh builds the executable next
%% to the bench's beam files; without it this prints that it did not run.
-module(host_pingers).

-export([run/1]).

-define(LINE_TIMEOUT, 10000).

run(Seconds) ->
    io:format("~nhost_stalls: a real-time thread per CPU waking every 1 ms outside the VM, "
              "~B s, nothing else of ours running~n", [Seconds]),
    case start() of
        [] ->
            io:format("  no host pinger ran (not built, or no CPU could be pinned)~n");
        Pingers ->
            T0 = erlang:monotonic_time(microsecond),
            timer:sleep(Seconds * 1000),
            Wall = erlang:monotonic_time(microsecond) - T0,
            PerCpu = [{Cpu, Rt, collect(Port)} || {Cpu, Port, Rt} <- Pingers],
            Row = fun(Name, Gaps) ->
                          Over = length([G || G <- Gaps, G > 2000]),
                          [Name, bench_util:fmt(lists:max([0 | Gaps]) / 1000),
                           integer_to_list(Over), bench_util:per_s(Over, Wall)]
                  end,
            bench_util:print_table(["thread", "worst gap ms", "gaps > 2 ms", "per s"],
                                   [Row(io_lib:format("CPU ~B~s", [Cpu, rt(Rt)]), Gaps)
                                    || {Cpu, Rt, Gaps} <- PerCpu] ++
                                   [Row("all", lists:append([G || {_, _, G} <- PerCpu]))])
    end.

rt(true) -> "";
rt(false) -> " (real-time priority refused)".

%% Starts the host pingers, one per CPU it may pin a thread to:
%% [{Cpu, Port, RealTime}].
start() ->
    Exe = filename:join(filename:dirname(code:which(?MODULE)), "host_pinger"),
    case filelib:is_regular(Exe) of
        false -> [];
        true -> [{Cpu, Port, Rt}
                 || Cpu <- lists:seq(0, erlang:system_info(logical_processors_online) - 1),
                    {Port, Rt} <- [open(Exe, Cpu)]]
    end.

%% A CPU outside this process's set (a cpuset, CPUs numbered with holes)
%% makes the helper exit: that CPU goes without.
open(Exe, Cpu) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, [integer_to_list(Cpu)]}, {line, 128}, binary, exit_status]),
    receive
        {Port, {data, {eol, <<"rt ", Rt/binary>>}}} -> {Port, Rt =:= <<"1">>};
        {Port, {exit_status, _}} -> none
    after ?LINE_TIMEOUT -> close_port(Port), none
    end.

%% Stops one: its gaps over 1.5 ms, in microseconds.
collect(Port) ->
    true = port_command(Port, <<"stop\n">>),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, {eol, <<"gap ", Rest/binary>>}}} ->
            [S, E] = [binary_to_integer(X) || X <- binary:split(Rest, <<" ">>)],
            collect(Port, [(E - S) div 1000 | Acc]);
        {Port, {data, {eol, <<"end ", _/binary>>}}} ->
            receive {Port, {exit_status, _}} -> ok after ?LINE_TIMEOUT -> ok end,
            Acc
    after ?LINE_TIMEOUT -> error({host_pinger, no_end})
    end.

%% Closes a port that may already be closed.
close_port(Port) ->
    try port_close(Port) catch error:badarg -> true end.
