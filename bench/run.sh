#!/bin/sh
# Runs the benchmarks, each in a fresh VM: bench/run.sh [gate_bench|events_bench|sampler_overhead|flame_bench|native_bench|profile_bench|scan_bench|gap_bench ...]
# The code path is beamprof's rebar3 build (_build/default/lib/beamprof, with priv/
# holding the NIF): run `rebar3 compile` first, or set BEAMPROF_LIB to another lib dir.
# SAMPLER_SECONDS sets the length of each sampler_overhead phase (default 20);
# NATIVE_RUNS the interleaved rounds of native_bench (default 15);
# SCAN_SIZES sets scan_bench's process counts (default [10000,100000,500000]);
# GAP_PROCS gap_bench's (default 500000).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${BEAMPROF_LIB:-$ROOT/_build/default/lib/beamprof}
OUT=${BENCH_OUT:-$ROOT/_build/bench}
if [ ! -f "$LIB/ebin/beamprof.app" ]; then
    echo "bench: no beamprof build in $LIB; run 'rebar3 compile' first" >&2
    exit 1
fi
mkdir -p "$OUT"
# test/beamprof_ct.erl: the 1 ms pinger scan_bench shares with the scan suite
erlc -o "$OUT" "$ROOT"/bench/*.erl "$ROOT"/test/beamprof_ct.erl
# scan_bench's and gap_bench's floor for ping gaps: a real-time thread per CPU
# outside the VM; without it they run and say that every gap counts as the VM's.
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$OUT/host_pinger" "$ROOT/bench/host_pinger.c" ||
    { echo "bench: host_pinger not built; ping gaps are not set apart from the host's" >&2;
      rm -f "$OUT/host_pinger"; }
[ $# -gt 0 ] || set -- gate_bench events_bench sampler_overhead flame_bench native_bench profile_bench scan_bench gap_bench
for bench in "$@"; do
    flags=""
    case "$bench" in
        sampler_overhead) call="sampler_overhead:run(${SAMPLER_SECONDS:-20})" ;;
        gate_bench|events_bench|flame_bench|profile_bench) call="$bench:run()" ;;
        native_bench) call="native_bench:run(${NATIVE_RUNS:-15})"; flags="+JPperf map +sbwt none +sbwtdcpu none +sbwtdio none" ;;
        scan_bench) call="scan_bench:run(${SCAN_SIZES:-[10000,100000,500000]})" ;;
        gap_bench) procs=${GAP_PROCS:-500000}; call="gap_bench:run($procs)"; flags="+P $((2 * procs + 100000))" ;;
        *) echo "bench: unknown benchmark $bench" >&2; exit 2 ;;
    esac
    # warning: the application stop reports (notice) would clutter the tables.
    # shellcheck disable=SC2086
    erl $flags -noshell -kernel logger_level warning -pa "$LIB/ebin" -pa "$OUT" -eval "$call, halt(0)."
done
