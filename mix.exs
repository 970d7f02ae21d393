defmodule Mix.Tasks.Compile.BeamprofNif do
  @moduledoc """
  Builds the C libraries (`c_src/`) with the same Makefile rebar3's pre-hook runs,
  and shows its `beamprof: ...` lines (the native sampler skipped, and why).

  The library goes straight into the application's priv directory under the
  build path: Mix links `priv/` into the build tree before compilers run, so a
  library built into the source `priv/` of a fresh checkout would be missed
  on the first `mix compile`.

  It also copies the EEP-48 doc chunks (`doc/chunks/`, built by `make docs` and
  shipped in the package) into the application's build directory, where
  `code:get_doc/1` finds them for `h :beamprof.top` in iex.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    case make([]) do
      {output, 0} ->
        copy_doc_chunks()
        notes(output)

      {output, status} ->
        failed(output, status)
    end
  end

  @impl true
  def clean, do: make(["clean"])

  defp make(targets) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    File.mkdir_p!(priv)
    System.cmd("make", ["-C", "c_src", "PRIV_DIR=#{priv}" | targets], stderr_to_stdout: true)
  end

  defp copy_doc_chunks do
    if File.dir?("doc/chunks") do
      target = Path.join(Mix.Project.app_path(), "doc/chunks")
      File.mkdir_p!(target)
      File.cp_r!("doc/chunks", target)
    end
  end

  defp notes(output) do
    for line <- String.split(output, "\n"), String.starts_with?(line, "beamprof:") do
      Mix.shell().info(line)
    end

    {:ok, []}
  end

  defp failed(output, status) do
    message = "make -C c_src exited with status #{status}"
    Mix.shell().error([output, message])

    diagnostic = %Mix.Task.Compiler.Diagnostic{
      compiler_name: "beamprof_nif",
      file: Path.expand("c_src/Makefile"),
      message: message,
      position: nil,
      severity: :error
    }

    {:error, [diagnostic]}
  end
end

defmodule Beamprof.MixProject do
  use Mix.Project

  # One source of truth for name, version and description: the .app.src
  # rebar3 uses (as telemetry's mix.exs does).
  {:ok, [{:application, :beamprof, props}]} =
    :file.consult(Path.join(__DIR__, "src/beamprof.app.src"))

  @props props

  def project do
    [
      app: :beamprof,
      version: to_string(@props[:vsn]),
      description: to_string(@props[:description]),
      language: :erlang,
      # rebar3 owns _build/; mix must not share _build/<env>/lib/beamprof with it.
      # MIX_BUILD_ROOT, when set, still wins.
      build_path: "_build_mix",
      compilers: [:beamprof_nif | Mix.compilers()],
      erlc_paths: ["src"],
      erlc_include_path: "include",
      erlc_options: [:debug_info],
      elixirc_paths: ["lib"],
      test_paths: ["test/elixir"],
      deps: [],
      # The tests start and stop beamprof themselves, with their own options.
      aliases: [test: "test --no-start"],
      package: [licenses: Enum.map(@props[:licenses], &to_string/1), files: package_files()]
    ]
  end

  def application do
    [
      mod: @props[:mod],
      env: @props[:env],
      # language: :erlang leaves :elixir out; lib/ holds Elixir modules.
      extra_applications: [:logger, :elixir]
    ]
  end

  # The same list rebar3_hex reads: src/beamprof.app.src's files.
  defp package_files, do: Enum.map(@props[:files], &to_string/1)
end
