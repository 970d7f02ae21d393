%% Only frames that are known (issue 12 item 5): a native graph shows no
%% Erlang caller that was not on the stack. A module compiled here runs
%% chains whose callers are known (a -> b -> c and x -> y -> z, c and z
%% spinning, in processes spawned straight into a and x) among 200
%% processes asleep at the end of p -> q -> r chains (their stacks, next to
%% the spinners' in memory, hold return addresses into p, q and r). Peers
%% run without frame pointers (no flag) and with them (+JPperf true on OTP
%% 25, +JPperf fp on 26+). In every stack, the Erlang frames under c are a
%% suffix of [normal_exit, a, b] with frame pointers (erts_beamasm:
%% normal_exit/0 is the return address a spawned process starts with) and
%% none without; likewise z under x, y. Without frame pointers the profile's warnings, and each file format
%% written from it (folded, SVG, HTML, speedscope), say why and name the
%% flag; with them, nothing is said and the whole chain is there.
-module(beamprof_native_frames_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([no_frame_pointers/1, frame_pointers/1, flame_graph_file_says_it/1]).

-define(A, <<"bpf_chain:a/2">>).
-define(B, <<"bpf_chain:b/1">>).
-define(C, <<"bpf_chain:c/2">>).
%% The return address a spawned process starts with (its first frame's
%% caller): on its stack, so a true caller.
-define(EXIT, <<"erts_beamasm:normal_exit/0">>).
-define(X, <<"bpf_chain:x/2">>).
-define(Y, <<"bpf_chain:y/1">>).
-define(Z, <<"bpf_chain:z/2">>).

suite() -> [{timetrap, {minutes, 5}}].

all() ->
    [no_frame_pointers, frame_pointers, flame_graph_file_says_it].

init_per_suite(Config) ->
    case beamprof_ct:native_suite(Config) of
        {skip, _} = Skip -> Skip;
        _ -> compile_chain(Config)
    end.

end_per_suite(_Config) ->
    ok.

%% The workload, written and compiled here so its callers are known.
compile_chain(Config) ->
    Dir = ?config(priv_dir, Config),
    Src = filename:join(Dir, "bpf_chain.erl"),
    ok = file:write_file(Src, chain_source()),
    {ok, bpf_chain} = compile:file(Src, [{outdir, Dir}, report]),
    Config.

chain_source() ->
    <<"-module(bpf_chain).\n"
      "-export([run/1, a/2, x/2, p/1]).\n"
      "run(Ms) ->\n"
      "    D = erlang:monotonic_time(millisecond) + Ms,\n"
      "    S1 = [spawn(?MODULE, p, [20]) || _ <- lists:seq(1, 100)],\n"
      "    Spin = [spawn(?MODULE, a, [D, self()]), spawn(?MODULE, x, [D, self()])],\n"
      "    S2 = [spawn(?MODULE, p, [20]) || _ <- lists:seq(1, 100)],\n"
      "    [receive {done, P} -> ok after 60000 -> exit(spinner_timeout) end || P <- Spin],\n"
      "    [S ! stop || S <- S1 ++ S2],\n"
      "    ok.\n"
      "a(D, Parent) -> R = b(D), Parent ! {done, self()}, R.\n"
      "b(D) -> R = c(D, 0), {b, R}.\n"
      "c(D, N) when N band 16#3FFF =:= 0 ->\n"
      "    case erlang:monotonic_time(millisecond) >= D of\n"
      "        true -> N;\n"
      "        false -> c(D, N + 1)\n"
      "    end;\n"
      "c(D, N) -> c(D, N + 1).\n"
      "x(D, Parent) -> R = y(D), Parent ! {done, self()}, R.\n"
      "y(D) -> R = z(D, 0), {y, R}.\n"
      "z(D, N) when N band 16#3FFF =:= 0 ->\n"
      "    case erlang:monotonic_time(millisecond) >= D of\n"
      "        true -> N;\n"
      "        false -> z(D, N + 1)\n"
      "    end;\n"
      "z(D, N) -> z(D, N + 1).\n"
      "p(N) -> R = q(N), {p, R}.\n"
      "q(N) -> R = r(N), {q, R}.\n"
      "r(0) -> receive stop -> 0 end;\n"
      "r(N) -> R = r(N - 1), R + 1.\n">>.

%%--------------------------------------------------------------------
%% Helpers

otp_release() ->
    list_to_integer(erlang:system_info(otp_release)).

%% The flag that gives frame pointers on this release.
fp_args() ->
    case otp_release() >= 26 of
        true -> ["+JPperf", "fp"];
        false -> ["+JPperf", "true"]
    end.

with_peer(Config, Args, Fun) ->
    {ok, Peer, _Node} = peer:start(#{connection => standard_io,
                                     args => ["-pa", ?config(priv_dir, Config),
                                              "-pa" | code:get_path()] ++ Args}),
    try
        {module, beamprof_nif} = peer:call(Peer, code, ensure_loaded, [beamprof_nif]),
        %% loaded before sampling: names from the GDB JIT table are
        %% re-read at most once a second
        {module, bpf_chain} = peer:call(Peer, code, ensure_loaded, [bpf_chain]),
        Fun(fun(M, F, A) -> peer:call(Peer, M, F, A, 120000) end)
    after
        peer:stop(Peer)
    end.

%% The chains running for Ms while the normal schedulers are sampled.
sample(Call, Ms) ->
    {ok, _} = Call(beamprof, native_start, [#{hz => 999, threads => [normal]}]),
    ok = Call(bpf_chain, run, [Ms]),
    {ok, P} = Call(beamprof, native_stop, []),
    ct:log("profile: ~p", [maps:without([stacks], P)]),
    ct:log("heaviest stacks: ~p", [lists:sublist(maps:get(stacks, P), 20)]),
    P.

%% Waits until both spinners of bpf_chain:run/1 are in their loops on the
%% peer (spawned, scheduled, past their first calls), so that a short
%% sample falls on them.
spinning(Call, Deadline) ->
    Loops = [{bpf_chain, c, 2}, {bpf_chain, z, 2}],
    Current = [F || P <- Call(erlang, processes, []),
                    {current_function, F} <- [Call(erlang, process_info,
                                                   [P, current_function])]],
    case Loops -- Current of
        [] -> ok;
        Missing ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {not_spinning, Missing};
                false ->
                    receive after 50 -> spinning(Call, Deadline) end
            end
    end.

%% The Erlang frames of a root-first stack that come before Leaf (its
%% callers, outermost first), or `absent'.
callers(Leaf, Stack) ->
    Erlang = [F || F <- Stack, beamprof_flame:kind(F) =:= erlang],
    case lists:member(Leaf, Erlang) of
        true -> lists:takewhile(fun(F) -> F =/= Leaf end, Erlang);
        false -> absent
    end.

%% Weight of the stacks holding Leaf, and the stacks whose callers of Leaf
%% are not allowed by Ok.
check_leaf(Stacks, Leaf, Ok) ->
    With = [{S, W, callers(Leaf, S)} || {S, W} <- Stacks, callers(Leaf, S) =/= absent],
    Bad = [{S, W} || {S, W, Callers} <- With, not Ok(Callers)],
    {lists:sum([W || {_, W, _} <- With]), Bad}.

%% Every stack holding Leaf shows no caller, or only a suffix of Chain.
assert_callers(Stacks, Leaf, Ok, Label) ->
    {Weight, Bad} = check_leaf(Stacks, Leaf, Ok),
    ct:log("~s: ~ts in ~p samples; stacks with callers that were not on the stack: ~p",
           [Label, Leaf, Weight, Bad]),
    ?assertEqual([], Bad),
    ?assert(Weight > 50),
    Weight.

suffix_of(Chain) ->
    fun(Callers) -> lists:suffix(Callers, Chain) end.

%% Weight of the stacks whose callers of Leaf end with the whole Chain.
full_chain_weight(Stacks, Leaf, Chain) ->
    lists:sum([W || {S, W} <- Stacks, is_list(callers(Leaf, S)),
                    lists:suffix(Chain, callers(Leaf, S))]).

warnings_of(Code, #{warnings := Ws}) ->
    [W || #{code := C} = W <- Ws, C =:= Code].

%% The remedy this release takes.
flag_text() ->
    case otp_release() >= 26 of
        true -> <<"+JPperf fp">>;
        false -> <<"+JPperf true">>
    end.

%%--------------------------------------------------------------------
%% Cases

%% No flag: the VM's JIT code has no frame pointers. Nothing above the
%% innermost Erlang function is shown, and the profile and its files say
%% why and what to do.
no_frame_pointers(Config) ->
    with_peer(Config, [], fun(Call) -> no_frame_pointers(Config, Call) end).

no_frame_pointers(Config, Call) ->
    ?assertMatch(#{frame_pointers := false, mode := leaf},
                 Call(beamprof_native_nif, info, [true])),
    P = sample(Call, 2500),
    ?assertMatch(#{frame_pointers := false}, P),
    #{stacks := Stacks} = P,
    None = fun(Callers) -> Callers =:= [] end,
    assert_callers(Stacks, ?C, None, "no frame pointers"),
    assert_callers(Stacks, ?Z, None, "no frame pointers"),
    [#{message := Message}] = warnings_of(native_callers_dropped, P),
    ct:log("warning: ~ts", [Message]),
    ?assertNotEqual(nomatch, binary:match(Message, <<"frame pointers">>)),
    ?assertNotEqual(nomatch, binary:match(Message, flag_text())),
    ?assertEqual([Message], maps:get(notes, P)),
    files_say(Config, P, Message, "nofp").

%% Each format carries the note in the file itself.
files_say(Config, P, Message, Prefix) ->
    Dir = ?config(priv_dir, Config),
    Esc = beamprof_flame:escape_xml(Message),
    Read = fun(Format) ->
                   Path = filename:join(Dir, Prefix ++ "." ++ atom_to_list(Format)),
                   {ok, Path} = beamprof:write_profile(P, Path, Format),
                   {ok, Bin} = file:read_file(Path),
                   Bin
           end,
    Folded = Read(folded),
    [First | _] = binary:split(Folded, <<"\n">>),
    ?assertEqual(<<"# ", Message/binary, " 0">>, First),
    Svg = Read(svg),
    ?assertMatch({_, _}, binary:match(Svg, <<"<title>beamprof native CPU profile - ",
                                             Esc/binary, "</title>">>)),
    %% visible: the note's words are in the SVG's text lines
    ?assertMatch({_, _}, binary:match(Svg, <<"<text class=\"n\"">>)),
    ?assertMatch({_, _}, binary:match(Svg, beamprof_flame:escape_xml(flag_text()))),
    Html = Read(html),
    ?assertMatch({_, _}, binary:match(Html, <<"<p class=\"note\">", Esc/binary, "</p>">>)),
    ?assertMatch({_, _}, binary:match(Html, <<"<title>beamprof native CPU profile - ",
                                              Esc/binary, "</title>">>)),
    Speedscope = Read(speedscope),
    ?assertMatch({_, _}, binary:match(Speedscope, <<"\"name\":\"beamprof native CPU profile - ">>)),
    ?assertMatch({_, _}, binary:match(Speedscope, flag_text())).

%% +JPperf true (OTP 25) or +JPperf fp (26+): frame pointers. The whole
%% chain is shown, never a caller that was not on the stack; nothing is
%% said about dropped callers.
frame_pointers(Config) ->
    with_peer(Config, fp_args(), fun(Call) -> frame_pointers(Config, Call) end).

frame_pointers(Config, Call) ->
    ?assertMatch(#{frame_pointers := true, mode := fp}, Call(beamprof_native_nif, info, [true])),
    P = sample(Call, 2500),
    #{stacks := Stacks} = P,
    C = assert_callers(Stacks, ?C, suffix_of([?EXIT, ?A, ?B]), "frame pointers"),
    Z = assert_callers(Stacks, ?Z, suffix_of([?EXIT, ?X, ?Y]), "frame pointers"),
    FullC = full_chain_weight(Stacks, ?C, [?A, ?B]),
    FullZ = full_chain_weight(Stacks, ?Z, [?X, ?Y]),
    ct:log("whole chains: c ~p of ~p, z ~p of ~p", [FullC, C, FullZ, Z]),
    %% the control: the walk does find the callers (measured ~95%+)
    ?assert(FullC >= 0.5 * C),
    ?assert(FullZ >= 0.5 * Z),
    ?assertMatch(#{frame_pointers := true, notes := []}, P),
    ?assertEqual([], warnings_of(native_callers_dropped, P)),
    Path = filename:join(?config(priv_dir, Config), "fp.folded"),
    {ok, Path} = beamprof:write_profile(P, Path, folded),
    {ok, Folded} = file:read_file(Path),
    ?assertEqual(nomatch, binary:match(Folded, <<"#">>)).

%% flame_graph/2 as a person calls it, without frame pointers: the folded
%% file starts with the note, and the answer's warnings say it too.
flame_graph_file_says_it(Config) ->
    with_peer(Config, [], fun(Call) -> flame_graph_file(Config, Call) end).

flame_graph_file(Config, Call) ->
    Path = filename:join(?config(priv_dir, Config), "flame.folded"),
    %% the chains run first and outlast the graph (the peer's stop ends
    %% them): with both schedulers busy, starting the sampler takes up to
    %% about 2 s on this machine
    _ = Call(erlang, spawn, [bpf_chain, run, [15000]]),
    ok = spinning(Call, erlang:monotonic_time(millisecond) + 30000),
    {ok, #{file := Path, warnings := Ws, notes := [Note]} = Answer} =
        Call(beamprof, flame_graph, [1500, Path]),
    ct:log("answer: ~p", [Answer]),
    ct:log("folded: ~ts", [element(2, file:read_file(Path))]),
    ?assertMatch([#{message := Note}], [W || #{code := native_callers_dropped} = W <- Ws]),
    {ok, Folded} = file:read_file(Path),
    [First | Lines] = binary:split(Folded, <<"\n">>, [global, trim_all]),
    ?assertEqual(<<"# ", Note/binary, " 0">>, First),
    Stacks = [begin
                  [S, W] = string:split(L, <<" ">>, trailing),
                  {binary:split(S, <<";">>, [global]), binary_to_integer(W)}
              end || L <- Lines],
    ?assertNotEqual([], [S || {S, _} <- Stacks, lists:member(?C, S)]),
    ?assertEqual([], [S || {S, _} <- Stacks, callers(?C, S) =/= absent,
                           callers(?C, S) =/= []]).
