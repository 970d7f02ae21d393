%% The README and the guides: every relative link in README.md and doc/*.md points at a
%% file of the tree, and every #anchor at a heading of its target (as GitHub makes
%% anchors from headings), so moving a section or renaming a heading cannot leave a
%% dead link behind.
-module(beamprof_doc_links_tests).

-include_lib("eunit/include/eunit.hrl").

root() ->
    Src = proplists:get_value(source, beamprof:module_info(compile)),
    filename:dirname(filename:dirname(Src)).

%% The README, then the guides (doc/chunks holds built chunks, not markdown).
documents() ->
    Root = root(),
    ["README.md" | [filename:join("doc", filename:basename(F))
                    || F <- filelib:wildcard(filename:join([Root, "doc", "*.md"]))]].

links_resolve_test_() ->
    Root = root(),
    [{Doc, fun() -> ?assertEqual({Doc, []}, {Doc, dead_links(Root, Doc)}) end}
     || Doc <- documents()].

%% The README links each guide (the guides are reachable from the front page).
readme_links_every_guide_test() ->
    Root = root(),
    Targets = [Path || {Path, _} <- links(read(Root, "README.md"))],
    Guides = [D || D <- documents(), D =/= "README.md", D =/= "doc/recording-format.md"],
    ?assert(length(Guides) >= 8),
    ?assertEqual([], Guides -- Targets).

%% The checker finds what it should: a missing file, a missing anchor, a missing
%% anchor in the same file; and GitHub's anchors for headings with code and marks.
checker_test() ->
    Dir = filename:join(root(), "_build/test/doc_links_tests"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, "a.md"),
                         <<"# Top\n\n## With `vm_internals => false`\n\n"
                           "### The floor of `top(memory)`\n\n```\n# not a heading\n```\n"
                           "[ok](#top) [ok](#with-vm_internals--false) [ok](b.md)\n"
                           "[ok](#the-floor-of-topmemory) [ok](https://example.org/x.md)\n"
                           "[bad](#not-a-heading) [bad](c.md) [bad](b.md#nowhere)\n"
                           "`[not a link](d.md)`\n">>),
    ok = file:write_file(filename:join(Dir, "b.md"), <<"# B\n">>),
    ?assertEqual([{"#not-a-heading", no_anchor}, {"c.md", no_file},
                  {"b.md#nowhere", no_anchor}],
                 dead_links(Dir, "a.md")).

%% --- the checker ------------------------------------------------------------------

dead_links(Root, Doc) ->
    Dir = filename:dirname(Doc),
    [{Link, Why} || {Path, Anchor} <- links(read(Root, Doc)),
                    Link <- [link_text(Path, Anchor)],
                    Why <- [check(Root, Doc, Dir, Path, Anchor)], Why =/= ok].

link_text(Path, none) -> Path;
link_text(Path, Anchor) -> Path ++ "#" ++ Anchor.

check(Root, Doc, _Dir, "", Anchor) ->
    check_anchor(Root, Doc, Anchor);
check(Root, _Doc, Dir, Path, Anchor) ->
    Target = normalise(filename:join(Dir, Path)),
    Full = filename:join(Root, Target),
    case filelib:is_file(Full) of
        false -> no_file;
        true when Anchor =:= none -> ok;
        true -> check_anchor(Root, Target, Anchor)
    end.

check_anchor(Root, Doc, Anchor) ->
    case lists:member(Anchor, anchors(read(Root, Doc))) of
        true -> ok;
        false -> no_anchor
    end.

read(Root, Doc) ->
    {ok, Bin} = file:read_file(filename:join(Root, Doc)),
    unicode:characters_to_list(Bin).

%% "doc/../c_src/README.md" -> "c_src/README.md" (the target must stay in the tree).
normalise(Path) ->
    filename:join(lists:reverse(lists:foldl(fun(".", Acc) -> Acc;
                                               ("..", [_ | Acc]) -> Acc;
                                               (P, Acc) -> [P | Acc]
                                            end, [], filename:split(Path)))).

%% {Path, Anchor | none} of every relative link outside code: fenced blocks and
%% code spans are dropped first (a link's text may hold a code span; it goes, the
%% link stays).
links(Text) ->
    Prose = re:replace(prose(Text), "`[^`\n]*`", "", [global, unicode, {return, list}]),
    case re:run(Prose, "\\]\\(([^()\\s]+)\\)", [global, unicode, {capture, all_but_first, list}]) of
        nomatch -> [];
        {match, Found} -> [split(L) || [L] <- Found, not external(L)]
    end.

external(Link) ->
    re:run(Link, "^[a-z][a-z0-9+.-]*:", [caseless]) =/= nomatch.

split(Link) ->
    case string:split(Link, "#") of
        [Path, Anchor] -> {Path, Anchor};
        [Path] -> {Path, none}
    end.

%% The text outside fenced code blocks, line by line.
prose(Text) ->
    {Lines, _} = lists:foldl(fun(L, {Acc, InCode}) ->
                                     case string:prefix(L, "```") of
                                         nomatch when InCode -> {Acc, InCode};
                                         nomatch -> {[L | Acc], InCode};
                                         _ -> {Acc, not InCode}
                                     end
                             end, {[], false}, string:split(Text, "\n", all)),
    lists:join("\n", lists:reverse(Lines)).

%% GitHub's anchors: the heading's text without its marks, lower case, anything but
%% letters, digits, spaces, '-' and '_' dropped, spaces as '-'; a repeated anchor
%% gets -1, -2, ...
anchors(Text) ->
    Headings = [H || L <- string:split(prose(Text), "\n", all),
                     {match, [H]} <- [re:run(L, "^#{1,6}\\s+(.*?)\\s*#*\\s*$",
                                             [unicode, {capture, all_but_first, list}])]],
    number(lists:map(fun slug/1, Headings), #{}).

slug(Heading) ->
    Text = re:replace(Heading, "\\[([^\\]]*)\\]\\([^)]*\\)", "\\1", [global, unicode, {return, list}]),
    Lower = string:lowercase(Text),
    Kept = re:replace(Lower, "[^\\w\\- ]", "", [global, unicode, ucp, {return, list}]),
    lists:flatten(string:replace(Kept, " ", "-", all)).

number([], _) -> [];
number([S | Rest], Seen) ->
    case maps:get(S, Seen, 0) of
        0 -> [S | number(Rest, Seen#{S => 1})];
        N -> [S ++ "-" ++ integer_to_list(N) | number(Rest, Seen#{S => N + 1})]
    end.
