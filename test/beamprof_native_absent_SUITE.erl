%% Common Test suite of the split between the core library and the optional
%% native sampler library, in peer VMs: the native library is not loaded at
%% application start; where it is missing, cannot load or was skipped by the
%% build, the native API answers {error, {unsupported, Reason}} saying what
%% is missing, while the core (sampler thread, gate, memory, scan) works.
-module(beamprof_native_absent_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0]).
-export([not_loaded_at_start/1, missing_library/1, build_note/1, load_failed/1]).
-export([native_answers/0, core_works/0, maps_have/1]).

-define(LIB, "beamprof_native_nif.so").

all() ->
    [not_loaded_at_start, missing_library, build_note, load_failed].

%%--------------------------------------------------------------------
%% Helpers (some run in the peer)

%% A peer on this node's code path (linked: it goes with the test case), with BEAMPROF_NATIVE_NIF set to Path
%% (a library path without ".so") unless Path is default.
peer(default) ->
    {ok, Peer, _} = beamprof_ct:start_peer(#{}),
    Peer;
peer(Path) ->
    {ok, Peer, _} = beamprof_ct:start_peer(#{env => [{"BEAMPROF_NATIVE_NIF", Path}]}),
    Peer.

%% Whether this VM has a file named Name mapped.
maps_have(Name) ->
    {ok, Maps} = file:read_file("/proc/self/maps"),
    binary:match(Maps, list_to_binary("/" ++ Name ++ "\n")) =/= nomatch.

%% Every native entry point, as a map (run in the peer).
native_answers() ->
    #{load => beamprof_native_nif:load(),
      start => beamprof_native_nif:start(#{}),
      stop => beamprof_native_nif:stop(),
      drain => beamprof_native_nif:drain(10),
      info => beamprof_native_nif:info(),
      symbolize => beamprof_native_nif:symbolize([0]),
      jit_symbols => beamprof_native_nif:jit_symbols(),
      native_start => beamprof:native_start(#{}),
      native_stop => beamprof:native_stop(),
      flame_graph => beamprof:flame_graph(50, #{}),
      mapped => maps_have(?LIB)}.

%% The core's sampler thread, gate, memory and scan (run in the peer).
core_works() ->
    Cfg = #{tick_ms => 20, scheduler_high => 0.80, scheduler_low => 0.60,
            memory_high => 0.90, memory_low => 0.85, reopen_ticks => 1,
            memory_limit => 1},
    ok = beamprof_nif:sampler_start(Cfg, self()),
    Closed = receive {beamprof_gate, closed, {memory, _}, _} -> beamprof_nif:gate()
             after 10000 -> no_close_message
             end,
    ok = beamprof_nif:sampler_stop(),
    {_, [_ | _]} = beamprof_nif:sched_cpu(),
    #{rss := Rss} = beamprof_nif:memory(),
    ok = beamprof:start(#{interval => 200}),
    Pid = spawn(fun() -> receive stop -> ok end end),
    [Pid ! {filler, I} || I <- lists:seq(1, 500)],
    Top = beamprof:top(message_queue_len, 3),
    Pid ! stop,
    ok = beamprof:stop(),
    #{closed => Closed, rss => Rss > 0, open => beamprof_nif:gate(),
      top_pid => [P || #{pid := P} <- Top, P =:= Pid],
      mapped => maps_have(?LIB)}.

%% What every native entry point must answer when the library is missing.
assert_unsupported(What, Answers) ->
    #{load := {error, {unsupported, {What, Detail}}}} = Answers,
    ?assert(is_binary(Detail) andalso byte_size(Detail) > 0),
    Err = {error, {unsupported, {What, Detail}}},
    ?assertMatch(#{start := Err, stop := ok, drain := [], info := Err,
                   symbolize := Err, jit_symbols := Err, native_start := Err,
                   native_stop := {error, not_running}, flame_graph := Err,
                   mapped := false}, Answers),
    Detail.

assert_core_works(Peer) ->
    R = peer:call(Peer, ?MODULE, core_works, [], 60000),
    ct:log("core: ~p", [R]),
    ?assertMatch(#{closed := closed, rss := true, open := open, top_pid := [_],
                   mapped := false}, R).

%%--------------------------------------------------------------------
%% Cases

%% The application starts and runs without the native library; its first
%% use loads it.
not_loaded_at_start(_Config) ->
    Peer = peer(default),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [beamprof]),
    #{running := true} = peer:call(Peer, beamprof_nif, sampler_info, []),
    ?assertNot(peer:call(Peer, ?MODULE, maps_have, [?LIB])),
    case erlang:system_info(system_architecture) of
        "x86_64" ++ _ ->
            ok = peer:call(Peer, beamprof_native_nif, load, []),
            ?assert(peer:call(Peer, ?MODULE, maps_have, [?LIB]));
        _ ->
            {error, {unsupported, _}} = peer:call(Peer, beamprof_native_nif, load, [])
    end,
    peer:stop(Peer).

%% No library where it is looked for (and no build note): every native
%% entry point says so, the core works.
missing_library(Config) ->
    Path = filename:join([?config(priv_dir, Config), "nowhere", "beamprof_native_nif"]),
    Peer = peer(Path),
    Detail = assert_unsupported(not_built, peer:call(Peer, ?MODULE, native_answers, [], 60000)),
    ?assertNotEqual(nomatch, binary:match(Detail, list_to_binary(Path))),
    assert_core_works(Peer),
    peer:stop(Peer).

%% The build skipped the library (another architecture, no libunwind): the
%% line it printed is the detail.
build_note(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "skipped"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Note = <<"native sampler not built: it supports Linux x86_64 only, "
             "this compiler targets aarch64-linux-gnu">>,
    ok = file:write_file(filename:join(Dir, "beamprof_native_nif.unsupported"),
                         [Note, "\n"]),
    Peer = peer(filename:join(Dir, "beamprof_native_nif")),
    ?assertEqual(Note, assert_unsupported(not_built,
                                          peer:call(Peer, ?MODULE, native_answers, [], 60000))),
    peer:stop(Peer).

%% A file the loader refuses: its message is the detail; the core works.
load_failed(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "broken"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, ?LIB), <<"not an ELF object">>),
    Peer = peer(filename:join(Dir, "beamprof_native_nif")),
    Detail = assert_unsupported(load_failed, peer:call(Peer, ?MODULE, native_answers, [], 60000)),
    ct:log("loader: ~ts", [Detail]),
    ?assertNotEqual(nomatch, binary:match(Detail, list_to_binary(?LIB))),
    assert_core_works(Peer),
    peer:stop(Peer).
