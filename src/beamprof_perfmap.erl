%% @private
%% @doc Reads the JIT's perf map, `/tmp/perf-<OsPid>.map', which the VM
%% writes when started with `+JPperf map' (or `true'), incrementally: the
%% file is append-only (one batch per module load), so each `refresh/1'
%% reads only what was appended since the last one, from the remembered
%% offset, and keeps a trailing partial line for next time. Lines are
%% `<hex start> <hex size> <name>'; addresses are reused after a purge, so
%% the newest line covering an address wins (beamprof_symtab).
%%
%% Cost: one `pread' of the new bytes per refresh; a VM at boot has about
%% 16,000 lines (about 1 MB).
-module(beamprof_perfmap).
-include_lib("kernel/include/file.hrl").

-export([path/0, path/1, open/0, open/1, refresh/1, lookup/2, close/1, size/1,
         parse_line/1]).
-export_type([perfmap/0]).

-define(CHUNK, 1048576).

-opaque perfmap() :: #{path := file:filename(), offset := non_neg_integer(),
                       rest := binary(), tab := beamprof_symtab:table()}.

%% @doc This VM's perf map path.
-spec path() -> file:filename().
path() ->
    path(os:getpid()).

%% @doc The perf map path of the VM with OS pid OsPid.
-spec path(OsPid :: string() | pos_integer()) -> file:filename().
path(OsPid) when is_integer(OsPid) ->
    path(integer_to_list(OsPid));
path(OsPid) ->
    "/tmp/perf-" ++ OsPid ++ ".map".

%% @doc Opens this VM's perf map and reads it whole.
-spec open() -> {ok, perfmap()} | {error, file:posix()}.
open() ->
    open(path()).

%% @doc Opens the perf map at Path and reads it whole; `{error, enoent}'
%% when the VM was not started with `+JPperf map'.
-spec open(file:filename()) -> {ok, perfmap()} | {error, file:posix()}.
open(Path) ->
    case file:read_file_info(Path) of
        {ok, _} ->
            Map = #{path => Path, offset => 0, rest => <<>>, tab => beamprof_symtab:new()},
            {ok, refresh(Map)};
        {error, _} = Error ->
            Error
    end.

%% @doc Reads what was appended since the last read. A file that vanished
%% or shrank (another VM reusing the pid) leaves the table as it was.
-spec refresh(perfmap()) -> perfmap().
refresh(#{path := Path, offset := Offset} = Map) ->
    case file:read_file_info(Path, [raw]) of
        {ok, #file_info{size = Size}} when Size =< Offset -> Map; % nothing new
        _ -> read_new(Map)
    end.

read_new(#{path := Path} = Map) ->
    case file:open(Path, [read, raw, binary]) of
        {ok, Fd} ->
            try read_chunks(Fd, Map) after ok = file:close(Fd) end;
        {error, _} ->
            Map
    end.

read_chunks(Fd, #{offset := Offset, rest := Rest, tab := Tab} = Map) ->
    case file:pread(Fd, Offset, ?CHUNK) of
        {ok, Data} ->
            Lines = binary:split(<<Rest/binary, Data/binary>>, <<"\n">>, [global]),
            {Complete, [Partial]} = lists:split(length(Lines) - 1, Lines),
            lists:foreach(fun(Line) -> insert_line(Tab, Line) end, Complete),
            read_chunks(Fd, Map#{offset := Offset + byte_size(Data), rest := Partial});
        _EofOrError ->
            Map
    end.

insert_line(Tab, Line) ->
    case parse_line(Line) of
        {Start, Size, Name} -> beamprof_symtab:insert(Tab, Start, Start + Size, Name);
        error -> ok
    end.

%% @doc Parses one perf map line: `{Start, Size, Name}' or `error'.
-spec parse_line(binary()) -> {non_neg_integer(), non_neg_integer(), binary()} | error.
parse_line(Line) ->
    case binary:split(Line, <<" ">>) of
        [StartHex, Rest] ->
            case binary:split(Rest, <<" ">>) of
                [SizeHex, Name] when Name =/= <<>> -> parse_fields(StartHex, SizeHex, Name);
                _ -> error
            end;
        _ ->
            error
    end.

parse_fields(<<"0x", StartHex/binary>>, SizeHex, Name) ->
    parse_fields(StartHex, SizeHex, Name);
parse_fields(StartHex, SizeHex, Name) ->
    try {binary_to_integer(StartHex, 16), binary_to_integer(SizeHex, 16),
         string:trim(Name, trailing, "\r")} of
        {Start, Size, Trimmed} when Start >= 0, Size >= 0 -> {Start, Size, Trimmed};
        _ -> error
    catch
        error:badarg -> error
    end.

%% @doc The function holding Addr (a return address minus one for callers),
%% or `undefined'.
-spec lookup(perfmap(), non_neg_integer()) -> binary() | undefined.
lookup(#{tab := Tab}, Addr) ->
    beamprof_symtab:lookup(Tab, Addr).

%% @doc Ranges held.
-spec size(perfmap()) -> non_neg_integer().
size(#{tab := Tab}) ->
    beamprof_symtab:size(Tab).

%% @doc Frees the table.
-spec close(perfmap()) -> ok.
close(#{tab := Tab}) ->
    beamprof_symtab:delete(Tab).
