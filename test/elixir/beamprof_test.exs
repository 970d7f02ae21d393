defmodule BeamprofTest do
  # One beamprof per node: the tests start and stop the application.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO

  @interval 100
  # Generous: ten sampling intervals on a noisy shared machine.
  @timeout 10 * @interval

  @snapshot_keys [:schedulers, :utilization, :run_queues, :memory, :system, :rates, :gate] ++
                   [:window_ms, :time]

  setup do
    on_exit(fn ->
      Beamprof.stop()
      # handlers outlive stop/0: each test starts with none
      for %{id: id} <- Beamprof.list_handlers([]), do: Beamprof.detach(id)
    end)
  end

  test "start/1 takes a keyword list and the sampler emits events" do
    assert :ok = Beamprof.start(interval: @interval)
    id = {__MODULE__, make_ref()}
    assert :ok = Beamprof.attach(id, [:beamprof, :vm, :sample], &__MODULE__.forward/4, self())

    assert_receive {:event, [:beamprof, :vm, :sample], measurements, metadata}, @timeout
    assert is_map(measurements)
    assert is_map(metadata)
  end

  test "start/1 takes a map" do
    assert :ok = Beamprof.start(%{interval: @interval, vm_events: false})
    assert Beamprof.gate() in [:open, :closed]
  end

  test "an invalid option is refused with an ArgumentError naming it" do
    # :beamprof_config raises {:badarg, message}; Elixir makes it an ArgumentError.
    assert_raise ArgumentError, ~r/interval/, fn -> Beamprof.start(interval: -1) end

    assert_raise ArgumentError, ~r/scheduler_high/, fn ->
      Beamprof.start(scheduler_high: :lots)
    end

    assert_raise ArgumentError, ~r/no_such_option/, fn -> Beamprof.start(no_such_option: 1) end
    assert {:error, :not_started} = Beamprof.snapshot()
  end

  test "start/1 while running: :ok for the running options, else the differences" do
    assert :ok = Beamprof.start(interval: @interval)
    assert :ok = Beamprof.start()
    assert :ok = Beamprof.start(interval: @interval)
    assert :ok = Beamprof.start(%{interval: @interval, tick: 100})

    assert {:error, {:already_started, %{interval: %{running: @interval, asked: 500}}}} =
             Beamprof.start(interval: 500, tick: 100)

    assert_raise ArgumentError, ~r/Unknown option :?bogus/, fn -> Beamprof.start(bogus: 1) end
  end

  test "a handler attached before start receives events once it starts" do
    id = {__MODULE__, make_ref()}
    assert :ok = Beamprof.attach(id, [:beamprof, :vm, :sample], &__MODULE__.forward/4, self())
    assert [%{id: ^id}] = Beamprof.list_handlers([:beamprof, :vm])
    assert :ok = Beamprof.start(interval: @interval)
    assert_receive {:event, [:beamprof, :vm, :sample], _, _}, @timeout
  end

  test "top/0 prints a table" do
    :ok = Beamprof.start(interval: @interval)
    await_sample()
    output = capture_io(fn -> assert :ok = Beamprof.top() end)
    assert output =~ "sched"
  end

  test "top(width: 60) fits 60 columns; a bad width raises naming it" do
    :ok = Beamprof.start(interval: @interval)
    await_sample()
    output = capture_io(fn -> assert :ok = Beamprof.top(width: 60) end)
    lines = String.split(output, "\n")
    assert Enum.all?(lines, &(String.length(&1) <= 60))
    assert Enum.any?(lines, &(String.length(&1) > 50))
    assert_raise ArgumentError, ~r/option width/, fn -> Beamprof.top(width: 20) end
  end

  test "top(:live) draws a frame and stops at the first line read" do
    :ok = Beamprof.start(interval: @interval)
    await_sample()
    output = capture_io("q\n", fn -> assert :ok = Beamprof.top(:live) end)
    assert output =~ "press Enter"
    assert output =~ "system monitor on"
    # the cursor is shown again
    assert String.ends_with?(output, "\e[?25h\n")
  end

  test "top/2 finds a long mailbox and top_ports/2 returns port rows" do
    :ok = Beamprof.start(interval: @interval)
    pid = spawn_link(fn -> receive do: (:stop -> :ok) end)
    for i <- 1..5000, do: send(pid, {:msg, i})

    assert [%{pid: ^pid, value: 5000, message_queue_len: 5000} | _] =
             Beamprof.top(:message_queue_len, 3)

    assert [%{port: port} | _] = Beamprof.top_ports(:memory, 3)
    assert is_port(port)
    send(pid, :stop)
  end

  test "top/0 and top(:live) when not started" do
    assert {:error, :not_started} = Beamprof.top()
    assert {:error, :not_started} = Beamprof.top(:live)
  end

  test "the system monitor is beamprof's while it runs and free after" do
    assert :undefined == :erlang.system_monitor()
    :ok = Beamprof.start(interval: @interval, system_monitor: [long_gc: 50])
    assert %{state: :active, settings: settings} = :beamprof_monitor.status()
    assert {:long_gc, 50} in settings
    :ok = Beamprof.stop()
    assert :undefined == :erlang.system_monitor()
  end

  test "snapshot/0 has every documented key" do
    :ok = Beamprof.start(interval: @interval)
    await_sample()
    snapshot = Beamprof.snapshot()
    assert is_map(snapshot)
    for key <- @snapshot_keys, do: assert(Map.has_key?(snapshot, key), "no #{key} in snapshot")
    assert is_list(snapshot.schedulers)
    assert Enum.all?(snapshot.schedulers, &match?(%{id: _, type: _, utilization: _}, &1))
    assert %{normal: _, dirty_cpu: _, dirty_io: _, total: _} = snapshot.utilization
  end

  test "gate/0 and gate_info/0" do
    :ok = Beamprof.start(interval: @interval)
    assert Beamprof.gate() in [:open, :closed]
    info = Beamprof.gate_info()
    assert info.state in [:open, :closed]
    for key <- [:reason, :source, :running, :changed_at], do: assert(Map.has_key?(info, key))
  end

  test "handler ids are unique, list_handlers/1 finds them, detach/1 removes them" do
    :ok = Beamprof.start(interval: @interval)
    id = {__MODULE__, make_ref()}
    events = [[:beamprof, :vm, :sample], [:beamprof, :scheduler, :utilization]]
    assert :ok = Beamprof.attach_many(id, events, &__MODULE__.forward/4, self())
    fun = &__MODULE__.forward/4
    assert {:error, :already_exists} = Beamprof.attach(id, [:beamprof, :vm, :sample], fun, nil)

    listed = Beamprof.list_handlers([:beamprof])
    assert Enum.sort(for %{id: ^id, event_name: e} <- listed, do: e) == Enum.sort(events)
    assert_receive {:event, [:beamprof, :scheduler, :utilization], _, _}, @timeout

    assert :ok = Beamprof.detach(id)
    assert {:error, :not_found} = Beamprof.detach(id)
    assert [] == for(%{id: ^id} = h <- Beamprof.list_handlers([:beamprof]), do: h)
    # An event already being dispatched when detach/1 returned may still land.
    Process.sleep(2 * @interval)
    flush()
    refute_receive {:event, _, _, _}, 3 * @interval
  end

  test "stop/0 stops it" do
    :ok = Beamprof.start(interval: @interval)
    assert :ok = Beamprof.stop()
    assert {:error, :not_started} = Beamprof.snapshot()
  end

  def forward(event, measurements, metadata, pid),
    do: send(pid, {:event, event, measurements, metadata})

  defp await_sample do
    id = {__MODULE__, make_ref()}
    :ok = Beamprof.attach(id, [:beamprof, :vm, :sample], &__MODULE__.forward/4, self())
    assert_receive {:event, [:beamprof, :vm, :sample], _, _}, @timeout
    :ok = Beamprof.detach(id)
  end

  @tag :tmp_dir
  test "write_profile/3 writes a folded file mode 0600 and refuses a bad format", %{tmp_dir: dir} do
    path = Path.join(dir, "p.folded")
    profile = %{stacks: [{["m:a/0", "m:b/1"], 3}, {["m:a/0"], 1}], title: "t"}
    assert {:ok, ^path} = Beamprof.write_profile(profile, path, :folded)
    assert File.read!(path) == "m:a/0 1\nm:a/0;m:b/1 3\n"
    assert Bitwise.band(File.stat!(path).mode, 0o777) == 0o600
    assert {:error, {:badarg, _}} = Beamprof.write_profile(profile, path, :png)
  end

  @tag :tmp_dir
  test "write_profile/3 writes a gzipped pprof file with the :pprof format", %{tmp_dir: dir} do
    path = Path.join(dir, "p.pb.gz")
    profile = %{stacks: [{["m:a/0", "m:b/1"], 3}], title: "t"}
    assert {:ok, ^path} = Beamprof.write_profile(profile, path, :pprof)
    raw = :zlib.gunzip(File.read!(path))
    # the string table holds the frame names and the node label
    assert raw =~ "m:b/1"
    assert raw =~ Atom.to_string(node())
    assert {:error, {:badarg, _}} = Beamprof.write_profile(%{}, path, :pprof)
  end

  defp flush do
    receive do
      _ -> flush()
    after
      0 -> :ok
    end
  end
end
