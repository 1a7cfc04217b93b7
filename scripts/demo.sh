#!/usr/bin/env bash
# The main job, from local files only: build a busybox root filesystem from
# Debian's busybox-static, make an OCI bundle for it, and run a container.
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
BERTH=$(scripts/build-runtime.sh)
B=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$B"' EXIT
mkdir -p "$B/rootfs/bin"
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
for a in sh echo hostname id cat grep; do ln -s busybox "$B/rootfs/bin/$a"; done
"$BERTH" spec --bundle "$B"
jq '.process.terminal=false | .process.args=["sh","-c","echo hello from $(hostname): I am $(id -u) with pid $$; grep CapEff /proc/self/status"]' \
  "$B/config.json" > "$B/c.json" && mv "$B/c.json" "$B/config.json"
"$BERTH" run --bundle "$B" "demo-$$"
