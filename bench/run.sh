#!/bin/sh
# Runs the benchmarks, each in a fresh VM:
#   bench/run.sh [BENCH ...]   the named ones (default: all, at their default settings)
#   bench/run.sh readme        every bench that prints a figure of README.md or doc/cost.md, at
#                              the settings they name, each under the doc/cost.md section it feeds
#                              (about 10 minutes on a quiet 2-core machine); `readme BENCH ...`
#                              runs only those, the same way
#   bench/run.sh list          the benches, with the doc/cost.md section each feeds
# BENCH: gate_bench events_bench sampler_overhead flame_bench native_bench saturated_bench
#        native_names profile_bench scan_bench gap_bench host_stalls micro_bench recorder_bench
#        cluster_bench pprof_bench continuous_bench, and continuous_soak (20 minutes: only
#        when named)
# The code path is beamprof's rebar3 build (_build/default/lib/beamprof, with priv/
# holding the NIF): run `rebar3 compile` first, or set BEAMPROF_LIB to another lib dir.
# SAMPLER_SECONDS sets the length of each sampler_overhead phase (default 20);
# NATIVE_RUNS the interleaved rounds of native_bench (default 15, readme 9);
# SATURATED_ROUNDS and SATURATED_WINDOW_MS saturated_bench's rounds and window (5, 2000);
# SATURATED_FLAGS extra VM flags for it (default none: a VM as an operator finds it);
# SCAN_SIZES sets scan_bench's process counts (default [10000,100000,500000], readme
# [100000,500000]); GAP_PROCS gap_bench's (default 500000); HOST_SECONDS host_stalls' (10);
# RECORDER_SECONDS the length of each recorder_bench phase (default 20);
# CLUSTER_PROCS cluster_bench's idle processes on each of its three nodes (default 20000).
# CONTINUOUS_PERIODS continuous_bench's periods per mode (default 3) and CONTINUOUS_PERIOD_MS
# their length (default 20000); BEAMPROF_SOAK_MIN continuous_soak's
# minutes (default 20).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${BEAMPROF_LIB:-$ROOT/_build/default/lib/beamprof}
OUT=${BENCH_OUT:-$ROOT/_build/bench}
ALL="gate_bench events_bench sampler_overhead flame_bench native_bench saturated_bench native_names profile_bench scan_bench gap_bench host_stalls micro_bench recorder_bench cluster_bench pprof_bench continuous_bench"

# The section of doc/cost.md (or the guide) whose figures a bench prints.
section() {
    case "$1" in
        gate_bench) echo 'doc/cost.md "At rest and on hot paths": beamprof:gate()' ;;
        events_bench) echo 'doc/cost.md "At rest and on hot paths": event dispatch' ;;
        sampler_overhead) echo 'doc/cost.md "At rest and on hot paths": beamprof running, the periodic scan' ;;
        micro_bench) echo 'doc/cost.md "Where each part runs", "The floor of top(memory)", "The VM monitor bridge"' ;;
        flame_bench) echo 'doc/cost.md "Flame graphs"' ;;
        native_bench) echo 'doc/cost.md "The native sampler": CPU-bound node' ;;
        saturated_bench) echo 'doc/cost.md "The native sampler" > "On a saturated node"' ;;
        native_names) echo 'doc/native-sampler.md "Names of C frames" (unnamed share)' ;;
        profile_bench) echo 'doc/cost.md "The profiling API"' ;;
        scan_bench) echo 'doc/cost.md "The process scan": the table and the targets' ;;
        gap_bench) echo 'doc/cost.md "The process scan" > "Against the targets"; doc/top-and-scan.md "Where the pids come from"' ;;
        host_stalls) echo 'doc/cost.md "The process scan" > "This machine takes its CPUs away for milliseconds"' ;;
        recorder_bench) echo 'doc/cost.md "The flight recorder": cost per record, share of one core, coverage in minutes' ;;
        cluster_bench) echo 'doc/cluster.md "Cost": top/3 over three nodes against erpc calls of a recon-like scan' ;;
        pprof_bench) echo 'doc/pprof.md "Cost": encode time and size against folded text' ;;
        continuous_bench) echo 'doc/continuous.md "Cost": sampler and collector per second, ratio to start/stop per period' ;;
        continuous_soak) echo 'doc/continuous.md "Memory": RSS growth over the last 10 minutes' ;;
        *) echo "" ;;
    esac
}

case "${1:-}" in
    list)
        for b in $ALL; do printf '%-17s %s\n' "$b" "$(section "$b")"; done
        exit 0 ;;
    readme)
        README=1
        NATIVE_RUNS=${NATIVE_RUNS:-9}
        SCAN_SIZES=${SCAN_SIZES:-[100000,500000]}
        shift
        [ $# -gt 0 ] || set -- $ALL ;;
    *)
        README=0
        [ $# -gt 0 ] || set -- $ALL ;;
esac

if [ ! -f "$LIB/ebin/beamprof.app" ]; then
    echo "bench: no beamprof build in $LIB; run 'rebar3 compile' first" >&2
    exit 1
fi
mkdir -p "$OUT"
# test/beamprof_ct.erl: the 1 ms pinger scan_bench and gap_bench share with the scan suite;
# test/beamprof_recorder_decode.erl: the recording decoder recorder_bench sizes records with.
# Warnings are errors: a bench that does not compile cleanly does not run.
erlc -Werror -Wall -o "$OUT" "$ROOT"/bench/*.erl "$ROOT"/test/beamprof_ct.erl \
    "$ROOT"/test/beamprof_recorder_decode.erl
# host_stalls: a real-time thread per CPU outside the VM
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$OUT/host_pinger" "$ROOT/bench/host_pinger.c" ||
    { echo "bench: host_pinger not built; host_stalls will say so" >&2;
      rm -f "$OUT/host_pinger"; }
START=$(date +%s)
for bench in "$@"; do
    flags=""
    case "$bench" in
        sampler_overhead) call="sampler_overhead:run(${SAMPLER_SECONDS:-20})" ;;
        gate_bench|events_bench|flame_bench|profile_bench|micro_bench|pprof_bench) call="$bench:run()" ;;
        native_bench) call="native_bench:run(${NATIVE_RUNS:-15})"; flags="+JPperf map +sbwt none +sbwtdcpu none +sbwtdio none" ;;
        saturated_bench) call="saturated_bench:run(${SATURATED_ROUNDS:-5}, ${SATURATED_WINDOW_MS:-2000})"; flags="${SATURATED_FLAGS:-}" ;;
        native_names) call="native_names:run(${NAMES_RUNS:-3})"; flags="+JPperf map" ;;
        scan_bench) call="scan_bench:run(${SCAN_SIZES:-[10000,100000,500000]})" ;;
        gap_bench) procs=${GAP_PROCS:-500000}; call="gap_bench:run($procs)"; flags="+P $((2 * procs + 100000))" ;;
        host_stalls) call="host_pingers:run(${HOST_SECONDS:-10})" ;;
        recorder_bench) call="recorder_bench:run(${RECORDER_SECONDS:-20})" ;;
        cluster_bench) call="cluster_bench:run(${CLUSTER_PROCS:-20000})" ;;
        continuous_bench) call="continuous_bench:run(${CONTINUOUS_PERIODS:-3}, ${CONTINUOUS_PERIOD_MS:-20000})" ;;
        continuous_soak) call="continuous_soak:run(${BEAMPROF_SOAK_MIN:-20})" ;;
        *) echo "bench: unknown benchmark $bench" >&2; exit 2 ;;
    esac
    if [ "$README" = 1 ]; then
        printf '\n==== %s\n==== printed by: bench/run.sh %s (%s)\n' "$(section "$bench")" "$bench" "$call"
    fi
    t0=$(date +%s)
    # warning: the application stop reports (notice) would clutter the tables.
    # shellcheck disable=SC2086
    erl $flags -noshell -kernel logger_level warning -pa "$LIB/ebin" -pa "$OUT" -eval "$call, halt(0)."
    [ "$README" = 0 ] || printf '==== %s took %s s\n' "$bench" "$(( $(date +%s) - t0 ))"
done
[ "$README" = 0 ] || printf '\n==== all README benches took %s s\n' "$(( $(date +%s) - START ))"
