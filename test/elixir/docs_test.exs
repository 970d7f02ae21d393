defmodule Beamprof.DocsTest do
  # The Elixir surface's docs: every public function of Beamprof and
  # Beamprof.Decorator has a @doc, and the examples with a stable output run.
  use ExUnit.Case, async: false

  doctest Beamprof

  for module <- [Beamprof, Beamprof.Decorator] do
    test "every public function and macro of #{inspect(module)} has a doc" do
      module = unquote(module)
      {:docs_v1, _, :elixir, _, module_doc, _, docs} = Code.fetch_docs(module)
      assert %{"en" => text} = module_doc
      assert String.trim(text) != ""

      # An entry with default arguments documents each arity it defines.
      documented =
        for {{kind, name, arity}, _, _, %{"en" => text}, meta} <- docs,
            kind in [:function, :macro],
            String.trim(text) != "",
            a <- (arity - Map.get(meta, :defaults, 0))..arity,
            do: {name, a}

      public =
        (module.__info__(:functions) ++ module.__info__(:macros))
        |> Enum.reject(fn {name, _} -> String.starts_with?(Atom.to_string(name), "__") end)

      assert public != []
      assert [] == public -- documented
    end
  end
end
