%% PropEr properties of the NIF boundary: random terms, and near-miss
%% configuration maps, go into every NIF of every arity. The result is either
%% error:badarg or a value of the documented type, and which of the two is
%% decided by a pure Erlang model of the argument rules. Never a crash.
-module(prop_beamprof_nif).

-include_lib("proper/include/proper.hrl").

-export([prop_nullary/0, prop_report_utilization/0, prop_sampler_start/0]).
-export([prop_native_start/0, prop_native_drain/0, prop_native_internals/0]).

-define(NIF, beamprof_nif).
-define(NATIVE, beamprof_native_nif).

-define(KEYS, [tick_ms, scheduler_high, scheduler_low, memory_high, memory_low,
               reopen_ticks, memory_limit]).

%%--------------------------------------------------------------------
%% Properties

%% Any sequence of the nullary NIFs returns documented shapes.
prop_nullary() ->
    ?FORALL(Calls, list(oneof([gate, gate_info, sched_cpu, memory, history,
                               sampler_info])),
            lists:all(fun(F) -> valid_result(F, ?NIF:F()) end, Calls)).

prop_report_utilization() ->
    ?FORALL(X, ratio_like(),
            begin
                R = call(fun() -> ?NIF:report_utilization(X) end),
                case valid_report(X) of
                    true -> R =:= ok orelse R =:= not_running;
                    false -> R =:= badarg
                end
            end).

%% Random configs (mostly near misses of a valid one) and notify terms.
%% A config that starts the sampler is stopped again.
prop_sampler_start() ->
    ?FORALL({Config, Notify}, {config_like(), notify_like()},
            begin
                R = call(fun() -> ?NIF:sampler_start(Config, Notify) end),
                Expected = model_start(Config, Notify),
                ok = ?NIF:sampler_stop(),
                flush(),
                collect(outcome(Expected),
                        ?WHENFAIL(io:format("~p -> ~p, model ~p~n",
                                            [{Config, Notify}, R, Expected]),
                                  R =:= Expected))
            end).

%%--------------------------------------------------------------------
%% Model

outcome({error, {invalid, _}}) -> invalid;
outcome(Other) -> Other.

valid_report(X) when is_float(X) -> X >= 0.0 andalso X =< 1.0;
valid_report(X) -> X =:= 0 orelse X =:= 1.

model_start(Config, Notify) ->
    case is_map(Config) andalso lists:all(fun(K) -> valid_key(K, Config) end, ?KEYS)
         andalso valid_optional(schedulers_online, Config)
         andalso valid_optional(heartbeat_ms, Config)
         andalso valid_optional(test_hide_threads, Config)
         andalso is_pid(Notify) andalso node(Notify) =:= node() of
        false -> badarg;
        true -> model_marks(Config)
    end.

valid_key(K, Config) ->
    case maps:find(K, Config) of
        {ok, V} -> valid_value(K, V);
        error -> false
    end.

%% An optional key: absent, or present with a valid value.
valid_optional(K, Config) ->
    case maps:find(K, Config) of
        {ok, V} -> valid_value(K, V);
        error -> true
    end.

valid_value(schedulers_online, V) -> is_integer(V) andalso V >= 1 andalso V =< 1024;
valid_value(heartbeat_ms, V) -> is_integer(V) andalso V >= 10 andalso V =< 3600000;
valid_value(test_hide_threads, V) -> is_boolean(V);
valid_value(tick_ms, V) -> is_integer(V) andalso V >= 1 andalso V =< 60000;
valid_value(reopen_ticks, V) -> is_integer(V) andalso V >= 1 andalso V < 1 bsl 32;
valid_value(memory_limit, V) -> is_integer(V) andalso V >= 0 andalso V < 1 bsl 64;
valid_value(_Ratio, V) -> is_float(V) andalso V > 0.0 andalso V =< 1.0.

model_marks(#{scheduler_low := SL, scheduler_high := SH}) when SL >= SH ->
    {error, {invalid, scheduler_low}};
model_marks(#{memory_low := ML, memory_high := MH}) when ML >= MH ->
    {error, {invalid, memory_low}};
model_marks(_) ->
    ok.

%%--------------------------------------------------------------------
%% Generators

ratio_like() ->
    oneof([any(), float(), float(0.0, 1.0), integer(), integer(-2, 3),
           elements([0.0, 1.0, -0.0, 1.0000000000000002, -1.0e-300, 1 bsl 70])]).

value_for(tick_ms) ->
    oneof([integer(1, 60000), elements([0, 1, 60000, 60001, -1, 1.0, 1 bsl 64])]);
value_for(reopen_ticks) ->
    oneof([integer(1, 10), elements([0, -1, 1 bsl 32 - 1, 1 bsl 32, 2.0])]);
value_for(memory_limit) ->
    oneof([integer(0, 1 bsl 40), elements([-1, 1 bsl 64 - 1, 1 bsl 64, 1.0e9])]);
value_for(_Ratio) ->
    oneof([float(0.0, 1.0), elements([0.0, 1.0, -0.0, 1.5, 1, 0, 0.5])]).

valid_config() ->
    ?LET({SH, SL, MH, ML, Tick, Reopen, Limit},
         {float(0.51, 1.0), float(0.01, 0.5), float(0.51, 1.0), float(0.01, 0.5),
          integer(1, 1000), integer(1, 10), integer(0, 1 bsl 40)},
         #{tick_ms => Tick, scheduler_high => SH, scheduler_low => SL,
           memory_high => MH, memory_low => ML, reopen_ticks => Reopen,
           memory_limit => Limit}).

%% Near misses: a valid config with keys changed, removed, added or swapped.
config_like() ->
    frequency([{1, any()},
               {2, valid_config()},
               {6, ?LET({C, Edits}, {valid_config(), list(edit())},
                        lists:foldl(fun apply_edit/2, C, Edits))}]).

edit() ->
    oneof([{set, elements(?KEYS), any()},
           ?LET(V, oneof([integer(1, 1024), elements([0, 1025, -1, 2.0]), any()]),
                {set, schedulers_online, V}),
           ?LET(V, oneof([integer(10, 5000), elements([9, 10, 3600000, 3600001, 0, -1, 100.0]),
                          any()]),
                {set, heartbeat_ms, V}),
           ?LET(V, oneof([boolean(), elements([yes, 1, 0, nil]), any()]),
                {set, test_hide_threads, V}),
           ?LET(K, elements(?KEYS), {set, K, value_for(K)}),
           {remove, elements(?KEYS)},
           {add, any(), any()},
           {swap_marks, elements([scheduler, memory])}]).

apply_edit({set, K, V}, C) -> C#{K => V};
apply_edit({remove, K}, C) -> maps:remove(K, C);
apply_edit({add, K, V}, C) -> C#{K => V};
apply_edit({swap_marks, scheduler}, C = #{scheduler_low := L, scheduler_high := H}) ->
    C#{scheduler_low := H, scheduler_high := L};
apply_edit({swap_marks, memory}, C = #{memory_low := L, memory_high := H}) ->
    C#{memory_low := H, memory_high := L};
apply_edit({swap_marks, _}, C) -> C.

notify_like() ->
    frequency([{8, exactly(self())}, {1, any()}, {1, exactly(make_ref())}]).

%%--------------------------------------------------------------------
%% Checking results

call(Fun) ->
    try Fun()
    catch error:badarg -> badarg
    end.

flush() ->
    receive {beamprof_gate, _, _, _} -> flush() after 0 -> ok end.

valid_result(gate, G) -> G =:= open orelse G =:= closed;
valid_result(gate_info, #{state := S, reason := R, source := Src, running := Run,
                          changed_at := At, blind := B, pings := P, heartbeat_ms := H,
                          reported_at := Rep} = M) ->
    map_size(M) =:= 9 andalso valid_result(gate, S) andalso valid_reason(R)
        andalso (R =/= not_running orelse (Run =:= false andalso S =:= open))
        andalso lists:member(Src, [erlang, os_cpu, starved, none]) andalso is_boolean(Run)
        andalso is_integer(At) andalso is_boolean(B) andalso is_integer(P) andalso P >= 0
        andalso is_integer(H) andalso H >= 10 andalso (Rep =:= undefined orelse is_integer(Rep));
valid_result(sched_cpu, {Mono, Rows}) ->
    is_integer(Mono) andalso is_list(Rows) andalso
        lists:all(fun({T, I, C}) ->
                          lists:member(T, [normal, dirty_cpu, dirty_io])
                              andalso is_integer(I) andalso I > 0
                              andalso is_integer(C) andalso C >= 0;
                     (_) -> false
                  end, Rows);
valid_result(memory, #{rss := Rss, limit := L, limit_source := Src, ratio := R,
                       mem_total := T, mem_available := A} = M) ->
    map_size(M) =:= 6 andalso lists:all(fun(X) -> is_integer(X) andalso X >= 0 end,
                                        [Rss, L, T, A])
        andalso lists:member(Src, [option, cgroup_v2, cgroup_v1, machine])
        andalso is_float(R) andalso R >= 0.0;
valid_result(history, H) ->
    is_list(H) andalso length(H) =< 600 andalso lists:all(fun valid_tick/1, H);
valid_result(sampler_info, #{running := Run, ticks := K, tick_ms := T, cpu_ns := C,
                             threads := N} = M) ->
    map_size(M) =:= 5 andalso is_boolean(Run) andalso is_integer(K) andalso K >= 0
        andalso is_integer(T) andalso T > 0 andalso is_integer(C) andalso C >= 0
        andalso is_integer(N) andalso N >= 0;
valid_result(_, _) ->
    false.

valid_reason(none) -> true;
valid_reason(not_running) -> true;
valid_reason({scheduler, R}) -> is_float(R);
valid_reason({memory, R}) -> is_float(R);
valid_reason(_) -> false.

valid_tick({Mono, S, Src, Os, Used, Limit, MR, G, D}) ->
    is_integer(Mono) andalso is_float(S)
        andalso lists:member(Src, [erlang, os_cpu, starved, none])
        andalso is_float(Os) andalso is_integer(Used) andalso is_integer(Limit)
        andalso is_float(MR) andalso (G =:= open orelse G =:= closed)
        andalso is_float(D) andalso D >= 0.0 andalso D =< 1.0;
valid_tick(_) ->
    false.

%%--------------------------------------------------------------------
%% Native sampler NIFs

%% Random and near-miss configs into beamprof_native_nif:start/1: badarg exactly when
%% the model says so; otherwise ok or an {error, _} (then stopped again).
prop_native_start() ->
    ?FORALL(Config, native_config_like(),
            begin
                R = call(fun() -> ?NATIVE:start(Config) end),
                ok = ?NATIVE:stop(),
                _ = ?NATIVE:drain(1 bsl 20),
                Expected = model_native(Config),
                ?WHENFAIL(io:format("~p -> ~p, model ~p~n", [Config, R, Expected]),
                          case Expected of
                              badarg -> R =:= badarg;
                              ring -> R =:= {error, {invalid, ring_bytes}};
                              ok -> R =:= ok
                          end)
            end).

%% The vm_internals switch at the NIF boundary: info/1 and jit_symbols/1
%% take a boolean and nothing else (badarg), and with false jit_symbols/1
%% reads nothing and says so, info/1 knows no frame layout.
prop_native_internals() ->
    ?FORALL(V, boolean_like(),
            begin
                Info = call(fun() -> ?NATIVE:info(V) end),
                Jit = call(fun() -> ?NATIVE:jit_symbols(V) end),
                ?WHENFAIL(io:format("~p -> ~p, ~p~n", [V, Info, Jit]),
                          case V of
                              false ->
                                  Jit =:= {error, vm_internals_off} andalso
                                      is_map(Info) andalso
                                      maps:get(mode, Info) =:= leaf andalso
                                      maps:get(frame_layout_source, Info) =:= none;
                              true ->
                                  element(1, Jit) =:= ok andalso is_map(Info) andalso
                                      maps:get(vm_internals, Info);
                              _ ->
                                  Info =:= badarg andalso Jit =:= badarg
                          end)
            end).

boolean_like() ->
    oneof([boolean(), any(), elements([0, 1, nil, "true", <<"false">>, 'TRUE', {true}])]).

prop_native_drain() ->
    ?FORALL(Max, oneof([any(), integer(), elements([0, 1, 1 bsl 64, 1 bsl 70, -1, 1.0])]),
            begin
                R = call(fun() -> ?NATIVE:drain(Max) end),
                case is_integer(Max) andalso Max > 0 of
                    true -> is_list(R);
                    false -> R =:= badarg
                end
            end).

model_native(C) when not is_map(C) -> badarg;
model_native(C) ->
    Checks = [{hz, fun(V) -> is_integer(V) andalso V >= 1 andalso V =< 10000 end},
              {depth, fun(V) -> is_integer(V) andalso V >= 1 andalso V =< 1024 end},
              {stack_bytes, fun(V) -> is_integer(V) andalso V >= 0 andalso V =< 65536
                                          andalso V rem 8 =:= 0 end},
              {ring_bytes, fun(V) -> is_integer(V) andalso V >= 65536 andalso V =< 1 bsl 26
                                         andalso V band (V - 1) =:= 0 end},
              {threads, fun valid_kinds/1},
              {vm_internals, fun is_boolean/1}],
    case lists:all(fun({K, F}) -> not maps:is_key(K, C) orelse F(maps:get(K, C)) end, Checks) of
        false -> badarg;
        true ->
            %% sizeof(struct bp_nsample) + the stack window + the frames + the
            %% stitch words copied below a C sample's chain (BP_NCAP_STITCH)
            Record = 112 + maps:get(stack_bytes, C, 16384) + 8 * maps:get(depth, C, 128) + 512,
            case 4 * Record > maps:get(ring_bytes, C, 1 bsl 20) of
                true -> ring;
                false -> ok
            end
    end.

valid_kinds(L) when is_list(L), L =/= [] ->
    try lists:all(fun(K) -> lists:member(K, [normal, dirty_cpu, dirty_io]) end, L)
    catch error:_ -> false
    end;
valid_kinds(_) -> false.

native_config_like() ->
    frequency([{1, any()},
               {6, ?LET(Pairs, list(native_pair()), maps:from_list(Pairs))},
               %% where the ring holds 4 records or not, by the depth
               {1, ?LET(D, integer(1, 70), #{ring_bytes => 65536, stack_bytes => 15752,
                                              depth => D})}]).

native_pair() ->
    oneof([{hz, oneof([integer(1, 2000), elements([0, 10000, 10001, -1, 99.0])])},
           {depth, oneof([integer(1, 200), elements([0, 1024, 1025, foo])])},
           {stack_bytes, oneof([elements([0, 8, 4096, 16384, 65536, 65544, 7, 100])])},
           {ring_bytes, elements([65536, 131072, 1 bsl 20, 1 bsl 26, 1 bsl 27, 100000, 0])},
           {threads, oneof([list(elements([normal, dirty_cpu, dirty_io])),
                            elements([normal, [foo], [normal | dirty_io]])])},
           {vm_internals, boolean_like()},
           {any(), any()}]).
