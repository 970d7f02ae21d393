defmodule Beamprof.ErrorsTest do
  # A wrong argument gets an ArgumentError saying what was expected (from :beamprof's
  # {:badarg, message}), not a FunctionClauseError from the facade.
  use ExUnit.Case, async: false

  test "top/1 with a key points to top/2" do
    assert_raise ArgumentError, ~r/top\(Key, N\)/, fn -> Beamprof.top(:memory) end
  end

  test "swapped arguments are named as such" do
    assert_raise ArgumentError, ~r/wrong order/, fn -> Beamprof.top(10, :memory) end
    assert_raise ArgumentError, ~r/wrong order/, fn -> Beamprof.flame_graph("cpu.svg", 3000) end

    assert_raise ArgumentError, ~r/wrong order/, fn ->
      Beamprof.profile([strategy: :sample], fn -> :ok end)
    end
  end

  test "an unknown native option is named" do
    assert_raise ArgumentError, ~r/Unknown option bogus/, fn ->
      Beamprof.native_start(%{bogus: 1})
    end
  end
end
