defmodule Beamprof do
  @moduledoc """
  Elixir facade over `:beamprof`, the Erlang API of beamprof.

  beamprof samples scheduler utilization, run queues, memory and system counts
  from a C thread and a supervised Erlang sampler, emits telemetry-style events
  and keeps a load gate (`gate/0`) that every profiling path asks first, so it
  backs off by itself when the node is hot.

  Every function here delegates to `:beamprof` and returns what it returns:
  option validation, errors and documentation of costs live on the Erlang
  side. The only Elixir-specific work is `start/1` turning a keyword list into
  the map the Erlang side takes.

      :ok = Beamprof.start(interval: 500)
      :ok = Beamprof.attach("log-gate", [:beamprof, :gate, :closed], &MyApp.gate_closed/4, nil)
      Beamprof.gate()
      #=> :open
      Beamprof.top()

  Events (with the default `event_prefix` of `[:beamprof]`):
  `[:beamprof, :vm, :sample]`, `[:beamprof, :scheduler, :utilization]`,
  `[:beamprof, :gate, :open]` and `[:beamprof, :gate, :closed]`; the VM's
  system monitor as `[:beamprof, :monitor, kind]` (`:long_gc`,
  `:long_schedule`, `:large_heap`, `:busy_port`, `:busy_dist_port`), and long
  message queues as `[:beamprof, :process, :long_message_queue]` (from the
  scan, and on OTP 27+ from the system monitor between scans). When the
  `telemetry` library is loaded they go through `:telemetry.execute/3`, so
  handlers attached with `:telemetry.attach/4` see them too.
  """

  @typedoc "An event name: a non-empty list of atoms."
  @type event_name :: [atom(), ...]

  @typedoc "A handler id, unique across all events."
  @type handler_id :: term()

  @typedoc "A handler: called as `fun.(event, measurements, metadata, config)`."
  @type handler_function :: (event_name(), map(), map(), term() -> any())

  @typedoc """
  Start options, as a keyword list or a map: `interval`, `tick`,
  `scheduler_high`, `scheduler_low`, `memory_high`, `memory_low`,
  `reopen_ticks`, `memory_limit`, `event_prefix`, `vm_events`, `vm_internals`
  (`false`: never read the VM's internal structures), and the scan's options
  (see doc/options.md).
  """
  @type options :: keyword() | map()

  @doc """
  Starts beamprof with the options in the application environment
  (`application:ensure_all_started(beamprof)`). Returns `:ok` when it is
  running, started here or already (mix starts beamprof as a dependency).
  """
  @spec start() :: :ok | {:error, term()}
  defdelegate start(), to: :beamprof

  @doc """
  Starts beamprof with `opts`, a keyword list or a map.

  A keyword list is turned into a map (a later duplicate key wins, as in
  `Map.new/1`); the options are validated by `:beamprof.start/1`, which
  raises an `ArgumentError` naming an unknown key or an ill-typed value,
  running or not.

      Beamprof.start(interval: 500, scheduler_high: 0.9)

  When beamprof is already running (mix starts it as a dependency, with the
  options of `config :beamprof`), nothing restarts: `:ok` when each option
  given has the value that runs, else `{:error, {:already_started,
  differences}}` naming each option that differs:

      Beamprof.start(tick: 50)
      #=> {:error, {:already_started, %{tick: %{running: 100, asked: 50}}}}

  To run with other options, put them in `config :beamprof, tick: 50`, or
  `stop/0` then `start/1`.
  """
  @spec start(options()) ::
          :ok | {:error, {:already_started, %{atom() => %{running: term(), asked: term()}}}}
          | {:error, term()}
  def start(opts) when is_list(opts) do
    if Keyword.keyword?(opts), do: :beamprof.start(Map.new(opts)), else: :beamprof.start(opts)
  end

  def start(opts), do: :beamprof.start(opts)

  @doc """
  Starts the flight recorder: `opts` is `file:` (the path) and `size:` (the
  ring's bytes, default 16 MiB), a keyword list or a map. The recording is a
  fixed-size memory-mapped file that survives a SIGKILL of the node (see
  `:beamprof.start_recorder/1`). Returns `:ok` or `{:error, reason}`
  (`:locked`, `:not_a_recording`, `{:unwritable, errno}`, `:already_open`).

      Beamprof.start_recorder(file: "/var/lib/app/beamprof.rec")
  """
  @spec start_recorder(keyword() | map()) :: :ok | {:error, term()}
  def start_recorder(opts) when is_list(opts), do: :beamprof.start_recorder(Map.new(opts))
  def start_recorder(opts), do: :beamprof.start_recorder(opts)

  @doc "Stops the flight recorder (unmaps and closes the file, no fsync)."
  @spec stop_recorder() :: :ok
  defdelegate stop_recorder(), to: :beamprof

  @doc "The open recording's file and counters, or `:undefined`."
  @spec recorder_info() :: map() | :undefined
  defdelegate recorder_info(), to: :beamprof

  @doc """
  Starts continuous profiling on a running beamprof: the native sampler stays
  on at `hz:` (default 19) and every `period:` ms (default 60_000) the
  period's profile goes to the `sink:` (`{:dir, dir}`, `{:dir, dir, keep: n}`,
  `:telemetry`, `{:http, url, opts}` for Pyroscope, or a list of them). A
  keyword list or a map; the same options as `config :beamprof, continuous:
  [...]`. Returns `:ok` or `{:error, reason}` (`:already_started`,
  `:not_started`, `{:unsupported, reason}` where there is no native sampler).
  See `:beamprof.start_continuous/1`.

      Beamprof.start_continuous(period: 60_000,
        sink: {:http, "http://pyroscope:4040", app: "shop", tenant: "team-a"})
  """
  @spec start_continuous(keyword() | map()) :: :ok | {:error, term()}
  defdelegate start_continuous(opts), to: :beamprof

  @doc "Stops continuous profiling (the period under way is not delivered)."
  @spec stop_continuous() :: :ok
  defdelegate stop_continuous(), to: :beamprof

  @doc """
  Continuous profiling's state, rate, period, periods delivered and each
  sink's counts (`sent`, `failed`, `dropped`, `lost`, `queue`, `failing`,
  `last_error`), or `:undefined` when it is not running.
  """
  @spec continuous_info() :: map() | :undefined
  defdelegate continuous_info(), to: :beamprof

  @doc "Stops beamprof: the sampler, the C thread and the gate."
  @spec stop() :: :ok
  defdelegate stop(), to: :beamprof

  @doc """
  The latest sample: a map with `schedulers`, `utilization`, `run_queues`,
  `memory`, `system`, `rates`, `gate`, `window_ms` and `time`, or
  `{:error, :not_started}`.
  """
  @spec snapshot() :: map() | {:error, :not_started}
  defdelegate snapshot(), to: :beamprof

  @doc """
  May I profile now? `:open` or `:closed`. Costs tens of nanoseconds (an
  atomic read): call it on hot paths. `:open` when beamprof is not running.
  """
  @spec gate() :: :open | :closed
  defdelegate gate(), to: :beamprof

  @doc """
  The gate's state and why: a map with `state`, `reason`, `source`,
  `running` and `changed_at`.
  """
  @spec gate_info() :: map()
  defdelegate gate_info(), to: :beamprof

  @doc """
  The C sampler's ticks of the last minute, newest first, as maps: `mono_ns`,
  `scheduler`, `source`, `os_cpu`, `memory_used`, `memory_limit`,
  `memory_ratio`, `gate` and `demand`.
  """
  @spec gate_history() :: [map()]
  defdelegate gate_history(), to: :beamprof

  @doc """
  Attaches `fun` to `event` under the unique `id`. Returns
  `{:error, :already_exists}` when `id` is taken. A handler attached before
  beamprof starts is kept and installed when it starts (in telemetry if it
  is loaded by then); handlers stay attached across `stop/0` and `start/1`
  until `detach/1`. A handler that raises is detached and the failure
  logged (a plain shell prints it).
  """
  @spec attach(handler_id(), event_name(), handler_function(), term()) ::
          :ok | {:error, :already_exists}
  defdelegate attach(id, event, fun, config), to: :beamprof

  @doc "Attaches `fun` to every event in `events` under the one `id`."
  @spec attach_many(handler_id(), [event_name()], handler_function(), term()) ::
          :ok | {:error, :already_exists}
  defdelegate attach_many(id, events, fun, config), to: :beamprof

  @doc "Detaches the handler `id` from all its events (a kept one too)."
  @spec detach(handler_id()) :: :ok | {:error, :not_found}
  defdelegate detach(id), to: :beamprof

  @doc """
  The handlers attached to events starting with `prefix`, as maps with `id`,
  `event_name`, `function` and `config`.
  """
  @spec list_handlers([atom()]) :: [map()]
  defdelegate list_handlers(prefix), to: :beamprof

  @doc """
  Prints one screen: scheduler utilization per scheduler and in total,
  memory (the VM's RSS, `:erlang.memory/0` by kind, the limit in force and
  the figure the load gate compares with it), the gate, the system monitor,
  and the top 5 processes by message queue, by memory and by reductions over
  the scan's window. Every line fits the terminal's width (80 columns when
  the device has none). Returns `{:error, :not_started}` when beamprof is
  not running.

  `top(:live)` redraws it in place every second until Enter (or `q` and
  Enter) is pressed: IEx reads whole lines, so a single key cannot stop it.
  """
  @spec top() :: :ok | {:error, :not_started}
  defdelegate top(), to: :beamprof

  @doc """
  `top(:live)`: prints `top/0`'s screen in place every second until Enter (or
  `q` and Enter) is pressed, each frame fitted to the terminal's columns and
  rows so that the header stays on screen.

  `top(:cluster)`: one screen for the cluster (this node and every connected
  one): a line per node (schedulers, memory, gate, largest mailbox), a line
  per node that did not answer saying why (down, no answer within 5 s,
  beamprof missing or incompatible there), and the cluster's top processes
  by message queue with their nodes. Each node needs beamprof loaded.

  `top(options)`, a map or a keyword list: `width` (an integer of at least
  60: columns of every line, instead of the terminal's) and `live` (`true`:
  as `top(:live)`), e.g. `top(width: 132, live: true)`. A bad option raises
  `ArgumentError` naming it.
  """
  @spec top(:live | :cluster | %{optional(:width) => pos_integer(), optional(:live) => boolean()}
            | [width: pos_integer(), live: boolean()]) :: :ok | {:error, :not_started}
  def top(mode), do: :beamprof.top(mode)

  @typedoc """
  Options of the cluster calls, a keyword list or a map: `nodes` (`:all`,
  the default: `[node() | Node.list()]`, or a list of nodes) and `timeout`
  (ms, default 5000: the call returns within it whatever the nodes do).
  """
  @type cluster_options :: keyword() | map()

  @typedoc """
  A node that gave no answer and why: `:noconnection` (down), `:timeout`,
  `{:beamprof_missing, message}`, `{:incompatible, info}`, `:not_started`
  (`snapshot/1`), `{:crashed, {class, reason}}`, or the operation's own
  error there (`{:unsupported, why}` for a flame graph).
  """
  @type failed :: [{node(), term()}]

  @doc """
  `top/2` over a cluster: the top `n` processes by `key` over the nodes of
  `opts` (see `t:cluster_options/0`), merged and ranked, each row with its
  `node`. Returns `{:ok, rows, failed}`. Every node asked needs beamprof
  loaded (not necessarily started); one that lacks it is in `failed` as
  `{:beamprof_missing, message}`.

      {:ok, [top | _], failed} = Beamprof.top(:message_queue_len, 10, nodes: :all)
  """
  @spec top(atom(), pos_integer(), cluster_options()) :: {:ok, [map()], failed()}
  def top(key, n, opts), do: :beamprof.top(key, n, options(opts))

  @doc """
  `snapshot/0` of every node of `opts` (see `t:cluster_options/0`):
  `{:ok, %{node => sample}, failed}`, a node where beamprof is loaded but not
  started in `failed` as `:not_started`.
  """
  @spec snapshot(cluster_options()) :: {:ok, %{node() => map()}, failed()}
  def snapshot(opts), do: :beamprof.snapshot(options(opts))

  # A keyword list becomes a map; anything else goes to :beamprof as it is,
  # which checks it and raises an ArgumentError naming what is wrong.
  defp options(opts) when is_list(opts) and opts != [] do
    if Keyword.keyword?(opts), do: Map.new(opts), else: opts
  end

  defp options(opts), do: opts

  @typedoc """
  A profile: `stacks` is a list of `{frames, weight}` with frames root first
  as binaries (`"mymod:work/1"`, `"beam.smp+0x1a2b"`) and a positive integer
  weight; `title` and `unit` (`:samples`, `:microseconds`, `:bytes`) are
  optional.
  """
  @type profile :: %{
          required(:stacks) => [{[binary()], pos_integer()}],
          optional(:title) => String.t(),
          optional(:unit) => :samples | :microseconds | :bytes,
          optional(atom()) => term()
        }

  @doc """
  Writes `profile` as a flame graph file in `format`: `:svg` (static image),
  `:html` (interactive: click to zoom, search), `:speedscope` (JSON for
  https://www.speedscope.app), `:folded` (`a;b;c 42` lines) or `:pprof`
  (gzipped profile.proto for `go tool pprof`, Pyroscope, Parca, Grafana; see
  doc/pprof.md).

  The file is created with mode 0600, replaced atomically and never written
  through a symbolic link. Returns `{:ok, path}`, `{:error, {:badarg, message}}`
  for a bad profile or format, or `{:error, posix}` for the file.

      Beamprof.write_profile(%{stacks: [{["m:f/0", "m:g/1"], 3}]}, "cpu.html", :html)
  """
  @spec write_profile(profile(), Path.t(), :svg | :html | :speedscope | :folded | :pprof) ::
          {:ok, Path.t()} | {:error, term()}
  defdelegate write_profile(profile, path, format), to: :beamprof

  @doc """
  Starts the native sampler (VM-wide CPU profile of the schedulers' native
  stacks). Options: `hz` (default 99), `threads` (`[:normal, :dirty_cpu,
  :dirty_io]`), `duration` (ms), `depth`. Start the VM with `+JPperf map`
  for full Erlang stacks.
  """
  @spec native_start(map()) :: {:ok, pid()} | {:error, term()}
  defdelegate native_start(opts), to: :beamprof

  @doc "Stops the native sampler and returns its profile."
  @spec native_stop() :: {:ok, profile()} | {:error, :not_running}
  defdelegate native_stop(), to: :beamprof

  @doc "The `n` hottest functions of the running native profile, self and total %."
  @spec native_top(pos_integer()) :: [map()] | {:error, :not_running}
  defdelegate native_top(n), to: :beamprof

  @doc """
  The native sampler's library: its counters over the last run and how it
  reads Erlang frames on this VM (`frame_pointers`, `frame_layout_source`,
  `mode`), or `{:error, {:unsupported, reason}}` where it did not load.
  """
  @spec native_info() :: map() | {:error, {:unsupported, term()}}
  defdelegate native_info(), to: :beamprof

  @typedoc """
  Options of the profiling API, as a keyword list or a map: `strategy`,
  `rate`, `sample_rate`, `duration`, `interval`, `threshold`, `env`,
  `enabled`, `async`, `emit_metrics`, `check_load`, `metadata`, `output`,
  `format` (see doc/profiling.md).
  """
  @type profile_options :: keyword() | map()

  @doc """
  Runs `fun` profiled (strategy `:sample` unless given) and returns its
  result; an exception is re-raised unchanged after the exception event.

      Beamprof.profile(fn -> MyApp.work(arg) end, strategy: :sample, rate: 0.01)

  The result is always `fun`'s, profiled or not (here `enabled: false` turns
  profiling off):

      iex> Beamprof.profile(fn -> 21 * 2 end, enabled: false)
      42
  """
  @spec profile((() -> result), profile_options()) :: result when result: term()
  defdelegate profile(fun, opts), to: :beamprof

  @doc "Samples `fun` only when it runs longer than `threshold` ms (default 100)."
  @spec profile_if_slow((() -> result), profile_options()) :: result when result: term()
  defdelegate profile_if_slow(fun, opts), to: :beamprof

  @doc "Samples a small fraction (`sample_rate`, default 0.001) of calls while the gate is open."
  @spec profile_production((() -> result), profile_options()) :: result when result: term()
  defdelegate profile_production(fun, opts), to: :beamprof

  @doc "Memory before, after and delta around `fun` (`threshold` in bytes)."
  @spec profile_memory((() -> result), profile_options()) :: result when result: term()
  defdelegate profile_memory(fun, opts), to: :beamprof

  @doc """
  Counts the calls `fun` makes (`:calls`, `:cprof`, `:eprof`, `:fprof`,
  `:call_graph`); `{:error, {:busy, strategy}}` while another tracing profile
  runs on the node.
  """
  @spec profile_calls((() -> result), profile_options()) :: result | {:error, term()}
        when result: term()
  defdelegate profile_calls(fun, opts), to: :beamprof

  @doc """
  With a fun: samples `fun` and writes a flame graph to `output` (format from
  the extension unless `format` is given: `.svg`, `.html`, `.json`, `.folded`,
  `.pb.gz` for pprof; `opts` may be the path alone);
  returns `fun`'s result. With an
  integer: samples the whole VM for `ms` milliseconds and writes a CPU flame
  graph to `opts` (a path, or a map or keyword list with `:output`, `:format`
  and the options of `native_start/1`).

  With `nodes` (`:all` or a list of nodes) every node samples at once and
  one graph holds them all under a root frame per node; the answer is
  `{:ok, summary, failed}` (per-node figures under `:nodes`), or
  `{:error, {:all_failed, failed}}`. Each node needs beamprof loaded and its
  native sampler; `timeout` is the margin over `ms` the call waits (default
  5000).

      Beamprof.flame_graph(fn -> MyApp.work() end, output: "work.svg")
      Beamprof.flame_graph(3000, "cpu.svg")
      Beamprof.flame_graph(3000, nodes: :all, output: "cluster.html")
  """
  @spec flame_graph((() -> result), profile_options() | Path.t()) :: result when result: term()
  @spec flame_graph(pos_integer(), Path.t() | map() | keyword()) ::
          {:ok, map()} | {:ok, map(), failed()} | {:error, term()}
  # A wrong argument gets :beamprof's ArgumentError saying what it expected.
  def flame_graph(ms, opts) when is_integer(ms), do: :beamprof.flame_graph(ms, options(opts))
  def flame_graph(fun_or_ms, opts), do: :beamprof.flame_graph(fun_or_ms, opts)

  @doc """
  The top `n` processes by `key` (`:message_queue_len`, `:memory`,
  `:reductions` over a window, or `:total_heap_size`) as maps with `pid`,
  `value`, `name`, `label` (`:proc_lib.set_label/1`, OTP 27+; else
  `:undefined`), `initial_call`, `current_function`, `message_queue_len`,
  `memory` (`:skipped` for a huge queue) and `reductions`.
  """
  @spec top(atom(), pos_integer()) :: [map()]
  defdelegate top(key, n), to: :beamprof

  @doc """
  The top `n` ports by `key` (`:queue_size`, `:memory`, `:input`, `:output`)
  as maps with `port`, `value`, `name`, `owner` and the four figures.
  """
  @spec top_ports(atom(), pos_integer()) :: [map()]
  defdelegate top_ports(key, n), to: :beamprof

  @doc """
  Reads the flight recording at `path` (written by the recorder on this node
  or another, alive or killed): `{:ok, records}`, oldest first. Each record
  is a map with `:kind` (`:header`, `:tick`, `:interval`, `:scan`,
  `:threshold`, `:monitor`, `:gate`, `:profile`, `:note`), that kind's
  fields, `:time` (system time, ms), `:seq` and `:mono_ns`. Names, pids and
  other data from the VM are binaries; reading creates no atom.

  Errors: `{:error, :not_a_recording}`, `{:error, {:truncated, info}}`,
  `{:error, {:corrupt, :header | info}}`, `{:error, {:unsupported_version, v}}`,
  `{:error, {:file, posix}}`.

      {:ok, records} = Beamprof.read_recording("/var/lib/myapp/beamprof.rec")
  """
  @spec read_recording(Path.t()) :: {:ok, [map()]} | {:error, term()}
  defdelegate read_recording(path), to: :beamprof

  @doc """
  Reads the records of the recording at `path` that `opts` select (a map or
  a keyword list): `:since` and `:until` (system time in ms, inclusive),
  `:kinds` (a list of kinds). With `info: true` it returns
  `{:ok, records, info}`, `info` counting the frames taken and skipped
  (`:bad_frames` torn or overwritten, `:undecodable`, `:duplicates`). A bad
  option raises an `ArgumentError` naming it.

      Beamprof.read_recording(path, kinds: [:scan], since: System.system_time(:millisecond) - 60_000)
  """
  @spec read_recording(Path.t(), keyword() | map()) ::
          {:ok, [map()]} | {:ok, [map()], map()} | {:error, term()}
  def read_recording(path, opts) when is_list(opts) do
    if Keyword.keyword?(opts),
      do: :beamprof.read_recording(path, Map.new(opts)),
      else: :beamprof.read_recording(path, opts)
  end

  def read_recording(path, opts), do: :beamprof.read_recording(path, opts)

  @doc """
  Writes one HTML page to `out` with the timeline of the recording at
  `path`: utilization per scheduler, memory against the limit, run queues,
  gate flips and the largest mailboxes, as inline SVG (no script, no
  network). Returns `{:ok, out}`, the reader's `{:error, reason}`, or
  `{:error, {:unwritable, out, reason}}`.
  """
  @spec recording_report(Path.t(), Path.t()) :: {:ok, Path.t()} | {:error, term()}
  defdelegate recording_report(path, out), to: :beamprof
end
