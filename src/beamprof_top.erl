%% @doc What `beamprof:top()' prints: one screen for a person at a terminal.
%%
%% `render/3' is pure: it takes the sample `beamprof:snapshot()' returns and
%% the three tables of `beamprof_scan:top_all/1', and returns the text as a
%% UTF-8 binary, so that it prints correctly whether the shell's device is in
%% unicode or latin1 mode (names may hold any character).
%%
%% Every line fits the width asked (`width', default 80 columns, at least 60;
%% `beamprof:top/0,1' pass the terminal's, see `options/1'), counting East
%% Asian wide characters as two columns: figures that do not fit on a line go
%% on the next, names, labels and functions are cut with `..' (a name or a
%% label keeps its start, a function its end), and the current function
%% column is left out when it would leave the names too little room (below
%% about 70 columns). With `height', the tables lose
%% rows until the screen fits, the header first (what `live/2' asks for: the
%% terminal's rows). About 35 lines at 80 columns:
%%
%% <ul>
%% <li>a header: node, window, gate, system monitor; where the scan's pids
%% came from, and any warning of the sample or the scan (see
%% `beamprof_warnings');</li>
%% <li>scheduler utilization: a bar per normal scheduler up to 16, one digit
%% per scheduler beyond (0 = under 10%, 9 = 90% or more), then the totals
%% and the run queues;</li>
%% <li>`memory': `rss' (the VM's resident memory, from the OS), `erlang
%% total' and its kinds (`erlang:memory/0');</li>
%% <li>`limit': the memory limit in force and where it comes from
%% (`memory_limit option', `cgroup v2', `cgroup v1', or `machine': the
%% machine's total memory when neither applies), then the figure the load gate
%% compares with `memory_high': with an option or cgroup limit, `rss N% of
%% limit'; with the machine's, `machine in use N%' (all of the machine's
%% memory in use, every process's, not the VM's share);</li>
%% <li>counts and rates, then the top processes by message queue, by memory
%% and by reductions over the scan's window.</li>
%% </ul>
%%
%% `live/2' redraws a frame in place (ANSI cursor home and line clears) every
%% interval until the user presses Enter (or types q and Enter): a shell in
%% cooked mode hands a program whole lines only, so no single key can stop
%% it. The line is read by a process of its own, which never outlives the
%% call. Each frame is laid out for the terminal's size as it is then, so the
%% header stays on screen.
-module(beamprof_top).

-export([render/3, print/1, live/2, name/1, mfa/1, width/1, options/1, columns/0]).
-export([process_table/3, pack/5, pad/3, truncate/2, fit/2, gate/1, cut_middle/2]).

-export_type([tops/0, opts/0, geometry/0]).

-type tops() :: beamprof_scan:tops().
-type opts() :: #{rows => pos_integer(), interval => pos_integer(),
                  width => pos_integer(), height => pos_integer()}.
%% `rows': rows per table (default 5); `interval': ms between frames of
%% `live/2' (default 1000); `width': columns of every line (default 80;
%% `live/2': the terminal's); `height': lines of the screen at most (default:
%% no bound; `live/2': the terminal's rows).
-type geometry() :: #{width := pos_integer(), height := pos_integer()}.
%% The size a frame of `live/2' is laid out for.

-define(ROWS, 5).
-define(WIDTH, 80).         % columns when neither asked nor known
-define(MIN_WIDTH, 60).
-define(HEIGHT, 50).        % rows of the live view when the terminal does not say
-define(BARS_UP_TO, 16).
-define(BARS_PER_LINE, 4).
-define(DIGITS_PER_LINE, 64).
-define(LABEL_WIDTH, 11).
-define(NOTE_LINES, 2).     % a header note wraps to this many lines, then is cut
-define(FUNCTION_MIN, 10).  % narrower than this, the current function column goes
-define(CUT, "..").

%% Options

%% @doc Checks the options of `beamprof:top/1' and returns them as a map:
%% `width' (an integer, at least 60: columns of every line; default the
%% terminal's, or 80 when the device does not say) and `live' (a boolean:
%% redraw until Enter). A map or a `{Key, Value}' list; anything else, an
%% unknown key or a bad value raises `badarg' with a message naming it.
-spec options(map() | [{atom(), term()}]) -> #{width => pos_integer(), live => boolean()}.
options(Options) ->
    Map = beamprof_opts:to_map(Options),
    lists:foreach(fun({K, V}) -> check(K, V, Options) end, lists:sort(maps:to_list(Map))),
    Map.

check(width, W, _) when is_integer(W), W >= ?MIN_WIDTH -> ok;
check(live, L, _) when is_boolean(L) -> ok;
check(width, W, Args) ->
    beamprof_opts:bad_value(width, "an integer of at least " ++ integer_to_list(?MIN_WIDTH)
                            ++ " (columns)", W, Args);
check(live, L, Args) -> beamprof_opts:bad_value(live, "a boolean", L, Args);
check(K, _, Args) -> beamprof_opts:unknown(K, [width, live], Args).

%% @doc The width to render for on the caller's group leader: its columns
%% (`io:columns/0'), at least 60; 80 when the device has none (not a
%% terminal).
-spec columns() -> pos_integer().
columns() ->
    case io:columns() of
        {ok, C} when is_integer(C), C > 0 -> max(?MIN_WIDTH, C);
        _ -> ?WIDTH
    end.

rows() ->
    case io:rows() of
        {ok, R} when is_integer(R), R > 0 -> max(2, R);
        _ -> ?HEIGHT
    end.

%% Rendering

%% @doc The screen for `Snapshot' (`beamprof:snapshot()') and `Tops'
%% (`beamprof_scan:top_all/1'; anything else, such as `{error, Reason}',
%% prints as "not scanned"), every line within `width' columns and, with
%% `height', no more lines than that. Pure.
-spec render(Snapshot, Tops, Opts) -> binary() when
      Snapshot :: beamprof_vm:sample() | map(), Tops :: tops() | term(), Opts :: opts().
render(Snapshot, Tops, Opts) ->
    W = maps:get(width, Opts, ?WIDTH),
    Head = lists:append([header(Snapshot, W), notes(Snapshot, Tops, W), schedulers(Snapshot, W),
                         memory(Snapshot, W), counts(Snapshot, W)]),
    Lines = fit_height(Head, Tops, maps:get(rows, Opts, ?ROWS), W,
                       maps:get(height, Opts, infinity)),
    unicode:characters_to_binary([[fit(L, W), $\n] || L <- Lines]).

%% The head, a blank line and the tables, with fewer rows per table while the
%% screen is taller than Height; cut at Height if one row each is still too many.
fit_height(Head, Tops, Rows, W, Height) ->
    Lines = Head ++ ["" | tables(Tops, Rows, W)],
    if
        length(Lines) =< Height -> Lines;
        Rows > 1 -> fit_height(Head, Tops, Rows - 1, W, Height);
        true -> lists:sublist(Lines, Height)
    end.

header(#{window_ms := Window} = S, W) ->
    pack("", "  ", " - ",
         [["beamprof on ", atom_to_binary(node())], fmt("window ~.2f s", [Window / 1000]),
          ["gate ", gate(maps:get(gate, S, #{}))],
          ["system monitor ", monitor(maps:get(system_monitor, S, undefined))]], W).

%% Header lines under the first: where the scan's pids came from (a
%% fallback's reason in parentheses), then the sample's warnings, each
%% wrapped to two lines at most.
notes(Snapshot, Tops, W) ->
    Pids = pids(Tops, W),
    %% the snapshot also carries the periodic scan's pids warnings: said once,
    %% on the pids line, when there is one
    Said = [X || X <- warnings(Snapshot), Pids =:= [] orelse not is_pids_warning(X)],
    Scan = [X || X <- warnings(Tops), not is_pids_warning(X), not lists:member(X, Said)],
    Pids ++ lists:append([note("warning", M, W) || #{message := M} <- Said ++ Scan]).

%% Warnings about where the scan's pids came from: said on the pids line.
is_pids_warning(#{code := Code}) ->
    Code =:= enumeration_fallback orelse Code =:= vm_internals_off.

pids(#{source := Source} = Tops, W) when Source =:= ptab_walk; Source =:= processes_iterator;
                                         Source =:= processes ->
    Why = [beamprof_warnings:short(X) || X <- warnings(Tops), is_pids_warning(X)],
    note("pids", [beamprof_enum:describe(Source), [[" (", lists:join("; ", Why), ")"]
                                                   || Why =/= []]], W);
pids(_, _W) ->
    [].

%% A label and a text wrapped at spaces, on two lines at most (the last
%% cut when more is left).
note(Label, Text, W) ->
    Words = string:lexemes(unicode:characters_to_list(Text), " "),
    case labelled(Label, Words, " ", W) of
        Lines when length(Lines) > ?NOTE_LINES ->
            {Kept, [Last | _]} = lists:split(?NOTE_LINES - 1, Lines),
            Kept ++ [cut(Last, W)];
        Lines ->
            Lines
    end.

warnings(#{warnings := Ws}) when is_list(Ws) -> [X || #{message := M} = X <- Ws, is_binary(M)];
warnings(_) -> [].

%% @private
%% @doc The gate of `beamprof:gate_info/0' as the header shows it: `open',
%% `CLOSED (scheduler 93.0%)', `?' when unknown.
-spec gate(term()) -> unicode:chardata().
gate(#{blind := true} = G) -> [gate(maps:remove(blind, G)), " [blind: scheduler_wall_time]"];
gate(#{state := closed, reason := {Kind, R}}) when is_atom(Kind), is_number(R) ->
    fmt("CLOSED (~ts ~ts)", [Kind, beamprof_format:percent(R)]);
gate(#{state := closed}) -> "CLOSED";
gate(#{state := open}) -> "open";
gate(_) -> "?".

monitor(#{state := active, via := session}) -> "on (trace session)";
monitor(#{state := active}) -> "on";
monitor(#{state := held, holder := Pid}) when is_pid(Pid) ->
    fmt("held by ~ts (not beamprof's)", [pid_to_list(Pid)]);
monitor(#{state := disabled}) -> "off";
monitor(#{state := State}) when is_atom(State) -> atom_to_binary(State);
monitor(_) -> "-".

schedulers(#{schedulers := Rows, utilization := U} = S, W) ->
    Normal = [R || #{type := normal} = R <- Rows],
    Totals = [["total ", pct(maps:get(total, U, undefined))],
              ["normal ", pct(maps:get(normal, U, undefined))],
              fmt("dirty cpu ~ts (~B)", [pct(maps:get(dirty_cpu, U, undefined)),
                                         kind_count(dirty_cpu, Rows)]),
              fmt("dirty io ~ts (~B)", [pct(maps:get(dirty_io, U, undefined)),
                                        kind_count(dirty_io, Rows)]),
              ["os cpu ", pct(maps:get(os_cpu, U, undefined))]],
    scheduler_cells(Normal, W) ++ labelled("", Totals, W)
        ++ run_queues(maps:get(run_queues, S, undefined), W);
schedulers(_, _W) ->
    [].

kind_count(Kind, Rows) -> length([x || #{type := T} <- Rows, T =:= Kind]).

pct(R) -> beamprof_format:percent(R).

%% Up to 16 normal schedulers: a bar each, up to four to a line (the bars
%% as wide as the line allows, 5 to 10 cells); more: a digit each.
scheduler_cells(Normal, W) when length(Normal) =< ?BARS_UP_TO ->
    Room = W - ?LABEL_WIDTH + 2,
    PerLine = max(1, min(min(?BARS_PER_LINE, length(Normal)), Room div 17)),
    Bar = max(1, min(10, Room div PerLine - 12)),
    Cells = [fmt("~2B ~ts ~4ts", [I, beamprof_format:bar(Ut, Bar), whole_percent(Ut)])
             || #{index := I, utilization := Ut} <- Normal],
    lines("schedulers", [lists:join("  ", Line) || Line <- chunks(Cells, PerLine)]);
scheduler_cells(Normal, W) ->
    Label = fmt("sched 1-~B", [length(Normal)]),
    Digits = [digit(Ut) || #{utilization := Ut} <- Normal],
    Lines = chunks(Digits, max(1, min(?DIGITS_PER_LINE, W - width(label_col(Label)) - 4))),
    Shown = lists:sublist(Lines, 2),
    More = case length(Lines) > 2 of true -> " ..."; false -> "" end,
    lines(Label, [[L, case N =:= length(Shown) of true -> More; false -> "" end]
                  || {N, L} <- lists:zip(lists:seq(1, length(Shown)), Shown)]).

lines(Label, [First | Rest]) ->
    Indent = lists:duplicate(width(label_col(Label)), $\s),
    [[label_col(Label), First] | [[Indent, L] || L <- Rest]];
lines(_Label, []) ->
    [].

whole_percent(R) when is_number(R) -> fmt("~B%", [round(R * 100)]);
whole_percent(_) -> "-".

digit(R) when is_number(R) -> $0 + min(9, max(0, trunc(R * 10)));
digit(_) -> $?.

chunks([], _N) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {H, T} = lists:split(N, L), [H | chunks(T, N)].

run_queues(#{total := T, cpu := C, io := IO}, W) ->
    labelled("", [fmt("run queue ~B (cpu ~B, io ~B)", [T, C, IO])], W);
run_queues(_, _W) ->
    [].

%% The VM's resident memory, then the emulator's own account by kind.
memory(#{memory := #{erlang := E} = M}, W) ->
    Kinds = [K || K <- [total, processes, binary, ets, code], maps:is_key(K, E)],
    Rss = [["rss ", bytes(maps:get(rss, M))] || maps:is_key(rss, M)],
    Erlang = [[case K of total -> "erlang total "; _ -> [atom_to_binary(K), " "] end,
               bytes(maps:get(K, E))] || K <- Kinds],
    labelled("memory", Rss ++ Erlang, W) ++ limit(M, W);
memory(_, _W) ->
    [].

%% The limit in force and where it comes from, then the ratio the gate
%% compares with memory_high, named for what it is: RSS over an option's or a
%% cgroup's limit; the machine's memory in use (every process's) over its
%% total when the limit is the machine's (beamprof_nif:memory/0).
limit(#{limit := Limit, ratio := R} = M, W) ->
    Source = maps:get(limit_source, M, undefined),
    labelled("limit", [[bytes(Limit), " (", limit_source(Source), ")"],
                       [ratio_label(Source, R), " ", beamprof_format:bar(R, 10)]], W);
limit(_, _W) ->
    [].

limit_source(option) -> "memory_limit option";
limit_source(cgroup_v2) -> "cgroup v2";
limit_source(cgroup_v1) -> "cgroup v1";
limit_source(machine) -> "machine";
limit_source(_) -> "?".

ratio_label(machine, R) -> ["machine in use ", pct(R)];
ratio_label(Source, R) when Source =:= option; Source =:= cgroup_v2; Source =:= cgroup_v1 ->
    ["rss ", pct(R), " of limit"];
ratio_label(_, R) -> ["used ", pct(R), " of limit"].

counts(#{system := Sys} = S, W) ->
    Rates = maps:get(rates, S, #{}),
    [P, PL, Po, PoL, A, AL] = [count(maps:get(K, Sys, undefined))
                               || K <- [process_count, process_limit, port_count, port_limit,
                                        atom_count, atom_limit]],
    labelled("counts", [["processes ", P, " / ", PL], ["ports ", Po, " / ", PoL],
                        ["atoms ", A, " / ", AL]], W)
        ++ labelled("rates", [[Name, " ", F(maps:get(K, Rates, undefined)), "/s"]
                              || {Name, K, F} <- [{"reductions", reductions, fun count/1},
                                                  {"gc", gc, fun count/1},
                                                  {"io in", io_in, fun bytes/1},
                                                  {"out", io_out, fun bytes/1}]], W);
counts(_, _W) ->
    [].

bytes(N) when is_number(N) -> beamprof_format:bytes(N);
bytes(_) -> "-".

count(N) when is_number(N) -> beamprof_format:count(N);
count(_) -> "-".

%% Lines of a label column (11 wide) and fields, two spaces apart, as many
%% to a line as fit in W; the next lines start under the first field.
labelled(Label, Fields, W) ->
    labelled(Label, Fields, "  ", W).

labelled(Label, Fields, Sep, W) ->
    Col = label_col(Label),
    pack(Col, lists:duplicate(width(Col), $\s), Sep, Fields, W).

label_col(Label) ->
    Text = unicode:characters_to_list(Label),
    [Text, lists:duplicate(max(1, ?LABEL_WIDTH - width(Text)), $\s)].

%% @private
%% @doc `Fields' joined by `Sep' after `Prefix', a line holding as many as fit
%% in `W' columns, the next ones starting with `Indent'; a field too wide for
%% a line of its own is cut.
-spec pack(unicode:chardata(), unicode:chardata(), unicode:chardata(), [unicode:chardata()],
           pos_integer()) -> [unicode:chardata()].
pack(Prefix, Indent, Sep, Fields, W) ->
    pack(Fields, Prefix, [], Indent, Sep, W).

pack([], Prefix, Line, _Indent, Sep, _W) ->
    [[Prefix | lists:join(Sep, lists:reverse(Line))]];
pack([F | Fs], Prefix, [], Indent, Sep, W) ->
    pack(Fs, Prefix, [truncate(F, W - width(Prefix))], Indent, Sep, W);
pack([F | Fs] = All, Prefix, Line, Indent, Sep, W) ->
    Text = [Prefix | lists:join(Sep, lists:reverse(Line))],
    case width(Text) + width(Sep) + width(F) =< W of
        true -> pack(Fs, Prefix, [F | Line], Indent, Sep, W);
        false -> [Text | pack(All, Indent, [], Indent, Sep, W)]
    end.

%% The three tables, with the same column widths so that they line up.
tables(#{message_queue_len := Q, memory := M, reductions := R} = Tops, Rows, W) ->
    Shown = [{message_queue_len, lists:sublist(Q, Rows)}, {memory, lists:sublist(M, Rows)},
             {reductions, lists:sublist(R, Rows)}],
    Cells = [{Key, [cells(Row) || Row <- Rs]} || {Key, Rs} <- Shown],
    Widths = widths(Tops, [C || {_, Cs} <- Cells, C <- Cs], W),
    lists:append(lists:join([""], [table(title(Key, Tops), column_header(Key, Tops), Cs, Widths, W)
                                   || {Key, Cs} <- Cells]));
tables({error, Reason}, _Rows, W) ->
    pack("", "  ", " ", ["processes: not scanned", fmt("(~0tp)", [Reason])], W);
tables(_, _Rows, _W) ->
    ["processes: not scanned"].

table(Title, Header, Cells, Widths, W) ->
    pack("", "  ", "  ", Title, W)
        ++ [row(Header, Widths)
            | case Cells of
                  [] -> ["  (none)"];
                  _ -> [row(C, Widths) || C <- Cells]
              end].

%% @private
%% @doc The lines of one table of process rows (`beamprof:top/2,3''s) under
%% `Title' (fields packed on as many lines as `W' needs), laid out as the
%% tables of `render/3'. A row with a `node' (`beamprof:top/3''s) shows it
%% before the pid, and the pid as that node prints it (`<0.87.0>').
-spec process_table([unicode:chardata()], [map()], pos_integer()) -> [unicode:chardata()].
process_table(Title, Rows, W) ->
    Nodes = [node_cell(Row) || Row <- Rows],
    NodeW = lists:max([width("node") | [width(N) || N <- Nodes]]),
    Cells = [[[pad(N, NodeW, trailing), " ", local_pid(Row)] | tl(cells(Row))]
             || {N, Row} <- lists:zip(Nodes, Rows)],
    [_Pid | Header0] = column_header(message_queue_len, #{}),
    Header = [[pad("node", NodeW, trailing), " pid"] | Header0],
    table(Title, Header, Cells, header_widths(Header, Cells, W), W).

title(message_queue_len, #{scanned := N, skipped := Skipped, duration_us := Us}) ->
    ["top processes by message queue",
     fmt("(~ts scanned in ~ts, memory skipped for ~ts)",
         [count(N), beamprof_format:microseconds(Us), count(Skipped)])];
title(message_queue_len, _) -> ["top processes by message queue"];
title(memory, _) -> ["top processes by memory"];
title(reductions, Tops) -> [["top processes by reductions over the last ", window(Tops)]].

window(#{window_ms := Ms}) when is_number(Ms) -> fmt("~.1fs", [Ms / 1000]);
window(_) -> "the window".

column_header(reductions, Tops) ->
    [<<"pid">>, <<"process">>, {fit, [<<"current function">>, <<"function">>]}, <<"msgq">>,
     <<"memory">>, [<<"reds/">>, window(Tops)]];
column_header(_Key, _Tops) ->
    [<<"pid">>, <<"process">>, {fit, [<<"current function">>, <<"function">>]}, <<"msgq">>,
     <<"memory">>, <<"reds">>].

%% Pid, name and current function (each with the end it keeps when cut),
%% then the numbers (right-aligned).
cells(#{pid := Pid} = Row) ->
    [pid_cell(Row, Pid), name_cell(Row), {'end', mfa(maps:get(current_function, Row, undefined))},
     count(maps:get(message_queue_len, Row, undefined)),
     case maps:get(memory, Row, undefined) of skipped -> "skipped"; Mem -> bytes(Mem) end,
     count(maps:get(reductions, Row, undefined))].

%% A name or a label keeps its start, an initial call its end (the function).
name_cell(#{name := Name} = Row) when is_atom(Name), Name =/= undefined -> {start, name(Row)};
name_cell(#{label := Label} = Row) when Label =/= undefined -> {start, name(Row)};
name_cell(Row) -> {'end', name(Row)}.

pid_text(Pid) when is_pid(Pid) -> pid_to_list(Pid);
pid_text(_) -> "-".

%% A row of a cluster call: the node (cut to 16 columns, padded to the
%% widest in `process_table/3') and the pid as its node prints it,
%% `<0.N.S>' (this node prints `<Index.N.S>', the index meaning nothing to a
%% person).
pid_cell(#{node := Node} = Row, Pid) when is_atom(Node), is_pid(Pid) ->
    [node_cell(Row), " ", local_pid(Row)];
pid_cell(_Row, Pid) ->
    pid_text(Pid).

node_cell(#{node := Node}) when is_atom(Node) -> cut_middle(atom_to_binary(Node), 16);
node_cell(_Row) -> "-".

local_pid(#{pid := Pid}) when is_pid(Pid) ->
    [_Index, Local] = string:split(pid_to_list(Pid), "."),
    ["<0.", Local];
local_pid(#{pid := Pid}) ->
    pid_text(Pid).

%% Widths of the columns: as wide as their cells (headers included), the
%% name and the function sharing what the other columns leave of W (the name
%% three fifths when both need more); the function's is 0 (the column left
%% out) when it would be too narrow.
widths(Tops, Cells, W) ->
    header_widths(column_header(reductions, Tops), Cells, W).

header_widths(Header, Cells, W) ->
    All = [Header | Cells],
    [P, N, F, Q, M, R] = [lists:max([width(text(lists:nth(I, Row))) || Row <- All])
                          || I <- lists:seq(1, 6)],
    Room = W - (12 + P + Q + M + R),
    {NW, FW} = share(N, F, Room),
    [P, NW, FW, Q, M, R].

share(N, F, Room) when N + F =< Room -> {N, F};
share(N, F, Room) when Room >= 2 * ?FUNCTION_MIN ->
    Most = max(Room * 3 div 5, Room - F),     % the name first: it says which process
    {min(N, Most), Room - min(N, Most)};
share(N, _F, Room) -> {max(1, min(N, Room + 2)), 0}.

text({fit, Texts}) -> lists:last(Texts);
text({_End, Text}) -> Text;
text(Text) -> Text.

row([Pid, Name, Function | Numbers], [PW, NW, FW | NumWidths]) ->
    Left = [pad(Pid, PW, trailing), pad(cut_cell(Name, NW), NW, trailing)]
        ++ [pad(cut_cell(Function, FW), FW, trailing) || FW > 0],
    ["  ", lists:join("  ", Left),
     [["  ", pad(C, CW, leading)] || {C, CW} <- lists:zip(Numbers, NumWidths)]].

cut_cell({start, Text}, Width) -> truncate(Text, Width);
cut_cell({'end', Text}, Width) -> truncate_left(Text, Width);
cut_cell({fit, Texts}, Width) ->
    case [T || T <- Texts, width(T) =< Width] of
        [T | _] -> T;
        [] -> truncate(lists:last(Texts), Width)
    end;
cut_cell(Text, Width) -> truncate(Text, Width).

%% @doc How a process is named in a table: its registered name, else its
%% label (`proc_lib:set_label/1', OTP 27+: text as it is, any other term as
%% `~0tp' prints it), else its initial call (proc_lib's `$initial_call' as the
%% scan reports it), else "-".
-spec name(map()) -> unicode:chardata().
name(#{name := Name}) when is_atom(Name), Name =/= undefined -> atom_to_binary(Name);
name(#{label := Label}) when Label =/= undefined -> label(Label);
name(#{initial_call := {_, _, _} = MFA}) -> mfa(MFA);
name(_) -> "-".

%% A label on one line: an atom, a string or a UTF-8 binary of printable
%% characters as they are; anything else as ~0tp prints it.
label(Label) when is_atom(Label) -> atom_to_binary(Label);
label(Label) ->
    case printable(Label) of
        {true, Chars} -> Chars;
        false -> fmt("~0tp", [Label])
    end.

printable(Text) when is_binary(Text); is_list(Text) ->
    try unicode:characters_to_list(Text) of
        [_ | _] = Chars ->
            case lists:all(fun(C) -> C >= $\s end, Chars)
                andalso io_lib:printable_unicode_list(Chars) of
                true -> {true, Chars};
                false -> false
            end;
        _ -> false
    catch error:_ -> false
    end;
printable(_) -> false.

%% @doc `{M, F, A}' as `"M:F/A"' (an Elixir module without its `Elixir.'
%% prefix); anything else as "-".
-spec mfa(term()) -> unicode:chardata().
mfa({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
    [module(atom_to_binary(M)), $:, atom_to_binary(F), $/, integer_to_binary(A)];
mfa(_) -> "-".

module(<<"Elixir.", Name/binary>>) when Name =/= <<>> -> Name;
module(Name) -> Name.

%% Text helpers: display width (East Asian wide characters take two
%% columns), truncation with "..", padding by width.

%% @doc Columns `Text' takes on a terminal: one per character, two for East
%% Asian wide ones.
-spec width(unicode:chardata()) -> non_neg_integer().
width(Text) ->
    lists:sum([char_width(C) || C <- unicode:characters_to_list(Text)]).

char_width(C) when C >= 16#1100, C =< 16#115F; C >= 16#2E80, C =< 16#A4CF;
                   C >= 16#AC00, C =< 16#D7A3; C >= 16#F900, C =< 16#FAFF;
                   C >= 16#FE30, C =< 16#FE4F; C >= 16#FF00, C =< 16#FF60;
                   C >= 16#FFE0, C =< 16#FFE6; C >= 16#1F300, C =< 16#1F64F;
                   C >= 16#1F900, C =< 16#1F9FF; C >= 16#20000, C =< 16#3FFFD -> 2;
char_width(_) -> 1.

%% @private
%% @doc `Text' within `Max' columns: as it is when it fits, else its start
%% and "..". Names keep their start; functions keep their end
%% (`truncate_left/2').
-spec truncate(unicode:chardata(), integer()) -> string().
truncate(Text, Max) ->
    Chars = unicode:characters_to_list(Text),
    case width(Chars) =< Max of
        true -> Chars;
        false when Max < 3 -> take(Chars, max(0, Max));
        false -> take(Chars, Max - 2) ++ ?CUT
    end.

truncate_left(Text, Max) ->
    Chars = unicode:characters_to_list(Text),
    case width(Chars) =< Max of
        true -> Chars;
        false when Max < 3 -> lists:reverse(take(lists:reverse(Chars), max(0, Max)));
        false -> ?CUT ++ lists:reverse(take(lists:reverse(Chars), Max - 2))
    end.

%% Text that goes on: ".." after as much as fits in Max columns with it.
cut(Text, Max) ->
    take(unicode:characters_to_list(Text), max(0, Max - 2)) ++ ?CUT.

%% @private
%% @doc `Text' within `Max' columns: as it is when it fits, else its start
%% and its end around "..": for node names, which differ at either end
%% (`app@host-1', `peer-12-4242@host').
-spec cut_middle(unicode:chardata(), integer()) -> string().
cut_middle(Text, Max) ->
    Chars = unicode:characters_to_list(Text),
    case width(Chars) =< Max of
        true -> Chars;
        false when Max < 5 -> truncate(Chars, Max);
        false ->
            Head = (Max - 2) div 2,
            take(Chars, Head) ++ ?CUT ++ lists:reverse(take(lists:reverse(Chars), Max - 2 - Head))
    end.

%% @private
%% @doc A line within `W' columns, cut if it is wider.
-spec fit(unicode:chardata(), integer()) -> string().
fit(Line, W) ->
    truncate(Line, W).

take([C | Rest], Left) ->
    case char_width(C) of
        W when W =< Left -> [C | take(Rest, Left - W)];
        _ -> []
    end;
take([], _) -> [].

%% @private
%% @doc `Text' padded with spaces to `Width' columns: after it (`trailing') or
%% before it (`leading').
-spec pad(unicode:chardata(), integer(), trailing | leading) -> unicode:chardata().
pad(Text, Width, Dir) ->
    Fill = lists:duplicate(max(0, Width - width(Text)), $\s),
    case Dir of
        trailing -> [Text, Fill];
        leading -> [Fill, Text]
    end.

fmt(Format, Args) ->
    io_lib:format(Format, Args).

%% Printing

%% @doc Prints `Text' (UTF-8) on the caller's group leader so that it reads
%% right on a UTF-8 terminal whatever the device's mode: through
%% `io:put_chars/1' when the device is in unicode mode, as bytes when it is in
%% latin1 mode (`erl -noshell', escripts and shells without a UTF-8 locale,
%% where `io:put_chars/1' would print `\\x{43F}' for a Cyrillic name).
-spec print(unicode:chardata()) -> ok.
print(Text) ->
    Bin = unicode:characters_to_binary(Text),
    case encoding() of
        unicode -> io:put_chars(Bin);
        latin1 -> ok = file:write(group_leader(), Bin)
    end.

encoding() ->
    case io:getopts() of
        Opts when is_list(Opts) ->
            case lists:keyfind(encoding, 1, Opts) of
                {encoding, latin1} -> latin1;
                _ -> unicode
            end;
        _ ->
            unicode
    end.

%% Live

-define(HIDE_CURSOR, "\e[?25l").
-define(SHOW_CURSOR, "\e[?25h").
-define(CLEAR_SCREEN, "\e[2J").
-define(HOME, "\e[H").
-define(CLEAR_LINE_END, "\e[K").
-define(CLEAR_BELOW, "\e[J").

%% @doc Prints `Frame(Geometry)' (the text of one screen laid out for
%% `Geometry': `#{width, height}') in place every `interval' ms (default 1000)
%% until a line is read from the caller's group leader (Enter, or q and
%% Enter) or it reaches end of file. The size is read again for each frame:
%% `width' from `Opts', else the terminal's columns (`columns/0'); `height'
%% from `Opts', else the terminal's rows (`io:rows/0', 50 when the device does
%% not say), less the status line under the frame. Lines past the height are
%% dropped and wider lines cut, so the frame's first line stays on screen.
%% The line is read by a linked process of its own, killed on the way out
%% whatever happens; the cursor is shown again. Returns `ok'.
-spec live(Frame, Opts) -> ok when
      Frame :: fun((geometry()) -> unicode:chardata()), Opts :: opts().
live(Frame, Opts) ->
    Interval = maps:get(interval, Opts, 1000),
    Self = self(),
    Ref = make_ref(),
    Reader = spawn_link(fun() -> Self ! {Ref, io:get_line("")} end),
    print([?HIDE_CURSOR, ?CLEAR_SCREEN]),
    try
        loop(Frame, Opts, Interval, Ref)
    after
        unlink(Reader),
        exit(Reader, kill),
        receive {Ref, _} -> ok after 0 -> ok end,
        print([?SHOW_CURSOR, "\n"])
    end.

loop(Frame, Opts, Interval, Ref) ->
    W = case Opts of #{width := Width} -> Width; _ -> columns() end,
    H = case Opts of #{height := Height} -> Height; _ -> rows() end - 1,
    Text = unicode:characters_to_binary(Frame(#{width => W, height => max(1, H)})),
    Lines = lists:sublist(string:split(string:trim(Text, trailing, "\n"), "\n", all), H),
    Status = fmt("refreshing every ~.1f s; press Enter (or q Enter) to stop", [Interval / 1000]),
    print([?HOME, [[fit(L, W), ?CLEAR_LINE_END, "\n"] || L <- Lines], ?CLEAR_BELOW,
           fit(Status, W)]),
    receive
        {Ref, _Line} -> ok
    after Interval ->
        loop(Frame, Opts, Interval, Ref)
    end.
