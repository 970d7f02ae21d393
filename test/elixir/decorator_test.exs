defmodule Beamprof.DecoratorTest.Plain do
  @moduledoc false
  def classify(x) when is_integer(x) and x > 0, do: :positive
  def classify(0), do: :zero
  def classify(x) when is_integer(x), do: :negative
  def classify(_), do: :other

  def greet(name, greeting \\ "hello"), do: "#{greeting} #{name}"

  def head(%{id: id} = map, [first | _]), do: {id, map_size(map), first}

  def fact(0), do: 1
  def fact(n), do: n * fact(n - 1)

  def fail(:error, r), do: raise(ArgumentError, r)
  def fail(:exit, r), do: exit(r)
  def fail(:throw, r), do: throw(r)

  def call_private(x), do: double(x)
  defp double(x), do: 2 * x
end

defmodule Beamprof.DecoratorTest.Decorated do
  @moduledoc false
  use Beamprof.Decorator

  @decorate profile(strategy: :sample, check_load: false)
  def classify(x) when is_integer(x) and x > 0, do: :positive
  def classify(0), do: :zero
  def classify(x) when is_integer(x), do: :negative
  def classify(_), do: :other

  @decorate profile_if_slow(threshold: 1000, check_load: false)
  def greet(name, greeting \\ "hello"), do: "#{greeting} #{name}"

  @decorate profile_memory(check_load: false, metadata: %{team: :core})
  def head(%{id: id} = map, [first | _]), do: {id, map_size(map), first}

  @decorate profile(check_load: false)
  def fact(0), do: 1
  def fact(n), do: n * fact(n - 1)

  @decorate profile(check_load: false)
  def fail(:error, r), do: raise(ArgumentError, r)
  def fail(:exit, r), do: exit(r)
  def fail(:throw, r), do: throw(r)

  def call_private(x), do: double(x)
  @decorate profile(check_load: false, rate: 1.0)
  defp double(x), do: 2 * x
end

defmodule Beamprof.DecoratorTest do
  use ExUnit.Case, async: false

  alias Beamprof.DecoratorTest.{Decorated, Plain}

  @events for e <- [:start, :stop, :exception, :sample, :memory, :complete],
              do: [:beamprof, :profile, e]

  setup do
    :ok = Beamprof.start(interval: 1000)
    id = {__MODULE__, make_ref()}
    :ok = Beamprof.attach_many(id, @events, &__MODULE__.forward/4, self())
    on_exit(fn -> Beamprof.stop() end)
  end

  def forward([_, _, event], measurements, metadata, pid),
    do: send(pid, {:profile_event, event, measurements, metadata})

  test "guards, multiple clauses, default args and pattern heads behave as undecorated" do
    for x <- [1, 0, -5, :a, 1.5, "x"], do: assert(Decorated.classify(x) == Plain.classify(x))
    assert Decorated.greet("joe") == Plain.greet("joe")
    assert Decorated.greet("joe", "hi") == Plain.greet("joe", "hi")
    assert Decorated.head(%{id: 7, b: 2}, [:x, :y]) == Plain.head(%{id: 7, b: 2}, [:x, :y])
    assert Decorated.fact(20) == Plain.fact(20)
    assert Decorated.call_private(21) == 42

    assert_raise FunctionClauseError, fn -> Decorated.head(%{}, []) end
    assert_raise FunctionClauseError, fn -> Plain.head(%{}, []) end
  end

  test "exceptions of every kind come through unchanged" do
    for {kind, reason} <- [error: "boom", exit: :bye, throw: {:a, 1}] do
      assert catch_it(fn -> Decorated.fail(kind, reason) end) ==
               catch_it(fn -> Plain.fail(kind, reason) end)
    end
  end

  test "events carry the real module, function and arity" do
    :positive = Decorated.classify(3)
    assert_receive {:profile_event, :start, %{system_time: _}, meta}
    assert %{module: Decorated, function: :classify, arity: 1, strategy: :sample} = meta
    assert_receive {:profile_event, :stop, %{duration: _}, _}
    assert_receive {:profile_event, :sample, %{samples: _}, _}

    Decorated.head(%{id: 1}, [2])
    assert_receive {:profile_event, :memory, %{before: _, after: _, delta: _}, meta}
    assert %{function: :head, arity: 2, metadata: %{team: :core}} = meta

    42 = Decorated.call_private(21)
    assert_receive {:profile_event, :start, _, %{function: :double, arity: 1}}
  end

  test "a recursive decorated function is profiled once" do
    Decorated.fact(25)
    assert_receive {:profile_event, :start, _, %{function: :fact}}
    refute_receive {:profile_event, :start, _, _}, 200
  end

  test "a bad option is a compile error naming it" do
    source = """
    defmodule Beamprof.DecoratorTest.Bad do
      use Beamprof.Decorator
      @decorate profile(rate: 7)
      def f(x), do: x
    end
    """

    error = assert_raise CompileError, fn -> Code.compile_string(source) end
    assert Exception.message(error) =~ "rate"
  end

  test "the Beamprof facade profiles a fun and writes a flame graph" do
    assert Beamprof.profile(fn -> :done end, check_load: false) == :done
    assert_receive {:profile_event, :stop, %{duration: _}, %{strategy: :sample}}
    assert Beamprof.profile_memory(fn -> 7 end, %{check_load: false}) == 7
    assert_receive {:profile_event, :memory, %{delta: _}, _}

    path =
      Path.join(System.tmp_dir!(), "beamprof-exunit-#{System.unique_integer([:positive])}.svg")

    try do
      assert Beamprof.flame_graph(fn -> Enum.sum(1..100_000) end, output: path, check_load: false) ==
               5_000_050_000

      assert File.read!(path) =~ "<svg"
      assert %File.Stat{mode: mode} = File.stat!(path)
      assert Bitwise.band(mode, 0o777) == 0o600
    after
      File.rm(path)
    end

    assert_raise ArgumentError, ~r/nope/, fn -> Beamprof.profile(fn -> 1 end, nope: 1) end
  end

  defp catch_it(fun) do
    try do
      {:ok, fun.()}
    rescue
      e -> {:error, e}
    catch
      kind, reason -> {kind, reason}
    end
  end
end
