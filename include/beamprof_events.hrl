%% The names of the events beamprof emits, as macros, for handlers:
%%
%%   -include_lib("beamprof/include/beamprof_events.hrl").
%%   ok = beamprof:attach(my_handler, ?BEAMPROF_EVENT_GATE_CLOSED, fun my_mod:handle/4, []).
%%
%% Including this file changes nothing else in the module (unlike beamprof.hrl, which
%% also turns on the profiling parse transform and includes this file).
%%
%% Each ?BEAMPROF_EVENT_... macro is the full name under the default prefix [beamprof]
%% (the first four of the last group, telemetry_poller's and telemetry's names, carry no
%% prefix). With the event_prefix option set, ?BEAMPROF_EVENT_NAME(Prefix, Event) gives
%% the name under that prefix. beamprof_events:names/0 lists the same names; the
%% measurements and metadata of each event are in doc/events.md's tables and in the
%% docs of the module that emits it.
-ifndef(BEAMPROF_EVENTS_HRL).
-define(BEAMPROF_EVENTS_HRL, true).

%% Event under another prefix: ?BEAMPROF_EVENT_NAME([my_app, prof], ?BEAMPROF_EVENT_VM_SAMPLE)
%% is [my_app, prof, vm, sample]. (Only for the names that start with beamprof.)
-define(BEAMPROF_EVENT_NAME(Prefix, Event), (Prefix) ++ tl(Event)).

%% The sampler, every interval (beamprof_sampler).
-define(BEAMPROF_EVENT_VM_SAMPLE, [beamprof, vm, sample]).
-define(BEAMPROF_EVENT_SCHEDULER_UTILIZATION, [beamprof, scheduler, utilization]).

%% The load gate (beamprof_gate).
-define(BEAMPROF_EVENT_GATE_CLOSED, [beamprof, gate, closed]).
-define(BEAMPROF_EVENT_GATE_OPEN, [beamprof, gate, open]).

%% The process and port scan (beamprof_scan_server) and the system monitor's long
%% message queues (OTP 27+, beamprof_monitor).
-define(BEAMPROF_EVENT_PROCESS_SCAN, [beamprof, process, scan]).
-define(BEAMPROF_EVENT_PROCESS_LONG_MESSAGE_QUEUE, [beamprof, process, long_message_queue]).
-define(BEAMPROF_EVENT_PROCESS_LARGE_MEMORY, [beamprof, process, large_memory]).
-define(BEAMPROF_EVENT_PORT_BUSY, [beamprof, port, busy]).

%% The VM monitor bridge (beamprof_monitor).
-define(BEAMPROF_EVENT_MONITOR_LONG_GC, [beamprof, monitor, long_gc]).
-define(BEAMPROF_EVENT_MONITOR_LONG_SCHEDULE, [beamprof, monitor, long_schedule]).
-define(BEAMPROF_EVENT_MONITOR_LARGE_HEAP, [beamprof, monitor, large_heap]).
-define(BEAMPROF_EVENT_MONITOR_BUSY_PORT, [beamprof, monitor, busy_port]).
-define(BEAMPROF_EVENT_MONITOR_BUSY_DIST_PORT, [beamprof, monitor, busy_dist_port]).
-define(BEAMPROF_EVENT_MONITOR_SUPPRESSED, [beamprof, monitor, suppressed]).

%% The profiling API (beamprof_profile).
-define(BEAMPROF_EVENT_PROFILE_START, [beamprof, profile, start]).
-define(BEAMPROF_EVENT_PROFILE_STOP, [beamprof, profile, stop]).
-define(BEAMPROF_EVENT_PROFILE_EXCEPTION, [beamprof, profile, exception]).
-define(BEAMPROF_EVENT_PROFILE_SAMPLE, [beamprof, profile, sample]).
-define(BEAMPROF_EVENT_PROFILE_SLOW_OPERATION, [beamprof, profile, slow_operation]).
-define(BEAMPROF_EVENT_PROFILE_PRODUCTION, [beamprof, profile, production]).
-define(BEAMPROF_EVENT_PROFILE_MEMORY, [beamprof, profile, memory]).
-define(BEAMPROF_EVENT_PROFILE_CALLS, [beamprof, profile, calls]).
-define(BEAMPROF_EVENT_PROFILE_COMPLETE, [beamprof, profile, complete]).

%% The profiling API's event suffixes, under [beamprof, profile] (kept from beamprof.hrl).
-define(BEAMPROF_PROFILE_EVENTS,
        [start, stop, exception, sample, slow_operation, production, memory, calls, complete,
         native]).

%% The native sampler, when a run's profile is built (beamprof_native).
-define(BEAMPROF_EVENT_NATIVE_STOP, [beamprof, native, stop]).

%% The continuous profiler's telemetry sink, once per period (beamprof_continuous_telemetry).
-define(BEAMPROF_EVENT_PROFILE_NATIVE, [beamprof, profile, native]).

%% Without a prefix: telemetry_poller's VM events (vm_events option, beamprof_sampler)
%% and telemetry's handler failure (beamprof_events).
-define(BEAMPROF_EVENT_POLLER_VM_MEMORY, [vm, memory]).
-define(BEAMPROF_EVENT_POLLER_TOTAL_RUN_QUEUE_LENGTHS, [vm, total_run_queue_lengths]).
-define(BEAMPROF_EVENT_POLLER_SYSTEM_COUNTS, [vm, system_counts]).
-define(BEAMPROF_EVENT_HANDLER_FAILURE, [telemetry, handler, failure]).

-endif.
