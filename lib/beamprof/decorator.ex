defmodule Beamprof.Decorator do
  @moduledoc """
  Profiles functions by annotation, without touching their bodies.

      defmodule MyApp.Analytics do
        use Beamprof.Decorator

        @decorate profile(strategy: :sample, rate: 0.01)
        def compute_metrics(data), do: Enum.map(data, &process_item/1)

        @decorate profile_if_slow(threshold: 1000)
        def potentially_slow_query(id), do: Repo.get(Item, id)
      end

  The decorations are `profile/1`, `profile_if_slow/1`, `profile_production/1`,
  `profile_memory/1`, `profile_calls/1` and `flame_graph/1`, each taking the
  options of the `:beamprof` function of the same name (a keyword list or a
  map; `metadata` is a map). The options are validated while the module
  compiles: a bad one is a `CompileError` naming it.

  How: `@on_definition` notes which `def`/`defp` a `@decorate` precedes;
  `@before_compile` makes each of them overridable and defines a one-clause
  wrapper that calls `:beamprof_profile.decorated/5` with the module, name and
  arity of the function and a closure calling `super`, so every original
  clause, guard, pattern and default argument is kept as written. A
  decorated function returns and raises exactly what it did undecorated; a
  recursive one is profiled once, at its outermost call. The unprofiled path
  (a call the rate did not draw) costs one random draw on top of the call.
  """

  @decorations [:profile, :profile_if_slow, :profile_production, :profile_memory] ++
                 [:profile_calls, :flame_graph]

  @doc false
  defmacro __using__(_opts) do
    quote do
      import Beamprof.Decorator,
        only: [
          profile: 0,
          profile: 1,
          profile_if_slow: 0,
          profile_if_slow: 1,
          profile_production: 0,
          profile_production: 1,
          profile_memory: 0,
          profile_memory: 1,
          profile_calls: 0,
          profile_calls: 1,
          flame_graph: 1
        ]

      Module.register_attribute(__MODULE__, :decorate, accumulate: true)
      Module.register_attribute(__MODULE__, :beamprof_decorated, accumulate: true)
      @on_definition {Beamprof.Decorator, :__on_definition__}
      @before_compile Beamprof.Decorator
    end
  end

  for name <- @decorations, name != :flame_graph do
    @doc "Decoration: `#{name}` with `opts` (see `:beamprof.#{name}/2`)."
    defmacro unquote(name)(opts \\ []), do: {unquote(name), opts}
  end

  @doc "Decoration: `flame_graph` with `opts`; `output` is required."
  defmacro flame_graph(opts), do: {:flame_graph, opts}

  @doc false
  def __on_definition__(env, kind, name, args, _guards, _body) do
    case Module.get_attribute(env.module, :decorate) do
      [] ->
        :ok

      decorations ->
        Module.delete_attribute(env.module, :decorate)
        arity = length(args)

        Module.put_attribute(
          env.module,
          :beamprof_decorated,
          {kind, name, arity, decorations, env.file, env.line}
        )
    end
  end

  @doc false
  defmacro __before_compile__(env) do
    env.module
    |> Module.get_attribute(:beamprof_decorated)
    |> Enum.reverse()
    |> Enum.uniq_by(fn {_kind, name, arity, _, _, _} -> {name, arity} end)
    |> Enum.map(&wrapper(env.module, &1))
  end

  defp wrapper(module, {kind, name, arity, decorations, file, line}) do
    compiled = compile_options(decorations, name, arity, file, line)
    args = Macro.generate_arguments(arity, module)

    body =
      quote do
        :beamprof_profile.decorated(
          __MODULE__,
          unquote(name),
          unquote(arity),
          fn -> super(unquote_splicing(args)) end,
          unquote(Macro.escape(compiled))
        )
      end

    quote do
      defoverridable [{unquote(name), unquote(arity)}]
      unquote({kind, [line: line], [{name, [line: line], args}, [do: body]]})
    end
  end

  defp compile_options([{entry, opts}], name, arity, file, line) when entry in @decorations do
    :beamprof_profile_opts.compile(entry, opts)
  catch
    :error, {:badarg, message} ->
      compile_error(file, line, "@decorate of #{name}/#{arity}: #{message}")
  end

  defp compile_options(decorations, name, arity, file, line) do
    compile_error(
      file,
      line,
      "@decorate of #{name}/#{arity}: expected one of #{inspect(@decorations)} " <>
        "(once), got: #{inspect(decorations)}"
    )
  end

  defp compile_error(file, line, description) do
    raise CompileError, file: file, line: line, description: description
  end
end
