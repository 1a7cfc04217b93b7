#!/usr/bin/env bash
# Usage: bench/engine-run.sh [N=20] [SCALE=200]      (as root)
# `run --rm IMAGE /bin/true`, side by side: berth (release build, private --root), docker
# (a private dockerd 20.10 started here) and podman (cgroupfs, file events), all on the
# same busybox-static image imported from local files, through
# ../shared/bench/engine-run.sh, interleaved. Every engine runs as installed, on its default
# bridge network (NETWORK=bridge, the default), inside a network namespace made here, so
# their bridges and firewall rules never reach the host's; NETWORK=none compares them with
# networking off instead (berth through a /bin/sh wrapper adding `--network none`, ~0.5 ms;
# dockerd without its bridge; podman with --network none).
# (On a hybrid cgroup host the shared script runs them all in a mount namespace where
# /sys/fs/cgroup/unified is hidden, since podman's crun refuses that layout.)
# Then the cost of running containers: SCALE detached `sleep` containers per engine, the
# resident memory (RSS and PSS) of each one's monitor (berth-monitor / conmon /
# containerd-shim-runc-v2), and the time to start and to remove them all.
# Env: BERTH (binary; default: cargo build --release -p berth -p berth-monitor),
#      ENGINES (berth,docker,podman), NETWORK (bridge|none), WORKDIR (/tmp/bench-work),
#      SHARED (../shared/bench).
set -u
. "$(dirname "$0")/lib.sh"
N=${1:-20}; SCALE=${2:-200}; NETWORK=${NETWORK:-bridge}
case $NETWORK in bridge|none) ;; *) die "NETWORK is bridge or none" ;; esac
IFS=, read -r -a ENGINES <<< "${ENGINES:-berth,docker,podman}"
[ "$(id -u)" = 0 ] || die "run as root"
for c in dockerd /usr/bin/docker; do command -v "$c" >/dev/null || die "$c missing (scripts/deps.sh installs it)"; done
case ",${ENGINES[*]}," in *podman*) command -v podman >/dev/null || die "podman missing: apt-get install -y podman, or ENGINES=berth,docker" ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$REPO/../shared/bench}
[ -x "$SHARED/engine-run.sh" ] || die "no $SHARED/engine-run.sh"
if [ -z "${BERTH:-}" ]; then
  (cd "$REPO" && cargo build --release -q -p berth -p berth-monitor -p berth-dns) || die "cargo build --release failed"
  BERTH=${CARGO_TARGET_DIR:-$REPO/target}/release/berth
fi
[ -x "$BERTH" ] && [ -x "$(dirname "$BERTH")/berth-monitor" ] || die "no berth (and berth-monitor) at $BERTH"
mkdir -p "$WORKDIR"
W=$(mktemp -d "$WORKDIR/engine.XXXXXX")
NS=berth-bench-run-$$
ip netns add "$NS" || die "ip netns add failed"
ip -n "$NS" link set lo up
X() { nsenter --net="/run/netns/$NS" "$@"; }
DOCKERD_PID=; MADE_DIRS=()
for d in /run/docker /run/docker/plugins /run/containerd /run/containerd/s; do [ -e $d ] || MADE_DIRS+=($d); done
# The cgroup parents dockerd (`docker`) and podman with cgroupfs (`libpod_parent`) make and
# leave behind: removed afterwards where this run made them.
CG_MADE=()
for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  for n in docker libpod_parent; do [ -e "$c$n" ] || CG_MADE+=("$c$n"); done
done
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}
B() { X "$BERTH" --root "$W/berth/root" --runroot "$W/berth/run" "$@"; }
cleanup() {
  B ps -aq 2>/dev/null | xargs -r nsenter --net="/run/netns/$NS" "$BERTH" --root "$W/berth/root" --runroot "$W/berth/run" rm -f >/dev/null 2>&1
  [ -n "$DOCKERD_PID" ] && { docker_ ps -aq 2>/dev/null | xargs -r "$DOCKER_CLI" -H "unix://$D/docker.sock" rm -f >/dev/null 2>&1; stop_pid "$DOCKERD_PID"; }
  local cpid; cpid=$(cat "$W/docker/exec/containerd/containerd.pid" 2>/dev/null)
  [ -n "$cpid" ] && [ -d "/proc/$cpid" ] && stop_pid "$cpid"
  local m; for m in $(awk -v w="$W" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"; done
  ip netns delete "$NS" 2>/dev/null
  rm -rf "$W"
  local i; for ((i = ${#MADE_DIRS[@]} - 1; i >= 0; i--)); do rmdir "${MADE_DIRS[$i]}" 2>/dev/null; done
  local cg; for cg in "${CG_MADE[@]}"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$cg" ] && echo "warning: cgroup $cg left (not empty)" >&2
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- one image, from local files, in every engine ----
ensure_rootfs
tar -C "$ROOTFS" -cf "$W/rootfs.tar" .
IMG=bbbench:latest
B import -c 'CMD ["sh"]' "$W/rootfs.tar" "$IMG" >/dev/null || die "berth import failed"
DOCKER_CLI=/usr/bin/docker
D=$W/docker; mkdir -p "$D/client"; echo "{}" > "$D/client/config.json"
printf '{"deprecated-key-path":"%s/key.json"}' "$D" > "$D/daemon.json"
DOCKERD_NET=; [ "$NETWORK" = none ] && DOCKERD_NET="--bridge=none --iptables=false --ip6tables=false --ip-forward=false"
# nsenter execs dockerd: $! is dockerd's pid.
nsenter --net="/run/netns/$NS" dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
  --pidfile "$D/docker.pid" -H "unix://$D/docker.sock" $DOCKERD_NET > "$D/dockerd.log" 2>&1 </dev/null &
DOCKERD_PID=$!
docker_() { DOCKER_CONFIG=$D/client "$DOCKER_CLI" -H "unix://$D/docker.sock" "$@"; }
for i in $(seq 300); do docker_ version >/dev/null 2>&1 && break; kill -0 $DOCKERD_PID 2>/dev/null || break; sleep 0.2; done
docker_ version >/dev/null 2>&1 || die "dockerd did not start: $(tail -5 "$D/dockerd.log")"
docker_ import -c 'CMD ["sh"]' "$W/rootfs.tar" "$IMG" >/dev/null || die "docker import failed"
export DOCKER_HOST=unix://$D/docker.sock DOCKER_CONFIG=$D/client
export BERTH_ROOT=$W/berth/root BERTH_RUNROOT=$W/berth/run IMAGE_docker=$IMG
export PODMAN_RUN="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
[ "$NETWORK" = none ] && PODMAN_RUN+=" --network none"
PODMAN_GLOBAL="--cgroup-manager cgroupfs --events-backend file"

BERTH_RUN=$BERTH
if [ "$NETWORK" = none ]; then
  BERTH_RUN=$W/berth-none
  printf '#!/bin/sh\nif [ "$1" = run ]; then shift; exec "%s" run --network none "$@"; fi\nexec "%s" "$@"\n' \
    "$BERTH" "$BERTH" > "$BERTH_RUN"
  chmod +x "$BERTH_RUN"
fi
list=()
for e in "${ENGINES[@]}"; do case $e in berth) list+=("$BERTH_RUN") ;; *) list+=("$e") ;; esac; done
echo "# run --rm /bin/true, N=$N, interleaved, network $NETWORK"
X "$SHARED/engine-run.sh" "$(IFS=,; echo "${list[*]}")" "$N"

# ---- running containers: monitor memory, start and remove SCALE of them ----
scale() { # NAME CMD... ; prints start and rm totals and per-monitor memory
  local e=$1; shift
  local t0 t1 t2 i ids=() pids rss=0 pss=0 n=0 shim
  case $e in berth) shim=berth-monitor ;; docker) shim=containerd-shim ;; podman) shim=conmon ;; esac
  t0=$(now_us)
  for i in $(seq "$SCALE"); do ids+=("$("$@" run -d $RUNF "$IMG" sleep 600 2>/dev/null)") || { echo "$e: run -d failed" >&2; break; }; done
  t1=$(now_us)
  sleep 2
  for p in $(pgrep -f "^[^ ]*$shim"); do
    case $e in berth) grep -q "$W" /proc/$p/cmdline 2>/dev/null || continue ;; esac
    rss=$((rss + $(rss_kb $p))); pss=$((pss + $(pss_kb $p))); n=$((n + 1))
  done
  t2=$(now_us)
  "$@" rm -f $RMF "${ids[@]}" >/dev/null 2>&1
  local t3; t3=$(now_us)
  awk -v e="$e" -v n="${#ids[@]}" -v m="$n" -v r="$rss" -v p="$pss" -v s=$((t1 - t0)) -v d=$((t3 - t2)) 'BEGIN {
    printf "engine=%s test=scale containers=%d start_total_s=%.2f start_per_ms=%.1f rm_total_s=%.2f monitors=%d monitor_rss_kb=%.0f monitor_pss_kb=%.0f\n",
      e, n, s/1e6, s/1e3/(n?n:1), d/1e6, m, (m?r/m:0), (m?p/m:0) }'
}
for e in "${ENGINES[@]}"; do
  case $e in
    berth) RUNF=""; [ "$NETWORK" = none ] && RUNF="--network none"; RMF=""; scale berth B ;;
    docker) RUNF=""; RMF=""; scale docker docker_ ;;
    podman) RUNF=$PODMAN_RUN; RMF="-t 0"
      podman $PODMAN_GLOBAL image exists localhost/$IMG 2>/dev/null || podman $PODMAN_GLOBAL import -c 'CMD ["sh"]' "$W/rootfs.tar" "localhost/$IMG" >/dev/null
      # Outside the shared script's namespace crun refuses this host's hybrid cgroups: runc.
      IMG=localhost/$IMG scale podman X podman $PODMAN_GLOBAL --runtime runc ;;
  esac
done
