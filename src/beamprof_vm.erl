%% @doc Readings of the VM and the samples made from two of them.
%%
%% A reading is what the VM says now (scheduler wall time, the OS CPU time of
%% the scheduler threads from C, reductions, GC, IO, counts); a sample is
%% the difference of two readings turned into ratios and rates, plus the
%% absolute figures of the second one. Pure functions apart from `read/0'
%% and `normal_active/0'.
-module(beamprof_vm).

-export([read/0, normal_active/0, normal_utilization/2, sample/3,
         sample_event/1, utilization_event/1, poller_events/1]).
-export([thread_warnings/0, thread_counts/0, expected_threads/0, check_threads/2]).

-export_type([reading/0, sample/0, active/0]).

-type sched_type() :: normal | dirty_cpu | dirty_io.
-type active() :: {Active :: non_neg_integer(), Total :: non_neg_integer()} | undefined.
%% Summed scheduler wall time of the normal schedulers (or `undefined' when
%% the `scheduler_wall_time' flag is off).

-opaque reading() :: #{time := integer(),
                       swt := [{pos_integer(), non_neg_integer(), non_neg_integer()}] | undefined,
                       cpu := {integer(), [{sched_type(), pos_integer(), non_neg_integer()}]},
                       reductions := non_neg_integer(),
                       gc := {non_neg_integer(), non_neg_integer()},
                       io := {non_neg_integer(), non_neg_integer()},
                       context_switches := non_neg_integer()}.

-type sample() :: #{time := integer(),
                    window_ms := float(),
                    schedulers := [#{id := pos_integer(), type := sched_type(),
                                     index := pos_integer(), utilization := float(),
                                     os_cpu := float() | undefined}],
                    utilization := #{atom() => float() | undefined},
                    run_queues := #{total := non_neg_integer(), cpu := non_neg_integer(),
                                    io := non_neg_integer()},
                    memory := map(),
                    system := #{atom() => non_neg_integer()},
                    rates := #{atom() => float()},
                    gate := map(),
                    system_monitor => map(),
                    scan => map() | undefined,
                    warnings => [beamprof_warnings:warning()]}.
%% What `beamprof:snapshot/0' returns; see doc/events.md for every key.

%% @doc Reads the VM now. Costs about 10-20 us (scheduler_wall_time_all, the
%% scheduler threads' CPU clocks).
-spec read() -> reading().
read() ->
    {GCs, Words, _} = erlang:statistics(garbage_collection),
    {{input, In}, {output, Out}} = erlang:statistics(io),
    #{time => erlang:monotonic_time(),
      swt => erlang:statistics(scheduler_wall_time_all),
      cpu => beamprof_nif:sched_cpu(),
      reductions => element(1, erlang:statistics(reductions)),
      gc => {GCs, Words},
      io => {In, Out},
      context_switches => element(1, erlang:statistics(context_switches))}.

%% @doc Summed active and total wall time of the normal schedulers: the cheap
%% reading behind the load gate's tick.
-spec normal_active() -> active().
normal_active() ->
    case erlang:statistics(scheduler_wall_time) of
        undefined -> undefined;
        Swt -> sum_normal(Swt, erlang:system_info(schedulers), 0, 0)
    end.

sum_normal([{Id, A, T} | Rest], N, SA, ST) when Id =< N -> sum_normal(Rest, N, SA + A, ST + T);
sum_normal([_ | Rest], N, SA, ST) -> sum_normal(Rest, N, SA, ST);
sum_normal([], _, SA, ST) -> {SA, ST}.

%% @doc Utilization of the normal schedulers between two `normal_active/0'
%% readings, in [0.0, 1.0].
-spec normal_utilization(active(), active()) -> float().
normal_utilization({A0, T0}, {A1, T1}) -> ratio(A1 - A0, T1 - T0);
normal_utilization(_, _) -> 0.0.

%% @doc The sample between two readings; `Gate' is `beamprof_nif:gate_info/0'.
-spec sample(reading(), reading(), map()) -> sample().
sample(#{time := T0} = R0, #{time := T1} = R1, Gate) ->
    Seconds = erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6,
    Rows = schedulers(R0, R1),
    #{time => erlang:system_time(),
      window_ms => Seconds * 1000,
      schedulers => [maps:without([active, total], R) || R <- Rows],
      utilization => utilization(Rows),
      run_queues => run_queues(),
      memory => memory(),
      system => system_counts(),
      rates => rates(R0, R1, Seconds),
      gate => Gate}.

schedulers(#{swt := Swt0, cpu := {C0, Cpu0}}, #{swt := Swt1, cpu := {C1, Cpu1}}) ->
    Types = types(),
    Os = os_cpu(Cpu0, Cpu1, C1 - C0),
    [row(Id, maps:get(Id, Types), A1 - A0, T1 - T0, Os)
     || {{Id, A0, T0}, {Id, A1, T1}} <- lists:zip(lists:sort(list(Swt0)), lists:sort(list(Swt1)))].

list(undefined) -> [];
list(L) -> L.

row(Id, {Type, Index}, DA, DT, Os) ->
    #{id => Id, type => Type, index => Index, utilization => ratio(DA, DT),
      active => DA, total => DT, os_cpu => maps:get({Type, Index}, Os, undefined)}.

%% scheduler id -> {type, index within type}, as scheduler_wall_time numbers them
types() ->
    N = erlang:system_info(schedulers),
    C = erlang:system_info(dirty_cpu_schedulers),
    IO = erlang:system_info(dirty_io_schedulers),
    maps:from_list([{I, {normal, I}} || I <- lists:seq(1, N)] ++
                   [{N + I, {dirty_cpu, I}} || I <- lists:seq(1, C)] ++
                   [{N + C + I, {dirty_io, I}} || I <- lists:seq(1, IO)]).

os_cpu(Cpu0, Cpu1, WallNs) ->
    Before = maps:from_list([{{T, I}, Ns} || {T, I, Ns} <- Cpu0]),
    maps:from_list([{{T, I}, ratio(Ns - B, WallNs)} || {T, I, Ns} <- Cpu1,
                                                       B <- [maps:get({T, I}, Before, Ns)]]).

%% Per kind and total as OTP's scheduler:utilization/2 computes them:
%% sum(active) / sum(total) over the schedulers counted.
utilization(Rows) ->
    Kinds = [normal, dirty_cpu, dirty_io],
    Util = maps:from_list([{K, summed([R || #{type := T} = R <- Rows, T =:= K])} || K <- Kinds]),
    Os = maps:from_list([{os_cpu_key(K), mean([C || #{type := T, os_cpu := C} <- Rows,
                                                   T =:= K, C =/= undefined])} || K <- Kinds]),
    Total = summed([R || #{type := T} = R <- Rows, T =/= dirty_io]),
    maps:merge(Util#{total => Total, weighted => weighted(Total, Rows)}, Os).

summed([]) -> undefined;
summed(Rows) ->
    ratio(lists:sum([A || #{active := A} <- Rows]), lists:sum([T || #{total := T} <- Rows])).

os_cpu_key(normal) -> os_cpu;
os_cpu_key(dirty_cpu) -> os_cpu_dirty_cpu;
os_cpu_key(dirty_io) -> os_cpu_dirty_io.

%% OTP's scheduler:utilization/2 'weighted': total scaled by schedulers per
%% logical processor available.
weighted(undefined, _) -> undefined;
weighted(Total, Scheds) ->
    case erlang:system_info(logical_processors_available) of
        unknown -> undefined;
        LPA -> Total * length([x || #{type := T} <- Scheds, T =/= dirty_io]) / LPA
    end.

mean([]) -> undefined;
mean(L) -> lists:sum(L) / length(L).

%% One consistent reading: the normal run queues, then the dirty CPU one,
%% then the dirty IO one (two separate total_* calls can disagree and give
%% a negative io).
run_queues() ->
    Lengths = erlang:statistics(run_queue_lengths_all),
    Total = lists:sum(Lengths),
    Io = lists:last(Lengths),
    #{total => Total, cpu => Total - Io, io => Io}.

memory() ->
    Os = beamprof_nif:memory(),
    Os#{erlang => maps:from_list(erlang:memory())}.

system_counts() ->
    #{process_count => erlang:system_info(process_count),
      process_limit => erlang:system_info(process_limit),
      port_count => erlang:system_info(port_count),
      port_limit => erlang:system_info(port_limit),
      atom_count => erlang:system_info(atom_count),
      atom_limit => erlang:system_info(atom_limit)}.

rates(R0, R1, Seconds) ->
    #{gc := {G0, W0}, io := {I0, O0}} = R0,
    #{gc := {G1, W1}, io := {I1, O1}} = R1,
    #{reductions => per_second(maps:get(reductions, R1) - maps:get(reductions, R0), Seconds),
      gc => per_second(G1 - G0, Seconds),
      gc_words_reclaimed => per_second(W1 - W0, Seconds),
      io_in => per_second(I1 - I0, Seconds),
      io_out => per_second(O1 - O0, Seconds),
      context_switches => per_second(maps:get(context_switches, R1) -
                                         maps:get(context_switches, R0), Seconds)}.

per_second(_, Seconds) when Seconds =< 0 -> 0.0;
per_second(N, Seconds) -> N / Seconds.

ratio(_, D) when D =< 0 -> 0.0;
ratio(N, D) -> min(1.0, max(0.0, N / D)).

%% @doc What the C side's scheduler thread table says against the VM's own
%% counts (`check_threads/2' of `thread_counts/0' and `expected_threads/0').
-spec thread_warnings() -> [beamprof_warnings:warning()].
thread_warnings() ->
    check_threads(thread_counts(), expected_threads()).

%% @doc Scheduler threads per kind in the C side's table (the threads found
%% by name in /proc/self/task).
-spec thread_counts() -> #{sched_type() => non_neg_integer()}.
thread_counts() ->
    {_, Threads} = beamprof_nif:sched_cpu(),
    lists:foldl(fun({Type, _, _}, Acc) -> maps:update_with(Type, fun(N) -> N + 1 end, Acc) end,
                #{normal => 0, dirty_cpu => 0, dirty_io => 0}, Threads).

%% @doc Scheduler threads per kind as `erlang:system_info/1' counts them.
-spec expected_threads() -> #{sched_type() => non_neg_integer()}.
expected_threads() ->
    #{normal => erlang:system_info(schedulers),
      dirty_cpu => erlang:system_info(dirty_cpu_schedulers),
      dirty_io => erlang:system_info(dirty_io_schedulers)}.

%% @doc A warning per kind whose count differs: `scheduler_threads_unseen'
%% when none was found, `scheduler_threads_mismatch' when some were, but not
%% as many as expected (or more). "The VM says" is `Expected', from
%% `erlang:system_info/1' (`schedulers', `dirty_cpu_schedulers',
%% `dirty_io_schedulers'). Pure.
-spec check_threads(Seen, Expected) -> [beamprof_warnings:warning()] when
      Seen :: #{sched_type() => non_neg_integer()},
      Expected :: #{sched_type() => non_neg_integer()}.
check_threads(Seen, Expected) ->
    [thread_warning(Kind, maps:get(Kind, Seen, 0), N)
     || Kind <- [normal, dirty_cpu, dirty_io], N <- [maps:get(Kind, Expected, 0)],
        maps:get(Kind, Seen, 0) =/= N].

%% Messages short enough for a line or two of beamprof:top() (it wraps them
%% at spaces, on two lines at most).
thread_warning(Kind, 0, N) ->
    beamprof_warnings:new(scheduler_threads_unseen,
                          io_lib:format("found no ~ts scheduler thread, the VM says ~B; "
                                        "their OS CPU is not measured", [Kind, N]));
thread_warning(Kind, Seen, N) ->
    beamprof_warnings:new(scheduler_threads_mismatch,
                          io_lib:format("found ~B ~ts scheduler threads, the VM says ~B; "
                                        "their OS CPU is partial", [Seen, Kind, N])).

%% @doc Measurements and metadata of `[beamprof, vm, sample]': every figure
%% of the sample as a flat map of numbers, as metric reporters want them;
%% the metadata's `warnings' are the sample's (`[]' when none).
-spec sample_event(sample()) -> {map(), map()}.
sample_event(#{utilization := U, run_queues := RQ, memory := Mem, system := Sys,
               rates := Rates, gate := Gate, window_ms := Window} = Sample) ->
    Erl = maps:get(erlang, Mem),
    Measurements = maps:merge(
        maps:merge(Sys, prefixed(memory_, Erl)),
        maps:merge(prefixed(run_queue_, RQ), prefixed(per_second_, Rates))),
    M = Measurements#{utilization => undefined_to_zero(maps:get(normal, U)),
                      os_cpu => undefined_to_zero(maps:get(os_cpu, U)),
                      rss => maps:get(rss, Mem),
                      memory_limit => maps:get(limit, Mem),
                      memory_ratio => maps:get(ratio, Mem),
                      mem_total => maps:get(mem_total, Mem),
                      mem_available => maps:get(mem_available, Mem),
                      gate_closed => gate_closed(Gate)},
    {M, #{node => node(), window_ms => Window, gate => maps:get(state, Gate),
          gate_reason => maps:get(reason, Gate),
          memory_limit_source => maps:get(limit_source, Mem),
          warnings => maps:get(warnings, Sample, [])}}.

prefixed(Prefix, Map) ->
    maps:fold(fun(K, V, Acc) -> Acc#{key(Prefix, K) => V} end, #{}, Map).

%% Builds the measurement key from two atoms of the code's own; the sets of
%% keys are fixed by erlang:memory/0, run queues and rates, never by data.
key(memory_, K) -> memory_key(K);
key(run_queue_, total) -> run_queue;
key(run_queue_, cpu) -> run_queue_cpu;
key(run_queue_, io) -> run_queue_io;
key(per_second_, K) -> rate_key(K).

memory_key(total) -> memory_total;
memory_key(processes) -> memory_processes;
memory_key(processes_used) -> memory_processes_used;
memory_key(system) -> memory_system;
memory_key(atom) -> memory_atom;
memory_key(atom_used) -> memory_atom_used;
memory_key(binary) -> memory_binary;
memory_key(code) -> memory_code;
memory_key(ets) -> memory_ets;
memory_key(Other) -> {memory, Other}.

rate_key(reductions) -> reductions_per_second;
rate_key(gc) -> gc_per_second;
rate_key(gc_words_reclaimed) -> gc_words_reclaimed_per_second;
rate_key(io_in) -> io_in_bytes_per_second;
rate_key(io_out) -> io_out_bytes_per_second;
rate_key(context_switches) -> context_switches_per_second.

gate_closed(#{state := closed}) -> 1;
gate_closed(_) -> 0.

undefined_to_zero(undefined) -> 0.0;
undefined_to_zero(V) -> V.

%% @doc Measurements and metadata of `[beamprof, scheduler, utilization]':
%% per kind and total as measurements, per scheduler in the metadata, with
%% the sample's `warnings' (`[]' when none).
-spec utilization_event(sample()) -> {map(), map()}.
utilization_event(#{utilization := U, schedulers := Scheds, window_ms := Window} = Sample) ->
    {maps:filter(fun(_, V) -> V =/= undefined end, U),
     #{schedulers => Scheds, window_ms => Window, warnings => maps:get(warnings, Sample, [])}}.

%% @doc telemetry_poller's default VM events, with its names and keys.
-spec poller_events(sample()) -> [{[atom(), ...], map(), map()}].
poller_events(#{memory := #{erlang := Erl}, run_queues := RQ, system := Sys}) ->
    [{[vm, memory], Erl, #{}},
     {[vm, total_run_queue_lengths], RQ, #{}},
     {[vm, system_counts], Sys, #{}}].
