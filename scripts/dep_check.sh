#!/usr/bin/env bash
# make test-deps: beamprof used as a dependency, as a new project uses it, offline.
#
#   scripts/dep_check.sh [auto|clone|package]
#
# Copies beamprof into a temporary directory, then
#   (a) a new mix project with {:beamprof, path: "<copy>"}: `mix compile` (the C libraries
#       built by beamprof's Mix compiler) and `mix run -e` calling :beamprof.top(:memory, 3);
#   (b) a new rebar3 project with {deps, [beamprof]} and the copy at _checkouts/beamprof
#       (rebar3 has no path dependencies): `rebar3 compile` (the C libraries built by the
#       pre-hook) and `erl -eval` starting the project and calling beamprof:top(memory, 3).
# Each project holds a module (dep_check_probe) that checks that top/2 answers rows, that
# the core library (beamprof_nif) is loaded from code:priv_dir(beamprof), and that the
# native sampler's library loads, or was skipped by the build with a note saying why
# (priv/beamprof_native_nif.unsupported).
#
# What is copied (one fresh copy per project, so each builds the C code itself):
#   clone    the files git tracks, as they are in the working tree: what a fresh clone of
#            this tree has once it is committed (untracked files are not in it, so a file
#            the build needs but git does not track fails here, as it would for a user);
#   package  the package's files (the `files' list of src/beamprof.app.src, which mix.exs
#            and rebar3_hex read): what a user of the hex package gets;
#   auto     clone in a git checkout, else package (the OTP matrix's roots hold a copy of
#            the tree, without a usable git).
#
# Nothing is fetched: neither project needs Hex (a path dependency and a checkout are
# never looked up). Each run has an empty MIX_HOME and rebar3 cache of its own, and the
# check fails if mix installed an archive (Hex) or rebar3 touched its hex registry. Every
# command reads stdin from /dev/null and runs under a time limit, so a prompt (mix asking
# to install Hex) fails instead of hanging CI. The projects build as a user's project
# does: without our -Werror (BEAMPROF_WERROR) and without our Make, mix or rebar3 settings.
#
# Works in _build/dep_check: removed when every check passed (unless
# BEAMPROF_DEP_CHECK_KEEP=1), kept after a failure (the logs of each command are there).
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd -P)
work=$project/_build/dep_check
mode=${1:-auto}
step_timeout=${BEAMPROF_DEP_CHECK_TIMEOUT:-600}   # seconds per command

say() { printf 'dep check: %s\n' "$*"; }
die() { printf 'dep check: FAILED: %s\n' "$*" >&2; exit 1; }
fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

case "$mode" in auto|clone|package) ;; *) die "usage: $0 [auto|clone|package]" ;; esac

# A user's environment, not our test targets': no -Werror, no library override, no Make
# jobserver of ours, no mix or rebar3 settings.
unset BEAMPROF_WERROR BEAMPROF_NIF BEAMPROF_NATIVE_NIF MAKEFLAGS MFLAGS MAKELEVEL \
  MIX_ENV MIX_TARGET MIX_BUILD_ROOT MIX_BUILD_PATH MIX_DEPS_PATH MIX_EXS MIX_LOCKFILE \
  MIX_ARCHIVES MIX_PATH MIX_REBAR3 HEX_MIRROR HEX_CDN \
  REBAR_CONFIG REBAR_PROFILE REBAR_BASE_DIR REBAR_CHECKOUTS_DIR REBAR_DEPS_DIR ERL_LIBS
export MIX_HOME=$work/home/mix HEX_HOME=$work/home/hex HEX_OFFLINE=1
export REBAR_CACHE_DIR=$work/home/rebar3 REBAR_GLOBAL_CONFIG_DIR=$work/home/rebar3_config
export REBAR_COLOR=none

# Runs "$@" in directory $1, its output in $work/$2.log; on failure shows the log's end
# and stops, naming the step ($3).
run_step() {
  local dir=$1 log=$work/$2.log what=$3 rc=0; shift 3
  (cd "$dir" && exec timeout -k 10 "$step_timeout" "$@") > "$log" 2>&1 < /dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$log" | sed 's/^/  | /' >&2
    [ "$rc" -ne 124 ] || die "$what: timed out after ${step_timeout}s (waiting for input?) (log: $log)"
    die "$what: exit status $rc (log: $log)"
  fi
}

git_checkout() {
  command -v git >/dev/null 2>&1 &&
    [ "$(git -c safe.directory="$project" -C "$project" rev-parse --is-inside-work-tree 2>/dev/null)" = true ]
}

# The package's files: src/beamprof.app.src's `files' list, one a line.
package_files() {
  (cd "$project" && erl -noshell -eval '
    {ok, [{application, beamprof, Props}]} = file:consult("src/beamprof.app.src"),
    [io:format("~ts~n", [F]) || F <- proplists:get_value(files, Props)],
    halt().' < /dev/null)
}

# A fresh copy of beamprof at $1, as $source says.
copy_beamprof() {
  local dest=$1 files
  mkdir -p "$dest"
  if [ "$source" = clone ]; then
    git -c safe.directory="$project" -C "$project" ls-files -c -z |
      (cd "$project" && while IFS= read -r -d '' f; do
         if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
       done) |
      tar -C "$project" --null -T - -cf - | tar -C "$dest" -xf -
  else
    files=$(package_files) || die "could not read the files list of src/beamprof.app.src"
    [ -n "$files" ] || die "src/beamprof.app.src lists no files"
    # The list names directories whole; the build output in them is not shipped.
    # shellcheck disable=SC2086
    (cd "$project" && tar --exclude='*.o' --exclude='*.d' --exclude='*.so' --exclude=obj \
       --exclude=asan --exclude=chunks -cf - $files) | tar -C "$dest" -xf - ||
      die "copying the package's files failed (a listed file is missing?): $(echo $files)"
  fi
}

# The check itself, a module of each new project: top/2's rows, the core library loaded
# from the project's code:priv_dir(beamprof), the native library loaded or skipped by the
# build with its reason. Prints "dep check ok: ...", or "dep check: FAILED: ..." and
# halts with status 1.
write_probe() {
  mkdir -p "$1/src"
  cat > "$1/src/dep_check_probe.erl" <<'ERL'
-module(dep_check_probe).
-export([run/0]).

run() ->
    Rows = try beamprof:top(memory, 3)
           catch C:R:S -> fail("beamprof:top(memory, 3) raised ~p:~p~n~p", [C, R, S])
           end,
    rows(Rows) orelse fail("beamprof:top(memory, 3) answered ~p, not 1 to 3 rows", [Rows]),
    Priv = code:priv_dir(beamprof),
    is_list(Priv) orelse fail("code:priv_dir(beamprof) answered ~p", [Priv]),
    filelib:is_regular(filename:join(Priv, "beamprof_nif.so"))
        orelse fail("no beamprof_nif.so in code:priv_dir(beamprof) = ~ts", [Priv]),
    Gate = try beamprof_nif:gate()
           catch C2:R2 -> fail("the core library is not loaded: ~p:~p", [C2, R2])
           end,
    io:format("dep check ok: beamprof:top(memory, 3) -> ~b rows; beamprof_nif loaded from ~ts "
              "(gate ~p); beamprof_native_nif ~ts~n", [length(Rows), Priv, Gate, native(Priv)]).

rows(Rows) ->
    is_list(Rows) andalso length(Rows) >= 1 andalso length(Rows) =< 3
        andalso lists:all(fun(#{pid := P, key := memory, value := V}) ->
                                  is_pid(P) andalso is_integer(V);
                             (_) ->
                                  false
                          end, Rows).

native(Priv) ->
    case beamprof_native_nif:load() of
        ok ->
            "loaded";
        {error, {unsupported, {not_built, Why}}} ->
            filelib:is_regular(filename:join(Priv, "beamprof_native_nif.unsupported"))
                orelse fail("the native library was not built, and the build left no note "
                            "saying why: ~ts", [Why]),
            ["skipped by the build: ", Why];
        Other ->
            fail("the native library does not load: ~p", [Other])
    end.

fail(Format, Args) ->
    io:format(standard_error, "dep check: FAILED: " ++ Format ++ "~n", Args),
    erlang:halt(1).
ERL
}

# What the probe printed, from the step's log ($1); $2 names the step.
expect_ok() {
  grep '^dep check ok: ' "$work/$1.log" | sed 's/^dep check ok: /  /' ||
    die "$2 printed no result (log: $work/$1.log)"
}

# The warnings a build ($1, a log) showed, as a user would see them: listed, not failed on
# (a user's compiler may be newer than ours; our own builds use -Werror).
show_warnings() {
  local n
  n=$(grep -ci 'warning' "$work/$1.log") || true
  [ "$n" -eq 0 ] || { say "note: $2 printed $n warning line(s):"; grep -i 'warning' "$work/$1.log" | head -n 5 | sed 's/^/  | /'; }
}

check_mix() {
  local app=$work/mix_app t0=$SECONDS version
  if ! command -v mix >/dev/null 2>&1 ||
     ! version=$(elixir -e 'IO.puts(System.version())' 2>&1 < /dev/null); then
    say "mix: SKIPPED, Elixir does not run here (${version:-no mix}); the rebar3 check runs"
    return 0
  fi
  copy_beamprof "$work/mix_dep/beamprof"
  write_probe "$app"
  cat > "$app/mix.exs" <<EOF
defmodule DepCheck.MixProject do
  use Mix.Project

  def project do
    [app: :dep_check, version: "0.1.0", deps: [{:beamprof, path: "$work/mix_dep/beamprof"}]]
  end

  def application, do: [extra_applications: [:logger]]
end
EOF
  # One `mix run` compiles and runs in one VM, as a user's first `iex -S mix` does (a
  # library the first compile leaves out of the build's priv/ is missed there, and only
  # there), then starts the project's applications, beamprof (a dependency) with them.
  run_step "$app" mix_run "mix run (Elixir $version; a new project with beamprof as a path dependency: compiling it, then calling :beamprof.top(:memory, 3))" \
    mix run -e 'is_pid(Process.whereis(:beamprof_sup)) or raise("beamprof was not started")
                Code.ensure_loaded?(Beamprof) or raise("the Elixir module Beamprof is not there")
                :dep_check_probe.run()'
  [ ! -e "$MIX_HOME/archives" ] ||
    die "mix installed archives into MIX_HOME (Hex?): $(ls "$MIX_HOME/archives")"
  say "mix (Elixir $version, path dependency): ok in $(fmt_time $((SECONDS - t0)))"
  expect_ok mix_run "mix run"
  show_warnings mix_run "mix run"
}

check_rebar3() {
  local app=$work/rebar3_app t0=$SECONDS paths=()
  copy_beamprof "$app/_checkouts/beamprof"
  write_probe "$app"
  printf '%s\n' '{erl_opts, [debug_info]}.' '{deps, [beamprof]}.' > "$app/rebar.config"
  printf '%s\n' '{application, dep_check, [{description, "uses beamprof"}, {vsn, "0.1.0"},' \
    '  {applications, [kernel, stdlib, beamprof]}]}.' > "$app/src/dep_check.app.src"
  run_step "$app" rebar3_compile "rebar3 compile (a new project with beamprof in _checkouts/)" \
    rebar3 compile
  [ ! -e "$REBAR_CACHE_DIR/hex" ] ||
    die "rebar3 used its hex registry ($REBAR_CACHE_DIR/hex): it looked beamprof up instead of taking _checkouts/beamprof"
  # rebar3 builds checkouts into _build/default/checkouts/ (3.14 and later), the rest
  # into _build/default/lib/.
  shopt -s nullglob
  paths=("$app"/_build/default/lib/*/ebin "$app"/_build/default/checkouts/*/ebin)
  shopt -u nullglob
  [ ${#paths[@]} -gt 0 ] || die "rebar3 compile made no ebin directory under $app/_build/default"
  run_step "$app" rebar3_run "erl starting the project and calling beamprof:top(memory, 3)" \
    erl -noshell -pa "${paths[@]}" -eval "
      case application:ensure_all_started(dep_check) of
        {ok, _} -> ok;
        E -> io:format(standard_error, \"dep check: FAILED: starting the project: ~p~n\", [E]),
             halt(1)
      end,
      dep_check_probe:run(),
      halt()."
  say "rebar3 ($(rebar3 version 2>/dev/null < /dev/null | cut -d' ' -f2), _checkouts): ok in $(fmt_time $((SECONDS - t0)))"
  expect_ok rebar3_run "erl"
  show_warnings rebar3_compile "rebar3 compile"
}

t0=$SECONDS
rm -rf -- "$work"
mkdir -p "$work/home"
source=$mode
if [ "$source" = auto ]; then
  if git_checkout; then
    source=clone
    [ -z "$(git -c safe.directory="$project" -C "$project" status --porcelain --untracked-files=no)" ] ||
      say "the working tree's uncommitted changes to tracked files are in the copy"
  else
    source=package
    say "no git checkout here: the package's files (src/beamprof.app.src's files list) stand in for a clone"
  fi
elif [ "$source" = clone ] && ! git_checkout; then
  die "clone: $project is not a git checkout that git can read"
fi
say "beamprof as a dependency of new projects (a $source; OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' < /dev/null)), in $work"
check_mix
check_rebar3
[ "${BEAMPROF_DEP_CHECK_KEEP:-0}" = 1 ] || rm -rf -- "$work"
say "all passed in $(fmt_time $((SECONDS - t0)))"
