%% @private
%% @doc What a native run says about itself beyond its stacks: the load
%% gate's share of the run and the rate kept under it, stray signals, and
%% the warnings of a degraded or empty run (`beamprof_warnings' entries).
%%
%% Fields (added to the profile by `beamprof_native'):
%% <ul>
%% <li>`hz_under_gate': the rate per thread kept while beamprof's load gate
%% was closed, `min(hz, 99)'; the sampler never pauses.</li>
%% <li>`gate_closed_ms': wall time the gate was closed during the run
%% (polled every 100 ms by the sampler's thread), `gate_closed_pct' its
%% share of the run.</li>
%% <li>`gated': samples taken while the gate was closed; `thinned':
%% signals not captured then (their weight went to the next sample, so
%% `weighted' still measures CPU time).</li>
%% <li>`stray': SIGPROFs our handler got during the run that were for no
%% sampled thread (a `kill -PROF', a late timer).</li>
%% <li>`vm_readv': `ok', or `denied' when `process_vm_readv' was refused
%% at start (a seccomp filter) and every sample is leaf-only.</li>
%% </ul>
%%
%% Warnings: `native_rate_lowered' (the gate was closed and the rate under
%% it was below the requested one), `native_no_samples' (the run has no
%% sample: why), `native_leaf_only' (`process_vm_readv' denied). Missing
%% frame pointers or names are `beamprof_native''s `native_callers_dropped'.
-module(beamprof_native_report).

-export([fields/2, warnings/1]).

%% The kernel delivers CPU-time timer signals at its tick (1-10 ms): a run
%% shorter than this may get none whatever the rate.
-define(TICK_MAX_MS, 10).

%% @doc The report's fields from the C side's counters (`beamprof_native_nif:
%% info/1' at the end of the run) and the `stray' count at its start.
-spec fields(Info :: map(), Stray0 :: non_neg_integer()) -> map().
fields(Info, Stray0) ->
    ClosedMs = maps:get(gate_closed_ns, Info, 0) div 1000000,
    WallMs = maps:get(wall_ns, Info, 0) div 1000000,
    #{hz_under_gate => maps:get(hz_under_gate, Info, maps:get(hz, Info, 0)),
      gate_closed_ms => ClosedMs,
      gate_closed_pct => pct(min(ClosedMs, WallMs), WallMs),
      gated => maps:get(gated, Info, 0),
      thinned => maps:get(thinned, Info, 0),
      stray => max(0, maps:get(stray, Info, 0) - Stray0),
      vm_readv => maps:get(vm_readv, Info, untested)}.

pct(_, 0) -> 0.0;
pct(Part, All) -> round(1000 * Part / All) / 10.

%% @doc The warnings of a run: `Info' as for fields/2.
-spec warnings(Info :: map()) -> [beamprof_warnings:warning()].
warnings(Info) ->
    lists:append([rate_lowered(Info), no_samples(Info), leaf_only(Info)]).

rate_lowered(#{gated := Gated, thinned := Thinned, hz := Hz, hz_under_gate := Low,
               gate_closed_ns := Ns})
  when Low < Hz, Ns > 0 orelse Gated > 0 ->
    [beamprof_warnings:new(native_rate_lowered,
                           io_lib:format("beamprof's load gate was closed for ~B ms of the run: "
                                         "each thread was sampled at ~B Hz instead of ~B Hz "
                                         "meanwhile (~B samples taken, ~B signals thinned); "
                                         "weights still measure CPU time",
                                         [Ns div 1000000, Low, Hz, Gated, Thinned]))];
rate_lowered(_) ->
    [].

no_samples(#{samples := 0} = Info) ->
    [beamprof_warnings:new(native_no_samples, why_empty(Info))];
no_samples(_) ->
    [].

%% Why a run has no sample, from the most to the least specific cause.
why_empty(#{dropped := Dropped}) when Dropped > 0 ->
    io_lib:format("no sample kept: all ~B were dropped (rings full: drained too slowly)",
                  [Dropped]);
why_empty(#{hz := Hz, wall_ns := Wall, cpu_ns := Cpu, slots := Slots}) ->
    PeriodMs = 1000 / max(Hz, 1),
    WallMs = Wall / 1000000,
    CpuMs = Cpu / 1000000,
    %% A busy thread gets its first sample after one period of its own
    %% CPU time, at the tick after: a run under two of the larger of them
    %% (the start's own milliseconds included) expects at most one.
    Short = WallMs < 2 * max(PeriodMs, ?TICK_MAX_MS),
    Idle = CpuMs < PeriodMs * max(Slots, 1),
    empty_reason(Short, Idle, #{hz => Hz, period => PeriodMs, wall => WallMs, cpu => CpuMs,
                                slots => Slots});
why_empty(_) ->
    "no sample: the sampler's counters are not available".

empty_reason(true, _, #{hz := Hz, period := PeriodMs, wall := WallMs}) ->
    io_lib:format("no sample: the run lasted ~.1f ms, too short: a thread is sampled once "
                  "per sampling period of its own CPU time (~.1f ms at ~B Hz), at the kernel's "
                  "timer tick (1-~B ms); run for longer", [WallMs, PeriodMs, Hz, ?TICK_MAX_MS]);
empty_reason(false, true, #{period := PeriodMs, wall := WallMs, cpu := CpuMs, slots := Slots}) ->
    io_lib:format("no sample: the sampled threads were idle (~.1f ms of CPU over ~B threads "
                  "in ~.1f ms; a thread is sampled once per ~.1f ms of its own CPU time)",
                  [CpuMs, Slots, WallMs, PeriodMs]);
empty_reason(false, false, #{cpu := CpuMs}) ->
    io_lib:format("no sample although the threads used ~.1f ms of CPU: no CPU-time timer "
                  "signal arrived (timers or signals unsupported here)", [CpuMs]).

leaf_only(#{vm_readv := denied}) ->
    [beamprof_warnings:new(native_leaf_only,
                           "process_vm_readv on the VM's own pid is denied (a seccomp "
                           "filter?): no stack could be read; each sample is its innermost "
                           "function alone")];
leaf_only(_) ->
    [].
