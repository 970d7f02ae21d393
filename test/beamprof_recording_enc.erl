%% A test-side writer of flight recordings, written from
%% doc/recording-format.md (not from the C writer), to build files for the
%% readers' tests: the header, frames with their CRC, the ring's wrap (a
%% frame that does not fit goes to offset 0 and the skipped bytes are
%% zeroed), the padding to 8 bytes.
%%
%% It writes through file:pwrite/3 on a raw file, frame bytes 4..end first
%% and the magic last, as the format asks of writers, so a reader may run
%% while it writes. It keeps a model of what the ring holds: the frames
%% still whole (a frame is gone once any byte of it is overwritten or
%% zeroed), which is what an untouched file must read back.
-module(beamprof_recording_enc).

-export([create/2, create/3, append/2, append/3, append_raw/2, close/1, live/1, written/1,
         header/3, frame/4, write_file/3, payload/1]).

-define(HEADER_SIZE, 4096).
-define(FRAME_MAGIC, 16#46525042).

%% fd, ring size, where the next frame goes, next seq, the live frames
%% [{Seq, Start, End, Payload}] and every frame ever written [{Seq, Payload}].
-record(enc, {fd, ring, pos = 0, seq = 1, clock, live = queue:new(), written = []}).

%% A new recording of RingSize bytes at Path (header, zeroed ring).
create(Path, RingSize) ->
    create(Path, RingSize, #{}).

%% Opts: os_pid, opened_us, time_us (the first frame's system time; then
%% +1 ms per frame), seq (the first sequence number).
create(Path, RingSize, Opts) ->
    {ok, Fd} = file:open(Path, [read, write, raw, binary]),
    ok = file:pwrite(Fd, 0, header(RingSize, maps:get(os_pid, Opts, 4242),
                                   maps:get(opened_us, Opts, 1700000000000000))),
    {ok, _} = file:position(Fd, ?HEADER_SIZE + RingSize),
    ok = file:truncate(Fd),
    ok = zero(Fd, 0, RingSize),
    T0 = maps:get(time_us, Opts, 1700000000000000),
    #enc{fd = Fd, ring = RingSize, seq = maps:get(seq, Opts, 1),
         clock = {T0, 5000000000}}.

close(#enc{fd = Fd}) -> file:close(Fd).

%% Appends Term (a record payload map) as the next frame.
append(Enc, Term) ->
    append_raw(Enc, payload(Term)).

%% ... with the given system time (µs).
append(Enc = #enc{clock = {_, Mono}}, Term, SysUs) ->
    append_raw(Enc#enc{clock = {SysUs, Mono}}, payload(Term)).

payload(Term) -> term_to_binary(Term).

%% Appends a frame whose payload is Payload as it is (any bytes).
append_raw(#enc{fd = Fd, ring = R, pos = Pos0, seq = Seq, clock = {Sys, Mono}} = Enc, Payload) ->
    Size = 40 + pad8(byte_size(Payload)),
    true = byte_size(Payload) >= 1 andalso byte_size(Payload) =< R - 40,
    {Pos, Live0} = case Pos0 + Size > R of
                       true -> ok = zero(Fd, Pos0, R - Pos0),
                               {0, evict(Enc#enc.live, Pos0, R)};
                       false -> {Pos0, Enc#enc.live}
                   end,
    <<Magic:4/binary, Rest/binary>> = iolist_to_binary(frame(Seq, Mono, Sys, Payload)),
    ok = file:pwrite(Fd, ?HEADER_SIZE + Pos + 4, Rest),
    ok = file:pwrite(Fd, ?HEADER_SIZE + Pos, Magic),
    Live = queue:in({Seq, Pos, Pos + Size, Payload}, evict(Live0, Pos, Pos + Size)),
    Enc#enc{pos = (Pos + Size) rem R, seq = Seq + 1, clock = {Sys + 1000, Mono + 1000000},
            live = Live, written = [{Seq, Payload} | Enc#enc.written]}.

%% Live frames in the order they were written: the ones a write reaches
%% are at the front (the oldest follow the write position round the ring).
evict(Live, A, B) ->
    case queue:peek(Live) of
        {value, {_, S, E, _}} when E > A, S < B -> evict(queue:drop(Live), A, B);
        _ -> Live
    end.

%% The frames the ring holds whole, oldest first: [{Seq, Payload}].
live(#enc{live = Live}) ->
    [{Seq, P} || {Seq, _, _, P} <- queue:to_list(Live)].

%% Every frame written, oldest first.
written(#enc{written = W}) -> lists:reverse(W).

%% The 4096-byte header.
header(RingSize, OsPid, OpenedUs) ->
    Fields = <<"BPREC", 0, "v1", 1:32/little, ?HEADER_SIZE:32/little, RingSize:64/little,
               OsPid:64/little, OpenedUs:64/little-signed>>,
    Crc = erlang:crc32(Fields),
    <<Fields/binary, Crc:32/little, 0:((?HEADER_SIZE - 44) * 8)>>.

%% One frame, padded to a multiple of 8.
frame(Seq, MonoNs, SysUs, Payload) ->
    L = byte_size(Payload),
    Covered = <<L:32/little, Seq:64/little, MonoNs:64/little-signed, SysUs:64/little-signed>>,
    Crc = erlang:crc32(erlang:crc32(Covered), Payload),
    [<<?FRAME_MAGIC:32/little>>, Covered, <<Crc:32/little, 0:32>>, Payload,
     <<0:((pad8(L) - L) * 8)>>].

%% A whole recording of Terms (payload maps) in a ring of RingSize bytes;
%% returns the encoder's final state (closed).
write_file(Path, RingSize, Terms) ->
    Enc = lists:foldl(fun(T, E) -> append(E, T) end, create(Path, RingSize), Terms),
    ok = close(Enc),
    Enc.

pad8(L) -> (L + 7) band -8.

zero(_Fd, _At, 0) -> ok;
zero(Fd, At, N) ->
    Chunk = min(N, 1 bsl 20),
    ok = file:pwrite(Fd, ?HEADER_SIZE + At, <<0:(Chunk * 8)>>),
    zero(Fd, At + Chunk, N - Chunk).
