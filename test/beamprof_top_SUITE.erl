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
     print_utf8_on_both_encodings,
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
    {ok, Text} = captured(fun beamprof:top/0, #{}),
    Lines = string:split(string:trim(Text, trailing), "\n", all),
    ?assert(length(Lines) =< 40),
    [?assert(beamprof_top:width(L) =< 100) || L <- Lines],
    [?assertNotEqual(nomatch, string:find(Text, W), W)
     || W <- [atom_to_list(node()), "gate open", "system monitor on", "schedulers", "memory",
              "rss", "counts", "rates"]].

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
        {ok, Text} = captured(fun beamprof:top/0, #{}),
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
                                 Self ! {live, beamprof_top:live(fun frame/0, #{interval => 50})}
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
    ok = with_gl(GL, fun() -> beamprof_top:live(fun() -> "frame\n" end, #{interval => 10000}) end),
    ?assertEqual(1, length(string:split(output(GL), "frame", all)) - 1),
    ?assertEqual([], others_of(GL)),
    stop_gl(GL).

%% A frame that raises: the reader, blocked in get_line, is killed and the
%% cursor is shown again.
live_reader_killed_on_error(_Config) ->
    GL = start_gl(#{answer_after => 1000}),
    Result = with_gl(GL, fun() ->
                                 try beamprof_top:live(fun() -> error(boom) end, #{})
                                 catch error:boom -> raised
                                 end
                         end),
    ?assertEqual(raised, Result),
    ?assert(lists:suffix("\e[?25h\n", output(GL))),
    wait_until(fun() -> others_of(GL) =:= [] end, 5000),
    stop_gl(GL).

%% --- helpers ----------------------------------------------------------------------

frame() ->
    case beamprof:snapshot() of
        {error, _} -> "not running\n";
        S -> beamprof_top:render(S, {error, none}, #{})
    end.

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
