-module(beamprof_events_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([forwards_exact_arguments/1, attach_goes_to_telemetry/1,
         builtin_handlers_survive_loading/1, builtin_only_after_unload/1,
         concurrent_emit_attach_detach/1, kept_installed_in_telemetry/1,
         kept_when_telemetry_not_started/1]).
-export([send_handler/4, count_handler/4, raise_handler/4]).

-define(TABLE, telemetry_standin_handlers).
-define(SINK, telemetry_standin_sink).
-define(EMITTERS, 8).
-define(EVENTS_EACH, 10000).

all() ->
    [forwards_exact_arguments, attach_goes_to_telemetry, builtin_handlers_survive_loading,
     builtin_only_after_unload, concurrent_emit_attach_detach, kept_installed_in_telemetry,
     kept_when_telemetry_not_started].

%% The stand-in telemetry is compiled here, from the data directory, and loaded only by
%% this suite; its handler table belongs to a holder process that outlives the
%% init_per_suite process.
init_per_suite(Config) ->
    Source = filename:join(?config(data_dir, Config), "telemetry.erl"),
    {ok, telemetry, Binary} = compile:file(Source, [binary, return_errors]),
    Holder = spawn(fun() ->
                           _ = ets:new(?TABLE, [set, named_table, public]),
                           receive stop -> ok end
                   end),
    wait_for_table(),
    [{telemetry_binary, {Source, Binary}}, {holder, Holder} | Config].

end_per_suite(Config) ->
    unload_telemetry(),
    ?config(holder, Config) ! stop,
    ok.

init_per_testcase(_Case, Config) ->
    beamprof_ct:forget_kept(),
    {ok, Pid} = beamprof_handlers:start_link(),
    unlink(Pid),
    true = ets:delete_all_objects(?TABLE),
    load_telemetry(Config),
    true = register(?SINK, self()),
    [{handlers, Pid} | Config].

end_per_testcase(_Case, _Config) ->
    _ = [unregister(?SINK) || whereis(?SINK) =/= undefined],
    _ = [gen_server:stop(Pid) || Pid <- [whereis(beamprof_handlers)], Pid =/= undefined],
    application:unset_env(telemetry_standin, stopped),
    beamprof_ct:forget_kept(),
    ok.

%% Helpers

wait_for_table() ->
    case ets:whereis(?TABLE) of
        undefined -> timer:sleep(1), wait_for_table();
        _ -> ok
    end.

load_telemetry(Config) ->
    {Source, Binary} = ?config(telemetry_binary, Config),
    {module, telemetry} = code:load_binary(telemetry, Source, Binary),
    true = beamprof_events:ensure_telemetry().

unload_telemetry() ->
    _ = code:purge(telemetry),
    _ = code:delete(telemetry),
    _ = code:purge(telemetry),
    false = erlang:function_exported(telemetry, execute, 3),
    ok.

send_handler(Event, Measurements, Metadata, {Pid, Tag}) ->
    Pid ! {Tag, Event, Measurements, Metadata}.

count_handler(_Event, _Measurements, _Metadata, {Counters, Index}) ->
    counters:add(Counters, Index, 1).

raise_handler(_Event, _Measurements, _Metadata, Reason) ->
    error(Reason).

received(Tag) ->
    receive {Tag, Event, M, Md} -> {Event, M, Md} after 1000 -> timeout end.

nothing(Tag) ->
    receive {Tag, _, _, _} = Msg -> {unexpected, Msg} after 50 -> nothing end.

ids(Handlers) ->
    lists:sort([Id || #{id := Id} <- Handlers]).

%% Cases

forwards_exact_arguments(_Config) ->
    Measurements = #{duration => 42, count => 1},
    Metadata = #{pid => self(), ref => make_ref(), nested => #{a => [1, 2]}},
    ok = beamprof_events:execute([beamprof, profile, stop], Measurements, Metadata),
    ?assertEqual({[beamprof, profile, stop], Measurements, Metadata},
                 received(telemetry_execute)),
    ok = beamprof_events:emit([sample], #{n => 1}, #{}),
    ?assertEqual({[beamprof, sample], #{n => 1}, #{}}, received(telemetry_execute)),
    ?assertEqual(nothing, nothing(telemetry_execute)).

attach_goes_to_telemetry(_Config) ->
    Fun = fun ?MODULE:send_handler/4,
    ok = beamprof_events:attach(t1, [a], Fun, {self(), t1}),
    ok = beamprof_events:attach_many(t2, [[a], [b]], Fun, {self(), t2}),
    ?assertEqual([t1, t2, t2], ids(telemetry:list_handlers([]))),
    ?assertEqual([], beamprof_handlers:list_handlers([])),
    ?assertEqual({error, already_exists}, beamprof_events:attach(t1, [c], Fun, x)),
    ok = beamprof_events:execute([a], #{v => 1}, #{}),
    ?assertEqual({[a], #{v => 1}, #{}}, received(t1)),
    ?assertEqual({[a], #{v => 1}, #{}}, received(t2)),
    ?assertEqual(nothing, nothing(t1)),                % called once, by telemetry
    %% an id held by the built-in table is not reused in telemetry
    ok = beamprof_handlers:attach(builtin, [z], Fun, {self(), builtin}),
    ?assertEqual({error, already_exists}, beamprof_events:attach(builtin, [a], Fun, x)),
    ?assertEqual([builtin, t1, t2, t2], ids(beamprof_events:list_handlers([]))),
    ?assertEqual([t2], ids(beamprof_events:list_handlers([b]))),
    %% detach: built-in first, then telemetry
    ok = beamprof_events:detach(builtin),
    ok = beamprof_events:detach(t1),
    ?assertEqual({error, not_found}, beamprof_events:detach(t1)),
    ?assertEqual([t2, t2], ids(beamprof_events:list_handlers([]))).

builtin_handlers_survive_loading(Config) ->
    unload_telemetry(),
    ok = beamprof_events:attach(early, [a], fun ?MODULE:send_handler/4, {self(), early}),
    ?assertEqual([early], ids(beamprof_handlers:list_handlers([]))),
    load_telemetry(Config),
    ok = beamprof_events:execute([a], #{n => 1}, #{}),
    ?assertEqual({[a], #{n => 1}, #{}}, received(early)),
    ?assertEqual({[a], #{n => 1}, #{}}, received(telemetry_execute)),
    ?assertEqual(nothing, nothing(early)),
    ?assertEqual([early], ids(beamprof_events:list_handlers([]))),
    ok = beamprof_events:detach(early),
    ?assertEqual([], beamprof_events:list_handlers([])).

builtin_only_after_unload(Config) ->
    ok = beamprof_events:attach(in_telemetry, [a], fun ?MODULE:send_handler/4,
                                {self(), in_telemetry}),
    unload_telemetry(),
    ?assertEqual(false, beamprof_events:ensure_telemetry()),
    ok = beamprof_events:execute([a], #{}, #{}),
    ?assertEqual(nothing, nothing(telemetry_execute)),
    ?assertEqual(nothing, nothing(in_telemetry)),
    ok = beamprof_events:attach(later, [a], fun ?MODULE:send_handler/4, {self(), later}),
    ?assertEqual([later], ids(beamprof_handlers:list_handlers([]))),
    ?assertEqual([later], ids(beamprof_events:list_handlers([]))),
    ok = beamprof_events:execute([a], #{}, #{}),
    ?assertMatch({[a], _, _}, received(later)),
    ?assertEqual(nothing, nothing(telemetry_execute)),
    ?assertEqual({error, not_found}, beamprof_events:detach(in_telemetry)),
    load_telemetry(Config).

%% 8 processes emit 10k events each on the built-in path while another process attaches
%% and detaches handlers on the same event (some of which raise, so emitters detach them
%% concurrently). The handler that stays attached must count every event.
concurrent_emit_attach_detach(_Config) ->
    unload_telemetry(),
    Event = [beamprof, load, sample],
    Counters = counters:new(2, [write_concurrency]),
    ok = beamprof_events:attach(stable, Event, fun ?MODULE:count_handler/4, {Counters, 1}),
    Churner = spawn_monitor(fun() -> churn(Event, Counters, 0) end),
    Parent = self(),
    Emitters = [spawn_monitor(fun() -> emit_many(Parent, Event, ?EVENTS_EACH) end)
                || _ <- lists:seq(1, ?EMITTERS)],
    [receive {'DOWN', Ref, process, Pid, Why} -> ?assertEqual(normal, Why) end
     || {Pid, Ref} <- Emitters],
    {ChurnPid, ChurnRef} = Churner,
    ChurnPid ! stop,
    Rounds = receive {'DOWN', ChurnRef, process, ChurnPid, {done, N}} -> N end,
    ct:log("churner rounds: ~p, churned handler calls: ~p",
           [Rounds, counters:get(Counters, 2)]),
    ?assert(Rounds > 0),
    ?assertEqual(?EMITTERS * ?EVENTS_EACH, counters:get(Counters, 1)),
    ?assertEqual([stable], ids(beamprof_events:list_handlers([]))),
    ?assert(is_process_alive(whereis(beamprof_handlers))).

emit_many(_Parent, _Event, 0) ->
    ok;
emit_many(Parent, Event, N) ->
    ok = beamprof_events:execute(Event, #{n => N}, #{pid => self()}),
    emit_many(Parent, Event, N - 1).

churn(Event, Counters, Round) ->
    receive
        stop -> exit({done, Round})
    after 0 ->
        Id = {churn, Round},
        ok = beamprof_events:attach_many(Id, [Event, [other | Event]],
                                         fun ?MODULE:count_handler/4, {Counters, 2}),
        Raising = {raising, Round},
        _ = Round rem 200 =:= 0 andalso
            ok =:= beamprof_events:attach(Raising, Event, fun ?MODULE:raise_handler/4,
                                          churned),
        erlang:yield(),
        ok = beamprof_events:detach(Id),
        _ = beamprof_events:detach(Raising),
        churn(Event, Counters, Round + 1)
    end.

%% A handler attached while neither beamprof nor telemetry runs is kept; when the table
%% starts with telemetry loaded, the handler goes to telemetry (where attach/4 would put
%% it now), leaves the record, and is called once per event.
kept_installed_in_telemetry(Config) ->
    gen_server:stop(whereis(beamprof_handlers)),
    unload_telemetry(),
    ok = beamprof_events:attach(early, [a], fun ?MODULE:send_handler/4, {self(), early}),
    ?assertEqual([early], ids(beamprof_events:list_handlers([]))),
    load_telemetry(Config),
    beamprof_ct:start_table(),
    ?assertEqual([early], ids(telemetry:list_handlers([]))),
    ?assertEqual([], beamprof_handlers:list_handlers([])),
    ?assertEqual(undefined, application:get_env(beamprof, '$handlers')),
    ok = beamprof_events:execute([a], #{n => 1}, #{}),
    ?assertEqual({[a], #{n => 1}, #{}}, received(early)),
    ?assertEqual(nothing, nothing(early)),
    ok = beamprof_events:detach(early),
    ?assertEqual([], beamprof_events:list_handlers([])).

%% telemetry loaded but not started (its attach exits): attach/4 and the table's start
%% keep the handler in the built-in table instead.
kept_when_telemetry_not_started(_Config) ->
    ok = application:set_env(telemetry_standin, stopped, true),
    Fun = fun ?MODULE:send_handler/4,
    ok = beamprof_events:attach(running, [a], Fun, {self(), running}),
    gen_server:stop(whereis(beamprof_handlers)),
    ok = beamprof_events:attach(before, [a], Fun, {self(), before}),
    beamprof_ct:start_table(),
    ?assertEqual([before, running], ids(beamprof_handlers:list_handlers([]))),
    ?assertEqual([], telemetry:list_handlers([])),
    ok = beamprof_events:execute([a], #{}, #{}),
    ?assertMatch({[a], _, _}, received(running)),
    ?assertMatch({[a], _, _}, received(before)).
