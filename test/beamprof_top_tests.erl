%% beamprof_top:render/3 with synthetic samples and tables shaped as
%% beamprof:snapshot() and beamprof_scan:top_all/1 return them on a live
%% node: alignment, units, the one-screen bound, names of every kind.
-module(beamprof_top_tests).
-include_lib("eunit/include/eunit.hrl").

-define(MAX_LINES, 40).
-define(MAX_COLUMNS, 80).       % the default width
-define(WIDTHS, [60, 80, 132]).

%% --- fixtures ----------------------------------------------------------------------

snapshot() ->
    snapshot(2).

snapshot(NormalSchedulers) ->
    Normal = [#{id => I, index => I, type => normal, utilization => (I rem 11) / 10,
                os_cpu => 0.5} || I <- lists:seq(1, NormalSchedulers)],
    Dirty = [#{id => NormalSchedulers + I, index => I, type => dirty_cpu, utilization => 0.0,
               os_cpu => 0.0} || I <- lists:seq(1, 2)]
        ++ [#{id => NormalSchedulers + 2 + I, index => I, type => dirty_io, utilization => 0.0,
              os_cpu => 0.0} || I <- lists:seq(1, 10)],
    #{gate => #{changed_at => -576460751830146364, reason => none, running => true,
                source => os_cpu, state => open},
      memory => #{erlang => #{atom => 278697, atom_used => 258179, binary => 21232,
                              code => 5446382, ets => 363472, processes => 4106256,
                              processes_used => 4077040, system => 10956496, total => 15062752},
                  limit => 25274793984, limit_source => machine, mem_available => 24785338368,
                  mem_total => 25274793984, ratio => 0.01936536520573999, rss => 40873984},
      rates => #{context_switches => 23.3, gc => 13.3, gc_words_reclaimed => 5420.4,
                 io_in => 0.0, io_out => 2048.0, reductions => 8880.7},
      run_queues => #{cpu => 0, io => 0, total => 0},
      schedulers => Normal ++ Dirty,
      system => #{atom_count => 9437, atom_limit => 1048576, port_count => 3,
                  port_limit => 65536, process_count => 45, process_limit => 262144},
      time => 1795317432369499247,
      utilization => #{dirty_cpu => 0.0, dirty_io => 0.0, normal => 0.25, os_cpu => 0.3,
                       os_cpu_dirty_cpu => 0.0, os_cpu_dirty_io => 0.0, total => 0.125,
                       weighted => 0.25},
      window_ms => 999.97,
      system_monitor => #{state => active, holder => list_to_pid("<0.160.0>")}}.

row(Pid, Key, Value, Extra) ->
    maps:merge(#{pid => list_to_pid(Pid), key => Key, value => Value, name => undefined,
                 initial_call => undefined, current_function => {gen_server, loop, 7},
                 message_queue_len => 0, memory => 2768, reductions => 25}, Extra).

tops() ->
    #{message_queue_len =>
          [row("<0.88.0>", message_queue_len, 1000000,
               #{name => bp_mailbox, message_queue_len => 1000000, memory => skipped}),
           row("<0.1234.0>", message_queue_len, 1234,
               #{initial_call => {my_worker, init, 1}, message_queue_len => 1234,
                 memory => 3 * 1024 * 1024}),
           row("<0.1235.0>", message_queue_len, 999,
               #{label => {conn, <<"10.0.0.7:5432">>, 12345678}, initial_call => {my_worker, init, 1},
                 message_queue_len => 999, memory => 1024})],
      memory =>
          [row("<0.90.0>", memory, 1288490189,
               #{name => 'процесс_日本', memory => 1288490189,
                 current_function => {lists, seq_loop, 3}}),
           row("<0.91.0>", memory, 12 * 1024 * 1024,
               #{initial_call => {'Elixir.MyApp.VeryLongModuleName.Worker.Supervisor',
                                  init, 1},
                 memory => 12 * 1024 * 1024,
                 current_function => {'Elixir.MyApp.VeryLongModuleName.Worker', handle_info, 2}})],
      reductions =>
          [row("<0.92.0>", reductions, 3456789,
               #{name => cpu_hog, reductions => 3456789, current_function => {?MODULE, spin, 1}})],
      window_ms => 1000, scanned => 12345, skipped => 1, duration_us => 4321}.

text(Snapshot, Tops) ->
    text(Snapshot, Tops, #{}).

text(Snapshot, Tops, Opts) ->
    Bin = beamprof_top:render(Snapshot, Tops, Opts),
    ?assert(is_binary(Bin)),
    Chars = unicode:characters_to_list(Bin),
    ?assert(is_list(Chars)),
    Chars.

lines(Text) ->
    string:split(string:trim(Text, trailing, "\n"), "\n", all).

%% The lines of the three tables: from the first "top processes" title on.
table_lines(Text) ->
    lists:dropwhile(fun(L) -> string:prefix(L, "top processes") =:= nomatch end, lines(Text)).

has(Text, Word) ->
    string:find(Text, Word) =/= nomatch.

%% --- tests ------------------------------------------------------------------------

fits_one_screen_test() ->
    Text = text(snapshot(), tops()),
    Lines = lines(Text),
    ?assert(length(Lines) =< ?MAX_LINES),
    [?assert(beamprof_top:width(L) =< ?MAX_COLUMNS) || L <- Lines].

%% Every line within the width asked, whatever is in it: long names, labels
%% and functions, wide characters, warnings, a closed gate held monitor.
fits_every_width_test_() ->
    Long = [row("<0.12345.0>", memory, 1,
                #{name => 'a_registered_name_far_longer_than_any_column_could_hold_0123456789',
                  current_function => {'Elixir.MyApp.Some.Deeply.Nested.Module.Name',
                                       handle_call_with_a_long_name, 3}}),
            row("<0.12346.0>", memory, 1,
                #{name => '日本語の名前がとても長いプロセスの名前です_日本語の名前です',
                  memory => 1023 * 1024 * 1024}),
            row("<0.12347.0>", memory, 1,
                #{label => {connection, <<"a label that goes on and on and on and on">>}})],
    Snap = (snapshot(64))#{gate => #{state => closed, reason => {memory, 0.93}, blind => true},
                           system_monitor => #{state => held,
                                               holder => list_to_pid("<0.77.0>")},
                           warnings => [beamprof_warnings:new(native_unsupported,
                                                              lists:duplicate(300, $y))]},
    Tops = (tops())#{memory => Long, reductions => Long, source => processes,
                     warnings => [beamprof_warnings:new(enumeration_fallback,
                                                        lists:duplicate(50, "why "))]},
    [{integer_to_list(W) ++ " columns",
      fun() ->
              Lines = lines(text(Snap, Tops, #{width => W})),
              Wide = [L || L <- Lines, beamprof_top:width(L) > W],
              ?assertEqual([], Wide),
              %% the widest line uses the width: it is laid out for it, not cut at 60
              ?assert(lists:max([beamprof_top:width(L) || L <- Lines]) >= W - 8),
              ?assert(has(hd(Lines), "beamprof on"))
      end} || W <- ?WIDTHS].

%% Names keep their start, cut with ".." where the width ends; a wide
%% character that would straddle the edge is left out, not split.
long_names_cut_to_width_test_() ->
    Name = 'a_registered_name_far_longer_than_any_column_could_hold_0123456789',
    Wide = 'とても長いプロセスの名前です_とても長いプロセスの名前です_とても長いプロセスの名前です',
    Tops = (tops())#{memory => [row("<0.7.0>", memory, 1, #{name => Name}),
                                row("<0.8.0>", memory, 1, #{name => Wide})]},
    [{integer_to_list(W) ++ " columns",
      fun() ->
              Lines = lines(text(snapshot(), Tops, #{width => W})),
              [L1] = [L || L <- Lines, has(L, "<0.7.0>")],
              [L2] = [L || L <- Lines, has(L, "<0.8.0>")],
              ?assert(has(L1, "a_registered_name")),
              ?assert(has(L1, "..")),
              ?assertEqual(nomatch, string:find(L1, "0123456789")),
              ?assert(has(L2, "とても")),
              ?assert(has(L2, "..")),
              %% both rows end at the same column as the table's header
              ?assertEqual(beamprof_top:width(L1), beamprof_top:width(L2))
      end} || W <- ?WIDTHS].

%% The current function column: shown at 80 columns and more, left out at 60
%% where it would leave the names too little room.
function_column_by_width_test() ->
    At = fun(W) -> lines(text(snapshot(), tops(), #{width => W})) end,
    ?assert(lists:any(fun(L) -> has(L, "function") end, At(80))),
    ?assert(lists:any(fun(L) -> has(L, "current function") end, At(132))),
    ?assertNot(lists:any(fun(L) -> has(L, "function") end, At(60))),
    ?assert(lists:any(fun(L) -> has(L, "bp_mailbox") end, At(60))).

%% With a height, tables lose rows until the screen fits; the header stays
%% first. Too low for a row each: cut at the height.
height_cuts_table_rows_test() ->
    Many = [row("<0.99.0>", memory, 1, #{name => many}) || _ <- lists:seq(1, 50)],
    Tops = (tops())#{message_queue_len => Many, memory => Many, reductions => Many},
    Full = lines(text(snapshot(16), Tops, #{rows => 10})),
    ?assert(length(Full) > 40),
    [begin
         Lines = lines(text(snapshot(16), Tops, #{rows => 10, height => H})),
         ?assert(length(Lines) =< H),
         ?assertEqual(hd(Full), hd(Lines))
     end || H <- [50, 40, 30, 24, 10, 1]],
    Fit30 = lines(text(snapshot(16), Tops, #{rows => 10, height => 30})),
    ?assert(lists:any(fun(L) -> has(L, "reductions over") end, Fit30)),
    ?assert(length([L || L <- Fit30, has(L, "many")]) >= 3),
    %% tall enough: nothing cut
    ?assertEqual(Full, lines(text(snapshot(16), Tops, #{rows => 10, height => 200}))).

%% beamprof:top/1's options: a width of at least 60 and live as a boolean; a
%% message naming what is wrong otherwise.
options_test_() ->
    Says = fun(Fun, Words) ->
                   try Fun() of R -> error({no_error, R})
                   catch error:{badarg, Msg} -> [?assert(has(Msg, Word)) || Word <- Words]
                   end
           end,
    [?_assertEqual(#{width => 60}, beamprof_top:options(#{width => 60})),
     ?_assertEqual(#{width => 132, live => true},
                   beamprof_top:options([{width, 132}, {live, true}])),
     ?_assertEqual(#{}, beamprof_top:options([])),
     ?_test(Says(fun() -> beamprof_top:options(#{width => 59}) end,
                 ["option width", "at least 60", "got: 59"])),
     ?_test(Says(fun() -> beamprof_top:options(#{width => wide}) end,
                 ["option width", "got: wide"])),
     ?_test(Says(fun() -> beamprof_top:options(#{live => yes}) end,
                 ["option live", "boolean", "got: yes"])),
     ?_test(Says(fun() -> beamprof_top:options(#{bogus => 1}) end,
                 ["Unknown option bogus", "width", "live"])),
     ?_test(Says(fun() -> beamprof:top(#{width => 10}) end, ["option width", "got: 10"])),
     ?_test(Says(fun() -> beamprof:top([{bogus, 1}]) end, ["Unknown option bogus"])),
     ?_test(Says(fun() -> beamprof:top(memory) end, ["Expected live", "got: memory"]))].

%% Outside a terminal (EUnit's group leader has no columns), 80.
columns_without_a_terminal_test() ->
    case io:columns() of
        {ok, C} -> ?assertEqual(max(60, C), beamprof_top:columns());
        {error, _} -> ?assertEqual(80, beamprof_top:columns())
    end.

many_rows_and_schedulers_still_fit_test_() ->
    Many = [row("<0.99.0>", memory, 1, #{name => n}) || _ <- lists:seq(1, 50)],
    Tops = (tops())#{message_queue_len => Many, memory => Many, reductions => Many},
    [{integer_to_list(N) ++ " schedulers",
      fun() ->
              [begin
                   Lines = lines(text(snapshot(N), Tops, #{width => W})),
                   %% narrower, more figures wrap
                   ?assert(length(Lines) =< ?MAX_LINES + max(0, 80 - W) div 3),
                   [?assert(beamprof_top:width(L) =< W) || L <- Lines]
               end || W <- ?WIDTHS]
      end} || N <- [1, 2, 4, 16, 17, 64, 128, 1024]].

rows_option_limits_rows_test() ->
    Many = [row("<0.99.0>", memory, 1, #{name => many}) || _ <- lists:seq(1, 50)],
    Text = text(snapshot(), (tops())#{memory => Many}, #{rows => 3}),
    ?assertEqual(3, length([L || L <- lines(Text), has(L, "many")])).

header_says_node_gate_and_monitor_test() ->
    [First | _] = lines(text(snapshot(), tops())),
    ?assert(has(First, atom_to_list(node()))),
    ?assert(has(First, "gate open")),
    ?assert(has(First, "system monitor on")),
    Closed = (snapshot())#{gate => #{state => closed, reason => {scheduler, 0.93}},
                           system_monitor => #{state => held, holder => list_to_pid("<0.77.0>")}},
    %% too long for one line at 80 columns: on two
    [First2, Second2 | _] = lines(text(Closed, tops())),
    ?assert(has(First2, "gate CLOSED (scheduler 93.0%)")),
    ?assert(has(Second2, "system monitor held by <0.77.0>")),
    [Wide2 | _] = lines(text(Closed, tops(), #{width => 132})),
    ?assert(has(Wide2, "held by <0.77.0>")),
    [First3 | _] = lines(text(maps:remove(system_monitor, snapshot()), tops())),
    ?assert(has(First3, "system monitor -")),
    %% OTP 28+: in a trace session of beamprof's own, whoever holds the node's monitor.
    Session = (snapshot())#{system_monitor => #{state => active, via => session}},
    [First4, Second4 | _] = lines(text(Session, tops())),
    ?assert(has(First4 ++ Second4, "system monitor on (trace session)")).

schedulers_bars_and_digits_test() ->
    Text = text(snapshot(4), tops()),
    %% index 3 at 30%, index 4 at 40%: four to a line, bars of 5 cells at 80
    %% columns, of 10 at 132.
    ?assert(has(Text, "schedulers  1 [#....]  10%   2 [#....]  20%   3 [##...]  30%   "
                      "4 [##...]  40%")),
    ?assert(has(Text, "total 12.5%")),
    Wide132 = text(snapshot(4), tops(), #{width => 132}),
    ?assert(has(Wide132, " 3 [###.......]  30%")),
    ?assert(has(Wide132, " 4 [####......]  40%")),
    Wide = text(snapshot(20), tops()),
    %% one digit per scheduler: i rem 11 tenths.
    ?assert(has(Wide, "sched 1-20")),
    ?assert(has(Wide, "12345678990123456789")),
    %% 64 at 60 columns: as many digits as fit, on two lines
    [S1, S2 | _] = lists:dropwhile(fun(L) -> not has(L, "sched 1-64") end,
                                   lines(text(snapshot(64), tops(), #{width => 60}))),
    ?assertEqual(64, length(string:trim(string:slice(S1, 11))) + length(string:trim(S2))).

%% Each memory figure says what it is: the VM's RSS, erlang:memory/0's, the
%% limit and where it comes from, and the ratio the gate uses: with the
%% machine's limit that is the machine's memory in use (every process's), not
%% the VM's RSS over the limit.
memory_against_limit_test() ->
    Text = text(snapshot(), tops(), #{width => 132}),
    ?assert(has(Text, "memory     rss 39.0 MiB  erlang total 14.4 MiB  processes 3.9 MiB")),
    ?assert(has(Text, "limit      23.5 GiB (machine)  machine in use 1.9% [..........]")),
    ?assertEqual(nomatch, string:find(Text, "of limit")),
    ?assertEqual(nomatch, string:find(Text, " of 23.5 GiB")).

memory_limit_labels_test_() ->
    Limit = fun(Mem) ->
                    #{memory := M} = Snap = snapshot(),
                    Text = text(Snap#{memory => maps:merge(M, Mem)}, tops()),
                    [L] = [L || L <- lines(Text), string:prefix(L, "limit") =/= nomatch],
                    L
            end,
    GiB = 1024 * 1024 * 1024,
    [?_assertEqual("limit      2.0 GiB (cgroup v2)  rss 25.0% of limit [###.......]",
                   Limit(#{limit => 2 * GiB, limit_source => cgroup_v2, ratio => 0.25})),
     ?_assertEqual("limit      1.0 GiB (cgroup v1)  rss 120.0% of limit [##########]",
                   Limit(#{limit => GiB, limit_source => cgroup_v1, ratio => 1.2})),
     ?_assertEqual("limit      512.0 MiB (memory_limit option)  rss 7.5% of limit [#.........]",
                   Limit(#{limit => GiB div 2, limit_source => option, ratio => 0.075})),
     ?_assertEqual("limit      23.5 GiB (machine)  machine in use 13.0% [#.........]",
                   Limit(#{ratio => 0.13}))].

units_test() ->
    Text = text(snapshot(), tops()),
    ?assert(has(Text, "1.0M")),          % a million queued messages
    ?assert(has(Text, "1.2k")),          % 1234
    ?assert(has(Text, "3.0 MiB")),
    ?assert(has(Text, "1.2 GiB")),
    ?assert(has(Text, "3.5M")),          % reductions over the window
    ?assert(has(Text, "12.3k scanned in 4.3 ms")),
    ?assert(has(Text, "reductions 8.9k/s")).

skipped_memory_renders_as_such_test() ->
    [Line] = [L || L <- lines(text(snapshot(), tops())), has(L, "bp_mailbox")],
    ?assert(has(Line, "skipped")),
    ?assert(has(Line, "1.0M")).

names_test() ->
    Text = text(snapshot(), tops(), #{width => 100}),
    [Mailbox] = [L || L <- lines(Text), has(L, "<0.88.0>")],
    ?assertMatch(["<0.88.0>", "bp_mailbox" | _], string:lexemes(Mailbox, " ")),
    ?assert(has(Text, "my_worker:init/1")),          % no name: the initial call
    ?assert(has(Text, "процесс_日本")),               % a unicode atom
    ?assert(has(Text, "gen_server:loop/7")),
    %% An Elixir module without "Elixir.", cut at the start to keep the function.
    [Line] = [L || L <- lines(Text), has(L, "<0.91.0>")],
    ?assert(has(Line, "  ..uleName.Worker.Supervisor:init/1  ")),
    ?assert(has(Line, "..Worker:handle_info/2")),
    ?assertEqual(nomatch, string:find(Line, "Elixir.")),
    ?assertEqual(nomatch, string:find(Line, "MyApp.VeryLong")),
    %% A label before the initial call, cut at the end to keep its start.
    [Labelled] = [L || L <- lines(Text), has(L, "<0.1235.0>")],
    ?assertMatch(["<0.1235.0>", "{conn,<<\"10.0.0.7:5432\">>,123456.." | _],
                 string:lexemes(Labelled, " ")).

no_name_at_all_test() ->
    Tops = (tops())#{reductions => [row("<0.5.0>", reductions, 1,
                                        #{current_function => undefined})]},
    [Line] = [L || L <- lines(text(snapshot(), Tops)), has(L, "<0.5.0>")],
    ?assertMatch(["<0.5.0>", "-", "-" | _], string:lexemes(Line, " ")).

%% Every line of a table (its header and rows) ends at the same column: the
%% numbers are right-aligned under one width across the three tables, wide
%% characters counted as two columns.
columns_aligned_test() ->
    Tables = table_lines(text(snapshot(), tops())),
    Rows = [L || L <- Tables, string:prefix(L, "  ") =/= nomatch, not has(L, "(none)")],
    ?assert(length(Rows) >= 8),
    Widths = lists:usort([beamprof_top:width(L) || L <- Rows]),
    ?assertMatch([_], Widths),
    %% and the "current function" column starts at the same column everywhere
    Starts = lists:usort([column_of(L, F) || L <- Rows,
                                             F <- ["gen_server:loop/7", "lists:seq_loop/3",
                                                   "function"], has(L, F)]),
    ?assertMatch([_], Starts).

column_of(Line, Part) ->
    Rest = string:find(Line, Part),
    beamprof_top:width(string:slice(Line, 0, string:length(Line) - string:length(Rest))).

empty_tables_test() ->
    Tops = (tops())#{message_queue_len => [], memory => [], reductions => []},
    Text = text(snapshot(), Tops),
    ?assertEqual(3, length([L || L <- lines(Text), has(L, "(none)")])),
    ?assertEqual(3, length([L || L <- lines(Text), has(L, "function")])).

not_scanned_test_() ->
    [?_assert(has(text(snapshot(), undefined), "processes: not scanned")),
     ?_assert(has(text(snapshot(), {error, timeout}), "not scanned (timeout)"))].

bare_snapshot_test() ->
    %% A sample without optional parts still renders.
    Text = text(maps:without([memory, system, rates, run_queues, system_monitor], snapshot()),
                tops()),
    ?assert(has(Text, "top processes by memory")).

mfa_and_name_test_() ->
    [?_assertEqual(<<"m:f/2">>, iolist_to_binary(beamprof_top:mfa({m, f, 2}))),
     ?_assertEqual("-", beamprof_top:mfa(undefined)),
     ?_assertEqual(<<"reg">>, beamprof_top:name(#{name => reg, initial_call => {m, f, 0}})),
     ?_assertEqual(<<"m:f/0">>, iolist_to_binary(beamprof_top:name(#{name => undefined,
                                                                     initial_call => {m, f, 0}}))),
     ?_assertEqual(4, beamprof_top:width("日本")),
     %% A label (proc_lib:set_label/1, OTP 27+) names a process with no registered name.
     ?_assertEqual(<<"reg">>, beamprof_top:name(#{name => reg, label => {worker, 1}})),
     ?_assertEqual(<<"{worker,7}">>,
                   iolist_to_binary(beamprof_top:name(#{name => undefined, label => {worker, 7},
                                                        initial_call => {m, f, 0}}))),
     ?_assertEqual(<<"conn-Ω"/utf8>>,
                   unicode:characters_to_binary(beamprof_top:name(#{name => undefined,
                                                                    label => <<"conn-Ω"/utf8>>}))),
     ?_assertEqual(<<"pool">>, iolist_to_binary(beamprof_top:name(#{label => pool}))),
     ?_assertEqual(<<"\"a\\nb\"">>, iolist_to_binary(beamprof_top:name(#{label => "a\nb"}))),
     ?_assertEqual(<<"[x,1]">>, iolist_to_binary(beamprof_top:name(#{label => [x, 1]}))),
     ?_assertEqual(<<"m:f/0">>, iolist_to_binary(beamprof_top:name(#{label => undefined,
                                                                     initial_call => {m, f, 0}}))),
     ?_assertEqual(2, beamprof_top:width(<<"ab">>))].

%% The header says where the scan's pids came from, a fallback's reason in
%% parentheses, and the sample's warnings a line each; all on one screen.
pids_source_in_header_test() ->
    Walk = lines(text(snapshot(), (tops())#{source => ptab_walk, warnings => []})),
    ?assertMatch([_, "pids       process table walk" | _], Walk),
    Iter = lines(text(snapshot(), (tops())#{source => processes_iterator, warnings => []})),
    ?assertMatch([_, "pids       erlang:processes_iterator()" | _], Iter),
    Fallback = (tops())#{source => processes,
                         warnings => [beamprof_warnings:new(enumeration_fallback,
                                                            "process table layout not verified "
                                                            "on ERTS 15.2; using "
                                                            "erlang:processes()")]},
    ?assertMatch([_, "pids       erlang:processes() (process table layout not verified on "
                     "ERTS 15.2)" | _], lines(text(snapshot(), Fallback))),
    %% no scan, no pids line
    ?assertNotMatch([_, "pids" ++ _ | _], lines(text(snapshot(), {error, timeout}))),
    ?assertNotMatch([_, "pids" ++ _ | _], lines(text(snapshot(), tops()))).

sample_warnings_in_header_test() ->
    Ws = [beamprof_warnings:new(scheduler_threads_mismatch,
                                "found 9 dirty_io scheduler threads, the VM says 10; "
                                "their OS CPU is partial"),
          beamprof_warnings:new(scheduler_threads_unseen, "no dirty_cpu thread"),
          beamprof_warnings:new(native_unsupported, lists:duplicate(200, $x))],
    Text = text((snapshot())#{warnings => Ws}, (tops())#{source => ptab_walk, warnings => []}),
    Lines = lines(Text),
    %% wrapped at a space, on two lines at most; a word too long for a line cut
    ?assertMatch([_, "pids" ++ _,
                  "warning    found 9 dirty_io scheduler threads, the VM says 10; "
                  "their OS CPU is",
                  "           partial",
                  "warning    no dirty_cpu thread",
                  "warning    xxxx" ++ _ | _], Lines),
    ?assert(lists:suffix("x..", lists:nth(6, Lines))),
    ?assertEqual(80, beamprof_top:width(lists:nth(6, Lines))),
    Long = beamprof_warnings:new(native_unsupported, lists:join(" ", lists:duplicate(60, "word"))),
    Three = lines(text((snapshot())#{warnings => [Long]}, tops())),
    ?assertMatch([_, "warning    word word" ++ _, "           word word" ++ _,
                  "schedulers" ++ _ | _], Three),
    ?assert(lists:suffix("..", lists:nth(3, Three))),
    ?assert(beamprof_top:width(lists:nth(3, Three)) =< 80),
    ?assert(length(Lines) =< ?MAX_LINES),
    [?assert(beamprof_top:width(L) =< ?MAX_COLUMNS) || L <- Lines],
    %% none: no warning line
    ?assertEqual([], [L || L <- lines(text(snapshot(), tops())), has(L, "warning")]).

%% A blind gate says so on the first line and, from the snapshot's warnings,
%% on a warning line; the scan's own warnings that are not about the pids
%% (a window table not allocated) get a line too; a pids fallback that the
%% snapshot also carries (the periodic scan's last pass) is said once.
blind_gate_and_scan_warnings_in_header_test() ->
    Blind = beamprof_warnings:new(gate_blind, "the gate's C thread sees no scheduler thread; "
                                              "the gate runs on scheduler_wall_time"),
    Fallback = beamprof_warnings:new(enumeration_fallback, "table not found; using "
                                                           "erlang:processes()"),
    Window = beamprof_warnings:new(scan_window_unavailable, "no memory for the window table"),
    Snap = (snapshot())#{gate => #{state => open, blind => true}, warnings => [Blind, Fallback]},
    Lines = lines(text(Snap, (tops())#{source => processes, warnings => [Fallback, Window]})),
    [First, Second | _] = Lines,
    ?assert(has(First ++ Second, "gate open [blind: scheduler_wall_time]")),
    ?assertMatch([_, _, "pids       erlang:processes() (table not found)",
                  "warning    the gate's C thread sees no scheduler thread" ++ _,
                  "           scheduler_wall_time",
                  "warning    no memory for the window table" | _], Lines),
    ?assertEqual(1, length([L || L <- Lines, has(L, "table not found")])).

%% The cluster table: nodes of different lengths, the pid column starts at the
%% same place on every line (header included), and each line fits the width.
process_table_aligns_nodes_test() ->
    Pid = self(),
    Rows = [#{node => 'a@h', pid => Pid, name => one, message_queue_len => 5,
              memory => 1024, reductions => 7, current_function => {m, f, 0}},
            #{node => 'longer_node_name@host', pid => Pid, name => two,
              message_queue_len => 3, memory => 2048, reductions => 9,
              current_function => {m, g, 1}}],
    Lines = [unicode:characters_to_list(L)
             || L <- beamprof_top:process_table(["title"], Rows, 80)],
    [_Title, Header | Table] = Lines,
    PidAt = string:str(Header, "pid"),
    [Local] = tl(string:split(pid_to_list(Pid), ".")) -- [],
    ?assert(PidAt > 0),
    [?assertEqual({L, PidAt}, {L, string:str(L, "<0.")}) || L <- Table],
    ?assert(lists:all(fun(L) -> string:length(L) =< 80 end, Lines)),
    ?assertNotEqual(0, string:str(hd(Table), Local)).
