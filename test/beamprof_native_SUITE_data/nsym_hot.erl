%% Workloads of beamprof_native_SUITE: a tight loop under one known caller,
%% a NIF busy loop under an Erlang caller, a GC-heavy many-process load.
-module(nsym_hot).
-export([run_outer/1, outer/1, spin/1, run_nif/1, nif_caller/1, gc_load/2, gc_worker/1,
         ping_pong/2, deep/2]).

%% Calls spin/1 (a tight tail-recursive loop) from outer/1 until Deadline.
run_outer(Ms) ->
    outer(erlang:monotonic_time(millisecond) + Ms).

outer(Deadline) ->
    _ = spin(200000),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> outer(Deadline)
    end.

spin(0) -> 0;
spin(N) -> spin(N - 1).

run_nif(Ms) ->
    nif_caller(erlang:monotonic_time(millisecond) + Ms).

nif_caller(Deadline) ->
    _ = nsym_nif:busy(2000000),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> nif_caller(Deadline)
    end.

%% N processes allocating and dropping lists for Ms milliseconds.
gc_load(N, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Pids = [spawn_monitor(?MODULE, gc_worker, [Deadline]) || _ <- lists:seq(1, N)],
    [receive {'DOWN', Ref, process, Pid, _} -> ok end || {Pid, Ref} <- Pids],
    ok.

gc_worker(Deadline) ->
    _ = lists:reverse(lists:seq(1, 2000 + rand:uniform(3000))),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> ok;
        false -> gc_worker(Deadline)
    end.

%% N pairs of processes passing a message back and forth for Ms: the
%% schedulers spend much of their time switching between processes.
ping_pong(N, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Pids = [spawn_monitor(fun() -> pinger(spawn_link(fun ponger/0), Deadline, 0) end)
            || _ <- lists:seq(1, N)],
    [receive {'DOWN', Ref, process, Pid, _} -> ok end || {Pid, Ref} <- Pids],
    ok.

pinger(Peer, Deadline, I) ->
    Peer ! {self(), I},
    receive I -> ok end,
    case I rem 1000 =:= 0 andalso erlang:monotonic_time(millisecond) >= Deadline of
        true -> exit(Peer, kill);
        false -> pinger(Peer, Deadline, I + 1)
    end.

ponger() ->
    receive {From, I} -> From ! I end,
    ponger().

%% Body recursion Depth calls deep, spinning at the bottom for Ms.
deep(Depth, Ms) ->
    Depth = down(Depth, Ms),
    ok.

down(0, Ms) ->
    ok = run_outer(Ms),
    0;
down(Depth, Ms) ->
    1 + down(Depth - 1, Ms).
