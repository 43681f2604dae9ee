#!/bin/bash
# Run Satchel (or the floor program) once against the generated workload, under
# /usr/bin/time -v, and record it the way the shared run_tool.sh records the peers.
#
# usage: run_satchel.sh satchel|floor GENDIR TAG
#   appends one row to $RESULTS/runs.csv with the shared columns
#     tag,tool,run,rc,changes,errors,wall_s,user_s,sys_s,maxrss_kb
#   (wall from GNU time's "Elapsed (wall clock)", 10 ms resolution), one row to
#   $RESULTS/hires.csv (tag,tool,run,wall_s from date +%s%N, the realtime clock, around the
#   same command, for the sub-10 ms floor), and keeps the output in $RESULTS/logs/TAG-RUN.log.
# Exits non-zero only when the run reported an error.
#
# satchel: satchel apply --detailed-exitcode --root $BASE/root-satchel
#          --state-dir $BASE/state-satchel GENDIR/satchel
#   changes = resources reported changed; errors = failed + skipped resources, plus one
#   if the exit status is not 0 or 2 or there is no summary line.
# floor:   floor GENDIR/expected.json $FLOOR_ROOT (default $BASE/root-satchel)
#   changes = paths that differ from expected.json; errors = 1 if it exits non-zero.
set -u
TOOL=$1 GEN=$2 TAG=$3
BASE=${BASE:-/tmp/cmbench}
RESULTS=${RESULTS:?set RESULTS}
SATCHEL_BIN=${SATCHEL_BIN:-$BASE/bin/satchel}
# Extra flags for satchel apply, e.g. SATCHEL_FLAGS=--no-cache to compile on every run.
SATCHEL_FLAGS=${SATCHEL_FLAGS:-}
FLOOR_BIN=${FLOOR_BIN:-$BASE/bin/floor}
FLOOR_ROOT=${FLOOR_ROOT:-$BASE/root-satchel}
S=$BASE/state-$TOOL
mkdir -p "$RESULTS/logs"
run=$(( $(ls "$RESULTS/logs" | grep -c "^$TAG-[0-9]*\.log$") + 1 ))
LOG=$RESULTS/logs/$TAG-$run.log
TV=$(mktemp /tmp/cmbench-time.XXXXXX)
case $TOOL in
  satchel)
    mkdir -p "$S"
    t0=$(date +%s%N)
    # shellcheck disable=SC2086 # SATCHEL_FLAGS is a list of words
    /usr/bin/time -v -o "$TV" "$SATCHEL_BIN" apply --detailed-exitcode $SATCHEL_FLAGS \
      --root "$BASE/root-satchel" --state-dir "$S" "$GEN/satchel" >"$LOG" 2>&1
    rc=$?
    t1=$(date +%s%N)
    # "Applied for NODE: 3 changed, 1139 unchanged, 0 failed, 0 skipped (1142 resources, 0.12s)."
    summary=$(grep -E '^Applied for .*: [0-9]+ changed, [0-9]+ unchanged, [0-9]+ failed, [0-9]+ skipped' "$LOG" | tail -1)
    if [ -n "$summary" ]; then
      read -r changes failed skipped < <(sed -E 's/.*: ([0-9]+) changed, [0-9]+ unchanged, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/' <<<"$summary")
      errors=$((failed + skipped))
    else
      changes=0 errors=1
    fi
    [ $rc -eq 0 ] || [ $rc -eq 2 ] || errors=$((errors + 1)) ;;
  floor)
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$TV" "$FLOOR_BIN" "$GEN/expected.json" "$FLOOR_ROOT" >"$LOG" 2>&1
    rc=$?
    t1=$(date +%s%N)
    changes=$(sed -n 's/^floor: .*, \([0-9]*\) differ$/\1/p' "$LOG")
    changes=${changes:-0}
    errors=0
    [ $rc -eq 0 ] || errors=1 ;;
  *) echo "run_satchel.sh: unknown tool $TOOL (satchel or floor)" >&2; exit 64 ;;
esac
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$TV" | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; print s}')
user=$(sed -n 's/.*User time (seconds): //p' "$TV")
sys=$(sed -n 's/.*System time (seconds): //p' "$TV")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TV")
rm -f "$TV"
echo "$TAG,$TOOL,$run,$rc,$changes,$errors,$wall,$user,$sys,$rss" >>"$RESULTS/runs.csv"
[ -s "$RESULTS/hires.csv" ] || echo "tag,tool,run,wall_s" >"$RESULTS/hires.csv"
echo "$TAG,$TOOL,$run,$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" >>"$RESULTS/hires.csv"
[ "$errors" -eq 0 ]
