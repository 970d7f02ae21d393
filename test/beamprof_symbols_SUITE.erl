%% Common Test suite of native symbolization in a real VM: dladdr names of
%% beam.smp's exported and static functions, the GDB JIT table, and the
%% perf map of a peer started with +JPperf map (a module loaded, purged and
%% reloaded), plus random terms into the new NIFs. Full symbol tables: a
%% NIF library built here with a static function, stripped or not, with its
%% debug file found by build-id, by .gnu_debuglink (three places) or not at
%% all (and a debuglink whose CRC does not match), named through
%% beamprof_native_nif:symbolize/2 and in a native profile.
-module(beamprof_symbols_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2]).
-export([dladdr_exported/1, dladdr_static/1, gdb_jit_table/1, frame_layout/1,
         perfmap_in_peer/1, perfmap_reload_newest/1, perfmap_agrees_with_gdb_jit/1,
         perfmap_incremental_file/1, symbolize_badarg/1, prop_nif_terms/1]).
-export([names_from_symtab/1, names_by_build_id/1, names_by_debuglink/1,
         debuglink_bad_crc/1, unnamed_warning/1, profile_names_c_frames/1,
         symbol_table_badarg/1]).
-export([load_probe/2, probe_ranges/1]).

all() ->
    [dladdr_exported, dladdr_static, gdb_jit_table, frame_layout, perfmap_in_peer,
     perfmap_reload_newest, perfmap_agrees_with_gdb_jit, perfmap_incremental_file,
     symbolize_badarg, prop_nif_terms, {group, debug_files}].

groups() ->
    [{debug_files, [], [names_from_symtab, names_by_build_id, names_by_debuglink,
                        debuglink_bad_crc, unnamed_warning, profile_names_c_frames,
                        symbol_table_badarg]}].

init_per_group(debug_files, Config) ->
    build_probes(Config).

end_per_group(debug_files, _Config) ->
    application:unset_env(beamprof, debug_root).

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    beamprof_ct:native_suite(Config).

end_per_suite(_Config) ->
    ok.

%%--------------------------------------------------------------------
%% Helpers

%% Load base of beam.smp in this VM: the start of its mapping at offset 0.
beam_base() ->
    {ok, Maps} = file:read_file("/proc/self/maps"),
    [Base | _] = [binary_to_integer(hd(binary:split(L, <<"-">>)), 16)
                  || L <- binary:split(Maps, <<"\n">>, [global]),
                     binary:match(L, <<"beam.smp">>) =/= nomatch,
                     [_, _, Off | _] <- [binary:split(L, <<" ">>, [global])],
                     binary_to_integer(Off, 16) =:= 0],
    Base.

%% beam.smp's defined dynamic function symbols: [{Value, Size, Name}].
dynsyms() ->
    Out = os:cmd("nm -D -S --defined-only " ++ beamprof_ct:beam_smp()),
    [{list_to_integer(V, 16), list_to_integer(S, 16), N}
     || Line <- string:split(Out, "\n", all),
        [V, S, T, N] <- [string:lexemes(Line, " ")], T =:= "T" orelse T =:= "t"].

peer(Args) ->
    {ok, Peer, _Node} = peer:start_link(#{connection => standard_io,
                                          args => ["-pa" | code:get_path()] ++ Args}),
    {module, beamprof_nif} = peer:call(Peer, code, ensure_loaded, [beamprof_nif]),
    Peer.

%% Compiles and loads module nsym_probe with the given function names
%% (each F(N) -> N + 1), purging an older version first.
load_probe(Funs, Extra) ->
    Forms = [{attribute, 1, module, nsym_probe},
             {attribute, 2, export, [{F, 1} || F <- Funs]}] ++
        [{function, 3, F, 1, [{clause, 3, [{var, 3, 'N'}], [],
                               [{op, 3, '+', {var, 3, 'N'}, {integer, 3, Extra}}]}]}
         || F <- Funs],
    {ok, nsym_probe, Bin} = compile:forms(Forms, []),
    _ = code:purge(nsym_probe),
    {module, nsym_probe} = code:load_binary(nsym_probe, "nsym_probe.erl", Bin),
    _ = code:purge(nsym_probe),
    ok.

%% The perf map's raw lines of nsym_probe: [{Start, Size, Name}].
probe_ranges(Path) ->
    {ok, Bin} = file:read_file(Path),
    [R || L <- binary:split(Bin, <<"\n">>, [global]),
          {_, _, <<"$nsym_probe:", _/binary>>} = R <- [beamprof_perfmap:parse_line(L)]].

%%--------------------------------------------------------------------
%% dladdr and GDB JIT in this VM

dladdr_exported(_Config) ->
    Base = beam_base(),
    Syms = dynsyms(),
    %% erts_garbage_collect where beam.smp exports it (OTP 25, 27); the NIF
    %% API is all OTP 29's exports
    Fun = case lists:keymember("erts_garbage_collect", 3, Syms) of
              true -> "erts_garbage_collect";
              false -> "enif_make_atom"
          end,
    {V, S, _} = lists:keyfind(Fun, 3, Syms),
    ?assert(S > 8),
    ?assertEqual([list_to_binary(Fun), list_to_binary(Fun)],
                 beamprof_native_nif:symbolize([Base + V, Base + V + S - 1])),
    %% a sample of exported functions resolves to their own names
    Sample = lists:sublist([X || {_, Sz, _} = X <- Syms, Sz > 0], 200),
    Names = beamprof_native_nif:symbolize([Base + Vx + Sz div 2 || {Vx, Sz, _} <- Sample]),
    Hits = length([ok || {{_, _, N}, B} <- lists:zip(Sample, Names), B =:= list_to_binary(N)]),
    ct:log("~p of ~p exported functions named by dladdr", [Hits, length(Sample)]),
    ?assert(Hits >= length(Sample) * 9 div 10).

dladdr_static(_Config) ->
    Base = beam_base(),
    Sorted = lists:keysort(1, [X || {_, S, _} = X <- dynsyms(), S > 0]),
    %% a gap of at least 64 bytes between two exported functions holds
    %% static code (beam.smp's .text is contiguous)
    Gaps = [E1 + 16 || {{V1, S1, _}, {V2, _, _}} <- lists:zip(lists:droplast(Sorted), tl(Sorted)),
                       E1 <- [V1 + S1], V2 - E1 >= 64],
    ?assert(length(Gaps) > 10),
    Gap = lists:nth(length(Gaps) div 2, Gaps),
    %% named by its function's start (.eh_frame), shared by its addresses
    [<<"beam.smp+0x", Hex/binary>> = Name, Name] =
        beamprof_native_nif:symbolize([Base + Gap, Base + Gap + 1]),
    Start = binary_to_integer(Hex, 16),
    ct:log("static code at 0x~.16b: ~ts", [Gap, Name]),
    ?assert(Start =< Gap andalso Start >= Gap - 16).

gdb_jit_table(_Config) ->
    {ok, Ranges, #{symbols := N, modules := M} = Info} = beamprof_native_nif:jit_symbols(),
    ct:log("GDB JIT table: ~p ranges in ~p modules; ~p", [N, M, Info]),
    %% found by dlsym where beam.smp exports it, else by the search of its
    %% writable segments (OTP 29); the emulator's record: no frame pointers
    %% in this VM (no +JPperf)
    Found = case beamprof_ct:beam_exports("__jit_debug_descriptor") of
                true -> dlsym;
                false -> search
            end,
    ?assertMatch(#{descriptor := Found, frame_layout := 0}, Info),
    ?assertEqual(N, length(Ranges)),
    ?assert(N > 5000),
    ?assert(lists:all(fun({S, E, Name}) -> S =< E andalso is_binary(Name) end, Ranges)),
    Starts = [S || {S, _, _} <- Ranges],
    ?assertEqual(Starts, lists:sort(Starts)),
    Names = [Name || {_, _, Name} <- Ranges],
    ?assert(lists:member(<<"lists:reverse/2">>, Names)),
    ?assert(lists:member(<<"erts_beamasm:normal_exit/0">>, Names)),
    %% JIT addresses are in no loaded object
    {S0, _, _} = lists:keyfind(<<"lists:reverse/2">>, 3, Ranges),
    ?assertEqual([undefined], beamprof_native_nif:symbolize([S0 + 1])),
    %% a module loaded now appears in the next snapshot
    ok = load_probe([jit_probe_fun], 1),
    {ok, Again, _} = beamprof_native_nif:jit_symbols(),
    ?assert(lists:keymember(<<"nsym_probe:jit_probe_fun/1">>, 3, Again)).

%% The frame layout comes from erts_frame_layout where beam.smp exports it
%% (OTP 25, 27), else from the emulator's record in the GDB JIT list (OTP
%% 29). The record's layout is checked on every release: against
%% erts_frame_layout where both exist, against the VM's flags where only
%% the record does.
frame_layout(_Config) ->
    Source = case beamprof_ct:beam_exports("erts_frame_layout") of
                 true -> erts_frame_layout;
                 false -> gdb_jit
             end,
    %% no frame pointers: no Erlang caller is read (mode leaf)
    ?assertMatch(#{frame_pointers := false, mode := leaf, frame_layout_source := Source},
                 beamprof_native_nif:info()),
    {ok, _, #{frame_layout := 0}} = beamprof_native_nif:jit_symbols(),
    Flags = [["+JPperf", "map"]] ++
        case list_to_integer(erlang:system_info(otp_release)) >= 26 of
            true -> [["+JPperf", "fp"], ["+JPperf", "true"]]; % fp: OTP 26+
            false -> [["+JPperf", "true"]]
        end,
    lists:foreach(fun(Args) -> frame_layout_in_peer(Args, Source) end, Flags).

frame_layout_in_peer(Args, Source) ->
    Peer = peer(Args),
    try
        ?assertMatch(#{frame_pointers := true, mode := fp, frame_layout_source := Source},
                     peer:call(Peer, beamprof_native_nif, info, [])),
        ?assertMatch({ok, _, #{frame_layout := 1}},
                     peer:call(Peer, beamprof_native_nif, jit_symbols, []))
    after
        peer:stop(Peer)
    end.

%%--------------------------------------------------------------------
%% Perf map

perfmap_in_peer(_Config) ->
    ok = in_perf_peer(fun perfmap_in_peer/0).

%% Runs Fun in a peer started with +JPperf map (the perf map's ETS table
%% belongs to the caller).
in_perf_peer(Fun) ->
    Peer = peer(["+JPperf", "map"]),
    try
        peer:call(Peer, erlang, apply, [Fun, []], 60000)
    after
        peer:stop(Peer)
    end.

perfmap_in_peer() ->
    ok = load_probe([alpha, beta], 1),
    Path = beamprof_perfmap:path(),
    {ok, Map} = beamprof_perfmap:open(),
    Raw = probe_ranges(Path),
    ct:log("nsym_probe in the perf map: ~p", [Raw]),
    {AlphaStart, AlphaSize, _} = lists:keyfind(<<"$nsym_probe:alpha/1">>, 3, Raw),
    {ProStart, _, _} = lists:keyfind(<<"$nsym_probe:alpha/1-CodeInfoPrologue">>, 3, Raw),
    Lookup = fun(A) -> beamprof_perfmap:lookup(Map, A) end,
    ?assertEqual(<<"nsym_probe:alpha/1">>, Lookup(AlphaStart)),
    ?assertEqual(<<"nsym_probe:alpha/1">>, Lookup(AlphaStart + AlphaSize - 1)),
    ?assertEqual(<<"nsym_probe:alpha/1">>, Lookup(ProStart)),
    ?assertNotEqual(<<"nsym_probe:alpha/1">>, Lookup(AlphaStart + AlphaSize + 64)),
    {CallNif, _, _} = lists:keyfind(<<"$global::call_nif_shared">>, 3,
                                    [beamprof_perfmap:parse_line(L) || L <- lines(Path)]),
    ?assertEqual(<<"global::call_nif_shared">>, Lookup(CallNif + 1)),
    ok.

lines(Path) ->
    {ok, Bin} = file:read_file(Path),
    binary:split(Bin, <<"\n">>, [global]).

perfmap_reload_newest(_Config) ->
    ok = in_perf_peer(fun perfmap_reload_newest/0).

perfmap_reload_newest() ->
    ok = load_probe([old_a, old_b, old_c], 1),
    {ok, Map0} = beamprof_perfmap:open(),
    Path = beamprof_perfmap:path(),
    Old = probe_ranges(Path),
    Offset0 = maps:get(offset, Map0),
    %% purge and reload with other names, many times: the JIT reuses
    %% freed code memory, and the newest name must win
    Rounds = [begin
                  Name = list_to_atom("new_" ++ integer_to_list(I)),
                  ok = load_probe([Name], I),
                  Name
              end || I <- lists:seq(1, 20)],
    Map = beamprof_perfmap:refresh(Map0),
    ?assert(maps:get(offset, Map) > Offset0),
    All = probe_ranges(Path),
    Newest = lists:last([R || {_, _, N} = R <- All,
                              binary:match(N, atom_to_binary(lists:last(Rounds))) =/= nomatch,
                              binary:match(N, <<"Prologue">>) =:= nomatch]),
    {Start, Size, _} = Newest,
    ?assertEqual(<<"nsym_probe:new_20/1">>, beamprof_perfmap:lookup(Map, Start + Size div 2)),
    Reused = [R || {S, Sz, _} = R <- Old, S < Start + Size, Start < S + Sz],
    ct:log("old ranges overlapping the newest: ~p", [Reused]),
    %% every address of every range resolves to the last line covering it
    lists:foreach(fun({S, Sz, _}) ->
                          A = S + Sz div 2,
                          Expected = last_covering(All, A),
                          ?assertEqual(Expected, beamprof_perfmap:lookup(Map, A))
                  end, All).

last_covering(Ranges, A) ->
    case [N || {S, Sz, N} <- Ranges, S =< A, A < S + Sz] of
        [] -> undefined;
        Names -> beamprof_symtab:normalize(lists:last(Names))
    end.

perfmap_agrees_with_gdb_jit(_Config) ->
    ok = in_perf_peer(fun perfmap_agrees_with_gdb_jit/0).

perfmap_agrees_with_gdb_jit() ->
    {ok, Map} = beamprof_perfmap:open(),
    {ok, Ranges, _} = beamprof_native_nif:jit_symbols(),
    Sample = [R || {_, _, <<"lists:", _/binary>>} = R <- Ranges],
    ?assert(length(Sample) > 50),
    lists:foreach(fun({S, E, N}) when E > S ->
                          ?assertEqual(beamprof_symtab:normalize(N),
                                       beamprof_perfmap:lookup(Map, S + (E - S) div 2));
                     (_) -> ok
                  end, Sample).

perfmap_incremental_file(Config) ->
    Path = filename:join(?config(priv_dir, Config), "perf-test.map"),
    ok = file:write_file(Path, <<"0x1000 100 $m:f/1\n0x1100 40 $m:g/2-CodeInfoPrologue\n0x11">>),
    {ok, M0} = beamprof_perfmap:open(Path),
    ?assertEqual(<<"m:f/1">>, beamprof_perfmap:lookup(M0, 16#10ff)),
    ?assertEqual(<<"m:g/2">>, beamprof_perfmap:lookup(M0, 16#1100)),
    ?assertEqual(undefined, beamprof_perfmap:lookup(M0, 16#1140)),
    ?assertEqual(2, beamprof_perfmap:size(M0)),
    %% the partial line completes; a purge reuses 0x1000..0x1140
    ok = file:write_file(Path, <<"40 $m:g/2\n0x1000 140 $n:h/0\n">>, [append]),
    M1 = beamprof_perfmap:refresh(M0),
    ?assertEqual(<<"n:h/0">>, beamprof_perfmap:lookup(M1, 16#1000)),
    ?assertEqual(<<"n:h/0">>, beamprof_perfmap:lookup(M1, 16#1120)),
    ?assertEqual(<<"n:h/0">>, beamprof_perfmap:lookup(M1, 16#113f)),
    ?assertEqual(undefined, beamprof_perfmap:lookup(M1, 16#1140)),
    ?assertEqual(1, beamprof_perfmap:size(M1)),
    %% nothing appended: nothing changes; garbage lines are skipped
    ok = file:write_file(Path, <<"zz 1 x\n0x2000 zz y\n\n0x2000 10 $global::garbage_collect\n">>,
                         [append]),
    M2 = beamprof_perfmap:refresh(beamprof_perfmap:refresh(M1)),
    ?assertEqual(<<"global::garbage_collect">>, beamprof_perfmap:lookup(M2, 16#2001)),
    ?assertEqual(2, beamprof_perfmap:size(M2)),
    ok = beamprof_perfmap:close(M2),
    ?assertEqual({error, enoent}, beamprof_perfmap:open(Path ++ ".none")).

%%--------------------------------------------------------------------
%% NIF boundary

symbolize_badarg(_Config) ->
    [?assertError(badarg, beamprof_native_nif:symbolize(Bad))
     || Bad <- [x, [-1], [1 bsl 64], [1 | 2], [a], <<>>, #{},
                lists:duplicate(100001, 1)]],
    ?assertEqual([], beamprof_native_nif:symbolize([])),
    ?assertEqual([undefined, undefined], beamprof_native_nif:symbolize([0, (1 bsl 64) - 1])).

prop_nif_terms(_Config) ->
    Prop = ?FORALL(T, term(),
                   begin
                       R = try beamprof_native_nif:symbolize(T) catch error:badarg -> badarg end,
                       R =:= badarg orelse (is_list(R) andalso length(R) =:= length(T))
                   end),
    Prop2 = ?FORALL(L, list(oneof([non_neg_integer(), integer(0, 1 bsl 64 - 1), term()])),
                    begin
                        R = try beamprof_native_nif:symbolize(L) catch error:badarg -> badarg end,
                        R =:= badarg orelse lists:all(fun(X) -> X =:= undefined orelse
                                                                    is_binary(X) end, R)
                    end),
    true = proper:quickcheck(Prop, [{numtests, 1000}, {to_file, user}]),
    true = proper:quickcheck(Prop2, [{numtests, 1000}, {to_file, user}]),
    ok.

%%--------------------------------------------------------------------
%% Full symbol tables: .symtab, build-id, .gnu_debuglink

%% The probe variants: each a build of symprobe.c (module symprobe_V), then
%%   symtab    not stripped;
%%   buildid   stripped, its debug file at Root/.build-id/xx/yyyy.debug;
%%   link      stripped with a debuglink, the debug file beside it;
%%   linksub   the same, the debug file in .debug/ beside it;
%%   linkroot  the same, the debug file at Root/<its directory>/;
%%   badcrc    as link, the debug file changed after the debuglink was made;
%%   none      stripped, nothing else.
-define(VARIANTS, [symtab, buildid, link, linksub, linkroot, badcrc, none]).
-define(SECRET, <<"bp_probe_secret_fn">>).

build_probes(Config) ->
    Priv = ?config(priv_dir, Config),
    Dir = filename:join(Priv, "probes"),
    Root = filename:join(Priv, "debug_root"),
    ok = filelib:ensure_path(filename:join(Dir, ".debug")),
    ok = filelib:ensure_path(filename:join(Root, ".build-id")),
    Inc = filename:join([code:root_dir(), "erts-" ++ erlang:system_info(version), "include"]),
    Src = filename:join(?config(data_dir, Config), "symprobe.c"),
    Probes = [{V, build_probe(V, Dir, Root, Inc, Src)} || V <- ?VARIANTS],
    [{probes, maps:from_list(Probes)}, {debug_root, Root}, {probe_dir, Dir} | Config].

build_probe(V, Dir, Root, Inc, Src) ->
    Mod = list_to_atom("symprobe_" ++ atom_to_list(V)),
    So = filename:join(Dir, atom_to_list(Mod) ++ ".so"),
    sh(["cc -std=c11 -D_GNU_SOURCE -Wall -O1 -g -fPIC -shared -fvisibility=hidden -Wl,--build-id=sha1 "
        "-DPROBE_MOD=", atom_to_list(Mod), " -I", Inc, " -o ", So, " ", Src]),
    Id = build_id(So),
    Debug = So ++ ".debug",
    case V of
        symtab -> ok;
        _ -> sh(["objcopy --only-keep-debug ", So, " ", Debug, " && "
                 "strip --strip-debug --strip-unneeded ", So])
    end,
    place(V, So, Debug, Id, Root),
    {module, Mod} = load_probe_module(Mod),
    ok = Mod:load(filename:rootname(So)),
    #{module => Mod, so => So, build_id => Id, addr => Mod:addr(), debug => debug_path(V, So, Id, Root)}.

place(symtab, _So, _Debug, _Id, _Root) ->
    ok;
place(buildid, _So, Debug, Id, Root) ->
    Path = build_id_path(Root, Id),
    ok = filelib:ensure_dir(Path),
    ok = file:rename(Debug, Path);
place(none, _So, Debug, _Id, _Root) ->
    ok = file:delete(Debug);
place(V, So, Debug, Id, Root) ->
    %% objcopy computes the debuglink's CRC from the file it is given
    sh(["objcopy --add-gnu-debuglink=", Debug, " ", So]),
    Target = debug_path(V, So, Id, Root),
    ok = filelib:ensure_dir(Target),
    _ = Target =:= Debug orelse file:rename(Debug, Target) =:= ok,
    case V of
        badcrc -> ok = file:write_file(Target, <<"changed">>, [append]);
        _ -> ok
    end.

debug_path(buildid, _So, Id, Root) -> build_id_path(Root, Id);
debug_path(linksub, So, _Id, _Root) ->
    filename:join([filename:dirname(So), ".debug", filename:basename(So) ++ ".debug"]);
debug_path(linkroot, So, _Id, Root) ->
    Root ++ So ++ ".debug";
debug_path(V, So, _Id, _Root) when V =:= link; V =:= badcrc -> So ++ ".debug";
debug_path(_V, _So, _Id, _Root) -> undefined.

build_id_path(Root, [A, B | Rest]) ->
    filename:join([Root, ".build-id", [A, B], Rest ++ ".debug"]).

%% The build-id readelf reports (hex).
build_id(So) ->
    Out = os:cmd("env -u LD_PRELOAD readelf -n " ++ So),
    {match, [Id]} = re:run(Out, "Build ID: ([0-9a-f]+)", [{capture, all_but_first, list}]),
    Id.

sh(Cmd) ->
    Out = os:cmd(lists:flatten(["env -u LD_PRELOAD sh -c '", Cmd, "' 2>&1; echo rc=$?"])),
    ct:log("~ts~n~ts", [lists:flatten(Cmd), Out]),
    ?assertNotEqual(nomatch, string:find(Out, "rc=0")),
    ok.

load_probe_module(Mod) ->
    Forms = [{attribute, 1, module, Mod},
             {attribute, 2, export, [{load, 1}, {addr, 0}, {spin, 1}]},
             {function, 3, load, 1,
              [{clause, 3, [{var, 3, 'P'}], [],
                [{call, 3, {remote, 3, {atom, 3, erlang}, {atom, 3, load_nif}},
                  [{var, 3, 'P'}, {integer, 3, 0}]}]}]},
             {function, 4, addr, 0, [{clause, 4, [], [], [nif_error(4)]}]},
             {function, 5, spin, 1, [{clause, 5, [{var, 5, '_'}], [], [nif_error(5)]}]}],
    {ok, Mod, Bin} = compile:forms(Forms, []),
    code:load_binary(Mod, atom_to_list(Mod) ++ ".erl", Bin).

nif_error(L) ->
    {call, L, {remote, L, {atom, L, erlang}, {atom, L, nif_error}}, [{atom, L, not_loaded}]}.

probe(V, Config) ->
    maps:get(V, ?config(probes, Config)).

%% The name of the probe's address and what the table found for its object.
resolve(V, Root, Config) ->
    #{so := So, addr := Addr} = probe(V, Config),
    Table = beamprof_native_nif:symbol_table(Root),
    [Name] = beamprof_native_nif:symbolize(Table, [Addr]),
    [Object] = [O || #{path := P} = O <- beamprof_native_nif:symbol_objects(Table),
                     P =:= list_to_binary(So)],
    ct:log("~p: ~p~n~p", [V, Name, Object]),
    {Name, Object}.

names_from_symtab(Config) ->
    #{addr := Addr} = probe(symtab, Config),
    %% dladdr alone cannot name a static function
    [<<"symprobe_symtab.so+0x", _/binary>>] = beamprof_native_nif:symbolize([Addr]),
    {Name, Object} = resolve(symtab, ?config(debug_root, Config), Config),
    ?assertEqual(?SECRET, Name),
    ?assertMatch(#{source := symtab, debug_file := undefined, rejected := [],
                   object := <<"symprobe_symtab.so">>}, Object),
    ?assert(maps:get(symbols, Object) >= 3).

names_by_build_id(Config) ->
    Root = ?config(debug_root, Config),
    #{build_id := Id, debug := Debug} = probe(buildid, Config),
    {Name, Object} = resolve(buildid, Root, Config),
    ?assertEqual(?SECRET, Name),
    ?assertMatch(#{source := build_id, debuglink := undefined}, Object),
    ?assertEqual(list_to_binary(Debug), maps:get(debug_file, Object)),
    ?assertEqual(list_to_binary(Id), maps:get(build_id, Object)),
    %% under another root (where nothing is installed) it stays unnamed
    Empty = filename:join(?config(priv_dir, Config), "empty_root"),
    ok = filelib:ensure_path(Empty),
    {Unnamed, Object2} = resolve(buildid, Empty, Config),
    ?assertMatch({<<"symprobe_buildid.so">>, Off} when is_integer(Off), Unnamed),
    ?assertMatch(#{source := dynsym, debug_file := undefined, symbols := 0}, Object2).

names_by_debuglink(Config) ->
    Root = ?config(debug_root, Config),
    lists:foreach(
      fun(V) ->
              #{debug := Debug, so := So} = probe(V, Config),
              {Name, Object} = resolve(V, Root, Config),
              ?assertEqual(?SECRET, Name),
              ?assertMatch(#{source := debuglink, rejected := []}, Object),
              ?assertEqual(list_to_binary(Debug), maps:get(debug_file, Object)),
              ?assertEqual(list_to_binary(filename:basename(So) ++ ".debug"),
                           maps:get(debuglink, Object))
      end, [link, linksub, linkroot]).

debuglink_bad_crc(Config) ->
    #{debug := Debug} = probe(badcrc, Config),
    {Name, Object} = resolve(badcrc, ?config(debug_root, Config), Config),
    %% the file is there, readable and has the symbol: its CRC keeps it out
    ?assertMatch({<<"symprobe_badcrc.so">>, _}, Name),
    ?assertMatch(#{source := dynsym, debug_file := undefined}, Object),
    ?assertEqual([{list_to_binary(Debug), crc_mismatch}], maps:get(rejected, Object)).

%% Neither .symtab nor a debug file: the frame stays Object+0xOffset, the
%% report counts its share and warns, naming the paths looked at.
unnamed_warning(Config) ->
    Root = ?config(debug_root, Config),
    #{addr := Addr, so := So, build_id := Id} = probe(none, Config),
    #{addr := Named} = probe(symtab, Config),
    Sym0 = beamprof_native_sym:new(none, false, Root),
    {[[Frame], [Secret]], Sym} = beamprof_native_sym:symbolize([[Addr], [Named]], Sym0),
    ?assertEqual(?SECRET, Secret),
    ?assertMatch(<<"symprobe_none.so+0x", _/binary>>, Frame),
    ?assertEqual(#{Frame => <<"symprobe_none.so">>}, beamprof_native_sym:unnamed(Sym)),
    Stacks = [{[<<"[dirty_cpu]">>, Frame], 3}, {[<<"[dirty_cpu]">>, Secret], 1}],
    Report = beamprof_native_csyms:report(Stacks, beamprof_native_sym:unnamed(Sym),
                                          beamprof_native_sym:objects(Sym)),
    ct:log("~p", [Report]),
    ?assertMatch(#{unnamed_pct := 75.0, unnamed_leaf_pct := 75.0,
                   unnamed := #{<<"symprobe_none.so">> := 75.0}}, Report),
    [#{code := c_symbols_missing, message := Message} = W] = maps:get(warnings, Report),
    ?assert(beamprof_warnings:is_warning(W)),
    [?assertNotEqual(nomatch, binary:match(Message, iolist_to_binary(Part)), Part)
     || Part <- [So, build_id_path(Root, Id), "75.0% of samples", "symprobe_none.so+0x",
                 "not stripped"]],
    beamprof_native_sym:close(Sym).

%% A native profile with the debug root set: the static function of the
%% debuglink probe is named, the stripped one's frames are counted unnamed
%% and warned about.
profile_names_c_frames(Config) ->
    ok = application:set_env(beamprof, debug_root, ?config(debug_root, Config)),
    #{module := Link} = probe(link, Config),
    #{module := None} = probe(none, Config),
    {ok, _} = beamprof_native:start(#{hz => 250, threads => [dirty_cpu]}),
    Deadline = erlang:monotonic_time(millisecond) + 30000,
    Profile = try spin_until_sampled(Link, None, Deadline)
              after _ = beamprof_native:stop()
              end,
    #{unnamed_pct := Pct, unnamed_leaf_pct := LeafPct, unnamed := PerObject,
      warnings := Warnings} = Profile,
    ct:log("unnamed_pct ~p, unnamed_leaf_pct ~p, ~p~n~p", [Pct, LeafPct, PerObject, Warnings]),
    ?assert(LeafPct > 0 andalso LeafPct =< Pct),
    ?assert(maps:get(<<"symprobe_none.so">>, PerObject) > 0),
    ?assertNot(is_map_key(<<"symprobe_link.so">>, PerObject)),
    ?assert(Pct >= maps:get(<<"symprobe_none.so">>, PerObject)),
    ?assertMatch([_], [W || #{code := c_symbols_missing, message := M} = W <- Warnings,
                            binary:match(M, <<"symprobe_none.so">>) =/= nomatch]).

spin_until_sampled(Link, None, Deadline) ->
    ok = Link:spin(200),
    ok = None:spin(200),
    {ok, Profile} = gen_server:call(beamprof_native_collector, profile, 60000),
    Frames = lists:append([F || {F, _} <- maps:get(stacks, Profile)]),
    Seen = {lists:member(?SECRET, Frames),
            lists:any(fun(F) -> binary:match(F, <<"symprobe_none.so+0x">>) =/= nomatch end,
                      Frames)},
    case {Seen, erlang:monotonic_time(millisecond) > Deadline} of
        {{true, true}, _} -> Profile;
        {_, true} -> ct:fail({not_sampled, Seen});
        {_, false} -> spin_until_sampled(Link, None, Deadline)
    end.

symbol_table_badarg(Config) ->
    [?assertError(badarg, beamprof_native_nif:symbol_table(Bad))
     || Bad <- ["", <<>>, <<"a", 0, "b">>, lists:duplicate(1025, $a), 42, [x]]],
    Table = beamprof_native_nif:symbol_table(?config(debug_root, Config)),
    [?assertError(badarg, beamprof_native_nif:symbolize(Bad, [1]))
     || Bad <- [x, make_ref(), <<>>, self()]],
    [?assertError(badarg, beamprof_native_nif:symbolize(Table, Bad))
     || Bad <- [x, [-1], [1 bsl 64], [1 | 2], lists:duplicate(100001, 1)]],
    [?assertError(badarg, beamprof_native_nif:symbol_objects(Bad)) || Bad <- [x, make_ref()]],
    ?assertEqual([undefined, undefined], beamprof_native_nif:symbolize(Table, [0, 1 bsl 64 - 1])),
    Prop = ?FORALL(L, list(oneof([integer(0, 1 bsl 64 - 1), term()])),
                   begin
                       R = try beamprof_native_nif:symbolize(Table, L)
                           catch error:badarg -> badarg
                           end,
                       R =:= badarg orelse
                           lists:all(fun(undefined) -> true;
                                        (B) when is_binary(B) -> true;
                                        ({O, Off}) -> is_binary(O) andalso is_integer(Off)
                                     end, R)
                   end),
    true = proper:quickcheck(Prop, [{numtests, 500}, {to_file, user}]),
    ok.
