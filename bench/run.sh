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
# Again with Docker's default seccomp profile in the bundle (fetched by
# scripts/deps.sh), in OCI form for the capabilities of `runc spec`.
DOCKER_PROFILE=/var/cache/berth-test/docker-seccomp-default.json
if [ -s "$DOCKER_PROFILE" ]; then
  SECCOMP=$(mktemp /tmp/berth-bench-seccomp.XXXXXX)
  cargo run --release -q -p berth-seccomp --example docker2oci -- "$DOCKER_PROFILE" > "$SECCOMP"
  echo "# with Docker's default seccomp profile"
  SECCOMP=$SECCOMP bench/runtime-lifecycle.sh "$RTS" "$N"
  rm -f "$SECCOMP"
fi
bench/runtime-concurrent.sh "$RTS" "$N"
