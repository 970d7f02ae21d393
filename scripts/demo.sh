#!/usr/bin/env bash
# make demo: the workload and what beamprof sees (scripts/demo.escript).
set -euo pipefail
cd "$(dirname "$0")/.."
exec escript scripts/demo.escript
