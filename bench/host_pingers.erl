%% The machine's own floor for a ping gap: one bench/host_pinger per CPU, a
%% real-time thread waking every millisecond outside the VM (see the C file).
%% A gap of the VM's pinger that overlaps a gap of a host pinger may be the
%% machine's doing; one that overlaps none was the VM's own. run.sh builds
%% the executable next to the bench's beam files; without it, no host
%% pinger runs and every gap counts as the VM's own. watch/0 and unwatch/1
%% run them beside the VM's 1 ms pinger (beamprof_ct) and set the two apart.
-module(host_pingers).

-export([watch/0, unwatch/1, ms/1, note/1]).

-define(LINE_TIMEOUT, 10000).

%% Starts the host pingers, then the VM's 1 ms pinger.
watch() ->
    Host = start(),
    {Host, beamprof_ct:start_pinger()}.

%% Stops both: the VM pinger's figures (beamprof_ct:stop_pinger/1 without its
%% `long' list), the host's worst gap (host_us), whether every host pinger ran
%% real-time (rt) and how many ran, and the VM pinger's gaps over 2 ms that
%% overlap no host stall: how many (own) and the worst (own_us, 0 if none).
unwatch({Host, Pinger}) ->
    #{long := Long} = Vm = beamprof_ct:stop_pinger(Pinger),
    #{gaps := HostGaps, worst_us := HostWorst} = Stopped = stop(Host),
    {Own, OwnWorst} = own(Long, HostGaps),
    maps:merge(maps:remove(long, Vm), (maps:with([rt, running], Stopped))#{
                 host_us => HostWorst, own => Own, own_us => OwnWorst}).

%% Starts the host pingers, one per CPU it may pin a thread to; returns them
%% with whether they run real-time.
start() ->
    Exe = filename:join(filename:dirname(code:which(?MODULE)), "host_pinger"),
    case filelib:is_regular(Exe) of
        false -> [];
        true -> [P || Cpu <- lists:seq(0, erlang:system_info(logical_processors_online) - 1),
                      {_, _} = P <- [open(Exe, Cpu)]]
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

%% Stops them: #{rt (all real-time), running (how many), gaps: [{StartUs,
%% EndUs}] over 1.5 ms on erlang:monotonic_time(microsecond), worst_us}.
stop(Pingers) ->
    Offset = os_offset_ns(),
    Gaps = lists:append([collect(Port, Offset) || {Port, _} <- Pingers]),
    #{rt => Pingers =/= [] andalso lists:all(fun({_, Rt}) -> Rt end, Pingers),
      running => length(Pingers),
      gaps => Gaps, worst_us => lists:max([0 | [E - S || {S, E} <- Gaps]])}.

collect(Port, Offset) ->
    true = port_command(Port, <<"stop\n">>),
    collect(Port, Offset, []).

collect(Port, Offset, Acc) ->
    receive
        {Port, {data, {eol, <<"gap ", Rest/binary>>}}} ->
            [S, E] = [(binary_to_integer(X) + Offset) div 1000 || X <- binary:split(Rest, <<" ">>)],
            collect(Port, Offset, [{S, E} | Acc]);
        {Port, {data, {eol, <<"end ", _/binary>>}}} ->
            receive {Port, {exit_status, _}} -> ok after ?LINE_TIMEOUT -> ok end,
            Acc
    after ?LINE_TIMEOUT -> error({host_pinger, no_end})
    end.

%% erlang:monotonic_time(nanosecond) minus the OS monotonic clock the host
%% pingers read (CLOCK_MONOTONIC, as the VM's own source here).
os_offset_ns() ->
    {clock_id, 'CLOCK_MONOTONIC'} =
        lists:keyfind(clock_id, 1, erlang:system_info(os_monotonic_time_source)),
    T1 = erlang:monotonic_time(nanosecond),
    {time, Os} = lists:keyfind(time, 1, erlang:system_info(os_monotonic_time_source)),
    T2 = erlang:monotonic_time(nanosecond),
    (T1 + T2) div 2 - erlang:convert_time_unit(Os, native, nanosecond).

%% The VM pinger's gaps over 2 ms that overlap no host pinger gap: how many,
%% and the worst (0 when none).
own(VmLong, HostGaps) ->
    Own = [G || {End, G} <- VmLong, G > 2000,
                not lists:any(fun({S, E}) -> S < End andalso End - G < E end, HostGaps)],
    {length(Own), lists:max([0 | Own])}.

%% A worst gap for a table: "none" when there was no gap to speak of.
ms(0) -> "none";
ms(Us) -> bench_util:fmt(Us / 1000).

%% What the own-gap figures are worth, from unwatch/1's result.
note(#{running := 0}) ->
    "no host thread ran (not built, or no CPU could be pinned): every gap counts as own, "
    "own gaps err high";
note(#{rt := false}) ->
    "the host threads ran without real-time priority (refused): they stall when the VM is "
    "busy and excuse its gaps, own gaps err low";
note(#{}) ->
    "the host threads ran at real-time priority".

%% Closes a port that may already be closed.
close_port(Port) ->
    try port_close(Port) catch error:badarg -> true end.
