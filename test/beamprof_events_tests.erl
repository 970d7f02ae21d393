-module(beamprof_events_tests).
-include_lib("eunit/include/eunit.hrl").

%% Handler and logger-handler callbacks used by the tests.
-export([send_handler/4, raise_handler/4, log/2, quiet/2]).

-define(PREFIX_KEY, {beamprof, event_prefix}).
-define(NAME, "Expected event_name to be a non-empty list of atoms, got: ").
-define(NAMES, "Expected event_names to be a non-empty list of event names, "
               "each a non-empty list of atoms, got: ").
-define(FUN_MSG, "Expected function to be a fun of arity 4, got: ").
-define(ORDER, "Arguments in the wrong order: attach(Id, EventName, Fun, Config) takes the ").

%% Fixtures

events_test_() ->
    {foreach, fun setup/0, fun cleanup/1,
     [{"dispatch matches the exact name", fun exact_name_dispatch/0},
      {"handlers run in the emitting process", fun runs_in_caller/0},
      {"ids are unique across events", fun unique_ids/0},
      {"detach and not_found", fun detach_not_found/0},
      {"attach_many", fun attach_many/0},
      {"list_handlers matches by prefix", fun list_handlers_prefix/0},
      {"an id that looks like a match pattern is safe", fun pattern_like_ids/0},
      {"validation messages name the argument", fun validation/0},
      {"a raising handler is detached and logged", fun() -> failing_handler(error) end},
      {"a throwing handler is detached and logged", fun() -> failing_handler(throw) end},
      {"an exiting handler is detached and logged", fun() -> failing_handler(exit) end},
      {"failure event has telemetry's keys", fun failure_event/0},
      {"emit uses the prefix", fun emit_prefix/0},
      {"set_prefix validates", fun set_prefix_validates/0},
      {"set_prefix writes only a changed value", fun set_prefix_no_rewrite/0}]}.

not_started_test_() ->
    {setup, fun beamprof_ct:forget_kept/0, fun(_) -> beamprof_ct:forget_kept() end,
     [{"without the handler table, handlers are kept", fun not_started/0},
      {"kept handlers are installed when the table starts", fun kept_installed/0},
      {"kept and detached: nothing installed", fun kept_detached/0}]}.

setup() ->
    beamprof_ct:forget_kept(),
    %% the failing-handler tests' error logs stay out of the test run's output (the
    %% default handler prints them: they have no domain); this module's own logger
    %% handler still receives them
    _ = logger:add_handler_filter(default, ?MODULE, {fun ?MODULE:quiet/2, []}),
    {ok, Pid} = beamprof_handlers:start_link(),
    unlink(Pid),
    _ = persistent_term:erase(?PREFIX_KEY),
    Pid.

cleanup(Pid) ->
    _ = persistent_term:erase(?PREFIX_KEY),
    _ = logger:remove_handler_filter(default, ?MODULE),
    gen_server:stop(Pid),
    beamprof_ct:forget_kept().

%% Helpers

send_handler(Event, Measurements, Metadata, {Pid, Tag}) ->
    Pid ! {Tag, self(), Event, Measurements, Metadata},
    ok.

raise_handler(_Event, _Measurements, _Metadata, error) -> error(boom);
raise_handler(_Event, _Measurements, _Metadata, throw) -> throw(boom);
raise_handler(_Event, _Measurements, _Metadata, exit) -> exit(boom).

%% logger filter: drops beamprof's handler-failure events.
quiet(#{meta := #{beamprof := handler_failed}}, _) -> stop;
quiet(LogEvent, _) -> LogEvent.

%% logger handler callback: forwards every log event to the test process.
log(LogEvent, #{config := #{pid := Pid}}) ->
    Pid ! {logged, LogEvent},
    ok.

attach_sender(Id, Event, Tag) ->
    ok = beamprof_events:attach(Id, Event, fun ?MODULE:send_handler/4, {self(), Tag}).

received(Tag) ->
    receive {Tag, _, Event, M, Md} -> {Event, M, Md} after 1000 -> timeout end.

nothing(Tag) ->
    receive {Tag, _, _, _, _} = Msg -> {unexpected, Msg} after 50 -> nothing end.

ids(Handlers) ->
    lists:sort([Id || #{id := Id} <- Handlers]).

%% Tests

exact_name_dispatch() ->
    attach_sender(h1, [p], one),
    ?assertEqual(ok, beamprof_events:execute([p, q], #{}, #{})),
    ?assertEqual(nothing, nothing(one)),
    ?assertEqual(ok, beamprof_events:execute([p], #{v => 1}, #{m => 2})),
    ?assertEqual({[p], #{v => 1}, #{m => 2}}, received(one)),
    ?assertEqual(ok, beamprof_events:execute([q], #{}, #{})),
    ?assertEqual(nothing, nothing(one)).

runs_in_caller() ->
    attach_sender(h1, [p], one),
    ok = beamprof_events:execute([p], #{}, #{}),
    Self = self(),
    ?assertMatch({one, Self, [p], _, _}, receive M -> M after 1000 -> timeout end).

unique_ids() ->
    attach_sender(h1, [a], one),
    Fun = fun ?MODULE:send_handler/4,
    ?assertEqual({error, already_exists}, beamprof_events:attach(h1, [b], Fun, x)),
    ?assertEqual({error, already_exists}, beamprof_events:attach(h1, [a], Fun, x)),
    ?assertEqual({error, already_exists}, beamprof_events:attach_many(h1, [[c]], Fun, x)),
    ?assertEqual([h1], ids(beamprof_events:list_handlers([]))).

detach_not_found() ->
    attach_sender(h1, [a], one),
    ?assertEqual(ok, beamprof_events:detach(h1)),
    ?assertEqual({error, not_found}, beamprof_events:detach(h1)),
    ?assertEqual({error, not_found}, beamprof_events:detach(never)),
    ok = beamprof_events:execute([a], #{}, #{}),
    ?assertEqual(nothing, nothing(one)),
    %% the id is free again
    attach_sender(h1, [b], one).

attach_many() ->
    Fun = fun ?MODULE:send_handler/4,
    ok = beamprof_events:attach_many(m, [[a], [b, c], [a]], Fun, {self(), many}),
    ok = beamprof_events:execute([a], #{}, #{}),
    ?assertMatch({[a], _, _}, received(many)),
    ?assertEqual(nothing, nothing(many)),          % [a] listed twice, called once
    ok = beamprof_events:execute([b, c], #{}, #{}),
    ?assertMatch({[b, c], _, _}, received(many)),
    ?assertEqual(2, length(beamprof_events:list_handlers([]))),
    ok = beamprof_events:detach(m),
    ok = beamprof_events:execute([a], #{}, #{}),
    ok = beamprof_events:execute([b, c], #{}, #{}),
    ?assertEqual(nothing, nothing(many)),
    ?assertEqual([], beamprof_events:list_handlers([])).

list_handlers_prefix() ->
    Fun = fun ?MODULE:send_handler/4,
    ok = beamprof_events:attach(h1, [a, b, c], Fun, c1),
    ok = beamprof_events:attach(h2, [a, b], Fun, c2),
    ok = beamprof_events:attach(h3, [a, x], Fun, c3),
    ok = beamprof_events:attach(h4, [z], Fun, c4),
    ?assertEqual([h1, h2, h3, h4], ids(beamprof_events:list_handlers([]))),
    ?assertEqual([h1, h2, h3], ids(beamprof_events:list_handlers([a]))),
    ?assertEqual([h1, h2], ids(beamprof_events:list_handlers([a, b]))),
    ?assertEqual([h1], ids(beamprof_events:list_handlers([a, b, c]))),
    ?assertEqual([], ids(beamprof_events:list_handlers([a, b, c, d]))),
    ?assertEqual([], ids(beamprof_events:list_handlers([b]))),
    ?assertEqual([#{id => h2, event_name => [a, b], function => Fun, config => c2}],
                 beamprof_events:list_handlers([a, b]) -- beamprof_events:list_handlers([a, b, c])).

pattern_like_ids() ->
    attach_sender('_', [a], one),
    attach_sender('$1', [a], two),
    attach_sender(h3, [a], three),
    ok = beamprof_events:detach('_'),
    ?assertEqual(['$1', h3], ids(beamprof_events:list_handlers([]))).

validation() ->
    Fun = fun ?MODULE:send_handler/4,
    ?assertError({badarg, ?NAME "[]"}, beamprof_events:attach(i, [], Fun, c)),
    ?assertError({badarg, ?NAME "[a,\"b\"]"}, beamprof_events:attach(i, [a, "b"], Fun, c)),
    ?assertError({badarg, ?NAME "a"}, beamprof_events:attach(i, a, Fun, c)),
    ?assertError({badarg, ?FUN_MSG "#Fun" ++ _},
                 beamprof_events:attach(i, [a], fun(_, _, _) -> ok end, c)),
    ?assertError({badarg, ?FUN_MSG "{m,f}"}, beamprof_events:attach(i, [a], {m, f}, c)),
    ?assertError({badarg, ?NAMES "[]"}, beamprof_events:attach_many(i, [], Fun, c)),
    ?assertError({badarg, ?NAMES "[[a],[]]"}, beamprof_events:attach_many(i, [[a], []], Fun, c)),
    ?assertError({badarg, ?NAMES "[a]"}, beamprof_events:attach_many(i, [a], Fun, c)),
    ?assertError({badarg, ?FUN_MSG "none"}, beamprof_events:attach_many(i, [[a]], none, c)),
    ?assertError({badarg, "Expected prefix to be a list of atoms, got: a"},
                 beamprof_events:list_handlers(a)),
    %% arguments in the wrong order say so
    ?assertError({badarg, ?ORDER "event name second and the fun third"},
                 beamprof_events:attach(i, Fun, [a], c)),
    ?assertError({badarg, ?ORDER "handler id first and the event name second"},
                 beamprof_events:attach([a], "my-handler", Fun, c)),
    ?assertError({badarg, "Arguments in the wrong order: attach_many(Id, EventNames, Fun, "
                          "Config) takes the event names second and the fun third"},
                 beamprof_events:attach_many(i, Fun, [[a]], c)),
    ?assertError({badarg, "Arguments in the wrong order: attach_many(Id, EventNames, Fun, "
                          "Config) takes the handler id first and the event names second"},
                 beamprof_events:attach_many([[a]], i, Fun, c)),
    %% the error carries the call's arguments
    try beamprof_events:attach(i, [], Fun, c) of
        _ -> ?assert(false)
    catch error:{badarg, _}:Stack ->
        ?assertMatch([{_, attach, [i, [], Fun, c], _} | _], Stack)
    end,
    ?assertEqual([], beamprof_events:list_handlers([])).

failing_handler(Kind) ->
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    try
        attach_sender(before, [e], before),
        ok = beamprof_events:attach(bad, [e], fun ?MODULE:raise_handler/4, Kind),
        ok = beamprof_events:attach_many(bad_too_elsewhere, [[other]],
                                         fun ?MODULE:send_handler/4, {self(), other}),
        attach_sender('after', [e], 'after'),
        ok = beamprof_events:attach_many(bad2, [[e2]], fun ?MODULE:send_handler/4, {self(), e2}),
        ?assertEqual(ok, beamprof_events:execute([e], #{n => 1}, #{})),
        ?assertMatch({[e], #{n := 1}, _}, received(before)),
        ?assertMatch({[e], #{n := 1}, _}, received('after')),
        ?assertEqual([before, 'after', bad2, bad_too_elsewhere] -- [],
                     [Id || Id <- [before, 'after', bad2, bad_too_elsewhere],
                            lists:member(Id, ids(beamprof_events:list_handlers([])))]),
        ?assertNot(lists:member(bad, ids(beamprof_events:list_handlers([])))),
        LogEvent = receive {logged, L} -> L after 1000 -> timeout end,
        ?assertMatch(#{level := error, msg := {_, _}}, LogEvent),
        #{msg := {_Format, Args}, meta := Meta} = LogEvent,
        ?assertMatch([bad, [e], Kind, boom, [_ | _]], Args),
        ?assertMatch(#{handler_id := bad, beamprof := handler_failed}, Meta),
        %% no domain: OTP's default handler would drop any but [otp] and [otp, sasl]
        ?assertNot(is_map_key(domain, Meta)),
        %% a second emit reaches the remaining handlers and logs nothing
        ok = beamprof_events:execute([e], #{n => 2}, #{}),
        ?assertMatch({[e], #{n := 2}, _}, received(before)),
        ?assertMatch({[e], #{n := 2}, _}, received('after')),
        ?assertEqual(none, receive {logged, _} = X -> X after 50 -> none end)
    after
        ok = logger:remove_handler(?MODULE)
    end.

failure_event() ->
    ok = beamprof_events:attach(bad, [e], fun ?MODULE:raise_handler/4, error),
    attach_sender(watch, [telemetry, handler, failure], failure),
    ok = beamprof_events:execute([e], #{}, #{}),
    {Event, M, Md} = received(failure),
    ?assertEqual([telemetry, handler, failure], Event),
    ?assertEqual([monotonic_time, system_time], lists:sort(maps:keys(M))),
    ?assert(is_integer(maps:get(monotonic_time, M))),
    ?assert(is_integer(maps:get(system_time, M))),
    ?assertEqual([event_name, handler_config, handler_id, kind, reason, stacktrace],
                 lists:sort(maps:keys(Md))),
    ?assertMatch(#{event_name := [e], handler_id := bad, handler_config := error,
                   kind := error, reason := boom, stacktrace := [_ | _]}, Md),
    %% a failing failure-handler is detached too, and nothing loops
    ok = beamprof_events:attach(bad_watch, [telemetry, handler, failure],
                                fun ?MODULE:raise_handler/4, throw),
    ok = beamprof_events:attach(bad3, [e3], fun ?MODULE:raise_handler/4, exit),
    ?assertEqual(ok, beamprof_events:execute([e3], #{}, #{})),
    ?assertEqual([watch], ids(beamprof_events:list_handlers([]))).

emit_prefix() ->
    ?assertEqual([beamprof], beamprof_events:prefix()),
    attach_sender(h1, [beamprof, profile, stop], one),
    attach_sender(h2, [myapp, prof, profile, stop], two),
    ok = beamprof_events:emit([profile, stop], #{duration => 5}, #{}),
    ?assertEqual({[beamprof, profile, stop], #{duration => 5}, #{}}, received(one)),
    ok = beamprof_events:set_prefix([myapp, prof]),
    ?assertEqual([myapp, prof], beamprof_events:prefix()),
    ok = beamprof_events:emit([profile, stop], #{duration => 6}, #{}),
    ?assertEqual({[myapp, prof, profile, stop], #{duration => 6}, #{}}, received(two)),
    ?assertEqual(nothing, nothing(one)).

set_prefix_validates() ->
    Msg = "Expected event_prefix to be a non-empty list of atoms",
    ?assertError({badarg, Msg}, beamprof_events:set_prefix([])),
    ?assertError({badarg, Msg}, beamprof_events:set_prefix(beamprof)),
    ?assertError({badarg, Msg}, beamprof_events:set_prefix([a, <<"b">>])),
    ?assertEqual([beamprof], beamprof_events:prefix()).

%% persistent_term:put/2 is a BIF: call tracing (of another process: a process does not
%% see its own call trace here) records every call to it. The count of stored terms is
%% checked as well: putting the default would add a key.
set_prefix_no_rewrite() ->
    #{count := Count0} = persistent_term:info(),
    ?assertEqual([], traced_puts(fun() -> ok = beamprof_events:set_prefix([beamprof]) end)),
    ?assertMatch(#{count := Count0}, persistent_term:info()),
    Puts = traced_puts(fun() ->
                               ok = beamprof_events:set_prefix([x, y]),
                               ok = beamprof_events:set_prefix([x, y]),
                               ok = beamprof_events:set_prefix([x, y]),
                               ok = beamprof_events:set_prefix([z]),
                               ok = beamprof_events:set_prefix([z])
                       end),
    ?assertEqual([[x, y], [z]], Puts),
    ?assertEqual([z], beamprof_events:prefix()).

traced_puts(Fun) ->
    MFA = {persistent_term, put, 2},
    Self = self(),
    {Pid, Ref} = spawn_monitor(fun() -> receive go -> Fun() end end),
    1 = erlang:trace_pattern(MFA, true, [global]),
    1 = erlang:trace(Pid, true, [call, {tracer, Self}]),
    Pid ! go,
    receive {'DOWN', Ref, process, Pid, Why} -> normal = Why end,
    erlang:trace_pattern(MFA, false, [global]),
    collect_puts(Pid, []).

collect_puts(Pid, Acc) ->
    receive
        {trace, Pid, call, {persistent_term, put, [{beamprof, event_prefix}, Value]}} ->
            collect_puts(Pid, [Value | Acc])
    after 100 ->
        lists:reverse(Acc)
    end.

not_started() ->
    ?assertEqual(undefined, whereis(beamprof_handlers)),
    ?assertEqual(undefined, ets:whereis(beamprof_handlers)),
    ?assertEqual(ok, beamprof_events:execute([a], #{}, #{})),
    ?assertEqual(ok, beamprof_events:emit([a], #{}, #{})),
    Fun = fun ?MODULE:send_handler/4,
    ?assertEqual([], beamprof_events:list_handlers([])),
    ?assertEqual(ok, beamprof_events:attach(i, [a], Fun, {self(), i})),
    ?assertEqual({error, already_exists}, beamprof_events:attach(i, [b], Fun, c)),
    ?assertEqual({error, already_exists}, beamprof_events:attach_many(i, [[b]], Fun, c)),
    ?assertEqual(ok, beamprof_events:attach_many(m, [[b], [a, c]], Fun, {self(), m})),
    ?assertEqual([i, m, m], ids(beamprof_events:list_handlers([]))),
    ?assertEqual([m], ids(beamprof_events:list_handlers([a, c]))),
    %% nothing is called before the table runs
    ?assertEqual(ok, beamprof_events:execute([a], #{}, #{})),
    ?assertEqual(nothing, nothing(i)),
    ?assertEqual(ok, beamprof_events:detach(i)),
    ?assertEqual({error, not_found}, beamprof_events:detach(i)),
    ?assertEqual(ok, beamprof_events:detach(m)),
    ?assertEqual([], beamprof_events:list_handlers([])),
    ?assertEqual(undefined, application:get_env(beamprof, '$handlers')),
    ?assertEqual(false, beamprof_events:ensure_telemetry()).

kept_installed() ->
    ok = beamprof_events:attach(early, [a], fun ?MODULE:send_handler/4, {self(), early}),
    Pid = beamprof_ct:start_table(),
    try
        ok = beamprof_events:execute([a], #{n => 1}, #{}),
        ?assertEqual({[a], #{n => 1}, #{}}, received(early)),
        ?assertEqual([early], ids(beamprof_events:list_handlers([]))),
        ?assertEqual({error, already_exists},
                     beamprof_events:attach(early, [b], fun ?MODULE:send_handler/4, x))
    after
        gen_server:stop(Pid)
    end,
    %% kept across the table's stop and start, until detached
    ?assertEqual([early], ids(beamprof_events:list_handlers([]))),
    Pid2 = beamprof_ct:start_table(),
    try
        ok = beamprof_events:execute([a], #{n => 2}, #{}),
        ?assertEqual({[a], #{n => 2}, #{}}, received(early)),
        ok = beamprof_events:detach(early)
    after
        gen_server:stop(Pid2)
    end,
    ?assertEqual([], beamprof_events:list_handlers([])).

kept_detached() ->
    ok = beamprof_events:attach(gone, [a], fun ?MODULE:send_handler/4, {self(), gone}),
    ok = beamprof_events:detach(gone),
    Pid = beamprof_ct:start_table(),
    try
        ok = beamprof_events:execute([a], #{}, #{}),
        ?assertEqual(nothing, nothing(gone)),
        ?assertEqual([], beamprof_events:list_handlers([]))
    after
        gen_server:stop(Pid)
    end.
