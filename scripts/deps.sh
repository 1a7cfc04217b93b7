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
command -v newuidmap >/dev/null || need+=(uidmap)
# Interop tests: containerd 1.6 (containerd, ctr, containerd-shim-runc-v2)
# and dockerd 20.10 with its client. Another `docker` on PATH is no
# substitute: the tests use Debian's client next to Debian's dockerd.
{ command -v containerd && command -v ctr && command -v containerd-shim-runc-v2; } >/dev/null || need+=(containerd)
{ command -v dockerd && [ -x /usr/bin/docker ]; } >/dev/null || need+=(docker.io)
# Image archive interop (berth-image's archive tests): skopeo reads and
# writes docker-archive: and oci-archive: tarballs.
command -v skopeo >/dev/null || need+=(skopeo)
# bench/pull.sh unpacks what skopeo copied with umoci, the third puller it times.
command -v umoci >/dev/null || need+=(umoci)
# Registry client tests (berth-image): Debian's registry:2 and htpasswd for
# its basic-auth variant.
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# berth-network's root tests: `ip netns`/links in test namespaces (iproute2)
# and the nftables rulesets berth applies with `nft -f -` (nftables).
{ command -v ip || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ]; } >/dev/null || need+=(iproute2)
{ command -v nft || [ -x /usr/sbin/nft ]; } >/dev/null || need+=(nftables)
# berth.db: rusqlite links the system SQLite.
[ -e /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# Signs the RS256 tokens of the token-auth registry test.
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own containerd, dockerd and registry: keep the
  # packages from starting the system ones (dockerd would set up docker0, iptables
  # rules and IP forwarding) unless a policy-rc.d already decides.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
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
