%% @doc Flame graph files from a profile: SVG, interactive HTML, speedscope
%% JSON, folded text, and pprof (`beamprof_pprof').
%%
%% A profile is `#{stacks := [{Frames, Weight}], title => Title, unit =>
%% Unit}': each stack lists its frames ROOT FIRST as binaries
%% (`<<"mymod:work/1">>', `<<"beam.smp+0x1a2b">>'), `Weight' is a positive
%% integer (samples, microseconds or bytes, as `unit' says; default
%% `samples'), `Title' any chardata (default "Flame graph"). `notes' (a
%% list of chardata, default none) are what a reader must know before
%% trusting the graph (what was left out and why, the remedy): every format
%% carries them in the file itself, see below. Other keys are ignored.
%% Identical stacks may repeat: they are summed.
%%
%% Frame names are untrusted text: bytes that are not UTF-8 become U+FFFD,
%% control characters (newlines, tabs, ...) become spaces; every format then
%% escapes what it must (XML text and attributes, JSON strings, `;' in
%% folded lines becomes `:'). A stack with no frames counts under the frame
%% `[no frames]'.
%%
%% <ul>
%% <li>`folded': one `a;b;c Weight' line per distinct stack (its self
%% weight), sorted frame by frame; what flamegraph.pl, inferno and
%% speedscope read. Each note comes first as a comment line, `# Note 0':
%% readers that know comments skip a line starting with `#'; the trailing
%% zero weight keeps the others reading the file (speedscope takes a text
%% file for folded stacks only when every line ends with a count, and
%% ignores a zero weight; flamegraph.pl and inferno parse it as a stack of
%% width 0, which they do not draw).</li>
%% <li>`svg': a static, self-contained image (no script, no network, no
%% external font), root at the bottom, a tooltip per frame; frames narrower
%% than half a pixel are merged per parent into one `[N small frames]' frame
%% or left out, and the header says how many. Notes are lines under the
%% header, and follow the title in the document's `<title>'.</li>
%% <li>`html': one self-contained page (inline CSS and JavaScript, no
%% network): click a frame to zoom, reset, search (a regular expression)
%% highlighting the matches with the share of the total they cover; the URL
%% fragment `#search=Re&zoom=Id' preselects both. Notes are shown under the
%% heading and follow the title in the page's `<title>'.</li>
%% <li>`speedscope': a speedscope file (https://www.speedscope.app), one
%% `sampled' profile; notes follow the title in its name.</li>
%% <li>`pprof': a gzipped `profile.proto' (`go tool pprof', Pyroscope,
%% Parca, Grafana), written by `beamprof_pprof:encode/1' from the profile
%% itself, not from the graph: native profiles keep their addresses,
%% mappings and thread kinds, process profiles their pid and name; the
%% title, notes and warnings are its comments.</li>
%% </ul>
%%
%% Errors: `render/2' raises `{badarg, Message}' for a bad profile or
%% format; `write/3' returns `{error, {badarg, Message}}' for those and
%% `beamprof_file:write/2''s errors for the file.
%%
%% Cost: rendering is linear in the number of frames of all stacks (one
%% map insert per frame); the SVG holds at most one element per half pixel
%% of width per depth level, so its size stays bounded for huge profiles.
-module(beamprof_flame).

-export([render/2, write/3, graph/1, color/1, kind/1, prune/2, escape_xml/1, unit_label/1,
         titled/1, format_of/1, extensions/0, formats/0, formats_text/0, clean/1]).

-export_type([profile/0, format/0, graph/0, tree/0]).

-type profile() :: #{stacks := [{[binary()], pos_integer()}],
                     title => unicode:chardata(),
                     unit => unit(),
                     _ => _}.
-type unit() :: samples | microseconds | bytes.
-type format() :: svg | html | speedscope | folded | pprof.
%% A frame, its total weight (itself and its callees) and its callees
%% sorted by name. The root is `<<"all">>'.
-type tree() :: {Name :: binary(), Total :: non_neg_integer(), Children :: [tree()]}.
-type graph() :: #{title := binary(), unit := unit(), total := non_neg_integer(),
                   stacks := non_neg_integer(), tree := tree(), notes := [binary()]}.

%% @doc The file contents of `Profile' in `Format' as iodata. Raises
%% `{badarg, Message}' when `Profile' or `Format' is not valid.
-spec render(Profile, Format) -> iodata() when Profile :: profile(), Format :: format().
render(Profile, pprof) ->
    beamprof_pprof:encode(Profile);
render(Profile, Format) ->
    lists:member(Format, formats()) orelse
        badarg("Expected format to be one of " ++ formats_text(), Format),
    Graph = graph(Profile),
    case Format of
        folded -> folded(Graph);
        svg -> beamprof_flame_svg:render(Graph);
        html -> beamprof_flame_html:render(Graph);
        speedscope -> beamprof_flame_speedscope:render(Graph)
    end.

%% @doc Writes `Profile' in `Format' to `Path' (a string, a binary or any
%% chardata): mode 0600, replacing the file atomically, never through a
%% symbolic link (`beamprof_file:write/2').
-spec write(Profile, Path, Format) -> {ok, Path} | {error, Reason} when
      Profile :: profile(), Path :: file:name_all() | unicode:chardata(), Format :: format(),
      Reason :: term().
write(Profile, Path, Format) ->
    try render(Profile, Format) of
        Data ->
            case beamprof_file:write(Path, Data) of
                ok -> {ok, Path};
                {error, _} = Error -> Error
            end
    catch
        error:{badarg, Message} when is_list(Message) -> {error, {badarg, Message}}
    end.

%% @doc The validated profile with its stacks merged into a tree: identical
%% prefixes share a node, children sorted by name. Raises `{badarg, Message}'.
-spec graph(Profile) -> graph() when Profile :: profile().
graph(#{stacks := Stacks} = Profile) when is_list(Stacks) ->
    {Total, Count, Map, _Clean} = lists:foldl(fun add_stack/2, {0, 0, #{}, #{}}, Stacks),
    #{title => title(maps:get(title, Profile, <<"Flame graph">>)),
      unit => unit(maps:get(unit, Profile, samples)),
      total => Total, stacks => Count,
      tree => {<<"all">>, Total, children(Map)},
      notes => notes(maps:get(notes, Profile, []))};
graph(Profile) ->
    badarg("Expected a map with a list under stacks", Profile).

%% Names are cleaned as they are inserted, through a cache (a profile has
%% far fewer distinct names than frames), so names that clean to the same
%% text share a node.
add_stack({[], W}, Acc) -> add_stack({[<<"[no frames]">>], W}, Acc);
add_stack({Frames, W}, {Total, Count, Map, Clean0}) when is_list(Frames), is_integer(W), W > 0 ->
    {Map1, Clean1} = insert(Frames, W, Map, Clean0, Frames),
    {Total + W, Count + 1, Map1, Clean1};
add_stack(Bad, _) ->
    badarg("Expected each stack to be {[Frame :: binary()], Weight :: pos_integer()}", Bad).

insert([F0 | Fs], W, Map, Clean0, Stack) when is_binary(F0) ->
    {F, Clean1} = case Clean0 of
                      #{F0 := Known} -> {Known, Clean0};
                      _ -> C = clean(F0), {C, Clean0#{F0 => C}}
                  end,
    {T, Sub0} = case Map of
                    #{F := Node} -> Node;
                    _ -> {0, #{}}
                end,
    {Sub1, Clean2} = insert(Fs, W, Sub0, Clean1, Stack),
    {Map#{F => {T + W, Sub1}}, Clean2};
insert([], _W, Map, Clean, _Stack) -> {Map, Clean};
insert(_, _W, _Map, _Clean, Stack) ->
    badarg("Expected frames to be a proper list of binaries", Stack).

children(Map) ->
    lists:sort([{N, T, children(C)} || {N, {T, C}} <- maps:to_list(Map)]).

title(Title) ->
    case unicode:characters_to_binary(Title) of
        Bin when is_binary(Bin) -> clean(Bin);
        _ -> badarg("Expected title to be unicode:chardata()", Title)
    end.

notes(Notes) when is_list(Notes) ->
    [note(Note, Notes) || Note <- Notes];
notes(Notes) ->
    badarg("Expected notes to be a list of unicode:chardata()", Notes).

note(Note, Notes) ->
    try unicode:characters_to_binary(Note) of
        Bin when is_binary(Bin) -> clean(Bin);
        _ -> badarg("Expected notes to be a list of unicode:chardata()", Notes)
    catch error:badarg -> badarg("Expected notes to be a list of unicode:chardata()", Notes)
    end.

%% @doc The format a file name's extension names (case-insensitive):
%% `.svg', `.html' or `.htm', `.json' (speedscope), `.folded' or `.txt',
%% `.pb.gz' (pprof); `error' for any other extension or none, so that no
%% caller writes a format the name does not say. `Path' may be any
%% chardata.
-spec format_of(file:name_all() | unicode:chardata()) -> {ok, format()} | error.
format_of(Path) ->
    Known = [{E, F} || {F, Es} <- extensions(), E <- Es],
    case beamprof_file:path(Path) of
        {ok, Flat} ->
            Name = unicode:characters_to_list(filename:basename(Flat)),
            case is_list(Name) andalso
                [F || {E, F} <- Known, lists:suffix(E, string:lowercase(Name))] of
                [Format | _] -> {ok, Format};
                _ -> error
            end;
        error -> error
    end.

%% @doc Each format with the extensions that name it (an extension may
%% have several parts: `.pb.gz').
-spec extensions() -> [{format(), [string(), ...]}].
extensions() ->
    [{svg, [".svg"]}, {html, [".html", ".htm"]}, {speedscope, [".json"]},
     {folded, [".folded", ".txt"]}, {pprof, [".pb.gz"]}].

%% @doc The formats, in the order of `extensions/0'.
-spec formats() -> [format()].
formats() ->
    [F || {F, _} <- extensions()].

%% @doc The formats as text for a message: `"svg, html, ..."'.
-spec formats_text() -> string().
formats_text() ->
    lists:append(lists:join(", ", [atom_to_list(F) || F <- formats()])).

%% @doc The graph's title followed by its notes, for a document's title or
%% a profile's name: `<<"Title - Note - Note">>'.
-spec titled(graph()) -> binary().
titled(#{title := Title, notes := Notes}) ->
    iolist_to_binary(lists:join(<<" - ">>, [Title | Notes])).

unit(Unit) when Unit =:= samples; Unit =:= microseconds; Unit =:= bytes -> Unit;
unit(Unit) -> badarg("Expected unit to be samples, microseconds or bytes", Unit).

%% @doc A frame name as every format writes it: UTF-8 with control
%% characters as spaces; invalid bytes, U+FFFE and U+FFFF (not allowed in
%% XML) as U+FFFD.
-spec clean(binary()) -> unicode:unicode_binary().
clean(Bin) -> clean(Bin, <<>>).

clean(<<C, Rest/binary>>, Acc) when C >= 16#20, C < 16#7F -> clean(Rest, <<Acc/binary, C>>);
clean(<<C, Rest/binary>>, Acc) when C < 16#20; C =:= 16#7F -> clean(Rest, <<Acc/binary, " ">>);
clean(<<C/utf8, Rest/binary>>, Acc) when C =:= 16#FFFE; C =:= 16#FFFF ->
    clean(Rest, <<Acc/binary, 16#FFFD/utf8>>);
clean(<<C/utf8, Rest/binary>>, Acc) -> clean(Rest, <<Acc/binary, C/utf8>>);
clean(<<_, Rest/binary>>, Acc) -> clean(Rest, <<Acc/binary, 16#FFFD/utf8>>);
clean(<<>>, Acc) -> Acc.

%% Folded text: a line per node with self weight, its path joined by `;'.
%% Each node's path is its parent's as iodata plus its name: linear.
%% Notes first, as `# Note 0' lines (see the module doc).
folded(#{tree := {_, _, Children}, notes := Notes}) ->
    [[[<<"# ">>, Note, <<" 0\n">>] || Note <- Notes] |
     lists:reverse(lists:foldl(fun(Node, Acc) -> folded(Node, [], Acc) end, [], Children))].

folded({Name, Total, Children}, Prefix, Acc0) ->
    Path = case Prefix of
               [] -> folded_name(Name);
               _ -> [Prefix, $;, folded_name(Name)]
           end,
    Acc1 = case self_weight(Total, Children) of
               0 -> Acc0;
               Self -> [[Path, $\s, integer_to_binary(Self), $\n] | Acc0]
           end,
    lists:foldl(fun(Child, Acc) -> folded(Child, Path, Acc) end, Acc1, Children).

self_weight(Total, Children) ->
    Total - lists:foldl(fun({_, T, _}, Sum) -> Sum + T end, 0, Children).

folded_name(Name) -> binary:replace(Name, <<";">>, <<":">>, [global]).

%% @doc What kind of code a frame is: `erlang' (a name with `:' and `/',
%% as `mod:fun/1'), `marker' (beamprof's own `[...]' frames) or `native'
%% (C: the VM, NIFs, drivers, libraries).
-spec kind(Name) -> erlang | native | marker when Name :: binary().
kind(<<"[", _/binary>>) -> marker;
kind(Name) ->
    case {binary:match(Name, <<":">>), binary:match(Name, <<"/">>)} of
        {{_, _}, {_, _}} -> erlang;
        _ -> native
    end.

%% @doc The fill colour of a frame, `<<"#rrggbb">>': the same name always
%% gets the same colour; Erlang frames are green-blue, native frames
%% orange-red, markers grey.
-spec color(Name) -> binary() when Name :: binary().
color(Name) ->
    H = erlang:phash2(Name, 1 bsl 24),
    {A, B, C} = {H band 255, (H bsr 8) band 255, H bsr 16},
    {R, G, Bl} = case kind(Name) of
                     erlang -> {50 + A rem 60, 165 + B rem 70, 120 + C rem 80};
                     native -> {220 + A rem 36, 90 + B rem 110, 30 + C rem 50};
                     marker -> {190, 190, 190}
                 end,
    iolist_to_binary(io_lib:format("#~2.16.0b~2.16.0b~2.16.0b", [R, G, Bl])).

%% @doc Keeps the callees that weigh at least `MinWeight'; the lighter
%% ones of each frame become one `[N small frames]' frame when together they
%% weigh enough, and are left out otherwise. Returns the pruned tree and
%% `{Frames, Weight}': how many frames were merged or left out, and the
%% weight left out.
-spec prune(Tree, MinWeight) -> {tree(), {non_neg_integer(), non_neg_integer()}} when
      Tree :: tree(), MinWeight :: number().
prune({Name, Total, Children}, Min) ->
    {Heavy, Light} = lists:partition(fun({_, T, _}) -> T >= Min end, Children),
    {Kept, Hidden} = lists:mapfoldl(fun(C, Acc) ->
                                            {K, H} = prune(C, Min),
                                            {K, add(Acc, H)}
                                    end, {0, 0}, Heavy),
    LightW = lists:sum([T || {_, T, _} <- Light]),
    LightN = lists:sum([count(C) || C <- Light]),
    case Light =/= [] andalso LightW >= Min of
        true ->
            Marker = {iolist_to_binary(io_lib:format("[~B small frames]", [LightN])), LightW, []},
            {{Name, Total, Kept ++ [Marker]}, add(Hidden, {LightN, 0})};
        false ->
            {{Name, Total, Kept}, add(Hidden, {LightN, LightW})}
    end.

add({N1, W1}, {N2, W2}) -> {N1 + N2, W1 + W2}.

count({_, _, Children}) -> 1 + lists:sum([count(C) || C <- Children]).

%% @doc Escapes text for XML and HTML text and attribute values.
-spec escape_xml(unicode:unicode_binary()) -> binary().
escape_xml(Bin) ->
    lists:foldl(fun({From, To}, B) -> binary:replace(B, From, To, [global]) end, Bin,
                [{<<"&">>, <<"&amp;">>}, {<<"<">>, <<"&lt;">>}, {<<">">>, <<"&gt;">>},
                 {<<"\"">>, <<"&quot;">>}, {<<"'">>, <<"&#39;">>}]).

%% @doc How weights are named in text: samples, µs or bytes.
-spec unit_label(graph()) -> binary().
unit_label(#{unit := samples}) -> <<"samples">>;
unit_label(#{unit := microseconds}) -> <<"µs"/utf8>>;
unit_label(#{unit := bytes}) -> <<"bytes">>.

-spec badarg(string(), term()) -> no_return().
badarg(Message, Term) ->
    erlang:error({badarg, Message}, [Term]).
