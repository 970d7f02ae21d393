-module(beamprof_flame_tests).
-include_lib("eunit/include/eunit.hrl").

-define(P, #{title => <<"t">>,
             stacks => [{[<<"m:a/0">>, <<"m:b/1">>, <<"c_fun">>], 3},
                        {[<<"m:a/0">>, <<"m:b/1">>], 2},
                        {[<<"m:a/0">>, <<"m:b/1">>, <<"c_fun">>], 4},
                        {[<<"m:a/0">>, <<"m:z/2">>], 1},
                        {[<<"erts_gc">>], 5}]}).

%% ---- tree ----

tree_merges_identical_prefixes_test() ->
    #{tree := Tree, total := 15, stacks := 5} = beamprof_flame:graph(?P),
    ?assertEqual({<<"all">>, 15,
                  [{<<"erts_gc">>, 5, []},
                   {<<"m:a/0">>, 10, [{<<"m:b/1">>, 9, [{<<"c_fun">>, 7, []}]},
                                      {<<"m:z/2">>, 1, []}]}]}, Tree).

tree_merges_names_equal_after_cleaning_test() ->
    #{tree := {_, 3, [{<<"a b">>, 3, [{<<"x">>, 3, []}]}]}} =
        beamprof_flame:graph(#{stacks => [{[<<"a\nb">>, <<"x">>], 1}, {[<<"a\tb">>, <<"x">>], 2}]}).

tree_empty_stack_test() ->
    ?assertMatch(#{tree := {_, 2, [{<<"[no frames]">>, 2, []}]}},
                 beamprof_flame:graph(#{stacks => [{[], 2}]})).

empty_profile_renders_test_() ->
    [?_assertEqual(<<>>, iolist_to_binary(beamprof_flame:render(#{stacks => []}, folded))),
     ?_assertMatch(<<"<?xml", _/binary>>,
                   iolist_to_binary(beamprof_flame:render(#{stacks => []}, svg))),
     ?_assertMatch(<<"<!DOCTYPE html>", _/binary>>,
                   iolist_to_binary(beamprof_flame:render(#{stacks => []}, html))),
     ?_assertMatch(#{<<"profiles">> := [#{<<"samples">> := [], <<"weights">> := []}]},
                   decode(beamprof_flame:render(#{stacks => []}, speedscope)))].

%% ---- folded ----

folded_lines_test() ->
    ?assertEqual(<<"erts_gc 5\n"
                   "m:a/0;m:b/1 2\n"
                   "m:a/0;m:b/1;c_fun 7\n"
                   "m:a/0;m:z/2 1\n">>,
                 iolist_to_binary(beamprof_flame:render(?P, folded))).

folded_round_trip_test() ->
    Folded = iolist_to_binary(beamprof_flame:render(?P, folded)),
    Back = #{stacks => parse_folded(Folded)},
    ?assertEqual(maps:get(tree, beamprof_flame:graph(?P)), maps:get(tree, beamprof_flame:graph(Back))),
    ?assertEqual(Folded, iolist_to_binary(beamprof_flame:render(Back, folded))).

folded_escapes_separators_test() ->
    P = #{stacks => [{[<<"a;b">>, <<"c\nd 9">>, <<"e\r\n">>], 4}]},
    Folded = iolist_to_binary(beamprof_flame:render(P, folded)),
    ?assertEqual(<<"a:b;c d 9;e   4\n">>, Folded),
    ?assertEqual([{[<<"a:b">>, <<"c d 9">>, <<"e  ">>], 4}], parse_folded(Folded)).

folded_invalid_utf8_test() ->
    P = #{stacks => [{[<<"ok", 255, "x">>], 1}]},
    ?assertEqual(<<"ok", 16#FFFD/utf8, "x 1\n">>,
                 iolist_to_binary(beamprof_flame:render(P, folded))).

%% ---- validation ----

render_badarg_test_() ->
    Bad = [not_a_map, #{}, #{stacks => x}, #{stacks => [x]},
           #{stacks => [{[<<"a">>], 0}]}, #{stacks => [{[<<"a">>], -1}]},
           #{stacks => [{[<<"a">>], 1.0}]}, #{stacks => [{[a], 1}]},
           #{stacks => [{[<<"a">> | <<"b">>], 1}]}, #{stacks => [{<<"a">>, 1}]},
           #{stacks => [], unit => seconds}, #{stacks => [], title => [-1]}],
    [?_assertError({badarg, _}, beamprof_flame:render(P, F))
     || P <- Bad, F <- [svg, folded, pprof]] ++
    [?_assertError({badarg, _}, beamprof_flame:render(?P, png)),
     ?_assertEqual({error, {badarg, "Expected format to be one of svg, html, speedscope, folded, pprof"}},
                   beamprof_flame:write(?P, "/nonexistent/x", png))] ++
    [?_assertMatch({error, {badarg, _}}, beamprof_flame:write(P, "/nonexistent/x", svg))
     || P <- Bad].

write_test() ->
    Dir = tmp_dir(),
    Path = filename:join(Dir, "p.folded"),
    ?assertEqual({ok, Path}, beamprof_flame:write(?P, Path, folded)),
    ?assertEqual({ok, iolist_to_binary(beamprof_flame:render(?P, folded))}, file:read_file(Path)),
    ?assertEqual({error, enoent}, beamprof_flame:write(?P, filename:join([Dir, "no", "p"]), svg)),
    ok = file:del_dir_r(Dir).

%% ---- svg ----

svg_escapes_names_test() ->
    Evil = <<"</title><script>alert(1)</script>&\"'">>,
    Svg = iolist_to_binary(beamprof_flame:render(#{title => Evil, stacks => [{[Evil], 1}]}, svg)),
    ?assertEqual(nomatch, binary:match(Svg, <<"<script">>)),
    ?assertEqual(nomatch, binary:match(Svg, <<"alert(1)</script>">>)),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"&lt;/title&gt;&lt;script&gt;">>)),
    well_formed_xml(Svg).

svg_tooltips_test() ->
    Svg = iolist_to_binary(beamprof_flame:render(?P, svg)),
    %% Self-contained: the namespace is the only URL, nothing is linked.
    [{At, _}] = binary:matches(Svg, <<"http:">>),
    ?assertEqual(<<"xmlns=\"http://www.w3.org/2000/svg\"">>, binary:part(Svg, At - 7, 34)),
    [?assertEqual(nomatch, binary:match(Svg, Pat)) || Pat <- [<<"href">>, <<"<script">>, <<"@import">>, <<"url(">>]],
    ?assertNotEqual(nomatch, binary:match(Svg, <<"<title>m:b/1 (9 samples, 60.0%)</title>">>)),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"<title>all (15 samples, 100.0%)</title>">>)),
    well_formed_xml(Svg).

svg_merges_narrow_frames_test() ->
    %% 5000 distinct callees of weight 1 beside one of weight 100000:
    %% each is far below half a pixel.
    Stacks = [{[<<"main">>, <<"big">>], 100000} |
              [{[<<"main">>, <<"f", (integer_to_binary(I))/binary>>], 1} || I <- lists:seq(1, 5000)]],
    Svg = iolist_to_binary(beamprof_flame:render(#{stacks => Stacks}, svg)),
    ?assert(byte_size(Svg) < 10000),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"[5000 small frames]">>)),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"5000 frames narrower than">>)),
    well_formed_xml(Svg).

svg_truncates_long_names_test() ->
    Long = binary:copy(<<"x">>, 400),
    Svg = iolist_to_binary(beamprof_flame:render(#{stacks => [{[Long], 1}]}, svg)),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"..</text>">>)),
    ?assertNotEqual(nomatch, binary:match(Svg, <<"<title>", Long/binary>>)).

colors_test_() ->
    [?_assertEqual(beamprof_flame:color(<<"m:f/1">>), beamprof_flame:color(<<"m:f/1">>)),
     ?_assertEqual(erlang, beamprof_flame:kind(<<"lists:foldl/3">>)),
     ?_assertEqual(native, beamprof_flame:kind(<<"beam.smp+0x1a2b">>)),
     ?_assertEqual(native, beamprof_flame:kind(<<"erts_garbage_collect">>)),
     ?_assertEqual(marker, beamprof_flame:kind(<<"[12 small frames]">>)),
     %% Erlang frames green-blue (green channel high), native orange-red (red high).
     ?_assertMatch(<<"#", _:2/binary, G:2/binary, _/binary>> when G >= <<"a5">>,
                   beamprof_flame:color(<<"lists:foldl/3">>)),
     ?_assertMatch(<<"#", R:2/binary, _/binary>> when R >= <<"dc">>,
                   beamprof_flame:color(<<"erts_gc">>))].

%% ---- html ----

html_embeds_data_safely_test() ->
    Evil = <<"</script><script>alert(1)</script>\x{2028}">>,
    Html = iolist_to_binary(beamprof_flame:render(#{title => Evil, stacks => [{[Evil, <<"m:f/1">>], 3}]}, html)),
    %% Exactly our two script elements open and close.
    ?assertEqual(2, length(binary:matches(Html, <<"<script">>))),
    ?assertEqual(2, length(binary:matches(Html, <<"</script>">>))),
    [_, AfterOpen] = binary:split(Html, <<"<script type=\"application/json\" id=\"profile-data\">">>),
    [Json, _] = binary:split(AfterOpen, <<"</script>">>),
    #{<<"names">> := Names, <<"tree">> := [0, 3, [[1, 3, [[2, 3, []]]]]], <<"total">> := 3} = decode(Json),
    ?assertEqual([<<"all">>, Evil, <<"m:f/1">>], Names),
    %% Nothing to fetch: no URL, no src or href attribute.
    [?assertEqual(nomatch, binary:match(Html, Pat)) || Pat <- [<<"http:">>, <<"https:">>, <<"src=">>, <<"href">>]].

html_merges_tiny_frames_test() ->
    Stacks = [{[<<"main">>, <<"big">>], 10000000} |
              [{[<<"main">>, <<"f", (integer_to_binary(I))/binary>>], 1} || I <- lists:seq(1, 3000)]],
    Html = iolist_to_binary(beamprof_flame:render(#{stacks => Stacks}, html)),
    ?assert(byte_size(Html) < 20000),
    ?assertNotEqual(nomatch, binary:match(Html, <<"[3000 small frames]">>)).

%% ---- notes: what a reader must know, in the file itself ----

-define(NOTE, <<"Erlang callers not shown (no frame pointers); shown: the leaf. "
                "Start the VM with +JPperf fp <now>">>).

%% ?P with notes (maps:put: updating the literal is a warning on OTP 27+).
with_notes(Notes) ->
    maps:put(notes, Notes, ?P).

notes_folded_test() ->
    P = with_notes([?NOTE, "second\nline"]),
    Folded = iolist_to_binary(beamprof_flame:render(P, folded)),
    [First, Second | Rest] = binary:split(Folded, <<"\n">>, [global, trim_all]),
    ?assertEqual(<<"# ", ?NOTE/binary, " 0">>, First),
    ?assertEqual(<<"# second line 0">>, Second),
    %% the stacks follow, unchanged; our reader skips the notes
    ?assertEqual(iolist_to_binary(beamprof_flame:render(?P, folded)),
                 iolist_to_binary([[L, $\n] || L <- Rest])),
    ?assertEqual(parse_folded(iolist_to_binary(beamprof_flame:render(?P, folded))),
                 parse_folded(Folded)),
    %% speedscope takes text as folded stacks only when every line ends
    %% with a space and a count (src/import/index.ts), and skips weight 0
    Lines = binary:split(Folded, <<"\n">>, [global]),
    ?assertEqual(length(Lines), length(re:split(Folded, <<" \\d+\r?\n">>))),
    %% flamegraph.pl's and inferno's line rule: the last field is the
    %% count, here 0 (a stack of no width: not drawn)
    [?assertMatch({match, [<<"0">>]},
                  re:run(L, <<"^.*\\s+?(\\d+(?:\\.\\d*)?)$">>,
                         [{capture, all_but_first, binary}])) || L <- [First, Second]].

notes_svg_test() ->
    P = with_notes([?NOTE]),
    Svg = iolist_to_binary(beamprof_flame:render(P, svg)),
    Esc = beamprof_flame:escape_xml(?NOTE),
    ?assertMatch({_, _}, binary:match(Svg, <<"<title>t - ", Esc/binary, "</title>">>)),
    ?assertMatch({_, _}, binary:match(Svg, <<"<text class=\"n\" x=\"10\" y=\"76\">",
                                             Esc/binary, "</text>">>)),
    %% the frames move down by the note's line: the root's rectangle
    Plain = iolist_to_binary(beamprof_flame:render(?P, svg)),
    ?assertEqual(root_y(Plain) + 16, root_y(Svg)),
    %% a note longer than a line is wrapped at spaces, no text lost
    Long = lists:flatten(lists:duplicate(40, "word1 word2 ")),
    Wrapped = iolist_to_binary(beamprof_flame:render(with_notes([Long]), svg)),
    {match, Texts} = re:run(Wrapped, <<"<text class=\"n\"[^>]*>([^<]*)</text>">>,
                            [global, {capture, all_but_first, binary}]),
    ?assert(length(Texts) >= 3),
    ?assert(lists:all(fun([T]) -> string:length(T) =< 165 end, Texts)),
    ?assertEqual(list_to_binary(string:trim(Long)),
                 iolist_to_binary(lists:join(" ", [T || [T] <- Texts]))).

root_y(Svg) ->
    {match, Ys} = re:run(Svg, <<"<title>all [^<]*</title><rect x=\"[^\"]*\" y=\"(\\d+)\"">>,
                         [{capture, all_but_first, binary}]),
    binary_to_integer(hd(Ys)).

notes_html_test() ->
    P = with_notes([<<"<b>not markup</b> & more">>]),
    Html = iolist_to_binary(beamprof_flame:render(P, html)),
    Esc = <<"&lt;b&gt;not markup&lt;/b&gt; &amp; more">>,
    ?assertMatch({_, _}, binary:match(Html, <<"<title>t - ", Esc/binary, "</title>">>)),
    ?assertMatch({_, _}, binary:match(Html, <<"<p class=\"note\">", Esc/binary, "</p>">>)),
    ?assertEqual(nomatch, binary:match(Html, <<"<b>">>)),
    ?assertEqual(nomatch, binary:match(iolist_to_binary(beamprof_flame:render(?P, html)),
                                       <<"class=\"note\"">>)).

notes_speedscope_test() ->
    Doc = decode(beamprof_flame:render(with_notes([?NOTE]), speedscope)),
    Name = <<"t - ", ?NOTE/binary>>,
    ?assertMatch(#{<<"name">> := Name, <<"profiles">> := [#{<<"name">> := Name}]}, Doc).

notes_badarg_test_() ->
    [?_assertError({badarg, "Expected notes to be a list of unicode:chardata()"},
                   beamprof_flame:render(with_notes(Bad), folded))
     || Bad <- [<<"not a list">>, [foo], [<<255>>]]].

%% ---- speedscope ----

speedscope_test() ->
    Doc = decode(beamprof_flame:render(?P, speedscope)),
    #{<<"$schema">> := <<"https://www.speedscope.app/file-format-schema.json">>,
      <<"shared">> := #{<<"frames">> := Frames},
      <<"profiles">> := [#{<<"type">> := <<"sampled">>, <<"unit">> := <<"none">>,
                           <<"startValue">> := 0, <<"endValue">> := 15,
                           <<"samples">> := Samples, <<"weights">> := Weights}]} = Doc,
    ?assertEqual(15, lists:sum(Weights)),
    ?assertEqual(length(Samples), length(Weights)),
    Names = [N || #{<<"name">> := N} <- Frames],
    ?assertEqual(length(Names), length(lists:usort(Names))),
    Stacks = [{[lists:nth(I + 1, Names) || I <- S], W} || {S, W} <- lists:zip(Samples, Weights)],
    ?assertEqual(maps:get(tree, beamprof_flame:graph(?P)),
                 maps:get(tree, beamprof_flame:graph(#{stacks => Stacks}))).

speedscope_units_test_() ->
    [?_assertMatch(#{<<"profiles">> := [#{<<"unit">> := U}]},
                   decode(beamprof_flame:render(maps:put(unit, Unit, ?P), speedscope)))
     || {Unit, U} <- [{samples, <<"none">>}, {microseconds, <<"microseconds">>},
                      {bytes, <<"bytes">>}]].

%% ---- JSON ----

json_encode_test_() ->
    E = fun(T) -> iolist_to_binary(beamprof_json:encode(T)) end,
    [?_assertEqual(<<"{\"a\":[1,2.5,true,false,null],\"b\":\"x\"}">>,
                   E(#{b => <<"x">>, <<"a">> => [1, 2.5, true, false, null]})),
     ?_assertEqual(<<"\"q\\\"b\\\\n\\nt\\tc\\u0001\\u001f\"">>, E(<<"q\"b\\n\nt\tc", 1, 31>>)),
     ?_assertEqual(<<"\"\\u003c/script\\u003e\\u0026\"">>, E(<<"</script>&">>)),
     ?_assertEqual(<<"\"\\u2028\\u2029é\""/utf8>>, E(<<16#2028/utf8, 16#2029/utf8, "é"/utf8>>)),
     ?_assertEqual(<<"[]">>, E([])),
     ?_assertEqual(<<"{}">>, E(#{})),
     ?_assertError({badarg, _}, E(<<255>>)),
     ?_assertError({badarg, _}, E(self())),
     ?_assertError({badarg, _}, E(#{1 => 2}))].

json_round_trip_test() ->
    Strings = [<<"plain">>, <<"\"\\/\b\f\n\r\t">>, list_to_binary(lists:seq(0, 127)),
               <<"日本語 ☃ 𝄞 \x{2028}"/utf8>>, <<"</script><!--">>],
    Term = #{<<"s">> => Strings, <<"n">> => [0, -1, 123456789012345678901234567890, 0.1, -2.5e-10]},
    ?assertEqual(Term, decode(beamprof_json:encode(Term))).

%% ---- beamprof_file ----

file_mode_and_replace_test() ->
    Dir = tmp_dir(),
    Path = filename:join(Dir, "out"),
    ok = file:write_file(Path, <<"old">>),
    ok = file:change_mode(Path, 8#644),
    ?assertEqual(ok, beamprof_file:write(Path, [<<"new">>, "er"])),
    ?assertEqual({ok, <<"newer">>}, file:read_file(Path)),
    ?assertEqual(8#600, mode(Path)),
    ?assertEqual({ok, ["out"]}, file:list_dir(Dir)),
    ok = file:del_dir_r(Dir).

file_symlink_not_followed_test() ->
    Dir = tmp_dir(),
    Target = filename:join(Dir, "target"),
    Link = filename:join(Dir, "link"),
    ok = file:write_file(Target, <<"precious">>),
    ok = file:make_symlink(Target, Link),
    ?assertEqual(ok, beamprof_file:write(Link, <<"data">>)),
    ?assertEqual({ok, <<"precious">>}, file:read_file(Target)),
    ?assertMatch({ok, #{type := regular}}, link_info(Link)),
    ?assertEqual({ok, <<"data">>}, file:read_file(Link)),
    %% A dangling link: nothing is created where it points.
    Dangling = filename:join(Dir, "dangling"),
    ok = file:make_symlink(filename:join(Dir, "nowhere"), Dangling),
    ?assertEqual(ok, beamprof_file:write(Dangling, <<"d">>)),
    ?assertEqual({error, enoent}, file:read_file_info(filename:join(Dir, "nowhere"))),
    ok = file:del_dir_r(Dir).

file_planted_temporary_names_test() ->
    Dir = tmp_dir(),
    Victim = filename:join(Dir, "victim"),
    VictimDir = filename:join(Dir, "victimdir"),
    ok = file:write_file(Victim, <<"precious">>),
    ok = file:make_dir(VictimDir),
    %% The attacker knows the first two names: one a link to a file, one a
    %% link to a directory; both are skipped, never written through.
    ok = file:make_symlink(Victim, filename:join(Dir, ".t1")),
    ok = file:make_symlink(VictimDir, filename:join(Dir, ".t2")),
    Path = filename:join(Dir, "out"),
    ?assertEqual(ok, beamprof_file:write(Path, <<"data">>, [".t1", ".t2", ".t3"])),
    ?assertEqual({ok, <<"data">>}, file:read_file(Path)),
    ?assertEqual({ok, <<"precious">>}, file:read_file(Victim)),
    ?assertEqual({ok, []}, file:list_dir(VictimDir)),
    ?assertMatch({ok, #{type := symlink}}, link_info(filename:join(Dir, ".t1"))),
    ?assertEqual({error, eexist}, beamprof_file:write(Path, <<"x">>, [".t1", ".t2"])),
    ?assertEqual({ok, <<"data">>}, file:read_file(Path)),
    ?assertEqual(lists:sort([".t1", ".t2", "out", "victim", "victimdir"]),
                 lists:sort(element(2, file:list_dir(Dir)))),
    ok = file:del_dir_r(Dir).

file_errors_test() ->
    Dir = tmp_dir(),
    File = filename:join(Dir, "f"),
    ok = file:write_file(File, <<>>),
    ?assertEqual({error, enoent}, beamprof_file:write(filename:join([Dir, "missing", "x"]), <<>>)),
    ?assertEqual({error, enotdir}, beamprof_file:write(filename:join(File, "x"), <<>>)),
    ?assertEqual({error, eisdir}, beamprof_file:write(Dir, <<>>)),
    ?assertMatch({error, {badarg, _}}, beamprof_file:write(filename:join(Dir, "y"), [x])),
    ?assertMatch({error, {badarg, _}}, beamprof_file:write(self(), <<>>)),
    ReadOnly = filename:join(Dir, "ro"),
    ok = file:make_dir(ReadOnly),
    ok = file:change_mode(ReadOnly, 8#500),
    case is_root() of
        true -> ok;   % root writes anyway
        false -> ?assertEqual({error, eacces}, beamprof_file:write(filename:join(ReadOnly, "x"), <<>>))
    end,
    ok = file:change_mode(ReadOnly, 8#700),
    ?assertEqual({ok, ["f", "ro"]}, sorted(Dir)),
    ok = file:del_dir_r(Dir).

%% check_writable/1 answers what write/2 would, without writing anything.
file_check_writable_test() ->
    Dir = tmp_dir(),
    File = filename:join(Dir, "f"),
    ok = file:write_file(File, <<>>),
    ?assertEqual(ok, beamprof_file:check_writable(filename:join(Dir, "x.svg"))),
    ?assertEqual(ok, beamprof_file:check_writable(list_to_binary(filename:join(Dir, "x.svg")))),
    ?assertEqual(ok, beamprof_file:check_writable([Dir, <<"/x">>, ".svg"])),
    ?assertEqual({error, enoent}, beamprof_file:check_writable(filename:join([Dir, "missing", "x"]))),
    ?assertEqual({error, enotdir}, beamprof_file:check_writable(filename:join(File, "x"))),
    ?assertEqual({error, eisdir}, beamprof_file:check_writable(Dir)),
    ?assertMatch({error, {badarg, _}}, beamprof_file:check_writable(self())),
    ?assertMatch({error, {badarg, _}}, beamprof_file:check_writable(<<>>)),
    ?assertEqual({ok, ["f"]}, sorted(Dir)),
    ok = file:del_dir_r(Dir).

%% Any chardata names a file: a binary stays as it is, the rest becomes a flat string.
file_chardata_path_test() ->
    ?assertEqual({ok, <<"a/b.svg">>}, beamprof_file:path(<<"a/b.svg">>)),
    ?assertEqual({ok, "a/b.svg"}, beamprof_file:path(["a/", [<<"b">>], ".svg"])),
    ?assertEqual({ok, [16#444, $.]}, beamprof_file:path([<<16#444/utf8>>, $.])),
    [?assertEqual(error, beamprof_file:path(Bad)) || Bad <- [<<>>, [], [x], 42, [<<255>>]]],
    Dir = tmp_dir(),
    ?assertEqual(ok, beamprof_file:write([Dir, <<"/deep">>], <<"x">>)),
    ?assertEqual({ok, <<"x">>}, file:read_file(filename:join(Dir, "deep"))),
    ok = file:del_dir_r(Dir).

%% ---- helpers ----

is_root() -> string:trim(os:cmd("id -u")) =:= "0".

sorted(Dir) -> {ok, L} = file:list_dir(Dir), {ok, lists:sort(L)}.

tmp_dir() ->
    Dir = filename:join("/tmp", "beamprof_flame_tests_" ++ integer_to_list(erlang:unique_integer([positive]))
                        ++ "_" ++ os:getpid()),
    ok = file:make_dir(Dir),
    Dir.

mode(Path) ->
    {ok, Info} = file:read_link_info(Path),
    element(8, Info) band 8#7777.

link_info(Path) ->
    case file:read_link_info(Path) of
        {ok, Info} -> {ok, #{type => element(3, Info)}};
        Error -> Error
    end.

%% Our folded reader: `#' lines are comments (notes), skipped.
parse_folded(Bin) ->
    [begin
         [Stack, W] = string:split(Line, <<" ">>, trailing),
         {binary:split(Stack, <<";">>, [global]), binary_to_integer(W)}
     end || <<C, _/binary>> = Line <- binary:split(Bin, <<"\n">>, [global, trim_all]),
            C =/= $#].

%% Decodes JSON with python3 (a parser that is not ours) when present,
%% else with the small test-side parser below; both must agree when both run.
decode(IoData) ->
    Bin = iolist_to_binary(IoData),
    Ours = json_parse(Bin),
    case os:find_executable("python3") of
        false -> Ours;
        _ -> ?assertEqual(ok, python_json_check(Bin)), Ours
    end.

python_json_check(Bin) ->
    File = filename:join("/tmp", "bp_json_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(File, Bin),
    Out = os:cmd("python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding=\"utf-8\")); print(\"ok\")' "
                 ++ File ++ " 2>&1"),
    ok = file:delete(File),
    case string:trim(Out) of "ok" -> ok; Other -> {python, Other} end.

well_formed_xml(Bin) ->
    {ok, _, _} = xmerl_sax_parser:stream(Bin, [{event_fun, fun(_, _, S) -> S end}]),
    ok.

%% A strict little JSON parser (objects, arrays, strings with escapes and
%% surrogate pairs, numbers, literals); fails on trailing garbage.
json_parse(Bin) ->
    {V, Rest} = value(ws(Bin)),
    <<>> = ws(Rest),
    V.

ws(<<C, R/binary>>) when C =:= $\s; C =:= $\n; C =:= $\t; C =:= $\r -> ws(R);
ws(B) -> B.

value(<<${, R/binary>>) -> object(ws(R), #{});
value(<<$[, R/binary>>) -> array(ws(R), []);
value(<<$", R/binary>>) -> str(R, <<>>);
value(<<"true", R/binary>>) -> {true, R};
value(<<"false", R/binary>>) -> {false, R};
value(<<"null", R/binary>>) -> {null, R};
value(B) -> number(B).

object(<<$}, R/binary>>, M) when map_size(M) =:= 0 -> {M, R};
object(<<$", R/binary>>, M) ->
    {K, R1} = str(R, <<>>),
    <<$:, R2/binary>> = ws(R1),
    {V, R3} = value(ws(R2)),
    case ws(R3) of
        <<$,, R4/binary>> -> object(ws(R4), M#{K => V});
        <<$}, R4/binary>> -> {M#{K => V}, R4}
    end.

array(<<$], R/binary>>, []) -> {[], R};
array(B, Acc) ->
    {V, R} = value(B),
    case ws(R) of
        <<$,, R1/binary>> -> array(ws(R1), [V | Acc]);
        <<$], R1/binary>> -> {lists:reverse([V | Acc]), R1}
    end.

str(<<$", R/binary>>, Acc) -> {Acc, R};
str(<<$\\, $u, H:4/binary, $\\, $u, L:4/binary, R/binary>>, Acc)
  when H >= <<"D800">>, H =< <<"DBFF">>; H >= <<"d800">>, H =< <<"dbff">> ->
    Hi = binary_to_integer(H, 16), Lo = binary_to_integer(L, 16),
    C = 16#10000 + ((Hi - 16#D800) bsl 10) + (Lo - 16#DC00),
    str(R, <<Acc/binary, C/utf8>>);
str(<<$\\, $u, H:4/binary, R/binary>>, Acc) ->
    str(R, <<Acc/binary, (binary_to_integer(H, 16))/utf8>>);
str(<<$\\, C, R/binary>>, Acc) ->
    E = case C of $" -> $"; $\\ -> $\\; $/ -> $/; $b -> $\b; $f -> $\f;
                  $n -> $\n; $r -> $\r; $t -> $\t end,
    str(R, <<Acc/binary, E>>);
str(<<C, _/binary>>, _) when C < 16#20 -> error({control_character_in_string, C});
str(<<C/utf8, R/binary>>, Acc) -> str(R, <<Acc/binary, C/utf8>>).

number(B) ->
    {match, [Num]} = re:run(B, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?", [{capture, first, binary}]),
    Rest = binary:part(B, byte_size(Num), byte_size(B) - byte_size(Num)),
    V = case re:run(Num, "[.eE]") of
            nomatch -> binary_to_integer(Num);
            _ -> binary_to_float(normalize_float(Num))
        end,
    {V, Rest}.

%% binary_to_float needs a fraction: "1e5" -> "1.0e5".
normalize_float(Num) ->
    case binary:match(Num, <<".">>) of
        nomatch -> re:replace(Num, "([eE])", ".0\\1", [{return, binary}]);
        _ -> Num
    end.

format_of_test() ->
    [?assertEqual(Expect, beamprof_flame:format_of(Path), Path)
     || {Path, Expect} <- [{"a.svg", {ok, svg}}, {<<"a.SVG">>, {ok, svg}},
                           {"d/a.html", {ok, html}}, {"a.htm", {ok, html}},
                           {["a", <<".json">>], {ok, speedscope}},
                           {"a.folded", {ok, folded}}, {"a.txt", {ok, folded}},
                           {"a.pb.gz", {ok, pprof}}, {<<"d.x/A.PB.GZ">>, {ok, pprof}},
                           {"a.gz", error}, {"a.pb", error}, {"a.pb.gz.txt", {ok, folded}},
                           {"a.png", error}, {"a", error}, {"a.svg.gz", error},
                           {<<"caf", 233/utf8, ".svg">>, {ok, svg}}]].
