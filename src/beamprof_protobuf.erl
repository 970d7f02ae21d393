%% @private
%% @doc A small writer of the protocol buffers wire format, enough for
%% `profile.proto' (`beamprof_pprof'): varints, length-delimited fields
%% (strings, bytes, embedded messages) and packed repeated varints. Fields
%% are iodata; a message is the iodata of its fields, and the length of an
%% embedded one is its `iolist_size/1'. No dependency, no schema: the caller
%% names each field by number.
%%
%% Integers: `uint64' values in 0..2^64-1; `int64' values below zero are
%% written as their 64-bit two's complement (ten bytes), as protobuf does
%% for a negative `int64' (no zigzag: `sint64' is not used).
-module(beamprof_protobuf).

-export([varint/1, uint/2, int/2, bool/2, bytes/2, message/2, packed/2, optional/2]).

-define(MAX64, 16#FFFFFFFFFFFFFFFF).

%% @doc The varint encoding of an unsigned 64-bit integer, or of a negative
%% `int64' as its two's complement.
-spec varint(integer()) -> binary().
varint(N) when is_integer(N), N < 0, N >= -(1 bsl 63) ->
    varint(N band ?MAX64);
varint(N) when is_integer(N), N >= 0, N < 128 ->
    <<N>>;
varint(N) when is_integer(N), N >= 0, N < 16384 ->
    <<(N band 127 bor 128), (N bsr 7)>>;
varint(N) when is_integer(N), N >= 0, N =< ?MAX64 ->
    list_to_binary(bytes7(N));
varint(N) ->
    erlang:error({badarg, "Expected a 64-bit integer"}, [N]).

%% Seven bits a byte, least significant first, the high bit set on all
%% but the last.
bytes7(N) when N < 128 -> [N];
bytes7(N) -> [N band 127 bor 128 | bytes7(N bsr 7)].

%% @doc A varint field (wire type 0) holding an unsigned integer.
-spec uint(pos_integer(), non_neg_integer()) -> binary().
uint(Field, N) ->
    <<(key(Field, 0))/binary, (varint(N))/binary>>.

%% @doc A varint field holding a signed 64-bit integer (`int64').
-spec int(pos_integer(), integer()) -> binary().
int(Field, N) ->
    uint(Field, N band ?MAX64).

%% @doc A `bool' field: 1 or 0.
-spec bool(pos_integer(), boolean()) -> binary().
bool(Field, true) -> uint(Field, 1);
bool(Field, false) -> uint(Field, 0).

%% @doc A length-delimited field (wire type 2): a string, bytes.
-spec bytes(pos_integer(), iodata()) -> iodata().
bytes(Field, Data) ->
    [key(Field, 2), varint(iolist_size(Data)) | Data].

%% @doc An embedded message: its fields, length-delimited.
-spec message(pos_integer(), iodata()) -> iodata().
message(Field, Fields) ->
    bytes(Field, Fields).

%% @doc A packed repeated varint field (proto3's default for repeated
%% scalars); nothing for an empty list.
-spec packed(pos_integer(), [integer()]) -> iodata().
packed(_Field, []) -> [];
packed(Field, Ns) -> bytes(Field, [varint(N) || N <- Ns]).

%% @doc A proto3 scalar field as its writer omits it when it holds the
%% default: `{uint | int | bool, Value}', nothing for 0 or false.
-spec optional(pos_integer(), {uint | int, integer()} | {bool, boolean()}) -> iodata().
optional(_Field, {_, 0}) -> [];
optional(_Field, {bool, false}) -> [];
optional(Field, {uint, N}) -> uint(Field, N);
optional(Field, {int, N}) -> int(Field, N);
optional(Field, {bool, B}) -> bool(Field, B).

key(Field, Wire) when is_integer(Field), Field > 0, Field < 1 bsl 29 ->
    varint(Field bsl 3 bor Wire).
