defmodule BeamprofContinuousTest do
  # The facade's continuous profiling functions: keyword options, a dir sink
  # and the telemetry sink, the info map, the stop.
  use ExUnit.Case, async: false

  @moduletag :tmp_dir

  setup do
    on_exit(fn -> Beamprof.stop() end)
  end

  test "start_continuous/1 takes keyword lists and writes profiles", %{tmp_dir: dir} do
    assert {:error, :not_started} = Beamprof.start_continuous(sink: :telemetry)
    assert :ok = Beamprof.start()
    spinner = spawn(fn -> spin() end)

    case Beamprof.start_continuous(period: 1000, sink: [{:dir, dir, keep: 2}, :telemetry]) do
      {:error, {:unsupported, _}} ->
        # No native sampler on this machine: the answer says so.
        :ok

      :ok ->
        assert %{state: :running, hz: 19, period: 1000} = Beamprof.continuous_info()
        # A file is on disk a moment before its sink counts it sent.
        assert wait(fn -> match?(%{sinks: [%{sent: s} | _]} when s >= 1,
                                  Beamprof.continuous_info()) end)
        assert length(Path.wildcard(Path.join(dir, "*.pb.gz"))) in 1..2
        assert :ok = Beamprof.stop_continuous()
        assert :undefined = Beamprof.continuous_info()
    end

    Process.exit(spinner, :kill)
  end

  test "bad continuous options raise ArgumentError naming them" do
    assert :ok = Beamprof.start()
    assert_raise ArgumentError, ~r/period/, fn ->
      Beamprof.start_continuous(period: 1, sink: :telemetry)
    end
  end

  defp spin do
    Enum.sort(for _ <- 1..500, do: :rand.uniform(1000))
    spin()
  end

  defp wait(fun, deadline \\ System.monotonic_time(:millisecond) + 30_000) do
    cond do
      fun.() -> true
      System.monotonic_time(:millisecond) > deadline -> false
      true -> Process.sleep(20) && wait(fun, deadline)
    end
  end
end
