%% A reader of pprof files for the tests, written from the definition of
%% `perftools.profiles.Profile' (google/pprof's proto/profile.proto: field
%% numbers and types as that file gives them), not from beamprof's writer:
%% a generic protobuf wire-format parser, then each message's fields by
%% number, string indices resolved through the string table.
%%
%% decode(GzOrRaw) -> {ok, Profile} | {error, Reason}; Profile is a map:
%%   sample_type, period_type => #{type, unit}
%%   samples => [#{location_ids => [Id] (leaf first), values => [integer()],
%%                 labels => [#{key, str} | #{key, num, num_unit}]}]
%%   mappings => [#{id, memory_start, memory_limit, file_offset, filename, build_id,
%%                  has_functions, has_filenames, has_line_numbers, has_inline_frames}]
%%   locations => [#{id, mapping_id, address, lines => [#{function_id, line}], is_folded}]
%%   functions => [#{id, name, system_name, filename, start_line}]
%%   string_table, comments => [binary()], time_nanos, duration_nanos, period,
%%   default_sample_type, drop_frames, keep_frames (strings resolved)
%% Unknown fields are skipped, as protobuf readers do. A string index out
%% of the table, a string_table[0] other than "", a truncated field or a
%% wire type the schema does not allow is an error.
%%
%% stacks(Profile) -> [{RootFirstNames, Values, Labels}] for assertions.
-module(beamprof_pprof_decode).

-export([decode/1, stacks/1, labels/1]).

-define(MASK64, 16#FFFFFFFFFFFFFFFF).

decode(<<31, 139, _/binary>> = Gz) ->
    try zlib:gunzip(Gz) of
        Raw -> decode(Raw)
    catch _:Reason -> {error, {gunzip, Reason}}
    end;
decode(Raw) when is_binary(Raw) ->
    try
        Msg = message(Raw, profile),
        {ok, resolve(Msg)}
    catch throw:{pprof_decode, Reason} -> {error, Reason}
    end.

fail(Reason) -> throw({pprof_decode, Reason}).

%% --- the wire format ---------------------------------------------------------------

%% [{FieldNumber, WireType, Value}]: integers for varint and fixed, binaries
%% for length-delimited.
fields(<<>>) -> [];
fields(Bin) ->
    {Key, Rest} = varint(Bin),
    Field = Key bsr 3,
    Field > 0 orelse fail({bad_field_number, Key}),
    case Key band 7 of
        0 -> {V, R} = varint(Rest), [{Field, 0, V} | fields(R)];
        1 -> case Rest of
                 <<V:64/little, R/binary>> -> [{Field, 1, V} | fields(R)];
                 _ -> fail(truncated_fixed64)
             end;
        2 -> {Len, R0} = varint(Rest),
             case R0 of
                 <<V:Len/binary, R/binary>> -> [{Field, 2, V} | fields(R)];
                 _ -> fail({truncated_bytes, Field, Len})
             end;
        5 -> case Rest of
                 <<V:32/little, R/binary>> -> [{Field, 5, V} | fields(R)];
                 _ -> fail(truncated_fixed32)
             end;
        W -> fail({unsupported_wire_type, Field, W})
    end.

varint(Bin) -> varint(Bin, 0, 0).

varint(<<1:1, B:7, Rest/binary>>, Shift, Acc) when Shift < 63 -> varint(Rest, Shift + 7, Acc bor (B bsl Shift));
varint(<<0:1, B:7, Rest/binary>>, Shift, Acc) -> {(Acc bor (B bsl Shift)) band ?MASK64, Rest};
varint(_, _, _) -> fail(bad_varint).

varints(<<>>) -> [];
varints(Bin) -> {V, R} = varint(Bin), [V | varints(R)].

signed(V) when V >= 1 bsl 63 -> V - (1 bsl 64);
signed(V) -> V.

%% --- the schema (profile.proto) -------------------------------------------------------
%% {Name, Type, repeated | single}; Type: uint64 | int64 | bool | string (an
%% int64 index into the string table) | {message, Schema}.

schema(profile) ->
    #{1 => {sample_type, {message, value_type}, repeated},
      2 => {samples, {message, sample}, repeated},
      3 => {mappings, {message, mapping}, repeated},
      4 => {locations, {message, location}, repeated},
      5 => {functions, {message, function}, repeated},
      6 => {string_table, bytes, repeated},
      7 => {drop_frames, string, single},
      8 => {keep_frames, string, single},
      9 => {time_nanos, int64, single},
      10 => {duration_nanos, int64, single},
      11 => {period_type, {message, value_type}, single},
      12 => {period, int64, single},
      13 => {comments, string, repeated},
      14 => {default_sample_type, string, single},
      15 => {tick_unit, string, single}};
schema(value_type) ->
    #{1 => {type, string, single}, 2 => {unit, string, single}};
schema(sample) ->
    #{1 => {location_ids, uint64, repeated},
      2 => {values, int64, repeated},
      3 => {labels, {message, label}, repeated}};
schema(label) ->
    #{1 => {key, string, single}, 2 => {str, string, single}, 3 => {num, int64, single},
      4 => {num_unit, string, single}};
schema(mapping) ->
    #{1 => {id, uint64, single}, 2 => {memory_start, uint64, single},
      3 => {memory_limit, uint64, single}, 4 => {file_offset, uint64, single},
      5 => {filename, string, single}, 6 => {build_id, string, single},
      7 => {has_functions, bool, single}, 8 => {has_filenames, bool, single},
      9 => {has_line_numbers, bool, single}, 10 => {has_inline_frames, bool, single}};
schema(location) ->
    #{1 => {id, uint64, single}, 2 => {mapping_id, uint64, single},
      3 => {address, uint64, single}, 4 => {lines, {message, line}, repeated},
      5 => {is_folded, bool, single}};
schema(line) ->
    #{1 => {function_id, uint64, single}, 2 => {line, int64, single}};
schema(function) ->
    #{1 => {id, uint64, single}, 2 => {name, string, single},
      3 => {system_name, string, single}, 4 => {filename, string, single},
      5 => {start_line, int64, single}}.

%% A message as a map with every field of its schema (proto3 defaults for
%% the absent ones); strings still as {string, Index}.
message(Bin, Name) ->
    Schema = schema(Name),
    Defaults = maps:from_list([{N, default(T, C)} || {N, T, C} <- maps:values(Schema)]),
    Msg = lists:foldl(fun({F, Wire, V}, Acc) ->
                              case Schema of
                                  #{F := {N, T, C}} -> put_field(N, C, value(T, Wire, V, N), Acc);
                                  _ -> Acc
                              end
                      end, Defaults, fields(Bin)),
    %% repeated fields were gathered newest first
    maps:fold(fun(_, {N, _, repeated}, Acc) -> Acc#{N := lists:reverse(maps:get(N, Acc))};
                 (_, _, Acc) -> Acc
              end, Msg, Schema).

default(_, repeated) -> [];
default({message, _}, single) -> undefined;
default(bool, single) -> false;
default(string, single) -> {string, 0};
default(bytes, single) -> <<>>;
default(_, single) -> 0.

put_field(N, repeated, Vs, Acc) when is_list(Vs) -> Acc#{N := lists:reverse(Vs, maps:get(N, Acc))};
put_field(N, repeated, V, Acc) -> Acc#{N := [V | maps:get(N, Acc)]};
put_field(N, single, V, Acc) -> Acc#{N := V}.

%% Repeated scalars come packed (wire type 2, a list back) or one by one.
value({message, M}, 2, Bin, _) -> message(Bin, M);
value(bytes, 2, Bin, _) -> Bin;
value(uint64, 0, V, _) -> V;
value(uint64, 2, Bin, _) -> varints(Bin);
value(int64, 0, V, _) -> signed(V);
value(int64, 2, Bin, _) -> [signed(V) || V <- varints(Bin)];
value(string, 0, V, _) -> {string, signed(V)};
value(string, 2, Bin, _) -> [{string, signed(V)} || V <- varints(Bin)];
value(bool, 0, V, _) -> V =/= 0;
value(_, Wire, _, Name) -> fail({wire_type, Name, Wire}).

%% --- strings ----------------------------------------------------------------------

resolve(#{string_table := Strings} = P) ->
    case Strings of
        [<<>> | _] -> ok;
        [] -> fail(empty_string_table);
        _ -> fail(string_table_0_not_empty)
    end,
    Table = list_to_tuple(Strings),
    strings(P, Table).

strings({string, I}, Table) when I >= 0, I < tuple_size(Table) -> element(I + 1, Table);
strings({string, I}, _Table) -> fail({string_index, I});
strings(Map, Table) when is_map(Map) -> maps:map(fun(_, V) -> strings(V, Table) end, Map);
strings(List, Table) when is_list(List) -> [strings(V, Table) || V <- List];
strings(Other, _Table) -> Other.

%% --- for assertions ---------------------------------------------------------------

%% Each sample as root-first function names (a location's lines are
%% innermost first), its values and its labels as {Key, Str | {Num, Unit}}.
stacks(#{samples := Samples, locations := Locs, functions := Funs}) ->
    LocMap = maps:from_list([{Id, L} || #{id := Id} = L <- Locs]),
    FunMap = maps:from_list([{Id, F} || #{id := Id} = F <- Funs]),
    [{lists:reverse(lists:append([names(maps:get(L, LocMap), FunMap) || L <- Ids])), Vs,
      labels(S)}
     || #{location_ids := Ids, values := Vs} = S <- Samples].

names(#{lines := Lines}, FunMap) ->
    [maps:get(name, maps:get(F, FunMap)) || #{function_id := F} <- Lines].

labels(#{labels := Labels}) ->
    [case L of
         #{str := <<>>, num := N, num_unit := U} when N =/= 0 -> {K, {N, U}};
         #{str := S} -> {K, S}
     end || #{key := K} = L <- Labels].
