%% The first hour: a bad argument to beamprof's public functions raises badarg with a
%% message naming the option or argument at fault, and a call with its arguments in the
%% wrong order says so, instead of function_clause. None of these needs the application.
-module(beamprof_errors_tests).

-include_lib("eunit/include/eunit.hrl").

%% The {badarg, Message} a call raises (any other exception fails the test).
message(Fun) ->
    try Fun() of
        Result -> error({no_exception, Result})
    catch
        error:{badarg, Message} when is_list(Message) -> Message
    end.

says(Fun, Parts) ->
    Message = message(Fun),
    [?assertNotEqual({nomatch, Part, Message}, {string:find(Message, Part), Part, Message})
     || Part <- Parts],
    ok.

says_nomatch_test() ->
    %% The helper itself: a message without the part fails.
    ?assertError(_, says(fun() -> beamprof:top(memory) end, ["no such text"])).

native_unknown_option_names_it_test() ->
    says(fun() -> beamprof:native_start(#{bogus => 1}) end,
         ["Unknown option bogus", "hz", "threads"]).

native_top_bad_n_test() ->
    says(fun() -> beamprof:native_top(many) end, ["N", "positive integer"]).

top_one_argument_test() ->
    says(fun() -> beamprof:top(memory) end, ["Expected live", "got: memory", "top(Key, N)"]).

top_swapped_test() ->
    says(fun() -> beamprof:top(10, memory) end,
         ["wrong order", "top(Key, N)", "top(memory, 10)"]),
    says(fun() -> beamprof:top_ports(3, queue_size) end,
         ["wrong order", "top_ports(queue_size, 3)"]).

top_bad_key_names_it_test() ->
    says(fun() -> beamprof:top(heap, 5) end, ["Expected key", "got: heap"]),
    says(fun() -> beamprof:top_ports(sockets, 5) end, ["Expected key", "got: sockets"]).

profile_swapped_test() ->
    Work = fun() -> ok end,
    says(fun() -> beamprof:profile(#{strategy => sample}, Work) end,
         ["wrong order", "profile(Fun, Options)"]),
    says(fun() -> beamprof:profile_if_slow([{threshold, 10}], Work) end,
         ["wrong order", "profile_if_slow(Fun, Options)"]).

profile_not_a_fun_test() ->
    says(fun() -> beamprof:profile_memory(42, #{}) end,
         ["Fun", "profile_memory/2", "arity 0", "got: 42"]).

flame_graph_swapped_test() ->
    says(fun() -> beamprof:flame_graph(#{output => "x.svg"}, fun() -> ok end) end,
         ["wrong order", "flame_graph(Fun, Options)"]),
    says(fun() -> beamprof:flame_graph("cpu.svg", 3000) end,
         ["wrong order", "flame_graph(Ms, Output)"]).

%% An output whose extension names no format is refused before anything runs,
%% by both entry points (one mapping: beamprof_flame:format_of/1).
output_unknown_extension_test() ->
    Says = ["cpu.png", ".svg", ".html", ".htm", ".json", ".folded", ".txt", ".pb.gz",
            "format option"],
    says(fun() -> beamprof:flame_graph(100, "cpu.png") end, Says),
    says(fun() -> beamprof:flame_graph(fun() -> ok end, #{output => "cpu.png"}) end, Says),
    says(fun() -> beamprof:profile(fun() -> ok end, #{output => <<"cpu.png">>}) end, Says),
    ?assertNot(filelib:is_file("cpu.png")).

write_profile_swapped_test() ->
    ?assertMatch({error, {badarg, "Arguments in the wrong order: write_profile(Profile, Path, "
                                  "Format)" ++ _}},
                 beamprof:write_profile("x.svg", #{stacks => [{[<<"m:f/0">>], 1}]}, svg)),
    ?assertNot(filelib:is_file("x.svg")).

flame_graph_neither_test() ->
    says(fun() -> beamprof:flame_graph(cpu, "cpu.svg") end,
         ["fun of arity 0", "duration", "got: cpu"]).

unknown_profile_option_names_it_test() ->
    says(fun() -> beamprof:profile(fun() -> ok end, #{bogus => 1}) end,
         ["Unknown option bogus"]).

start_unknown_option_names_it_test() ->
    says(fun() -> beamprof:start(#{bogus => 1}) end, ["Unknown option bogus", "interval"]),
    says(fun() -> beamprof:start(interval) end, ["Expected options", "got: interval"]).

attach_swapped_test() ->
    Fun = fun(_, _, _, _) -> ok end,
    says(fun() -> beamprof:attach(h, Fun, [beamprof, gate, closed], nil) end,
         ["wrong order", "attach(Id, EventName, Fun, Config)", "event name second"]),
    says(fun() -> beamprof:attach([beamprof, gate, closed], "h", Fun, nil) end,
         ["wrong order", "handler id first"]),
    says(fun() -> beamprof:attach_many(h, Fun, [[beamprof, gate, closed]], nil) end,
         ["wrong order", "attach_many(Id, EventNames, Fun, Config)"]),
    says(fun() -> beamprof:attach(h, [beamprof, gate, closed], fun() -> ok end, nil) end,
         ["function", "arity 4", "got: #Fun"]).

native_flame_graph_names_the_bad_argument_test() ->
    says(fun() -> beamprof:flame_graph(0, "cpu.svg") end, ["Expected Ms", "got: 0"]),
    says(fun() -> beamprof:flame_graph(3000, cpu) end, ["Expected Opts", "got: cpu"]),
    says(fun() -> beamprof:native_start([{hz, 99}]) end, ["options", "map", "got: [{hz,99}]"]).

%% flame_graph(Fun, Path) takes the path as the output, as flame_graph(Ms, Path) does: an
%% unwritable one is refused before the fun runs.
flame_graph_fun_and_path_test() ->
    Path = "/nonexistent-beamprof-dir/work.svg",
    Never = fun() -> error(must_not_run) end,
    ?assertMatch({error, {unwritable, Path, _}}, beamprof:flame_graph(Never, Path)),
    Bin = list_to_binary(Path),
    ?assertMatch({error, {unwritable, Bin, _}}, beamprof:flame_graph(Never, Bin)),
    says(fun() -> beamprof:flame_graph(fun() -> ok end, [{output, "x.svg"}, bogus]) end,
         ["Expected options", "got: "]).

list_handlers_bad_prefix_test() ->
    says(fun() -> beamprof:list_handlers(beamprof) end, ["prefix", "got: beamprof"]).
