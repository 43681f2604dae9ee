#!/bin/bash
# Satchel against Puppet and CFEngine (and, with ANSIBLE=1, Ansible) on the shared
# "school server" workload, in one invocation on one machine. See README.md.
#
# The workload, the peers' runner, the drift and the verifier are the shared baseline's
# ($SHARED_CM, default ../../../shared/baselines/cm from here), called by path; nothing of
# theirs is copied. Satchel and the floor program run through ./run_satchel.sh, which
# records the same CSV columns as the shared run_tool.sh.
#
# Knobs (environment):
#   N=1000            small files in the workload
#   RUNS=5            runs per tool and scenario
#   TOOLS="satchel cfengine puppet"   tools, run in this order (floor runs after satchel)
#   ANSIBLE=1         also run Ansible (installs it if missing), ANSIBLE_RUNS=1 runs per
#                     scenario (one Ansible run at N=1000 takes ~6.5 min)
#   FLOOR_RUN=0       skip the floor program
#   BASE=/tmp/cmbench where the workload, roots and state live (the peers' default)
#   RESULTS=results/<date>  output directory
#   SHARED_CM         the shared baseline directory
#   INSTALL=0         do not apt-get install anything (fail if missing)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export SHARED_CM=${SHARED_CM:-$(cd "$REPO/../shared/baselines/cm" 2>/dev/null && pwd || echo "$REPO/../shared/baselines/cm")}
export BASE=${BASE:-/tmp/cmbench}
export RESULTS=${RESULTS:-$HERE/results/$(date +%Y-%m-%d)}
export PYTHONDONTWRITEBYTECODE=1 # the shared dir is read-only for us: no __pycache__ there
export SATCHEL_BIN=$BASE/bin/satchel FLOOR_BIN=$BASE/bin/floor
N=${N:-1000}
RUNS=${RUNS:-5}
TOOLS=${TOOLS:-"satchel cfengine puppet"}
ANSIBLE=${ANSIBLE:-0}
ANSIBLE_RUNS=${ANSIBLE_RUNS:-1}
FLOOR_RUN=${FLOOR_RUN:-1}
INSTALL=${INSTALL:-1}
[ "$ANSIBLE" = 1 ] && TOOLS="$TOOLS ansible"

for f in gen.py run_tool.sh reset.sh drift.py verify.py; do
  [ -f "$SHARED_CM/$f" ] || { echo "bench.sh: $SHARED_CM/$f not found; set SHARED_CM" >&2; exit 1; }
done

# ---------------------------------------------------------------- prerequisites
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
[ -x /usr/bin/python3 ] || command -v python3 >/dev/null || need+=(python3)
case " $TOOLS " in *" puppet "*) command -v puppet >/dev/null || need+=(puppet) ;; esac
case " $TOOLS " in *" cfengine "*) command -v cf-agent >/dev/null || need+=(cfengine3) ;; esac
case " $TOOLS " in *" ansible "*) command -v ansible-playbook >/dev/null || need+=(ansible) ;; esac
if [ ${#need[@]} -gt 0 ]; then
  [ "$INSTALL" = 1 ] || { echo "bench.sh: missing ${need[*]} (INSTALL=0)" >&2; exit 1; }
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

rm -rf "$RESULTS"; mkdir -p "$RESULTS" "$BASE/bin"
echo "tag,tool,run,rc,changes,errors,wall_s,user_s,sys_s,maxrss_kb" >"$RESULTS/runs.csv"
echo "tag,check,result,detail,load_before,load_after" >"$RESULTS/checks.csv"
log() { echo "[$(date +%T)] $*" | tee -a "$RESULTS/bench.log"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---------------------------------------------------------------- build
log "build satchel and floor ($("$GO" version))"
(cd "$REPO" && CGO_ENABLED=0 "$GO" build -trimpath -o "$SATCHEL_BIN" ./cmd/satchel \
  && CGO_ENABLED=0 "$GO" build -trimpath -o "$FLOOR_BIN" ./bench/peers/floor)

{
  echo "date: $(date -Is)"
  echo "host: $(hostname)  kernel: $(uname -r)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cpus: $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "mem: $(free -m | awk '/Mem:/{print $2}') MiB"
  echo "satchel: $(cd "$REPO" && git describe --always --dirty 2>/dev/null) ($("$GO" version | cut -d' ' -f3), CGO_ENABLED=0)"
  for p in puppet puppet-agent facter cfengine3 ansible-core hyperfine; do
    echo "$p $(dpkg-query -Wf '${Version}' "$p" 2>/dev/null)"; done
  echo "N=$N RUNS=$RUNS TOOLS=$TOOLS ANSIBLE_RUNS=$ANSIBLE_RUNS BASE=$BASE SHARED_CM=$SHARED_CM"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "top processes by CPU at start:"; top -b -n2 -d1 -w 200 | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<6 {print "  " $9 "% " $12; n++}'
} >"$RESULTS/env.txt"

# ---------------------------------------------------------------- workload
log "generate N=$N under $BASE"
python3 "$SHARED_CM/gen.py" --n "$N" --base "$BASE" >/dev/null
python3 "$HERE/gen_satchel.py" --n "$N" --base "$BASE" >/dev/null
G=$BASE/gen-N$N

# ---------------------------------------------------------------- checks
# check TAG WHAT CMD...: run CMD, record PASS (exit 0) or FAIL with its first output line.
check() {
  local tag=$1 what=$2 out rc=0 before
  shift 2
  before=$(load1)
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$RESULTS/bench.log"
  local result=FAIL
  [ $rc -eq 0 ] && result=PASS
  local first=${out%%$'\n'*}
  echo "$tag,$what,$result,\"${first//\"/\'}\",$before,$(load1)" >>"$RESULTS/checks.csv"
  log "  $what: $result ($first)"
}
# every run of TAG reported zero changes and zero errors (0 changes = 0 resources changed)
no_changes() {
  awk -F, -v t="$1" '$1 == t { n++; if ($5 + 0 != 0 || $6 + 0 != 0) bad++ }
    END { printf "%d runs, %d with changes or errors\n", n, bad; exit !(n > 0 && bad == 0) }' "$RESULTS/runs.csv"
}
no_errors() {
  awk -F, -v t="$1" '$1 == t { n++; if ($6 + 0 != 0) bad++ }
    END { printf "%d runs, %d with errors\n", n, bad; exit !(n > 0 && bad == 0) }' "$RESULTS/runs.csv"
}
restart_lines() {  # ROOT EXPECTED
  local got=0
  [ -f "$1/run/restart.log" ] && got=$(wc -l <"$1/run/restart.log")
  echo "restart.log has $got lines, expected $2"
  [ "$got" -eq "$2" ]
}

runner() {  # the command that runs TOOL once, for hyperfine
  case $1 in
    satchel | floor) echo "$HERE/run_satchel.sh $1 $G $2" ;;
    *) echo "$SHARED_CM/run_tool.sh $1 $G $2" ;;
  esac
}

HF=(hyperfine --style basic --ignore-failure)

scenarios() {  # TOOL RUNS
  local tool=$1 runs=$2 root=$BASE/root-$1 tag=$1-N$N
  log "== $tag: first run x$runs, reset before each (load $(load1))"
  "${HF[@]}" --runs "$runs" --prepare "$SHARED_CM/reset.sh $tool" \
    --export-json "$RESULTS/hf-$tag-first.json" "$(runner "$tool" "$tag-first")" >>"$RESULTS/bench.log" 2>&1
  check "$tag-first" "no errors" no_errors "$tag-first"
  check "$tag-first" "tree == expected" python3 "$SHARED_CM/verify.py" check "$G/expected.json" "$root"
  check "$tag-first" "handler ran once" restart_lines "$root" 1

  log "== $tag: no-op x$runs (load $(load1))"
  python3 "$SHARED_CM/verify.py" snapshot "$root" "$BASE/snap-before-$tool.json"
  "${HF[@]}" --runs "$runs" --export-json "$RESULTS/hf-$tag-noop.json" \
    "$(runner "$tool" "$tag-noop")" >>"$RESULTS/bench.log" 2>&1
  python3 "$SHARED_CM/verify.py" snapshot "$root" "$BASE/snap-after-$tool.json"
  check "$tag-noop" "0 changes reported" no_changes "$tag-noop"
  check "$tag-noop" "tree untouched (mode/size/mtime/ctime/inode/sha256)" \
    python3 "$SHARED_CM/verify.py" compare "$BASE/snap-before-$tool.json" "$BASE/snap-after-$tool.json"

  if [ "$tool" = satchel ] && [ "$FLOOR_RUN" = 1 ]; then
    log "== floor-N$N: lstat + read + sha256 of every managed path in root-satchel x$runs (load $(load1))"
    "${HF[@]}" --runs "$runs" --export-json "$RESULTS/hf-floor-N$N-noop.json" \
      "$(runner floor "floor-N$N-noop")" >>"$RESULTS/bench.log" 2>&1
    check "floor-N$N-noop" "0 differences found" no_changes "floor-N$N-noop"
  fi

  log "== $tag: drift repair x$runs, drift.py (50 changes) before each (load $(load1))"
  "${HF[@]}" --runs "$runs" --prepare "python3 $SHARED_CM/drift.py $root $N" \
    --export-json "$RESULTS/hf-$tag-drift.json" "$(runner "$tool" "$tag-drift")" >>"$RESULTS/bench.log" 2>&1
  check "$tag-drift" "no errors" no_errors "$tag-drift"
  check "$tag-drift" "tree == expected" python3 "$SHARED_CM/verify.py" check "$G/expected.json" "$root"
  check "$tag-drift" "handler ran once per drift run" restart_lines "$root" $((1 + runs))
}

# background sampler: the machine is shared; this records what else ran
( while :; do
    echo "$(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) top: $(top -b -n2 -d1 -w 200 | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<4 {printf "%s %s%%; ", $12, $9; n++}')"
    sleep 9
  done ) >"$RESULTS/background.log" 2>&1 &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

T0=$(date +%s)
for tool in $TOOLS; do
  runs=$RUNS
  [ "$tool" = ansible ] && runs=$ANSIBLE_RUNS
  scenarios "$tool" "$runs"
done
log "total $(($(date +%s) - T0)) s"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/env.txt"
python3 "$HERE/summarize.py" "$RESULTS" | tee "$RESULTS/results.md"
