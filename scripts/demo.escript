#!/usr/bin/env escript
%%! +JPperf map -kernel logger_level warning
%% make demo: starts beamprof on this node, puts it under a workload and
%% prints what beamprof sees: top/0 at rest and under load, the gate closing
%% and reopening (with the events a handler received), and the C thread's
%% history of the scheduler figure the gate used.
%%
%% The node logs warnings and errors only (line 2): OTP's application
%% controller reports every application's start and stop at info and notice
%% levels (OTP 29 prints `=INFO REPORT' for beamprof's stop at the default
%% level). That is the demo node's choice; beamprof never filters a node's
%% logger (test/beamprof_demo_tests.erl checks these flags).
-mode(compile).

main(_) ->
    true = code:add_patha(filename:join(root(), "_build/default/lib/beamprof/ebin")),
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
    profile_while_closed(),

    section("Top processes under load (beamprof:top/2, yielding scan)"),
    scan_rows(),

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
    flame_files(),
    profile_demo(),
    native_demo(),
    ok = beamprof:stop().

%% The native sampler (the escript's VM runs with +JPperf map, line 2): the
%% hottest functions of a CPU-bound workload, then a flame graph file. The
%% application keeps running: the workload saturates the node, its gate
%% closes, and the sampler samples on at a lowered rate and says so.
native_demo() ->
    section("Native sampler: where the CPU goes (hot loop + GC-heavy workers, 2 s)"),
    Out = out_dir(),
    Load = [spawn(fun Hot() -> _ = lists:sum(lists:seq(1, 5000)), Hot() end),
            spawn(fun Gc() -> _ = lists:reverse(lists:seq(1, 20000)), Gc() end)],
    {ok, _} = beamprof:native_start(#{hz => 999}),
    timer:sleep(2000),
    [io:format("  ~5.1f% self ~5.1f% total  ~ts~n", [S, T, F])
     || #{frame := F, self_pct := S, total_pct := T} <- beamprof:native_top(8)],
    {ok, P} = beamprof:native_stop(),
    {ok, Html} = beamprof:write_profile(P, filename:join(Out, "cpu.html"), html),
    io:format("~p samples at ~p Hz, frames from ~p -> ~ts~n",
              [maps:get(samples, P), maps:get(effective_hz, P), maps:get(frame_source, P), Html]),
    io:format("gate closed ~p% of the run, ~p samples then at ~p Hz per thread~n",
              [maps:get(gate_closed_pct, P), maps:get(gated, P), maps:get(hz_under_gate, P)]),
    [io:format("warning ~p: ~ts~n", [C, M]) || #{code := C, message := M} <- maps:get(warnings, P)],
    io:format("beamprof:flame_graph(3000, \"demo_out/cpu.svg\") ->~n  ~p~n",
              [beamprof:flame_graph(3000, filename:join(Out, "cpu.svg"))]),
    [exit(Pid, kill) || Pid <- Load],
    ok.

section(Title) -> io:format("~n== ~s ==~n", [Title]).

scan_rows() ->
    lists:foreach(
      fun(Key) ->
              {Us, Rows} = timer:tc(beamprof, top, [Key, 3]),
              io:format("top(~p, 3) in ~B ms~n", [Key, Us div 1000]),
              [io:format("  ~p value ~p name ~p initial_call ~p memory ~p~n",
                         [P, V, N, I, M])
               || #{pid := P, value := V, name := N, initial_call := I, memory := M} <- Rows]
      end, [message_queue_len, memory, reductions]).

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

%% Flame graph files: the stacks of every process here, 20 rounds 10 ms
%% apart (the profiling API and the native sampler produce such profiles).
flame_files() ->
    section("Flame graph files (beamprof:write_profile/3)"),
    Busy = [spawn(fun Spin() -> _ = lists:sort(lists:seq(1, 1000)), Spin() end) || _ <- [1, 2]],
    Stacks = lists:append([begin timer:sleep(10), process_stacks() end || _ <- lists:seq(1, 20)]),
    [exit(P, kill) || P <- Busy],
    Profile = #{title => "demo: process stacks", stacks => Stacks},
    Dir = out_dir(),
    [begin
         Path = filename:join(Dir, "demo." ++ Ext),
         {ok, Path} = beamprof:write_profile(Profile, Path, Format),
         io:format("~-10s ~s (~B bytes)~n", [Format, Path, filelib:file_size(Path)])
     end || {Format, Ext} <- [{svg, "svg"}, {html, "html"}, {speedscope, "speedscope.json"},
                              {folded, "folded"}]],
    io:format("open the .svg or .html in a browser; the .speedscope.json at https://www.speedscope.app~n").

process_stacks() ->
    [{[iolist_to_binary(io_lib:format("~p:~p/~p", [M, F, arity(A)])) || {M, F, A, _} <- lists:reverse(St)], 1}
     || P <- processes(), P =/= self(),
        {current_stacktrace, St} <- [erlang:process_info(P, current_stacktrace)], St =/= []].

arity(A) when is_list(A) -> length(A);
arity(A) -> A.

%% The profiling API (beamprof:profile/2 and friends) on a fixed workload.
profile_demo() ->
    section("Profiling API (beamprof:profile/2 and friends)"),
    wait_open(100),
    Self = self(),
    Events = [[beamprof, profile, E] || E <- [start, stop, sample, slow_operation, memory, calls, complete]],
    ok = beamprof:attach_many(<<"demo-profile">>, Events,
                              fun([_, _, E], M, Meta, _) -> Self ! {profile, E, M, Meta} end, nil),
    Work = fun() -> demo_work(300) end,
    ok = beamprof:profile(Work, #{strategy => sample, interval => 5}),
    [#{profile := #{stacks := Stacks}} | _] = [M || {sample, _, M} <- profile_events()],
    io:format("sample: the leaf frames seen most (self time, 5 ms interval):~n"),
    [io:format("  ~5B  ~s~n", [W, F]) || {F, W} <- top_leaves(Stacks, 4)],
    [ok = beamprof:profile_if_slow(fun() -> timer:sleep(T) end, #{threshold => 100}) || T <- [1, 2, 3, 250]],
    Slow = [M || {slow_operation, M, _} <- profile_events()],
    io:format("profile_if_slow, threshold 100 ms, calls of 1, 2, 3 and 250 ms: ~B slow_operation ~p~n",
              [length(Slow), Slow]),
    _ = beamprof:profile_memory(fun() -> lists:seq(1, 500000) end, #{}),
    [io:format("profile_memory: ~p~n", [M]) || {memory, M, _} <- profile_events()],
    _ = beamprof:profile_calls(fun() -> demo_fib(15) end, #{strategy => calls}),
    [io:format("profile_calls: ~B calls, top ~p~n", [N, lists:sublist(Fs, 3)])
     || {calls, #{calls := N}, #{functions := Fs}} <- profile_events()],
    Dir = out_dir(),
    Svg = filename:join(Dir, "profile.svg"),
    ok = beamprof:flame_graph(Work, #{output => Svg, interval => 2}),
    io:format("flame_graph: ~s (~B bytes)~n", [Svg, filelib:file_size(Svg)]),
    _ = profile_events(),
    ok = beamprof:detach(<<"demo-profile">>),
    Counter = counters:new(1, []),
    ok = beamprof:attach(<<"demo-rate">>, [beamprof, profile, stop],
                         fun(_, _, _, C) -> counters:add(C, 1, 1) end, Counter),
    T0 = erlang:monotonic_time(),
    [ok = beamprof:profile(fun() -> ok end, #{rate => 0.01, strategy => memory}) || _ <- lists:seq(1, 100000)],
    Us = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
    io:format("rate 0.01: ~B of 100000 calls profiled, ~.2f us per call on average~n",
              [counters:get(Counter, 1), Us / 100000]),
    ok = beamprof:detach(<<"demo-rate">>).

%% The spinners of flame_files/0 may have closed the gate: wait (10 s at most) for it.
wait_open(0) -> io:format("(the gate stays closed: the calls below are skipped)~n");
wait_open(N) ->
    case beamprof:gate() of
        open -> ok;
        closed -> timer:sleep(100), wait_open(N - 1)
    end.

%% While the gate is closed nothing is profiled: the stop event says why.
profile_while_closed() ->
    Self = self(),
    ok = beamprof:attach(<<"demo-skip">>, [beamprof, profile, stop],
                         fun(_, M, Meta, _) -> Self ! {profile, stop, M, Meta} end, nil),
    42 = beamprof:profile(fun() -> 42 end, #{strategy => sample}),
    [io:format("profile/2 with the gate ~p: stop event, skipped => ~p~n", [beamprof:gate(), maps:get(skipped, M, none)])
     || {stop, _, M} <- profile_events()],
    ok = beamprof:detach(<<"demo-skip">>).

profile_events() ->
    receive {profile, E, M, Meta} -> [{E, M, Meta} | profile_events()]
    after 300 -> []
    end.

top_leaves(Stacks, N) ->
    Leaves = lists:foldl(fun({Fs, W}, Acc) -> maps:update_with(lists:last(Fs), fun(V) -> V + W end, W, Acc) end,
                         #{}, Stacks),
    lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Leaves))), N).

demo_work(Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    demo_loop(Deadline).

demo_loop(Deadline) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> _ = demo_fib(18), _ = lists:sort([erlang:phash2(I) || I <- lists:seq(1, 2000)]), demo_loop(Deadline)
    end.

demo_fib(N) when N < 2 -> N;
demo_fib(N) -> demo_fib(N - 1) + demo_fib(N - 2).

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

%% The checkout this escript belongs to.
root() ->
    filename:dirname(filename:dirname(filename:absname(escript:script_name()))).

%% Where the demo writes its files: demo_out/ in the checkout (git ignores it).
out_dir() ->
    Dir = filename:join(root(), "demo_out"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.
