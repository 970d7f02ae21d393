%% include/beamprof_events.hrl against beamprof_events:names/0 and the code that emits:
%% a new event without a macro (or a macro for an event nobody emits) fails here.
-module(beamprof_event_names_tests).

-include_lib("eunit/include/eunit.hrl").
-include("beamprof_events.hrl").

%% Every ?BEAMPROF_EVENT_... macro of the header, by name (macro_names_test checks this
%% list against the header's text).
macros() ->
    [{'BEAMPROF_EVENT_VM_SAMPLE', ?BEAMPROF_EVENT_VM_SAMPLE},
     {'BEAMPROF_EVENT_SCHEDULER_UTILIZATION', ?BEAMPROF_EVENT_SCHEDULER_UTILIZATION},
     {'BEAMPROF_EVENT_GATE_CLOSED', ?BEAMPROF_EVENT_GATE_CLOSED},
     {'BEAMPROF_EVENT_GATE_OPEN', ?BEAMPROF_EVENT_GATE_OPEN},
     {'BEAMPROF_EVENT_PROCESS_SCAN', ?BEAMPROF_EVENT_PROCESS_SCAN},
     {'BEAMPROF_EVENT_PROCESS_LONG_MESSAGE_QUEUE', ?BEAMPROF_EVENT_PROCESS_LONG_MESSAGE_QUEUE},
     {'BEAMPROF_EVENT_PROCESS_LARGE_MEMORY', ?BEAMPROF_EVENT_PROCESS_LARGE_MEMORY},
     {'BEAMPROF_EVENT_PORT_BUSY', ?BEAMPROF_EVENT_PORT_BUSY},
     {'BEAMPROF_EVENT_MONITOR_LONG_GC', ?BEAMPROF_EVENT_MONITOR_LONG_GC},
     {'BEAMPROF_EVENT_MONITOR_LONG_SCHEDULE', ?BEAMPROF_EVENT_MONITOR_LONG_SCHEDULE},
     {'BEAMPROF_EVENT_MONITOR_LARGE_HEAP', ?BEAMPROF_EVENT_MONITOR_LARGE_HEAP},
     {'BEAMPROF_EVENT_MONITOR_BUSY_PORT', ?BEAMPROF_EVENT_MONITOR_BUSY_PORT},
     {'BEAMPROF_EVENT_MONITOR_BUSY_DIST_PORT', ?BEAMPROF_EVENT_MONITOR_BUSY_DIST_PORT},
     {'BEAMPROF_EVENT_MONITOR_SUPPRESSED', ?BEAMPROF_EVENT_MONITOR_SUPPRESSED},
     {'BEAMPROF_EVENT_PROFILE_START', ?BEAMPROF_EVENT_PROFILE_START},
     {'BEAMPROF_EVENT_PROFILE_STOP', ?BEAMPROF_EVENT_PROFILE_STOP},
     {'BEAMPROF_EVENT_PROFILE_EXCEPTION', ?BEAMPROF_EVENT_PROFILE_EXCEPTION},
     {'BEAMPROF_EVENT_PROFILE_SAMPLE', ?BEAMPROF_EVENT_PROFILE_SAMPLE},
     {'BEAMPROF_EVENT_PROFILE_SLOW_OPERATION', ?BEAMPROF_EVENT_PROFILE_SLOW_OPERATION},
     {'BEAMPROF_EVENT_PROFILE_PRODUCTION', ?BEAMPROF_EVENT_PROFILE_PRODUCTION},
     {'BEAMPROF_EVENT_PROFILE_MEMORY', ?BEAMPROF_EVENT_PROFILE_MEMORY},
     {'BEAMPROF_EVENT_PROFILE_CALLS', ?BEAMPROF_EVENT_PROFILE_CALLS},
     {'BEAMPROF_EVENT_PROFILE_COMPLETE', ?BEAMPROF_EVENT_PROFILE_COMPLETE},
     {'BEAMPROF_EVENT_NATIVE_STOP', ?BEAMPROF_EVENT_NATIVE_STOP},
     {'BEAMPROF_EVENT_PROFILE_NATIVE', ?BEAMPROF_EVENT_PROFILE_NATIVE},
     {'BEAMPROF_EVENT_POLLER_VM_MEMORY', ?BEAMPROF_EVENT_POLLER_VM_MEMORY},
     {'BEAMPROF_EVENT_POLLER_TOTAL_RUN_QUEUE_LENGTHS',
      ?BEAMPROF_EVENT_POLLER_TOTAL_RUN_QUEUE_LENGTHS},
     {'BEAMPROF_EVENT_POLLER_SYSTEM_COUNTS', ?BEAMPROF_EVENT_POLLER_SYSTEM_COUNTS},
     {'BEAMPROF_EVENT_HANDLER_FAILURE', ?BEAMPROF_EVENT_HANDLER_FAILURE}].

header(Name) ->
    filename:join([code:lib_dir(beamprof), "include", Name]).

%% The header's own list of macros is the one above, no more, no less.
macro_names_test() ->
    {ok, Text} = file:read_file(header("beamprof_events.hrl")),
    {match, Found} = re:run(Text, "^-define\\((BEAMPROF_EVENT_[A-Z_]+),",
                            [global, multiline, {capture, all_but_first, binary}]),
    Defined = lists:sort([binary_to_atom(N, utf8) || [N] <- Found]),
    ?assertEqual(lists:sort([N || {N, _} <- macros()]), Defined).

%% One macro for each name beamprof_events:names/0 lists, and no other.
macros_are_the_names_test() ->
    Names = beamprof_events:names(),
    ?assertEqual(length(Names), length(lists:usort(Names))),
    ?assertEqual(lists:sort(Names), lists:sort([V || {_, V} <- macros()])).

profile_events_macro_test() ->
    ?assertEqual([E || [beamprof, profile, E] <- beamprof_events:names()],
                 ?BEAMPROF_PROFILE_EVENTS).

prefixed_name_test() ->
    ?assertEqual([my_app, prof, gate, closed],
                 ?BEAMPROF_EVENT_NAME([my_app, prof], ?BEAMPROF_EVENT_GATE_CLOSED)).

%% Every beamprof_events:emit/3 call in the application's code names an event
%% names/0 lists: literal names exactly, names built at run time (`[monitor, Kind]')
%% by their literal part. (A test run compiles with debug_info.)
emitted_events_are_named_test() ->
    ok = ensure_loaded_app(),
    {ok, Modules} = application:get_key(beamprof, modules),
    Emitted = lists:usort(lists:flatmap(fun emitted/1, Modules)),
    ?assert(length(Emitted) >= 6),
    Names = beamprof_events:names(),
    ?assertEqual([], [{Module, Pattern} || {Module, Pattern} <- Emitted,
                                           not lists:any(fun(N) -> matches([beamprof | Pattern], N)
                                                         end, Names)]).

%% Including the header adds no parse transform (beamprof.hrl does, and includes it).
no_parse_transform_test() ->
    ?assertEqual([], transforms("beamprof_events.hrl")),
    ?assertEqual([beamprof_transform], transforms("beamprof.hrl")).

transforms(Header) ->
    Dir = filename:join(["_build", "beamprof_event_names_tests"]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Src = filename:join(Dir, "uses_header.erl"),
    ok = file:write_file(Src, ["-module(uses_header).\n-include(\"", Header, "\").\n"]),
    {ok, Forms} = epp:parse_file(Src, [{includes, [filename:dirname(header(Header))]}]),
    [T || {attribute, _, compile, {parse_transform, T}} <- Forms].

ensure_loaded_app() ->
    case application:load(beamprof) of
        ok -> ok;
        {error, {already_loaded, beamprof}} -> ok
    end.

emitted(Module) ->
    {ok, {Module, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(Module), [abstract_code]),
    [{Module, pattern(Arg)} || Arg <- emit_args(Forms, [])].

%% The first argument of every beamprof_events:emit/3 call in a term of abstract code.
emit_args({call, _, {remote, _, {atom, _, beamprof_events}, {atom, _, emit}}, [Arg, _, _]} = C,
          Acc) ->
    emit_args(tuple_to_list(C), [Arg | Acc]);
emit_args(T, Acc) when is_tuple(T) -> emit_args(tuple_to_list(T), Acc);
emit_args([H | T], Acc) -> emit_args(T, emit_args(H, Acc));
emit_args(_, Acc) -> Acc.

%% A literal list of atoms and variables as a pattern ('_' for a variable).
pattern({cons, _, {atom, _, A}, T}) -> [A | pattern(T)];
pattern({cons, _, {var, _, _}, T}) -> ['_' | pattern(T)];
pattern({nil, _}) -> [];
pattern(Other) -> error({event_name_not_a_literal_list, Other}).

matches(['_' | P], [_ | N]) -> matches(P, N);
matches([A | P], [A | N]) -> matches(P, N);
matches([], []) -> true;
matches(_, _) -> false.
