%% @doc What was degraded, said in one shape everywhere.
%%
%% Results, snapshots and event metadata carry a `warnings' list; each entry
%% is `#{code => Code, message => Message}': `Code' an atom from the fixed
%% set below (match on it), `Message' a one-line UTF-8 binary for a person
%% (print it). A message says what was lost first and, after `"; "', what is
%% used instead, when something is (`short/1' gives the first part).
%%
%% The codes:
%% <ul>
%% <li>`enumeration_fallback': the scan took its pids from
%% `erlang:processes()' because the faster source could not be used (the
%% process table's layout is not verified on this ERTS, or the table was not
%% found).</li>
%% <li>`vm_internals_off': a reading of the VM's internal structures was not
%% made because the `vm_internals' option is `false'; the portable way was
%% used.</li>
%% <li>`scheduler_threads_mismatch': the C side found a different number of
%% scheduler threads of a kind than `erlang:system_info/1' reports; OS CPU
%% figures of that kind are partial.</li>
%% <li>`scheduler_threads_unseen': the C side found no scheduler thread of a
%% kind that the VM has; OS CPU figures of that kind are missing.</li>
%% <li>`global_tracer_active': another tracer held global tracing while a
%% strategy that needs it ran; its figures may miss calls.</li>
%% <li>`native_unsupported': the native sampler cannot run here (library,
%% architecture or VM feature missing); nothing was sampled natively.</li>
%% <li>`native_callers_dropped': the VM's JIT code has no frame pointers (or
%% its frame layout could not be read), so the Erlang callers of a native
%% sample cannot be verified and are not shown; each sample keeps its
%% innermost Erlang function and its C frames. The message names the VM
%% flag that gives whole stacks on the running release (`+JPperf fp' or
%% `+JPperf true' on OTP 26+, `+JPperf true' or `+JPperf map' on OTP 25).
%% The profile's files say it too.</li>
%% <li>`c_symbols_missing': a native profile has C frames in an object
%% without a full symbol table (no `.symtab', no debug file found by
%% build-id or `.gnu_debuglink'), named `Object+0xOffset'; the message gives
%% the share of samples, the paths looked at, and the package (on Debian
%% `erlang-base-dbgsym' for beam.smp) that installs the debug file.</li>
%% <li>`gate_blind': the C sampler thread sees no normal scheduler thread (no
%% readable `/proc/self/task', names not matched, out of file descriptors),
%% so it has no OS CPU or demand figure; the load gate runs on the Erlang
%% side's `scheduler_wall_time' utilization (`gate_info()''s `source' is
%% `erlang', or `starved' when that side did not answer within a tick and
%% the gate takes the schedulers as busy).</li>
%% <li>`scan_window_unavailable': the scan's reductions window (a table in C)
%% could not be allocated; reductions were not ranked (a lifetime total is
%% not a window delta) and the threshold events (long queue, large memory,
%% busy port) were not checked in that pass.</li>
%% <li>`profile_no_samples': a profile of one call (the `sample' and
%% `flame_graph' strategies) holds no sample; the message says why (the call
%% was shorter than the sampling interval, or the sampler got no reading in on
%% a loaded node).</li>
%% <li>`profile_skipped': a profiled call ran unprofiled; the message says
%% why (the load gate was closed, the trace lock was held, the output cannot
%% be written), as the stop event's `skipped' does.</li>
%% <li>`native_rate_lowered': beamprof's load gate was closed during a
%% native run, and each thread was sampled at the lower rate kept under it
%% (at most 99 Hz) meanwhile; the weights still measure CPU time.</li>
%% <li>`native_no_samples': a native run has no sample; the message says
%% why (the run too short for the kernel's tick or one sampling period,
%% idle threads, every sample dropped, no timer signal).</li>
%% <li>`native_leaf_only': `process_vm_readv' on the VM's own pid was
%% denied at the native start (a seccomp filter); no stack was read, each
%% sample is its innermost function alone.</li>
%% <li>`recorder_unavailable': the flight recording the options name could
%% not be opened when beamprof started (the message names the file and the
%% reason); beamprof runs without it until `beamprof:start_recorder/1'
%% opens one.</li>
%% <li>`continuous_sink_failing': a continuous profiling sink's last
%% delivery failed (the message names the sink, the error, and its counts of
%% profiles sent, failed attempts, dropped from its full queue and lost
%% after their retries); profiles wait in its bounded queue meanwhile.</li>
%% <li>`continuous_unavailable': the `continuous' option could not start
%% continuous profiling (the native sampler is unavailable here: the
%% message says why); beamprof runs without it.</li>
%% </ul>
-module(beamprof_warnings).

-export([codes/0, meaning/1, new/2, is_warning/1, merge/2, short/1]).
-export_type([code/0, warning/0]).

-type code() :: enumeration_fallback | vm_internals_off | scheduler_threads_mismatch
              | scheduler_threads_unseen | global_tracer_active | native_unsupported
              | native_callers_dropped | c_symbols_missing | gate_blind
              | scan_window_unavailable | profile_no_samples | profile_skipped
              | native_rate_lowered | native_no_samples | native_leaf_only
              | recorder_unavailable | continuous_sink_failing | continuous_unavailable.
-type warning() :: #{code := code(), message := binary()}.

%% @doc Every code, in the order of the module doc.
-spec codes() -> [code(), ...].
codes() ->
    [enumeration_fallback, vm_internals_off, scheduler_threads_mismatch,
     scheduler_threads_unseen, global_tracer_active, native_unsupported,
     native_callers_dropped, c_symbols_missing, gate_blind, scan_window_unavailable,
     profile_no_samples, profile_skipped, native_rate_lowered, native_no_samples,
     native_leaf_only, recorder_unavailable, continuous_sink_failing,
     continuous_unavailable].

%% @doc The one-line meaning of a code (as in the module doc).
-spec meaning(code()) -> binary().
meaning(enumeration_fallback) ->
    <<"the scan's pids came from erlang:processes(): the faster source could not be used">>;
meaning(vm_internals_off) ->
    <<"a reading of VM internals was skipped (vm_internals = false)">>;
meaning(scheduler_threads_mismatch) ->
    <<"scheduler threads found differ in number from erlang:system_info/1">>;
meaning(scheduler_threads_unseen) ->
    <<"no scheduler thread of a kind was found: its OS CPU figures are missing">>;
meaning(global_tracer_active) ->
    <<"another tracer held global tracing: figures may miss calls">>;
meaning(native_unsupported) ->
    <<"the native sampler cannot run here">>;
meaning(native_callers_dropped) ->
    <<"no frame pointers: native samples keep their innermost Erlang function and C frames, "
      "not their unverifiable Erlang callers">>;
meaning(c_symbols_missing) ->
    <<"C frames of an object without symbols are named only object+0xoffset">>;
meaning(gate_blind) ->
    <<"the gate's C thread sees no scheduler thread: the gate runs on scheduler_wall_time">>;
meaning(scan_window_unavailable) ->
    <<"the scan's reductions window could not be allocated: reductions not ranked, "
      "thresholds not checked">>;
meaning(profile_no_samples) ->
    <<"a profile of one call holds no sample (too short, or no reading on a loaded node)">>;
meaning(profile_skipped) ->
    <<"a profiled call ran unprofiled (gate closed, trace lock held, output unwritable)">>;
meaning(native_rate_lowered) ->
    <<"the load gate was closed: native samples were taken at a lower rate meanwhile">>;
meaning(native_no_samples) ->
    <<"a native run has no sample (the message says why)">>;
meaning(native_leaf_only) ->
    <<"process_vm_readv is denied: native samples are their innermost function only">>;
meaning(recorder_unavailable) ->
    <<"the flight recording could not be opened at start: nothing is recorded">>;
meaning(continuous_sink_failing) ->
    <<"a continuous profiling sink is failing: profiles wait in its bounded queue, "
      "overflow is dropped">>;
meaning(continuous_unavailable) ->
    <<"continuous profiling could not start (no native sampler here)">>;
meaning(Code) ->
    erlang:error({badarg, "Expected a warning code, one of " ++ codes_text()}, [Code]).

%% @doc A warning: `Code' from `codes/0', `Message' any chardata (made a
%% UTF-8 binary). Raises `{badarg, Message}' for an unknown code or a
%% message that is not text.
-spec new(Code :: code(), Message :: unicode:chardata()) -> warning().
new(Code, Message) ->
    case {lists:member(Code, codes()), text(Message)} of
        {true, {ok, Bin}} -> #{code => Code, message => Bin};
        {false, _} -> erlang:error({badarg, "Expected a warning code, one of " ++ codes_text()},
                                   [Code, Message]);
        {true, error} -> erlang:error({badarg, "Expected the message to be text (chardata)"},
                                      [Code, Message])
    end.

text(Message) ->
    try unicode:characters_to_binary(Message) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> error
    catch error:badarg -> error
    end.

codes_text() ->
    lists:join(", ", [atom_to_list(C) || C <- codes()]).

%% @doc Whether `Term' is a warning of the shape and set above.
-spec is_warning(term()) -> boolean().
is_warning(#{code := Code, message := Message} = W) when map_size(W) =:= 2,
                                                         is_binary(Message) ->
    lists:member(Code, codes());
is_warning(_) ->
    false.

%% @doc `A' then the warnings of `B' that are not in `A' (equal code and
%% message), each once: a warning said by two parts shows once.
-spec merge([warning()], [warning()]) -> [warning()].
merge(A, B) ->
    dedupe(A ++ B, #{}).

dedupe([W | Rest], Seen) when is_map_key(W, Seen) -> dedupe(Rest, Seen);
dedupe([W | Rest], Seen) -> [W | dedupe(Rest, Seen#{W => true})];
dedupe([], _Seen) -> [].

%% @doc The message up to `"; "' (what was lost, without what is used
%% instead): for a line that already shows the replacement.
-spec short(warning()) -> binary().
short(#{message := Message}) ->
    hd(binary:split(Message, <<"; ">>)).
