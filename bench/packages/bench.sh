#!/bin/bash
# Satchel against `puppet apply` installing 10 small Debian packages, each tool in a fresh
# systemd-nspawn container booted from the system tests' image, in one invocation. See README.md.
#
# For each of RUNS rounds, and for each tool in turn (the order alternates between rounds, so
# background load hits both alike), this boots a fresh container (an overlay of the image, as
# ../../../shared/recipes/system-tests.md says), installs the tool untimed (Satchel: the static
# binary copied in; Puppet: `apt-get install puppet` from the local archive cache), then times
# with /usr/bin/time -v, inside the container:
#   first: the first run, installing the 10 packages (their .debs are already in the
#          container's apt cache: the network is not measured; the container has none)
#   noop:  a second run right after, with the same configuration: nothing to do
# and checks that the 10 packages are installed after the first run, that the no-op run
# reported no change and made no apt transaction, and counts the apt transactions
# (/var/log/apt/history.log) and dpkg runs (/var/log/dpkg.log) of each run.
#
# Knobs (environment):
#   RUNS=5             rounds
#   PKGS="hello ..."   the packages (all must be absent from the image and from Puppet's
#                      dependencies; checked before each timed run)
#   RESULTS=results/<date>   output directory (results/<date>-2, -3… if that exists)
#   SATCHEL_TEST_CACHE=/var/cache/satchel-test   the image (base/) and the shared apt
#                      archive cache (apt-archives/), as for internal/systest
#   LISTS_MAX_AGE_H=12 if the image's package lists are older than this (hours), refresh them
#                      once, untimed, and give every container the refreshed lists (an extra
#                      lower layer): Satchel refreshes lists older than 24 h (its update_age
#                      default) before installing, which would measure the network
#   KEEP=1             keep the work directory (overlays' upper layers, consoles) for a look
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-5}
PKGS=${PKGS:-"hello tree whois figlet sl bc jq pv ed dtach"}
CACHE=${SATCHEL_TEST_CACHE:-/var/cache/satchel-test}
IMAGE=$CACHE/base
ARCHIVES=$CACHE/apt-archives
LISTS_MAX_AGE_H=${LISTS_MAX_AGE_H:-12}
KEEP=${KEEP:-0}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
CPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RECORDS=/run/satchel-bench-packages # one file per live container, for reaping after a hard kill
if [ -z "${RESULTS:-}" ]; then
  RESULTS=$HERE/results/$(date +%Y-%m-%d)
  k=2; while [ -e "$RESULTS" ]; do RESULTS=$HERE/results/$(date +%Y-%m-%d)-$k; k=$((k + 1)); done
fi
read -r -a PKG_LIST <<<"$PKGS"
NPKG=${#PKG_LIST[@]}

die() { echo "bench.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (systemd-nspawn containers)"
for c in systemd-nspawn nsenter pgrep setsid mount flock python3; do
  command -v $c >/dev/null || die "$c is missing (make deps / apt-get install systemd-container util-linux procps)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ "${RUNS}" -ge 1 ] 2>/dev/null || die "RUNS must be a positive number"

mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
log() { echo "[$(date +%T)] $*" | tee -a "$RESULTS/bench.log" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- the image
"$REPO/scripts/test-image.sh" | tee -a "$RESULTS/bench.log" >&2 # quick when the image is current
[ -d "$IMAGE" ] || die "no image at $IMAGE"
# Hold the image's lock shared while containers use it: test-image.sh swaps in a rebuilt
# image only when it can take it exclusively (as internal/systest does).
exec 8<"$IMAGE.lock"
flock -s 8
mkdir -p "$ARCHIVES"

# cgroup hierarchies in which a container gets a cgroup of its own (internal/systest/cgroup.go)
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  CGROOTS=(/sys/fs/cgroup)
else
  CGROOTS=()
  for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
    case $(stat -f -c %T "$h" 2>/dev/null) in cgroupfs | cgroup2fs) CGROOTS+=("$h") ;; esac
  done
  [ ${#CGROOTS[@]} -gt 0 ] || die "no cgroup hierarchy for systemd-nspawn"
fi

# ---------------------------------------------------------------- containers
# A container's record: what teardown (ours, or a later invocation's reap) needs.
# Fields: owner pid, owner start time, nspawn pid, nspawn start time, leader pid, dir, cgroups...
starttime() { awk '{sub(/.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }
alive_as() { [ -n "$1" ] && [ -n "$2" ] && [ "$(starttime "$1")" = "$2" ]; } # PID STARTTIME

declare -A C_DIR C_NSPAWN C_NSPAWN_ST C_LEADER C_LIVE
CONTAINERS=()

# release NAME DIR NSPAWN NSPAWN_ST LEADER CGROUP...: halt the machine (cleanly, or kill it),
# unmount its overlay, remove its cgroups, lock file, record and directory.
release() {
  local name=$1 dir=$2 nspawn=$3 nst=$4 leader=$5 i cg lockf
  shift 5
  if alive_as "$nspawn" "$nst"; then
    kill -TERM "$nspawn" 2>/dev/null || true # nspawn halts the machine cleanly
    for i in $(seq 150); do alive_as "$nspawn" "$nst" || break; sleep 0.1; done
    if alive_as "$nspawn" "$nst"; then
      echo "bench.sh: $name: no clean halt in 15 s; killing it" >&2
      # the machine's PID 1, if it is still nspawn's child: killing it ends the whole machine
      if [ -n "$leader" ] && [ "$(awk '{sub(/.*\) /, ""); print $2}' "/proc/$leader/stat" 2>/dev/null)" = "$nspawn" ]; then
        kill -KILL "$leader" 2>/dev/null || true
      fi
      for i in $(seq 100); do alive_as "$nspawn" "$nst" || break; sleep 0.1; done
      alive_as "$nspawn" "$nst" && kill -KILL "$nspawn" 2>/dev/null || true
    fi
  fi
  wait "$nspawn" 2>/dev/null || true
  if mountpoint -q "$dir/merged"; then
    lockf=/run/systemd/nspawn/locks/inode-$(stat -c '%d:%i' "$dir/merged")
    for i in $(seq 50); do umount "$dir/merged" 2>/dev/null && break; sleep 0.1; done
    mountpoint -q "$dir/merged" && { echo "bench.sh: $name: $dir/merged busy; lazy unmount" >&2; umount -l "$dir/merged"; }
    rm -f "$lockf"
  fi
  for cg in "$@"; do
    [ -d "$cg" ] || continue
    for i in $(seq 100); do
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
      [ -d "$cg" ] || break
      sleep 0.05
    done
    [ -d "$cg" ] && echo "bench.sh: $name: cannot remove cgroup $cg (processes: $(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' '))" >&2
  done
  rm -f "$RECORDS/$name"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

# Containers of earlier invocations whose bench.sh died without its trap (SIGKILL).
reap() {
  local f owner ost nspawn nst leader dir cgs
  for f in "$RECORDS"/*; do
    [ -f "$f" ] || continue
    read -r owner ost nspawn nst leader dir cgs <"$f" || true
    alive_as "$owner" "$ost" && continue
    echo "bench.sh: reaping $(basename "$f") left by dead bench.sh $owner" >&2
    # shellcheck disable=SC2086 # cgs is a list of paths without blanks
    release "$(basename "$f")" "$dir" "$nspawn" "$nst" "$leader" $cgs
  done
  for f in /tmp/satchel-bench-packages.*/owner; do # and their work directories
    [ -f "$f" ] || continue
    read -r owner ost <"$f" || true
    alive_as "$owner" "$ost" && continue
    grep -q " $(dirname "$f")/" /proc/mounts || rm -rf "$(dirname "$f")"
  done
}

# boot NAME NETWORK(0|1): a fresh overlay of the image, booted; /var/cache/apt/archives is an
# overlay whose lower layer is the shared archive cache (the container never writes to it).
boot() {
  local name=$1 net=$2 d=$WORK/$1 pid leader state cg t0
  t0=$(now)
  mkdir -p "$d/upper" "$d/work" "$d/merged" "$d/archives"
  CONTAINERS+=("$name")
  C_DIR[$name]=$d
  local cgs=()
  for cg in "${CGROOTS[@]}"; do cgs+=("$cg/$name"); done
  echo "$$ $SELF_ST - - - $d ${cgs[*]}" >"$RECORDS/$name"
  C_LIVE[$name]=1 # to tear down from here on
  mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$d/upper,workdir=$d/work" "$d/merged"
  for cg in "${cgs[@]}"; do mkdir "$cg"; done
  local args=(-q -D "$d/merged" -M "$name" --register=no --keep-unit --console=pipe
    "--overlay=$ARCHIVES:$d/archives:/var/cache/apt/archives")
  [ "$net" = 1 ] || args+=(--private-network)
  # The shell moves itself into the container's cgroups, then becomes systemd-nspawn in a
  # session of its own (setsid does not fork: a background job is no group leader).
  CGS="${cgs[*]}" sh -c 'for cg in $CGS; do echo $$ >"$cg/cgroup.procs" || exit 125; done; exec setsid systemd-nspawn "$@"' \
    sh "${args[@]}" -b </dev/null >"$d/console.log" 2>&1 &
  pid=$!
  C_NSPAWN[$name]=$pid
  C_NSPAWN_ST[$name]=$(starttime "$pid")
  echo "$$ $SELF_ST $pid ${C_NSPAWN_ST[$name]} - $d ${cgs[*]}" >"$RECORDS/$name"
  leader=""
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { cat "$d/console.log" >&2; die "$name: systemd-nspawn exited during boot"; }
    leader=$(pgrep -P "$pid" -x systemd || true)
    [ -n "$leader" ] && break
    sleep 0.05
  done
  [ -n "$leader" ] || die "$name: no systemd after 30 s (is $pid systemd-nspawn? $(cat /proc/$pid/comm 2>/dev/null))"
  C_LEADER[$name]=$leader
  echo "$$ $SELF_ST $pid ${C_NSPAWN_ST[$name]} $leader $d ${cgs[*]}" >"$RECORDS/$name"
  for _ in $(seq 600); do
    state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    kill -0 "$pid" 2>/dev/null || { cat "$d/console.log" >&2; die "$name: systemd-nspawn exited during boot"; }
    sleep 0.1
  done
  case $state in running | degraded) ;; *) die "$name: not booted after 60 s: $state" ;; esac
  log "  booted $name ($state) in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }')"
}

teardown() { # NAME
  local name=$1 cgs=() cg
  for cg in "${CGROOTS[@]}"; do cgs+=("$cg/$name"); done
  release "$name" "${C_DIR[$name]}" "${C_NSPAWN[$name]:-}" "${C_NSPAWN_ST[$name]:-}" "${C_LEADER[$name]:-}" "${cgs[@]}"
  unset "C_LIVE[$name]"
}

# cexec NAME CMD...: run CMD inside, as root, with a clean environment.
cexec() {
  local name=$1
  shift
  nsenter -t "${C_LEADER[$name]}" -a env -i PATH=$CPATH HOME=/root LANG=C.UTF-8 "$@"
}

# harvest NAME: add the .debs the container downloaded to the shared archive cache, atomically
# (link or copy under a temporary name, then rename), as internal/systest does.
harvest() {
  local up=${C_DIR[$1]}/archives f b tmp
  for f in "$up"/*.deb; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    [ -e "$ARCHIVES/$b" ] && continue
    tmp=$ARCHIVES/.$b.$$.tmp
    ln "$f" "$tmp" 2>/dev/null || cp "$f" "$tmp"
    mv "$tmp" "$ARCHIVES/$b"
  done
}

SAMPLER=""
cleanup() {
  local rc=$? name
  set +e
  trap - EXIT INT TERM
  for name in "${CONTAINERS[@]}"; do
    [ -n "${C_LIVE[$name]:-}" ] && teardown "$name"
  done
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
    if [ "$KEEP" = 1 ]; then rm -f "$WORK/owner"; echo "bench.sh: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SELF_ST=$(starttime $$)
mkdir -p "$RECORDS"
reap
WORK=$(mktemp -d /tmp/satchel-bench-packages.XXXXXX)
echo "$$ $SELF_ST" >"$WORK/owner"
case $WORK$IMAGE$ARCHIVES in *[,:]*) die "overlay paths cannot hold ',' or ':'" ;; esac
LOWER=$IMAGE

# ---------------------------------------------------------------- build and configurations
log "build satchel ($("$GO" version | cut -d' ' -f3), CGO_ENABLED=0)"
(cd "$REPO" && CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/satchel" ./cmd/satchel)

mkdir -p "$WORK/conf/satchel"
{
  echo "# bench/packages: the first run installs these; the second has nothing to do"
  echo 'node "*" {'
  for p in "${PKG_LIST[@]}"; do echo "  package \"$p\" {}"; done
  echo '}'
} >"$WORK/conf/satchel/main.hcl"
{
  echo "# bench/packages: the same packages as Satchel's main.hcl (Puppet's default provider: apt)"
  for p in "${PKG_LIST[@]}"; do echo "package { '$p': ensure => installed }"; done
} >"$WORK/conf/site.pp"
cp "$WORK/conf/satchel/main.hcl" "$WORK/conf/site.pp" "$RESULTS/"

echo "round,tool,scenario,rc,changes,wall_s,user_s,sys_s,maxrss_kb,apt_transactions,dpkg_runs,load_before,load_after" >"$RESULTS/runs.csv"
echo "round,tool,check,result,detail" >"$RESULTS/checks.csv"
mkdir -p "$RESULTS/logs"
# check ROUND TOOL WHAT OK(0|1) DETAIL
check() {
  local r=PASS
  [ "$4" = 1 ] || r=FAIL
  echo "$1,$2,\"$3\",$r,\"${5//\"/\'}\"" >>"$RESULTS/checks.csv"
  log "    check $3: $r ($5)"
}

# ---------------------------------------------------------------- preparation (untimed, once)
# One container with the network: refresh the lists if they are old, download the 10 packages
# and Puppet with everything they need into the shared archive cache.
lists_age_h=$(( ($(date +%s) - $(stat -c %Y "$IMAGE"/var/lib/apt/lists/*_Packages | sort -n | tail -1)) / 3600 ))
log "prepare: one container with network (image lists are ${lists_age_h} h old)"
boot "bench-pkg-prep-$$" 1
P=bench-pkg-prep-$$
if [ "$lists_age_h" -ge "$LISTS_MAX_AGE_H" ]; then
  log "  lists older than $LISTS_MAX_AGE_H h: apt-get update, once, for every container"
  cexec $P apt-get -q update >>"$RESULTS/bench.log" 2>&1
  newest=$(stat -c %Y "$WORK/$P/merged"/var/lib/apt/lists/*_Packages "$WORK/$P/merged"/var/lib/apt/lists/*Release | sort -n | tail -1)
  if [ $(($(date +%s) - newest)) -gt $((LISTS_MAX_AGE_H * 3600 > 600 ? LISTS_MAX_AGE_H * 3600 : 600)) ]; then
    # apt-get update leaves a list file (and its mtime) alone when the mirror's copy has not
    # changed, and Satchel judges the lists' age by these mtimes: without this, it would refresh
    # them again in every first run (timed, and failing quietly: the containers have no network).
    log "  after apt-get update the list files are $(( ($(date +%s) - newest) / 3600 )) h old (unchanged on the mirror): touching them"
    cexec $P sh -c 'touch /var/lib/apt/lists/*_Packages /var/lib/apt/lists/*Release'
  fi
  # apt's binary caches, valid for these lists (touched or not), as the image has them
  cexec $P apt-cache gencaches >>"$RESULTS/bench.log" 2>&1
  mkdir -p "$WORK/layer/var/lib/apt" "$WORK/layer/var/cache/apt"
  cp -a "$WORK/$P/merged/var/lib/apt/lists" "$WORK/layer/var/lib/apt/"
  cp -a "$WORK/$P/merged/var/cache/apt/"*.bin "$WORK/layer/var/cache/apt/"
  rm -rf "$WORK/layer/var/lib/apt/lists/partial" "$WORK/layer/var/lib/apt/lists/lock"
  setfattr -n trusted.overlay.opaque -v y "$WORK/layer/var/lib/apt/lists" 2>/dev/null \
    || python3 -c 'import os,sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$WORK/layer/var/lib/apt/lists"
  LOWER=$WORK/layer:$IMAGE
fi
installed_of() { # NAME: those of PKGS that are installed in the container, if any
  local p st bad=()
  for p in "${PKG_LIST[@]}"; do
    st=$(cexec "$1" dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case $st in *" installed" | *" unpacked" | *" half-configured" | *" half-installed" | *" triggers-"*) bad+=("$p") ;; esac
  done
  echo "${bad[*]}"
}
[ -z "$(installed_of $P)" ] || die "already in the image: $(installed_of $P); choose other PKGS"
# Would Puppet drag in one of them? (Then it would not be absent in Puppet's container.)
drag=$(cexec $P apt-get -s -q install puppet | awk '$1 == "Inst" {print $2}')
for p in "${PKG_LIST[@]}"; do
  grep -qx "$p" <<<"$drag" && die "puppet depends on $p; choose other PKGS"
done
cexec $P apt-get -q -y --download-only install puppet "${PKG_LIST[@]}" >>"$RESULTS/bench.log" 2>&1 \
  || die "apt-get --download-only failed; see $RESULTS/bench.log"
harvest $P
{
  echo "versions (candidates in the containers):"
  cexec $P apt-cache policy puppet facter ruby apt dpkg "${PKG_LIST[@]}" | awk '/^[^ ]/{p=$1} /Candidate:/{print "  " p " " $2}'
  echo "first run installs: $(cexec $P apt-get -s -q install "${PKG_LIST[@]}" | awk '$1 == "Inst" {printf "%s ", $2}')"
  echo "the Puppet container also gets $(wc -w <<<"$drag") packages for Puppet"
} >"$RESULTS/versions.txt"
teardown $P

{
  echo "date: $(date -Is)"
  echo "host: $(hostname)  kernel: $(uname -r)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cpus: $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "mem: $(free -m | awk '/Mem:/{print $2}') MiB"
  echo "satchel: $(cd "$REPO" && git describe --always --dirty 2>/dev/null) ($("$GO" version | cut -d' ' -f3), CGO_ENABLED=0)"
  echo "worktree: $(cd "$REPO" && git status --porcelain 2>/dev/null | wc -l) paths differ from HEAD, diff sha256 $(cd "$REPO" && git diff HEAD 2>/dev/null | sha256sum | cut -c1-16)"
  echo "image: $IMAGE (lists ${lists_age_h} h old$([ "$LOWER" != "$IMAGE" ] && echo ", refreshed for this run"))"
  echo "systemd-nspawn: $(systemd-nspawn --version | head -1)"
  echo "RUNS=$RUNS PKGS=$PKGS"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  cat "$RESULTS/versions.txt"
} >"$RESULTS/env.txt"

# ( background sampler: the machine is shared; this records what else ran )
( while :; do
    echo "$(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) top: $(top -b -n2 -d1 -w 200 | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<4 {printf "%s %s%%; ", $12, $9; n++}')"
    sleep 9
  done ) >"$RESULTS/background.log" 2>&1 &
SAMPLER=$!

# ---------------------------------------------------------------- one tool, one fresh container
# timed NAME ROUND TOOL SCENARIO CMD...: run CMD inside under /usr/bin/time -v; sets RUN_RC,
# RUN_LOG, and appends to runs.csv (changes, apt and dpkg counts filled in by the caller).
count() { if [ -f "$2" ]; then grep -c -- "$1" "$2" || true; else echo 0; fi; } # PATTERN FILE
timed() {
  local name=$1 round=$2 tool=$3 sc=$4 m=${C_DIR[$1]}/merged before
  shift 4
  RUN_LOG=$RESULTS/logs/$round-$tool-$sc.log
  before=$(load1)
  local h0 d0
  h0=$(count '^Start-Date:' "$m/var/log/apt/history.log")
  d0=$(count ' startup ' "$m/var/log/dpkg.log")
  RUN_RC=0
  # GNU time for CPU and peak RSS (and its 10 ms wall clock, kept in the .time file); the wall
  # time in the table is the realtime clock read just around it, inside the container (1 ms).
  cexec "$name" sh -c 'a=$(date +%s%N); "$@"; rc=$?; b=$(date +%s%N); echo $((b - a)) >/root/bench/ns; exit $rc' \
    sh /usr/local/bin/gnutime -v -o "/root/bench/time-$sc.txt" "$@" >"$RUN_LOG" 2>&1 || RUN_RC=$?
  local tv=$m/root/bench/time-$sc.txt wall user sys rss
  cp "$tv" "$RESULTS/logs/$round-$tool-$sc.time"
  wall=$(awk '{ printf "%.4f", $1 / 1e9 }' "$m/root/bench/ns")
  echo "Elapsed (realtime clock around GNU time): $wall s" >>"$RESULTS/logs/$round-$tool-$sc.time"
  user=$(sed -n 's/.*User time (seconds): //p' "$tv")
  sys=$(sed -n 's/.*System time (seconds): //p' "$tv")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tv")
  RUN_APT=$(( $(count '^Start-Date:' "$m/var/log/apt/history.log") - h0 ))
  RUN_DPKG=$(( $(count ' startup ' "$m/var/log/dpkg.log") - d0 ))
  case $tool in
    satchel) RUN_CHANGES=$(sed -nE 's/^Applied for .*: ([0-9]+) changed, .*/\1/p' "$RUN_LOG" | tail -1) ;;
    puppet) RUN_CHANGES=$(grep -c '^Notice: /Stage\[main\]' "$RUN_LOG" || true) ;;
  esac
  RUN_CHANGES=${RUN_CHANGES:-?}
  echo "$round,$tool,$sc,$RUN_RC,$RUN_CHANGES,$wall,$user,$sys,$rss,$RUN_APT,$RUN_DPKG,$before,$(load1)" >>"$RESULTS/runs.csv"
  log "    $sc: exit $RUN_RC, wall ${wall}s, maxrss ${rss} kB, $RUN_CHANGES changes, $RUN_APT apt transactions, $RUN_DPKG dpkg runs"
}

one() { # ROUND TOOL
  local round=$1 tool=$2 name m cmd pre p st missing=()
  name=bench-pkg-$tool-r$round-$$
  log "== round $round/$RUNS: $tool (load $(load1))"
  boot "$name" 0
  m=${C_DIR[$name]}/merged
  mkdir -p "$m/root/bench"
  install -m 0755 /usr/bin/time "$m/usr/local/bin/gnutime"
  case $tool in
    satchel)
      install -m 0755 "$WORK/satchel" "$m/usr/local/bin/satchel"
      mkdir -p "$m/etc/satchel"
      cp "$WORK/conf/satchel/main.hcl" "$m/etc/satchel/main.hcl"
      cmd=(satchel apply --detailed-exitcode /etc/satchel) ;;
    puppet)
      local t0
      t0=$(now)
      cexec "$name" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q puppet >"$RESULTS/logs/$round-puppet-install.log" 2>&1 \
        || die "$name: apt-get install puppet failed; see $RESULTS/logs/$round-puppet-install.log"
      log "    puppet installed (untimed) in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }')"
      cp "$WORK/conf/site.pp" "$m/root/bench/site.pp"
      cmd=(puppet apply --detailed-exitcodes --color=false /root/bench/site.pp) ;;
  esac
  pre=$(installed_of "$name")
  [ -z "$pre" ] || die "$name: already installed before the first run: $pre"
  # Satchel refreshes the lists (apt-get update) before installing when they are older than its
  # update_age (default 24 h): make sure it will not, or the network would be measured.
  local newest
  newest=$(stat -c %Y "$m"/var/lib/apt/lists/*_Packages "$m"/var/lib/apt/lists/*Release | sort -n | tail -1)
  check "$round" "$tool" "first run: package lists younger than 23 h (no apt-get update)" \
    "$([ $(($(date +%s) - newest)) -lt $((23 * 3600)) ] && echo 1 || echo 0)" "$(( ($(date +%s) - newest) / 60 )) min old"
  # apt's binary caches up to date for both (installing Puppet changed dpkg's status file, so
  # the first apt command of Puppet's run would otherwise rebuild them)
  cexec "$name" apt-cache gencaches >/dev/null
  sync # what the setup wrote is not written back during the timed runs
  timed "$name" "$round" "$tool" first "${cmd[@]}"
  check "$round" "$tool" "first run exits 2 (changes, no failure)" "$([ "$RUN_RC" = 2 ] && echo 1 || echo 0)" "exit $RUN_RC"
  check "$round" "$tool" "first run reports $NPKG changes" "$([ "$RUN_CHANGES" = "$NPKG" ] && echo 1 || echo 0)" "$RUN_CHANGES changes"
  for p in "${PKG_LIST[@]}"; do
    st=$(cexec "$name" dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
  done
  check "$round" "$tool" "all $NPKG installed (dpkg-query)" "$([ ${#missing[@]} -eq 0 ] && echo 1 || echo 0)" \
    "$([ ${#missing[@]} -eq 0 ] && echo "install ok installed" || echo "not installed: ${missing[*]}")"
  sync
  timed "$name" "$round" "$tool" noop "${cmd[@]}"
  check "$round" "$tool" "no-op run exits 0 (no change)" "$([ "$RUN_RC" = 0 ] && echo 1 || echo 0)" "exit $RUN_RC, $RUN_CHANGES changes"
  check "$round" "$tool" "no-op run: no apt transaction" "$([ "$RUN_APT" = 0 ] && echo 1 || echo 0)" "$RUN_APT transactions"
  grep -h '^Commandline:' "$m/var/log/apt/history.log" >"$RESULTS/logs/$round-$tool-apt-commandlines.txt" 2>/dev/null || true
  journal_errors=$(cexec "$name" journalctl -b -p err --no-pager -q 2>/dev/null | head -5 || true)
  [ -z "$journal_errors" ] || printf '%s\n' "$journal_errors" >"$RESULTS/logs/$round-$tool-journal-errors.txt"
  teardown "$name"
}

T0=$(date +%s)
for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then order="satchel puppet"; else order="puppet satchel"; fi
  for tool in $order; do one "$r" "$tool"; done
done
log "total $(($(date +%s) - T0)) s for $RUNS rounds"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/env.txt"
echo "command: ${BENCH_COMMAND:-RUNS=$RUNS ./bench/packages/bench.sh}" >>"$RESULTS/env.txt"
python3 "$HERE/summarize.py" "$RESULTS" | tee "$RESULTS/results.md"
