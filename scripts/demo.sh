#!/usr/bin/env bash
# The main job, from local files only: make an image from Debian's
# busybox-static with `berth import`, run containers from it with `berth run`
# (in the foreground, and detached with logs), then unpack the same image
# into an OCI bundle (`berth image export`) and run it with berth-runc.
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
RUNTIME=$(scripts/build-runtime.sh)
cargo build -q -p berth -p berth-monitor
BERTH="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/berth"
B=$(mktemp -d /tmp/berth-demo.XXXXXX)
# The containers join berth's default bridge: what the demo adds to the host's
# network (the bridge berth0, berth's nftables tables) goes away with it.
had() { "$@" >/dev/null 2>&1 && echo yes || true; }
HAD_BRIDGE=$(had ip link show berth0); HAD_NFT=$(had nft list table inet berth)
HAD_USER_NFT=$(had nft list table inet berth-user)
cleanup() {
  "$BERTH" --root "$B/store" --runroot "$B/run" rm -f demo-web >/dev/null 2>&1
  [ -n "$HAD_BRIDGE" ] || ip link del berth0 2>/dev/null
  [ -n "$HAD_NFT" ] || nft delete table inet berth 2>/dev/null
  [ -n "$HAD_USER_NFT" ] || nft delete table inet berth-user 2>/dev/null
  rm -rf "$B"
}
trap cleanup EXIT
# An image from local files, in a store of its own.
mkdir -p "$B/files/bin"
cp "$(command -v busybox)" "$B/files/bin/busybox"
for a in sh echo hostname id cat grep sleep; do ln -s busybox "$B/files/bin/$a"; done
tar -C "$B/files" -c . | "$BERTH" --root "$B/store" import -c 'CMD ["sh"]' - demo/busybox:1
"$BERTH" --root "$B/store" images
# Containers from it, as with docker run.
"$BERTH" --root "$B/store" --runroot "$B/run" run --rm demo/busybox:1 \
  sh -c 'echo hello from $(hostname) at $(hostname -i): I am $(id -u) with pid $$; grep CapEff /proc/self/status'
"$BERTH" --root "$B/store" --runroot "$B/run" run -d --name demo-web demo/busybox:1 \
  sh -c 'echo serving; sleep 1; echo done' >/dev/null
"$BERTH" --root "$B/store" --runroot "$B/run" ps
"$BERTH" --root "$B/store" --runroot "$B/run" logs -f demo-web   # follows until it exits
"$BERTH" --root "$B/store" --runroot "$B/run" rm -f demo-web
# A bundle from the image, run by berth-runc.
mkdir -p "$B/bundle/rootfs"
"$BERTH" --root "$B/store" image export demo/busybox:1 | tar -C "$B/bundle/rootfs" -x
"$RUNTIME" spec --bundle "$B/bundle"
jq '.process.terminal=false | .process.args=["sh","-c","echo hello from $(hostname): I am $(id -u) with pid $$; grep CapEff /proc/self/status"]' \
  "$B/bundle/config.json" > "$B/c.json" && mv "$B/c.json" "$B/bundle/config.json"
"$RUNTIME" run --bundle "$B/bundle" "demo-$$"
