%% EUnit tests of the continuous profiler's options (beamprof_continuous:check/1,
%% beamprof_continuous_opts), the `continuous' start option's validation, the
%% HTTP sink's URL and query, and the sink queue's bound.
-module(beamprof_continuous_tests).

-include_lib("eunit/include/eunit.hrl").

%% The test sink of queue_bound_test/0.
-export([name/1, encode/3, deliver/2, retryable/1, deadline/1]).

parse(Opts) ->
    beamprof_continuous_opts:parse(Opts).

message(Opts) ->
    {error, Message} = beamprof_continuous:check(Opts),
    Message.

defaults_test() ->
    ?assertMatch(#{hz := 19, period := 60000,
                   sinks := [{beamprof_continuous_telemetry, #{queue := 4, retries := 3,
                                                               backoff := 1000}}]},
                 parse(#{sink => telemetry})).

pairs_and_lists_test() ->
    #{hz := 99, period := 1000, sinks := [{beamprof_continuous_dir, #{keep := 5}},
                                          {beamprof_continuous_telemetry, _}]} =
        parse([{hz, 99}, {period, 1000}, {sink, [{dir, "/tmp/x", [{keep, 5}]}, telemetry]}]).

bad_options_test_() ->
    [?_assertMatch("Expected continuous options to name a sink" ++ _, message(#{})),
     ?_assertMatch("Unknown continuous option bogus" ++ _, message(#{bogus => 1, sink => telemetry})),
     ?_assertMatch("Expected continuous hz" ++ _, message(#{hz => 0, sink => telemetry})),
     ?_assertMatch("Expected continuous hz" ++ _, message(#{hz => 10001, sink => telemetry})),
     ?_assertMatch("Expected continuous period" ++ _, message(#{period => 999, sink => telemetry})),
     ?_assertMatch("Expected a continuous sink" ++ _, message(#{sink => nowhere})),
     ?_assertMatch("Expected continuous sink to be a sink or a non-empty list" ++ _,
                   message(#{sink => []})),
     ?_assertMatch("Expected dir sink keep" ++ _, message(#{sink => {dir, "/tmp", #{keep => 0}}})),
     ?_assertMatch("Unknown dir sink option" ++ _, message(#{sink => {dir, "/tmp", #{x => 1}}})),
     ?_assertMatch("Expected the dir sink's directory" ++ _, message(#{sink => {dir, 42}})),
     ?_assertMatch("Expected sink queue" ++ _, message(#{sink => {telemetry, #{queue => 0}}})),
     ?_assertMatch("Expected sink retries" ++ _,
                   message(#{sink => {telemetry, #{retries => -1}}})),
     ?_assertMatch("Expected the http sink's URL" ++ _,
                   message(#{sink => {http, "ftp://x", #{}}})),
     ?_assertMatch("Expected the http sink's URL" ++ _, message(#{sink => {http, 42, #{}}})),
     ?_assertMatch("Expected http sink auth" ++ _,
                   message(#{sink => {http, "http://x", #{auth => {digest, a}}}})),
     ?_assertMatch("Expected http sink timeout" ++ _,
                   message(#{sink => {http, "http://x", #{timeout => 1}}})),
     ?_assertMatch("Expected http sink labels" ++ _,
                   message(#{sink => {http, "http://x", #{labels => #{a => 1}}}})),
     ?_assertMatch("Unknown http sink option" ++ _,
                   message(#{sink => {http, "http://x", #{nope => 1}}})),
     ?_assertMatch("Expected continuous options to be a map" ++ _, message(42))].

%% The application option: checked by beamprof_config like every other.
config_option_test_() ->
    [?_assertMatch(#{continuous := off}, beamprof_config:defaults()),
     ?_assertMatch(#{continuous := #{sink := telemetry}},
                   beamprof_config:validate(#{continuous => #{sink => telemetry}})),
     ?_assertError({badarg, "Expected continuous hz" ++ _},
                   beamprof_config:validate(#{continuous => #{hz => 0, sink => telemetry}}))].

http_url_test_() ->
    Url = fun(U) -> maps:get(url, beamprof_continuous_http:check(U, #{})) end,
    [?_assertEqual(<<"http://p:4040">>, Url("http://p:4040")),
     ?_assertEqual(<<"http://p:4040">>, Url("http://p:4040/")),
     ?_assertEqual(<<"http://p:4040">>, Url(<<"http://p:4040/ingest">>)),
     ?_assertEqual(<<"https://p/base">>, Url("https://p/base/ingest?x=1"))].

http_query_test() ->
    Q = beamprof_continuous_http:query(<<"app">>, #{<<"node">> => <<"a@b">>,
                                                    <<"application">> => <<"app">>},
                                       #{from_ms => 1700000000500, until_ms => 1700000060400,
                                         hz => 19}),
    Parsed = maps:from_list(uri_string:dissect_query(Q)),
    ?assertEqual(#{<<"name">> => <<"app{application=app,node=a@b}">>,
                   <<"from">> => <<"1700000000">>, <<"until">> => <<"1700000060">>,
                   <<"format">> => <<"pprof">>, <<"sampleRate">> => <<"19">>,
                   <<"spyName">> => <<"beamprof">>}, Parsed).

%% A sink whose deliveries never finish keeps at most `queue' profiles
%% waiting and counts the rest as dropped.
queue_bound_test() ->
    Tab = ets:new(t, [public]),
    Opts = (beamprof_continuous_opts:sink_common(#{queue => 2}))#{hold => self()},
    {ok, Pid} = beamprof_continuous_sink:start_link(1, {?MODULE, Opts}, Tab),
    [beamprof_continuous_sink:deliver(Pid, #{n => N}, #{}) || N <- lists:seq(1, 10)],
    _ = sys:get_state(Pid),
    [{_, Info}] = ets:lookup(Tab, {sink, 1}),
    %% One in flight, two waiting, seven dropped.
    ?assertMatch(#{queue := 2, dropped := 7, sent := 0}, Info),
    unlink(Pid),
    exit(Pid, kill).

%% The test's own sink: deliveries block.
name(_) -> <<"test">>.
encode(Profile, _Meta, _Opts) -> Profile.
deliver(_Item, _Opts) -> receive never -> ok end.
retryable(_) -> true.
deadline(_) -> 60000.
