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
  `:long_schedule`, `:large_heap`, `:busy_port`, `:busy_dist_port`). When the
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
  `reopen_ticks`, `memory_limit`, `event_prefix`, `vm_events`.
  """
  @type options :: keyword() | map()

  @doc """
  Starts beamprof with the options in the application environment
  (`application:ensure_all_started(beamprof)`).
  """
  @spec start() :: :ok | {:error, term()}
  defdelegate start(), to: :beamprof

  @doc """
  Starts beamprof with `opts`, a keyword list or a map.

  A keyword list is turned into a map (a later duplicate key wins, as in
  `Map.new/1`); the options are validated by `:beamprof.start/1`, which
  raises an `ArgumentError` naming an unknown key or an ill-typed value.
  Returns `{:error, :already_started}` when beamprof is already running.

      Beamprof.start(interval: 500, scheduler_high: 0.9)
  """
  @spec start(options()) :: :ok | {:error, term()}
  def start(opts) when is_list(opts) do
    if Keyword.keyword?(opts), do: :beamprof.start(Map.new(opts)), else: :beamprof.start(opts)
  end

  def start(opts), do: :beamprof.start(opts)

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
  Attaches `fun` to `event` under the unique `id`. Returns
  `{:error, :already_exists}` when `id` is taken, `{:error, :not_started}`
  when beamprof is not running. A handler that raises is
  detached and the failure logged.
  """
  @spec attach(handler_id(), event_name(), handler_function(), term()) ::
          :ok | {:error, :already_exists | :not_started}
  defdelegate attach(id, event, fun, config), to: :beamprof

  @doc "Attaches `fun` to every event in `events` under the one `id`."
  @spec attach_many(handler_id(), [event_name()], handler_function(), term()) ::
          :ok | {:error, :already_exists | :not_started}
  defdelegate attach_many(id, events, fun, config), to: :beamprof

  @doc "Detaches the handler `id` from all its events."
  @spec detach(handler_id()) :: :ok | {:error, :not_found | :not_started}
  defdelegate detach(id), to: :beamprof

  @doc """
  The handlers attached to events starting with `prefix`, as maps with `id`,
  `event_name`, `function` and `config`.
  """
  @spec list_handlers([atom()]) :: [map()]
  defdelegate list_handlers(prefix), to: :beamprof

  @doc """
  Prints one screen: scheduler utilization per scheduler and in total,
  memory by kind and against the limit, the gate, the system monitor, and
  the top 5 processes by message queue, by memory and by reductions over the
  scan's window. Returns `{:error, :not_started}` when beamprof is not
  running.

  `top(:live)` redraws it in place every second until Enter (or `q` and
  Enter) is pressed: IEx reads whole lines, so a single key cannot stop it.
  """
  @spec top() :: :ok | {:error, :not_started}
  defdelegate top(), to: :beamprof

  @spec top(:live) :: :ok | {:error, :not_started}
  def top(:live), do: :beamprof.top(:live)

  @doc """
  The top `n` processes by `key` (`:message_queue_len`, `:memory`,
  `:reductions` over a window, or `:total_heap_size`) as maps with `pid`,
  `value`, `name`, `initial_call`, `current_function`, `message_queue_len`,
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
end
