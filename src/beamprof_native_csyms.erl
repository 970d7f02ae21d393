%% @private
%% @doc How well a native profile's C frames are named: the share of the
%% samples with a C frame left as `Object+0xOffset' (overall and per
%% object), and a `c_symbols_missing' warning for each object without a
%% full symbol table, saying what to install and where it is found.
%%
%% Shares are of the profile's weight (samples weighted by timer overruns,
%% as in its stacks), in percent with one decimal; a sample counts once
%% however many unnamed frames it has. Only objects without any full table
%% (`source' `dynsym': no `.symtab', no debug file found) get a warning:
%% an unnamed frame in an object that has one lies in code without a symbol
%% (PLT stubs, padding), which no package names.
%%
%% Which package: `beam.smp' (and its siblings) under `/usr/lib/erlang' on
%% Debian belong to `erlang-base', whose symbols are in
%% `erlang-base-dbgsym' in Debian's debug archive (`deb
%% http://deb.debian.org/debian-debug <codename>-debug main'; Debian ships
%% no `erlang-base-dbg'); any other Debian object's are in the `-dbgsym' of
%% the package `dpkg -S' names (libc6's in `libc6-dbg'). The dbgsym package
%% puts the file at `/usr/lib/debug/.build-id/xx/yyyy.debug', the path
%% named in the message.
-module(beamprof_native_csyms).

-export([report/3, os_release/0, hint/3]).
-export_type([report/0, os/0]).

-type report() :: #{unnamed_pct := float(), unnamed_leaf_pct := float(),
                    unnamed := #{binary() => float()},
                    warnings := [beamprof_warnings:warning()]}.
-define(DEBUG_ROOT, <<"/usr/lib/debug">>).

-type os() :: #{id => binary(), id_like => [binary()], codename => binary()}.

%% @doc The share of `Stacks'' weight whose frames include one of
%% `Unnamed' (frame => object: `unnamed_pct', per object `unnamed'), the
%% share whose leaf (the function the sample's own time goes to) is one
%% (`unnamed_leaf_pct'), and the warnings for the objects among `Objects'
%% (with their debug root) that have no full table.
-spec report([{[binary()], pos_integer()}], #{binary() => binary()},
             {[beamprof_native_nif:symbol_object()], binary()}) -> report().
report(Stacks, Unnamed, {Objects, Root}) ->
    Total = lists:sum([W || {_, W} <- Stacks]),
    {Any, Leaf, PerObject} = lists:foldl(fun(S, Acc) -> count(S, Unnamed, Acc) end,
                                         {0, 0, #{}}, Stacks),
    Pcts = maps:map(fun(_, W) -> pct(W, Total) end, PerObject),
    Ranked = lists:reverse(lists:keysort(2, maps:to_list(Pcts))),
    #{unnamed_pct => pct(Any, Total), unnamed_leaf_pct => pct(Leaf, Total), unnamed => Pcts,
      warnings => warnings(Ranked, Objects, Root)}.

count({[], _W}, _Unnamed, Acc) ->
    Acc;
count({Frames, W}, Unnamed, {Any, Leaf, Per}) ->
    LeafW = case is_map_key(lists:last(Frames), Unnamed) of
                true -> W;
                false -> 0
            end,
    case lists:usort([O || F <- Frames, {ok, O} <- [maps:find(F, Unnamed)]]) of
        [] -> {Any, Leaf, Per};
        Objects -> {Any + W, Leaf + LeafW, lists:foldl(fun(O, P) -> add(O, W, P) end, Per, Objects)}
    end.

add(Key, W, Map) -> maps:update_with(Key, fun(V) -> V + W end, W, Map).

pct(_, 0) -> 0.0;
pct(X, Total) -> round(1000 * X / Total) / 10.

warnings(Ranked, Objects, Root) ->
    Os = os_release(),
    [warning(Pct, Object, Root, Os)
     || {Name, Pct} <- Ranked, Pct > 0,
        #{source := dynsym} = Object <- [O || #{object := N} = O <- Objects, N =:= Name]].

warning(Pct, #{object := Name, path := Path} = Object, Root, Os) ->
    Message = [float_to_list(Pct, [{decimals, 1}]), "% of samples have C frames in ", Name,
               " without names: ", Path, " has no .symtab and no debug file of it was found",
               looked(Object, Root), rejected(Object), ". ", hint(Path, Os, Root, Object),
               "; those frames are named ", Name, "+0x<offset of the function>"],
    beamprof_warnings:new(c_symbols_missing, Message).

looked(#{path := Path, build_id := undefined, debuglink := undefined}, _Root) ->
    case is_file_path(Path) of
        true -> " (it has neither a build-id nor a .gnu_debuglink)";
        false -> " (it is no file: the kernel's vDSO, or code mapped from memory)"
    end;
looked(#{build_id := Id, debuglink := Link}, Root) ->
    [" (looked for ", lists:join(" and ", by_id(Id, Root) ++ by_link(Link)), ")"].

by_id(undefined, _Root) -> [];
by_id(Id, Root) -> [build_id_path(Id, Root)].

by_link(undefined) -> [];
by_link(Link) -> [["its .gnu_debuglink ", Link]].

build_id_path(<<Dir:2/binary, Rest/binary>>, Root) ->
    [Root, "/.build-id/", Dir, "/", Rest, ".debug"].

rejected(#{rejected := []}) ->
    "";
rejected(#{rejected := Rejected}) ->
    [", not used: ",
     lists:join(", ", [[P, " (", atom_to_list(Why), ")"] || {P, Why} <- Rejected])].

%% @doc What gives the names of the object at `Path' (one sentence): the
%% package and archive on Debian and Ubuntu, with the build-id path it
%% installs; elsewhere, a debug file at that path or an unstripped build.
-spec hint(binary(), os(), binary()) -> iolist().
hint(Path, Os, Root) ->
    hint(Path, Os, Root, #{build_id => undefined}).

hint(Path, Os, _Root, Object) ->
    %% a package installs under /usr/lib/debug, whatever root this run used
    Where = case Object of
                #{build_id := undefined} -> "";
                #{build_id := Id} -> [", which installs ", build_id_path(Id, ?DEBUG_ROOT)]
            end,
    case kind(system_object(Path), family(Os)) of
        {memory, _} ->
            ["No package gives its names"];
        {libc, debian} ->
            ["Its names come with the package libc6-dbg (Debian's main archive: "
             "apt-get install libc6-dbg)", Where];
        {false, _} ->
            ["Its names need a build that keeps them (not stripped), or its debug file at the "
             "build-id path above"];
        {erlang, debian} ->
            ["Its names come with the package erlang-base-dbgsym (the installed erlang-base's "
             "version) from Debian's debug archive: deb http://deb.debian.org/debian-debug ",
             suite(Os), "-debug main (for a stable security update: ", suite(Os),
             "-proposed-updates-debug)", Where];
        {other, debian} ->
            ["Its names come with the -dbgsym package of the package that owns it (dpkg -S ",
             Path, ") from Debian's debug archive: deb http://deb.debian.org/debian-debug ",
             suite(Os), "-debug main", Where];
        {erlang, ubuntu} ->
            ["Its names come with the package erlang-base-dbgsym from ddebs.ubuntu.com", Where];
        {other, ubuntu} ->
            ["Its names come with the -dbgsym package of the package that owns it (dpkg -S ",
             Path, ") from ddebs.ubuntu.com", Where];
        {_, other} ->
            ["Its names come with the distribution's debug symbols for it (a debuginfo or "
             "-dbgsym package)", Where]
    end.

%% libc6-dbg is Debian's; elsewhere glibc's symbols come as any package's.
kind(libc, debian) -> {libc, debian};
kind(libc, Family) -> {other, Family};
kind(Object, Family) -> {Object, Family}.

%% beam.smp and the other ERTS executables of a distribution's Erlang,
%% glibc's libraries (Debian gives their symbols in libc6-dbg, not a
%% dbgsym), another object under /usr or /lib, something that is no file
%% (the vDSO), or something else (a local build).
system_object(<<"/usr/lib/erlang/", _/binary>>) ->
    erlang;
system_object(<<"/", _/binary>> = Path) ->
    Base = filename:basename(Path),
    Glibc = [<<"libc.so">>, <<"libm.so">>, <<"libpthread.so">>, <<"libdl.so">>,
             <<"librt.so">>, <<"ld-linux">>],
    case {lists:any(fun(P) -> binary:longest_common_prefix([P, Base]) =:= byte_size(P) end,
                    Glibc),
          Path} of
        {true, _} -> libc;
        {false, <<"/usr/", _/binary>>} -> other;
        {false, <<"/lib", _/binary>>} -> other;
        {false, _} -> false
    end;
system_object(Path) ->
    case is_file_path(Path) of
        true -> false;
        false -> memory
    end.

is_file_path(Path) ->
    binary:match(Path, <<"/">>) =/= nomatch.

family(#{id := <<"debian">>}) -> debian;
family(#{id := <<"ubuntu">>}) -> ubuntu;
family(#{id_like := Like}) ->
    case {lists:member(<<"ubuntu">>, Like), lists:member(<<"debian">>, Like)} of
        {true, _} -> ubuntu;
        {false, true} -> debian;
        _ -> other
    end;
family(_) -> other.

suite(#{codename := Codename}) when Codename =/= <<>> -> Codename;
suite(_) -> "<release codename>".

%% @doc ID, ID_LIKE and VERSION_CODENAME of /etc/os-release (empty where
%% it cannot be read).
-spec os_release() -> os().
os_release() ->
    case file:read_file("/etc/os-release") of
        {ok, Bin} -> parse_os(binary:split(Bin, <<"\n">>, [global]), #{});
        {error, _} -> #{}
    end.

parse_os([Line | Rest], Acc) ->
    case binary:split(Line, <<"=">>) of
        [<<"ID">>, V] -> parse_os(Rest, Acc#{id => unquote(V)});
        [<<"ID_LIKE">>, V] -> parse_os(Rest, Acc#{id_like => binary:split(unquote(V), <<" ">>,
                                                                           [global, trim_all])});
        [<<"VERSION_CODENAME">>, V] -> parse_os(Rest, Acc#{codename => unquote(V)});
        _ -> parse_os(Rest, Acc)
    end;
parse_os([], Acc) ->
    Acc.

unquote(V) -> string:trim(V, both, "\"' ").
