#!/usr/bin/env bash
# Build the berth-runc binary we ship and benchmark, and print its path.
# On Linux/glibc it is a static, non-PIE executable: no dynamic loader, no
# start-up relocations, which saves both start time and resident memory
# (see docs/benchmarks.md). The flags need an explicit --target so that they
# reach our code but not the proc-macro crates the build runs on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
out=${CARGO_TARGET_DIR:-$PWD/target}
case "$host" in
  *-linux-gnu)
    RUSTFLAGS="${RUSTFLAGS:-} -C relocation-model=static -C target-feature=+crt-static" \
      cargo build -q --profile runtime --target "$host" -p berth-runc
    echo "$out/$host/runtime/berth-runc" ;;
  *)
    cargo build -q --profile runtime -p berth-runc
    echo "$out/runtime/berth-runc" ;;
esac
