%% @doc Reads a flight recording (the file format of
%% `doc/recording-format.md', version 1) on any node, with or without
%% beamprof running.
%%
%% `read(Path)' returns `{ok, Records}', oldest first: each record is the
%% frame's payload map (its `kind' and the fields the format lists for that
%% kind) plus `time' (the frame's system time, ms since the epoch), `seq'
%% (its sequence number) and `mono_ns' (the writer's monotonic clock, ns).
%% `read(Path, Options)' keeps the records with `since =< time =< until'
%% (ms, both optional) whose kind is in `kinds'; with `info => true' it
%% returns `{ok, Records, Info}' (see `info()'): how many frames were taken
%% and how many were skipped, and why.
%%
%% How a frame is taken, as the format says: the ring is scanned at every
%% multiple of 8; where the frame magic stands, the length fits before the
%% ring's end and the CRC-32 matches, the frame is taken and the scan
%% continues after it. A torn frame (written while the VM was killed, or
%% while this read ran) fails its CRC and is skipped; where two frames carry
%% one sequence number neither is kept. A payload is decoded with
%% `binary_to_term(Payload, [safe, used])': it must use all its bytes and be
%% a map whose `kind' is an atom, or it is skipped. Reading never creates an
%% atom (`safe'); the atoms of the format's vocabulary exist once this
%% module is loaded (`vocabulary/0' names them), so a recording of another
%% node decodes here.
%%
%% Errors, never a crash: `{error, not_a_recording}' (the file does not
%% start with the magic), `{error, {truncated, #{size, expected}}}' (shorter
%% than its header says, or than a header), `{error, {corrupt, header}}'
%% (header CRC, header size or ring size wrong), `{error, {corrupt, #{size,
%% expected}}}' (longer than its header says), `{error, {unsupported_version,
%% V}}' (a valid header of a later format), `{error, {file, Posix}}' (it
%% cannot be opened or read). Bad options raise `{badarg, Message}' naming
%% the option.
%%
%% Without a VM, `beamprof_read' (built into beamprof's `priv' directory
%% with the NIF libraries, from `c_src/tools/'; it links erl_interface's
%% `libei.a') reads the same files the same way and prints one line per
%% record: `beamprof_read [--json] [--since MS] [--until MS] [--kind KIND]...
%% [--stats] FILE'. Text lines read `2025-12-05T01:00:00.100Z #2 tick
%% demand=0.2 gate=open ...' (values in Erlang syntax); `--json' lines are
%% objects with `seq', `time', `mono_ns' and the payload's entries (atoms as
%% strings, `true'/`false' as booleans, `undefined' as null, binaries as
%% strings, invalid UTF-8 as U+FFFD, tuples as arrays, floats with the
%% shortest digits that read back the same). The skip counts go to stderr
%% (with `--stats', or whenever a frame was skipped). Exit codes: 0 read, 1
%% usage, 2 the file cannot be read, 3 not a recording, 4 truncated, 5
%% corrupt, 6 another format version, 7 out of memory.
%%
%% Cost: one `pread' of the header and one of the ring (raw file, no file
%% server), then `binary:matches/2' finds the candidate frames in C and each
%% frame's CRC is checked; most of the time goes to decoding the payloads
%% (`binary_to_term/2', about 10 µs for a tick record of a node with 8
%% schedulers), spread over one process per online scheduler. A full 16 MiB
%% ring of about 28 000 such records takes about 0.65 s of CPU. `since' and
%% `until' are applied to the frames' times before decoding, so a read of
%% the last minute costs a fraction of that.
-module(beamprof_recording).

-export([read/1, read/2, vocabulary/0, kinds/0]).
-export([decode_exit/1]).

-export_type([record_map/0, kind/0, options/0, info/0]).

-define(MAGIC, "BPREC\0v1").
-define(HEADER_SIZE, 4096).
-define(FRAME_MAGIC, 16#46525042).
-define(FRAME_HEAD, 40).
-define(MIN_RING, 65536).
-define(PARALLEL_FROM, 4096).

-type kind() :: header | tick | interval | scan | threshold | monitor | gate | profile | note.
-type record_map() :: #{kind := atom(), time := integer(), seq := pos_integer(),
                    mono_ns := integer(), atom() => term()}.
-type options() :: #{since => integer(), until => integer(), kinds => [kind()],
                     info => boolean()}.
-type info() :: #{frames := non_neg_integer(), records := non_neg_integer(),
                  skipped := non_neg_integer(), bad_frames := non_neg_integer(),
                  undecodable := non_neg_integer(), duplicates := non_neg_integer(),
                  ring_size := pos_integer(), os_pid := non_neg_integer(),
                  opened_us := integer()}.
%% `frames': frames taken (magic, length and CRC good). `records': records
%% returned (after the filters). `skipped' = `bad_frames' (places where the
%% frame magic stood but the length or the CRC did not check: torn or
%% overwritten frames) + `undecodable' (payloads that did not decode, safely
%% and wholly, to a map with an atom `kind'; only the payloads within
%% `since' and `until' are decoded, so only those count) + `duplicates' (frames dropped
%% because another carried their sequence number). `ring_size', `os_pid'
%% and `opened_us' come from the header.

-type reason() :: not_a_recording | {truncated, map()} | {corrupt, header | map()}
                | {unsupported_version, non_neg_integer()} | {file, file:posix() | badarg}.

%% @doc Reads every record of the recording at `Path', oldest first. See
%% the module documentation for the records and the errors.
-spec read(Path) -> {ok, [record_map()]} | {error, reason()} when Path :: file:name_all().
read(Path) ->
    read(Path, #{}).

%% @doc Reads the records of `Path' that `Options' select: `since' and
%% `until' (ms since the epoch, inclusive, compared with each record's
%% `time'), `kinds' (a list of `kinds()'). `info => true' returns
%% `{ok, Records, Info}' with what was taken and skipped (`info()'). An
%% unknown option or an ill-typed value raises `{badarg, Message}' naming
%% it.
-spec read(Path, Options) -> {ok, [record_map()]} | {ok, [record_map()], info()} | {error, reason()}
              when Path :: file:name_all(), Options :: options().
read(Path, Options) ->
    Opts = check_options(Path, Options),
    case read_file(Path) of
        {ok, Header, Ring} -> {ok, Frames, Info} = frames(Ring, Header, Opts), result(Frames, Info, Opts);
        {error, _} = Error -> Error
    end.

%% @doc The record kinds of format version 1.
-spec kinds() -> [kind()].
kinds() ->
    [header, tick, interval, scan, threshold, monitor, gate, profile, note].

%% @doc Every atom the format's payloads may hold (kinds, keys and values).
%% Calling it is not needed: the atoms exist as soon as this module is
%% loaded, which is what lets `binary_to_term/2' with `safe' decode them.
-spec vocabulary() -> [atom()].
vocabulary() ->
    kinds() ++
        [kind, node, otp_release, erts_version, beamprof_version, os_pid, schedulers,
         schedulers_online, dirty_cpu_schedulers, dirty_io_schedulers, tick_ms, interval_ms,
         memory_limit, ring_size, undefined, threads, index, cpu, normal, dirty_cpu, dirty_io,
         other, demand, rss, gate_reason, open, closed, none, scheduler, memory, blind,
         utilization, run_queues, total, processes, binary, ets, atom, code, system,
         process_count, port_count, top, message_queue_len, reductions, pid, name, value, key,
         limit, event, long_gc, long_schedule, large_heap, busy_port, busy_dist_port,
         long_message_queue, info, state, reason, start, stop, target, strategy, ms, message,
         sample, calls, call_graph, eprof, fprof, cprof, flame_graph, true, false,
         %% the keys of a monitor record's info map (beamprof_recorder_records)
         duration_ms, heap_size, heap_block_size, stack_size, mbuf_size, old_heap_size,
         old_heap_block_size, total_heap_size, in, out, port, port_name, port_op,
         current_function, timeout,
         %% added by the reader
         time, seq, mono_ns].

%%--------------------------------------------------------------------
%% options

check_options(_Path, Options) when is_map(Options) ->
    maps:fold(fun check_option/3, #{since => undefined, until => undefined, kinds => all,
                                    info => false}, Options);
check_options(Path, Options) ->
    erlang:error({badarg, "Expected the options to be a map (since, until, kinds, info)"},
                 [Path, Options]).

check_option(since, V, Acc) when is_integer(V) -> Acc#{since := V};
check_option(until, V, Acc) when is_integer(V) -> Acc#{until := V};
check_option(info, V, Acc) when is_boolean(V) -> Acc#{info := V};
check_option(kinds, V, Acc) when is_list(V) ->
    case lists:all(fun(K) -> lists:member(K, kinds()) end, V) of
        true -> Acc#{kinds := V};
        false -> bad_option(kinds, V)
    end;
check_option(Key, V, _Acc) when Key =:= since; Key =:= until; Key =:= info; Key =:= kinds ->
    bad_option(Key, V);
check_option(Key, V, _Acc) ->
    erlang:error({badarg, lists:flatten(io_lib:format("Unknown option ~0tP (expected since, "
                                                      "until, kinds, info)", [Key, 8]))},
                 [{Key, V}]).

-spec bad_option(atom(), term()) -> no_return().
bad_option(Key, V) ->
    Expected = case Key of
                   since -> "since to be an integer (ms since the epoch)";
                   until -> "until to be an integer (ms since the epoch)";
                   info -> "info to be a boolean";
                   kinds -> "kinds to be a list of record kinds (" ++ kind_names() ++ ")"
               end,
    erlang:error({badarg, lists:flatten(io_lib:format("Expected ~s, got: ~0tP",
                                                      [Expected, V, 8]))}, [{Key, V}]).

kind_names() ->
    lists:join(", ", [atom_to_list(K) || K <- kinds()]).

%%--------------------------------------------------------------------
%% the file

read_file(Path) ->
    case file:open(Path, [read, raw, binary]) of
        {ok, Fd} ->
            try read_fd(Fd) after ok = file:close(Fd) end;
        {error, Posix} -> {error, {file, Posix}}
    end.

read_fd(Fd) ->
    case file:pread(Fd, 0, ?HEADER_SIZE) of
        {ok, Bin} -> header(Bin, Fd);
        eof -> {error, not_a_recording};
        {error, Posix} -> {error, {file, Posix}}
    end.

header(<<?MAGIC, _/binary>> = Bin, Fd) when byte_size(Bin) < ?HEADER_SIZE ->
    {error, {truncated, #{size => file_size(Fd, byte_size(Bin)), expected => expected(Bin)}}};
header(<<?MAGIC, Version:32/little, HSize:32/little, Ring:64/little, Pid:64/little,
         Opened:64/little-signed, Crc:32/little, _/binary>> = Bin, Fd) ->
    <<Covered:40/binary, _/binary>> = Bin,
    Computed = erlang:crc32(Covered),
    if
        Crc =/= Computed -> {error, {corrupt, header}};
        Version =/= 1 -> {error, {unsupported_version, Version}};
        HSize =/= ?HEADER_SIZE; Ring rem 8 =/= 0; Ring < ?MIN_RING -> {error, {corrupt, header}};
        true -> ring(Fd, #{ring_size => Ring, os_pid => Pid, opened_us => Opened})
    end;
header(Bin, _Fd) ->
    Size = byte_size(Bin),
    case Size < 8 andalso binary:part(<<?MAGIC>>, 0, Size) =:= Bin of
        true -> {error, {truncated, #{size => Size, expected => ?HEADER_SIZE}}};
        false -> {error, not_a_recording}
    end.

%% The size a short header announces, when enough of it is there.
expected(<<?MAGIC, _:32, _:32, Ring:64/little, _/binary>>) -> ?HEADER_SIZE + Ring;
expected(_) -> ?HEADER_SIZE.

file_size(Fd, Default) ->
    case file:position(Fd, eof) of
        {ok, Size} -> Size;
        {error, _} -> Default
    end.

ring(Fd, #{ring_size := Ring} = Header) ->
    Expected = ?HEADER_SIZE + Ring,
    case file_size(Fd, -1) of
        Expected -> read_ring(Fd, Header);
        Size when Size < Expected -> {error, {truncated, #{size => Size, expected => Expected}}};
        Size -> {error, {corrupt, #{size => Size, expected => Expected}}}
    end.

read_ring(Fd, #{ring_size := Ring} = Header) ->
    case file:pread(Fd, ?HEADER_SIZE, Ring) of
        {ok, Bin} when byte_size(Bin) =:= Ring -> {ok, Header, Bin};
        {ok, Bin} -> shrunk(?HEADER_SIZE + byte_size(Bin), Ring);
        eof -> shrunk(?HEADER_SIZE, Ring);
        {error, Posix} -> {error, {file, Posix}}
    end.

%% The file got shorter between the size check and the read.
shrunk(Size, Ring) ->
    {error, {truncated, #{size => Size, expected => ?HEADER_SIZE + Ring}}}.

%%--------------------------------------------------------------------
%% frames

%% Candidates are where the frame magic stands at a multiple of 8; the
%% magic's four bytes cannot overlap themselves, so binary:matches/2 finds
%% every one.
%% The time filter is applied to the frames before their payloads are
%% decoded (decoding is most of the cost).
frames(Ring, Header, #{since := Since, until := Until}) ->
    Starts = [P || {P, _} <- binary:matches(Ring, <<?FRAME_MAGIC:32/little>>), P band 7 =:= 0],
    {Taken, Bad} = scan(Starts, Ring, 0, [], 0),
    {Unique, Dups} = unique(lists:keysort(1, Taken)),
    InTime = [F || {_, _, Sys, _} = F <- Unique, in_time(floor_div(Sys, 1000), Since, Until)],
    {Records, Undecodable} = decode_all(InTime),
    {ok, Records, Header#{frames => length(Taken), bad_frames => Bad,
                          undecodable => Undecodable, duplicates => Dups,
                          skipped => Bad + Undecodable + Dups}}.

scan([], _Ring, _Cursor, Acc, Bad) -> {Acc, Bad};
scan([P | Ps], Ring, Cursor, Acc, Bad) when P < Cursor -> scan(Ps, Ring, Cursor, Acc, Bad);
scan([P | Ps], Ring, _Cursor, Acc, Bad) ->
    case frame(Ring, P) of
        {ok, Frame, End} -> scan(Ps, Ring, End, [Frame | Acc], Bad);
        error -> scan(Ps, Ring, P + 8, Acc, Bad + 1)
    end.

%% {Seq, MonoNs, SysUs, Payload} of a frame that checks, and where the next
%% one may start.
frame(Ring, P) ->
    RingSize = byte_size(Ring),
    case Ring of
        <<_:P/binary, _:32, L:32/little, _/binary>> when L >= 1, L =< RingSize - ?FRAME_HEAD,
                                                         P + ?FRAME_HEAD + L =< RingSize ->
            <<_:P/binary, _:4/binary, Covered:28/binary, Crc:32/little, _:32,
              Payload:L/binary, _/binary>> = Ring,
            <<_:32, Seq:64/little, Mono:64/little-signed, Sys:64/little-signed>> = Covered,
            case erlang:crc32(erlang:crc32(Covered), Payload) of
                Crc -> {ok, {Seq, Mono, Sys, Payload}, P + ?FRAME_HEAD + pad8(L)};
                _ -> error
            end;
        _ -> error
    end.

pad8(L) -> (L + 7) band -8.

%% Sorted by sequence number; a number held by two frames or more drops
%% them all.
unique(Sorted) -> unique(Sorted, [], 0).

unique([{S, _, _, _}, {S, _, _, _} | _] = Frames, Acc, Dups) ->
    {Same, Rest} = lists:splitwith(fun({S1, _, _, _}) -> S1 =:= S end, Frames),
    unique(Rest, Acc, Dups + length(Same));
unique([F | Rest], Acc, Dups) -> unique(Rest, [F | Acc], Dups);
unique([], Acc, Dups) -> {lists:reverse(Acc), Dups}.

%% Decoding is most of a read's time (about 10 µs for a tick record of 8
%% schedulers): a large ring is decoded in chunks by one process per
%% online scheduler. Each returns its records as its exit reason.
decode_all(Frames) when length(Frames) < ?PARALLEL_FROM ->
    decode(Frames, [], 0);
decode_all(Frames) ->
    N = erlang:system_info(schedulers_online),
    Chunks = chunks(Frames, (length(Frames) + N - 1) div N),
    Workers = [{spawn_monitor(?MODULE, decode_exit, [C]), C} || C <- Chunks],
    Results = [receive
                   {'DOWN', Ref, process, Pid, {decoded, R}} -> R;
                   {'DOWN', Ref, process, Pid, _Killed} -> decode(C, [], 0)
               end || {{Pid, Ref}, C} <- Workers],
    {lists:append([Rs || {Rs, _} <- Results]), lists:sum([B || {_, B} <- Results])}.

%% @doc Internal (not API): the body of a process that decodes a chunk of
%% frames for `read/2'; it exits with `{decoded, {Records, Undecodable}}'.
-spec decode_exit(list()) -> no_return().
decode_exit(Chunk) ->
    exit({decoded, decode(Chunk, [], 0)}).

chunks([], _Size) -> [];
chunks(List, Size) when length(List) =< Size -> [List];
chunks(List, Size) ->
    {Chunk, Rest} = lists:split(Size, List),
    [Chunk | chunks(Rest, Size)].

decode([], Acc, Bad) -> {lists:reverse(Acc), Bad};
decode([{Seq, Mono, Sys, Payload} | Rest], Acc, Bad) ->
    case payload(Payload) of
        {ok, Map} ->
            decode(Rest, [Map#{time => floor_div(Sys, 1000), seq => Seq, mono_ns => Mono} | Acc],
                   Bad);
        error -> decode(Rest, Acc, Bad + 1)
    end.

payload(Payload) ->
    Size = byte_size(Payload),
    try binary_to_term(Payload, [safe, used]) of
        {#{kind := Kind} = Map, Size} when is_atom(Kind) -> {ok, Map};
        _ -> error
    catch
        error:badarg -> error
    end.

floor_div(A, B) when A >= 0 -> A div B;
floor_div(A, B) -> -((-A + B - 1) div B).

%%--------------------------------------------------------------------
%% the answer

in_time(T, Since, Until) ->
    (Since =:= undefined orelse T >= Since) andalso (Until =:= undefined orelse T =< Until).

result(Records0, Info, #{kinds := Kinds, info := WithInfo}) ->
    Records = [R || #{kind := K} = R <- Records0, Kinds =:= all orelse lists:member(K, Kinds)],
    case WithInfo of
        true -> {ok, Records, Info#{records => length(Records)}};
        false -> {ok, Records}
    end.
