#!/usr/bin/env bash
# Install the system packages the demo, tests and benchmarks need (Debian).
# Does nothing when they are all present.
set -euo pipefail
need=()
command -v busybox >/dev/null || need+=(busybox-static)
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
command -v ps >/dev/null || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Docker's default seccomp profile, for the seccomp tests: only the one file
# from Debian's golang-github-docker-docker-dev (installing that package
# would pull in hundreds of others).
profile=/var/cache/berth-test/docker-seccomp-default.json
if [ ! -s "$profile" ]; then
  mkdir -p "$(dirname "$profile")"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download -qq golang-github-docker-docker-dev 2>/dev/null \
      || { apt-get update -qq && apt-get download -qq golang-github-docker-docker-dev; }; } \
    && dpkg-deb -x golang-github-docker-docker-dev_*.deb x)
  cp "$tmp/x/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json" "$profile"
  rm -rf "$tmp"
fi
