%% beamprof:top/0 and top(live) against a real VM, their output captured by a
%% group leader stand-in (a process speaking the I/O protocol): what is
%% printed, in which encoding, that live mode redraws until a line is read,
%% and that its reader process never outlives the call.
-module(beamprof_top_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).
-import(beamprof_ct, [wait_until/2, wait_events/2]).

all() ->
    [top_prints_one_screen, top_names_hot_processes, top_names_labelled_process, top_not_started,
     print_utf8_on_both_encodings, top_fits_every_width, top_follows_terminal_width,
     top_width_option, live_fits_80x50, live_cuts_to_short_terminal,
     live_redraws_until_a_line, live_stops_at_eof, live_reader_killed_on_error].

init_per_suite(Config) ->
    {module, beamprof_nif} = code:ensure_loaded(beamprof_nif),
    Config.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = beamprof:stop().

%% --- cases ------------------------------------------------------------------------

top_prints_one_screen(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_sample(),
    %% the stand-in is no terminal: 80 columns
    {ok, Text} = captured(fun beamprof:top/0, #{}),
    Lines = string:split(string:trim(Text, trailing), "\n", all),
    ?assert(length(Lines) =< 40),
    [?assert(beamprof_top:width(L) =< 80) || L <- Lines],
    [?assertNotEqual(nomatch, string:find(Text, W), W)
     || W <- [atom_to_list(node()), "gate open", "system monitor on", "schedulers", "memory",
              "rss", "erlang total", "limit", "counts", "rates"]].

%% Known hot processes (a long mailbox, a large heap, a spinning loop), each
%% registered: beamprof:top() names each in its table, with its figure.
top_names_hot_processes(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_sample(),
    Mailbox = spawn_link(fun() -> register(bp_top_mailbox, self()), receive stop -> ok end end),
    [Mailbox ! {msg, I} || I <- lists:seq(1, 50000)],
    Heap = spawn_link(fun() -> register(bp_top_heap, self()),
                               L = lists:seq(1, 2000000),
                               receive stop -> length(L) end
                      end),
    Spinner = spawn_link(fun() -> register(bp_top_spinner, self()), spin(0) end),
    try
        wait_until(fun() -> {memory, M} = erlang:process_info(Heap, memory),
                            M > 30 * 1024 * 1024 end, 10000),
        {ok, Text} = captured(fun beamprof:top/0, #{}),
        ct:log("~ts", [Text]),
        Tables = split_tables(Text),
        ?assertEqual(3, length(Tables), Text),
        [Queue, Memory, Reductions] = Tables,
        [QLine | _] = rows_of(Queue),
        ?assertNotEqual(nomatch, string:find(QLine, "bp_top_mailbox"), Text),
        ?assertNotEqual(nomatch, string:find(QLine, "50.0k"), Text),
        [MLine | _] = rows_of(Memory),
        ?assertNotEqual(nomatch, string:find(MLine, "bp_top_heap"), Text),
        ?assertNotEqual(nomatch, string:find(MLine, " MiB"), Text),
        ?assertNotEqual(nomatch, string:find(Reductions, "bp_top_spinner"), Text)
    after
        [begin unlink(P), exit(P, kill) end || P <- [Mailbox, Heap, Spinner]]
    end.

spin(N) -> spin(N + 1).

%% A process with no registered name, labelled (proc_lib:set_label/1, OTP 27+) and with the
%% longest mailbox: top() names it by its label. OTP 25 and 26 have no labels: it is named by
%% its initial call there.
top_names_labelled_process(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_sample(),
    Self = self(),
    P = proc_lib:spawn_link(fun() -> beamprof_ct:set_label({bp_top_label, 1}),
                                     Self ! {labelled, self()},
                                     receive stop -> ok end end),
    receive {labelled, P} -> ok after 10000 -> ct:fail(not_started) end,
    [P ! {msg, I} || I <- lists:seq(1, 60000)],
    try
        %% wide enough for the whole label and a long pid: the name is
        %% checked here, its cut at 80 columns in top_fits_every_width
        {ok, Text} = captured(fun() -> beamprof:top(#{width => 132}) end, #{}),
        ct:log("~ts", [Text]),
        [Queue | _] = split_tables(Text),
        [QLine | _] = rows_of(Queue),
        ?assertNotEqual(nomatch, string:find(QLine, pid_to_list(P)), Text),
        case beamprof_ct:labels() of
            true -> ?assertNotEqual(nomatch, string:find(QLine, "{bp_top_label,1}"), Text);
            false ->
                %% The initial call (the fun), cut at its start to keep the function.
                ?assertNotEqual(nomatch, string:find(QLine, "_process/1-fun-0-/0"), Text),
                ?assertEqual(nomatch, string:find(QLine, "bp_top_label"), Text)
        end,
        [Row] = [R || #{pid := Pid} = R <- beamprof:top(message_queue_len, 5), Pid =:= P],
        Label = case beamprof_ct:labels() of true -> {bp_top_label, 1}; false -> undefined end,
        ?assertEqual(Label, maps:get(label, Row))
    after
        unlink(P),
        exit(P, kill)
    end.

%% The three tables' texts, each from its "top processes" title on.
split_tables(Text) ->
    [_ | Tables] = string:split(Text, "top processes", all),
    Tables.

%% The data rows of a table: after its title and column header.
rows_of(Table) ->
    [_Title, _Header | Rows] = string:split(string:trim(Table, trailing), "\n", all),
    Rows.

top_not_started(_Config) ->
    ?assertEqual({error, not_started}, beamprof:top()),
    ?assertEqual({error, not_started}, beamprof:top(live)).

%% A real snapshot and scan with long registered names (one of them in
%% Cyrillic and Japanese), a long label, and 64 schedulers (the node's own
%% rows, repeated): at 60, 80 and 132 columns every line fits, and each of
%% those processes still has its row, named by the start of its name.
top_fits_every_width(_Config) ->
    with_long_names(
      fun(Procs) ->
          Snapshot = with_schedulers(beamprof:snapshot(), 64),
          Tops = beamprof_scan:top_all(5),
          [begin
               Text = unicode:characters_to_list(beamprof_top:render(Snapshot, Tops,
                                                                     #{width => W})),
               ct:log("~B columns:~n~ts", [W, Text]),
               Lines = string:split(string:trim(Text, trailing), "\n", all),
               ?assertEqual([], [L || L <- Lines, beamprof_top:width(L) > W]),
               ?assertNotEqual(nomatch, string:find(Text, "sched 1-64")),
               [?assertNotEqual([], [L || L <- Lines, string:find(L, pid_to_list(P)) =/= nomatch,
                                          string:find(L, Start) =/= nomatch], {W, Start})
                || {P, Start} <- Procs]
           end || W <- [60, 80, 132]]
      end).

%% beamprof:top() lays out for the caller's terminal: its columns as the
%% group leader answers io:columns().
top_follows_terminal_width(_Config) ->
    with_long_names(
      fun(_Procs) ->
          [begin
               {ok, Text} = captured(fun beamprof:top/0, #{columns => W}),
               Lines = string:split(string:trim(Text, trailing), "\n", all),
               ?assertEqual([], [L || L <- Lines, beamprof_top:width(L) > W]),
               %% laid out for W, not for the narrowest
               ?assert(lists:max([beamprof_top:width(L) || L <- Lines]) > W - 10, Text)
           end || W <- [60, 80, 132]]
      end).

%% top(#{width => N}) over the terminal's; a bad width or an unknown option
%% raises badarg naming it.
top_width_option(_Config) ->
    with_long_names(
      fun(_Procs) ->
          {ok, Text} = captured(fun() -> beamprof:top(#{width => 100}) end, #{columns => 132}),
          Lines = string:split(string:trim(Text, trailing), "\n", all),
          Widest = lists:max([beamprof_top:width(L) || L <- Lines]),
          ?assert(Widest =< 100 andalso Widest > 90, Text),
          ?assertError({badarg, "Expected option width to be an integer of at least 60" ++ _},
                       beamprof:top(#{width => 40})),
          ?assertError({badarg, "Unknown option colour" ++ _}, beamprof:top([{colour, true}]))
      end).

%% The live view on an 80x50 terminal: its first frame (status line
%% included) is at most 50 lines of at most 80 columns, the header first.
live_fits_80x50(_Config) ->
    with_long_names(
      fun(_Procs) ->
          Frame = first_live_frame(fun() -> beamprof:top(live) end, 80, 50),
          fits(Frame, 80, 50),
          ?assertEqual(3, titles(Frame))
      end).

%% A terminal too short for the whole screen (80x24, and a frame of 64
%% schedulers and 10 rows a table): the tables lose rows, the header stays
%% the first line.
live_cuts_to_short_terminal(_Config) ->
    with_long_names(
      fun(_Procs) ->
          fits(first_live_frame(fun() -> beamprof:top(live) end, 80, 24), 80, 24),
          Snapshot = with_schedulers(beamprof:snapshot(), 64),
          Tops = beamprof_scan:top_all(10),
          Tall = fun(Geometry) -> beamprof_top:render(Snapshot, Tops, Geometry#{rows => 10}) end,
          Full = string:split(beamprof_top:render(Snapshot, Tops, #{rows => 10}), "\n", all),
          ?assert(length(Full) > 40),
          Frame = first_live_frame(fun() -> beamprof_top:live(Tall, #{}) end, 80, 40),
          fits(Frame, 80, 40),
          %% rows went, not tables: all three titles are on screen
          ?assertEqual(3, titles(Frame))
      end).

%% A name outside latin1 reaches a UTF-8 terminal intact: as unicode on a
%% unicode device, as its UTF-8 bytes on a latin1 one.
print_utf8_on_both_encodings(_Config) ->
    Name = <<"процесс_日本"/utf8>>,
    {ok, Unicode} = captured(fun() -> beamprof_top:print([Name, "\n"]) end, #{}),
    ?assertEqual(unicode:characters_to_list(<<Name/binary, "\n">>), Unicode),
    GL = start_gl(#{encoding => latin1}),
    ok = with_gl(GL, fun() -> beamprof_top:print([Name, "\n"]) end),
    ?assertEqual([{latin1, <<Name/binary, "\n">>}], requests(GL)),
    stop_gl(GL).

%% The stand-in answers the reader's get_line after the third frame.
live_redraws_until_a_line(_Config) ->
    ok = beamprof:start(#{interval => 200}),
    wait_sample(),
    GL = start_gl(#{answer_after => 3}),
    Self = self(),
    Caller = spawn_link(fun() -> group_leader(GL, self()),
                                 Self ! {live, beamprof_top:live(fun frame/1, #{interval => 50})}
                        end),
    receive {live, Result} -> ?assertEqual(ok, Result)
    after 10000 -> ct:fail(live_did_not_stop)
    end,
    Text = output(GL),
    Frames = length(string:split(Text, "\e[H", all)) - 1,
    ?assert(Frames >= 3),
    ?assertNotEqual(nomatch, string:find(Text, "\e[?25l")),
    ?assert(lists:suffix("\e[?25h\n", Text)),
    ?assertNotEqual(nomatch, string:find(Text, "press Enter")),
    ?assertNotEqual(nomatch, string:find(Text, "system monitor on")),
    wait_until(fun() -> not is_process_alive(Caller) end, 5000),
    ?assertEqual([], others_of(GL)),
    stop_gl(GL).

%% A device at end of file (no terminal): one frame, then back.
live_stops_at_eof(_Config) ->
    GL = start_gl(#{answer_after => 0, answer => eof}),
    ok = with_gl(GL, fun() -> beamprof_top:live(fun(_) -> "frame\n" end, #{interval => 10000}) end),
    ?assertEqual(1, length(string:split(output(GL), "frame", all)) - 1),
    ?assertEqual([], others_of(GL)),
    stop_gl(GL).

%% A frame that raises: the reader, blocked in get_line, is killed and the
%% cursor is shown again.
live_reader_killed_on_error(_Config) ->
    GL = start_gl(#{answer_after => 1000}),
    Result = with_gl(GL, fun() ->
                                 try beamprof_top:live(fun(_) -> error(boom) end, #{})
                                 catch error:boom -> raised
                                 end
                         end),
    ?assertEqual(raised, Result),
    ?assert(lists:suffix("\e[?25h\n", output(GL))),
    wait_until(fun() -> others_of(GL) =:= [] end, 5000),
    stop_gl(GL).

%% --- helpers ----------------------------------------------------------------------

frame(Geometry) ->
    case beamprof:snapshot() of
        {error, _} -> "not running\n";
        S -> beamprof_top:render(S, {error, none}, Geometry)
    end.

%% Processes that top()'s tables show (the longest mailboxes of the node),
%% with long names: registered in ASCII, registered in Cyrillic and
%% Japanese, and labelled (OTP 27+; named by their initial call before).
%% [{Pid, the start of its name}].
long_named_processes() ->
    Self = self(),
    Named = [{'beamprof_top_suite_a_registered_name_well_past_any_column_0123456789', 30000},
             {'процесс_с_очень_длинным_именем_日本語の名前_とても長い名前', 25000}],
    Registered = [{spawn_mailbox(fun() -> register(Name, self()) end, Self, N),
                   string:slice(atom_to_list(Name), 0, 6)} || {Name, N} <- Named],
    Label = {bp_top_long_label, <<"a label that runs on far past the width of any column">>},
    Labelled = spawn_mailbox(fun() -> beamprof_ct:set_label(Label) end, Self, 20000),
    Start = case beamprof_ct:labels() of true -> "{bp_top_lo"; false -> "" end,
    Registered ++ [{Labelled, Start}].

spawn_mailbox(Init, Parent, N) ->
    P = proc_lib:spawn_link(fun() -> Init(), Parent ! {ready, self()},
                                     receive stop -> ok end end),
    receive {ready, P} -> ok after 10000 -> ct:fail(not_started) end,
    [P ! {msg, I} || I <- lists:seq(1, N)],
    P.

%% Runs Fun(Procs) with beamprof started and long_named_processes/0's
%% processes, killed after.
with_long_names(Fun) ->
    ok = beamprof:start(#{interval => 200}),
    wait_sample(),
    Procs = long_named_processes(),
    try Fun(Procs)
    after [begin unlink(P), exit(P, kill) end || {P, _} <- Procs]
    end.

%% The sample with N normal schedulers: the node's own rows, repeated and
%% numbered 1..N, the dirty ones after them.
with_schedulers(#{schedulers := Rows} = Sample, N) ->
    Normal = [R || #{type := normal} = R <- Rows],
    Dirty = [R || #{type := T} = R <- Rows, T =/= normal],
    Many = [(lists:nth((I - 1) rem length(Normal) + 1, Normal))#{index => I, id => I}
            || I <- lists:seq(1, N)],
    Sample#{schedulers => Many ++ Dirty}.

%% A live frame as a Columns x Rows terminal shows it: no more lines, none
%% wider, the header first and the status line last.
fits(Frame, Columns, Rows) ->
    ct:log("~ts", [lists:join("\n", Frame)]),
    ?assert(length(Frame) =< Rows),
    ?assertEqual([], [L || L <- Frame, beamprof_top:width(L) > Columns]),
    ?assertMatch("beamprof on " ++ _, hd(Frame)),
    ?assertMatch("refreshing every" ++ _, lists:last(Frame)).

titles(Frame) ->
    length([L || L <- Frame, string:prefix(L, "top processes") =/= nomatch]).

%% Runs Start (a call of the live view) with a stand-in group leader of a
%% Columns x Rows terminal that answers the view's line after the first
%% frame; returns that frame as the terminal shows it: its lines, escape
%% sequences taken out, the status line last.
first_live_frame(Start, Columns, Rows) ->
    GL = start_gl(#{answer_after => 1, columns => Columns, rows => Rows}),
    Self = self(),
    _ = spawn_link(fun() -> group_leader(GL, self()), Self ! {live, Start()} end),
    receive {live, Result} -> ?assertEqual(ok, Result)
    after 10000 -> ct:fail(live_did_not_stop)
    end,
    Text = output(GL),
    stop_gl(GL),
    [_Before, AfterHome | _] = string:split(Text, "\e[H", all),
    [Frame | _] = string:split(AfterHome, "\e[?25h"),
    Plain = re:replace(Frame, "\e\\[[0-9;?]*[A-Za-z]", "", [global, unicode, {return, list}]),
    string:split(Plain, "\n", all).

wait_sample() ->
    _ = wait_events([beamprof, vm, sample], 1),
    ok.

%% Runs Fun with a stand-in group leader; returns {Result, Text printed}.
captured(Fun, Opts) ->
    GL = start_gl(Opts),
    Result = with_gl(GL, Fun),
    Text = output(GL),
    stop_gl(GL),
    {Result, Text}.

with_gl(GL, Fun) ->
    Old = group_leader(),
    group_leader(GL, self()),
    try Fun() after group_leader(Old, self()) end.

%% Processes other than the stand-in itself and this test whose group
%% leader is the stand-in: a reader left behind would show here.
others_of(GL) ->
    [P || P <- processes(), P =/= self(), P =/= GL,
          {group_leader, GL} =:= erlang:process_info(P, group_leader)].

start_gl(Opts) ->
    spawn(fun() -> gl_loop(maps:merge(#{encoding => unicode, answer_after => 0, answer => "q\n",
                                        frames => 0, out => [], reqs => [], pending => []},
                                      Opts)) end).

stop_gl(GL) -> exit(GL, kill).

output(GL) -> call(GL, output).
requests(GL) -> call(GL, requests).

call(GL, What) ->
    Ref = make_ref(),
    GL ! {What, self(), Ref},
    receive {Ref, Answer} -> Answer after 5000 -> ct:fail({gl_silent, What}) end.

gl_loop(S) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            gl_loop(answer_lines(request(Request, {From, ReplyAs}, S)));
        {output, From, Ref} ->
            From ! {Ref, unicode:characters_to_list(lists:reverse(maps:get(out, S)))},
            gl_loop(S);
        {requests, From, Ref} ->
            From ! {Ref, lists:reverse(maps:get(reqs, S))},
            gl_loop(S)
    end.

request({put_chars, Enc, Chars}, To, #{out := Out, reqs := Reqs, frames := F} = S) ->
    Bin = case Enc of
              unicode -> unicode:characters_to_binary(Chars);
              latin1 -> iolist_to_binary(Chars)
          end,
    %% Bytes written in latin1 mode are shown as the UTF-8 they carry.
    Text = case Enc of latin1 -> unicode:characters_to_list(Bin); unicode -> Bin end,
    reply(To, ok),
    S#{out := [Text | Out], reqs := [{Enc, Bin} | Reqs],
       frames := F + length(binary:matches(Bin, <<"\e[H">>))};
request({put_chars, Enc, M, F, A}, To, S) ->
    request({put_chars, Enc, apply(M, F, A)}, To, S);
request({get_line, _Enc, _Prompt}, To, #{pending := P} = S) ->
    S#{pending := P ++ [To]};
%% A terminal's size when the options give one (io:columns/0, io:rows/0);
%% else no terminal.
request({get_geometry, Which}, To, S) ->
    reply(To, maps:get(Which, S, {error, enotsup})),
    S;
request(getopts, To, #{encoding := Enc} = S) ->
    reply(To, [{binary, false}, {encoding, Enc}]),
    S;
request(_Other, To, S) ->
    reply(To, {error, request}),
    S.

answer_lines(#{pending := [To | Rest], frames := F, answer_after := N, answer := A} = S)
  when F >= N ->
    reply(To, A),
    answer_lines(S#{pending := Rest});
answer_lines(S) ->
    S.

reply({From, ReplyAs}, Reply) ->
    From ! {io_reply, ReplyAs, Reply}.
