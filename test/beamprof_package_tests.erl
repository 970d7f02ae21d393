%% Package hygiene: the package file list (src/beamprof.app.src's files, which mix.exs
%% reads too) names every directory a build needs, the version is the changelog's
%% latest, the license is there, and git tracks no build or test output.
-module(beamprof_package_tests).

-include_lib("eunit/include/eunit.hrl").

root() ->
    Src = proplists:get_value(source, beamprof:module_info(compile)),
    filename:dirname(filename:dirname(Src)).

app_props() ->
    {ok, [{application, beamprof, Props}]} =
        file:consult(filename:join(root(), "src/beamprof.app.src")),
    Props.

files() ->
    [unicode:characters_to_list(F) || F <- proplists:get_value(files, app_props())].

build_needs_listed_test() ->
    Needed = ["src", "include", "lib", "c_src/Makefile", "c_src/BSDmakefile", "mix.exs",
              "rebar.config", "README.md", "LICENSE", "CHANGELOG.md"],
    ?assertEqual([], Needed -- files()).

%% Every c_src directory with C sources but the tests' is shipped: a new concern
%% directory the Makefile compiles cannot be left out of the package.
c_source_dirs_listed_test() ->
    CDir = filename:join(root(), "c_src"),
    {ok, Entries} = file:list_dir(CDir),
    WithSources = [filename:join("c_src", E) || E <- Entries, E =/= "test",
                   filelib:is_dir(filename:join(CDir, E)),
                   filelib:wildcard(filename:join([CDir, E, "*.{c,h}"])) =/= []],
    ?assert(length(WithSources) >= 3),
    ?assertEqual([], WithSources -- files()).

%% What is listed exists (doc/ holds the guides and the built chunks).
listed_files_exist_test() ->
    ?assertEqual([], [F || F <- files(), F =/= "doc",
                           not filelib:is_file(filename:join(root(), F))]).

%% Nothing built goes into the package: priv/ and the C objects are built.
nothing_built_listed_test() ->
    ?assertEqual([], [F || F <- files(), lists:member(F, ["priv", "c_src", "c_src/obj",
                                                          "c_src/test", "_build"])]).

version_is_the_changelogs_test() ->
    {ok, Log} = file:read_file(filename:join(root(), "CHANGELOG.md")),
    {match, [Latest]} = re:run(Log, "^## \\[([0-9]+\\.[0-9]+\\.[0-9]+)\\]",
                               [multiline, {capture, all_but_first, list}]),
    ?assertEqual(Latest, proplists:get_value(vsn, app_props())).

license_test() ->
    {ok, Text} = file:read_file(filename:join(root(), "LICENSE")),
    ?assertMatch({match, _}, re:run(Text, "Apache License\\s+Version 2\\.0")),
    ?assertEqual(["Apache-2.0"], proplists:get_value(licenses, app_props())).

%% git tracks no build or test output (where the tree is a git checkout).
no_tracked_output_test_() ->
    Root = root(),
    %% (A copy of the tree, as in the OTP matrix's roots, is not a checkout.)
    case os:find_executable("git") =/= false
        andalso os:cmd("git -C '" ++ Root ++ "' rev-parse --is-inside-work-tree 2>/dev/null")
                =:= "true\n" of
        false ->
            [];
        true ->
            Out = os:cmd("git -C '" ++ Root ++ "' ls-files 2>/dev/null"),
            Tracked = string:lexemes(Out, "\n"),
            Built = "(\\.(o|d|so|beam|chunk|dump)$|^(_build|tmp|logs|demo_out|priv|doc/chunks)/"
                    "|^c_src/(obj|asan|cross|test/bin)/)",
            [?_assert(length(Tracked) > 50),
             ?_assertEqual([], [F || F <- Tracked, re:run(F, Built) =/= nomatch])]
    end.
