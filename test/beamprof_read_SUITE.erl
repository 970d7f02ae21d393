%% The command-line reader (priv/beamprof_read, c_src/tools/) against the
%% Erlang reader on files from the test encoder: the same records in the
%% same order (its JSON lines decoded here and compared with
%% beamprof:read_recording/2's maps), the same filters and skip counts, and
%% its exit codes and messages for files that are not whole recordings.
-module(beamprof_read_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([same_records_as_erlang/1, same_filters/1, text_lines/1, skipped_counted/1,
         errors/1, agrees_on_damaged_files/1]).

suite() -> [{timetrap, {minutes, 5}}].

all() ->
    [same_records_as_erlang, same_filters, text_lines, skipped_counted, errors,
     agrees_on_damaged_files].

init_per_suite(Config) ->
    Exe = filename:join(code:priv_dir(beamprof), "beamprof_read"),
    case filelib:is_regular(Exe) of
        true -> [{exe, Exe} | Config];
        false -> ct:fail({not_built, Exe})
    end.

end_per_suite(_Config) -> ok.

%%--------------------------------------------------------------------

%% A wrapped ring of realistic records of every kind.
same_records_as_erlang(Config) ->
    Path = path(Config, "fixture.bprec"),
    E = beamprof_recording_fixture:write(Path, 256 bsl 10, beamprof_recording_fixture:timeline(#{})),
    ?assert(length(beamprof_recording_enc:written(E)) > length(beamprof_recording_enc:live(E))),
    {ok, Records} = beamprof:read_recording(Path),
    {0, Lines, _} = run(Config, ["--json", Path]),
    ?assertEqual(length(Records), length(Lines)),
    compare(Records, Lines),
    Kinds = lists:usort([K || #{kind := K} <- Records]),
    ct:log("~B records, kinds ~p", [length(Records), Kinds]),
    ?assert(length(Kinds) >= 5).

same_filters(Config) ->
    Path = path(Config, "filters.bprec"),
    _ = beamprof_recording_fixture:write(Path, 1 bsl 20, beamprof_recording_fixture:timeline(#{})),
    {ok, All} = beamprof:read_recording(Path),
    Mid = maps:get(time, lists:nth(length(All) div 2, All)),
    Late = maps:get(time, lists:nth(3 * length(All) div 4, All)),
    Cases = [{#{kinds => [scan, gate]}, ["--kind", "scan", "--kind", "gate"]},
             {#{since => Mid}, ["--since", integer_to_list(Mid)]},
             {#{since => Mid, until => Late, kinds => [tick]},
              ["--since", integer_to_list(Mid), "--until", integer_to_list(Late), "--kind", "tick"]}],
    [begin
         {ok, Records} = beamprof:read_recording(Path, Opts),
         {0, Lines, _} = run(Config, ["--json" | Args] ++ [Path]),
         ct:log("~p: ~B records", [Opts, length(Records)]),
         ?assert(length(Records) > 0),
         ?assertEqual(length(Records), length(Lines)),
         compare(Records, Lines)
     end || {Opts, Args} <- Cases].

text_lines(Config) ->
    Path = path(Config, "text.bprec"),
    _ = beamprof_recording_fixture:write(Path, 1 bsl 20,
                                         beamprof_recording_fixture:timeline(#{seconds => 10})),
    {ok, Records} = beamprof:read_recording(Path),
    {0, Out, _} = run_raw(Config, [Path]),
    Lines = binary:split(Out, <<"\n">>, [global, trim_all]),
    ?assertEqual(length(Records), length(Lines)),
    [H | _] = Lines,
    ct:log("~s", [H]),
    ?assertMatch({match, _}, re:run(H, "^2025-12-05T01:00:00\\.000Z #1 header ")),
    ?assertMatch({match, _}, re:run(H, "node=<<\"app@host-1\">>")),
    Scan = hd([L || L <- Lines, re:run(L, " scan ") =/= nomatch]),
    ?assertMatch({match, _}, re:run(Scan, "name => <<\"my_app_ingest\">>")).

%% Torn frames, undecodable payloads and duplicate seqs: the same records
%% and the same counts (on stderr) as the Erlang reader's info.
skipped_counted(Config) ->
    Path = path(Config, "skipped.bprec"),
    E0 = beamprof_recording_enc:create(Path, 65536),
    E1 = beamprof_recording_enc:append(E0, #{kind => note, message => <<"a">>}),
    E2 = beamprof_recording_enc:append_raw(E1, <<"garbage">>),
    E3 = beamprof_recording_enc:append(E2, #{kind => note, message => <<"torn">>}),
    E4 = beamprof_recording_enc:append(setelement(5, E3, 1), #{kind => note, message => <<"dup">>}),
    E5 = beamprof_recording_enc:append(setelement(5, E4, 10), #{kind => note, message => <<"z">>}),
    ok = beamprof_recording_enc:close(E5),
    %% Frame 3 (the torn one): after two frames of 40 + padded payloads.
    {ok, Bin} = file:read_file(Path),
    Third = 4096 + frame_size(term_to_binary(#{kind => note, message => <<"a">>}))
        + frame_size(<<"garbage">>),
    <<Before:(Third + 45)/binary, B, After/binary>> = Bin,
    ok = file:write_file(Path, <<Before/binary, (B bxor 1), After/binary>>),
    {ok, Records, Info} = beamprof:read_recording(Path, #{info => true}),
    ct:log("~p~n~p", [Records, Info]),
    {0, Lines, Err} = run(Config, ["--json", Path]),
    compare(Records, Lines),
    ?assertEqual([10], [S || #{seq := S} <- Records]),
    #{bad_frames := Bad, undecodable := Undec, duplicates := Dups} = Info,
    Expected = io_lib:format("~B records printed; ~B frames taken; skipped: ~B bad frames, ~B "
                             "undecodable, ~B duplicate sequence numbers",
                             [1, maps:get(frames, Info), Bad, Undec, Dups]),
    ?assertMatch({match, _}, re:run(Err, lists:flatten(Expected))),
    ?assertEqual({1, 1, 2}, {Bad, Undec, Dups}).

frame_size(Payload) -> 40 + ((byte_size(Payload) + 7) band -8).

errors(Config) ->
    Dir = ?config(priv_dir, Config),
    Path = path(Config, "bad.bprec"),
    _ = beamprof_recording_enc:write_file(Path, 65536, [#{kind => note}]),
    {ok, Good} = file:read_file(Path),
    Check = fun(Bin, Code, Message) ->
                    ok = file:write_file(Path, Bin),
                    {Status, Out, Err} = run_raw(Config, [Path]),
                    ct:log("~p: ~s", [Status, Err]),
                    ?assertEqual({Code, <<>>}, {Status, Out}),
                    ?assertMatch({match, _}, re:run(Err, Message))
            end,
    Check(<<"not a recording at all">>, 3, "not a beamprof recording"),
    Check(<<>>, 3, "not a beamprof recording"),
    Check(binary:part(Good, 0, 5000), 4, "truncated: 5000 bytes, the header says 69632"),
    Check(<<Good/binary, 0>>, 5, "corrupt: 69633 bytes, the header says 69632"),
    <<H:20/binary, X, Rest/binary>> = Good,
    Check(<<H/binary, (X bxor 1), Rest/binary>>, 5, "corrupt header"),
    {2, <<>>, Missing} = run_raw(Config, [filename:join(Dir, "none")]),
    ?assertMatch({match, _}, re:run(Missing, "No such file")),
    {1, <<>>, Usage} = run_raw(Config, ["--bogus", Path]),
    ?assertMatch({match, _}, re:run(Usage, "usage: beamprof_read")),
    {1, <<>>, _} = run_raw(Config, []).

%% Random damage (bits flipped, bytes cut and pasted): both readers answer
%% alike, an error or the same records.
agrees_on_damaged_files(Config) ->
    Dir = ?config(priv_dir, Config),
    Base = path(Config, "base.bprec"),
    _ = beamprof_recording_fixture:write(Base, 65536 + 800,
                                         beamprof_recording_fixture:timeline(#{seconds => 30})),
    {ok, Bin} = file:read_file(Base),
    Prop = ?FORALL(Flips, list({float(0.0, 1.0), range(0, 7)}),
                   begin
                       Path = filename:join(Dir, "damaged.bprec"),
                       ok = file:write_file(Path, flip(Bin, Flips)),
                       Erl = beamprof:read_recording(Path),
                       {Status, Out, _} = run_raw(Config, ["--json", Path]),
                       ?WHENFAIL(io:format("~p~n~p ~s~n", [Erl, Status, Out]),
                                 agree(Erl, Status, Out))
                   end),
    beamprof_ct:quickcheck(Prop, 100).

agree({ok, Records}, 0, Out) ->
    Lines = [json(L) || L <- binary:split(Out, <<"\n">>, [global, trim_all])],
    length(Records) =:= length(Lines) andalso
        lists:all(fun({R, L}) -> to_json(R) =:= L end, lists:zip(Records, Lines));
agree({error, not_a_recording}, 3, <<>>) -> true;
agree({error, {truncated, _}}, 4, <<>>) -> true;
agree({error, {corrupt, _}}, 5, <<>>) -> true;
agree({error, {unsupported_version, _}}, 6, <<>>) -> true;
agree(_, _, _) -> false.

flip(Bin, Flips) ->
    lists:foldl(fun({At, Bit}, Acc) ->
                        Pos = min(byte_size(Acc) - 1, trunc(At * byte_size(Acc))),
                        <<Before:Pos/binary, Byte, After/binary>> = Acc,
                        <<Before/binary, (Byte bxor (1 bsl Bit)), After/binary>>
                end, Bin, Flips).

%%--------------------------------------------------------------------
%% running the reader

%% {ExitStatus, [DecodedJsonLine], Stderr}
run(Config, Args) ->
    {Status, Out, Err} = run_raw(Config, Args),
    {Status, [json(L) || L <- binary:split(Out, <<"\n">>, [global, trim_all])], Err}.

run_raw(Config, Args) ->
    ErrFile = filename:join(?config(priv_dir, Config),
                            "stderr-" ++ integer_to_list(erlang:unique_integer([positive]))),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", "exec \"$0\" \"$@\" 2>\"$BP_ERR\"", ?config(exe, Config) | Args]},
                      {env, [{"BP_ERR", ErrFile}]}, exit_status, binary, stream]),
    {Status, Out} = beamprof_ct:port_output(Port),
    {ok, Err} = file:read_file(ErrFile),
    {Status, Out, Err}.

compare(Records, Lines) ->
    [?assertEqual(to_json(R), L) || {R, L} <- lists:zip(Records, Lines)].

%% A record as the JSON reader shows it.
to_json(M) when is_map(M) ->
    maps:from_list([{key(K), to_json(V)} || {K, V} <- maps:to_list(M)]);
to_json(L) when is_list(L) -> [to_json(E) || E <- L];
to_json(T) when is_tuple(T) -> to_json(tuple_to_list(T));
to_json(undefined) -> null;
to_json(B) when is_boolean(B) -> B;
to_json(A) when is_atom(A) -> atom_to_binary(A);
to_json(X) -> X.

key(K) when is_atom(K) -> atom_to_binary(K);
key(K) when is_binary(K) -> K.

%%--------------------------------------------------------------------
%% a small JSON decoder (OTP 25 has none): objects as maps with binary
%% keys, arrays as lists, strings as binaries, true/false/null as atoms

json(Bin) ->
    {V, Rest} = value(ws(Bin)),
    <<>> = ws(Rest),
    V.

value(<<"{", R/binary>>) -> object(ws(R), #{});
value(<<"[", R/binary>>) -> array(ws(R), []);
value(<<"\"", R/binary>>) -> string(R, <<>>);
value(<<"true", R/binary>>) -> {true, R};
value(<<"false", R/binary>>) -> {false, R};
value(<<"null", R/binary>>) -> {null, R};
value(R) -> number(R).

object(<<"}", R/binary>>, M) -> {M, R};
object(R0, M) ->
    {K, R1} = value(R0),
    <<":", R2/binary>> = ws(R1),
    {V, R3} = value(ws(R2)),
    case ws(R3) of
        <<",", R4/binary>> -> object(ws(R4), M#{K => V});
        <<"}", R4/binary>> -> {M#{K => V}, R4}
    end.

array(<<"]", R/binary>>, Acc) -> {lists:reverse(Acc), R};
array(R0, Acc) ->
    {V, R1} = value(R0),
    case ws(R1) of
        <<",", R2/binary>> -> array(ws(R2), [V | Acc]);
        <<"]", R2/binary>> -> {lists:reverse([V | Acc]), R2}
    end.

string(<<"\"", R/binary>>, Acc) -> {Acc, R};
string(<<"\\u", H:4/binary, R/binary>>, Acc) ->
    C = binary_to_integer(H, 16),
    string(R, <<Acc/binary, C/utf8>>);
string(<<"\\", C, R/binary>>, Acc) ->
    string(R, <<Acc/binary, (case C of $n -> $\n; $t -> $\t; $r -> $\r; $b -> $\b;
                                        $f -> $\f; _ -> C end)>>);
string(<<C, R/binary>>, Acc) -> string(R, <<Acc/binary, C>>).

number(Bin) ->
    {match, [N]} = re:run(Bin, "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?", [{capture, first, binary}]),
    <<_:(byte_size(N))/binary, R/binary>> = Bin,
    V = case re:run(N, "[.eE]") of
            nomatch -> binary_to_integer(N);
            _ -> float_of(N)
        end,
    {V, R}.

float_of(N) ->
    S = binary_to_list(N),
    case {lists:member($., S), string:split(string:lowercase(S), "e")} of
        {false, [M, E]} -> list_to_float(M ++ ".0e" ++ E);
        _ -> list_to_float(S)
    end.

ws(<<C, R/binary>>) when C =:= $\s; C =:= $\n; C =:= $\t; C =:= $\r -> ws(R);
ws(R) -> R.

path(Config, Name) -> filename:join(?config(priv_dir, Config), Name).
