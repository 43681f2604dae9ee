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
#   RESULTS=results/<date>  output directory (results/<date>-2, -3… if that exists)
#   SHARED_CM         the shared baseline directory
#   INSTALL=0         do not apt-get install anything (fail if missing)
#   SATCHEL_FLAGS=…   extra flags for satchel apply, e.g. --no-cache (compile every run)
#   ORDER=interleaved for each scenario, R rounds of one run of every tool in turn (default:
#                     a burst of load from other jobs then hits every tool alike);
#         batch       all R runs of one tool under hyperfine, then the next tool (the
#                     shared bench.sh's order; also writes hyperfine's JSON exports)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export SHARED_CM=${SHARED_CM:-$(cd "$REPO/../shared/baselines/cm" 2>/dev/null && pwd || echo "$REPO/../shared/baselines/cm")}
export BASE=${BASE:-/tmp/cmbench}
if [ -z "${RESULTS:-}" ]; then  # results/<date>, or results/<date>-2, -3... for later runs that day
  RESULTS=$HERE/results/$(date +%Y-%m-%d)
  k=2; while [ -e "$RESULTS" ]; do RESULTS=$HERE/results/$(date +%Y-%m-%d)-$k; k=$((k + 1)); done
fi
export RESULTS
export PYTHONDONTWRITEBYTECODE=1 # the shared dir is read-only for us: no __pycache__ there
export SATCHEL_BIN=$BASE/bin/satchel FLOOR_BIN=$BASE/bin/floor
N=${N:-1000}
RUNS=${RUNS:-5}
TOOLS=${TOOLS:-"satchel cfengine puppet"}
ANSIBLE=${ANSIBLE:-0}
ANSIBLE_RUNS=${ANSIBLE_RUNS:-1}
FLOOR_RUN=${FLOOR_RUN:-1}
INSTALL=${INSTALL:-1}
ORDER=${ORDER:-interleaved}
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
  echo "worktree: $(cd "$REPO" && git status --porcelain 2>/dev/null | wc -l) paths differ from HEAD, diff sha256 $(cd "$REPO" && git diff HEAD 2>/dev/null | sha256sum | cut -c1-16)"
  for p in puppet puppet-agent facter cfengine3 ansible-core hyperfine; do
    echo "$p $(dpkg-query -Wf '${Version}' "$p" 2>/dev/null)"; done
  echo "N=$N RUNS=$RUNS TOOLS=$TOOLS ANSIBLE_RUNS=$ANSIBLE_RUNS ORDER=$ORDER BASE=$BASE SHARED_CM=$SHARED_CM"
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

runner() {  # TOOL TAG: the command that runs TOOL once and records it
  case $1 in
    satchel | floor) echo "$HERE/run_satchel.sh $1 $G $2" ;;
    *) echo "$SHARED_CM/run_tool.sh $1 $G $2" ;;
  esac
}
prepare() {  # TOOL SCENARIO: what runs (untimed) before each run
  case $2 in
    first) echo "$SHARED_CM/reset.sh $1" ;;             # empty ROOT and state
    drift) echo "python3 $SHARED_CM/drift.py $BASE/root-$1 $N" ;;  # the 50 changes
    *) echo "true" ;;
  esac
}
runs_of() { if [ "$1" = ansible ]; then echo "$ANSIBLE_RUNS"; else echo "$RUNS"; fi; }
floor_after() { [ "$1" = satchel ] && [ "$2" = noop ] && [ "$FLOOR_RUN" = 1 ]; }

before_batch() {  # TOOL SCENARIO
  [ "$2" = noop ] && python3 "$SHARED_CM/verify.py" snapshot "$BASE/root-$1" "$BASE/snap-before-$1.json"
  return 0
}
after_batch() {  # TOOL SCENARIO: the checks, once every run of the batch is done
  local tool=$1 sc=$2 root=$BASE/root-$1 tag=$1-N$N-$2
  case $sc in
    first)
      check "$tag" "no errors" no_errors "$tag"
      check "$tag" "tree == expected" python3 "$SHARED_CM/verify.py" check "$G/expected.json" "$root"
      check "$tag" "handler ran once" restart_lines "$root" 1 ;;
    noop)
      python3 "$SHARED_CM/verify.py" snapshot "$root" "$BASE/snap-after-$tool.json"
      check "$tag" "0 changes reported" no_changes "$tag"
      check "$tag" "tree untouched (mode/size/mtime/ctime/inode/sha256)" \
        python3 "$SHARED_CM/verify.py" compare "$BASE/snap-before-$tool.json" "$BASE/snap-after-$tool.json"
      if floor_after "$tool" "$sc"; then check "floor-N$N-noop" "0 differences found" no_changes "floor-N$N-noop"; fi ;;
    drift)
      check "$tag" "no errors" no_errors "$tag"
      check "$tag" "tree == expected" python3 "$SHARED_CM/verify.py" check "$G/expected.json" "$root"
      check "$tag" "handler ran once per drift run" restart_lines "$root" $((1 + $(runs_of "$tool"))) ;;
  esac
}

HF=(hyperfine --style basic --ignore-failure)
declare -A SCENARIO_TEXT=([first]="first run, reset before each" [noop]="no-op on the converged tree"
  [drift]="drift repair, drift.py (50 changes) before each")

batch() {  # TOOL SCENARIO: all runs of one tool in a row, through hyperfine (the shared bench's way)
  local tool=$1 sc=$2 runs tag=$1-N$N-$2
  runs=$(runs_of "$tool")
  log "== $tag: ${SCENARIO_TEXT[$sc]} x$runs (load $(load1))"
  before_batch "$tool" "$sc"
  "${HF[@]}" --runs "$runs" --prepare "$(prepare "$tool" "$sc")" --export-json "$RESULTS/hf-$tag.json" \
    "$(runner "$tool" "$tag")" >>"$RESULTS/bench.log" 2>&1
  if floor_after "$tool" "$sc"; then
    log "== floor-N$N-noop: lstat + read + sha256 of every managed path in root-satchel x$runs"
    "${HF[@]}" --runs "$runs" --export-json "$RESULTS/hf-floor-N$N-noop.json" \
      "$(runner floor "floor-N$N-noop")" >>"$RESULTS/bench.log" 2>&1
  fi
  after_batch "$tool" "$sc"
}

rounds() {  # SCENARIO: round r runs every tool once, so noise from other jobs hits all tools alike
  local sc=$1 r max=0 tool
  for tool in $TOOLS; do
    [ "$(runs_of "$tool")" -gt $max ] && max=$(runs_of "$tool")
    before_batch "$tool" "$sc"
  done
  for r in $(seq 1 $max); do
    log "== round $r/$max: ${SCENARIO_TEXT[$sc]} (load $(load1))"
    for tool in $TOOLS; do
      [ "$r" -le "$(runs_of "$tool")" ] || continue
      bash -c "$(prepare "$tool" "$sc")" >>"$RESULTS/bench.log" 2>&1
      bash -c "$(runner "$tool" "$tool-N$N-$sc")" >>"$RESULTS/bench.log" 2>&1 || true
      if floor_after "$tool" "$sc"; then
        bash -c "$(runner floor "floor-N$N-noop")" >>"$RESULTS/bench.log" 2>&1 || true
      fi
    done
  done
  for tool in $TOOLS; do
    log "== $tool-N$N-$sc: checks"
    after_batch "$tool" "$sc"
  done
}

# background sampler: the machine is shared; this records what else ran
( while :; do
    echo "$(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) top: $(top -b -n2 -d1 -w 200 | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<4 {printf "%s %s%%; ", $12, $9; n++}')"
    sleep 9
  done ) >"$RESULTS/background.log" 2>&1 &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

T0=$(date +%s)
if [ "$ORDER" = interleaved ]; then
  for sc in first noop drift; do rounds "$sc"; done
else
  for tool in $TOOLS; do
    for sc in first noop drift; do batch "$tool" "$sc"; done
  done
fi
log "total $(($(date +%s) - T0)) s"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/env.txt"
python3 "$HERE/summarize.py" "$RESULTS" | tee "$RESULTS/results.md"
