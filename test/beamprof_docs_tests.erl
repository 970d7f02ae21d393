%% Docs in the shell: every exported function of a public module has its doc in the
%% edoc comments, built into EEP-48 chunks with rebar.config's chunks profile options,
%% and code:get_doc/1 plus shell_docs (what h(beamprof, top) runs) find and print it.
-module(beamprof_docs_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("kernel/include/eep48.hrl").

%% The modules the README and the guides tell users to call.
public_modules() ->
    [beamprof, beamprof_native, beamprof_scan, beamprof_monitor, beamprof_flame,
     beamprof_top, beamprof_warnings, beamprof_events, beamprof_recording, beamprof_cluster,
     beamprof_pprof].

%% Exports that are not API: OTP behaviour callbacks and the supervisor's entry point
%% (marked @private; edoc before OTP 27 gives them no doc rather than a hidden one).
callbacks() ->
    [{init, 1}, {handle_call, 3}, {handle_cast, 2}, {handle_info, 2}, {terminate, 2},
     {code_change, 3}, {start_link, 0}, {start_link, 1}].


docs_test_() ->
    {setup, fun build_chunks/0, fun(_) -> ok end,
     fun(Dir) ->
             [{atom_to_list(M), fun() -> module_documented(Dir, M) end}
              || M <- public_modules()]
             ++ [{"h(beamprof, top)", fun shell_lookup/0},
                 {"no Docs chunk in the .beam", fun no_beam_docs/0}]
     end}.

%% Builds the public modules' chunks into the application's doc/chunks (under the
%% build tree: code:lib_dir(beamprof)), where code:get_doc/1 looks.
build_chunks() ->
    Lib = code:lib_dir(beamprof),
    Opts = proplists:get_value(edoc_opts, profile(chunks)),
    Dir = filename:join(Lib, "doc"),
    Srcs = [source(M) || M <- public_modules()],
    %% private: exports marked @private (calls between beamprof's own modules) are
    %% then in the chunk too, with their doc (or hidden), and checked like the rest.
    ok = edoc:files(Srcs, [{dir, Dir}, {includes, [filename:join(Lib, "include")]},
                           {private, true}
                           | proplists:delete(dir, proplists:delete(includes, Opts))]),
    Dir.

profile(Name) ->
    Root = filename:dirname(filename:dirname(source(beamprof))),
    {ok, Config} = file:consult(filename:join(Root, "rebar.config")),
    proplists:get_value(Name, proplists:get_value(profiles, Config)).

source(M) ->
    proplists:get_value(source, M:module_info(compile)).

module_documented(Dir, M) ->
    {ok, Bin} = file:read_file(filename:join([Dir, "chunks", atom_to_list(M) ++ ".chunk"])),
    #docs_v1{module_doc = ModDoc, docs = Docs} = binary_to_term(Bin),
    ?assertEqual({M, module_doc, true}, {M, module_doc, has_text(ModDoc)}),
    Exports = [FA || {F, _} = FA <- M:module_info(exports),
                     F =/= module_info, not lists:member(FA, callbacks())],
    Missing = [FA || FA <- Exports, not documented(doc_of(FA, Docs))],
    ?assertEqual({M, []}, {M, Missing}).

doc_of({F, A}, Docs) ->
    case lists:keyfind({function, F, A}, 1, Docs) of
        {_, _Anno, _Sig, Doc, _Meta} -> Doc;
        false -> none
    end.

%% A doc, or marked @private on purpose (not part of the API: newer edoc says hidden).
documented(hidden) -> true;
documented(Doc) -> has_text(Doc).

has_text(#{<<"en">> := Content}) -> text_size(Content) > 0;
has_text(_) -> false.

text_size(B) when is_binary(B) -> byte_size(string:trim(B));
text_size({_Tag, _Attrs, Content}) -> text_size(Content);
text_size(L) when is_list(L) -> lists:sum([text_size(E) || E <- L]).

%% What h(beamprof, top) does: code:get_doc/1, then shell_docs renders the function.
shell_lookup() ->
    {ok, Docs} = code:get_doc(beamprof),
    Text = render(fun(C) -> shell_docs:render(beamprof, top, Docs, C) end),
    ?assertNotEqual(nomatch, binary:match(Text, <<"top()">>)),
    ?assertNotEqual(nomatch, binary:match(Text, <<"Prints one screen">>)),
    Top2 = render(fun(C) -> shell_docs:render(beamprof, top, 2, Docs, C) end),
    ?assertNotEqual(nomatch, binary:match(Top2, <<"top(">>)),
    ?assertNotEqual(nomatch, binary:match(Top2, <<"largest">>)).

%% shell_docs asks the group leader for its options, which EUnit's does not answer:
%% render with the VM's own user process as the group leader, no ANSI codes.
render(Render) ->
    GL = group_leader(),
    group_leader(whereis(user), self()),
    try unicode:characters_to_binary(Render(#{ansi => false}))
    after group_leader(GL, self())
    end.

%% A -moduledoc or -doc attribute would make OTP 27+ put a Docs chunk in the .beam,
%% which code:get_doc/1 reads before doc/chunks: the edoc comments would not show.
no_beam_docs() ->
    [?assertMatch({M, {error, beam_lib, {missing_chunk, _, _}}},
                  {M, beam_lib:chunks(code:which(M), ["Docs"])})
     || M <- public_modules()].
