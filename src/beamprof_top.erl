%% @doc What `beamprof:top()' prints: one screen for a person at a terminal.
%%
%% `render/3' is pure: it takes the sample `beamprof:snapshot()' returns and
%% the three tables of `beamprof_scan:top_all/1', and returns the text as a
%% UTF-8 binary, so that it prints correctly whether the shell's device is in
%% unicode or latin1 mode (names may hold any character). At most about 35
%% lines and 100 columns: a header (node, window, gate, system monitor;
%% where the scan's pids came from, and any warning of the sample or the
%% scan, see `beamprof_warnings'),
%% scheduler utilization (a bar per normal scheduler up to 16, one digit per
%% scheduler beyond: 0 = under 10%, 9 = 90% or more), the totals, memory by
%% kind and against the limit, counts and rates, then the top processes by
%% message queue, by memory and by reductions over the scan's window.
%%
%% `live/2' redraws a frame in place (ANSI cursor home and line clears) every
%% interval until the user presses Enter (or types q and Enter): a shell in
%% cooked mode hands a program whole lines only, so no single key can stop
%% it. The line is read by a process of its own, which never outlives the
%% call.
-module(beamprof_top).

-export([render/3, print/1, live/2, name/1, mfa/1, width/1]).

-export_type([tops/0, opts/0]).

-type tops() :: beamprof_scan:tops().
-type opts() :: #{rows => pos_integer(), interval => pos_integer()}.
%% `rows': rows per table (default 5); `interval': ms between frames of
%% `live/2' (default 1000).

-define(ROWS, 5).
-define(BARS_UP_TO, 16).
-define(DIGITS_PER_LINE, 64).
-define(NAME_MAX, 24).
-define(FUNCTION_MAX, 27).
-define(LABEL, "~-11s").
-define(NOTE_MAX, 88).     % a header note after its label, in columns

%% Rendering

%% @doc The screen for `Snapshot' (`beamprof:snapshot()') and `Tops'
%% (`beamprof_scan:top_all/1'; anything else, such as `{error, Reason}',
%% prints as "not scanned"). Pure.
-spec render(Snapshot, Tops, Opts) -> binary() when
      Snapshot :: beamprof_vm:sample() | map(), Tops :: tops() | term(), Opts :: opts().
render(Snapshot, Tops, Opts) ->
    Text = [header(Snapshot), notes(Snapshot, Tops), schedulers(Snapshot), memory(Snapshot),
            counts(Snapshot),
            "\n", tables(Tops, maps:get(rows, Opts, ?ROWS))],
    unicode:characters_to_binary(Text).

header(#{window_ms := Window} = S) ->
    fmt("beamprof on ~ts - window ~.2f s - gate ~ts - system monitor ~ts~n",
        [atom_to_binary(node()), Window / 1000, gate(maps:get(gate, S, #{})),
         monitor(maps:get(system_monitor, S, undefined))]).

%% Header lines under the first: where the scan's pids came from (a
%% fallback's reason in parentheses), then the sample's warnings, one a line.
%% Each cut to the screen's width.
notes(Snapshot, Tops) ->
    Pids = pids(Tops),
    %% the snapshot also carries the periodic scan's pids warnings: said once,
    %% on the pids line, when there is one
    Said = [W || W <- warnings(Snapshot), Pids =:= [] orelse not is_pids_warning(W)],
    Scan = [W || W <- warnings(Tops), not is_pids_warning(W), not lists:member(W, Said)],
    [Pids | [note("warning", M) || #{message := M} <- Said ++ Scan]].

%% Warnings about where the scan's pids came from: said on the pids line.
is_pids_warning(#{code := Code}) ->
    Code =:= enumeration_fallback orelse Code =:= vm_internals_off.

pids(#{source := Source} = Tops) when Source =:= ptab_walk; Source =:= processes_iterator;
                                      Source =:= processes ->
    Why = [beamprof_warnings:short(W) || W <- warnings(Tops), is_pids_warning(W)],
    note("pids", [beamprof_enum:describe(Source), [[" (", lists:join("; ", Why), ")"]
                                                   || Why =/= []]]);
pids(_) ->
    [].

note(Label, Text) ->
    fmt(?LABEL "~ts~n", [Label, truncate(Text, ?NOTE_MAX)]).

warnings(#{warnings := Ws}) when is_list(Ws) -> [W || #{message := M} = W <- Ws, is_binary(M)];
warnings(_) -> [].

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

schedulers(#{schedulers := Rows, utilization := U} = S) ->
    Normal = [R || #{type := normal} = R <- Rows],
    [scheduler_cells(Normal),
     fmt(?LABEL "total ~ts  normal ~ts  dirty cpu ~ts (~B)  dirty io ~ts (~B)  os cpu ~ts~n",
         ["", pct(maps:get(total, U, undefined)), pct(maps:get(normal, U, undefined)),
          pct(maps:get(dirty_cpu, U, undefined)), kind_count(dirty_cpu, Rows),
          pct(maps:get(dirty_io, U, undefined)), kind_count(dirty_io, Rows),
          pct(maps:get(os_cpu, U, undefined))]),
     run_queues(maps:get(run_queues, S, undefined))];
schedulers(_) ->
    [].

kind_count(Kind, Rows) -> length([x || #{type := T} <- Rows, T =:= Kind]).

pct(R) -> beamprof_format:percent(R).

%% Up to 16 normal schedulers: a bar each, four to a line; more: a digit each.
scheduler_cells(Normal) when length(Normal) =< ?BARS_UP_TO ->
    Cells = [fmt("~2B ~ts ~4ts", [I, beamprof_format:bar(Ut, 8), whole_percent(Ut)])
             || #{index := I, utilization := Ut} <- Normal],
    lines("schedulers", [lists:join("  ", Line) || Line <- chunks(Cells, 4)]);
scheduler_cells(Normal) ->
    Digits = [digit(Ut) || #{utilization := Ut} <- Normal],
    Lines = chunks(Digits, ?DIGITS_PER_LINE),
    Shown = lists:sublist(Lines, 2),
    More = case length(Lines) > 2 of true -> " ..."; false -> "" end,
    lines(fmt("sched 1-~B", [length(Normal)]),
          [[L, case N =:= length(Shown) of true -> More; false -> "" end]
           || {N, L} <- lists:zip(lists:seq(1, length(Shown)), Shown)]).

lines(Label, [First | Rest]) ->
    [fmt(?LABEL "~ts~n", [Label, First]) | [fmt(?LABEL "~ts~n", ["", L]) || L <- Rest]];
lines(_Label, []) ->
    [].

whole_percent(R) when is_number(R) -> fmt("~B%", [round(R * 100)]);
whole_percent(_) -> "-".

digit(R) when is_number(R) -> $0 + min(9, max(0, trunc(R * 10)));
digit(_) -> $?.

chunks([], _N) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {H, T} = lists:split(N, L), [H | chunks(T, N)].

run_queues(#{total := T, cpu := C, io := IO}) ->
    fmt(?LABEL "run queue ~B (cpu ~B, io ~B)~n", ["", T, C, IO]);
run_queues(_) ->
    [].

memory(#{memory := #{erlang := E} = M}) ->
    Kinds = [K || K <- [total, processes, binary, ets, code], maps:is_key(K, E)],
    [fmt(?LABEL "~ts~n", ["memory", lists:join("  ", [[atom_to_binary(K), " ", bytes(maps:get(K, E))]
                                                       || K <- Kinds])]),
     limit(M)];
memory(_) ->
    [].

limit(#{rss := Rss, limit := Limit, ratio := R} = M) ->
    fmt(?LABEL "rss ~ts of ~ts (~ts limit) ~ts ~ts~n",
        ["", bytes(Rss), bytes(Limit), maps:get(limit_source, M, "?"),
         beamprof_format:bar(R, 20), pct(R)]);
limit(_) ->
    [].

counts(#{system := Sys} = S) ->
    Rates = maps:get(rates, S, #{}),
    [fmt(?LABEL "processes ~ts / ~ts  ports ~ts / ~ts  atoms ~ts / ~ts~n",
         ["counts" | [count(maps:get(K, Sys, undefined))
                      || K <- [process_count, process_limit, port_count, port_limit,
                               atom_count, atom_limit]]]),
     fmt(?LABEL "reductions ~ts/s  gc ~ts/s  io in ~ts/s  out ~ts/s~n",
         ["rates" | [F(maps:get(K, Rates, undefined))
                     || {K, F} <- [{reductions, fun count/1}, {gc, fun count/1},
                                   {io_in, fun bytes/1}, {io_out, fun bytes/1}]]])];
counts(_) ->
    [].

bytes(N) when is_number(N) -> beamprof_format:bytes(N);
bytes(_) -> "-".

count(N) when is_number(N) -> beamprof_format:count(N);
count(_) -> "-".

%% The three tables, with the same column widths so that they line up.
tables(#{message_queue_len := Q, memory := M, reductions := R} = Tops, Rows) ->
    Shown = [{message_queue_len, lists:sublist(Q, Rows)}, {memory, lists:sublist(M, Rows)},
             {reductions, lists:sublist(R, Rows)}],
    Cells = [{Key, [cells(Row) || Row <- Rs]} || {Key, Rs} <- Shown],
    Widths = widths(Tops, [C || {_, Cs} <- Cells, C <- Cs]),
    lists:join("\n", [table(Key, Cs, Tops, Widths) || {Key, Cs} <- Cells]);
tables({error, Reason}, _Rows) ->
    fmt("processes: not scanned (~0tp)~n", [Reason]);
tables(_, _Rows) ->
    "processes: not scanned\n".

table(Key, Cells, Tops, Widths) ->
    [title(Key, Tops),
     row(header(Key, Tops), Widths),
     case Cells of
         [] -> "  (none)\n";
         _ -> [row(C, Widths) || C <- Cells]
     end].

title(message_queue_len, #{scanned := N, skipped := Skipped, duration_us := Us}) ->
    fmt("top processes by message queue  (~ts scanned in ~ts, memory skipped for ~ts)~n",
        [count(N), beamprof_format:microseconds(Us), count(Skipped)]);
title(message_queue_len, _) -> "top processes by message queue\n";
title(memory, _) -> "top processes by memory\n";
title(reductions, Tops) -> fmt("top processes by reductions over the last ~ts~n", [window(Tops)]).

window(#{window_ms := Ms}) when is_number(Ms) -> fmt("~.1fs", [Ms / 1000]);
window(_) -> "the window".

header(reductions, Tops) -> ["pid", "process", "current function", "msgq", "memory",
                             ["reds/", window(Tops)]];
header(_Key, _Tops) -> ["pid", "process", "current function", "msgq", "memory", "reds"].

%% Pid, name, current function, then the numbers (right-aligned).
cells(#{pid := Pid} = Row) ->
    [pid_text(Pid), name_cell(Row),
     truncate_left(mfa(maps:get(current_function, Row, undefined)), ?FUNCTION_MAX),
     count(maps:get(message_queue_len, Row, undefined)),
     case maps:get(memory, Row, undefined) of skipped -> "skipped"; Mem -> bytes(Mem) end,
     count(maps:get(reductions, Row, undefined))].

%% A name or a label keeps its start, an initial call its end (the function).
name_cell(#{name := Name} = Row) when is_atom(Name), Name =/= undefined ->
    truncate(name(Row), ?NAME_MAX);
name_cell(#{label := Label} = Row) when Label =/= undefined ->
    truncate(name(Row), ?NAME_MAX);
name_cell(Row) ->
    truncate_left(name(Row), ?NAME_MAX).

pid_text(Pid) when is_pid(Pid) -> pid_to_list(Pid);
pid_text(_) -> "-".

widths(Tops, Cells) ->
    All = [[unicode:characters_to_list(C) || C <- header(reductions, Tops)] | Cells],
    [lists:max([width(lists:nth(I, Row)) || Row <- All]) || I <- lists:seq(1, 6)].

row(Cells, Widths) ->
    {Left, Right} = lists:split(3, lists:zip(Cells, Widths)),
    ["  ", lists:join("  ", [pad(C, W, trailing) || {C, W} <- Left]),
     [["  ", pad(C, W, leading)] || {C, W} <- Right], "\n"].

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

%% Names keep their start; functions keep their end (the function and arity).
truncate(Text, Max) ->
    Chars = unicode:characters_to_list(Text),
    case width(Chars) =< Max of
        true -> Chars;
        false -> take(Chars, Max - 2) ++ ".."
    end.

truncate_left(Text, Max) ->
    Chars = unicode:characters_to_list(Text),
    case width(Chars) =< Max of
        true -> Chars;
        false -> ".." ++ lists:reverse(take(lists:reverse(Chars), Max - 2))
    end.

take([C | Rest], Left) ->
    case char_width(C) of
        W when W =< Left -> [C | take(Rest, Left - W)];
        _ -> []
    end;
take([], _) -> [].

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

%% @doc Prints `Frame()' (the text of one screen) in place every `interval'
%% ms (default 1000) until a line is read from the caller's group leader
%% (Enter, or q and Enter) or it reaches end of file. The line is read by a
%% linked process of its own, killed on the way out whatever happens; the
%% cursor is shown again. Returns `ok'.
-spec live(Frame, Opts) -> ok when Frame :: fun(() -> unicode:chardata()), Opts :: opts().
live(Frame, Opts) ->
    Interval = maps:get(interval, Opts, 1000),
    Self = self(),
    Ref = make_ref(),
    Reader = spawn_link(fun() -> Self ! {Ref, io:get_line("")} end),
    print([?HIDE_CURSOR, ?CLEAR_SCREEN]),
    try
        loop(Frame, Interval, Ref)
    after
        unlink(Reader),
        exit(Reader, kill),
        receive {Ref, _} -> ok after 0 -> ok end,
        print([?SHOW_CURSOR, "\n"])
    end.

loop(Frame, Interval, Ref) ->
    Lines = binary:split(unicode:characters_to_binary(Frame()), <<"\n">>, [global]),
    print([?HOME, lists:join([?CLEAR_LINE_END, "\n"], Lines), ?CLEAR_BELOW,
                  io_lib:format("refreshing every ~.1f s; press Enter (or q Enter) to stop",
                                [Interval / 1000])]),
    receive
        {Ref, _Line} -> ok
    after Interval ->
        loop(Frame, Interval, Ref)
    end.
