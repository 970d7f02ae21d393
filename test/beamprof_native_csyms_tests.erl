%% EUnit tests of beamprof_native_csyms: shares, which objects are warned
%% about, and the package each hint names.
-module(beamprof_native_csyms_tests).

-include_lib("eunit/include/eunit.hrl").

-define(BEAM_SMP, <<"/usr/lib/erlang/erts-15.2.7/bin/beam.smp">>).
-define(ID, <<"c3c1e30f9638181692a0faa7554e2643b6def036">>).

object(Name, Path, Source) ->
    #{object => Name, path => Path, source => Source, debug_file => undefined,
      build_id => ?ID, debuglink => <<"c1e30f9638181692a0faa7554e2643b6def036.debug">>,
      symbols => 0, rejected => []}.

shares_test() ->
    Unnamed = #{<<"beam.smp+0x10">> => <<"beam.smp">>, <<"libx.so+0x20">> => <<"libx.so">>},
    Stacks = [{[<<"[normal]">>, <<"beam.smp+0x10">>, <<"f">>], 2},
              {[<<"[normal]">>, <<"beam.smp+0x10">>, <<"libx.so+0x20">>], 1},
              {[<<"[normal]">>, <<"g">>], 5}],
    Objects = [object(<<"beam.smp">>, ?BEAM_SMP, dynsym),
               object(<<"libx.so">>, <<"/usr/lib/libx.so">>, symtab)],
    R = beamprof_native_csyms:report(Stacks, Unnamed, {Objects, <<"/usr/lib/debug">>}),
    ?assertMatch(#{unnamed_pct := 37.5, unnamed_leaf_pct := 12.5,
                   unnamed := #{<<"beam.smp">> := 37.5, <<"libx.so">> := 12.5}}, R),
    %% libx.so has a .symtab: its unnamed code is not a missing package
    [#{code := c_symbols_missing, message := M}] = maps:get(warnings, R),
    ?assertMatch({_, _}, binary:match(M, <<"37.5% of samples have C frames in beam.smp">>)),
    ?assertMatch({_, _}, binary:match(M, <<"/usr/lib/debug/.build-id/c3/c1e30f9638181692a0faa"
                                           "7554e2643b6def036.debug">>)).

empty_test() ->
    ?assertEqual(#{unnamed_pct => 0.0, unnamed_leaf_pct => 0.0, unnamed => #{}, warnings => []},
                 beamprof_native_csyms:report([], #{}, {[], <<"/usr/lib/debug">>})).

hint(Path, Os) ->
    iolist_to_binary(beamprof_native_csyms:hint(Path, Os, <<"/usr/lib/debug">>)).

hints_test() ->
    Trixie = #{id => <<"debian">>, codename => <<"trixie">>},
    H1 = hint(?BEAM_SMP, Trixie),
    ?assertMatch({_, _}, binary:match(H1, <<"erlang-base-dbgsym">>)),
    ?assertMatch({_, _}, binary:match(H1, <<"deb http://deb.debian.org/debian-debug trixie-debug main">>)),
    H2 = hint(<<"/usr/lib/x86_64-linux-gnu/libz.so.1">>, Trixie),
    ?assertMatch({_, _}, binary:match(H2, <<"dpkg -S /usr/lib/x86_64-linux-gnu/libz.so.1">>)),
    ?assertMatch({_, _}, binary:match(hint(?BEAM_SMP, #{id => <<"ubuntu">>}), <<"ddebs.ubuntu.com">>)),
    ?assertMatch({_, _}, binary:match(hint(?BEAM_SMP, #{id => <<"linuxmint">>,
                                                    id_like => [<<"ubuntu">>, <<"debian">>]}),
                                      <<"ddebs.ubuntu.com">>)),
    ?assertMatch({_, _}, binary:match(hint(?BEAM_SMP, #{id => <<"fedora">>}), <<"debuginfo">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"/home/me/otp/bin/beam.smp">>, Trixie),
                                      <<"not stripped">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"/usr/lib/x86_64-linux-gnu/libc.so.6">>, Trixie),
                                      <<"libc6-dbg">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"/lib64/ld-linux-x86-64.so.2">>, Trixie),
                                      <<"libc6-dbg">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"/usr/lib/x86_64-linux-gnu/libcrypto.so.3">>,
                                           Trixie), <<"-dbgsym">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"linux-vdso.so.1">>, Trixie), <<"No package">>)),
    ?assertMatch({_, _}, binary:match(hint(<<"/usr/lib64/libc.so.6">>, #{id => <<"fedora">>}),
                                      <<"debuginfo">>)).

os_release_test() ->
    Os = beamprof_native_csyms:os_release(),
    ?assert(is_map(Os)),
    [?assert(is_binary(V)) || K <- [id, codename], V <- [maps:get(K, Os, <<>>)]].
