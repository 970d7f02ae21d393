%% EUnit tests of the protobuf wire-format writer: varints against the
%% examples of the protobuf encoding guide and a decoder written here, keys,
%% length-delimited and packed fields, two's complement of negative int64.
-module(beamprof_protobuf_tests).

-include_lib("eunit/include/eunit.hrl").

varint_examples_test() ->
    ?assertEqual(<<0>>, beamprof_protobuf:varint(0)),
    ?assertEqual(<<1>>, beamprof_protobuf:varint(1)),
    ?assertEqual(<<127>>, beamprof_protobuf:varint(127)),
    ?assertEqual(<<16#80, 16#01>>, beamprof_protobuf:varint(128)),
    ?assertEqual(<<16#96, 16#01>>, beamprof_protobuf:varint(150)),
    ?assertEqual(<<16#AC, 16#02>>, beamprof_protobuf:varint(300)),
    ?assertEqual(<<255, 255, 255, 255, 255, 255, 255, 255, 255, 1>>,
                 beamprof_protobuf:varint(16#FFFFFFFFFFFFFFFF)).

negative_int64_test() ->
    %% -1 as int64: ten bytes, all ones
    ?assertEqual(<<255, 255, 255, 255, 255, 255, 255, 255, 255, 1>>,
                 beamprof_protobuf:varint(-1)),
    ?assertEqual(beamprof_protobuf:varint(16#FFFFFFFFFFFFFFFE), beamprof_protobuf:varint(-2)),
    ?assertEqual(<<8, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1>>,
                 beamprof_protobuf:int(1, -1)).

out_of_range_test() ->
    ?assertError({badarg, _}, beamprof_protobuf:varint(1 bsl 64)),
    ?assertError({badarg, _}, beamprof_protobuf:varint(-(1 bsl 63) - 1)),
    ?assertError({badarg, _}, beamprof_protobuf:varint(1.0)).

varint_roundtrip_test() ->
    Ns = [0, 1, 127, 128, 16383, 16384, (1 bsl 32) - 1, 1 bsl 32, (1 bsl 63), (1 bsl 64) - 1]
        ++ [rand:uniform(1 bsl 64) - 1 || _ <- lists:seq(1, 500)],
    [?assertEqual({N, <<>>}, decode_varint(beamprof_protobuf:varint(N))) || N <- Ns].

fields_test() ->
    %% field 1 varint 150: 08 96 01 (the encoding guide's first example)
    ?assertEqual(<<16#08, 16#96, 16#01>>, beamprof_protobuf:uint(1, 150)),
    %% field 2 string "testing": 12 07 74 65 73 74 69 6e 67
    ?assertEqual(<<16#12, 7, "testing">>, iolist_to_binary(beamprof_protobuf:bytes(2, <<"testing">>))),
    %% an embedded message of field 3 holding field 1 = 150
    ?assertEqual(<<16#1A, 3, 16#08, 16#96, 16#01>>,
                 iolist_to_binary(beamprof_protobuf:message(3, beamprof_protobuf:uint(1, 150)))),
    %% packed [3, 270, 86942] in field 4: 22 06 03 8E 02 9E A7 05
    ?assertEqual(<<16#22, 6, 3, 16#8E, 2, 16#9E, 16#A7, 5>>,
                 iolist_to_binary(beamprof_protobuf:packed(4, [3, 270, 86942]))),
    ?assertEqual(<<>>, iolist_to_binary(beamprof_protobuf:packed(4, []))),
    ?assertEqual(<<16#38, 1>>, beamprof_protobuf:bool(7, true)),
    ?assertEqual(<<16#38, 0>>, beamprof_protobuf:bool(7, false)),
    %% a large field number takes a multi-byte key
    ?assertEqual(<<16#80, 16#01, 5>>, beamprof_protobuf:uint(16, 5)).

optional_test() ->
    ?assertEqual([], beamprof_protobuf:optional(1, {uint, 0})),
    ?assertEqual([], beamprof_protobuf:optional(1, {int, 0})),
    ?assertEqual([], beamprof_protobuf:optional(1, {bool, false})),
    ?assertEqual(<<8, 5>>, iolist_to_binary(beamprof_protobuf:optional(1, {uint, 5}))),
    ?assertEqual(<<8, 1>>, iolist_to_binary(beamprof_protobuf:optional(1, {bool, true}))).

long_length_test() ->
    Data = binary:copy(<<"x">>, 300),
    <<16#0A, 16#AC, 16#02, Rest/binary>> = iolist_to_binary(beamprof_protobuf:bytes(1, Data)),
    ?assertEqual(Data, Rest).

decode_varint(Bin) -> decode_varint(Bin, 0, 0).

decode_varint(<<1:1, B:7, Rest/binary>>, Shift, Acc) -> decode_varint(Rest, Shift + 7, Acc bor (B bsl Shift));
decode_varint(<<0:1, B:7, Rest/binary>>, Shift, Acc) -> {Acc bor (B bsl Shift), Rest}.
