#!/usr/bin/env bash
# Usage: bench/run.sh [N=100]
# Builds berth-runc (scripts/build-runtime.sh) and runs the runtime benchmarks side by side
# with runc and crun: lifecycle (create+start+wait+delete, and run), then
# N containers started concurrently. Output lines are key=value.
set -eu
cd "$(dirname "$0")/.."
N=${1:-100}
BERTH=$(scripts/build-runtime.sh)
RTS=$BERTH
for r in runc crun; do command -v $r >/dev/null && RTS+=",$r"; done
echo "# $(date -Is) cpus=$(nproc) kernel=$(uname -r) load=$(cut -d' ' -f1-3 /proc/loadavg)"
bench/runtime-lifecycle.sh "$RTS" "$N"
bench/runtime-concurrent.sh "$RTS" "$N"
