defmodule BeamprofClusterTest do
  # The cluster calls from Elixir, on this node (mix test runs undistributed:
  # a node of another name is down). The suite test/beamprof_cluster_SUITE.erl
  # runs them over three nodes.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO

  @ghost :"ghost@nowhere.invalid"

  setup do
    on_exit(fn -> Beamprof.stop() end)
  end

  defp mailbox(n) do
    pid = spawn(fn -> receive do: (:stop -> :ok) end)
    Process.register(pid, :beamprof_cluster_exunit)
    for i <- 1..n, do: send(pid, {:msg, i})
    on_exit(fn -> send(pid, :stop) end)
    pid
  end

  test "top/3 takes a keyword list: rows with their node, down nodes in failed" do
    pid = mailbox(2000)

    assert {:ok, [first | _] = rows, [{@ghost, :noconnection}]} =
             Beamprof.top(:message_queue_len, 3, nodes: [node(), @ghost], timeout: 2000)

    assert %{node: node, pid: ^pid, name: :beamprof_cluster_exunit, value: 2000} = first
    assert node == node()
    assert length(rows) == 3
    assert {:ok, [_], []} = Beamprof.top(:memory, 1, %{})
  end

  test "snapshot/1: a sample per started node, not_started otherwise" do
    assert {:ok, %{}, [{node, :not_started}]} = Beamprof.snapshot(nodes: :all)
    assert node == node()
    assert :ok = Beamprof.start(interval: 100)
    wait_until(fn -> is_map(Beamprof.snapshot()) end)
    assert {:ok, %{^node => %{schedulers: _, memory: _}}, []} = Beamprof.snapshot([])
  end

  test "top(:cluster) prints a line per node and the top processes" do
    mailbox(1500)
    text = capture_io(fn -> assert :ok = Beamprof.top(:cluster) end)
    assert text =~ "beamprof cluster on"
    assert text =~ "1 nodes answered, 0 failed"
    # the mailbox's row first, its name cut to the 80-column screen's name column
    assert text =~ ~r/<0\.\d+\.\d+>\s+beamprof_clu\S*\s+\S+\s+1\.5k/
    for line <- String.split(text, "\n"), do: assert(String.length(line) <= 80, line)
  end

  test "flame_graph/2 with nodes writes one graph under a root frame per node" do
    case :beamprof.native_info() do
      {:error, reason} ->
        IO.puts("skipped: native sampler unavailable: #{inspect(reason)}")

      _ ->
        dir = Path.join(System.tmp_dir!(), "beamprof_cluster_#{System.unique_integer([:positive])}")
        File.mkdir_p!(dir)
        on_exit(fn -> File.rm_rf!(dir) end)
        out = Path.join(dir, "cluster.folded")
        spinner = spawn(fn -> spin(0) end)
        on_exit(fn -> Process.exit(spinner, :kill) end)

        assert {:ok, %{nodes: %{}, file: ^out} = summary, [{@ghost, :noconnection}]} =
                 Beamprof.flame_graph(500, nodes: [node(), @ghost], output: out)

        assert Map.keys(summary.nodes) == [node()]
        roots =
          for line <- String.split(File.read!(out), "\n", trim: true),
              not String.starts_with?(line, "#"),
              uniq: true,
              do: line |> String.split(";") |> hd()

        assert roots == [Atom.to_string(node())]
    end
  end

  test "a bad cluster option raises an ArgumentError naming it" do
    assert_raise ArgumentError, ~r/timeout/, fn ->
      Beamprof.top(:message_queue_len, 3, timeout: -1)
    end

    assert_raise ArgumentError, ~r/bogus/, fn -> Beamprof.snapshot(bogus: 1) end
  end

  defp spin(n), do: spin(n + 1)

  defp wait_until(fun, deadline \\ 5000) do
    cond do
      fun.() -> :ok
      deadline <= 0 -> flunk("condition not met within 5 s")
      true ->
        Process.sleep(10)
        wait_until(fun, deadline - 10)
    end
  end
end
