#!/usr/bin/env bash
# Usage: bench/network.sh [N=20] [IPERF_SECONDS=5]      (as root)
# What networking adds to `run --rm IMAGE /bin/true`: each engine with `--network none`,
# on its default bridge, and on the bridge with `-p 8080:80`, interleaved, N runs each;
# berth (release build, private --root), docker (a private dockerd 20.10 with its bridge,
# iptables and userland proxy, as installed) and podman (rootful, netavark). Then iperf3
# throughput between two containers on one bridge, berth vs docker.
# Everything runs inside a network namespace made here (nsenter --net), so the host's
# links and firewall are never touched; it is deleted at the end with all it holds.
# Env: BERTH (binary; default: cargo build --release -p berth -p berth-monitor -p berth-dns),
#      ENGINES (berth,docker,podman), WORKDIR (/tmp/bench-work).
set -u
. "$(dirname "$0")/lib.sh"
N=${1:-20}; SECS=${2:-5}
IFS=, read -r -a ENGINES <<< "${ENGINES:-berth,docker,podman}"
[ "$(id -u)" = 0 ] || die "run as root"
for c in dockerd /usr/bin/docker ip nsenter nft; do command -v "$c" >/dev/null || die "$c missing (scripts/deps.sh installs it)"; done
command -v iperf3 >/dev/null || die "iperf3 missing: apt-get install -y iperf3"
case ",${ENGINES[*]}," in *podman*) command -v podman >/dev/null || die "podman missing: apt-get install -y podman, or ENGINES=berth,docker" ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then
  (cd "$REPO" && cargo build --release -q -p berth -p berth-monitor -p berth-dns) || die "cargo build --release failed"
  BERTH=${CARGO_TARGET_DIR:-$REPO/target}/release/berth
fi
mkdir -p "$WORKDIR"
W=$(mktemp -d "$WORKDIR/net.XXXXXX")
NS=berth-bench-$$
ip netns add "$NS" || die "ip netns add failed"
ip -n "$NS" link set lo up
X() { nsenter --net="/run/netns/$NS" "$@"; }
B() { X "$BERTH" --root "$W/berth/root" --runroot "$W/berth/run" "$@"; }
D=$W/docker; DOCKERD_PID=
DK() { X env DOCKER_CONFIG="$D/client" /usr/bin/docker -H "unix://$D/docker.sock" "$@"; }
P() { X podman --root "$W/podman/root" --runroot "$W/podman/run" --cgroup-manager cgroupfs \
        --events-backend file --runtime runc "$@"; }
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
}
cleanup() {
  # berth's containers are in the bench's namespace: removed from there.
  B ps -aq 2>/dev/null | xargs -r nsenter --net="/run/netns/$NS" "$BERTH" --root "$W/berth/root" --runroot "$W/berth/run" rm -f >/dev/null 2>&1
  [ -n "$DOCKERD_PID" ] && { DK ps -aq 2>/dev/null | xargs -r -n1 -I{} nsenter --net="/run/netns/$NS" /usr/bin/docker -H "unix://$D/docker.sock" rm -f {} >/dev/null 2>&1; stop_pid "$DOCKERD_PID"; }
  local cpid; cpid=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null)
  [ -n "$cpid" ] && [ -d "/proc/$cpid" ] && stop_pid "$cpid"
  P rm -af >/dev/null 2>&1
  local m; for m in $(awk -v w="$W" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"; done
  ip netns delete "$NS" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the images: busybox, and iperf3 with the libraries it loads ----
ensure_rootfs
tar -C "$ROOTFS" -cf "$W/rootfs.tar" .
IP=$W/iperf; mkdir -p "$IP"; cp -a "$ROOTFS/." "$IP/"
for f in "$(command -v iperf3)" $(ldd "$(command -v iperf3)" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  cp --parents -L "$f" "$IP/"
done
ln -sf "$(command -v iperf3)" "$IP/bin/iperf3" 2>/dev/null
tar -C "$IP" -cf "$W/iperf.tar" .
IMG=bbnet:latest; IPERF=iperfnet:latest
B import -c 'CMD ["sh"]' "$W/rootfs.tar" "$IMG" >/dev/null || die "berth import failed"
B import "$W/iperf.tar" "$IPERF" >/dev/null || die "berth import failed"
mkdir -p "$D/client"; echo "{}" > "$D/client/config.json"
printf '{"deprecated-key-path":"%s/key.json"}' "$D" > "$D/daemon.json"
# nsenter execs dockerd: $! is dockerd's pid.
nsenter --net="/run/netns/$NS" dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
  --pidfile "$D/docker.pid" -H "unix://$D/docker.sock" > "$D/dockerd.log" 2>&1 </dev/null &
DOCKERD_PID=$!
for i in $(seq 300); do DK version >/dev/null 2>&1 && break; kill -0 $DOCKERD_PID 2>/dev/null || break; sleep 0.2; done
DK version >/dev/null 2>&1 || die "dockerd did not start: $(tail -5 "$D/dockerd.log")"
DK import -c 'CMD ["sh"]' "$W/rootfs.tar" "$IMG" >/dev/null || die "docker import failed"
DK import "$W/iperf.tar" "$IPERF" >/dev/null || die "docker import failed"
if [[ ",${ENGINES[*]}," == *podman* ]]; then
  P import "$W/rootfs.tar" "localhost/$IMG" >/dev/null || die "podman import failed"
fi

# ---- run --rm with each networking ----
declare -A T
one() { # ENGINE MODE
  local e=$1 m=$2 flags t0 t1 rc=0
  case $m in none) flags="--network none" ;; bridge) flags="" ;; publish) flags="-p 8080:80" ;; esac
  t0=$(now_us)
  case $e in
    berth) B run --rm $flags "$IMG" /bin/true </dev/null >/dev/null 2>&1 || rc=1 ;;
    docker) DK run --rm $flags "$IMG" /bin/true </dev/null >/dev/null 2>&1 || rc=1 ;;
    podman) P run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $flags "localhost/$IMG" /bin/true </dev/null >/dev/null 2>&1 || rc=1 ;;
  esac
  t1=$(now_us)
  [ $rc = 0 ] || { echo "warning: $e run ($m) failed" >&2; return; }
  T[$e.$m]+="$((t1 - t0)) "
}
MODES=(none bridge publish)
for e in "${ENGINES[@]}"; do for m in "${MODES[@]}"; do one "$e" "$m"; one "$e" "$m"; T[$e.$m]=""; done; done
for i in $(seq "$N"); do for m in "${MODES[@]}"; do for e in "${ENGINES[@]}"; do one "$e" "$m"; done; done; done
echo "# run --rm /bin/true by networking, N=$N, interleaved, in a private network namespace"
for e in "${ENGINES[@]}"; do
  for m in "${MODES[@]}"; do
    echo "engine=$e network=$m $(tr ' ' '\n' <<< "${T[$e.$m]}" | grep . | stats)"
  done
  none=$(tr ' ' '\n' <<< "${T[$e.none]}" | grep . | median_of)
  for m in bridge publish; do
    med=$(tr ' ' '\n' <<< "${T[$e.$m]}" | grep . | median_of)
    awk -v e="$e" -v m="$m" -v a="$med" -v b="$none" 'BEGIN { printf "engine=%s added_by=%s median_added_ms=%.2f\n", e, m, (a-b)/1000 }'
  done
done

# ---- iperf3 between two containers on one bridge ----
echo "# iperf3 -t $SECS between two containers on the default bridge"
for e in berth docker; do
  C() { if [ $e = berth ]; then B "$@"; else DK "$@"; fi; }
  C run -d --name iperf-srv "$IPERF" iperf3 -s >/dev/null || die "$e: iperf3 server failed"
  sleep 0.5
  ip=$(C inspect -f '{{.NetworkSettings.IPAddress}}' iperf-srv)
  out=$(C run --rm "$IPERF" iperf3 -c "$ip" -t "$SECS" -J 2>/dev/null)
  bps=$(grep -A8 '"sum_received"' <<< "$out" | awk -F: '/bits_per_second/ {gsub(/[ ,]/, "", $2); print $2; exit}')
  awk -v e="$e" -v b="${bps:-0}" 'BEGIN { printf "engine=%s iperf3_gbit_s=%.2f\n", e, b/1e9 }'
  C rm -f iperf-srv >/dev/null
done
