#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the end-to-end
# tests that run real containers (they need root; as another user they
# report "skipping" and pass). Run as root on a fresh Debian machine:
#   sudo scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/deps.sh; fi
# Docker's default seccomp profile, fetched by deps.sh.
if [ -s /var/cache/berth-test/docker-seccomp-default.json ]; then
  export BERTH_DOCKER_SECCOMP_PROFILE=${BERTH_DOCKER_SECCOMP_PROFILE:-/var/cache/berth-test/docker-seccomp-default.json}
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
# The container tests run berth-monitor next to berth: cargo test builds only
# the binaries of the package under test, so build them all first.
cargo build --workspace --bins -q
cargo test --workspace --no-fail-fast
# The binary we ship (static, non-PIE) runs the README's demo.
if [ "$(id -u)" = 0 ]; then scripts/demo.sh; fi
