%% Common Test suite of continuous profiling (beamprof_continuous) in this
%% VM: each sink against the real thing (files on disk, telemetry handlers,
%% an HTTP server started by the test that records what it receives, then is
%% stopped and started again), the one sampler shared with flame graphs,
%% the start semantics, and the library's absence in a peer.
%%
%% The cases that decode pprof use the pprof branch's test decoder
%% (beamprof_pprof_decode:decode/1).
-module(beamprof_continuous_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([dir_sink_rotates/1, telemetry_sink/1, http_sink/1, http_sink_down_and_back/1,
         flame_graph_shares_sampler/1, waits_for_native_run/1, start_semantics/1,
         stop_releases_sampler/1, native_absent/1]).
-export([absent_answers/0]).

all() ->
    [dir_sink_rotates, telemetry_sink, http_sink, http_sink_down_and_back,
     flame_graph_shares_sampler, waits_for_native_run, start_semantics,
     stop_releases_sampler, native_absent].

init_per_suite(Config) ->
    beamprof_ct:native_suite(Config).

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Spinner = spawn(fun spin/0),
    [{spinner, Spinner} | Config].

end_per_testcase(_Case, Config) ->
    exit(?config(spinner, Config), kill),
    ok = beamprof:stop(),
    _ = beamprof_native:stop(),
    beamprof_ct:detach_all().

%%--------------------------------------------------------------------
%% Helpers

%% Work to sample.
spin() ->
    _ = lists:sort([rand:uniform(1000) || _ <- lists:seq(1, 500)]),
    spin().

start(Continuous) ->
    ok = beamprof:start(#{continuous => Continuous}).

sink_info(N) ->
    #{sinks := Sinks} = beamprof:continuous_info(),
    lists:nth(N, Sinks).

wait(Fun) ->
    beamprof_ct:wait_until(Fun, 60000).

%% A gzipped pprof: decoded by the pprof branch's independent decoder.
assert_pprof(Bin) ->
    ?assertMatch(<<31, 139, _/binary>>, Bin),
    Raw = zlib:gunzip(Bin),
    ?assert(byte_size(Raw) > 0),
    {ok, Decoded} = beamprof_pprof_decode:decode(Bin),
    ?assert(is_map(Decoded)),
    Decoded.

%%--------------------------------------------------------------------
%% HTTP server of the test: each request is sent to Owner as
%% {http, Method, Path, Query, Headers, Body}; answered with Status.

http_server(Owner, Port, Status) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, L} = gen_tcp:listen(Port, [binary, {active, false},
                                                       {reuseaddr, true}, {packet, http_bin}]),
                        {ok, P} = inet:port(L),
                        Parent ! {listening, self(), P},
                        accept(L, Owner, Status)
                end),
    receive {listening, Pid, P} -> {Pid, P}
    after 10000 -> ct:fail(no_listener)
    end.

accept(L, Owner, Status) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            _ = spawn(fun() -> request(S, Owner, Status) end),
            accept(L, Owner, Status);
        {error, _} ->
            ok
    end.

request(S, Owner, Status) ->
    {ok, {http_request, Method, {abs_path, Uri}, _}} = gen_tcp:recv(S, 0, 10000),
    Headers = headers(S, #{}),
    Len = binary_to_integer(maps:get(<<"content-length">>, Headers, <<"0">>)),
    ok = inet:setopts(S, [{packet, raw}]),
    {ok, Body} = case Len of 0 -> {ok, <<>>}; _ -> gen_tcp:recv(S, Len, 10000) end,
    #{path := Path} = U = uri_string:parse(Uri),
    Query = maps:from_list(uri_string:dissect_query(maps:get(query, U, <<>>))),
    Owner ! {http, Method, Path, Query, Headers, Body},
    ok = gen_tcp:send(S, ["HTTP/1.1 ", integer_to_list(Status), " X\r\n"
                          "content-length: 0\r\nconnection: close\r\n\r\n"]),
    gen_tcp:close(S).

headers(S, Acc) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, {http_header, _, Name, _, Value}} ->
            headers(S, Acc#{string:lowercase(to_bin(Name)) => Value});
        {ok, http_eoh} ->
            Acc
    end.

to_bin(A) when is_atom(A) -> atom_to_binary(A);
to_bin(B) -> B.

next_request() ->
    receive {http, _, _, _, _, _} = R -> R
    after 30000 -> ct:fail(no_request)
    end.

%%--------------------------------------------------------------------
%% Cases

%% Files rotate: one per period, never more than `keep' of them, each a
%% gzipped pprof [needs the pprof branch's decoder].
dir_sink_rotates(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "profiles"),
    start(#{hz => 99, period => 1000, sink => {dir, Dir, #{keep => 3}}}),
    Count = fun() -> length(filelib:wildcard(filename:join(Dir, "*.pb.gz"))) end,
    %% Polled every 10 ms over five periods: never more than keep, but for
    %% the moment between a file's write and the prune that follows it.
    Max = atomics:new(1, []),
    wait(fun() -> N = Count(), atomics:put(Max, 1, max(N, atomics:get(Max, 1))),
                  maps:get(sent, sink_info(1)) >= 5 andalso N =:= 3 end),
    ?assert(atomics:get(Max, 1) =< 4),
    Files = filelib:wildcard(filename:join(Dir, "*.pb.gz")),
    ct:log("~p", [Files]),
    Prefix = atom_to_list(node()) ++ "-",
    [?assertEqual(Prefix, lists:sublist(filename:basename(F), length(Prefix))) || F <- Files],
    [begin {ok, Bin} = file:read_file(F), assert_pprof(Bin) end || F <- Files],
    ?assertMatch(#{state := running, hz := 99, period := 1000}, beamprof:continuous_info()),
    ?assertMatch(#{failed := 0, dropped := 0, lost := 0, failing := false}, sink_info(1)).

%% The telemetry sink emits [beamprof, profile, native] with the period's
%% profile.
telemetry_sink(_Config) ->
    start(#{period => 1000, sink => telemetry}),
    [{Event, M, Meta} | _] = beamprof_ct:wait_events([beamprof, profile, native], 2),
    ?assertEqual([beamprof, profile, native], Event),
    ?assertMatch(#{samples := S, weighted := _, duration_ms := D} when is_integer(S) andalso
                                                                      D >= 500, M),
    #{profile := Profile, from_ms := From, until_ms := Until, node := Node, hz := 19,
      warnings := Ws} = Meta,
    ?assertEqual(node(), Node),
    ?assert(Until > From),
    ?assert(lists:all(fun beamprof_warnings:is_warning/1, Ws)),
    ?assertMatch(#{stacks := [_ | _], hz := 19, unit := samples}, Profile).

%% The HTTP sink posts Pyroscope's ingest request: path, query, the
%% authentication and tenant headers, a pprof body [needs the pprof branch's
%% decoder].
http_sink(_Config) ->
    {Server, Port} = http_server(self(), 0, 200),
    Url = "http://127.0.0.1:" ++ integer_to_list(Port),
    start(#{period => 1000,
            sink => {http, Url, #{app => "shop", auth => {basic, "u", "p"}, tenant => "t1",
                                  labels => #{<<"env">> => <<"test">>}}}}),
    {http, Method, Path, Query, Headers, Body} = next_request(),
    ?assertEqual('POST', Method),
    ?assertEqual(<<"/ingest">>, Path),
    NodeBin = atom_to_binary(node()),
    ?assertEqual(<<"shop{application=shop,env=test,node=", NodeBin/binary, "}">>,
                 maps:get(<<"name">>, Query)),
    ?assertEqual(<<"pprof">>, maps:get(<<"format">>, Query)),
    ?assertEqual(<<"19">>, maps:get(<<"sampleRate">>, Query)),
    From = binary_to_integer(maps:get(<<"from">>, Query)),
    Until = binary_to_integer(maps:get(<<"until">>, Query)),
    Now = os:system_time(second),
    ?assert(From =< Until andalso Until =< Now + 1 andalso From >= Now - 60),
    ?assertEqual(<<"Basic ", (base64:encode(<<"u:p">>))/binary>>,
                 maps:get(<<"authorization">>, Headers)),
    ?assertEqual(<<"t1">>, maps:get(<<"x-scope-orgid">>, Headers)),
    assert_pprof(Body),
    wait(fun() -> maps:get(sent, sink_info(1)) >= 1 end),
    exit(Server, kill).

%% A server that goes away: the queue stays within its bound, the loss is
%% counted, continuous_info and the samples' warnings say so; it comes
%% back: sending resumes.
http_sink_down_and_back(_Config) ->
    {Server, Port} = http_server(self(), 0, 200),
    Url = "http://127.0.0.1:" ++ integer_to_list(Port),
    start(#{period => 1000,
            sink => {http, Url, #{auth => {bearer, "tok"}, queue => 2, retries => 1,
                                  backoff => 100, timeout => 2000}}}),
    {http, _, _, _, Headers, _} = next_request(),
    ?assertEqual(<<"Bearer tok">>, maps:get(<<"authorization">>, Headers)),
    wait(fun() -> maps:get(sent, sink_info(1)) >= 1 end),
    exit(Server, kill),
    wait(fun() -> #{failing := F, lost := L, dropped := D} = sink_info(1),
                  F andalso L + D >= 3 end),
    #{queue := Q, last_error := Error} = Info = sink_info(1),
    ct:log("down: ~p", [Info]),
    ?assert(Q =< 2),
    ?assertNotEqual(none, Error),
    wait(fun() -> lists:any(fun(#{code := C}) -> C =:= continuous_sink_failing end,
                            maps:get(warnings, beamprof:snapshot())) end),
    flush_requests(),
    #{sent := Sent0} = sink_info(1),
    {Server2, Port} = http_server(self(), Port, 200),
    _ = next_request(),
    wait(fun() -> #{sent := S, failing := F} = sink_info(1), S > Sent0 andalso not F end),
    wait(fun() -> not lists:any(fun(#{code := C}) -> C =:= continuous_sink_failing end,
                                maps:get(warnings, beamprof:snapshot())) end),
    exit(Server2, kill).

flush_requests() ->
    receive {http, _, _, _, _, _} -> flush_requests()
    after 0 -> ok
    end.

%% flame_graph(Ms, Path) while continuous runs: a window on the shared
%% sampler, at its rate, and the files say so; native_start is refused.
flame_graph_shares_sampler(Config) ->
    start(#{hz => 19, period => 1000, sink => telemetry}),
    ?assertEqual({error, {already_started, continuous}}, beamprof:native_start(#{})),
    Path = filename:join(?config(priv_dir, Config), "shared.folded"),
    {ok, #{hz := 19, notes := Notes, samples := Samples}} =
        beamprof:flame_graph(2000, #{output => Path, hz => 99}),
    ?assert(Samples > 0),
    ?assert(lists:any(fun(N) -> binary:match(N, <<"shared (asked: 99 Hz)">>) =/= nomatch end,
                      Notes)),
    {ok, Folded} = file:read_file(Path),
    ?assertNotEqual(nomatch, binary:match(Folded, <<"continuous profiler's sampler">>)),
    {ok, #{shared := continuous, hz_asked := 99}} = beamprof_native:sample(500, #{hz => 99}),
    %% The continuous sampler was never stopped: still at its rate.
    ?assertMatch(#{running := true, hz := 19}, beamprof_native_nif:info()),
    ?assertMatch(#{state := running}, beamprof:continuous_info()).

%% A native_start run owns the sampler: continuous waits, then takes it.
waits_for_native_run(_Config) ->
    ok = beamprof:start(),
    {ok, _} = beamprof:native_start(#{hz => 99}),
    ok = beamprof:start_continuous(#{period => 1000, sink => telemetry}),
    ?assertMatch(#{state := waiting, reason := {already_started, native}},
                 beamprof:continuous_info()),
    {ok, _} = beamprof:native_stop(),
    wait(fun() -> maps:get(state, beamprof:continuous_info()) =:= running end),
    ?assertMatch(#{hz := 19, running := true}, beamprof_native_nif:info()),
    ?assertEqual({error, already_started},
                 beamprof:start_continuous(#{period => 1000, sink => telemetry})).

%% start/1 with the option on a running beamprof: already_started semantics
%% of every option; {Key, Value} lists; bad options raise badarg.
start_semantics(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "sem"),
    Opts = [{period, 2000}, {sink, {dir, Dir}}],
    ok = beamprof:start([{continuous, Opts}]),
    ?assertEqual(ok, beamprof:start(#{continuous => maps:from_list(Opts)})),
    ?assertMatch({error, {already_started, #{continuous := _}}},
                 beamprof:start(#{continuous => #{period => 3000, sink => telemetry}})),
    ?assertError({badarg, _}, beamprof:start(#{continuous => #{sink => nowhere}})),
    ?assertError({badarg, _}, beamprof:start_continuous(#{period => 10, sink => telemetry})),
    ?assertMatch(#{state := running, period := 2000}, beamprof:continuous_info()).

%% stop_continuous/0 releases the sampler; start_continuous/1 needs beamprof.
stop_releases_sampler(_Config) ->
    ?assertEqual({error, not_started},
                 beamprof:start_continuous(#{sink => telemetry})),
    start(#{period => 1000, sink => telemetry}),
    ?assert(beamprof_native:running()),
    ok = beamprof:stop_continuous(),
    ?assertEqual(undefined, beamprof:continuous_info()),
    ?assertNot(beamprof_native:running()),
    ?assertEqual(ok, beamprof:stop_continuous()),
    {ok, _} = beamprof:native_start(#{}),
    {ok, _} = beamprof:native_stop().

%% No native library (a peer pointed elsewhere): start_continuous answers
%% unsupported; the start option starts beamprof without it and says so.
native_absent(Config) ->
    Path = filename:join([?config(priv_dir, Config), "nowhere", "beamprof_native_nif"]),
    {ok, Peer, _} = beamprof_ct:start_peer(#{env => [{"BEAMPROF_NATIVE_NIF", Path}]}),
    R = peer:call(Peer, ?MODULE, absent_answers, [], 60000),
    ct:log("~p", [R]),
    ?assertMatch(#{explicit := {error, {unsupported, {not_built, _}}},
                   option := ok, info := #{state := unavailable},
                   warned := true}, R),
    peer:stop(Peer).

absent_answers() ->
    ok = beamprof:start(),
    Explicit = beamprof:start_continuous(#{sink => telemetry}),
    ok = beamprof:stop(),
    Option = beamprof:start(#{continuous => #{sink => telemetry}}),
    Info = beamprof:continuous_info(),
    Warned = warned(erlang:monotonic_time(millisecond) + 30000),
    #{explicit => Explicit, option => Option, info => Info, warned => Warned}.

%% Whether a sample carries continuous_unavailable within the deadline.
warned(Deadline) ->
    case lists:any(fun(#{code := C}) -> C =:= continuous_unavailable end,
                   maps:get(warnings, beamprof:snapshot())) of
        true -> true;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> false;
                false -> receive after 50 -> warned(Deadline) end
            end
    end.
