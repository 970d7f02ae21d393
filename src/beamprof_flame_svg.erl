%% @doc The static SVG flame graph of a `beamprof_flame:graph()': root at
%% the bottom, one rectangle per frame sized by weight, its name truncated
%% to fit, a `<title>' tooltip (name, weight, percent), colours from the
%% name. No script, no external font or reference: it opens anywhere.
%%
%% Frames narrower than `?MIN_PX' are merged, per parent, into one
%% `[N small frames]' frame when together they are wide enough, left out
%% otherwise; the header counts them. So the file holds at most about
%% `width / ?MIN_PX' frames per depth level whatever the profile's size.
%%
%% The graph's notes are lines under the header (wrapped at about
%% `?NOTE_CHARS' characters) and follow the title in the document's
%% `<title>' (a browser's tab title).
-module(beamprof_flame_svg).

-export([render/1]).

-define(WIDTH, 1200).
-define(PAD, 10).
-define(HEADER, 62).
-define(FRAME_H, 16).
-define(MIN_PX, 0.5).
-define(CHAR_PX, 6.7).
-define(NOTE_H, 16).
-define(NOTE_CHARS, 165).

%% @doc The SVG document of `Graph'.
-spec render(Graph) -> iodata() when Graph :: beamprof_flame:graph().
render(#{tree := {_, Total, _} = Tree} = Graph) ->
    Scale = case Total of 0 -> 0.0; _ -> (?WIDTH - 2 * ?PAD) / Total end,
    {Visible, Hidden} = beamprof_flame:prune(Tree, min_weight(Total)),
    Depth = depth(Visible),
    Notes = lists:append([wrap(N, ?NOTE_CHARS) || N <- maps:get(notes, Graph, [])]),
    Top = ?HEADER + length(Notes) * ?NOTE_H,
    Height = Top + (Depth + 1) * ?FRAME_H + ?PAD,
    Ctx = #{scale => Scale, total => Total, depth => Depth, top => Top,
            unit => beamprof_flame:unit_label(Graph)},
    [header(Height),
     [<<"<title>">>, beamprof_flame:escape_xml(beamprof_flame:titled(Graph)), <<"</title>\n">>],
     texts(Graph, Hidden, Ctx),
     notes(Notes),
     case Total of 0 -> []; _ -> lists:reverse(frames(Visible, 0, 0, Ctx, [])) end,
     <<"</svg>\n">>].

min_weight(0) -> 1;
min_weight(Total) -> ?MIN_PX * Total / (?WIDTH - 2 * ?PAD).

header(Height) ->
    [<<"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n">>,
     io_lib:format("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
                   "width=\"~B\" height=\"~B\" viewBox=\"0 0 ~B ~B\">\n",
                   [?WIDTH, Height, ?WIDTH, Height]),
     <<"<style>text{font-family:monospace;font-size:11px;fill:#000}"
       ".h{font-family:sans-serif;font-size:17px}.s{font-family:sans-serif;font-size:12px;fill:#333}"
       ".n{font-family:sans-serif;font-size:12px;fill:#8a1a1a}"
       "g.f:hover rect{stroke:#000;stroke-width:0.5}</style>\n">>,
     io_lib:format("<rect x=\"0\" y=\"0\" width=\"~B\" height=\"~B\" fill=\"#f8f8f4\"/>\n",
                   [?WIDTH, Height])].

texts(#{title := Title, total := Total, stacks := Stacks}, {Count, Weight}, #{unit := Unit}) ->
    Hidden = case Count of
                 0 -> <<>>;
                 _ -> io_lib:format(" - ~B frames narrower than ~.1f px merged or left out (~B ~s left out)",
                                    [Count, ?MIN_PX, Weight, Unit])
             end,
    [io_lib:format("<text class=\"h\" x=\"~B\" y=\"24\" text-anchor=\"middle\">", [?WIDTH div 2]),
     beamprof_flame:escape_xml(Title), <<"</text>\n">>,
     io_lib:format("<text class=\"s\" x=\"~B\" y=\"46\">Total ~B ~s in ~B stacks~s</text>\n",
                   [?PAD, Total, Unit, Stacks, Hidden])].

%% One text line per wrapped line of the notes, under the totals line.
notes(Lines) ->
    [[io_lib:format("<text class=\"n\" x=\"~B\" y=\"~B\">", [?PAD, ?HEADER + I * ?NOTE_H - 2]),
      beamprof_flame:escape_xml(L), <<"</text>\n">>]
     || {I, L} <- lists:zip(lists:seq(1, length(Lines)), Lines)].

%% Text cut into lines of at most Chars characters at spaces (a longer word
%% stands on its own line).
wrap(Text, Chars) ->
    Words = string:lexemes(Text, " "),
    [unicode:characters_to_binary(lists:join(" ", Line)) || Line <- lines(Words, Chars, [], 0)].

lines([], _Chars, [], _Len) -> [];
lines([], _Chars, Line, _Len) -> [lists:reverse(Line)];
lines([W | Ws], Chars, [], _Len) -> lines(Ws, Chars, [W], string:length(W));
lines([W | Ws], Chars, Line, Len) ->
    case Len + 1 + string:length(W) =< Chars of
        true -> lines(Ws, Chars, [W | Line], Len + 1 + string:length(W));
        false -> [lists:reverse(Line) | lines([W | Ws], Chars, [], 0)]
    end.

depth({_, _, []}) -> 0;
depth({_, _, Children}) -> 1 + lists:max([depth(C) || C <- Children]).

frames({Name, Total, Children}, X, Level, Ctx, Acc) ->
    Acc1 = [frame(Name, Total, X, Level, Ctx) | Acc],
    {_, Acc2} = lists:foldl(fun({_, T, _} = C, {CX, A}) ->
                                    {CX + T, frames(C, CX, Level + 1, Ctx, A)}
                            end, {X, Acc1}, Children),
    Acc2.

frame(Name, Weight, X, Level, #{scale := Scale, total := Total, depth := Depth, unit := Unit,
                                top := Top}) ->
    Px = ?PAD + X * Scale,
    Wpx = Weight * Scale,
    Y = Top + (Depth - Level) * ?FRAME_H,
    [<<"<g class=\"f\"><title>">>, beamprof_flame:escape_xml(Name),
     io_lib:format(" (~B ~s, ~s%)</title>", [Weight, Unit, num(100 * Weight / Total, 2)]),
     <<"<rect x=\"">>, num(Px, 1), <<"\" y=\"">>, integer_to_binary(Y),
     <<"\" width=\"">>, num(Wpx, 1), <<"\" height=\"">>, integer_to_binary(?FRAME_H - 1),
     <<"\" rx=\"2\" fill=\"">>, fill(Name, Level), <<"\"/>">>,
     label(Name, Px, Y, Wpx), <<"</g>\n">>].

fill(_Root, 0) -> <<"#c8c8c8">>;
fill(Name, _) -> beamprof_flame:color(Name).

label(Name, Px, Y, Wpx) ->
    case fit(Name, trunc((Wpx - 6) / ?CHAR_PX)) of
        <<>> -> [];
        Text -> [<<"<text x=\"">>, num(Px + 3, 1), <<"\" y=\"">>,
                 integer_to_binary(Y + ?FRAME_H - 4), <<"\">">>, beamprof_flame:escape_xml(Text), <<"</text>">>]
    end.

%% The name if it fits in Chars characters, else its start and "..", or
%% nothing when fewer than 3 characters fit.
fit(_Name, Chars) when Chars < 3 -> <<>>;
fit(Name, Chars) ->
    Codepoints = unicode:characters_to_list(Name),
    case length(Codepoints) =< Chars of
        true -> Name;
        false -> unicode:characters_to_binary([lists:sublist(Codepoints, Chars - 2), ".."])
    end.

num(F, Decimals) -> float_to_binary(float(F), [{decimals, Decimals}, compact]).
