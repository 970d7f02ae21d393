-module(beamprof_config_tests).
-include_lib("eunit/include/eunit.hrl").

defaults_are_valid_test() ->
    ?assertEqual(beamprof_config:defaults(), beamprof_config:validate(#{})).

overrides_defaults_test() ->
    C = beamprof_config:validate([{interval, 250}, {memory_limit, 1 bsl 30}]),
    ?assertMatch(#{interval := 250, memory_limit := 1073741824, tick := 100}, C).

unknown_option_is_named_test() ->
    ?assertError({badarg, "Unknown option intervall" ++ _},
                 beamprof_config:validate(#{intervall => 5})).

unknown_non_atom_key_creates_no_atom_test() ->
    Before = erlang:system_info(atom_count),
    ?assertError({badarg, _}, beamprof_config:validate(#{"no_such_option_xyz" => 1})),
    ?assertEqual(Before, erlang:system_info(atom_count)).

ill_typed_options_are_named_test_() ->
    Bad = [{interval, 0}, {interval, 1.5}, {tick, 5}, {scheduler_high, 1.5},
           {scheduler_low, 0}, {memory_high, "0.9"}, {memory_limit, -1},
           {memory_limit, infinity}, {event_prefix, []}, {event_prefix, [a, "b"]},
           {vm_events, yes}, {reopen_ticks, 0}, {vm_internals, off}, {vm_internals, 0}],
    [?_assertError({badarg, "Expected option " ++ _}, beamprof_config:validate(#{K => V}))
     || {K, V} <- Bad].

message_names_the_option_test() ->
    {badarg, Msg} = try beamprof_config:validate(#{tick => 1}) catch error:E -> E end,
    ?assertNotEqual(nomatch, string:find(Msg, "tick")).

low_mark_must_be_below_high_test() ->
    ?assertError({badarg, "Expected scheduler_low to be below scheduler_high"},
                 beamprof_config:validate(#{scheduler_low => 0.9, scheduler_high => 0.8})),
    ?assertError({badarg, "Expected memory_low to be below memory_high"},
                 beamprof_config:validate(#{memory_low => 0.95})).

not_a_map_or_proplist_test() ->
    ?assertError({badarg, "Expected options to be a map" ++ _}, beamprof_config:validate(foo)),
    ?assertError({badarg, _}, beamprof_config:validate([foo])).

nif_config_test() ->
    N = beamprof_config:nif_config(beamprof_config:defaults()),
    ?assertEqual(#{tick_ms => 100, scheduler_high => 0.8, scheduler_low => 0.6,
                   memory_high => 0.9, memory_low => 0.85, reopen_ticks => 3,
                   memory_limit => 0, heartbeat_ms => 1000, test_hide_threads => false,
                   schedulers_online => erlang:system_info(schedulers_online)}, N),
    ?assertMatch(#{memory_limit := 4096},
                 beamprof_config:nif_config((beamprof_config:defaults())#{memory_limit => 4096})).

load_merges_env_and_start_options_test() ->
    ok = application:set_env(beamprof, interval, 300),
    ok = beamprof_config:set_start_options(#{tick => 50}),
    try
        ?assertMatch(#{interval := 300, tick := 50}, beamprof_config:load()),
        ok = beamprof_config:clear_start_options(),
        ?assertMatch(#{interval := 300, tick := 100}, beamprof_config:load())
    after
        application:unset_env(beamprof, interval),
        beamprof_config:clear_start_options()
    end.

%% vm_internals/0: the last start's options, else the application
%% environment, else true; a non-boolean is refused with a message.
vm_internals_test_() ->
    {setup, fun() -> application:load(beamprof) end,
     fun(_) -> application:unset_env(beamprof, vm_internals),
               beamprof_config:clear_start_options() end,
     fun() ->
             ok = beamprof_config:clear_start_options(),
             application:unset_env(beamprof, vm_internals),
             ?assert(beamprof_config:vm_internals()),
             application:set_env(beamprof, vm_internals, false),
             ?assertNot(beamprof_config:vm_internals()),
             ?assertMatch(#{vm_internals := false}, beamprof_config:load()),
             ok = beamprof_config:set_start_options(#{vm_internals => true}),
             ?assert(beamprof_config:vm_internals()),
             ok = beamprof_config:clear_start_options(),
             application:set_env(beamprof, vm_internals, "no"),
             ?assertError({badarg, "Expected option vm_internals to be a boolean" ++ _},
                          beamprof_config:vm_internals())
     end}.

%% The recorder option as a map or as {Key, Value} pairs (sys.config, an
%% Elixir keyword list); a bare path is refused with a message.
recorder_option_forms_test() ->
    ?assertEqual(ok, beamprof_recorder:check(#{file => "/tmp/r.rec"})),
    ?assertEqual(ok, beamprof_recorder:check([{file, "/tmp/r.rec"}, {size, 1048576}])),
    {error, Message} = beamprof_recorder:check("/tmp/r.rec"),
    ?assertNotEqual(nomatch, string:find(Message, "{Key, Value} list")),
    ?assertMatch({error, "Unknown recorder option colour" ++ _},
                 beamprof_recorder:check([{file, "/tmp/r.rec"}, {colour, red}])).
