%% @private
%% @doc An address -> name table of JIT code ranges (an ETS ordered_set keyed
%% by start address), where the newest range wins: inserting a range cuts
%% every older range it overlaps out of the table, because the JIT reuses
%% addresses after a module is purged. Names are binaries, never atoms.
-module(beamprof_symtab).

-export([new/0, delete/1, insert/4, lookup/2, size/1, normalize/1]).
-export_type([table/0]).

-opaque table() :: ets:tid().

%% @doc A new, empty table owned by the caller.
-spec new() -> table().
new() ->
    ets:new(beamprof_symtab, [ordered_set, private]).

%% @doc Deletes the table.
-spec delete(table()) -> ok.
delete(Tab) ->
    true = ets:delete(Tab),
    ok.

%% @doc Adds the range [Start, End) named Name (normalized); it replaces
%% whatever older ranges held inside it (they keep what lies outside).
%% Empty ranges are ignored.
-spec insert(table(), Start, End, Name) -> ok when
      Start :: non_neg_integer(), End :: non_neg_integer(), Name :: binary().
insert(_Tab, Start, End, _Name) when End =< Start ->
    ok;
insert(Tab, Start, End, Name) ->
    drop_before(Tab, Start, End),
    drop_from(Tab, Start, End),
    true = ets:insert(Tab, {Start, End, normalize(Name)}),
    ok.

%% The part of an older range starting before Start that reaches into
%% [Start, End) is stale; what lies outside stays (ranges never overlap in
%% the table, so at most one range does this).
drop_before(Tab, Start, End) ->
    case ets:prev(Tab, Start) of
        '$end_of_table' -> ok;
        Prev ->
            case ets:lookup(Tab, Prev) of
                [{_, PrevEnd, Name}] when PrevEnd > Start ->
                    true = ets:insert(Tab, {Prev, Start, Name}),
                    keep_tail(Tab, End, PrevEnd, Name);
                _ ->
                    ok
            end
    end.

%% Every range starting inside [Start, End) is stale up to End.
drop_from(Tab, Start, End) ->
    drop_next(Tab, Start, End).

drop_next(Tab, Key, End) when is_integer(Key), Key < End ->
    Next = ets:next(Tab, Key),
    case ets:take(Tab, Key) of
        [{_, OldEnd, Name}] -> keep_tail(Tab, End, OldEnd, Name);
        [] -> ok
    end,
    drop_next(Tab, Next, End);
drop_next(_Tab, _Key, _End) ->
    ok.

keep_tail(Tab, End, OldEnd, Name) when OldEnd > End ->
    true = ets:insert(Tab, {End, OldEnd, Name}),
    ok;
keep_tail(_Tab, _End, _OldEnd, _Name) ->
    ok.

%% @doc The name of the range holding Addr, or `undefined'.
-spec lookup(table(), Addr :: non_neg_integer()) -> binary() | undefined.
lookup(Tab, Addr) ->
    case ets:prev(Tab, Addr + 1) of
        '$end_of_table' -> undefined;
        Start ->
            case ets:lookup(Tab, Start) of
                [{_, End, Name}] when Addr < End -> Name;
                _ -> undefined
            end
    end.

%% @doc The number of ranges held.
-spec size(table()) -> non_neg_integer().
size(Tab) ->
    ets:info(Tab, size).

%% @doc A JIT range name as a frame: the perf map's `$' prefix stripped and
%% `M:F/A-CodeInfoPrologue' (calls enter through its last bytes) folded into
%% `M:F/A'. Shared fragments such as `global::call_nif_shared' stay frames.
-spec normalize(binary()) -> binary().
normalize(<<"$", Rest/binary>>) ->
    normalize(Rest);
normalize(Name) ->
    Suffix = <<"-CodeInfoPrologue">>,
    Size = byte_size(Name) - byte_size(Suffix),
    case Name of
        <<Fun:Size/binary, "-CodeInfoPrologue">> when Size > 0 -> Fun;
        _ -> Name
    end.
