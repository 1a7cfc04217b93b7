#!/usr/bin/env bash
# Usage: bench/runtime-concurrent.sh RUNTIME[,RUNTIME...] [N=100] [SLEEP=30]
#   Starts N `sleep SLEEP` containers with `RUNTIME run -d`, all at once
#   (N background jobs), and reports the wall time until every one is
#   running; then kill -9 + delete -f of all of them, also concurrently.
#   Runtimes listed run one after another on the same bundle.
# Env: ROOTFS (built on first use), HIDE_UNIFIED (auto|1|0)
set -u
. "$(dirname "$0")/lib.sh"
maybe_hide_unified "$0" "$@"
[ $# -ge 1 ] || die "usage: $0 RUNTIME[,RUNTIME...] [N] [SLEEP]"
IFS=, read -r -a RTS <<< "$1"; N=${2:-100}; SLEEP=${3:-30}
B=$WORKDIR/bundle-conc-$$; make_bundle "$B" /bin/sleep "$SLEEP"
trap 'rm -rf "$B"' EXIT
for rt in "${RTS[@]}"; do
  command -v "$rt" >/dev/null || die "runtime not found: $rt"
  name=$(basename "$rt")
  T0=$(now_us)
  for i in $(seq 1 "$N"); do "$rt" run -d --bundle "$B" "$TAG-$name-c$i" </dev/null >/dev/null 2>&1 & done
  wait
  T1=$(now_us)
  running=0; for i in $(seq 1 "$N"); do "$rt" state "$TAG-$name-c$i" 2>/dev/null | grep -q '"running"' && running=$((running+1)); done
  T2=$(now_us)
  for i in $(seq 1 "$N"); do { "$rt" kill "$TAG-$name-c$i" KILL; "$rt" delete -f "$TAG-$name-c$i"; } </dev/null >/dev/null 2>&1 & done
  wait
  T3=$(now_us)
  left=0; for i in $(seq 1 "$N"); do "$rt" state "$TAG-$name-c$i" >/dev/null 2>&1 && left=$((left+1)); done
  echo "runtime=$name test=concurrent_start n=$N total_s=$(awk -v a=$T0 -v b=$T1 'BEGIN{printf "%.2f",(b-a)/1e6}') running=$running teardown_s=$(awk -v a=$T2 -v b=$T3 'BEGIN{printf "%.2f",(b-a)/1e6}') left=$left $(ns_note)"
done
