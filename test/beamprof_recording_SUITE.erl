%% The recording reader (beamprof_recording, beamprof:read_recording/1,2)
%% on files made by the test encoder (beamprof_recording_enc): its errors,
%% its options, the frames it skips and how it counts them, a file read
%% while a process keeps writing it, the read time of a 16 MiB ring, and
%% that reading never creates an atom.
-module(beamprof_recording_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([reads_records_oldest_first/1, filters/1, file_errors/1, header_errors/1,
         size_errors/1, bad_options/1, torn_and_undecodable_counted/1,
         duplicate_seq_keeps_neither/1, no_atom_created/1, read_while_writing/1,
         read_16mib/1]).

-define(T0, 1700000000000000).

suite() -> [{timetrap, {minutes, 5}}].

all() ->
    [reads_records_oldest_first, filters, file_errors, header_errors, size_errors,
     bad_options, torn_and_undecodable_counted, duplicate_seq_keeps_neither, no_atom_created,
     read_while_writing, read_16mib].

%%--------------------------------------------------------------------

reads_records_oldest_first(Config) ->
    Path = path(Config, "ten.bprec"),
    Terms = [#{kind => note, message => integer_to_binary(I)} || I <- lists:seq(1, 10)],
    _ = beamprof_recording_enc:write_file(Path, 65536, Terms),
    {ok, Records} = beamprof:read_recording(Path),
    ?assertEqual(lists:seq(1, 10), [S || #{seq := S} <- Records]),
    ?assertEqual(Terms, [prop_beamprof_recording:record_payload(R) || R <- Records]),
    ?assertMatch([#{time := 1700000000000, mono_ns := 5000000000} | _], Records),
    ?assertMatch(#{time := 1700000000009, mono_ns := 5009000000}, lists:last(Records)),
    %% The path as a binary, as Elixir passes it.
    ?assertEqual({ok, Records}, beamprof:read_recording(list_to_binary(Path))).

filters(Config) ->
    Path = path(Config, "kinds.bprec"),
    Kinds = [header, tick, interval, gate, tick, scan, tick],
    _ = beamprof_recording_enc:write_file(Path, 65536, [#{kind => K} || K <- Kinds]),
    T = fun(Seq) -> 1700000000000 + Seq - 1 end,
    Seqs = fun(Opts) -> {ok, Rs} = beamprof:read_recording(Path, Opts), [S || #{seq := S} <- Rs] end,
    ?assertEqual([2, 5, 7], Seqs(#{kinds => [tick]})),
    ?assertEqual([2, 3, 5, 7], Seqs(#{kinds => [tick, interval]})),
    ?assertEqual([], Seqs(#{kinds => []})),
    ?assertEqual([3, 4, 5], Seqs(#{since => T(3), until => T(5)})),
    ?assertEqual([6, 7], Seqs(#{since => T(6)})),
    ?assertEqual([1], Seqs(#{until => T(1)})),
    ?assertEqual([5], Seqs(#{since => T(3), until => T(5), kinds => [tick]})),
    {ok, [_], Info} = beamprof:read_recording(Path, #{kinds => [scan], info => true}),
    ?assertMatch(#{frames := 7, records := 1, skipped := 0, ring_size := 65536,
                   os_pid := 4242, opened_us := ?T0}, Info).

file_errors(Config) ->
    Dir = ?config(priv_dir, Config),
    ?assertEqual({error, {file, enoent}}, beamprof:read_recording(filename:join(Dir, "none"))),
    ?assertEqual({error, {file, eisdir}}, beamprof:read_recording(Dir)),
    Locked = path(Config, "unreadable.bprec"),
    _ = beamprof_recording_enc:write_file(Locked, 65536, [#{kind => note}]),
    ok = file:change_mode(Locked, 8#000),
    case os:getenv("USER") =:= "root" orelse element(1, file:read_file(Locked)) =:= ok of
        true -> ct:comment("running as root: no eacces case");
        false -> ?assertEqual({error, {file, eacces}}, beamprof:read_recording(Locked))
    end.

header_errors(Config) ->
    Path = path(Config, "header.bprec"),
    Read = fun(Bin) -> ok = file:write_file(Path, Bin), beamprof:read_recording(Path) end,
    Good = beamprof_recording_enc:header(65536, 1, 0),
    Ring = <<0:(65536 * 8)>>,
    ?assertEqual({ok, []}, Read([Good, Ring])),
    ?assertEqual({error, not_a_recording}, Read(<<>>)),
    ?assertEqual({error, not_a_recording}, Read(<<"hello world">>)),
    ?assertEqual({error, not_a_recording}, Read(<<"BPREC\0v2", Ring/binary>>)),
    ?assertEqual({error, {truncated, #{size => 3, expected => 4096}}}, Read(<<"BPR">>)),
    ?assertEqual({error, {truncated, #{size => 100, expected => 4096 + 65536}}},
                 Read(binary:part(Good, 0, 100))),
    %% One bit of the ring size flipped: the header CRC fails.
    <<A:16/binary, R, B/binary>> = Good,
    ?assertEqual({error, {corrupt, header}}, Read([<<A/binary, (R bxor 8), B/binary>>, Ring])),
    %% Fields that check under a good CRC but break the format.
    ?assertEqual({error, {unsupported_version, 2}}, Read([header(2, 4096, 65536), Ring])),
    ?assertEqual({error, {corrupt, header}}, Read([header(1, 512, 65536), Ring])),
    ?assertEqual({error, {corrupt, header}}, Read([header(1, 4096, 65532), Ring])),
    ?assertEqual({error, {corrupt, header}}, Read([header(1, 4096, 8), <<0:64>>])).

size_errors(Config) ->
    Path = path(Config, "size.bprec"),
    _ = beamprof_recording_enc:write_file(Path, 65536, [#{kind => note}]),
    {ok, Bin} = file:read_file(Path),
    ok = file:write_file(Path, [Bin, <<0>>]),
    ?assertEqual({error, {corrupt, #{size => 4096 + 65537, expected => 4096 + 65536}}},
                 beamprof:read_recording(Path)),
    ok = file:write_file(Path, binary:part(Bin, 0, 5000)),
    ?assertEqual({error, {truncated, #{size => 5000, expected => 4096 + 65536}}},
                 beamprof:read_recording(Path)).

bad_options(Config) ->
    Path = path(Config, "opts.bprec"),
    _ = beamprof_recording_enc:write_file(Path, 65536, [#{kind => note}]),
    Bad = fun(Opts, Word) ->
                  try beamprof:read_recording(Path, Opts) of
                      Result -> ct:fail({no_badarg, Opts, Result})
                  catch error:{badarg, Msg} ->
                          ?assertNotEqual(nomatch, string:find(Msg, Word), Msg)
                  end
          end,
    Bad(#{since => "yesterday"}, "since"),
    Bad(#{until => 1.5}, "until"),
    Bad(#{kinds => [tick, ticks]}, "kinds"),
    Bad(#{kinds => tick}, "kinds"),
    Bad(#{info => yes}, "info"),
    Bad(#{sincee => 1}, "sincee"),
    Bad([{since, 1}], "map").

%% A frame torn (its payload changed after its CRC was taken) and payloads
%% that are not records: skipped, counted, the others read.
torn_and_undecodable_counted(Config) ->
    Path = path(Config, "torn.bprec"),
    E0 = beamprof_recording_enc:create(Path, 65536),
    E1 = beamprof_recording_enc:append(E0, #{kind => note, message => <<"first">>}),
    E2 = beamprof_recording_enc:append(E1, #{kind => note, message => <<"torn">>}),
    E3 = beamprof_recording_enc:append_raw(E2, <<"not a term">>),
    E4 = beamprof_recording_enc:append(E3, [not_a_map]),
    E5 = beamprof_recording_enc:append(E4, #{no_kind => 1}),
    E6 = beamprof_recording_enc:append_raw(E5, <<(term_to_binary(#{kind => note}))/binary, 0>>),
    E7 = beamprof_recording_enc:append(E6, #{kind => note, message => <<"last">>}),
    ok = beamprof_recording_enc:close(E7),
    %% A byte of the second frame's payload changed.
    First = byte_size(term_to_binary(#{kind => note, message => <<"first">>})),
    Second = 40 + ((First + 7) band -8),
    {ok, Fd} = file:open(Path, [read, write, raw, binary]),
    ok = file:pwrite(Fd, 4096 + Second + 40 + 10, <<"X">>),
    ok = file:close(Fd),
    {ok, Records, Info} = beamprof:read_recording(Path, #{info => true}),
    ?assertEqual([{1, <<"first">>}, {7, <<"last">>}], [{S, M} || #{seq := S, message := M} <- Records]),
    ?assertMatch(#{frames := 6, bad_frames := 1, undecodable := 4, duplicates := 0,
                   skipped := 5, records := 2}, Info).

duplicate_seq_keeps_neither(Config) ->
    Path = path(Config, "dup.bprec"),
    E0 = beamprof_recording_enc:create(Path, 65536),
    E1 = beamprof_recording_enc:append(E0, #{kind => note, message => <<"a">>}),
    E2 = beamprof_recording_enc:append(E1, #{kind => note, message => <<"b">>}),
    %% The writer's sequence set back: frame 2 again, then 3.
    E3 = beamprof_recording_enc:append(setelement(5, E2, 2), #{kind => note, message => <<"c">>}),
    E4 = beamprof_recording_enc:append(E3, #{kind => note, message => <<"d">>}),
    ok = beamprof_recording_enc:close(E4),
    {ok, Records, Info} = beamprof:read_recording(Path, #{info => true}),
    ?assertEqual([{1, <<"a">>}, {3, <<"d">>}], [{S, M} || #{seq := S, message := M} <- Records]),
    ?assertMatch(#{frames := 4, duplicates := 2, skipped := 2}, Info).

%% A payload naming an atom this node does not have is skipped: the atom
%% is not created.
no_atom_created(Config) ->
    Path = path(Config, "atoms.bprec"),
    Name = <<"beamprof_no_such_atom_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    %% Encoded by hand: a map #{kind => note, Name => 1}.
    Payload = <<131, 116, 2:32, 119, 4, "kind", 119, 4, "note",
                119, (byte_size(Name)), Name/binary, 97, 1>>,
    E0 = beamprof_recording_enc:create(Path, 65536),
    E1 = beamprof_recording_enc:append_raw(E0, Payload),
    E2 = beamprof_recording_enc:append(E1, #{kind => note}),
    ok = beamprof_recording_enc:close(E2),
    Count = erlang:system_info(atom_count),
    {ok, [#{seq := 2}], #{undecodable := 1}} = beamprof:read_recording(Path, #{info => true}),
    ?assertError(badarg, binary_to_existing_atom(Name)),
    ct:log("atom count ~p -> ~p", [Count, erlang:system_info(atom_count)]),
    %% The vocabulary decodes: every atom of the format exists.
    [?assertEqual(A, binary_to_existing_atom(atom_to_binary(A))) || A <- beamprof_recording:vocabulary()].

%% A process keeps writing (wrapping a 64 KiB ring many times) while this
%% one reads: every read is a subset of what was written, oldest first;
%% once the writer stops, a read gives exactly what the ring holds.
read_while_writing(Config) ->
    Path = path(Config, "live.bprec"),
    Self = self(),
    Writer = spawn_link(fun() -> writer(Self, beamprof_recording_enc:create(Path, 65536), 1) end),
    receive {Writer, started} -> ok end,
    Reads = read_until(Path, 3000, erlang:monotonic_time(millisecond) + 120000, []),
    Writer ! {Self, stop},
    Enc = receive {Writer, stopped, E} -> E end,
    Written = length(beamprof_recording_enc:written(Enc)),
    ct:log("~B frames written; records per read: ~w", [Written, Reads]),
    ?assert(Written > 2000, Written),                 % it wrapped many times
    ?assert(lists:min(Reads) > 0),
    ?assert(length(Reads) >= 20, length(Reads)),
    {ok, Final} = beamprof:read_recording(Path),
    Live = beamprof_recording_enc:live(Enc),
    ?assertEqual([S || {S, _} <- Live], [S || #{seq := S} <- Final]),
    ?assert(check_live({ok, Final})).

%% Reads until a record's seq reaches Seq (the ring has wrapped many
%% times): the record count of each read.
read_until(Path, Seq, Deadline, Acc) ->
    Result = beamprof:read_recording(Path),
    ?assert(check_live(Result), Result),
    {ok, Rs} = Result,
    Newest = case Rs of [] -> 0; _ -> maps:get(seq, lists:last(Rs)) end,
    Now = erlang:monotonic_time(millisecond),
    if
        Newest >= Seq -> lists:reverse([length(Rs) | Acc]);
        Now > Deadline -> ct:fail({writer_too_slow, Newest});
        true -> read_until(Path, Seq, Deadline, [length(Rs) | Acc])
    end.

writer(Parent, Enc, Seq) ->
    receive
        {Parent, stop} ->
            ok = beamprof_recording_enc:close(Enc),
            Parent ! {self(), stopped, Enc}
    after 0 ->
            Seq =:= 100 andalso (Parent ! {self(), started}),
            writer(Parent, beamprof_recording_enc:append(Enc, live_payload(Seq)), Seq + 1)
    end.

%% The payload of frame Seq: a reader checks a record against it alone.
live_payload(Seq) ->
    #{kind => note, message => binary:copy(<<(Seq rem 251)>>, (Seq * 7919) rem 3000 + 1),
      value => Seq}.

check_live({ok, Records}) ->
    Seqs = [S || #{seq := S} <- Records],
    Seqs =:= lists:usort(Seqs) andalso
        lists:all(fun(#{seq := S} = R) -> prop_beamprof_recording:record_payload(R) =:= live_payload(S) end,
                  Records);
check_live(_) -> false.

%% A 16 MiB ring of tick records of a node with 8 schedulers, wrapped once:
%% the read time is logged (and in the comment), nothing asserted on it.
read_16mib(Config) ->
    Path = path(Config, "big.bprec"),
    Ring = 16 bsl 20,
    N = Ring div 400,
    Enc = beamprof_recording_enc:write_file(Path, Ring, [tick(I) || I <- lists:seq(1, N)]),
    Live = beamprof_recording_enc:live(Enc),
    Times = [element(1, timer:tc(fun() -> {ok, _} = beamprof:read_recording(Path) end))
             || _ <- lists:seq(1, 3)],
    {ok, Records} = beamprof:read_recording(Path),
    ?assertEqual([S || {S, _} <- Live], [S || #{seq := S} <- Records]),
    Comment = io_lib:format("16 MiB, ~B records: read in ~w ms", [length(Records),
                                                                   [T div 1000 || T <- Times]]),
    ct:log("~s", [Comment]),
    {comment, lists:flatten(Comment)}.

tick(I) ->
    #{kind => tick,
      threads => [#{kind => normal, index => J, cpu => 0.25 + J / 100} || J <- lists:seq(1, 8)]
          ++ [#{kind => dirty_cpu, index => 1, cpu => 0.0}],
      demand => 0.31, rss => 200000000 + I * 4096, memory_limit => 0, gate => open,
      gate_reason => none, tick_ms => 100.1}.

%%--------------------------------------------------------------------

path(Config, Name) -> filename:join(?config(priv_dir, Config), Name).

header(Version, HSize, Ring) ->
    F = <<"BPREC", 0, "v1", Version:32/little, HSize:32/little, Ring:64/little, 1:64/little, 0:64>>,
    <<F/binary, (erlang:crc32(F)):32/little, 0:(4052 * 8)>>.
