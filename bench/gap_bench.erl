%% What delays a 1 ms pinger while beamprof scans: 3 s of each piece of a
%% scan, run over and over, against 3 s of the VM doing nothing, on a node
%% of N idle processes (run.sh raises +P), with the machine's own stalls set
%% apart (host_pingers: a real-time thread per CPU outside the VM).
%%
%% Pieces: the pid source alone (beamprof_scan_walk:fill_processes/1: the
%% process-table walk on OTP 25 and 27, the process iterator on 28+)
%% into a fresh buffer, as each scan starts), queue slices alone (process_info(P,
%% message_queue_len) for 0.5 ms, charged a timeslice, yield: the walker's
%% loop), whole `top(message_queue_len, 10)' passes and whole
%% `top(memory, 10)' passes (cold). Three rounds of every piece, one after
%% the other. Per piece and round: the pinger's gaps over 2 ms, those that
%% overlap no host stall ("own") and the worst of them, and the host's worst.
-module(gap_bench).

-export([run/1]).

-define(SECONDS, 3).
-define(ROUNDS, 3).

run(N) ->
    io:format("~ngap_bench: a 1 ms pinger's gaps over ~B s of each piece of a scan, "
              "~B idle processes~n", [?SECONDS, N]),
    ok = beamprof_ct:spawn_idle(N),
    timer:sleep(1000),
    Pieces = [{"idle VM", fun idle/1}, {"table walks", fun walks/1},
              {"queue slices", fun slices/1},
              {"top(message_queue_len, 10)", passes([message_queue_len])},
              {"top(memory, 10) cold", passes([memory])}],
    Runs = [{Name, Round, measure(Piece)}
            || Round <- lists:seq(1, ?ROUNDS), {Name, Piece} <- Pieces],
    bench_util:print_table(["piece", "round", "pings", "gaps > 2 ms", "own gaps > 2 ms",
                            "own worst ms", "host's worst ms"],
                           [[Name, integer_to_list(Round), integer_to_list(Count),
                             integer_to_list(Over), integer_to_list(Own), host_pingers:ms(OwnUs),
                             host_pingers:ms(HostUs)]
                            || {Name, _} <- Pieces,
                               {Name1, Round, #{count := Count, over_2ms := Over, own := Own,
                                               own_us := OwnUs, host_us := HostUs}} <- Runs,
                               Name1 =:= Name]),
    io:format("  (own: overlapping no stall of the host's threads; ~s)~n",
              [host_pingers:note(#{running => lists:min([R || {_, _, #{running := R}} <- Runs]),
                                   rt => lists:all(fun({_, _, #{rt := Rt}}) -> Rt end, Runs)})]).

%% Runs Piece in a fresh process until ?SECONDS have passed; the process
%% gets its ready state (the pid list for slices) before the pingers start.
measure(Piece) ->
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() -> State = Piece(prepare), garbage_collect(),
                                        Self ! ready, receive go -> ok end,
                                        Piece({State, erlang:monotonic_time(millisecond) + ?SECONDS * 1000}),
                                        Self ! done end),
    ok = receive ready -> ok; {'DOWN', Mon, process, Pid, Why} -> {piece_failed, Why} end,
    Watch = host_pingers:watch(),
    timer:sleep(20),
    Pid ! go,
    ok = receive done -> ok; {'DOWN', Mon, process, Pid, Why2} -> {piece_failed, Why2} end,
    receive {'DOWN', Mon, process, Pid, _} -> ok end,
    host_pingers:unwatch(Watch).

until(Deadline) ->
    erlang:monotonic_time(millisecond) < Deadline.

idle(prepare) -> none;
idle({_, Deadline}) ->
    receive after max(0, Deadline - erlang:monotonic_time(millisecond)) -> ok end.

walks(prepare) -> none;
walks({_, Deadline} = Arg) ->
    case until(Deadline) of
        true ->
            {Buf, _Source, _} = beamprof_scan_walk:fill_processes(auto),
            ok = beamprof_nif:scan_buf_release(Buf),   % as a scan does when it is done
            walks(Arg);
        false -> ok
    end.

slices(prepare) -> erlang:processes();
slices({Pids, Deadline}) ->
    slices(Pids, Pids, Deadline).

slices(All, [], Deadline) -> slices(All, All, Deadline);
slices(All, Pids, Deadline) ->
    case until(Deadline) of
        true ->
            Rest = slice(Pids, erlang:monotonic_time(nanosecond) + 500000),
            erlang:bump_reductions(4000),
            erlang:yield(),
            slices(All, Rest, Deadline);
        false -> ok
    end.

slice([], _End) -> [];
slice([P | Pids], End) ->
    _ = erlang:process_info(P, message_queue_len),
    case erlang:monotonic_time(nanosecond) > End of
        true -> Pids;
        false -> slice(Pids, End)
    end.

passes(Keys) ->
    fun(prepare) -> none;
       ({_, Deadline}) -> passes(Keys, Deadline)
    end.

passes(Keys, Deadline) ->
    case until(Deadline) of
        true -> _ = beamprof_scan:local_top(Keys, 10, #{}), passes(Keys, Deadline);
        false -> ok
    end.
