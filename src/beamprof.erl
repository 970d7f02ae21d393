%% @doc beamprof: profiling and load sampling for the Erlang VM.
%%
%% This is the module a person types at the shell (`beamprof:top().') and
%% the API an application calls. From Elixir it is `:beamprof', or the
%% `Beamprof' facade.
%%
%% <ul>
%% <li>`start/0,1', `stop/0': the application: a C sampler thread that keeps
%% the load gate current every `tick' (100 ms), and an Erlang sampler
%% process that emits the VM's figures every `interval' (1 s). On a running
%% beamprof `start()' answers `ok', and `start(Options)' `ok' or
%% `{error, {already_started, Differences}}'.</li>
%% <li>`gate/0': may I profile now? One atomic read in C, tens of
%% nanoseconds: safe on any hot path. `gate_info/0' says why.</li>
%% <li>`snapshot/0': the latest sample as a map; `top/0' prints it.</li>
%% <li>`attach/4', `attach_many/4', `detach/1', `list_handlers/1': event
%% handlers, telemetry's contract; forwarded to telemetry when it is
%% loaded. Handlers can be attached before `start/0,1': they are kept and
%% installed when beamprof starts.</li>
%% </ul>
%%
%% Costs (see doc/cost.md, "At rest and on hot paths"): the C thread wakes 10
%% times a second and reads each normal scheduler thread's schedstat and two
%% small /proc files; it asks an Erlang process for `scheduler_wall_time'
%% when the schedulers' demand reaches the gate's mark, once per `heartbeat'
%% (1 s) otherwise, and every tick when it cannot see the scheduler threads
%% (the blind gate, see `gate_info/0'); the Erlang
%% sampler reads the whole VM (`erlang:memory/0', counts, statistics) once
%% per interval.
-module(beamprof).

-export([start/0, start/1, stop/0, snapshot/0, top/0, gate/0, gate_info/0,
         attach/4, attach_many/4, detach/1, list_handlers/1]).
-export([write_profile/3]).
-export([native_start/1, native_stop/0, native_top/1, native_info/0]).
-export([gate_history/0]).
-export([profile/2, profile_if_slow/2, profile_production/2, profile_memory/2,
         profile_calls/2, flame_graph/2]).

-export([top/1]).
-export([start_recorder/1, stop_recorder/0, recorder_info/0]).
-export([start_continuous/1, stop_continuous/0, continuous_info/0]).
-export([top/2, top_ports/2]).
-export([top/3, snapshot/1]).
-export([read_recording/1, read_recording/2, recording_report/2]).

-type event_name() :: [atom(), ...].
-type handler_fun() :: fun((event_name(), map(), map(), term()) -> any()).

%% @doc Starts beamprof with the application environment's options (or the
%% defaults). Returns `ok' when it is running, whether this call started it
%% or it was running already (started by a release, by mix as a dependency,
%% or by an earlier call).
-spec start() -> ok | {error, term()}.
start() ->
    case running() of
        true -> ok;
        false ->
            ok = beamprof_config:clear_start_options(),
            ensure_started()
    end.

%% @doc Starts beamprof with `Options' (a map or a `{Key, Value}' list) over
%% the application environment.
%%
%% Options: `interval' (ms), `tick' (ms), `scheduler_high', `scheduler_low',
%% `memory_high', `memory_low' (ratios), `reopen_ticks', `memory_limit'
%% (bytes or `auto'), `event_prefix', `vm_events', `recorder' (`off', or
%% `#{file => Path, size => Bytes}': see `start_recorder/1'; a recording
%% that cannot be opened does not fail the start: beamprof runs without it,
%% logs why, and every sample carries a `recorder_unavailable' warning until
%% `start_recorder/1' opens one), `continuous' (`off', or `#{hz, period,
%% sink}': see `start_continuous/1'; where the native sampler is absent
%% the start does not fail: beamprof runs without it, logs why, and every
%% sample carries a `continuous_unavailable' warning), `vm_internals' (`false':
%% never read the VM's internal structures), `heartbeat' (ms, default 1000:
%% how often the gate asks for `scheduler_wall_time' whatever the OS figures
%% say), `system_monitor' and the scan's options; for tests only,
%% `test_hide_threads' and `test_window_enomem' (see `beamprof_config').
%%
%% The options are checked first, running or not: an unknown or ill-typed
%% option raises `{badarg, Message}' naming it
%% (`"Unknown option bogus; known options: ..."').
%%
%% When beamprof is already running (an application that depends on it
%% starts it first; mix starts it as a dependency, so its options belong in
%% `config :beamprof'), nothing restarts: the answer is `ok' when every
%% option given has the value that runs (options not given are not
%% compared; the application environment's count as what runs), else
%% `{error, {already_started, Differences}}' with one entry per option that
%% differs: `#{tick => #{running => 100, asked => 50}}'. To change them,
%% `stop()' then `start(Options)'.
-spec start(Options) -> ok | {error, Reason} when
      Options :: beamprof_config:options(),
      Reason :: {already_started, beamprof_config:differences()} | term().
start(Options) ->
    case beamprof_config:running() of
        undefined ->
            _ = beamprof_config:check_start(beamprof_config:env_config(), Options),
            ok = beamprof_config:set_start_options(Options),
            ensure_started();
        Running ->
            Asked = beamprof_config:check_start(Running, Options),
            case beamprof_config:differences(Asked, Running) of
                Same when map_size(Same) =:= 0 -> ok;
                Differences -> {error, {already_started, Differences}}
            end
    end.

ensure_started() ->
    case application:ensure_all_started(beamprof) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

running() ->
    lists:keymember(beamprof, 1, application:which_applications()).

%% @doc Starts the flight recorder on a running node (or any node that
%% loads beamprof; the `tick' records need the application's C thread):
%% `Options' is `#{file => Path, size => Bytes}' (the ring's size, default
%% 16 MiB; 65536..4294967296, rounded down to a multiple of 8). The file is
%% a fixed-size memory-mapped ring: what is written survives a SIGKILL of
%% the node (not a machine crash: there is no fsync), and is read back with
%% `read_recording/1'. Returns `ok' or `{error, Reason}': `already_open',
%% `locked' (another VM writes it), `not_a_recording' (an existing file that
%% is not one: left untouched), `{unwritable, Errno}'. A recording left by
%% another VM (a killed node) is first moved to `Path.prev'. The recording
%% stops with `stop_recorder/0' or the application. At the defaults
%% (16 MiB, 100 ms ticks) it covers tens of minutes on a small node, fewer
%% on one with many schedulers (the tick record grows with them); see
%% `beamprof_recorder'. Put the file on a volume that outlives a container:
%% its pages count against the container's memory limit.
-spec start_recorder(Options) -> ok | {error, term()} when
      Options :: beamprof_recorder:options().
start_recorder(Options) ->
    beamprof_recorder:start(Options).

%% @doc Stops the flight recorder: the file is unmapped, unlocked and
%% closed (no fsync). `ok' also when none runs.
-spec stop_recorder() -> ok.
stop_recorder() ->
    beamprof_recorder:stop().

%% @doc The open recording's file and counters (frames and bytes written,
%% wraps of the ring, next sequence number, frames dropped), or `undefined'.
-spec recorder_info() -> beamprof_recorder:info() | undefined.
recorder_info() ->
    beamprof_recorder:info().

%% @doc Starts continuous profiling on a running beamprof: the native
%% sampler stays on at `hz' (default 19) and every `period' ms (default
%% 60000, at least 1000) the profile of that period goes to the `sink': `{dir,
%% Dir}' or `{dir, Dir, #{keep => N}}' (rotated `.pb.gz' pprof files),
%% `telemetry' (the event `[beamprof, profile, native]'), `{http, Url, Opts}'
%% (Pyroscope's ingest API), or a list of them. `Options' is a map or a
%% `{Key, Value}' list. Returns `ok', `{error, already_started}',
%% `{error, not_started}' (start beamprof first, or give the same options as
%% its `continuous' option), `{error, {unsupported, Reason}}' where the
%% native sampler cannot run; raises `{badarg, Message}' for bad options.
%% While it runs, `flame_graph(Ms, Path)' and cluster flame graphs sample
%% from its sampler, at its rate, and `native_start/1' answers `{error,
%% {already_started, continuous}}'. See `beamprof_continuous' and
%% doc/continuous.md.
-spec start_continuous(Options) -> ok | {error, term()} when
      Options :: beamprof_continuous:options().
start_continuous(Options) ->
    beamprof_continuous:start(Options).

%% @doc Stops continuous profiling (the period under way is not delivered).
%% `ok' also when none runs.
-spec stop_continuous() -> ok.
stop_continuous() ->
    beamprof_continuous:stop().

%% @doc Continuous profiling's state (`running', `waiting' or
%% `unavailable'), `hz', `period', `periods' delivered, and per sink its
%% counts (`sent', `failed', `dropped', `lost'), `queue' length,
%% `failing' and `last_error'; `undefined' when it is not running.
-spec continuous_info() -> beamprof_continuous:info() | undefined.
continuous_info() ->
    beamprof_continuous:info().

%% @doc Stops beamprof: the sampler thread is joined, the
%% `scheduler_wall_time' flag left as it was found.
-spec stop() -> ok.
stop() ->
    case application:stop(beamprof) of
        ok -> ok;
        {error, {not_started, beamprof}} -> ok
    end.

%% @doc The latest sample (at most one interval old): schedulers, run
%% queues, memory, counts, rates, the gate (`gate_info/0' now), `scan' (the
%% periodic scan's last pass: `#{source, warnings}', or `undefined' before
%% it), `system_monitor' (`beamprof_monitor:status/0') and `warnings'
%% (`beamprof_warnings': what the sampler could not measure, such as
%% scheduler threads not found, a blind gate, the scan's last fallbacks).
%% See doc/events.md for the keys (the `[beamprof, vm, sample]' event).
-spec snapshot() -> beamprof_vm:sample() | {error, not_started}.
snapshot() ->
    case beamprof_sampler:snapshot() of
        {error, _} = Error -> Error;
        Sample -> with_gate_and_scan(Sample#{system_monitor => beamprof_monitor:status()})
    end.

%% The gate as it is now (the sample's may be an interval old) and the
%% periodic scan's last source and warnings, their warnings merged in.
with_gate_and_scan(Sample) ->
    Gate = beamprof_gate:info(),
    Scan = beamprof_scan_server:last(),
    ScanWarnings = case Scan of #{warnings := Ws} -> Ws; undefined -> [] end,
    Warnings = [W || W <- maps:get(warnings, Sample, []),
                     maps:get(code, W) =/= gate_blind],
    Sample#{gate => Gate, scan => Scan,
            warnings => beamprof_warnings:merge(
                          beamprof_warnings:merge(Warnings, maps:get(warnings, Gate)),
                          ScanWarnings)}.

%% @doc Prints one screen (`beamprof_top:render/3'): scheduler utilization
%% per scheduler and in total, memory (the VM's RSS, `erlang:memory/0' by
%% kind, the limit in force and the figure the load gate compares with it),
%% the gate and the system monitor, and the top 5 processes by message queue,
%% by memory and by reductions over the scan's window. Every line fits the
%% terminal's width (`io:columns/0' on the caller's group leader; 80 columns
%% when it has none, such as a pipe); `top(#{width => N})' asks for another.
-spec top() -> ok | {error, not_started}.
top() ->
    top(#{}).

%% @doc `top(live)': prints `top()' in place every second until Enter (or q
%% and Enter) is pressed. A shell reads whole lines, so a single key cannot
%% stop it. Each frame fits the terminal as it is then (its columns and rows:
%% tables lose rows first), so the header stays on screen.
%%
%% `top(Options)', a map or a `{Key, Value}' list: `width' (an integer of at
%% least 60: columns of every line, instead of the terminal's) and `live'
%% (`true': as `top(live)'); for example `top(#{width => 132, live => true})'.
%% An unknown option, a bad value or any other argument raises `badarg' with
%% a message naming it (for a table of processes, `top(Key, N)').
%%
%% `top(cluster)': one screen for the cluster (this node and every visible
%% connected node): a line per node (normal schedulers' utilization, RSS,
%% Erlang memory, the gate, the process count, the largest mailbox), a line
%% per node that did not answer saying why (down, timed out after 5 s,
%% beamprof missing or incompatible there), and the cluster's top 10
%% processes by message queue with their nodes. Each node needs beamprof
%% loaded (see `top/3'); its figures need it started there.
-spec top(live | cluster | Options) -> ok | {error, not_started} when
      Options :: #{width => pos_integer(), live => boolean()} | [{width | live, term()}].
top(live) ->
    top(#{live => true});
top(cluster) ->
    beamprof_top:print(beamprof_cluster:screen(#{}));
top(Options) when is_map(Options); is_list(Options) ->
    case beamprof_top:options(Options) of
        #{live := true} = Opts -> top_live(maps:remove(live, Opts));
        Opts -> top_once(maps:remove(live, Opts))
    end;
top(Other) ->
    erlang:error({badarg, lists:flatten(
                            io_lib:format("Expected live (top(live)), cluster (top(cluster)) or "
                                          "options (top(#{width => 100})), got: ~0tP; for a "
                                          "table of processes use top(Key, N), e.g. "
                                          "top(memory, 10)",
                                          [Other, 8]))}, [Other]).

top_once(Opts) ->
    case screen(Opts#{width => maps:get(width, Opts, beamprof_top:columns())}) of
        {error, _} = Error -> Error;
        Text -> beamprof_top:print(Text)
    end.

top_live(Opts) ->
    case whereis(beamprof_sampler) of
        undefined -> {error, not_started};
        _ -> beamprof_top:live(fun(Geometry) -> case screen(Geometry) of
                                                     {error, _} -> "beamprof is not running\n";
                                                     Text -> Text
                                                 end
                               end, Opts)
    end.

screen(Geometry) ->
    case snapshot() of
        {error, _} = Error -> Error;
        Sample -> beamprof_top:render(Sample, top_tables(5), Geometry)
    end.

%% The three tables of one scan. A scan that fails leaves the VM's figures
%% on the screen and says why the tables are missing.
top_tables(N) ->
    try beamprof_scan:top_all(N)
    catch Class:Reason -> {error, {Class, Reason}}
    end.

%% @doc The `N' processes with the largest `Key' (`message_queue_len',
%% `memory', `reductions' over a window, `total_heap_size') as rows; see
%% `beamprof_scan:top/3'. Yields every millisecond; its heap stays flat.
-spec top(Key :: beamprof_scan:key(), N :: 1..10000) -> [beamprof_scan_rows:row()].
top(Key, N) ->
    beamprof_scan:top(Key, N).

%% @doc `top/2' over a cluster: the `N' processes with the largest `Key'
%% over the nodes of `Options', merged and ranked, each row with its `node'.
%% Returns `{ok, Rows, Failed}', `Failed' a list of `{Node, Reason}' for the
%% nodes that gave no rows: `noconnection' (down), `timeout',
%% `{beamprof_missing, Message}', `{incompatible, Info}'. Options: `nodes'
%% (`all', the default: `[node() | nodes()]'; or a list of nodes) and
%% `timeout' (ms, default 5000: the call returns within it, whatever the
%% nodes do). Every node asked must have beamprof loaded (on its code path;
%% not necessarily started). The pids are the nodes' own (a remote pid
%% prints `<N.87.0>' here); names are read on their node. See
%% `beamprof_cluster'.
-spec top(Key, N, Options) -> {ok, [Row], Failed} when
      Key :: beamprof_scan:key(), N :: 1..10000, Options :: beamprof_cluster:options(),
      Row :: #{node := node(), _ => _}, Failed :: beamprof_cluster:failed().
top(Key, N, Options) ->
    beamprof_cluster:top(Key, N, Options).

%% @doc `snapshot/0' of every node of `Options' (`nodes', `timeout', as
%% `top/3'): `{ok, #{Node => Sample}, Failed}', the shape of `top/3''s
%% answer; a node where beamprof is loaded but not started is in `Failed'
%% as `not_started'. See `beamprof_cluster'.
-spec snapshot(Options) -> {ok, #{node() => beamprof_vm:sample()}, Failed} when
      Options :: beamprof_cluster:options(), Failed :: beamprof_cluster:failed().
snapshot(Options) ->
    beamprof_cluster:snapshot(Options).

%% @doc The `N' ports with the largest `Key' (`queue_size', `memory',
%% `input', `output') as rows; see `beamprof_scan:top_ports/3'.
-spec top_ports(Key :: beamprof_scan:port_key(), N :: 1..10000) ->
          [beamprof_scan_rows:port_row()].
top_ports(Key, N) ->
    beamprof_scan:top_ports(Key, N).

%% @doc `open' when profiling is allowed now, `closed' when the node is too
%% busy or too short of memory. `open' when beamprof is not running. Always
%% `open' or `closed': when the C thread cannot see the scheduler threads the
%% gate still answers, decided on `scheduler_wall_time' (see `gate_info/0').
-spec gate() -> open | closed.
gate() ->
    beamprof_nif:gate().

%% @doc The gate with its reason: `#{state, reason, source, running,
%% changed_at, blind, heartbeat_ms, pings, reported_at, warnings}';
%% `reason' is `none', `{scheduler, Ratio}', `{memory, Ratio}', or
%% `not_running' when beamprof is not running (the gate then reads `open').
%% `blind => true' with a `gate_blind' warning: the C thread sees no
%% scheduler thread and the gate runs on `scheduler_wall_time' (`source' is
%% `erlang', or `starved' when the Erlang side could not answer within a
%% tick). See `beamprof_gate:info/0'.
-spec gate_info() -> map().
gate_info() ->
    beamprof_gate:info().

%% @doc The C sampler's ticks of the last minute (at most 600), newest
%% first: what the gate saw at each tick. `mono_ns' (`erlang:monotonic_time()'
%% in ns), `scheduler' (the schedulers' busy ratio, `-1.0' when it was not
%% known that tick) and its `source', `os_cpu' (the scheduler threads' OS CPU
%% ratio), `memory_used', `memory_limit' (bytes) and `memory_ratio', `gate'
%% (`open' or `closed' after the tick) and `demand' (the figure the gate
%% compared with its marks). `[]' before beamprof first started in this VM;
%% ticks of earlier runs stay (a stop keeps them, a new run adds to them).
-spec gate_history() -> [#{mono_ns := integer(), scheduler := float(),
                           source := beamprof_nif:sched_source(), os_cpu := float(),
                           memory_used := non_neg_integer(),
                           memory_limit := non_neg_integer(), memory_ratio := float(),
                           gate := open | closed, demand := float()}].
gate_history() ->
    [#{mono_ns => Mono, scheduler => Sched, source => Source, os_cpu => OsCpu,
       memory_used => Used, memory_limit => Limit, memory_ratio => MemRatio,
       gate => Gate, demand => Demand}
     || {Mono, Sched, Source, OsCpu, Used, Limit, MemRatio, Gate, Demand}
            <- beamprof_nif:history()].

%% @doc Attaches `Fun' to `EventName' under the unique `Id': `Fun(EventName,
%% Measurements, Metadata, Config)' runs in the process that emits the event.
%% Running or not: a handler attached before `start/0,1' is kept and
%% installed when beamprof starts (in telemetry if it is loaded by then), and
%% handlers stay attached across `stop()' and `start()' until `detach/1'. A
%% handler that raises is detached and an error is logged (printed by a
%% plain `erl' shell). A bad argument, or the event name and the fun
%% swapped, raises `{badarg, Message}' saying which.
-spec attach(Id, EventName, Fun, Config) -> ok | {error, already_exists} when
      Id :: term(), EventName :: event_name(), Fun :: handler_fun(), Config :: term().
attach(Id, EventName, Fun, Config) ->
    beamprof_events:attach(Id, EventName, Fun, Config).

%% @doc Attaches `Fun' to every name of `EventNames' under the unique `Id';
%% see `attach/4'.
-spec attach_many(Id, EventNames, Fun, Config) -> ok | {error, already_exists} when
      Id :: term(), EventNames :: [event_name()], Fun :: handler_fun(), Config :: term().
attach_many(Id, EventNames, Fun, Config) ->
    beamprof_events:attach_many(Id, EventNames, Fun, Config).

%% @doc Detaches the handler `Id' from all its events; a handler kept for
%% beamprof's start is forgotten.
-spec detach(Id) -> ok | {error, not_found} when Id :: term().
detach(Id) ->
    beamprof_events:detach(Id).

%% @doc The handlers whose event names start with `Prefix' (`[]': all), the
%% kept ones while beamprof is not running.
-spec list_handlers(Prefix) -> [map()] when Prefix :: [atom()].
list_handlers(Prefix) ->
    beamprof_events:list_handlers(Prefix).

%% @doc Writes `Profile' as a flame graph file: `svg' (static image),
%% `html' (interactive: zoom, search), `speedscope' (JSON for
%% https://www.speedscope.app), `folded' (`a;b;c 42' lines) or `pprof'
%% (gzipped profile.proto for `go tool pprof', Pyroscope, Parca, Grafana;
%% native profiles keep their addresses, mappings and thread kinds, see
%% `beamprof_pprof' and doc/pprof.md). `Profile' is
%% `#{stacks := [{Frames, Weight}]}' with frames root first as binaries,
%% and optionally `title' and `unit' (`samples', `microseconds', `bytes').
%% The file is created mode 0600, replaced atomically, never written
%% through a symbolic link. Returns `{ok, Path}', `{error, {badarg,
%% Message}}' for a bad profile or format (or the profile and the path
%% swapped), or `{error, Posix}' for the file (see `beamprof_flame' and
%% `beamprof_file').
-spec write_profile(Profile, Path, Format) -> {ok, Path} | {error, Reason} when
      Profile :: beamprof_flame:profile(), Path :: file:name_all() | unicode:chardata(),
      Format :: beamprof_flame:format(), Reason :: term().
write_profile(Profile, Path, Format) ->
    case is_map(Path) andalso not is_map(Profile) of
        true -> {error, {badarg, "Arguments in the wrong order: write_profile(Profile, Path, "
                                 "Format) takes the profile first"}};
        false -> beamprof_flame:write(Profile, Path, Format)
    end.

%% @doc Starts the native sampler: every scheduler thread of the chosen
%% kinds is sampled on its own CPU clock (idle schedulers cost nothing).
%% Options: `hz' (1..10000, default 99; the kernel tick caps the effective
%% rate), `threads' (`[normal, dirty_cpu, dirty_io]'), `duration' (ms, then
%% it stops by itself), `depth'. `{error, already_started}' while another
%% run is on, `{error, {already_started, continuous}}' while continuous
%% profiling has the node's one sampler. See `beamprof_native'.
-spec native_start(Opts) -> {ok, pid()} | {error, Reason} when
      Opts :: beamprof_native:options(), Reason :: term().
native_start(Opts) ->
    beamprof_native:start(Opts).

%% @doc Stops the native sampler and returns its profile (write it with
%% write_profile/3; filter it with beamprof_native:filter/2).
-spec native_stop() -> {ok, beamprof_native:profile()} | {error, not_running}.
native_stop() ->
    beamprof_native:stop().

%% @doc The N hottest functions of the running native profile:
%% `#{frame, self, total, self_pct, total_pct}', hottest self first.
-spec native_top(N :: pos_integer()) -> [map()] | {error, not_running}.
native_top(N) ->
    beamprof_native:top(N).

%% @doc The native sampler's library: whether it loaded (else
%% `{error, {unsupported, Reason}}'), its counters over the last run
%% (samples, drops, `effective_hz', its own cost), and how it reads Erlang
%% frames on this VM (`frame_pointers', `frame_layout_source', `mode').
%% See `beamprof_native_nif:info/0' for every key.
-spec native_info() -> beamprof_native_nif:info()
                     | {error, {unsupported, beamprof_native_nif:unsupported()}}.
native_info() ->
    beamprof_native_nif:info().

%% --- the profiling API (beamprof_profile) ----------------------------------------

%% @doc Runs `Fun' profiled as `Options' say and returns its result (or
%% re-raises its exception). Options: `strategy' (`sample' default, `memory',
%% `calls', `call_graph', `fprof', `eprof', `cprof', `flame_graph'), `rate'
%% (0.0-1.0), `duration', `interval', `threshold' (ms), `env', `enabled',
%% `async', `emit_metrics', `check_load', `metadata', `output', `format'.
%% See `beamprof_profile' and doc/profiling.md.
-spec profile(Fun, Options) -> term() when Fun :: fun(() -> term()), Options :: map() | list().
profile(Fun, Options) ->
    beamprof_profile:profile(Fun, Options).

%% @doc Samples `Fun' only when it runs longer than `threshold' ms (default
%% 100) and emits `slow_operation' for it.
-spec profile_if_slow(Fun, Options) -> term() when Fun :: fun(() -> term()), Options :: map() | list().
profile_if_slow(Fun, Options) ->
    beamprof_profile:profile_if_slow(Fun, Options).

%% @doc Samples a small fraction (`sample_rate', default 0.001) of the calls,
%% only while the gate is open.
-spec profile_production(Fun, Options) -> term() when Fun :: fun(() -> term()), Options :: map() | list().
profile_production(Fun, Options) ->
    beamprof_profile:profile_production(Fun, Options).

%% @doc Memory before, after and delta around `Fun' (`threshold' in bytes).
-spec profile_memory(Fun, Options) -> term() when Fun :: fun(() -> term()), Options :: map() | list().
profile_memory(Fun, Options) ->
    beamprof_profile:profile_memory(Fun, Options).

%% @doc Counts the calls `Fun' makes. On OTP 27+ `calls', `eprof' and `cprof'
%% run in a trace session of their own, beside `dbg' or any other tracer; a
%% strategy on global tracing (`fprof', `call_graph'; every one on OTP 25 and
%% 26) answers `{error, {busy, Strategy}}' while another such profile runs on
%% the node, and says in its `warnings' when another tracer was active.
-spec profile_calls(Fun, Options) -> term() when Fun :: fun(() -> term()), Options :: map() | list().
profile_calls(Fun, Options) ->
    beamprof_profile:profile_calls(Fun, Options).

%% @doc Writes a flame graph. With a fun: samples `Fun' (the calling
%% process's stacks) and writes a flame graph to `output' (`format' from the
%% extension unless given: `.svg', `.html', `.json', `.folded', `.pb.gz' for
%% pprof); returns `Fun''s result. `Options' may be the
%% output path alone (`"work.svg"', `<<"work.svg">>'), as in the integer
%% form. With an integer:
%% samples the whole VM's native stacks for Ms milliseconds and writes a
%% CPU flame graph; Opts is an output path (`"cpu.svg"', `<<"cpu.html">>',
%% any chardata) or a map with `output', `format' and native_start/1's
%% options; returns `{ok, #{samples, weighted, effective_hz, truncated,
%% frame_source, hz, hz_under_gate, gate_closed_ms, gate_closed_pct, gated,
%% stray, warnings, file}}' (see `beamprof_native'). Both check every
%% option, and that the output's directory exists and is writable, before
%% anything runs. With `nodes' in the map (`all' or a list of nodes), every
%% node samples at once (each needs beamprof loaded and its native sampler)
%% and one graph holds them all under a root frame per node; `timeout' is
%% then the margin over `Ms' the call waits (default 5000 ms), and the
%% answer `{ok, Summary, Failed}' (per-node figures under `nodes') or
%% `{error, {all_failed, Failed}}': see `beamprof_cluster:flame_graph/2'. A bad
%% option raises `{badarg, Message}', an unwritable output answers
%% `{error, {unwritable, Path, Reason}}' at once. A write that fails after
%% sampling is logged; the integer form answers `{error, {write_failed,
%% Path, Reason}}', the fun form returns `Fun''s result and says it in its
%% events (see `beamprof_profile'). Anything else first (or the two
%% arguments swapped) raises `{badarg, Message}' saying what was expected.
-spec flame_graph(Fun, Options) -> term() when
      Fun :: fun(() -> term()), Options :: map() | list() | file:filename_all();
                 (Ms, Opts) -> {ok, map()} | {ok, map(), Failed} | {error, term()} when
      Ms :: pos_integer(), Opts :: file:filename() | map(),
      Failed :: beamprof_cluster:failed().
flame_graph(Fun, Output) when is_function(Fun, 0), is_binary(Output) ->
    beamprof_profile:flame_graph(Fun, #{output => Output});
flame_graph(Fun, [C | _] = Output) when is_function(Fun, 0), is_integer(C) ->
    beamprof_profile:flame_graph(Fun, #{output => Output});
flame_graph(Fun, Options) when is_function(Fun, 0) ->
    beamprof_profile:flame_graph(Fun, Options);
flame_graph(Ms, #{nodes := _} = Opts) when is_integer(Ms) ->
    beamprof_cluster:flame_graph(Ms, Opts);
flame_graph(Ms, Opts) when is_integer(Ms) ->
    beamprof_native:flame_graph(Ms, Opts);
flame_graph(Options, Fun) when is_function(Fun, 0) ->
    erlang:error({badarg, "Arguments in the wrong order: flame_graph(Fun, Options) takes the "
                          "fun first"}, [Options, Fun]);
flame_graph(Output, Ms) when is_integer(Ms) ->
    erlang:error({badarg, "Arguments in the wrong order: flame_graph(Ms, Output) takes the "
                          "duration first"}, [Output, Ms]);
flame_graph(First, Second) ->
    erlang:error({badarg, lists:flatten(
                            io_lib:format("Expected a fun of arity 0 (profile it) or a duration "
                                          "in ms (sample the VM) first, got: ~0tP",
                                          [First, 8]))}, [First, Second]).

%% --- reading a flight recording (beamprof_recording) ---------------------------

%% @doc Reads the flight recording at `Path' (a file the recorder wrote, on
%% this node or another, alive or killed): `{ok, Records}', oldest first.
%% Each record is a map with `kind' (`header', `tick', `interval', `scan',
%% `threshold', `monitor', `gate', `profile', `note'), the fields of that
%% kind, `time' (system time, ms), `seq' and `mono_ns'. Frames torn by a
%% kill, or being written while this reads, are skipped (`read_recording/2'
%% with `info => true' counts them). Errors: `{error, not_a_recording}',
%% `{error, {truncated, Info}}', `{error, {corrupt, header | Info}}',
%% `{error, {unsupported_version, V}}', `{error, {file, Posix}}'; never a
%% crash, and no atom is created. See `beamprof_recording'.
-spec read_recording(Path) -> {ok, [beamprof_recording:record_map()]} | {error, term()} when
      Path :: file:name_all().
read_recording(Path) ->
    beamprof_recording:read(Path).

%% @doc Reads the records of the recording at `Path' that `Options'
%% select: `since' and `until' (system time in ms, inclusive), `kinds' (a
%% list of record kinds); `info => true' answers `{ok, Records, Info}',
%% `Info' saying how many frames were taken and how many skipped (torn,
%% undecodable, duplicate sequence numbers), and the header's ring size,
%% OS pid and open time. A bad option raises `{badarg, Message}' naming it.
-spec read_recording(Path, Options) ->
          {ok, [beamprof_recording:record_map()]}
              | {ok, [beamprof_recording:record_map()], beamprof_recording:info()}
              | {error, term()} when
      Path :: file:name_all(), Options :: beamprof_recording:options().
read_recording(Path, Options) ->
    beamprof_recording:read(Path, Options).

%% @doc Writes one HTML page with the timeline of the recording at `Path'
%% to `Out': utilization per scheduler, memory against the limit, run
%% queues, gate flips, the largest mailboxes, as inline SVG (no script, no
%% network), and what the recording lacked. Returns `{ok, Out}', the
%% reader's `{error, Reason}', or `{error, {unwritable, Out, Reason}}'. The
%% file is created mode 0600, never through a symbolic link. See
%% `beamprof_recording_report'.
-spec recording_report(Path, Out) -> {ok, Out} | {error, term()} when
      Path :: file:name_all(), Out :: file:name_all().
recording_report(Path, Out) ->
    beamprof_recording_report:write(Path, Out).
