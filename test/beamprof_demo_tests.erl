%% `make demo' prints no `=INFO REPORT' noise. OTP's application controller reports an
%% application's stop at notice level (OTP 29 prints it as `=INFO REPORT' by default);
%% the demo's node logs warnings and up (the `%%!' line of scripts/demo.escript), and
%% beamprof itself never filters a node's logger. An escript run with the demo's node
%% flags stops an application and logs a notice and a warning: only the warning shows.
-module(beamprof_demo_tests).

-include_lib("eunit/include/eunit.hrl").

root() ->
    Src = proplists:get_value(source, beamprof:module_info(compile)),
    filename:dirname(filename:dirname(Src)).

%% The emulator flags of the demo's escript (its second line), without `+JPperf map'
%% (which would leave a /tmp/perf-PID.map file behind).
demo_flags() ->
    {ok, Text} = file:read_file(filename:join(root(), "scripts/demo.escript")),
    [_Shebang, <<"%%! ", Flags/binary>> | _] = binary:split(Text, <<"\n">>, [global]),
    drop_perf(string:lexemes(binary_to_list(Flags), " ")).

drop_perf(["+JPperf", _ | Rest]) -> drop_perf(Rest);
drop_perf([Flag | Rest]) -> [Flag | drop_perf(Rest)];
drop_perf([]) -> [].

demo_node_logs_no_info_report_test_() ->
    {timeout, 120, fun demo_node_logs_no_info_report/0}.

demo_node_logs_no_info_report() ->
    Dir = filename:join(root(), "_build/test/demo_tests"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Script = filename:join(Dir, "quiet.escript"),
    ok = file:write_file(Script, ["#!/usr/bin/env escript\n%%! ", lists:join(" ", demo_flags()),
                                  "\n", body()]),
    Escript = filename:join([code:root_dir(), "bin", "escript"]),
    Port = open_port({spawn_executable, Escript},
                     [{args, [Script]}, exit_status, stderr_to_stdout, binary]),
    {Status, Out} = output(Port, erlang:monotonic_time(millisecond) + 60000, []),
    ?assertEqual(0, Status),
    ?assertNotEqual(nomatch, string:find(Out, "demo warning shows")),
    [?assertEqual({nomatch, Noise}, {string:find(Out, Noise), Noise})
     || Noise <- ["=INFO REPORT", "=NOTICE REPORT", "exited: stopped", "demo notice"]],
    ?assertNotEqual(nomatch, string:find(Out, "=WARNING REPORT")).

body() ->
    "main(_) ->\n"
    "    {ok, _} = application:ensure_all_started(runtime_tools),\n"
    "    ok = application:stop(runtime_tools),\n"
    "    logger:notice(\"demo notice\"),\n"
    "    logger:warning(\"demo warning shows\"),\n"
    "    ok = logger_std_h:filesync(default).\n".

output(Port, Deadline, Acc) ->
    receive
        {Port, {data, Data}} -> output(Port, Deadline, [Acc, Data]);
        {Port, {exit_status, Status}} -> {Status, unicode:characters_to_list(Acc)}
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        port_close(Port),
        error({timeout, unicode:characters_to_list(Acc)})
    end.
