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
%% Errors: `{error, Posix}' as `file' returns them (`enoent': the
%% directory does not exist; `enotdir': a part of it is not a directory;
%% `eacces': not writable; `eisdir': `Path' is a directory; `enospc', ...),
%% `{error, {unsafe_temporary, Path}}' when the temporary file or directory
%% was tampered with, `{error, {badarg, Message}}' for a bad argument.
-module(beamprof_file).

-include("beamprof_doc.hrl").
?MODULEDOC("Writes files mode 0600, never through a symbolic link, atomically.").

-include_lib("kernel/include/file.hrl").

-export([write/2]).

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
write(Path, IoData, Names) ->
    try check_args(Path, IoData) of
        Bin -> check_target(Path, Bin, Names)
    catch
        error:_ -> {error, {badarg, "Expected a file name and iodata"}}
    end.

check_args(Path, IoData) ->
    _ = filename:absname(Path),
    iolist_to_binary(IoData).

check_target(Path, Bin, Names) ->
    Dir = filename:dirname(Path),
    case {file:read_file_info(Dir), file:read_link_info(Path)} of
        {{ok, #file_info{type = directory}}, {ok, #file_info{type = directory}}} ->
            {error, eisdir};
        {{ok, #file_info{type = directory}}, _} ->
            in_private_dir(Dir, Path, Bin, Names);
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
