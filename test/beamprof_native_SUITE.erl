%% Common Test suite of the native sampler's Erlang API in a peer started
%% with +JPperf map: attribution of a tight loop to its caller, a NIF's C
%% frames under its Erlang caller, GC frames, a 60 s run at 999 Hz under a
%% GC-heavy many-process load (no leaked thread or timer), flame graph files
%% rendered by headless Chromium, the API's contracts, and the vm_internals
%% switch (nothing of the VM's internals read while it is off).
-module(beamprof_native_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([options_badarg/1, start_stop_cycles/1, attribution/1, nif_frames/1, gc_frames/1,
         filter_and_top/1, flame_graph_files/1, chromium_renders/1, no_perf_map_hint/1,
         fp_without_map/1, stability_60s/1, truncation_honest/1, truncation_depth/1,
         vm_internals_off/1, flame_graph_binary_path/1, flame_graph_checks_first/1,
         flame_graph_write_failed/1, saturated_node/1, empty_profiles_say_why/1,
         vm_readv_denied/1]).
-export([os_counts/0, cycles/1, answer/1, busy_flame_graph/1, forward_event/4]).

all() ->
    [{group, perf_map}, no_perf_map_hint, fp_without_map, vm_internals_off, saturated_node,
     stability_60s].

groups() ->
    [{perf_map, [], [options_badarg, start_stop_cycles, attribution, nif_frames, gc_frames,
                     truncation_honest, truncation_depth, filter_and_top, flame_graph_files, chromium_renders,
                     flame_graph_binary_path, flame_graph_checks_first, flame_graph_write_failed,
                     empty_profiles_say_why, vm_readv_denied]}].

init_per_suite(Config) ->
    case beamprof_ct:native_suite(Config) of
        {skip, _} = Skip -> Skip;
        _ -> build_data(Config)
    end.

build_data(Config) ->
    Data = ?config(data_dir, Config),
    Out = ?config(priv_dir, Config),
    {ok, _} = compile:file(filename:join(Data, "nsym_hot.erl"), [{outdir, Out}]),
    {ok, _} = compile:file(filename:join(Data, "nsym_nif.erl"), [{outdir, Out}]),
    Inc = filename:join([code:root_dir(), "erts-" ++ erlang:system_info(version), "include"]),
    Cmd = io_lib:format("cc -O1 -g -fPIC -shared -fno-omit-frame-pointer "
                        "-mno-omit-leaf-frame-pointer -I~ts -o ~ts ~ts 2>&1; echo rc=$?",
                        [Inc, filename:join(Out, "nsym_nif.so"),
                         filename:join(Data, "nsym_nif.c")]),
    Res = os:cmd(lists:flatten(Cmd)),
    ct:log("~ts", [Res]),
    ?assertNotEqual(nomatch, string:find(Res, "rc=0")),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_group(perf_map, Config) ->
    [{peer, peer(Config, ["+JPperf", "map"])} | Config].

end_per_group(perf_map, Config) ->
    peer:stop(?config(peer, Config)).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    case ?config(peer, Config) of
        undefined -> ok;
        Peer -> _ = peer:call(Peer, beamprof_native, stop, []), ok
    end.

%%--------------------------------------------------------------------
%% Helpers

%% Not linked: the group's peer outlives init_per_group's process.
peer(Config, Args) ->
    {ok, Peer, _Node} = peer:start(#{connection => standard_io,
                                          args => ["-pa", ?config(priv_dir, Config),
                                                   "-pa" | code:get_path()] ++ Args}),
    {module, beamprof_nif} = peer:call(Peer, code, ensure_loaded, [beamprof_nif]),
    Peer.

call(Config, M, F, A) ->
    peer:call(?config(peer, Config), M, F, A, 120000).

%% Samples Workload (run in a process of the peer) for about Ms.
profile(Config, Opts, {M, F, A}) ->
    {ok, _} = call(Config, beamprof, native_start, [Opts]),
    ok = call(Config, M, F, A),
    {ok, Profile} = call(Config, beamprof, native_stop, []),
    ct:log("profile: ~p", [maps:without([stacks], Profile)]),
    ct:log("heaviest stacks: ~p", [lists:sublist(maps:get(stacks, Profile), 15)]),
    Profile.

weight(Stacks, Pred) ->
    lists:sum([W || {S, W} <- Stacks, Pred(S)]).

%% Frames A then (somewhere below it) B, in a root-first stack.
below(A, B, Stack) ->
    case lists:dropwhile(fun(F) -> F =/= A end, Stack) of
        [A | Rest] -> lists:member(B, Rest);
        [] -> false
    end.

%%--------------------------------------------------------------------
%% Cases

options_badarg(Config) ->
    [?assertMatch({badrpc, _}, catch_call(Config, beamprof, native_start, [Bad]))
     || Bad <- [x, #{hz => 0}, #{hz => 10001}, #{threads => []}, #{threads => [gc]},
                #{duration => -1}, #{bogus => 1}]],
    ?assertEqual({error, not_running}, call(Config, beamprof, native_stop, [])),
    ?assertEqual({error, not_running}, call(Config, beamprof, native_top, [5])),
    {ok, _} = call(Config, beamprof, native_start, [#{}]),
    ?assertEqual({error, already_started}, call(Config, beamprof, native_start, [#{}])),
    {ok, #{stacks := _, frame_source := perf_map, frame_pointers := true,
           frame_layout_source := LayoutSource, effective_hz := Hz} = P} =
        call(Config, beamprof, native_stop, []),
    %% erts_frame_layout where beam.smp exports it (OTP 25, 27), the GDB
    %% JIT list's emulator record where it does not (OTP 29)
    ?assert(lists:member(LayoutSource, [erts_frame_layout, gdb_jit])),
    ?assert(is_float(Hz)),
    ?assertEqual(Hz, round(Hz * 10) / 10),
    ?assertNot(maps:is_key(hint, P)),
    %% the gate (application not running here) never closed: the run kept
    %% its rate, read stacks, and says so
    ?assertMatch(#{gate_closed_ms := 0, gated := 0, thinned := 0, hz_under_gate := 99,
                   vm_readv := ok}, P).

catch_call(Config, M, F, A) ->
    try call(Config, M, F, A) of R -> R
    catch Class:Reason -> {badrpc, {Class, Reason}}
    end.

start_stop_cycles(Config) ->
    Before = call(Config, ?MODULE, os_counts, []),
    %% back to back in one process of the peer: stop/0 returns only once
    %% the collector is gone, so start/1 right after never finds it
    ?assertEqual(ok, call(Config, ?MODULE, cycles, [50])),
    ?assertEqual(Before, call(Config, ?MODULE, os_counts, [])).

%% Runs in the peer.
cycles(0) -> ok;
cycles(N) ->
    {ok, _} = beamprof:native_start(#{hz => 999}),
    {ok, _} = beamprof:native_stop(),
    cycles(N - 1).

attribution(Config) ->
    #{stacks := Stacks} = profile(Config, #{hz => 999, threads => [normal]},
                                  {nsym_hot, run_outer, [3000]}),
    All = weight(Stacks, fun(_) -> true end),
    Hot = weight(Stacks, fun(S) -> below(<<"nsym_hot:outer/1">>, <<"nsym_hot:spin/1">>, S)
                                       andalso lists:last(S) =:= <<"nsym_hot:spin/1">> end),
    ct:log("spin under outer: ~p of ~p (~.1f%)", [Hot, All, 100 * Hot / max(All, 1)]),
    ?assert(All > 100),
    %% measured 86-93% on an idle host, 82% with the machine's load at 6:
    %% the bound leaves room for load, not for a broken walk (59% without
    %% the [RSP] fix, 0% without frame pointers)
    ?assert(Hot >= 0.75 * All).

nif_frames(Config) ->
    #{stacks := Stacks} = profile(Config, #{hz => 999, threads => [normal]},
                                  {nsym_hot, run_nif, [3000]}),
    All = weight(Stacks, fun(_) -> true end),
    Leaf = weight(Stacks, fun(S) -> lists:member(<<"busy_leaf">>, S) end),
    Under = weight(Stacks, fun(S) ->
                                   below(<<"nsym_hot:nif_caller/1">>, <<"busy_top">>, S) andalso
                                       below(<<"busy_top">>, <<"busy_mid">>, S) andalso
                                       below(<<"busy_mid">>, <<"busy_leaf">>, S) andalso
                                       hd(S) =:= <<"[normal]">>
                           end),
    ct:log("busy_leaf in ~p, the whole chain under nif_caller in ~p, of ~p", [Leaf, Under, All]),
    ?assert(Leaf >= 0.5 * All),
    ?assert(Under >= 0.5 * All).

gc_frames(Config) ->
    #{stacks := Stacks} = profile(Config, #{hz => 999}, {nsym_hot, gc_load, [8, 3000]}),
    All = weight(Stacks, fun(_) -> true end),
    Gc = weight(Stacks, fun(S) -> lists:any(fun is_gc_frame/1, S) end),
    ct:log("GC frames in ~p of ~p", [Gc, All]),
    ?assert(Gc >= 0.02 * All).

is_gc_frame(F) ->
    binary:match(F, [<<"garbage_collect">>, <<"erts_gc">>, <<"sweep">>, <<"copy_struct">>])
        =/= nomatch.

%% Schedulers switching between processes (the loop between them,
%% $global::process_main, with no process running) and collecting garbage:
%% their stacks are complete, so hardly any is marked truncated.
truncation_honest(Config) ->
    {ok, _} = call(Config, beamprof, native_start, [#{hz => 999, threads => [normal]}]),
    ok = call(Config, nsym_hot, ping_pong, [4, 1500]),
    ok = call(Config, nsym_hot, gc_load, [4, 1500]),
    {ok, #{stacks := Stacks, samples := N, truncated := T}} =
        call(Config, beamprof, native_stop, []),
    Loop = [S || {S, _} <- Stacks, lists:member(<<"global::process_main">>, S),
                 not lists:member(<<"[truncated]">>, S)],
    ct:log("~p samples, ~p truncated; complete stacks through process_main: ~p",
           [N, T, lists:sublist(Loop, 10)]),
    ?assert(N > 100),
    ?assert(Loop =/= []),
    %% 1.8-3.5% measured on idle hosts (25, 27, 29); 6.9% once on OTP 29
    %% during a full matrix run (deep GC chains none of the candidate walks
    %% finds): the bound leaves room for a loaded machine
    ?assert(T =< 0.10 * N).

%% Body recursion far deeper than the depth cap: those samples are marked.
truncation_depth(Config) ->
    {ok, _} = call(Config, beamprof, native_start,
                   [#{hz => 999, threads => [normal], depth => 32}]),
    ok = call(Config, nsym_hot, deep, [2000, 1500]),
    {ok, #{stacks := Stacks, samples := N, truncated := T}} =
        call(Config, beamprof, native_stop, []),
    Spin = weight(Stacks, fun(S) -> lists:last(S) =:= <<"nsym_hot:spin/1">> end),
    Marked = weight(Stacks, fun(S) -> lists:last(S) =:= <<"nsym_hot:spin/1">> andalso
                                          lists:member(<<"[truncated]">>, S) end),
    ct:log("~p samples, ~p truncated; spin/1 leaf in ~p, marked ~p", [N, T, Spin, Marked]),
    ?assert(Spin > 100),
    ?assert(Marked >= 0.95 * Spin).

filter_and_top(Config) ->
    {ok, _} = call(Config, beamprof, native_start, [#{hz => 999}]),
    ok = call(Config, nsym_hot, run_outer, [1500]),
    Top = call(Config, beamprof, native_top, [5]),
    {ok, P} = call(Config, beamprof, native_stop, []),
    ct:log("top: ~p", [Top]),
    ?assertMatch([#{frame := <<"nsym_hot:spin/1">>, self_pct := _} | _], Top),
    Normal = beamprof_native:filter(P, [normal]),
    ?assert(lists:all(fun({[R | _], _}) -> R =:= <<"[normal]">> end, maps:get(stacks, Normal))),
    Dirty = beamprof_native:filter(P, [dirty_cpu, dirty_io]),
    ?assertEqual([], [S || {[<<"[normal]">> | _], _} = S <- maps:get(stacks, Dirty)]).

flame_graph_files(Config) ->
    Dir = ?config(priv_dir, Config),
    Svg = filename:join(Dir, "cpu.svg"),
    Self = self(),
    Load = spawn_link(fun() -> Self ! {done, call(Config, nsym_hot, run_outer, [2500])} end),
    {ok, #{samples := N, effective_hz := Hz, truncated := _, file := Svg}} =
        call(Config, beamprof, flame_graph, [1500, Svg]),
    receive {done, ok} -> ok after 30000 -> ct:fail(load_timeout) end,
    unlink(Load),
    ct:log("~p samples at ~p Hz", [N, Hz]),
    ?assert(N > 0),
    ?assert(is_float(Hz) andalso Hz > 0),
    ?assertEqual(Hz, round(Hz * 10) / 10),
    ?assertEqual(8#600, file_mode(Svg) band 8#777),
    {ok, Bin} = file:read_file(Svg),
    ?assertNotEqual(nomatch, binary:match(Bin, <<"nsym_hot:spin/1">>)),
    {ok, #{file := Html}} = call(Config, beamprof, flame_graph,
                                  [500, #{output => filename:join(Dir, "cpu.html"), hz => 99}]),
    ?assert(filelib:is_regular(Html)).

%% Elixir passes paths as binaries: the format still comes from the extension (a binary
%% extension was once compared with strings, and cpu.svg got folded text); any chardata too.
flame_graph_binary_path(Config) ->
    Dir = ?config(priv_dir, Config),
    [begin
         {ok, #{file := _}} = call(Config, beamprof, flame_graph, [200, Output]),
         {ok, Bin} = file:read_file(filename:join(Dir, Name)),
         ?assertNotEqual(nomatch, binary:match(Bin, Expect), Name)
     end || {Output, Name, Expect} <-
                [{unicode:characters_to_binary(filename:join(Dir, "bin.svg")), "bin.svg", <<"<svg">>},
                 {unicode:characters_to_binary(filename:join(Dir, "BIN.HTML")), "BIN.HTML", <<"<html">>},
                 {#{output => [Dir, <<"/deep.json">>]}, "deep.json", <<"speedscope">>},
                 {[unicode:characters_to_binary(Dir), "/list.svg"], "list.svg", <<"<svg">>}]].

%% A bad format or an output that cannot be written is refused before sampling: at once
%% (well under the 3 s asked), and no sampler ran.
flame_graph_checks_first(Config) ->
    [begin
         T0 = erlang:monotonic_time(millisecond),
         Answer = call(Config, ?MODULE, answer, [fun() -> beamprof:flame_graph(3000, Opts) end]),
         Ms = erlang:monotonic_time(millisecond) - T0,
         ct:log("~p: ~p in ~B ms", [Opts, Answer, Ms]),
         case Expected of
             {badarg, Prefix} ->
                 {error, {badarg, Message}} = Answer,
                 ?assert(lists:prefix(Prefix, Message), Message);
             _ ->
                 ?assertEqual({ok, Expected}, Answer)
         end,
         ?assert(Ms < 1500),
         ?assertNot(call(Config, beamprof_native, running, []))
     end || {Opts, Expected} <-
                [{#{format => bad}, {badarg, "Expected format"}},
                 {#{output => "x.svg", format => bad}, {badarg, "Expected format"}},
                 {#{output => "/nonexistent/x.svg"},
                  {error, {unwritable, "/nonexistent/x.svg", enoent}}},
                 {<<"/nonexistent/x.svg">>,
                  {error, {unwritable, <<"/nonexistent/x.svg">>, enoent}}},
                 {#{output => "x.svg", hz => 0}, {badarg, "Expected hz"}}]].

%% In the peer: Fun's value, or the error it raised.
answer(Fun) ->
    try {ok, Fun()} catch error:Reason -> {error, Reason} end.

%% The directory goes while sampling: {error, {write_failed, Path, enoent}}.
flame_graph_write_failed(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "gone"),
    ok = file:make_dir(Dir),
    Path = filename:join(Dir, "cpu.svg"),
    Remover = spawn_link(fun() ->
                                 beamprof_ct:wait_until(
                                   fun() -> call(Config, beamprof_native, running, []) end, 10000),
                                 ok = file:del_dir(Dir)
                         end),
    ?assertEqual({error, {write_failed, Path, enoent}},
                 call(Config, beamprof, flame_graph, [1500, Path])),
    unlink(Remover).

file_mode(Path) ->
    {ok, Info} = file:read_file_info(Path),
    element(8, Info).

chromium_renders(Config) ->
    case os:find_executable("chromium") of
        false -> {skip, "no chromium"};
        Chromium -> chromium_renders(Config, Chromium)
    end.

chromium_renders(Config, Chromium) ->
    Dir = ?config(priv_dir, Config),
    {ok, _} = call(Config, beamprof, native_start, [#{hz => 999}]),
    ok = call(Config, nsym_hot, run_outer, [1500]),
    {ok, P} = call(Config, beamprof, native_stop, []),
    lists:foreach(
      fun(Format) ->
              Path = filename:join(Dir, "native." ++ atom_to_list(Format)),
              {ok, _} = beamprof:write_profile(P, Path, Format),
              Dom = os:cmd(Chromium ++ " --headless --no-sandbox --disable-gpu "
                           "--virtual-time-budget=3000 --dump-dom file://" ++ Path
                           ++ " 2>/dev/null"),
              ct:log("~p: ~p bytes of DOM", [Format, length(Dom)]),
              ?assertNotEqual(nomatch, string:find(Dom, "nsym_hot:spin/1"))
      end, [svg, html]).

no_perf_map_hint(Config) ->
    Peer = peer(Config, []),
    try
        {ok, _} = peer:call(Peer, beamprof, native_start, [#{hz => 999}]),
        ok = peer:call(Peer, nsym_hot, run_outer, [1500], 30000),
        {ok, P} = peer:call(Peer, beamprof, native_stop, []),
        ct:log("profile: ~p", [maps:without([stacks], P)]),
        ct:log("stacks: ~p", [lists:sublist(maps:get(stacks, P), 10)]),
        ?assertMatch(#{frame_source := gdb_jit, frame_pointers := false, hint := <<_/binary>>}, P),
        %% the hint names the flags this release takes: +JPperf fp only on
        %% OTP 26+ (OTP 25 refuses it)
        Hint = maps:get(hint, P),
        ?assertNotEqual(nomatch, binary:match(Hint, <<"+JPperf map">>)),
        ?assertEqual(otp_release() >= 26, binary:match(Hint, <<"+JPperf fp">>) =/= nomatch),
        Stacks = maps:get(stacks, P),
        ?assert(weight(Stacks, fun(S) -> lists:member(<<"nsym_hot:spin/1">>, S) end) > 0)
    after
        peer:stop(Peer)
    end.

otp_release() ->
    list_to_integer(erlang:system_info(otp_release)).

%% OTP 26+: +JPperf fp gives frame pointers without the perf map; names
%% then come from the GDB JIT table, the whole chain is there and no hint
%% is given. OTP 25 has no such flag: the VM refuses to start with it.
fp_without_map(Config) ->
    case otp_release() >= 26 of
        true -> fp_without_map_run(Config);
        false -> ?assertMatch({error, _}, fp_peer_start(Config))
    end.

fp_peer_start(Config) ->
    try peer:start(#{connection => standard_io,
                     args => ["-pa", ?config(priv_dir, Config), "-pa" | code:get_path()] ++
                         ["+JPperf", "fp"]}) of
        {ok, Peer, _} -> {ok, Peer};
        {error, _} = Error -> Error
    catch
        exit:Reason -> {error, Reason}
    end.

fp_without_map_run(Config) ->
    Peer = peer(Config, ["+JPperf", "fp"]),
    try
        %% loaded first: the GDB JIT table is re-read at most once a second
        {module, nsym_hot} = peer:call(Peer, code, ensure_loaded, [nsym_hot]),
        {ok, _} = peer:call(Peer, beamprof, native_start, [#{hz => 999, threads => [normal]}]),
        ok = peer:call(Peer, nsym_hot, run_outer, [3000], 30000),
        {ok, P} = peer:call(Peer, beamprof, native_stop, []),
        ct:log("profile: ~p", [maps:without([stacks], P)]),
        ?assertMatch(#{frame_source := gdb_jit, frame_pointers := true}, P),
        ?assertNot(maps:is_key(hint, P)),
        Stacks = maps:get(stacks, P),
        All = weight(Stacks, fun(_) -> true end),
        Hot = weight(Stacks, fun(S) -> below(<<"nsym_hot:outer/1">>, <<"nsym_hot:spin/1">>, S)
                                           andalso lists:last(S) =:= <<"nsym_hot:spin/1">> end),
        ct:log("spin under outer: ~p of ~p", [Hot, All]),
        ?assert(All > 100),
        ?assert(Hot >= 0.85 * All)
    after
        peer:stop(Peer)
    end.

%% vm_internals false (issue 11 item 3): the native sampler reads none of
%% the VM's internals. A fresh peer with +JPperf map and the switch off in
%% its application environment from boot (-beamprof vm_internals false)
%% profiles a spinning process; then with the environment saying true and
%% beamprof:start(#{vm_internals => false}); then, as a control, with the
%% switch on; then off again after that. Each off run has samples named
%% from the perf map, frame_layout_source none, the vm_internals_off
%% warning, and proves nothing was read: the library's count of lookups of
%% VM internals (the frame layout, the GDB JIT list, its descriptor's
%% search) does not move, no sample's JIT stack was read (jit_walks 0), and
%% spin/1 never shows its caller outer/1. The on run moves both counters,
%% so they can fail; the last off run shows the frame layout the on run
%% cached is neither consulted nor reported.
vm_internals_off(Config) ->
    Peer = peer(Config, ["+JPperf", "map", "-beamprof", "vm_internals", "false"]),
    try
        vm_internals_off_in(Peer)
    after
        peer:stop(Peer)
    end.

vm_internals_off_in(Peer) ->
    Call = fun(M, F, A) -> peer:call(Peer, M, F, A, 120000) end,
    ?assertEqual(false, Call(beamprof_config, vm_internals, [])),
    ?assertMatch(#{internal_reads := 0, mode := leaf, frame_pointers := unknown,
                   frame_layout_source := none, vm_internals := false},
                 Call(beamprof_native_nif, info, [])),
    ?assertEqual({error, vm_internals_off}, Call(beamprof_native_nif, jit_symbols, [])),
    %% the application environment, set before anything started
    off_run(Call, 0),
    %% the start options, over an environment that says true
    ok = Call(application, set_env, [beamprof, vm_internals, true]),
    ok = Call(beamprof, start, [#{vm_internals => false}]),
    off_run(Call, 0),
    ok = Call(beamprof, stop, []),
    %% the control: on, the same library reads the layout and walks stacks
    ok = Call(beamprof, start, [#{vm_internals => true}]),
    {#{frame_layout_source := Source, warnings := OnWarnings}, On} = internals_run(Call),
    ?assertEqual([], not_c_symbols(OnWarnings)),
    ct:log("on: ~p", [On]),
    ?assert(lists:member(Source, [erts_frame_layout, gdb_jit])),
    ?assertMatch(#{mode := fp, vm_internals := true, frame_layout_source := Source}, On),
    ?assert(maps:get(internal_reads, On) > 0),
    ?assert(maps:get(jit_walks, On) > 0),
    ok = Call(beamprof, stop, []),
    %% off again: the layout the on run cached is not consulted
    ok = Call(beamprof, start, [#{vm_internals => false}]),
    off_run(Call, maps:get(internal_reads, On)),
    ok = Call(beamprof, stop, []).

%% A run with the switch off: samples, perf map names, no VM internal read
%% (the library's lookups still at Reads).
%% The warnings but c_symbols_missing (which a stripped beam.smp, without
%% its debug package, adds to a run that samples its frames).
not_c_symbols(Warnings) ->
    [W || #{code := Code} = W <- Warnings, Code =/= c_symbols_missing].

off_run(Call, Reads) ->
    {P, Info} = internals_run(Call),
    #{stacks := Stacks, samples := N, warnings := AllWarnings} = P,
    Warnings = not_c_symbols(AllWarnings),
    ct:log("off: ~p~n~p", [maps:without([stacks], P), Info]),
    ?assertMatch(#{frame_source := perf_map, frame_layout_source := none,
                   frame_pointers := false, hint := <<_/binary>>}, P),
    ?assertMatch([#{code := vm_internals_off, message := <<_/binary>>}], Warnings),
    [#{message := Message}] = Warnings,
    ?assertNotEqual(nomatch, binary:match(Message, <<"not read">>)),
    ?assertNotEqual(nomatch, binary:match(Message, <<"perf map">>)),
    ?assertMatch(#{vm_internals := false, mode := leaf, frame_pointers := unknown,
                   frame_layout_source := none, jit_walks := 0}, Info),
    ?assertEqual(Reads, maps:get(internal_reads, Info)),
    All = weight(Stacks, fun(_) -> true end),
    Spin = weight(Stacks, fun(S) -> lists:last(S) =:= <<"nsym_hot:spin/1">> end),
    Walked = weight(Stacks, fun(S) -> below(<<"nsym_hot:outer/1">>, <<"nsym_hot:spin/1">>, S) end),
    ct:log("~p samples: spin/1 the leaf in ~p of ~p, under outer/1 in ~p",
           [N, Spin, All, Walked]),
    ?assert(N > 50),
    ?assert(Spin >= 0.5 * All),
    ?assertEqual(0, Walked).

%% Profiles nsym_hot:run_outer/1 for 1.5 s; the profile and the library's
%% info after the run.
internals_run(Call) ->
    {ok, _} = Call(beamprof, native_start, [#{hz => 999, threads => [normal]}]),
    ok = Call(nsym_hot, run_outer, [1500]),
    {ok, P} = Call(beamprof, native_stop, []),
    {P, Call(beamprof_native_nif, info, [])}.

%% 60 s at 999 Hz while 200 processes allocate: the peer survives, answers,
%% and has the same threads and POSIX timers afterwards.
stability_60s(Config) ->
    Peer = peer(Config, ["+JPperf", "map"]),
    try
        Before = peer:call(Peer, ?MODULE, os_counts, []),
        {ok, _} = peer:call(Peer, beamprof, native_start, [#{hz => 999}]),
        ok = peer:call(Peer, nsym_hot, gc_load, [200, 60000], 180000),
        Top = peer:call(Peer, beamprof, native_top, [3]),
        {ok, P} = peer:call(Peer, beamprof, native_stop, [], 60000),
        ct:log("top: ~p~nprofile: ~p", [Top, maps:without([stacks], P)]),
        ?assert(maps:get(samples, P) > 1000),
        ?assertEqual(Before, peer:call(Peer, ?MODULE, os_counts, [])),
        ?assertEqual(pong, peer:call(Peer, erlang, apply, [fun() -> pong end, []]))
    after
        peer:stop(Peer)
    end.

%% @private Threads and POSIX timers of this OS process.
os_counts() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    Timers = case file:read_file("/proc/self/timers") of
                 {ok, B} -> length(binary:matches(B, <<"ID:">>));
                 _ -> unknown
             end,
    #{threads => length(Tasks), timers => Timers}.

%%--------------------------------------------------------------------
%% The gate, empty profiles, fallbacks

%% A saturated node is profilable: with the application running (its gate
%% live) and one spinning process per scheduler, the gate closes; a native
%% flame graph then still samples (at most 99 Hz per thread under the
%% gate), the spinning function has most samples, and the result says the
%% gate was closed and which rate was used. At hz 999 it also says, as a
%% native_rate_lowered warning, that the rate was lowered.
saturated_node(Config) ->
    Peer = peer(Config, ["+JPperf", "map"]),
    try
        {ok, _} = peer:call(Peer, application, ensure_all_started, [beamprof]),
        ok = peer:call(Peer, beamprof_events, attach,
                       [native_stop, [beamprof, native, stop], fun ?MODULE:forward_event/4,
                        []]),
        N = peer:call(Peer, erlang, system_info, [schedulers_online]),
        [_ = peer:call(Peer, erlang, spawn, [nsym_hot, run_outer, [120000]])
         || _ <- lists:seq(1, N)],
        Gate = fun() -> peer:call(Peer, beamprof, gate, []) =:= closed end,
        ok = beamprof_ct:wait_until(Gate, 60000),
        File = filename:join(?config(priv_dir, Config), "saturated.folded"),
        {ok, R} = peer:call(Peer, beamprof, flame_graph,
                            [3000, #{output => File, format => folded}], 120000),
        ct:log("result: ~p", [R]),
        {Spin, All} = folded_weight(File, <<"nsym_hot:spin/1">>),
        ct:log("spin/1 in ~p of ~p samples", [Spin, All]),
        ?assert(All > 20),
        ?assert(Spin > 0.5 * All),
        #{gate_closed_ms := Closed, hz_under_gate := 99, gated := Gated} = R,
        ?assert(Closed > 0 andalso Gated > 0),
        %% the stop event says it too
        {[beamprof, native, stop], #{duration := D, samples := S},
         #{gate_closed_ms := Closed, hz_under_gate := 99, warnings := EvWs}} = last_event(Peer),
        ?assert(D > 0 andalso S > 0),
        ?assertEqual(maps:get(warnings, R), EvWs),
        {ok, R2} = peer:call(Peer, beamprof, flame_graph,
                             [3000, #{output => File, format => folded, hz => 999}], 120000),
        ct:log("at 999 Hz: ~p", [R2]),
        #{hz := 999, hz_under_gate := 99, gated := Gated2, warnings := Ws,
          effective_hz := Effective, signal_hz := Signals, gate_closed_pct := Pct} = R2,
        ?assert(Gated2 > 0),
        %% the rate reported is the rate the profile got: about 99 Hz while
        %% the gate was closed, not the timers' rate (their thinned signals)
        ?assert(Signals >= Effective),
        ?assert(Pct < 90 orelse Effective < 99 * 1.5),
        [Msg] = [M || #{code := native_rate_lowered, message := M} <- Ws],
        ?assertNotEqual(nomatch, binary:match(Msg, <<"99 Hz">>)),
        {_, _, #{warnings := EvWs2, hz := 999}} = last_event(Peer),
        ?assertEqual(Ws, EvWs2)
    after
        peer:stop(Peer)
    end.

%% An event handler (runs in the peer, not connected to this node by
%% distribution): keeps the last event for last_event/1.
forward_event(Name, Measurements, Metadata, _Config) ->
    persistent_term:put({?MODULE, last_event}, {Name, Measurements, Metadata}).

last_event(Peer) ->
    peer:call(Peer, persistent_term, get, [{?MODULE, last_event}, none]).

%% The weight of the folded file's stacks that contain Frame, and of all.
folded_weight(File, Frame) ->
    {ok, Bin} = file:read_file(File),
    Lines = [L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>>,
                  binary:first(L) =/= $#],
    lists:foldl(fun(L, {In, All}) ->
                        [Stack, W] = string:split(L, <<" ">>, trailing),
                        Weight = binary_to_integer(W),
                        {In + case binary:match(Stack, Frame) of
                                  nomatch -> 0;
                                  _ -> Weight
                              end, All + Weight}
                end, {0, 0}, Lines).

%% A native profile without samples says why in its warnings: a run of
%% 1 ms (too short for the kernel's tick and one sampling period), and
%% idle threads (dirty IO threads at 10 Hz: a sample needs 100 ms of one
%% thread's CPU time, which they do not use in 600 ms).
empty_profiles_say_why(Config) ->
    {ok, Short} = call(Config, beamprof, flame_graph, [1, #{threads => [normal]}]),
    ShortWhy = empty_warning(Short),
    %% too short, unless a loaded machine stretched the run (start to stop,
    %% measured in C) past two sampling periods: then its threads were idle
    %% for all that time, and it says so
    ?assert(binary:match(ShortWhy, <<"too short">>) =/= nomatch orelse
            binary:match(ShortWhy, <<"idle">>) =/= nomatch),
    {ok, Idle} = call(Config, beamprof, flame_graph, [600, #{threads => [dirty_io], hz => 10}]),
    IdleWhy = empty_warning(Idle),
    ?assertNotEqual(nomatch, binary:match(IdleWhy, <<"idle">>)),
    %% and a profile with samples has no such warning
    {ok, Busy} = call(Config, ?MODULE, busy_flame_graph, [500]),
    ?assertEqual([], [W || #{code := native_no_samples} = W <- maps:get(warnings, Busy)]).

empty_warning(#{samples := 0, warnings := Ws} = R) ->
    ct:log("empty: ~p", [R]),
    [Why] = [M || #{code := native_no_samples, message := M} <- Ws],
    Why.

%% Runs in the peer: a flame graph of Ms while a process spins.
busy_flame_graph(Ms) ->
    Pid = spawn(nsym_hot, run_outer, [Ms * 4]),
    try beamprof:flame_graph(Ms, #{threads => [normal]})
    after exit(Pid, kill)
    end.

%% process_vm_readv denied (the test-only hook deny_vm_readv makes the
%% start's probe report it): the run reads no stack, every sample is one
%% frame (its innermost function), and the profile names it.
vm_readv_denied(Config) ->
    ok = call(Config, application, set_env, [beamprof, native_test_hooks, [deny_vm_readv]]),
    try
        {ok, P} = call(Config, ?MODULE, busy_flame_graph, [800]),
        ct:log("denied: ~p", [P]),
        #{vm_readv := denied, warnings := Ws, profile := #{stacks := Stacks}} = P,
        [_] = [W || #{code := native_leaf_only} = W <- Ws],
        ?assert(length(Stacks) > 0),
        %% root frame: the thread kind (and the [truncated] marker), then
        %% one frame
        [] = [S || {S, _} <- Stacks, length(S -- [<<"[truncated]">>]) =/= 2]
    after
        call(Config, application, unset_env, [beamprof, native_test_hooks])
    end,
    {ok, P2} = call(Config, ?MODULE, busy_flame_graph, [300]),
    #{vm_readv := ok} = P2.
