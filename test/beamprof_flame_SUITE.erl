%% Flame graph files as a browser shows them: the SVG and HTML outputs are
%% opened in headless Chromium and what it RENDERED is checked (the DOM
%% after the page's script ran; the pixels of a screenshot). Also the file
%% mode under a permissive umask, in a VM started with umask 000.
-module(beamprof_flame_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([html_shows_frames/1, html_search_and_zoom/1, html_names_cannot_inject/1,
         svg_screenshot_shows_frames/1, svg_screenshot_of_nothing_is_blank/1,
         mode_0600_under_umask_000/1]).

-define(EVIL, <<"evil</script><img src=x onerror=\"document.body.dataset.pwned=1\">&amp;">>).

suite() -> [{timetrap, {seconds, 120}}].

all() ->
    [html_shows_frames, html_search_and_zoom, html_names_cannot_inject,
     svg_screenshot_shows_frames, svg_screenshot_of_nothing_is_blank,
     mode_0600_under_umask_000].

init_per_suite(Config) -> Config.
end_per_suite(_Config) -> ok.

init_per_testcase(mode_0600_under_umask_000, Config) -> Config;
init_per_testcase(_Case, Config) ->
    case chromium() of
        false -> {skip, "chromium is not installed (Debian package chromium; make setup)"};
        Exe -> [{chromium, Exe} | Config]
    end.

end_per_testcase(_Case, _Config) -> ok.

profile() ->
    #{title => <<"suite profile">>,
      stacks => [{[<<"proc_lib:init_p/5">>, <<"work:loop/1">>, <<"work:hot/2">>], 60},
                 {[<<"proc_lib:init_p/5">>, <<"work:loop/1">>, <<"erts_garbage_collect">>], 20},
                 {[<<"proc_lib:init_p/5">>, <<"work:cold/0">>], 10},
                 {[<<"beam.smp+0x1a2b">>, <<"erts_schedule">>], 10}]}.

%% ---- HTML ----

html_shows_frames(Config) ->
    Dom = dump_dom(Config, write(Config, "frames.html", profile(), html), ""),
    ?assertMatch({match, _}, re:run(Dom, "<body data-ready=\"true\"")),
    Frames = frames(Dom),
    ct:log("~B frame elements: ~p", [length(Frames), Frames]),
    Names = [N || #{text := N} <- Frames],
    [?assert(lists:member(N, Names), N)
     || N <- [<<"all">>, <<"proc_lib:init_p/5">>, <<"work:loop/1">>, <<"work:hot/2">>,
              <<"erts_garbage_collect">>, <<"work:cold/0">>, <<"beam.smp+0x1a2b">>,
              <<"erts_schedule">>]],
    ?assertEqual(8, length(Frames)),
    %% Widths follow the weights: hot (60) is three times GC (20).
    #{width := Hot} = frame(<<"work:hot/2">>, Frames),
    #{width := Gc} = frame(<<"erts_garbage_collect">>, Frames),
    ?assert(abs(Hot / Gc - 3.0) < 0.05),
    ?assertMatch(#{title := <<"work:hot/2 (60 samples, 60.00%)">>}, frame(<<"work:hot/2">>, Frames)),
    ?assertMatch({match, _}, re:run(Dom, "Total 100 samples in 4 stacks")).

html_search_and_zoom(Config) ->
    Path = write(Config, "search.html", profile(), html),
    %% Depth-first ids: 0 all, 1 beam.smp+0x1a2b, 2 erts_schedule, 3 proc_lib:init_p/5,
    %% 4 work:cold/0, 5 work:loop/1, ...
    Dom = dump_dom(Config, Path, "#search=^work:(hot|cold)&zoom=3"),
    Frames = frames(Dom),
    ct:log("~p", [Frames]),
    ?assertMatch({match, _}, re:run(Dom, "Matched: 70.00% \\(70 samples, 2 frames\\)")),
    Matched = lists:sort([N || #{class := C, text := N} <- Frames, lists:member(<<"match">>, C)]),
    ?assertEqual([<<"work:cold/0">>, <<"work:hot/2">>], Matched),
    %% Zoomed into proc_lib:init_p/5: it fills the width, the other root
    %% (beam.smp) is gone, the root is drawn as a dimmed ancestor.
    #{width := W, class := ZC} = frame(<<"proc_lib:init_p/5">>, Frames),
    #{width := AllW, class := AC} = frame(<<"all">>, Frames),
    ?assert(lists:member(<<"zoomed">>, ZC)),
    ?assert(lists:member(<<"ancestor">>, AC)),
    ?assertEqual(AllW, W),
    ?assertEqual([], [F || #{title := <<"beam.smp", _/binary>>} = F <- Frames]),
    #{width := Loop} = frame(<<"work:loop/1">>, Frames),
    ?assert(abs(Loop / W - 80 / 90) < 0.01),
    %% Without the fragment: nothing matched, everything drawn.
    Plain = frames(dump_dom(Config, Path, "")),
    ?assertEqual([], [N || #{class := C, text := N} <- Plain, lists:member(<<"match">>, C)]),
    ?assertEqual(8, length(Plain)).

html_names_cannot_inject(Config) ->
    P = #{title => ?EVIL, stacks => [{[<<"m:f/0">>, ?EVIL], 5}, {[<<"m:g/0">>], 5}]},
    Dom = dump_dom(Config, write(Config, "evil.html", P, html), ""),
    %% The script ran and no injected handler did.
    ?assertMatch({match, [<<"<body data-ready=\"true\">">>]},
                 re:run(Dom, "<body[^>]*>", [{capture, first, binary}])),
    %% No element came from a name: outside attribute values (which hold
    %% no raw quote once serialized) there is no <img or second <script.
    Bare = re:replace(Dom, "\"[^\"]*\"", "\"\"", [global, {return, binary}]),
    ?assertEqual(nomatch, re:run(Bare, "<img")),
    ?assertEqual(2, length(binary:matches(Bare, <<"<script">>))),
    Frames = frames(Dom),
    ?assert(lists:member(?EVIL, [N || #{text := N} <- Frames])),
    ?assertMatch({match, _}, re:run(Dom, "<h1>evil&lt;/script&gt;&lt;img")),
    _ = frame(?EVIL, Frames).

%% ---- SVG ----

svg_screenshot_shows_frames(Config) ->
    Svg = iolist_to_binary(beamprof_flame:render(profile(), svg)),
    Path = write(Config, "shot.svg", profile(), svg),
    {W, H, Pixels} = screenshot(Config, Path),
    ct:log("screenshot ~Bx~B", [W, H]),
    %% Each frame's rectangle is painted in its own colour at its centre.
    Rects = rects(Svg),
    ?assertEqual(8, length(Rects)),
    [begin
         %% The top rows of a frame hold no text.
         {R, G, B} = pixel(Pixels, W, round(X + Wd / 2), round(Y + 1)),
         ct:log("~s at ~p: want ~p got ~p", [Title, {X, Y}, Fill, {R, G, B}]),
         ?assert(close({R, G, B}, Fill), Title)
     end || {Title, X, Y, Wd, Fill} <- Rects],
    ?assert(coloured(Pixels) > 7 * 1000).

%% The check above can fail: an empty profile draws no frame.
svg_screenshot_of_nothing_is_blank(Config) ->
    Path = write(Config, "empty.svg", #{stacks => []}, svg),
    {_W, _H, Pixels} = screenshot(Config, Path),
    ?assertEqual(0, coloured(Pixels)).

%% ---- file mode ----

mode_0600_under_umask_000(Config) ->
    Dir = ?config(priv_dir, Config),
    Erl = os:find_executable("erl"),
    {ok, Peer, _} = beamprof_ct:start_peer(
                      #{exec => {"/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", Erl]}}),
    try
        Control = filename:join(Dir, "control"),
        ok = peer:call(Peer, file, write_file, [Control, <<"x">>]),
        ?assertEqual(8#666, mode(Control)),     % the umask really is 000
        Path = filename:join(Dir, "profile.svg"),
        ?assertEqual({ok, Path}, peer:call(Peer, beamprof_flame, write, [profile(), Path, svg])),
        ?assertEqual(8#600, mode(Path))
    after
        peer:stop(Peer)
    end.

%% ---- helpers ----

chromium() ->
    lists:foldl(fun(_, Found) when Found =/= false -> Found;
                   (Name, false) -> os:find_executable(Name)
                end, false, ["chromium", "chromium-browser", "google-chrome"]).

write(Config, Name, Profile, Format) ->
    Path = filename:join(?config(priv_dir, Config), Name),
    {ok, Path} = beamprof_flame:write(Profile, Path, Format),
    Path.

chrome(Config, Args) ->
    Exe = ?config(chromium, Config),
    UserDir = filename:join(?config(priv_dir, Config),
                            "chrome-" ++ integer_to_list(erlang:unique_integer([positive]))),
    Cmd = lists:join($\s, ["timeout", "60", quote(Exe), "--headless", "--no-sandbox",
                           "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                           "--user-data-dir=" ++ quote(UserDir) | Args]) ++ " 2>/dev/null",
    {Micros, Out} = timer:tc(fun() -> os:cmd(Cmd) end),
    ct:log("~s~n(~B ms)", [Cmd, Micros div 1000]),
    Out.

dump_dom(Config, Path, Fragment) ->
    Out = chrome(Config, ["--window-size=1280,900", "--dump-dom",
                          quote("file://" ++ Path ++ Fragment)]),
    Dom = unicode:characters_to_binary(Out),
    ?assertMatch({match, _}, re:run(Dom, "</html>")),
    Dom.

screenshot(Config, Path) ->
    Png = filename:join(?config(priv_dir, Config),
                        "shot-" ++ integer_to_list(erlang:unique_integer([positive])) ++ ".png"),
    _ = chrome(Config, ["--window-size=1200,400", "--screenshot=" ++ quote(Png),
                        quote("file://" ++ Path)]),
    {ok, Bin} = file:read_file(Png),
    beamprof_png:decode(Bin).

quote(S) -> "'" ++ S ++ "'".

%% The frame elements of the dumped DOM: class list, text, tooltip, width.
frames(Dom) ->
    {match, Ms} = re:run(Dom, "<div class=\"(frame[^\"]*)\" data-id=\"[0-9]+\" title=\"([^\"]*)\" "
                              "style=\"[^\"]*width: ([0-9.]+)px[^\"]*\">([^<]*)</div>",
                         [global, {capture, all_but_first, binary}]),
    [#{class => binary:split(C, <<" ">>, [global]), title => unescape(T),
       width => binary_to_number(W), text => unescape(X)} || [C, T, W, X] <- Ms].

frame(Name, Frames) ->
    Size = byte_size(Name),
    [F] = [F || #{title := <<N:Size/binary, " (", _/binary>>} = F <- Frames, N =:= Name],
    F.

binary_to_number(B) ->
    try binary_to_float(B) catch error:badarg -> float(binary_to_integer(B)) end.

unescape(B) ->
    lists:foldl(fun({F, T}, Acc) -> binary:replace(Acc, F, T, [global]) end, B,
                [{<<"&lt;">>, <<"<">>}, {<<"&gt;">>, <<">">>}, {<<"&quot;">>, <<"\"">>},
                 {<<"&#39;">>, <<"'">>}, {<<"&amp;">>, <<"&">>}]).

%% {Title, X, Y, Width, Fill} of each frame rectangle of our SVG.
rects(Svg) ->
    {match, Ms} = re:run(Svg, "<title>([^<]*)</title><rect x=\"([0-9.]+)\" y=\"([0-9]+)\" "
                              "width=\"([0-9.]+)\" height=\"[0-9]+\" rx=\"2\" fill=\"#([0-9a-f]{6})\"",
                         [global, {capture, all_but_first, binary}]),
    [{T, binary_to_number(X), binary_to_number(Y), binary_to_number(W),
      {binary_to_integer(R, 16), binary_to_integer(G, 16), binary_to_integer(B, 16)}}
     || [T, X, Y, W, <<R:2/binary, G:2/binary, B:2/binary>>] <- Ms].

close({R1, G1, B1}, {R2, G2, B2}) ->
    abs(R1 - R2) =< 6 andalso abs(G1 - G2) =< 6 andalso abs(B1 - B2) =< 6.

%% Pixels far from the background and from grey/black/white text: frame colour.
coloured(Pixels) ->
    length([P || <<R, G, B>> = P <- Pixels, max(R, max(G, B)) - min(R, min(G, B)) > 40]).

pixel(Pixels, W, X, Y) ->
    <<R, G, B>> = lists:nth(Y * W + X + 1, Pixels),
    {R, G, B}.

mode(Path) ->
    {ok, Info} = file:read_link_info(Path),
    element(8, Info) band 8#777.
