%% The recording report (beamprof:recording_report/2,
%% beamprof_recording_report): the charts' SVG elements in the page for a
%% realistic recording (beamprof_recording_fixture), what the page says when
%% parts are missing, names escaped, its errors, and the page opened in
%% headless Chromium, its screenshot checked for each chart's colours (and
%% a page of an empty recording checked not to have them).
-module(beamprof_recording_report_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_testcase/2, end_per_testcase/2]).
-export([html_has_the_charts/1, missing_parts_said/1, empty_and_headless/1, names_escaped/1,
         errors/1, screenshot_shows_the_charts/1]).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [html_has_the_charts, missing_parts_said, empty_and_headless, names_escaped, errors,
     screenshot_shows_the_charts].

init_per_testcase(screenshot_shows_the_charts, Config) ->
    case chromium() of
        false -> {skip, "chromium is not installed (Debian package chromium; make setup)"};
        Exe -> [{chromium, Exe} | Config]
    end;
init_per_testcase(_Case, Config) -> Config.

end_per_testcase(_Case, _Config) -> ok.

%%--------------------------------------------------------------------

html_has_the_charts(Config) ->
    Html = report(Config, "full", beamprof_recording_fixture:timeline(#{})),
    [?assertMatch({match, _}, re:run(Html, "<svg class=\"chart\" id=\"" ++ Id ++ "\""), Id)
     || Id <- ["utilization", "memory", "run_queues", "gate", "mailboxes"]],
    %% 4 schedulers, RSS + total + limit, 3 run queues, 3 mailboxes.
    ?assertEqual(13, count(Html, <<"<polyline class=\"series\"">>)),
    ?assertEqual(1, count(Html, <<"<rect class=\"band\"">>)),        % the gate closed once
    ?assertEqual(2, count(Html, <<"<line class=\"marker\"">>)),      % two gate records
    ?assertMatch({match, _}, re:run(Html, "my_app_ingest")),
    ?assertMatch({match, _}, re:run(Html, "app@host-1")),
    ?assertMatch({match, _}, re:run(Html, "scheduler_wall_time")),
    ?assertMatch({match, _}, re:run(Html, "limit 2.0 GiB")),
    ?assertEqual(0, count(Html, <<"class=\"missing\"">>)),
    %% Nothing to fetch, nothing to run.
    ?assertEqual(nomatch, re:run(Html, "<script|src=|href=|@import|url\\(")),
    ?assertMatch({match, _}, re:run(Html, "Content-Security-Policy\" content=\"default-src 'none'")).

missing_parts_said(Config) ->
    Html = report(Config, "partial", beamprof_recording_fixture:timeline(#{interval => false,
                                                                          scan => false})),
    ?assertMatch({match, _}, re:run(Html, "No interval records: utilization is the OS CPU")),
    ?assertMatch({match, _}, re:run(Html, "No interval records: no run queue chart")),
    ?assertMatch({match, _}, re:run(Html, "No scan records: no mailbox chart")),
    ?assertMatch({match, _}, re:run(Html, "id=\"utilization\"")),   % from the ticks
    ?assertMatch({match, _}, re:run(Html, "OS CPU \\(tick records")),
    ?assertEqual(nomatch, re:run(Html, "id=\"run_queues\"|id=\"mailboxes\"")),
    ?assertEqual(4 + 2, count(Html, <<"<polyline class=\"series\"">>)).

empty_and_headless(Config) ->
    Empty = report(Config, "empty", []),
    ?assertMatch({match, _}, re:run(Empty, "The recording holds no record")),
    ?assertEqual(0, count(Empty, <<"<svg">>)),
    %% A small ring that wrapped past the header record, with a torn frame.
    Path = path(Config, "wrapped.bprec"),
    _ = beamprof_recording_fixture:write(Path, 65536, beamprof_recording_fixture:timeline(#{})),
    {ok, Bin} = file:read_file(Path),
    <<Before:(4096 + 41)/binary, B, After/binary>> = Bin,
    ok = file:write_file(Path, <<Before/binary, (B bxor 1), After/binary>>),
    Out = path(Config, "wrapped.html"),
    {ok, Out} = beamprof:recording_report(Path, Out),
    {ok, Html} = file:read_file(Out),
    ?assertMatch({match, _}, re:run(Html, "No header record")),
    ?assertMatch({match, _}, re:run(Html, "1 frames skipped: 1 torn or overwritten")),
    ?assertMatch({match, _}, re:run(Html, "id=\"utilization\"")).

names_escaped(Config) ->
    Evil = <<"<script>alert(1)</script>&\"'">>,
    Scan = #{kind => scan, top => #{message_queue_len => [#{pid => <<"<0.1.0>">>, name => Evil,
                                                            value => 10}],
                                    memory => [], reductions => []}},
    T = 1764896400000000,
    Html = report(Config, "evil", [{T, Scan}, {T + 1000000, Scan},
                                   {T + 2000000, #{kind => note, message => Evil}}]),
    ?assertEqual(nomatch, re:run(Html, "<script")),
    ?assertMatch({match, _}, re:run(Html, "&lt;script&gt;alert\\(1\\)&lt;/script&gt;&amp;&quot;&#39;")).

errors(Config) ->
    Dir = ?config(priv_dir, Config),
    Bogus = path(Config, "bogus.bprec"),
    ok = file:write_file(Bogus, <<"not a recording">>),
    Out = path(Config, "out.html"),
    ?assertEqual({error, not_a_recording}, beamprof:recording_report(Bogus, Out)),
    ?assertEqual({error, {file, enoent}}, beamprof:recording_report(path(Config, "none"), Out)),
    Good = path(Config, "good.bprec"),
    _ = beamprof_recording_enc:write_file(Good, 65536, [#{kind => note}]),
    Missing = filename:join([Dir, "no_such_dir", "out.html"]),
    ?assertEqual({error, {unwritable, Missing, enoent}}, beamprof:recording_report(Good, Missing)),
    ?assertEqual({error, {unwritable, Dir, eisdir}}, beamprof:recording_report(Good, Dir)),
    ?assertEqual(false, filelib:is_regular(Out)),
    {ok, Out} = beamprof:recording_report(Good, Out),
    {ok, Info} = file:read_file_info(Out),
    ?assertEqual(8#600, element(8, Info) band 8#777).

%% Each chart's colour is painted: the scheduler lines, RSS, the limit, the
%% run queue, the gate's shading, the mailbox lines; an empty recording's
%% page has none of them.
screenshot_shows_the_charts(Config) ->
    _ = report(Config, "shot", beamprof_recording_fixture:timeline(#{})),
    _ = report(Config, "blank", []),
    Colours = [{scheduler_1_and_top_mailbox, {16#1f, 16#77, 16#b4}}, {scheduler_2, {16#ff, 16#7f, 16#0e}},
               {rss, {16#2c, 16#7f, 16#b8}}, {erlang_memory, {16#41, 16#ab, 16#5d}},
               {limit, {16#d7, 16#30, 16#1f}}, {run_queue, {16#6a, 16#51, 16#a3}},
               {gate_closed, {16#f2, 16#b8, 16#b5}}],
    {_, _, Pixels} = screenshot(Config, path(Config, "shot.html")),
    {_, _, Blank} = screenshot(Config, path(Config, "blank.html")),
    Counts = [{Name, near(Pixels, C), near(Blank, C)} || {Name, C} <- Colours],
    ct:log("pixels per colour (page, blank page): ~p", [Counts]),
    [?assert(N > 300, {Name, N}) || {Name, N, _} <- Counts],
    [?assert(B < 10, {Name, B}) || {Name, _, B} <- Counts].

%%--------------------------------------------------------------------

report(Config, Name, Timeline) ->
    Path = path(Config, Name ++ ".bprec"),
    _ = beamprof_recording_fixture:write(Path, 1 bsl 20, Timeline),
    Out = path(Config, Name ++ ".html"),
    {ok, Out} = beamprof:recording_report(Path, Out),
    {ok, Html} = file:read_file(Out),
    Html.

count(Html, Pattern) -> length(binary:matches(Html, Pattern)).

path(Config, Name) -> filename:join(?config(priv_dir, Config), Name).

near(Pixels, {R, G, B}) ->
    length([P || <<R1, G1, B1>> = P <- Pixels, abs(R1 - R) =< 6, abs(G1 - G) =< 6, abs(B1 - B) =< 6]).

chromium() ->
    lists:foldl(fun(_, Found) when Found =/= false -> Found;
                   (Name, false) -> os:find_executable(Name)
                end, false, ["chromium", "chromium-browser", "google-chrome"]).

screenshot(Config, Page) ->
    Dir = ?config(priv_dir, Config),
    Id = integer_to_list(erlang:unique_integer([positive])),
    Png = filename:join(Dir, "shot-" ++ Id ++ ".png"),
    Cmd = lists:join($\s, ["timeout", "60", quote(?config(chromium, Config)), "--headless",
                           "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                           "--user-data-dir=" ++ quote(filename:join(Dir, "chrome-" ++ Id)),
                           "--window-size=1100,1900", "--screenshot=" ++ quote(Png),
                           quote("file://" ++ Page)]) ++ " 2>/dev/null",
    {Micros, _} = timer:tc(fun() -> os:cmd(Cmd) end),
    ct:log("~s~n(~B ms)", [Cmd, Micros div 1000]),
    {ok, Bin} = file:read_file(Png),
    beamprof_png:decode(Bin).

quote(S) -> "'" ++ S ++ "'".
