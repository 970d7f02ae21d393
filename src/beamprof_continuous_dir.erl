%% @doc The continuous profiler's directory sink: `{dir, Dir}' or
%% `{dir, Dir, #{keep => N}}'. Each period's profile is a gzipped pprof file
%% `<node>-<UTC time>.pb.gz' in `Dir' (created if missing; files mode 0600,
%% written atomically, never through a symbolic link: `beamprof_file'), and
%% only the newest `keep' (1..100000, default 10) of this node's files are
%% kept: older ones are deleted after each write. Also takes the options
%% every sink takes (`queue', `retries', `backoff': see
%% `beamprof_continuous').
-module(beamprof_continuous_dir).

-export([check/2, name/1, encode/3, deliver/2, retryable/1, deadline/1, files/1]).

%% @doc Checks the sink's directory and options; throws `{bad, Message}'.
-spec check(term(), term()) -> map().
check(Dir, Opts) ->
    Map = beamprof_continuous_opts:sink_common(Opts),
    Path = case beamprof_file:path(Dir) of
               {ok, P} -> P;
               error -> beamprof_continuous_opts:bad("Expected the dir sink's directory to be "
                                                    "a file name (string or binary), got: ~0tP",
                                                    [Dir, 8])
           end,
    Keep = maps:get(keep, Map, 10),
    is_integer(Keep) andalso Keep >= 1 andalso Keep =< 100000 orelse
        beamprof_continuous_opts:bad("Expected dir sink keep to be an integer in 1..100000, "
                                     "got: ~0tP", [Keep, 8]),
    case maps:keys(maps:without([keep, queue, retries, backoff], Map)) of
        [] -> Map#{dir => Path, keep => Keep};
        [K | _] -> beamprof_continuous_opts:bad("Unknown dir sink option ~0tp (expected keep, "
                                                "queue, retries, backoff)", [K])
    end.

%% @doc `{dir, Dir}'.
-spec name(map()) -> binary().
name(#{dir := Dir}) ->
    unicode:characters_to_binary(io_lib:format("{dir, ~0tp}", [Dir])).

%% @doc The file's name and contents.
-spec encode(map(), map(), map()) -> {file:filename_all(), binary()}.
encode(Profile, #{node := Node, until_ms := Until}, #{dir := Dir}) ->
    Name = [prefix(Node), stamp(Until), ".pb.gz"],
    Labels = #{<<"node">> => atom_to_binary(Node)},
    {filename:join(Dir, iolist_to_binary(Name)), beamprof_continuous:pprof(Profile, Labels)}.

prefix(Node) -> [atom_to_binary(Node), "-"].

%% 20261205T052409.123Z: sorts as time does.
stamp(Ms) ->
    {{Y, Mo, D}, {H, Mi, S}} = calendar:system_time_to_universal_time(Ms, millisecond),
    io_lib:format("~4..0B~2..0B~2..0BT~2..0B~2..0B~2..0B.~3..0BZ",
                  [Y, Mo, D, H, Mi, S, Ms rem 1000]).

%% @doc Writes the file and deletes this node's oldest beyond `keep'.
-spec deliver({file:filename_all(), binary()}, map()) -> ok | {error, term()}.
deliver({Path, Bin}, #{keep := Keep} = Opts) ->
    case filelib:ensure_dir(Path) of
        ok ->
            case beamprof_file:write(Path, Bin) of
                ok -> prune(Keep, Opts);
                {error, _} = Error -> Error
            end;
        {error, Reason} -> {error, {mkdir, Reason}}
    end.

prune(Keep, Opts) ->
    Files = files(Opts),
    lists:foreach(fun(F) -> _ = file:delete(F) end,
                  lists:sublist(Files, max(0, length(Files) - Keep))),
    ok.

%% @doc This node's profile files in the sink's directory, oldest first.
-spec files(map()) -> [file:filename_all()].
files(#{dir := Dir}) ->
    Prefix = iolist_to_binary(prefix(node())),
    case file:list_dir(Dir) of
        {ok, Names} ->
            lists:sort([filename:join(Dir, N) || N0 <- Names,
                                                 N <- [unicode:characters_to_binary(N0)],
                                                 is_binary(N),
                                                 binary:longest_common_prefix([N, Prefix]) =:=
                                                     byte_size(Prefix),
                                                 binary:match(N, <<".pb.gz">>) =/= nomatch]);
        {error, _} -> []
    end.

%% @doc Every failure is retried (a full disk may free up).
-spec retryable(term()) -> true.
retryable(_) -> true.

%% @doc 30 s per attempt.
-spec deadline(map()) -> pos_integer().
deadline(_) -> 30000.
