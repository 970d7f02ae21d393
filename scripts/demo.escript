#!/usr/bin/env escript
%% make demo: starts beamprof on this node, puts it under a workload and
%% prints what beamprof sees: top/0 at rest and under load, the gate closing
%% and reopening (with the events a handler received), and the C thread's
%% history of the scheduler figure the gate used.
-mode(compile).

main(_) ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    true = code:add_patha(filename:join(Root, "_build/default/lib/beamprof/ebin")),
    ok = beamprof:start(#{interval => 500,
                          system_monitor => #{long_gc => 20, long_schedule => 20}}),
    Self = self(),
    ok = beamprof:attach(<<"demo">>, [beamprof, gate, closed],
                         fun(E, M, Meta, _) -> Self ! {event, E, M, Meta} end, nil),
    ok = beamprof:attach(<<"demo-open">>, [beamprof, gate, open],
                         fun(E, M, Meta, _) -> Self ! {event, E, M, Meta} end, nil),
    Kinds = [long_gc, long_schedule, large_heap, busy_port, busy_dist_port],
    ok = beamprof:attach_many(<<"demo-monitor">>, [[beamprof, monitor, K] || K <- Kinds],
                              fun(E, M, Meta, _) -> Self ! {monitor_event, E, M, Meta} end, nil),
    section("At rest (two samples in)"),
    wait_samples(2),
    beamprof:top(),
    section("Under load: a CPU hog per scheduler, a 200k-message mailbox, a large heap"),
    Load = start_load(),
    Closed = wait_event([beamprof, gate, closed], 10000),
    wait_samples(2),
    beamprof:top(),
    io:format("~ngate: ~p~n", [beamprof:gate_info()]),
    print_event(Closed),
    section("VM monitor events under load (the first of each kind; beamprof_monitor:status())"),
    monitor_events(),
    section("Load stopped"),
    [exit(P, kill) || P <- Load],
    Opened = wait_event([beamprof, gate, open], 20000),
    print_event(Opened),
    wait_samples(1),
    io:format("gate: ~p~n", [beamprof:gate()]),
    section("What the C thread saw, newest last (every 100 ms tick)"),
    chart(lists:reverse(beamprof_nif:history())),
    ok = beamprof:stop().

section(Title) -> io:format("~n== ~s ==~n", [Title]).

wait_samples(N) ->
    Ref = make_ref(), Self = self(),
    ok = beamprof:attach(Ref, [beamprof, vm, sample], fun(_, _, _, _) -> Self ! Ref end, nil),
    [receive Ref -> ok after 10000 -> error(no_sample) end || _ <- lists:seq(1, N)],
    beamprof:detach(Ref).

wait_event(Name, Timeout) ->
    receive {event, Name, M, Meta} -> {Name, M, Meta}
    after Timeout -> {Name, timeout}
    end.

print_event({Name, timeout}) -> io:format("event ~p: did not arrive~n", [Name]);
print_event({Name, M, Meta}) -> io:format("event ~p~n  measurements ~p~n  metadata ~p~n", [Name, M, Meta]).

start_load() ->
    Hogs = [spawn(fun Spin() -> Spin() end) || _ <- lists:seq(1, erlang:system_info(schedulers_online))],
    Mailbox = spawn(fun() -> receive never -> ok end end),
    [Mailbox ! {msg, I} || I <- lists:seq(1, 200000)],
    Heap = spawn(fun() -> L = lists:seq(1, 12000000), receive never -> length(L) end end),
    Hogs ++ [Mailbox, Heap].

chart(History) ->
    Rows = [{max(Ratio, 0.0), Src, Gate} || {_, Ratio, Src, _, _, _, _, Gate, _} <- History],
    Last = lists:sublist(Rows, max(1, length(Rows) - 99), 100),
    io:format("scheduler ratio used by the gate (# = 10%), source, gate~n"),
    lists:foreach(fun({R, S, G}) ->
                          io:format("~5.1f% ~-10s ~-7s ~s~n", [R * 100, lists:duplicate(round(R * 10), $#), S, G])
                  end, every(Last, 4)).

every(L, N) -> [X || {I, X} <- lists:zip(lists:seq(1, length(L)), L), I rem N =:= 0].

%% The first [beamprof, monitor, Kind] event of each kind received so far.
monitor_events() ->
    Events = monitor_events([]),
    [io:format("event ~p~n  measurements ~p~n  metadata ~p~n", [E, M, Meta])
     || {E, M, Meta} <- Events],
    Events =:= [] andalso io:format("no monitor event yet~n"),
    #{state := State, received := Received, suppressed := Suppressed} = beamprof_monitor:status(),
    io:format("system monitor ~p; received ~p; suppressed by the rate limit ~p~n",
              [State, Received, Suppressed]).

monitor_events(Acc) ->
    receive
        {monitor_event, E, M, Meta} ->
            case lists:keymember(E, 1, Acc) of
                true -> monitor_events(Acc);
                false -> monitor_events([{E, M, Meta} | Acc])
            end
    after 0 -> lists:reverse(Acc)
    end.
