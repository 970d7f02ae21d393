%% @doc Writes the files beamprof produces: mode 0600, never through a
%% symbolic link, never half-written.
%%
%% `write(Path, IoData)':
%% <ol>
%% <li>checks that `Path''s directory is a directory and that `Path' is not
%% a directory;</li>
%% <li>makes a private directory `.beamprof-<random>' beside `Path'
%% (`mkdir' never follows a link and fails on an existing name), sets it to
%% 0700 and checks it is still a real directory of mode 0700: from now on
%% nobody else can open anything inside it by name;</li>
%% <li>creates `data' in it with `exclusive' (O_CREAT|O_EXCL: no link is
%% followed), sets it to 0600 and checks, through the open descriptor
%% (fstat), that the file it writes is that one, regular and 0600;</li>
%% <li>writes, `datasync's, closes and renames it onto `Path': `rename'
%% replaces a symbolic link at `Path' itself (its target stays unchanged)
%% and readers see the old file or the whole new one;</li>
%% <li>removes the private directory. On any error the temporary file and
%% directory are removed and `{error, Reason}' returned.</li>
%% </ol>
%% OTP 25 cannot pass a mode to `open(2)', hence the private directory: the
%% file is 0600 before a byte is written, and no other user could have
%% opened it in between, whatever the umask.
%%
%% `Path' may be any chardata (a string, a binary as Elixir passes, or a
%% deep list of both): `path/1' flattens it. `check_writable/1' makes step
%% 1's checks alone, and that the directory is writable, without writing:
%% callers check an output path before a long profile rather than after.
%%
%% Errors: `{error, Posix}' as `file' returns them (`enoent': the
%% directory does not exist; `enotdir': a part of it is not a directory;
%% `eacces': not writable; `eisdir': `Path' is a directory; `enospc', ...),
%% `{error, {unsafe_temporary, Path}}' when the temporary file or directory
%% was tampered with, `{error, {badarg, Message}}' for a bad argument.
-module(beamprof_file).

-include_lib("kernel/include/file.hrl").

-export([write/2, path/1, check_writable/1, write_failed/2]).

-include_lib("kernel/include/logger.hrl").

-ifdef(TEST).
-export([write/3]).
-endif.

-define(ATTEMPTS, 5).

%% @doc Writes `IoData' to `Path' (replacing it), mode 0600, not through a
%% symbolic link. See the module documentation.
-spec write(Path, IoData) -> ok | {error, Reason} when
      Path :: file:name_all(), IoData :: iodata(), Reason :: term().
write(Path, IoData) ->
    write(Path, IoData, [random_name() || _ <- lists:seq(1, ?ATTEMPTS)]).

%% Tries the private directory names in order; one that exists already
%% (a planted file or link) is skipped, never used.
-spec write(file:name_all(), iodata(), [string()]) -> ok | {error, term()}.
write(Path0, IoData, Names) ->
    try {path(Path0), iolist_to_binary(IoData)} of
        {{ok, Path}, Bin} -> check_target(Path, Bin, Names);
        {error, _} -> bad_args()
    catch
        error:_ -> bad_args()
    end.

bad_args() ->
    {error, {badarg, "Expected a file name and iodata"}}.

%% @doc `Path' as one flat file name: a binary stays as it is (its bytes are
%% the name), any other chardata becomes a flat string; `error' for
%% anything else (an empty name included).
-spec path(Path) -> {ok, file:filename_all()} | error when Path :: term().
path(<<>>) -> error;
path(Path) when is_binary(Path) -> {ok, Path};
path(Path) when is_list(Path) ->
    try unicode:characters_to_list(Path) of
        [_ | _] = Flat -> {ok, Flat};
        _ -> error
    catch error:badarg -> error
    end;
path(_) -> error.

%% @doc Whether a file could be written at `Path' now: its directory
%% exists, is a directory and is writable, and `Path' is not a directory.
%% Returns `ok' or `{error, Reason}' (`enoent', `enotdir', `eacces',
%% `eisdir', as `write/2' would, or `{badarg, Message}' for a name that is
%% not chardata). Writes nothing.
-spec check_writable(Path) -> ok | {error, Reason} when
      Path :: file:name_all() | unicode:chardata(), Reason :: term().
check_writable(Path0) ->
    case path(Path0) of
        {ok, Path} ->
            case target(Path) of
                {ok, #file_info{access = A}} when A =:= write; A =:= read_write -> ok;
                {ok, _} -> {error, eacces};
                Error -> Error
            end;
        error ->
            {error, {badarg, "Expected a file name (string or binary)"}}
    end.

%% @doc Logs that writing `Path' failed with `Reason' (a logger warning
%% without a domain: OTP's default handler prints only events with no domain
%% or a domain above `[otp, sasl]', so a `[beamprof]' domain would be dropped
%% in a plain shell; metadata `beamprof => write_failed' marks it) and returns
%% `{write_failed, Path, Reason}', the term results and events carry.
-spec write_failed(Path, Reason) -> {write_failed, Path, Reason} when
      Path :: file:name_all(), Reason :: term().
write_failed(Path, Reason) ->
    ?LOG_WARNING("beamprof: could not write ~ts: ~ts",
                 [display(Path), reason_text(Reason)], #{beamprof => write_failed}),
    {write_failed, Path, Reason}.

display(Path) ->
    case path(Path) of
        {ok, Flat} -> io_lib:format("~ts", [Flat]);
        error -> io_lib:format("~0tp", [Path])
    end.

reason_text(Reason) when is_atom(Reason) ->
    case file:format_error(Reason) of
        "unknown POSIX error" ++ _ -> atom_to_list(Reason);
        Text -> [Text, " (", atom_to_list(Reason), ")"]
    end;
reason_text(Reason) ->
    io_lib:format("~0tp", [Reason]).

check_target(Path, Bin, Names) ->
    case target(Path) of
        {ok, _} -> in_private_dir(filename:dirname(Path), Path, Bin, Names);
        Error -> Error
    end.

%% The directory's info when it is a directory and Path is not one.
target(Path) ->
    case {file:read_file_info(filename:dirname(Path)), file:read_link_info(Path)} of
        {{ok, #file_info{type = directory}}, {ok, #file_info{type = directory}}} ->
            {error, eisdir};
        {{ok, #file_info{type = directory}} = Dir, _} -> Dir;
        {{ok, _}, _} -> {error, enotdir};
        {{error, _} = Error, _} -> Error
    end.

in_private_dir(_Dir, _Path, _Bin, []) ->
    {error, eexist};
in_private_dir(Dir, Path, Bin, [Name | Names]) ->
    Private = filename:join(Dir, Name),
    case file:make_dir(Private) of
        ok ->
            Result = with_private_dir(Private, Path, Bin),
            _ = file:delete(filename:join(Private, "data")),
            _ = file:del_dir(Private),
            Result;
        {error, eexist} -> in_private_dir(Dir, Path, Bin, Names);
        {error, _} = Error -> Error
    end.

with_private_dir(Private, Path, Bin) ->
    case secure(Private, directory, 8#700) of
        ok -> write_data(filename:join(Private, "data"), Path, Bin);
        Error -> Error
    end.

%% Sets the mode by name, then checks, without following links, that the
%% name is still the kind of thing we made, with that mode.
secure(Name, Type, Mode) ->
    case file:change_mode(Name, Mode) of
        ok -> check_info(Name, file:read_link_info(Name), Type, Mode);
        Error -> Error
    end.

check_info(_Name, {ok, #file_info{type = Type, mode = M}}, Type, Mode)
  when M band 8#7777 =:= Mode -> ok;
check_info(Name, {ok, _}, _Type, _Mode) -> {error, {unsafe_temporary, Name}};
check_info(_Name, Error, _Type, _Mode) -> Error.

write_data(Tmp, Path, Bin) ->
    case file:open(Tmp, [write, exclusive, raw, binary]) of
        {ok, Fd} ->
            Written = fill(Fd, Tmp, Bin),
            Closed = file:close(Fd),
            finish(Written, Closed, Tmp, Path);
        Error -> Error
    end.

fill(Fd, Tmp, Bin) ->
    maybe_do([fun() -> secure(Tmp, regular, 8#600) end,
              fun() -> same_file(Fd, Tmp) end,
              fun() -> file:write(Fd, Bin) end,
              fun() -> file:datasync(Fd) end]).

%% The descriptor we write through is the file we secured by name.
same_file(Fd, Tmp) ->
    case {file:read_file_info(Fd), file:read_link_info(Tmp)} of
        {{ok, #file_info{inode = I, major_device = D, type = regular, mode = M}},
         {ok, #file_info{inode = I, major_device = D}}} when M band 8#7777 =:= 8#600 -> ok;
        {{ok, _}, {ok, _}} -> {error, {unsafe_temporary, Tmp}};
        {{error, _} = Error, _} -> Error;
        {_, Error} -> Error
    end.

finish(ok, ok, Tmp, Path) -> file:rename(Tmp, Path);
finish(ok, Closed, _Tmp, _Path) -> Closed;
finish(Written, _, _Tmp, _Path) -> Written.

maybe_do([]) -> ok;
maybe_do([F | Fs]) ->
    case F() of
        ok -> maybe_do(Fs);
        Error -> Error
    end.

%% The name need not be secret: an existing name is skipped, and what we
%% make is checked before use.
random_name() ->
    ".beamprof-" ++ string:lowercase(binary_to_list(binary:encode_hex(rand:bytes(12)))).
