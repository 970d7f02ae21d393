%% Common Test suite of the remote DWARF unwinder (c_src/native/bp_unwind.c) in a
%% real VM: a test-only NIF (c_src/test/unwind_nif, module bp_unwind_nif)
%% copies its own C stack from inside a NIF call, overwrites the original and
%% unwinds the copy. On a normal scheduler the walk must name the NIF's
%% frames and beam.smp's beam_jit_call_nif and stop at the first JIT address
%% with registers from which the frame-pointer walk of the Erlang stack
%% continues (checked against the JIT's perf map in a +JPperf map peer); on a
%% dirty scheduler it must reach the thread's start in libc.
-module(beamprof_unwind_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([normal_scheduler_stops_at_jit/1, dirty_scheduler_reaches_thread_start/1,
         frame_pointer_walk_continues/1, reports_cost/1]).
-export([nif_caller/0]).

all() ->
    [normal_scheduler_stops_at_jit, dirty_scheduler_reaches_thread_start,
     frame_pointer_walk_continues, reports_cost].

init_per_suite(Config) ->
    case beamprof_ct:native_suite(Config) of
        {skip, _} = Skip -> Skip;
        _ -> build_unwind_nif(Config)
    end.

build_unwind_nif(Config) ->
    CSrc = filename:join(code:priv_dir(beamprof), "../c_src"),
    Out = os:cmd("make -s -C '" ++ CSrc ++ "' unwind-nif 2>&1; echo \"rc=$?\""),
    ?assertMatch({match, _}, re:run(Out, "rc=0\\s*$"), Out),
    Lib = filename:join(CSrc, "test/bin/bp_unwind_nif"),
    {module, bp_unwind_nif} = code:ensure_loaded(bp_unwind_nif),
    ok = bp_unwind_nif:load(Lib),
    [{unwind_lib, Lib} | Config].

end_per_suite(_Config) ->
    ok.

%% The Erlang function that calls the NIF; not a tail call, so it stays on
%% the Erlang stack under the NIF.
-spec nif_caller() -> {ok, term()}.
nif_caller() ->
    R = bp_unwind_nif:unwind_here(),
    {ok, R}.

%%--------------------------------------------------------------------

normal_scheduler_stops_at_jit(_Config) ->
    {ok, {Why, Frames, Stop}} = nif_caller(),
    ct:pal("~p~n~s", [Why, format(Frames)]),
    ?assertEqual(no_info, Why),
    [{_, Lib1, "bp_unwind_nif_capture"}, {_, Lib2, "bp_unwind_nif_middle"},
     {_, Lib3, _UnwindHere}, {_, Beam, CallNif} | Rest] = Frames,
    ?assertEqual("bp_unwind_nif.so", filename:basename(Lib1)),
    ?assertEqual(Lib1, Lib2),
    ?assertEqual(Lib1, Lib3),
    %% beam.smp (dladdr names the main program as it was invoked)
    ?assertNotEqual(Lib1, Beam),
    %% named where beam.smp exports it; OTP 29's hides its internals, so
    %% the frame is there, in beam.smp, without a name
    case beamprof_ct:beam_exports("beam_jit_call_nif") of
        true -> ?assertMatch({match, _}, re:run(CallNif, "beam_jit_call_nif"));
        false -> ?assertEqual(none, CallNif)
    end,
    %% then the first JIT address (in no loaded object), and nothing after it
    [{JitIp, none, none}] = Rest,
    #{ip := StopIp, sp := Sp, window_lo := Lo, window_hi := Hi} = Stop,
    ?assertEqual(JitIp, StopIp),
    ?assert(Sp > Lo andalso Sp =< Hi).

dirty_scheduler_reaches_thread_start(_Config) ->
    {Why, Frames, _Stop} = bp_unwind_nif:unwind_here_dirty(),
    ct:pal("~p~n~s", [Why, format(Frames)]),
    ?assertEqual('end', Why),
    Names = [S || {_, _, S} <- Frames],
    ?assertMatch(["bp_unwind_nif_capture", "bp_unwind_nif_middle" | _], Names),
    %% beam.smp's dirty scheduler frames: named where it exports them, else
    %% (OTP 29) there without names
    [?assert(lists:member(F, Names) orelse not beamprof_ct:beam_exports(F))
     || F <- ["erts_call_dirty_nif", "erts_dirty_process_main"]],
    %% (dladdr names the main program as it was invoked: beam.smp, rebar3...)
    Main = [ok || {_, Obj, _} <- Frames, is_list(Obj),
                  filename:basename(Obj) =/= "bp_unwind_nif.so",
                  re:run(filename:basename(Obj), "^libc") =:= nomatch],
    ?assert(length(Main) >= 2),
    %% every frame lies in a loaded object; the outermost are libc's
    %% thread start (start_thread, clone3)
    ?assertEqual([], [F || {_, none, _} = F <- Frames]),
    {_, LastObj, _} = lists:last(Frames),
    ?assertMatch({match, _}, re:run(filename:basename(LastObj), "^libc")).

%% In a VM started with +JPperf map (frame pointers in JIT code): the RBP
%% that libunwind recovers at the JIT boundary is the JIT frame's frame
%% pointer, so [RBP + 8] is a return address into the Erlang caller.
frame_pointer_walk_continues(Config) ->
    Lib = ?config(unwind_lib, Config),
    {ok, Peer, _Node} = peer:start_link(#{connection => standard_io,
                                          args => ["-pa" | code:get_path()] ++
                                              ["+JPperf", "map"]}),
    try
        ok = peer:call(Peer, bp_unwind_nif, load, [Lib]),
        {ok, {Why, Frames, #{bp_ra := Ra}}} = peer:call(Peer, ?MODULE, nif_caller, []),
        OsPid = peer:call(Peer, os, getpid, []),
        ?assertEqual(no_info, Why),
        {JitIp, none, none} = lists:last(Frames),
        Map = beamprof_perfmap:path(OsPid),
        Stop = wait_symbol(Map, JitIp - 1, deadline(10000)),
        Caller = wait_symbol(Map, Ra - 1, deadline(10000)),
        ct:pal("stop at ~s; [bp+8] in ~s", [Stop, Caller]),
        ?assertMatch({match, _}, re:run(Stop, "call_nif")),
        ?assertMatch({match, _}, re:run(Caller, "beamprof_unwind_SUITE:nif_caller/0"))
    after
        peer:stop(Peer)
    end.

reports_cost(_Config) ->
    {Frames, Ns} = bp_unwind_nif:unwind_cost(20000),
    ?assert(Frames >= 5),
    ct:pal("bp_unwind_copy in the VM: ~b ns per ~b-frame unwind", [Ns, Frames]),
    {comment, io_lib:format("~b ns per ~b-frame unwind", [Ns, Frames])}.

%%--------------------------------------------------------------------

format(Frames) ->
    [io_lib:format("  ~.16b ~s ~s~n",
                   [Ip, case O of none -> "[jit]"; _ -> filename:basename(O) end,
                    case S of none -> "?"; _ -> S end])
     || {Ip, O, S} <- Frames].

deadline(Ms) ->
    erlang:monotonic_time(millisecond) + Ms.

%% The perf map entry holding Addr (the newest one: addresses are reused
%% after purges), waiting for the VM to flush it.
wait_symbol(Map, Addr, Deadline) ->
    case perf_map_lookup(Map, Addr) of
        {ok, Name} ->
            Name;
        error ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    receive after 50 -> ok end,
                    wait_symbol(Map, Addr, Deadline);
                false ->
                    ct:fail({no_perf_map_entry, Map, Addr})
            end
    end.

perf_map_lookup(Map, Addr) ->
    case file:read_file(Map) of
        {ok, Bin} ->
            Entries = [beamprof_perfmap:parse_line(L)
                       || L <- binary:split(Bin, <<"\n">>, [global])],
            Hits = [Name || {Start, Len, Name} <- Entries, Addr >= Start, Addr < Start + Len],
            case Hits of
                [] -> error;
                _ -> {ok, binary_to_list(lists:last(Hits))}
            end;
        {error, _} ->
            error
    end.
