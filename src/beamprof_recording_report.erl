%% @doc The HTML report of a flight recording (`beamprof:recording_report/2'):
%% one self-contained page, CSS inline, charts as inline SVG
%% (`beamprof_recording_svg'), no script, and a Content Security Policy that
%% forbids every network request, so it opens from a file anywhere.
%%
%% The page shows, over the recording's time span:
%% <ul>
%% <li>utilization per normal scheduler: `scheduler_wall_time' from the
%% `interval' records, or, when there are none, the OS CPU of each
%% scheduler thread from the C thread's `tick' records (the page says
%% which);</li>
%% <li>memory against the limit: the VM's RSS (`tick'), `erlang:memory()'
%% total (`interval'), the limit as a dashed line;</li>
%% <li>run queues (`interval'): normal schedulers summed, dirty CPU, dirty
%% IO;</li>
%% <li>the gate: shaded where it was closed (from the ticks' `gate', else
%% from the `gate' records), a marker at each `gate' record;</li>
%% <li>the largest mailboxes (`scan' records): the 5 names whose queue
%% reached the highest, each one's queue over time;</li>
%% <li>the events (`threshold', `monitor', `gate', `profile', `note'), the
%% newest 200, and the header's node, releases and schedulers.</li>
%% </ul>
%% What the recording lacked (no `interval', `tick' or `scan' records, no
%% header, skipped frames) is said at the top of the page.
-module(beamprof_recording_report).

-export([write/2, render/3]).

-define(EVENTS, 200).
-define(MAILBOXES, 5).

%% @doc Reads the recording at `Path' and writes its report to `Out' (mode
%% 0600, never through a symbolic link, see `beamprof_file'). Returns
%% `{ok, Out}', the reader's `{error, Reason}', `{error, {unwritable, Out,
%% Reason}}' when `Out' cannot be written (checked before reading), or
%% `{error, {write_failed, Out, Reason}}'.
-spec write(Path, Out) -> {ok, Out} | {error, term()} when
      Path :: file:name_all(), Out :: file:name_all().
write(Path, Out) ->
    case beamprof_file:check_writable(Out) of
        ok -> read_and_write(Path, Out);
        {error, Reason} -> {error, {unwritable, Out, Reason}}
    end.

read_and_write(Path, Out) ->
    case beamprof_recording:read(Path, #{info => true}) of
        {ok, Records, Info} ->
            case beamprof_file:write(Out, render(Records, Info, title(Path))) of
                ok -> {ok, Out};
                {error, Reason} -> {error, beamprof_file:write_failed(Out, Reason)}
            end;
        {error, _} = Error -> Error
    end.

title(Path) ->
    case beamprof_file:path(Path) of
        {ok, Flat} -> unicode:characters_to_binary(io_lib:format("~ts", [Flat]));
        error -> <<"recording">>
    end.

%% @doc The HTML document of `Records' (as `beamprof_recording:read/2'
%% returns them, oldest first) and the reader's `Info', titled `Title'.
-spec render(Records, Info, Title) -> iodata() when
      Records :: [beamprof_recording:record_map()], Info :: map(), Title :: unicode:chardata().
render(Records, Info, Title) ->
    ByKind = by_kind(Records),
    Span = span(Records),
    Charts = case Span of
                 none -> [];
                 _ -> [utilization(ByKind, Span), memory(ByKind, Span), run_queues(ByKind, Span),
                       gate(ByKind, Span), mailboxes(ByKind, Span)]
             end,
    Missing = missing(ByKind, Info, Records) ++ [Note || {_, Note} <- Charts, Note =/= none],
    [<<"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; img-src data:\">\n<title>beamprof recording: ">>, esc(Title),
     <<"</title>\n<style>">>, css(), <<"</style>\n</head><body>\n<h1>beamprof recording</h1>\n">>,
     summary(Title, ByKind, Info, Span),
     [[<<"<p class=\"missing\">">>, esc(M), <<"</p>\n">>] || M <- Missing],
     [[<<"<div class=\"chart\">">>, Svg, <<"</div>\n">>] || {Svg, _} <- Charts, Svg =/= []],
     events(Records),
     <<"</body></html>\n">>].

by_kind(Records) ->
    lists:foldr(fun(#{kind := K} = R, Acc) -> maps:update_with(K, fun(L) -> [R | L] end, [R], Acc) end,
                #{}, Records).

kind(K, ByKind) -> maps:get(K, ByKind, []).

span([]) -> none;
span(Records) ->
    Times = [T || #{time := T} <- Records],
    {lists:min(Times), max(lists:max(Times), lists:min(Times) + 1)}.

%%--------------------------------------------------------------------
%% what the recording lacks

missing(ByKind, Info, Records) ->
    [<<"The recording holds no record.">> || Records =:= []]
        ++ [<<"No header record: node, releases and schedulers unknown (the ring wrapped past "
              "the last open).">> || Records =/= [], kind(header, ByKind) =:= []]
        ++ [<<"No tick records (the C thread's per-tick figures): no RSS line, the gate shown "
              "from gate records only.">> || Records =/= [], kind(tick, ByKind) =:= []]
        ++ [<<"No scan records: no mailbox chart.">> || Records =/= [], kind(scan, ByKind) =:= []]
        ++ skipped(Info).

skipped(#{skipped := 0}) -> [];
skipped(#{skipped := N, bad_frames := B, undecodable := U, duplicates := D}) ->
    [iolist_to_binary(io_lib:format("~B frames skipped: ~B torn or overwritten, ~B undecodable, "
                                    "~B with a duplicate sequence number.", [N, B, U, D]))];
skipped(_) -> [].

%%--------------------------------------------------------------------
%% charts: {Svg | [], MissingNote | none}

utilization(ByKind, Span) ->
    case [R || #{utilization := #{normal := [_ | _]}} = R <- kind(interval, ByKind)] of
        [_ | _] = Intervals ->
            Series = per_index([{T, lists:enumerate(Us)} || #{time := T, utilization := #{normal := Us}}
                                                                <- Intervals]),
            {util_chart(<<"Scheduler utilization (scheduler_wall_time, per normal scheduler)">>,
                        Series, Span), none};
        [] ->
            Ticks = [{T, [{I, C} || #{kind := normal, index := I, cpu := C} <- Th]}
                     || #{time := T, threads := Th} <- kind(tick, ByKind), is_list(Th)],
            case lists:append([P || {_, P} <- Ticks]) of
                [] -> {[], <<"No interval or tick records: no utilization chart.">>};
                _ -> {util_chart(<<"Scheduler threads' OS CPU (tick records, per normal scheduler)">>,
                                 per_index(Ticks), Span),
                      <<"No interval records: utilization is the OS CPU of each scheduler thread "
                        "from the tick records (busy-waiting counts as busy).">>}
            end
    end.

%% [{Time, [{Index, Value}]}] -> series per index.
per_index(Rows) ->
    Map = lists:foldl(fun({T, Pairs}, Acc) ->
                              lists:foldl(fun({I, V}, A) when is_number(V) ->
                                                  maps:update_with(I, fun(L) -> [{T, V} | L] end,
                                                                   [{T, V}], A);
                                             (_, A) -> A
                                          end, Acc, Pairs)
                      end, #{}, Rows),
    [{I, lists:reverse(Ps)} || {I, Ps} <- lists:sort(maps:to_list(Map))].

util_chart(Title, Series, Span) ->
    beamprof_recording_svg:chart(
      #{id => <<"utilization">>, title => Title, x => Span, y_max => 1.0, y_format => fun percent/1,
        series => [#{label => io_lib:format("scheduler ~B", [I]),
                     color => beamprof_recording_svg:palette(N), points => Ps}
                   || {N, {I, Ps}} <- lists:enumerate(Series)]}).

memory(ByKind, Span) ->
    Ticks = kind(tick, ByKind),
    Rss = [{T, V} || #{time := T, rss := V} <- Ticks, is_integer(V)],
    Total = [{T, V} || #{time := T, memory := #{total := V}} <- kind(interval, ByKind), is_integer(V)],
    Limit = limit(Ticks, kind(header, ByKind)),
    Limits = case Limit of undefined -> []; _ -> [{element(1, Span), Limit}, {element(2, Span), Limit}] end,
    case Rss ++ Total of
        [] -> {[], <<"No tick or interval records: no memory chart.">>};
        All ->
            YMax = 1.05 * lists:max([V || {_, V} <- All ++ Limits]),
            Series = [#{label => <<"RSS (tick)">>, color => <<"#2c7fb8">>, points => Rss} || Rss =/= []]
                ++ [#{label => <<"erlang:memory() total (interval)">>, color => <<"#41ab5d">>,
                      points => Total} || Total =/= []]
                ++ [#{label => [<<"limit ">>, bytes(Limit)], color => <<"#d7301f">>, dash => true,
                      points => Limits} || Limits =/= []],
            {beamprof_recording_svg:chart(#{id => <<"memory">>, title => <<"Memory against the limit">>,
                                            x => Span, y_max => YMax, y_format => fun bytes/1,
                                            series => Series}),
             case Limit of undefined -> <<"No memory limit recorded (none found by the VM).">>;
                           _ -> none end}
    end.

%% The newest limit the ticks give (0 means none), else the header's.
limit(Ticks, Headers) ->
    case [L || #{memory_limit := L} <- lists:reverse(Ticks), is_integer(L), L > 0] of
        [L | _] -> L;
        [] -> case [L || #{memory_limit := L} <- lists:reverse(Headers), is_integer(L), L > 0] of
                  [L | _] -> L;
                  [] -> undefined
              end
    end.

run_queues(ByKind, Span) ->
    Rows = [{T, Qs} || #{time := T, run_queues := Qs} <- kind(interval, ByKind),
                       is_list(Qs), length(Qs) >= 2, lists:all(fun is_integer/1, Qs)],
    case Rows of
        [] -> {[], <<"No interval records: no run queue chart.">>};
        _ ->
            Normal = [{T, lists:sum(lists:sublist(Qs, length(Qs) - 2))} || {T, Qs} <- Rows],
            DirtyCpu = [{T, lists:nth(length(Qs) - 1, Qs)} || {T, Qs} <- Rows],
            DirtyIo = [{T, lists:last(Qs)} || {T, Qs} <- Rows],
            YMax = max(4, 1.1 * lists:max([V || {_, V} <- Normal ++ DirtyCpu ++ DirtyIo])),
            {beamprof_recording_svg:chart(
               #{id => <<"run_queues">>, title => <<"Run queues">>, x => Span, y_max => YMax,
                 y_format => fun count/1,
                 series => [#{label => <<"normal schedulers (sum)">>, color => <<"#6a51a3">>,
                              points => Normal, agg => max},
                            #{label => <<"dirty CPU">>, color => <<"#e6550d">>, points => DirtyCpu,
                              agg => max},
                            #{label => <<"dirty IO">>, color => <<"#31a354">>, points => DirtyIo,
                              agg => max}]}), none}
    end.

gate(ByKind, {_, End} = Span) ->
    Flips = [{T, S, R} || #{time := T, state := S, reason := R} <- kind(gate, ByKind)],
    States = case [{T, S, R} || #{time := T, gate := S, gate_reason := R} <- kind(tick, ByKind)] of
                 [] -> Flips;
                 TickStates -> TickStates
             end,
    case States of
        [] -> {[], <<"No tick or gate records: no gate chart.">>};
        _ ->
            Bands = [{From, To, <<"#f2b8b5">>, [<<"closed: ">>, text(R)]}
                     || {From, To, R} <- closed_spans(States, End)],
            Markers = [{T, marker_color(S), [<<"gate ">>, text(S), <<" (">>, text(R), <<")">>]}
                       || {T, S, R} <- Flips],
            Closed = lists:sum([To - From || {From, To, _, _} <- Bands]),
            Title = io_lib:format("Load gate: closed for ~s of the recording (shaded), ~B flips",
                                  [duration(Closed), length(Flips)]),
            {beamprof_recording_svg:chart(
               #{id => <<"gate">>, title => Title, x => Span, y_max => 1,
                 y_format => fun(_) -> <<>> end, series => [], bands => Bands,
                 markers => Markers}), none}
    end.

marker_color(closed) -> <<"#b2182b">>;
marker_color(_) -> <<"#2166ac">>.

%% The spans where the state was closed: {From, To, Reason}.
closed_spans(States, End) ->
    closed_spans(States, End, undefined, []).

closed_spans([], End, {From, R}, Acc) -> lists:reverse([{From, End, R} | Acc]);
closed_spans([], _End, undefined, Acc) -> lists:reverse(Acc);
closed_spans([{T, closed, R} | Rest], End, undefined, Acc) -> closed_spans(Rest, End, {T, R}, Acc);
closed_spans([{_, closed, _} | Rest], End, Open, Acc) -> closed_spans(Rest, End, Open, Acc);
closed_spans([{T, _, _} | Rest], End, {From, R}, Acc) -> closed_spans(Rest, End, undefined, [{From, T, R} | Acc]);
closed_spans([_ | Rest], End, undefined, Acc) -> closed_spans(Rest, End, undefined, Acc).

mailboxes(ByKind, Span) ->
    Rows = [{T, Name, V} || #{time := T, top := #{message_queue_len := L}} <- kind(scan, ByKind),
                            is_list(L), #{name := Name, value := V} <- L, is_integer(V)],
    case Rows of
        [] -> {[], none};
        _ ->
            ByName = lists:foldl(fun({T, N, V}, Acc) ->
                                         maps:update_with(N, fun(Ps) -> [{T, V} | Ps] end, [{T, V}], Acc)
                                 end, #{}, Rows),
            Top = lists:sublist(lists:reverse(lists:keysort(1, [{lists:max([V || {_, V} <- Ps]), N, Ps}
                                                                 || {N, Ps} <- maps:to_list(ByName)])),
                                ?MAILBOXES),
            YMax = max(10, 1.1 * element(1, hd(Top))),
            Series = [#{label => name(N), color => beamprof_recording_svg:palette(I),
                        points => lists:reverse(Ps), agg => max}
                      || {I, {_, N, Ps}} <- lists:enumerate(Top)],
            {beamprof_recording_svg:chart(
               #{id => <<"mailboxes">>, title => <<"Largest mailboxes (message_queue_len, per scan)">>,
                 x => Span, y_max => YMax, y_format => fun count/1, series => Series}), none}
    end.

name(N) when is_binary(N) -> N;
name(N) -> text(N).

%%--------------------------------------------------------------------
%% the page's text

summary(Title, ByKind, Info, Span) ->
    Header = case lists:reverse(kind(header, ByKind)) of [H | _] -> H; [] -> #{} end,
    Field = fun(K) -> text(maps:get(K, Header, <<"?">>)) end,
    Counts = lists:join(<<", ">>, [[text(K), <<" ">>, integer_to_binary(length(Rs))]
                                   || {K, Rs} <- lists:sort(maps:to_list(ByKind))]),
    [<<"<table class=\"summary\">\n">>,
     row(<<"file">>, esc(Title)),
     row(<<"node">>, [esc(Field(node)), <<" (OS pid ">>, esc(Field(os_pid)), <<")">>]),
     row(<<"releases">>, [<<"OTP ">>, esc(Field(otp_release)), <<", ERTS ">>,
                          esc(Field(erts_version)), <<", beamprof ">>, esc(Field(beamprof_version))]),
     row(<<"schedulers">>, [esc(Field(schedulers)), <<" normal (">>, esc(Field(schedulers_online)),
                            <<" online), ">>, esc(Field(dirty_cpu_schedulers)), <<" dirty CPU, ">>,
                            esc(Field(dirty_io_schedulers)), <<" dirty IO">>]),
     row(<<"time (UTC)">>, case Span of
                               none -> <<"-">>;
                               {A, B} -> [iso(A), <<" to ">>, iso(B), <<" (">>, duration(B - A), <<")">>]
                           end),
     row(<<"records">>, [esc(iolist_to_binary(Counts)),
                         io_lib:format("; ring ~s, ~B frames", [bytes(maps:get(ring_size, Info, 0)),
                                                               maps:get(frames, Info, 0)])]),
     <<"</table>\n">>].

row(Key, Value) -> [<<"<tr><th>">>, Key, <<"</th><td>">>, Value, <<"</td></tr>\n">>].

events(Records) ->
    Kinds = [threshold, monitor, gate, profile, note],
    Events = [R || #{kind := K} = R <- Records, lists:member(K, Kinds)],
    Shown = lists:nthtail(max(0, length(Events) - ?EVENTS), Events),
    case Shown of
        [] -> [];
        _ ->
            [<<"<h2>Events</h2>\n">>,
             [[<<"<p class=\"missing\">">>, integer_to_binary(length(Events) - length(Shown)),
               <<" older events not shown.</p>\n">>] || length(Events) > length(Shown)],
             <<"<table class=\"events\"><tr><th>time (UTC)</th><th>kind</th><th>details</th></tr>\n">>,
             [[<<"<tr><td>">>, iso(T), <<"</td><td>">>, text(K), <<"</td><td>">>,
               esc(details(maps:without([kind, time, seq, mono_ns], R))), <<"</td></tr>\n">>]
              || #{time := T, kind := K} = R <- Shown],
             <<"</table>\n">>]
    end.

details(Map) ->
    lists:join(<<", ">>, [[text(K), <<"=">>, text(V)] || {K, V} <- lists:sort(maps:to_list(Map))]).

%%--------------------------------------------------------------------
%% formatting

text(B) when is_binary(B) -> B;
text(A) when is_atom(A) -> atom_to_binary(A);
text(I) when is_integer(I) -> integer_to_binary(I);
text(F) when is_float(F) -> float_to_binary(F, [{decimals, 3}, compact]);
text(T) -> unicode:characters_to_binary(io_lib:format("~0tp", [T])).

percent(V) -> io_lib:format("~B%", [round(V * 100)]).

count(V) -> integer_to_binary(round(V)).

bytes(V) when V >= 1 bsl 30 -> io_lib:format("~.1f GiB", [V / (1 bsl 30)]);
bytes(V) when V >= 1 bsl 20 -> io_lib:format("~B MiB", [round(V / (1 bsl 20))]);
bytes(V) when V >= 1 bsl 10 -> io_lib:format("~B KiB", [round(V / (1 bsl 10))]);
bytes(V) -> io_lib:format("~B B", [round(V)]).

duration(Ms) when Ms < 1000 -> io_lib:format("~B ms", [Ms]);
duration(Ms) when Ms < 120000 -> io_lib:format("~.1f s", [Ms / 1000]);
duration(Ms) -> io_lib:format("~.1f min", [Ms / 60000]).

iso(Ms) -> calendar:system_time_to_rfc3339(Ms, [{unit, millisecond}, {offset, "Z"}]).

esc(Text) -> beamprof_flame:escape_xml(unicode:characters_to_binary(Text)).

css() ->
    <<"body{font-family:sans-serif;margin:12px;background:#f8f8f4;color:#222}"
      "h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:14px 0 4px}"
      ".missing{font-size:13px;color:#8a1a1a;margin:3px 0}"
      "table{border-collapse:collapse;font-size:13px;margin:6px 0}"
      "th,td{text-align:left;padding:2px 8px;vertical-align:top}"
      ".summary th{color:#555;font-weight:normal}.events td{border-top:1px solid #ddd}.events td:first-child{white-space:nowrap}"
      ".chart{margin:8px 0}svg.chart{display:block;border:1px solid #ddd}"
      "svg .title{font-size:14px;font-weight:bold;fill:#222}"
      "svg .legend,svg .axis{font-size:11px;fill:#444}"
      "svg .grid{stroke:#e4e4e4;stroke-width:1}svg .frame{fill:none;stroke:#bbb}">>.
