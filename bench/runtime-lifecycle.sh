#!/usr/bin/env bash
# Copied from shared/bench (plain bash, ours). Usage: bench/runtime-lifecycle.sh RUNTIME[,RUNTIME...] [N=100]
#   RUNTIME: path or name of an OCI runtime CLI (runc, crun, youki, ...).
#   Several comma-separated runtimes are interleaved container by container
#   (rotating order) so that they see the same machine noise.
# Per runtime prints:
#   lifecycle  : create + start + wait-for-exit + delete -f of a /bin/true container
#   phases     : median of each lifecycle step
#   run        : `run` (foreground, waits for exit) [+ delete -f if the runtime keeps it]
#   rss        : peak RSS (KiB, /usr/bin/time %M) of each runtime sub-command
#   ratio      : median vs the first runtime listed
# Env: ROOTFS (default: a busybox rootfs built on first use), RSS_SAMPLES (5), WARMUP (5), HIDE_UNIFIED (auto|1|0),
#      GUARD_TIMEOUT (30 s: a runtime command running longer is SIGKILLed and counted
#      as fail + hangs_killed; youki 0.7.0 `run` was seen to hang on a zombie)
set -u
. "$(dirname "$0")/lib.sh"
maybe_hide_unified "$0" "$@"
[ $# -ge 1 ] || die "usage: $0 RUNTIME[,RUNTIME...] [N]"
IFS=, read -r -a RTS <<< "$1"; N=${2:-100}
RSS_SAMPLES=${RSS_SAMPLES:-5}; WARMUP=${WARMUP:-5}
for r in "${RTS[@]}"; do command -v "$r" >/dev/null || die "runtime not found: $r"; done

B=$WORKDIR/bundle-true-$$; make_bundle "$B" /bin/true
PF=$WORKDIR/pid-$$; guard_start; trap 'guard_stop; rm -rf "$B" "$PF" "$WORKDIR"/rss-$$' EXIT

declare -A LC RUN FAIL NEEDDEL PH_C PH_S PH_W PH_D HANG
one_lifecycle() { # RT ID -> prints "total create start wait delete" in us, rc!=0 on failure
  local rt=$1 id=$2 t0 t1 t2 t3 t4 rc=0
  t0=$(now_us)
  guarded "$rt" create --bundle "$B" --pid-file "$PF" "$id" </dev/null >/dev/null 2>&1 || rc=1
  t1=$(now_us)
  if [ $rc = 0 ]; then guarded "$rt" start "$id" </dev/null >/dev/null 2>&1 || rc=1; fi
  t2=$(now_us)
  [ $rc = 0 ] && wait_exit "$(<"$PF")"
  t3=$(now_us)
  guarded "$rt" delete -f "$id" </dev/null >/dev/null 2>&1 || rc=1
  t4=$(now_us); echo "$((t4 - t0)) $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t4 - t3))"; return $rc
}
one_run() {
  local rt=$1 id=$2 t0 t1 rc=0
  t0=$(now_us)
  guarded "$rt" run --bundle "$B" "$id" </dev/null >/dev/null 2>&1 || rc=1
  [ "${NEEDDEL[$rt]}" = 1 ] && { guarded "$rt" delete -f "$id" </dev/null >/dev/null 2>&1 || rc=1; }
  [ $rc = 0 ] || "$rt" delete -f "$id" </dev/null >/dev/null 2>&1
  t1=$(now_us); echo $((t1 - t0)); return $rc
}

# does `RT run` leave the stopped container behind?
for rt in "${RTS[@]}"; do
  id=$TAG-probe; guarded "$rt" run --bundle "$B" "$id" </dev/null >/dev/null 2>&1
  if "$rt" state "$id" >/dev/null 2>&1; then NEEDDEL[$rt]=1; "$rt" delete -f "$id" >/dev/null 2>&1; else NEEDDEL[$rt]=0; fi
  FAIL[$rt]=0; LC[$rt]=""; RUN[$rt]=""; PH_C[$rt]=""; PH_S[$rt]=""; PH_W[$rt]=""; PH_D[$rt]=""
  for i in $(seq 1 "$WARMUP"); do one_lifecycle "$rt" "$TAG-w$i" >/dev/null; one_run "$rt" "$TAG-wr$i" >/dev/null; done
done

nrt=${#RTS[@]}
for i in $(seq 1 "$N"); do
  for k in $(seq 0 $((nrt - 1))); do
    rt=${RTS[$(( (i + k) % nrt ))]}
    h0=$(guard_hangs)
    if v=$(one_lifecycle "$rt" "$TAG-l$i"); then read -r us c s w d <<< "$v"; LC[$rt]+="$us "
      PH_C[$rt]+="$c "; PH_S[$rt]+="$s "; PH_W[$rt]+="$w "; PH_D[$rt]+="$d "; else FAIL[$rt]=$((FAIL[$rt]+1)); fi
    if us=$(one_run "$rt" "$TAG-r$i"); then RUN[$rt]+="$us "; else FAIL[$rt]=$((FAIL[$rt]+1)); fi
    HANG[$rt]=$(( ${HANG[$rt]:-0} + $(guard_hangs) - h0 ))
  done
done

# peak RSS per sub-command (max over RSS_SAMPLES containers)
T=/usr/bin/time; R=$WORKDIR/rss-$$
declare -A RSS
for rt in "${RTS[@]}"; do
  c=0; s=0; d=0; u=0
  for i in $(seq 1 "$RSS_SAMPLES"); do
    id=$TAG-m$i
    guarded $T -f %M -o "$R" "$rt" create --bundle "$B" --pid-file "$PF" "$id" </dev/null >/dev/null 2>&1; v=$(tail -1 "$R" 2>/dev/null); v=${v//[^0-9]/}; v=${v:-0}; [ "$v" -gt $c ] && c=$v
    guarded $T -f %M -o "$R" "$rt" start "$id" >/dev/null 2>&1; v=$(tail -1 "$R" 2>/dev/null); v=${v//[^0-9]/}; v=${v:-0}; [ "$v" -gt $s ] && s=$v
    wait_exit "$(<"$PF")"
    guarded $T -f %M -o "$R" "$rt" delete -f "$id" >/dev/null 2>&1; v=$(tail -1 "$R" 2>/dev/null); v=${v//[^0-9]/}; v=${v:-0}; [ "$v" -gt $d ] && d=$v
    guarded $T -f %M -o "$R" "$rt" run --bundle "$B" "$id" </dev/null >/dev/null 2>&1; v=$(tail -1 "$R" 2>/dev/null); v=${v//[^0-9]/}; v=${v:-0}; [ "$v" -gt $u ] && u=$v
    "$rt" delete -f "$id" </dev/null >/dev/null 2>&1
  done
  RSS[$rt]="create=$c start=$s delete=$d run=$u"
done

ver() { "$1" --version 2>/dev/null | head -1 | tr ' ' _; }
for rt in "${RTS[@]}"; do
  echo "runtime=$(basename "$rt") test=lifecycle $(tr ' ' '\n' <<< "${LC[$rt]}" | grep . | stats) fail=${FAIL[$rt]} hangs_killed=${HANG[$rt]:-0} $(ns_note) ver=$(ver "$rt")"
  md() { tr ' ' '\n' <<< "$1" | grep . | median_of | awk '{printf "%.2f", $1/1000}'; }
  echo "runtime=$(basename "$rt") test=phases    create_ms=$(md "${PH_C[$rt]}") start_ms=$(md "${PH_S[$rt]}") wait_ms=$(md "${PH_W[$rt]}") delete_ms=$(md "${PH_D[$rt]}") (medians)"
  echo "runtime=$(basename "$rt") test=run       $(tr ' ' '\n' <<< "${RUN[$rt]}" | grep . | stats) delete_after_run=${NEEDDEL[$rt]}"
  echo "runtime=$(basename "$rt") test=rss_kb    ${RSS[$rt]} samples=$RSS_SAMPLES"
done
if [ "$nrt" -gt 1 ]; then
  b=${RTS[0]}; bl=$(tr ' ' '\n' <<< "${LC[$b]}" | grep . | median_of); br=$(tr ' ' '\n' <<< "${RUN[$b]}" | grep . | median_of)
  for rt in "${RTS[@]:1}"; do
    l=$(tr ' ' '\n' <<< "${LC[$rt]}" | grep . | median_of); r=$(tr ' ' '\n' <<< "${RUN[$rt]}" | grep . | median_of)
    awk -v a="$(basename "$rt")" -v b="$(basename "$b")" -v l=$l -v bl=$bl -v r=$r -v br=$br \
      'BEGIN{ printf "ratio %s/%s lifecycle=%.2f run=%.2f\n", a, b, (bl?l/bl:0), (br?r/br:0) }'
  done
fi
