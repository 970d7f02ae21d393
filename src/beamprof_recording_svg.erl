%% @doc Time charts as inline SVG for the recording report
%% (`beamprof_recording_report'): lines over a time axis, shaded bands
%% (the gate closed) and markers (events), a legend, axes labelled in UTC
%% clock time and in the chart's unit. No script; every text escaped.
%%
%% A series of more points than the chart has pixel columns is reduced to
%% one point per column (the mean, or the maximum for `agg => max'), so a
%% full 16 MiB recording draws in a page of a few hundred kilobytes.
-module(beamprof_recording_svg).

-export([chart/1, palette/1]).

-export_type([chart/0, series/0]).

-define(W, 1000).
-define(H, 230).
-define(LEFT, 78).
-define(RIGHT, 16).
-define(TOP, 44).
-define(BOTTOM, 26).

-type series() :: #{label := unicode:chardata(), color := binary(),
                    points := [{integer(), number()}], dash => boolean(), agg => mean | max}.
-type chart() :: #{id := binary(), title := unicode:chardata(), x := {integer(), integer()},
                   y_max := number(), y_format := fun((number()) -> iodata()),
                   series := [series()], bands => [{integer(), integer(), binary(), iodata()}],
                   markers => [{integer(), binary(), iodata()}]}.
%% `x': the time range in ms; `bands': `{From, To, Color, Title}';
%% `markers': `{Time, Color, Title}'.

%% @doc The colour of series `N' (from 1), from a palette of 10.
-spec palette(pos_integer()) -> binary().
palette(N) ->
    Colors = {<<"#1f77b4">>, <<"#ff7f0e">>, <<"#2ca02c">>, <<"#9467bd">>, <<"#8c564b">>,
              <<"#e377c2">>, <<"#17becf">>, <<"#bcbd22">>, <<"#7f7f7f">>, <<"#393b79">>},
    element((N - 1) rem tuple_size(Colors) + 1, Colors).

%% @doc The `<svg>' element of `Chart'.
-spec chart(Chart :: chart()) -> iodata().
chart(#{id := Id, title := Title, x := {T0, T1}, y_max := YMax0, series := Series} = C) ->
    YMax = case YMax0 > 0 of true -> YMax0; false -> 1 end,
    Span = max(1, T1 - T0),
    Ctx = #{t0 => T0, span => Span, ymax => YMax},
    [io_lib:format("<svg class=\"chart\" id=\"~s\" xmlns=\"http://www.w3.org/2000/svg\" "
                   "width=\"~B\" height=\"~B\" viewBox=\"0 0 ~B ~B\">\n", [Id, ?W, ?H, ?W, ?H]),
     <<"<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n">>,
     [<<"<text class=\"title\" x=\"8\" y=\"18\">">>, esc(Title), <<"</text>\n">>],
     legend(Series),
     [shade(B, Ctx) || B <- maps:get(bands, C, [])],
     grid(YMax, maps:get(y_format, C), T0, T1, Ctx),
     [line(S, Ctx) || S <- Series],
     [marker(M, Ctx) || M <- maps:get(markers, C, [])],
     <<"</svg>\n">>].

legend(Series) ->
    {Items, _} = lists:mapfoldl(
                   fun(#{label := L, color := Col} = S, X) ->
                           Text = esc(truncate(L, 40)),
                           Dash = dash_attr(S),
                           Item = io_lib:format("<line x1=\"~B\" y1=\"32\" x2=\"~B\" y2=\"32\" "
                                                "stroke=\"~s\" stroke-width=\"3\"~s/>"
                                                "<text class=\"legend\" x=\"~B\" y=\"36\">~s</text>\n",
                                                [X, X + 18, Col, Dash, X + 22, Text]),
                           {Item, X + 30 + 7 * string:length(truncate(L, 40))}
                   end, ?LEFT, Series),
    Items.

truncate(L, N) ->
    S = unicode:characters_to_list(L),
    case length(S) > N of
        true -> lists:sublist(S, N - 2) ++ "..";
        false -> S
    end.

grid(YMax, Format, T0, T1, Ctx) ->
    Ys = [YMax * I / 4 || I <- lists:seq(0, 4)],
    Ts = [T0 + (T1 - T0) * I div 5 || I <- lists:seq(0, 5)],
    [[[io_lib:format("<line class=\"grid\" x1=\"~B\" y1=\"~s\" x2=\"~B\" y2=\"~s\"/>"
                    "<text class=\"axis\" x=\"~B\" y=\"~s\" text-anchor=\"end\">",
                    [?LEFT, num(y(V, Ctx)), ?W - ?RIGHT, num(y(V, Ctx)), ?LEFT - 6,
                     num(y(V, Ctx) + 4)]), esc(Format(V)), <<"</text>\n">>] || V <- Ys],
     [io_lib:format("<text class=\"axis\" x=\"~s\" y=\"~B\" text-anchor=\"~s\">~s</text>\n",
                    [num(x(T, Ctx)), ?H - 8, anchor(T, T0, T1), clock(T)]) || T <- Ts],
     io_lib:format("<rect class=\"frame\" x=\"~B\" y=\"~B\" width=\"~B\" height=\"~B\"/>\n",
                   [?LEFT, ?TOP, ?W - ?LEFT - ?RIGHT, ?H - ?TOP - ?BOTTOM])].

anchor(T, T0, _T1) when T =:= T0 -> "start";
anchor(T, _T0, T1) when T =:= T1 -> "end";
anchor(_, _, _) -> "middle".

line(#{points := []}, _Ctx) -> [];
line(#{points := Points0, color := Col} = S, #{t0 := T0, span := Span} = Ctx) ->
    Points = reduce(Points0, T0, Span, maps:get(agg, S, mean)),
    Coords = [[num(x(T, Ctx)), $,, num(y(V, Ctx)), $\s] || {T, V} <- Points],
    Title = [<<"<title>">>, esc(maps:get(label, S)), <<"</title>">>],
    case Points of
        [{T, V}] ->
            io_lib:format("<circle cx=\"~s\" cy=\"~s\" r=\"3\" fill=\"~s\">~s</circle>\n",
                          [num(x(T, Ctx)), num(y(V, Ctx)), Col, Title]);
        _ ->
            [io_lib:format("<polyline class=\"series\" fill=\"none\" stroke=\"~s\" "
                           "stroke-width=\"2\"~s points=\"", [Col, dash_attr(S)]),
             Coords, <<"\">">>, Title, <<"</polyline>\n">>]
    end.

dash_attr(#{dash := true}) -> " stroke-dasharray=\"6 4\"";
dash_attr(_) -> "".

shade({From, To, Col, Title}, Ctx) ->
    X0 = x(From, Ctx),
    X1 = max(X0 + 1, x(To, Ctx)),
    [io_lib:format("<rect class=\"band\" x=\"~s\" y=\"~B\" width=\"~s\" height=\"~B\" fill=\"~s\">",
                   [num(X0), ?TOP, num(X1 - X0), ?H - ?TOP - ?BOTTOM, Col]),
     <<"<title>">>, esc(Title), <<"</title></rect>\n">>].

marker({T, Col, Title}, Ctx) ->
    X = num(x(T, Ctx)),
    [io_lib:format("<line class=\"marker\" x1=\"~s\" y1=\"~B\" x2=\"~s\" y2=\"~B\" stroke=\"~s\" "
                   "stroke-width=\"2\">", [X, ?TOP, X, ?H - ?BOTTOM, Col]),
     <<"<title>">>, esc(Title), <<"</title></line>\n">>].

%% One point per pixel column at most.
reduce(Points, _T0, _Span, _Agg) when length(Points) =< ?W - ?LEFT - ?RIGHT -> Points;
reduce(Points, T0, Span, Agg) ->
    Cols = ?W - ?LEFT - ?RIGHT,
    Keyed = [{min(Cols - 1, (T - T0) * Cols div Span), T, V} || {T, V} <- Points],
    Groups = group(Keyed, []),
    [{lists:last(Ts), agg(Agg, Vs)} || {Ts, Vs} <- Groups].

group([], Acc) -> lists:reverse(Acc);
group([{K, T, V} | Rest], Acc) ->
    {Same, Others} = lists:splitwith(fun({K2, _, _}) -> K2 =:= K end, Rest),
    group(Others, [{[T | [T2 || {_, T2, _} <- Same]], [V | [V2 || {_, _, V2} <- Same]]} | Acc]).

agg(max, Vs) -> lists:max(Vs);
agg(mean, Vs) -> lists:sum(Vs) / length(Vs).

x(T, #{t0 := T0, span := Span}) -> ?LEFT + (T - T0) * (?W - ?LEFT - ?RIGHT) / Span.

y(V, #{ymax := YMax}) ->
    Plot = ?H - ?TOP - ?BOTTOM,
    ?H - ?BOTTOM - min(1.0, max(0.0, V / YMax)) * Plot.

num(F) -> float_to_binary(float(F), [{decimals, 1}, compact]).

%% HH:MM:SS (UTC) of a time in ms.
clock(Ms) ->
    {_, {H, M, S}} = calendar:system_time_to_universal_time(Ms, millisecond),
    io_lib:format("~2..0B:~2..0B:~2..0B", [H, M, S]).

esc(Text) -> beamprof_flame:escape_xml(unicode:characters_to_binary(Text)).
