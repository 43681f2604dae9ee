#!/usr/bin/env bash
# The agent's running costs: idle memory between cycles, the time of a cycle when nothing
# is new, and the bytes it moves then; beside CFEngine and Puppet where a peer exists.
# See README.md.
#
# Everything runs in one invocation on one machine, as a normal user if need be: the
# repository, the node's state and the converged root are in a temporary directory.
#
# Workloads (WORKLOADS="school cm"):
#   school  examples/school-server as `make example` applies it: node school-001, its facts
#           file, manage_system=false (the agent has no --var: the copy that is released
#           has that variable's default set to false; nothing else changes)
#   cm      the shared CM baseline (../shared/baselines/cm) at N small files (default 100),
#           Satchel's config written by bench/peers/gen_satchel.py, its `node "*"` named
#           after this machine (a release is checked for every named node); the peers
#           (cf-agent, puppet apply) run the baseline's own configs through its run_tool.sh.
#           Skipped, and said so, when the baseline or python3 is missing.
#
# For each workload: release 1 (its timestamp.json then aged, see AGE); a first
# `agent --once` (applies it); BYTES_RUNS no-change cycles, each against a fresh countserver
# (bytes and requests); over HTTPS, a warm-up cycle then BYTES_RUNS measured; RUNS
# interleaved rounds of no-change cycles (satchel agent --once, satchel apply, and the
# peers), the tree checked untouched; the daemon (--interval 1m --splay 0s) started
# IDLE_RUNS times and sampled for IDLE_SECONDS after its first cycle (and, for cm, cf-execd
# and the puppet agent daemon); for the DAEMON_WORKLOADS, the daemon run once per scheme
# until its second cycle (about 60 s after the first): the bytes of that cycle's
# connections, and its RSS after it; then release 2 with one template changed, and the
# cycle that applies it.
#
# Every server of a scheme listens on the same address (the first one's port, reused):
# the node keeps the HTTP validators of timestamp.json for the URL it fetched it from, and
# a node's repository URL does not change from cycle to cycle.
#
# Knobs (environment):
#   RUNS=10 BYTES_RUNS=3 IDLE_RUNS=3 IDLE_SECONDS=5 N=100 WORKLOADS="school cm" TLS=1
#   ETAG=1                    countserver sends nginx's default strong ETag (0: Last-Modified only)
#   AGE="-1 hour"             after each release, timestamp.json's mtime is set to this (touch -d),
#                             as on a mirror where it is minutes or days old ("": left as written)
#   SERVER_IDLE=10s           countserver closes keep-alive connections idle that long
#   DAEMON_WORKLOADS=school   workloads whose daemon is run to its second cycle (~70 s each scheme)
#   DAEMON_SCHEMES="https http"
#   PEERS="cfengine puppet"   peers on the cm workload (each skipped, and said so, if missing)
#   INSTALL=1                 as root: apt-get the missing peers, python3 (default 1 as root, else 0)
#   WORKDIR=/tmp (where the run's own temporary directory is made)  KEEP=0 (1: keep it)
#   OUT=bench/agent/results/<date>[-k]
#   SHARED_CM=../shared/baselines/cm
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-10}
BYTES_RUNS=${BYTES_RUNS:-3}
IDLE_SECONDS=${IDLE_SECONDS:-5}
IDLE_RUNS=${IDLE_RUNS:-3}
N=${N:-100}
WORKLOADS=${WORKLOADS:-"school cm"}
PEERS=${PEERS:-"cfengine puppet"}
TLS=${TLS:-1}
ETAG=${ETAG:-1}
AGE=${AGE-"-1 hour"}
SERVER_IDLE=${SERVER_IDLE:-10s}
DAEMON_WORKLOADS=${DAEMON_WORKLOADS-school}
DAEMON_SCHEMES=${DAEMON_SCHEMES-"https http"}
KEEP=${KEEP:-0}
if [ "$(id -u)" = 0 ]; then INSTALL=${INSTALL:-1}; else INSTALL=${INSTALL:-0}; fi
SHARED_CM=${SHARED_CM:-$REPO/../shared/baselines/cm}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
export PYTHONDONTWRITEBYTECODE=1 # the shared baseline may be read-only: no __pycache__ there

if [ -z "${OUT:-}" ]; then # results/<date>, then results/<date>-2, -3... for later runs that day
	OUT=$HERE/results/$(date -u +%Y-%m-%d)
	k=2
	while [ -e "$OUT" ]; do OUT=$HERE/results/$(date -u +%Y-%m-%d)-$k; k=$((k + 1)); done
fi
mkdir -p "$OUT/logs"
mkdir -p "${WORKDIR:-/tmp}"
W=$(mktemp -d "${WORKDIR:-/tmp}/satchel-bench-agent.XXXXXX") # removed at the end unless KEEP=1
SP= DP= # the countserver and the daemon being measured, if any
cleanup() {
	if [ -n "$SP" ]; then kill "$SP" 2>/dev/null || true; fi
	if [ -n "$DP" ]; then kill "$DP" 2>/dev/null || true; fi
	if [ -n "${SAMPLER:-}" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
	if [ "$KEEP" = 1 ]; then echo "(work directory kept: $W)"; else rm -rf "$W"; fi
}
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
load1() { cut -d' ' -f1 /proc/loadavg; }

echo "check,workload,result,detail" >"$OUT/checks.csv"
CHECKS_FAILED=0
ok() { if "$@"; then echo 0; else echo 1; fi; } # prints 0 if the command succeeds, else 1
outline() { grep -m1 -E '^(release|cycle) ' "$LOGF" || head -1 "$LOGF"; } # the last run's result line
said() { grep -qE "$1" "$LOGF" && [ "$RC" = 0 ]; } # the last measured run exited 0 and printed a line matching $1
check() { # WORKLOAD WHAT OK(0/1) DETAIL
	local r=PASS
	[ "$3" = 0 ] || {
		r=FAIL
		CHECKS_FAILED=$((CHECKS_FAILED + 1))
	}
	echo "\"$2\",$1,$r,\"${4//\"/\'}\"" >>"$OUT/checks.csv"
	log "  check: $2 ($1): $r${4:+ ($4)}"
}

# ---------------------------------------------------------------- prerequisites, build
cm_ok=1
case " $WORKLOADS " in *" cm "*) ;; *) cm_ok=0 ;; esac
need=()
if [ "$cm_ok" = 1 ]; then
	command -v python3 >/dev/null || need+=(python3)
	case " $PEERS " in *" cfengine "*) command -v cf-agent >/dev/null || need+=(cfengine3) ;; esac
	case " $PEERS " in *" puppet "*) command -v puppet >/dev/null || need+=(puppet) ;; esac
	command -v /usr/bin/time >/dev/null || [ -z "$PEERS" ] || need+=(time) # the baseline's run_tool.sh uses it
fi
if [ ${#need[@]} -gt 0 ] && [ "$INSTALL" = 1 ]; then
	log "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
SKIPPED=()
if [ "$cm_ok" = 1 ]; then
	if [ ! -f "$SHARED_CM/gen.py" ] || [ ! -f "$HERE/../peers/gen_satchel.py" ] || ! command -v python3 >/dev/null; then
		SKIPPED+=("workload cm (needs python3 and the shared baseline in $SHARED_CM)")
		cm_ok=0
	fi
fi
PEERS_RUN=()
if [ "$cm_ok" = 1 ]; then
	for p in $PEERS; do
		case $p in
		cfengine) bin=cf-agent ;;
		puppet) bin=puppet ;;
		*) die "unknown peer $p" ;;
		esac
		if command -v "$bin" >/dev/null && [ -x /usr/bin/time ]; then
			PEERS_RUN+=("$p")
		else
			SKIPPED+=("peer $p ($bin or /usr/bin/time not installed; INSTALL=1 as root installs them)")
		fi
	done
fi

BIN=$W/bin
SAT=$BIN/satchel CS=$BIN/countserver RS=$BIN/runstat
log "build satchel, countserver, runstat ($("$GO" version | cut -d' ' -f3))"
mkdir -p "$BIN"
(cd "$REPO" && CGO_ENABLED=0 "$GO" build -trimpath -o "$SAT" ./cmd/satchel &&
	CGO_ENABLED=0 "$GO" build -trimpath -o "$CS" ./bench/agent/countserver &&
	CGO_ENABLED=0 "$GO" build -trimpath -o "$RS" ./bench/agent/runstat) || die "build"
COMMIT=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)
{
	echo "date: $(date -u -Is)"
	echo "host: $(hostname)  kernel: $(uname -r)"
	echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "cpus: $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
	echo "mem: $(awk '/MemTotal/{printf "%d MiB", $2/1024}' /proc/meminfo)"
	echo "satchel: $COMMIT ($("$GO" version | cut -d' ' -f3), CGO_ENABLED=0, binary $(stat -c %s "$SAT") bytes)"
	echo "worktree: $(cd "$REPO" && git status --porcelain 2>/dev/null | wc -l) paths differ from HEAD, diff sha256 $(cd "$REPO" && git diff HEAD 2>/dev/null | sha256sum | cut -c1-16)"
	echo "paths that differ from HEAD: $(cd "$REPO" && git status --porcelain 2>/dev/null | cut -c4- | tr '\n' ' ')"
	for p in cfengine3 puppet-agent facter; do echo "$p $(dpkg-query -Wf '${Version}' "$p" 2>/dev/null || echo -)"; done
	echo "RUNS=$RUNS BYTES_RUNS=$BYTES_RUNS IDLE_RUNS=$IDLE_RUNS IDLE_SECONDS=$IDLE_SECONDS N=$N WORKLOADS=$WORKLOADS PEERS=${PEERS_RUN[*]:-} TLS=$TLS WORKDIR=$W"
	echo "ETAG=$ETAG AGE=$AGE SERVER_IDLE=$SERVER_IDLE DAEMON_WORKLOADS=$DAEMON_WORKLOADS DAEMON_SCHEMES=$DAEMON_SCHEMES"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# background sampler: the machine may be shared; this records what else ran
(while :; do
	echo "$(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) top: $(top -b -n2 -d1 -w 200 2>/dev/null | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<4 {printf "%s %s%%; ", $12, $9; n++}')"
	sleep 9
done) >"$OUT/background.log" 2>&1 &
SAMPLER=$!

# ---------------------------------------------------------------- helpers
echo "tag,workload,tool,run,rc,wall_s,user_s,sys_s,maxrss_kb,load1" >"$OUT/runs.csv"
# measure TAG WORKLOAD TOOL CMD...: runs CMD under runstat; output in logs/TAG-<run>.log;
# one row in runs.csv; sets RC and LOGF.
measure() {
	local tag=$1 wl=$2 tool=$3 run ld
	shift 3
	run=$(($(grep -c "^$tag," "$OUT/runs.csv" || true) + 1))
	LOGF=$OUT/logs/$tag-$run.log
	ld=$(load1)
	RC=0
	"$RS" -o "$W/rs" -- "$@" >"$LOGF" 2>&1 || RC=$?
	local wall user sys rss code
	read -r wall user sys rss code <"$W/rs"
	echo "$tag,$wl,$tool,$run,$code,$wall,$user,$sys,$rss,$ld" >>"$OUT/runs.csv"
}
# serve_start NAME DIR [tls]: countserver over DIR, logging to http-NAME.tsv; sets URL.
# Every server of a scheme listens where the first one did (ADDR_http, ADDR_https), so
# that the node's repository URL stays the same, as in production.
ADDR_http= ADDR_https=
serve_start() {
	local name=$1 dir=$2 flags=(-idle-timeout "$SERVER_IDLE") scheme=http
	if [ "${3:-}" = tls ]; then
		flags+=(-tls-ca "$W/ca.pem")
		scheme=https
	fi
	[ "$ETAG" = 1 ] && flags+=(-etag)
	local av=ADDR_$scheme
	[ -n "${!av}" ] && flags+=(-addr "${!av}")
	rm -f "$W/ready" "$OUT/http-$name.tsv"
	: >"$OUT/http-$name.tsv"
	"$CS" "${flags[@]}" -log "$OUT/http-$name.tsv" -ready "$W/ready" "$dir" 2>>"$OUT/bench.log" &
	SP=$!
	local i
	for i in $(seq 400); do
		[ -s "$W/ready" ] && break
		kill -0 "$SP" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$W/ready" ] || die "countserver did not start (${!av:-any port}; see bench.log)"
	printf -v "$av" '%s' "$(cat "$W/ready")"
	URL=$scheme://${!av}
}
# age: timestamp.json as a mirror serves it, written minutes or days ago (AGE), not in the
# last 2 s, when the agent does not keep its Last-Modified (a weak validator then).
age() {
	[ -z "$AGE" ] || touch -d "$AGE" "$RREPO/metadata/timestamp.json"
}
serve_stop() {
	kill -TERM "$SP"
	wait "$SP" || true
	SP=
}
# httpsum NAME: "requests body downloaded uploaded conditional statuses" of http-NAME.tsv
httpsum() {
	awk -F'\t' '$3 != "(close)" { n++; if ($8 != "-") c++; st = st sep $4; sep = "," }
		{ b += $5; d += $6; u += $7 }
		END { printf "%d %d %d %d %d %s\n", n, b, d, u, c, (st == "" ? "-" : st) }' "$OUT/http-$1.tsv"
}
# stats: "median min max" of the numbers on stdin
stats() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) { print "- - -"; exit }
	m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'; }
# snapshot ROOT OUT: type, mode, size, mtime, ctime, inode and SHA-256 of every entry
snapshot() {
	(cd "$1" && find . -printf '%y %m %s %T@ %C@ %i %p\n' | sort -k7 >"$2.meta" &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum >"$2.sha") || return 1
	cat "$2.meta" "$2.sha" >"$2"
	rm -f "$2.meta" "$2.sha"
}
# idle_sample PID TAG: appends VmRSS, RssAnon, RssFile (KiB) every 0.5 s for IDLE_SECONDS
# to idle-TAG.tsv (the run number first)
idle_sample() {
	local pid=$1 f=$OUT/idle-$2.tsv i run
	[ -s "$f" ] || echo "run t_s vmrss_kib rssanon_kib rssfile_kib vmhwm_kib" >"$f"
	run=$(($(tail -n +2 "$f" | cut -d' ' -f1 | sort -u | wc -l) + 1))
	for i in $(seq 0 $((IDLE_SECONDS * 2))); do
		[ -r "/proc/$pid/status" ] || break
		awk -v run="$run" -v t="$(awk -v i="$i" 'BEGIN{print i / 2}')" '/^VmRSS:/{r=$2} /^RssAnon:/{a=$2} /^RssFile:/{f=$2} /^VmHWM:/{h=$2}
			END{print run, t, r, a, f, h}' "/proc/$pid/status" >>"$f"
		sleep 0.5
	done
}
# idle_summary TAG WORKLOAD PROCESS: one row of idle.tsv from idle-TAG.tsv: the median and
# the largest VmRSS over every sample of every run, the medians of RssAnon and RssFile
idle_summary() {
	local f=$OUT/idle-$1.tsv med max anon file n runs
	[ -s "$f" ] || return 0
	read -r med _ max < <(tail -n +2 "$f" | awk '{print $3}' | stats)
	read -r anon _ _ < <(tail -n +2 "$f" | awk '{print $4}' | stats)
	read -r file _ _ < <(tail -n +2 "$f" | awk '{print $5}' | stats)
	n=$(($(wc -l <"$f") - 1))
	runs=$(tail -n +2 "$f" | cut -d' ' -f1 | sort -u | wc -l)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$3" "$2" "$runs" "$n" "$med" "$max" "$anon" "$file" >>"$W/idle.tsv"
}
: >"$W/idle.tsv"  # process workload runs samples median_kib max_kib anon_kib file_kib
: >"$W/bytes.tsv" # cycle workload runs requests body down up conditional statuses identical

# ---------------------------------------------------------------- workloads
setup_school() {
	local d=$W/school
	mkdir -p "$d"
	CFG=$d/config
	cp -r "$REPO/examples/school-server" "$CFG"
	# The agent has no --var: release the example with manage_system's default set to false,
	# which is what `make example` passes (--var manage_system=false).
	awk '/^variable "manage_system"/ {inv = 1} inv && /^ *default *= *true/ {sub(/true/, "false"); done = 1} /^}/ {inv = 0} {print}
		END {exit !done}' "$REPO/examples/school-server/site.hcl" >"$CFG/site.hcl" || die "school: cannot set manage_system = false"
	ROOT=$d/root
	AG_NODE=(--node school-001 --facts "$REPO/examples/school-server/facts/school-001.json")
	# make example's second run, exactly (its own state dir)
	APPLY=("$SAT" apply --root "$ROOT" --state-dir "$d/apply-state" --node school-001
		--facts "$REPO/examples/school-server/facts/school-001.json" --var manage_system=false "$REPO/examples/school-server")
	CHANGE=templates/motd.tmpl
	DESC_school="examples/school-server as \`make example\` applies it (node school-001, its facts file, manage_system=false)"
}
setup_cm() {
	export BASE=$W/cm
	python3 "$SHARED_CM/gen.py" --n "$N" --base "$BASE" >/dev/null || die "gen.py"
	python3 "$HERE/../peers/gen_satchel.py" --n "$N" --base "$BASE" >/dev/null || die "gen_satchel.py"
	G=$BASE/gen-N$N
	local node
	node=$("$SAT" facts | python3 -c 'import json, sys; print(json.load(sys.stdin)["hostname"])')
	CFG=$BASE/config
	cp -r "$G/satchel" "$CFG"
	# a release is checked for every named node: name this one instead of "*"
	sed "s/^node \"\\*\" {/node \"$node\" {/" "$G/satchel/site.hcl" >"$CFG/site.hcl"
	grep -q "^node \"$node\" {" "$CFG/site.hcl" || die "cm: no node \"*\" block to rename"
	ROOT=$BASE/root-satchel
	AG_NODE=() # facts gathered from this machine, node = its hostname, as the peers do
	APPLY=("$SAT" apply --root "$ROOT" --state-dir "$BASE/state-satchel-apply" "$G/satchel")
	CHANGE=templates/school.conf.tmpl
	DESC_cm="shared CM baseline, N=$N (node $node, facts gathered)"
	mkdir -p "$OUT/peers"
	echo "tag,tool,run,rc,changes,errors,wall_s,user_s,sys_s,maxrss_kb" >"$OUT/peers/runs.csv" # run_tool.sh's columns
	local p
	for p in "${PEERS_RUN[@]}"; do
		"$SHARED_CM/reset.sh" "$p"
	done
}


# verify_tree ROOT: the shared verifier: ROOT holds exactly what expected.json lists
verify_tree() { python3 "$SHARED_CM/verify.py" check "$G/expected.json" "$1" >"$W/verify.out" 2>&1; }

bench_workload() {
	local wl=$1 i r tag
	log "== workload $wl"
	"setup_$wl"
	local desc=DESC_$wl
	echo "$wl: ${!desc}" >>"$OUT/env.txt"
	STATE=$W/$wl/state
	AG=("$SAT" agent --once --state "$STATE" --root "$ROOT" "${AG_NODE[@]}") # one cycle of the node's agent; --repo URL follows
	KEYS=$W/$wl/keys
	RREPO=$W/$wl/repo
	"$SAT" repo init "$RREPO" --keys "$KEYS" >>"$OUT/bench.log" 2>&1 || die "repo init"
	"$SAT" release "$CFG" --repo "$RREPO" --keys "$KEYS" >>"$OUT/bench.log" 2>&1 || die "release 1"
	age
	echo "$wl: config tree $(du -sb --exclude=.git "$CFG" | cut -f1) bytes in $(find "$CFG" -type f | wc -l) files; release repository $(du -sb "$RREPO" | cut -f1) bytes" >>"$OUT/env.txt"

	log "first cycle: release 1 onto an empty node"
	serve_start "$wl-first" "$RREPO"
	measure "$wl-first" "$wl" satchel-agent "${AG[@]}" --repo "$URL" --trust "$RREPO/metadata/root.json"
	serve_stop
	check "$wl" "first cycle applies release 1" "$(ok said '^release 1 applied')" "$(outline)"
	printf '%s\t%s\t%s\t%s\t%s\n' "first cycle (empty node), HTTP" "$wl" 1 "$(httpsum "$wl-first")" "-" >>"$W/bytes.tsv"
	if [ "$wl" = cm ]; then
		check cm "tree == expected.json after the first cycle" "$(ok verify_tree "$ROOT")" "$(head -1 "$W/verify.out")"
		local p
		for p in "${PEERS_RUN[@]}"; do # converge each peer's own root once
			RESULTS=$OUT/peers "$SHARED_CM/run_tool.sh" "$p" "$G" "$p-N$N-first" >/dev/null 2>&1
			check cm "$p: tree == expected.json after its first run" "$(ok verify_tree "$BASE/root-$p")" "$(head -1 "$W/verify.out")"
		done
	fi

	log "bytes of a no-change cycle: $BYTES_RUNS cycles, each against a fresh countserver"
	local totals=()
	for i in $(seq "$BYTES_RUNS"); do
		serve_start "$wl-nochange-$i" "$RREPO"
		# the first no-change cycle after a release does more (what the cycle before wrote,
		# the catalog cache included, is "racy", as in git's index, and checked again): timed apart
		if [ "$i" = 1 ]; then tag=$wl-nochange-first; else tag=$wl-nochange-bytes; fi
		measure "$tag" "$wl" satchel-agent "${AG[@]}" --repo "$URL"
		serve_stop
		check "$wl" "no-change cycle $i (bytes) changes nothing" "$(ok said '^release 1 re-applied: 0 changed, [0-9]+ unchanged, 0 failed')" "$(outline)"
		totals+=("$(httpsum "$wl-nochange-$i")")
	done
	local same=yes
	for i in "${totals[@]}"; do [ "$i" = "${totals[0]}" ] || same=no; done
	# the largest of the runs, so that a variation never flatters
	local worst
	worst=$(printf '%s\n' "${totals[@]}" | sort -k3,3n | tail -1)
	printf '%s\t%s\t%s\t%s\t%s\n' "no change, HTTP, \`agent --once\`" "$wl" "$BYTES_RUNS" "$worst" "$same" >>"$W/bytes.tsv"
	check "$wl" "no-change cycles over HTTP: timestamp.json asked for conditionally, answered 304" \
		"$(ok awk -F'\t' '$3 ~ /timestamp.json$/ { n++; if ($4 == 304 && $8 != "-") ok++ } END { exit !(n > 0 && n == ok) }' $(for i in $(seq "$BYTES_RUNS"); do echo "$OUT/http-$wl-nochange-$i.tsv"; done))" ""
	if [ "$TLS" = 1 ]; then
		# The node's validators are for the http:// URL: a first cycle over https:// fetches
		# timestamp.json whole (a node whose URL changed); it is logged, not measured.
		local ttot=()
		for i in $(seq 0 "$BYTES_RUNS"); do
			serve_start "$wl-nochange-https-$i" "$RREPO" tls
			measure "$wl-nochange-https" "$wl" satchel-agent env SSL_CERT_FILE="$W/ca.pem" "${AG[@]}" --repo "$URL"
			serve_stop
			check "$wl" "no-change cycle over HTTPS ($i) changes nothing" "$(ok said '^release 1 re-applied: 0 changed, [0-9]+ unchanged, 0 failed')" "$(outline)"
			[ "$i" = 0 ] || ttot+=("$(httpsum "$wl-nochange-https-$i")")
		done
		same=yes
		for i in "${ttot[@]}"; do [ "$i" = "${ttot[0]}" ] || same=no; done
		worst=$(printf '%s\n' "${ttot[@]}" | sort -k3,3n | tail -1)
		printf '%s\t%s\t%s\t%s\t%s\n' "no change, HTTPS, \`agent --once\` (a full TLS handshake)" "$wl" "$BYTES_RUNS" "$worst" "$same" >>"$W/bytes.tsv"
		# and the first HTTP cycle after it would fetch timestamp.json whole again: one
		# cycle, not measured, so that the timed rounds are all alike
		serve_start "$wl-warmup-http" "$RREPO"
		"${AG[@]}" --repo "$URL" >>"$OUT/bench.log" 2>&1 || die "$wl: HTTP warm-up cycle"
		serve_stop
	fi

	log "no-change cycles: $RUNS interleaved rounds (load $(load1))"
	"${APPLY[@]}" >>"$OUT/bench.log" 2>&1 || die "$wl: satchel apply warm-up" # its catalog cache, as the agent's is warm
	snapshot "$ROOT" "$W/$wl-snap-before"
	serve_start "$wl-noop-rounds" "$RREPO"
	for r in $(seq "$RUNS"); do
		measure "$wl-noop" "$wl" satchel-agent "${AG[@]}" --repo "$URL"
		[ "$(ok said '^release 1 re-applied: 0 changed, [0-9]+ unchanged, 0 failed')" = 0 ] || echo "$LOGF" >>"$W/$wl-noop-bad"
		measure "$wl-noop-apply" "$wl" satchel-apply "${APPLY[@]}" --detailed-exitcode
		[ "$RC" = 0 ] || echo "$LOGF" >>"$W/$wl-apply-bad"
		if [ "$wl" = cm ]; then
			local p
			for p in "${PEERS_RUN[@]}"; do
				RESULTS=$OUT/peers "$SHARED_CM/run_tool.sh" "$p" "$G" "$p-N$N-noop" >/dev/null 2>&1 || true
			done
		fi
	done
	serve_stop
	snapshot "$ROOT" "$W/$wl-snap-after"
	check "$wl" "$RUNS no-change agent cycles: exit 0, '0 changed, 0 failed'" "$([ -s "$W/$wl-noop-bad" ] && echo 1 || echo 0)" "$(cat "$W/$wl-noop-bad" 2>/dev/null | tr '\n' ' ')"
	check "$wl" "$RUNS satchel apply --detailed-exitcode runs: exit 0 (nothing changed)" "$([ -s "$W/$wl-apply-bad" ] && echo 1 || echo 0)" "$(cat "$W/$wl-apply-bad" 2>/dev/null | tr '\n' ' ')"
	check "$wl" "ROOT untouched by the no-change rounds (type/mode/size/mtime/ctime/inode/sha256)" "$(ok cmp -s "$W/$wl-snap-before" "$W/$wl-snap-after")" ""
	local rq
	read -r rq _ <<<"$(httpsum "$wl-noop-rounds")"
	local per_cycle
	read -r per_cycle _ <<<"${totals[0]}"
	check "$wl" "the timed cycles made the same requests ($per_cycle each)" "$(ok [ "$rq" = $((per_cycle * RUNS)) ])" "$rq requests in $RUNS cycles"
	if [ "$wl" = cm ]; then
		local p
		for p in "${PEERS_RUN[@]}"; do
			check cm "$p: every no-op run reported 0 changes, 0 errors" "$(ok awk -F, -v t="$p-N$N-noop" '$1 == t { n++; if ($5 + 0 != 0 || $6 + 0 != 0) bad++ }
				END { exit !(n > 0 && bad == 0) }' "$OUT/peers/runs.csv")" ""
		done
	fi

	log "idle memory: $IDLE_RUNS daemon starts, sampled after the first cycle (load $(load1))"
	for r in $(seq "$IDLE_RUNS"); do
		local dlog=$OUT/logs/$wl-daemon-$r.log
		serve_start "$wl-idle-$r" "$RREPO"
		"$SAT" agent --repo "$URL" --state "$STATE" --root "$ROOT" "${AG_NODE[@]}" --interval 1m --splay 0s >"$dlog" 2>&1 &
		DP=$!
		for i in $(seq 1200); do
			grep -q 'next cycle at' "$dlog" && break
			kill -0 "$DP" 2>/dev/null || break
			sleep 0.05
		done
		check "$wl" "daemon $r finished its first cycle and waits ('next cycle at')" "$(ok grep -q 'next cycle at' "$dlog")" "$(grep -m1 'cycle ' "$dlog" || true)"
		idle_sample "$DP" "$wl-satchel-agent"
		kill -TERM "$DP"
		local drc=0
		wait "$DP" || drc=$?
		check "$wl" "daemon $r exits 0 on SIGTERM" "$(ok [ "$drc" = 0 ])" "exit status $drc"
		DP=
		serve_stop
	done
	idle_summary "$wl-satchel-agent" "$wl" "\`satchel agent --interval 1m\`, waiting after its first cycle"
	if [ "$wl" = cm ]; then peers_idle; fi
	case " $DAEMON_WORKLOADS " in *" $wl "*)
		local scheme
		for scheme in $DAEMON_SCHEMES; do
			case $scheme in http | https) ;; *) die "DAEMON_SCHEMES: unknown scheme $scheme" ;; esac
			[ "$scheme" = http ] || [ "$TLS" = 1 ] || continue
			daemon_bytes "$wl" "$scheme"
		done
		idle_summary "$wl-satchel-agent-2nd" "$wl" "\`satchel agent --interval 1m\`, waiting after its second cycle"
		;;
	esac

	log "a new release: one file changed ($CHANGE)"
	printf '%s\n' "# release 2: one line added" >>"$CFG/$CHANGE"
	"$SAT" release "$CFG" --repo "$RREPO" --keys "$KEYS" >>"$OUT/bench.log" 2>&1 || die "release 2"
	age
	serve_start "$wl-new" "$RREPO"
	measure "$wl-new" "$wl" satchel-agent "${AG[@]}" --repo "$URL"
	serve_stop
	check "$wl" "the cycle after release 2 applies it" "$(ok said '^release 2 applied')" "$(outline)"
	printf '%s\t%s\t%s\t%s\t%s\n' "new release (one template changed), HTTP" "$wl" 1 "$(httpsum "$wl-new")" "-" >>"$W/bytes.tsv"
}

# daemon_bytes WORKLOAD SCHEME: the daemon, `satchel agent --interval 1m --splay 0s` (the
# shortest interval), against one countserver for its whole life: its first cycle, then
# its second, about 60 s later, which is what a running agent does at every cycle. The
# server closes idle connections after SERVER_IDLE, so the second cycle opens its own as
# it would after the default 30 min interval (the client keeps idle ones for 90 s). Its
# bytes are those of the connections it opened: every request on them, and the TLS
# close_notify the server sends when it closes them (when stopped). Then RSS is sampled
# for IDLE_SECONDS, as after the first cycle.
daemon_bytes() {
	local wl=$1 scheme=$2 name=$1-daemon-$2 dlog=$OUT/logs/$1-daemon-$2.log envp=() i b1
	log "daemon over $scheme: its second cycle (about 60 s after the first; load $(load1))"
	if [ "$scheme" = https ]; then
		serve_start "$name" "$RREPO" tls
		envp=(env SSL_CERT_FILE="$W/ca.pem")
	else
		serve_start "$name" "$RREPO"
	fi
	"${envp[@]}" "$SAT" agent --repo "$URL" --state "$STATE" --root "$ROOT" "${AG_NODE[@]}" --interval 1m --splay 0s >"$dlog" 2>&1 &
	DP=$!
	for i in $(seq 1200); do
		grep -q 'next cycle at' "$dlog" && break
		kill -0 "$DP" 2>/dev/null || break
		sleep 0.05
	done
	sleep 1 # the server logs a request when its connection goes idle: let the last one in
	b1=$(wc -l <"$OUT/http-$name.tsv")
	for i in $(seq 1800); do # up to 90 s
		[ "$(grep -c 'next cycle at' "$dlog")" -ge 2 ] && break
		kill -0 "$DP" 2>/dev/null || break
		sleep 0.05
	done
	sleep 1
	check "$wl" "daemon over $scheme: second cycle done ('next cycle at' twice)" "$(ok [ "$(grep -c 'next cycle at' "$dlog")" -ge 2 ])" "$(grep 'cycle ' "$dlog" | tail -1 || true)"
	check "$wl" "daemon over $scheme: both cycles re-applied release 1, 0 changed, 0 failed" \
		"$(ok [ "$(grep -cE 'cycle reapplied: release 1, 0 changed, 0 failed' "$dlog")" -ge 2 ])" "$(grep -E 'cycle ' "$dlog" | tr '\n' ' ')"
	idle_sample "$DP" "$wl-satchel-agent-2nd"
	kill -TERM "$DP"
	local drc=0
	wait "$DP" || drc=$?
	DP=
	check "$wl" "daemon over $scheme exits 0 on SIGTERM" "$(ok [ "$drc" = 0 ])" "exit status $drc"
	serve_stop
	# the second cycle's connections: those with a request after the first cycle's lines
	awk -F'\t' -v b1="$b1" 'NR <= b1 { before[$1] = 1 } NR > b1 && $3 != "(close)" { print $1 (($1 in before) ? " reused" : "") }' \
		"$OUT/http-$name.tsv" | sort -u >"$W/$name.conns"
	check "$wl" "daemon over $scheme: the second cycle made requests, on connections of its own" \
		"$(ok awk '{n++} /reused/ {r++} END {exit !(n > 0 && r == 0)}' "$W/$name.conns")" "$(tr '\n' ' ' <"$W/$name.conns")"
	awk -F'\t' 'NR == FNR { c[$1] = 1; next } ($1 in c)' "$W/$name.conns" "$OUT/http-$name.tsv" >"$OUT/http-$name-2nd.tsv"
	local what="no change, $(echo "$scheme" | tr a-z A-Z), the daemon's second cycle"
	if [ "$scheme" = https ]; then # as the server saw it: a resumed session or a full handshake
		what="$what ($(awk -F'\t' '$3 != "(close)" {print $1, $10}' "$OUT/http-$name-2nd.tsv" | sort -u | awk '{n++; k[$2]++}
			END {printf "%d connection%s: ", n, (n > 1 ? "s" : ""); s = ""; for (t in k) { printf "%s%s", s, (n > 1 ? k[t] " " : "") (t == "full" ? "full TLS handshake" : (t == "resumed" ? "TLS session resumed" : t)); s = ", " }}'))"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$what" "$wl" 1 "$(httpsum "$name-2nd")" "-" >>"$W/bytes.tsv"
}

peers_idle() {
	local p r
	for r in $(seq "$IDLE_RUNS"); do for p in "${PEERS_RUN[@]}"; do
		case $p in
		cfengine)
			# CFEngine's resident part: cf-execd, which starts cf-agent every 5 minutes (its own
			# work directory, set up as the Debian package does). It is given the workload's
			# policy plus an executor body whose schedule never fires: by default, in a minute
			# that is a multiple of 5 it would start cf-agent on the failsafe policy, which
			# starts cf-serverd, a daemon that outlives the benchmark.
			local S=$BASE/state-cfexecd
			rm -rf "$S"
			mkdir -p "$S"
			ln -s /usr/bin "$S/bin"
			CFENGINE_TEST_OVERRIDE_WORKDIR=$S cf-key >/dev/null 2>&1 || true
			{
				cat "$G/cfengine/promises.cf"
				printf '\n# bench/agent: cf-execd is measured idle only; it must start nothing\n'
				printf 'body executor control\n{\n  schedule => { "bench_agent_never" };\n  exec_command => "/bin/true";\n}\n'
			} >"$S/execd.cf"
			(cd "$G/cfengine" && CFENGINE_TEST_OVERRIDE_WORKDIR=$S exec cf-execd --no-fork -f "$S/execd.cf") \
				>"$OUT/logs/cm-cf-execd.log" 2>&1 &
			DP=$!
			sleep 2
			if kill -0 "$DP" 2>/dev/null; then
				idle_sample "$DP" cm-cf-execd
				check cm "cf-execd stayed up while sampled" 0 ""
			else
				check cm "cf-execd stayed up while sampled" 1 "$(head -1 "$OUT/logs/cm-cf-execd.log")"
			fi
			kill -TERM "$DP" 2>/dev/null
			wait "$DP" || true
			DP=
			;;
		puppet)
			# The puppet agent daemon, with no server to talk to: it starts, fails to reach its
			# CA and sleeps 120 s. It has run no catalog: a lower bound of its idle memory.
			local S=$BASE/state-puppet-agent
			rm -rf "$S"
			mkdir -p "$S"
			puppet agent --no-daemonize --verbose --logdest console --color=false \
				--confdir="$S/conf" --vardir="$S/var" --codedir="$S/code" --logdir="$S/log" \
				--rundir="$S/run" --publicdir="$S/public" --server=127.0.0.1 --serverport=1 \
				--runinterval=60 --no-splay >"$OUT/logs/puppet-agent-daemon.log" 2>&1 &
			DP=$!
			local i
			for i in $(seq 600); do
				grep -q 'Will try again' "$OUT/logs/puppet-agent-daemon.log" && break
				kill -0 "$DP" 2>/dev/null || break
				sleep 0.1
			done
			check cm "puppet agent daemon is waiting ('Will try again')" "$(ok grep -q 'Will try again' "$OUT/logs/puppet-agent-daemon.log")" ""
			idle_sample "$DP" cm-puppet-agent
			kill -TERM "$DP" 2>/dev/null
			wait "$DP" || true
			DP=
			;;
		esac
	done; done
	idle_summary cm-cf-execd cm "\`cf-execd --no-fork\` (CFEngine's resident scheduler; cf-agent runs as its child)"
	idle_summary cm-puppet-agent cm "\`puppet agent --no-daemonize\` (no server: waiting for its CA, no run yet; a lower bound)"
}

T0=$(date +%s)
for wl in $WORKLOADS; do
	case $wl in
	school) bench_workload school ;;
	cm) if [ "$cm_ok" = 1 ]; then bench_workload cm; fi ;;
	*) die "unknown workload $wl" ;;
	esac
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load at end: $LOAD_END" >>"$OUT/env.txt"
log "total $(($(date +%s) - T0)) s"
cp "$W/idle.tsv" "$OUT/idle.tsv"
cp "$W/bytes.tsv" "$OUT/bytes.tsv"

# ---------------------------------------------------------------- the tables
# Rounding never flatters Satchel: its times, memory and ratios are rounded up, the peers'
# down; ratios are Satchel / peer (below 1: Satchel is faster or smaller).
AWKLIB='
function up(x, d,  p, y) { p = 10 ^ d; y = x * p; if (y - int(y) > 1e-9) y = int(y) + 1; else y = int(y); return sprintf("%." d "f", y / p) }
function down(x, d,  p) { p = 10 ^ d; return sprintf("%." d "f", int(x * p + 1e-9) / p) }
function sig2up(x,  e, p, y, d) { # 2 significant digits, rounded up
	if (x <= 0) return "0"
	e = int(log(x) / log(10)); if (10 ^ e > x) e--; p = 10 ^ (1 - e); y = x * p
	if (y - int(y) > 1e-9) y = int(y) + 1; else y = int(y)
	d = 1 - e; if (d < 0) d = 0
	return sprintf("%." d "f", y / p)
}
function commas(n,  s) { s = sprintf("%d", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
'
# timing TAG TOOLFILTER: "median min max cpu_median maxrss_kib n" of runs.csv rows with tag TAG
timing() {
	local f=$OUT/runs.csv col_wall=6 col_user=7 col_sys=8 col_rss=9 col_tag=1
	[ "${2:-}" = peer ] && f=$OUT/peers/runs.csv && col_wall=7 col_user=8 col_sys=9 col_rss=10
	[ -s "$f" ] || {
		echo "- - - - - 0"
		return
	}
	local w c rss n
	w=$(awk -F, -v t="$1" -v c="$col_wall" '$'$col_tag' == t {print $c}' "$f" | stats)
	c=$(awk -F, -v t="$1" -v u="$col_user" -v s="$col_sys" '$1 == t {print $u + $s}' "$f" | stats | cut -d' ' -f1)
	rss=$(awk -F, -v t="$1" -v r="$col_rss" '$1 == t {print $r}' "$f" | sort -g | tail -1)
	n=$(awk -F, -v t="$1" '$1 == t' "$f" | wc -l)
	echo "$w $c ${rss:--} $n"
}
{
	echo "Satchel $COMMIT, \`satchel agent\`, $(date -u '+%F %H:%M') UTC; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $("$GO" version | cut -d' ' -f3); load (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end."
	for wl in $WORKLOADS; do
		desc=DESC_$wl
		[ -n "${!desc:-}" ] && echo "Workload $wl: ${!desc}; $(grep "^$wl: config tree" "$OUT/env.txt" | cut -d' ' -f2-)."
	done
	[ ${#SKIPPED[@]} -eq 0 ] || echo "Not run: ${SKIPPED[*]}."
	echo
	echo "**Idle memory**: RSS of the daemon (\`--interval 1m --splay 0s\`) once its first cycle is done (its log says \"next cycle at\"), sampled every 0.5 s for ${IDLE_SECONDS} s from /proc/PID/status; $IDLE_RUNS starts, each with its own first cycle; median and largest over all samples. The daemons run to their second cycle (bytes, below) are sampled the same way after it. Target: under 20 MiB."
	echo
	echo "| process | workload | starts × samples | VmRSS median MiB | VmRSS max MiB | anon / file-backed MiB (median) | × cf-execd | × puppet agent | target < 20 MiB |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
	execd=$(awk -F'\t' '$1 ~ /^`cf-execd/ {print $5}' "$W/idle.tsv")
	pagent=$(awk -F'\t' '$1 ~ /^`puppet agent/ {print $5}' "$W/idle.tsv")
	while IFS=$'\t' read -r proc wl runs n med max anon file; do
		awk -v p="$proc" -v wl="$wl" -v runs="$runs" -v n="$n" -v med="$med" -v max="$max" -v anon="$anon" -v file="$file" -v ex="${execd:-}" -v pa="${pagent:-}" "$AWKLIB"'
		BEGIN {
			ours = (p ~ /^`satchel/)
			m = med / 1024; x = max / 1024; a = anon / 1024; fb = file / 1024
			if (ours) { sm = up(m, 1); sx = up(x, 1); sa = up(a, 1); sf = up(fb, 1) } else { sm = down(m, 1); sx = down(x, 1); sa = down(a, 1); sf = down(fb, 1) }
			r1 = (ours && ex != "") ? sig2up(med / ex) : "-"
			r2 = (ours && pa != "") ? sig2up(med / pa) : "-"
			t = ours ? ((max < 20 * 1024) ? "met (max " sx " MiB)" : "**missed** (max " sx " MiB)") : "-"
			printf "| %s | %s | %d × %d | %s | %s | %s / %s | %s | %s | %s |\n", p, wl, runs, n / runs, sm, sx, sa, sf, r1, r2, t
		}'
	done <"$W/idle.tsv"
	echo
	echo "**No-change cycle**: each run a new process; median (min–max) of the runs, wall from fork to exit; CPU = user + system (median); peak RSS = the largest ru_maxrss over the runs. Satchel's runs are timed by runstat (µs), the peers' by the baseline's run_tool.sh (GNU time, 10 ms). The rounds interleave the tools, so a burst of load hits all of them."
	echo
	echo "| command | workload | runs | wall s | CPU s | peak RSS MiB | × cf-agent wall | × puppet apply wall | × cf-agent RSS |"
	echo "|---|---|---:|---|---:|---:|---:|---:|---:|"
	cfw=- ppw=- cfr=-
	if [ -s "$OUT/peers/runs.csv" ]; then
		read -r cfw _ _ _ cfr _ < <(timing "cfengine-N$N-noop" peer)
		read -r ppw _ _ _ _ _ < <(timing "puppet-N$N-noop" peer)
	fi
	row() { # LABEL WORKLOAD TAG [peer]
		local med min max cpu rss n
		read -r med min max cpu rss n < <(timing "$3" "${4:-}")
		[ "$n" -gt 0 ] || return 0
		awk -v l="$1" -v wl="$2" -v n="$n" -v med="$med" -v min="$min" -v max="$max" -v cpu="$cpu" -v rss="$rss" \
			-v peer="${4:-}" -v cfw="$cfw" -v ppw="$ppw" -v cfr="$cfr" "$AWKLIB"'
		BEGIN {
			ours = (peer == "")
			d = (med < 1) ? 3 : 2
			if (ours) { w = up(med, d) " (" up(min, d) "–" up(max, d) ")"; c = up(cpu, 3); r = up(rss / 1024, 1) }
			else { w = down(med, 2) " (" down(min, 2) "–" down(max, 2) ")"; c = down(cpu, 2); r = down(rss / 1024, 1) }
			cmp = ours && wl == "cm" && l !~ /^for context/
			r1 = (cmp && cfw != "-") ? sig2up(med / cfw) : "-"
			r2 = (cmp && ppw != "-") ? sig2up(med / ppw) : "-"
			r3 = (cmp && cfr != "-") ? sig2up(rss / cfr) : "-"
			printf "| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", l, wl, n, w, c, r, r1, r2, r3
		}'
	}
	for wl in $WORKLOADS; do
		row "\`satchel agent --once\`: facts, metadata refresh over HTTP, re-apply" "$wl" "$wl-noop"
		row "\`satchel apply\` of the same config (no network, no release)" "$wl" "$wl-noop-apply"
	done
	for wl in $WORKLOADS; do
		row "for context: the first no-change \`agent --once\` after a release was applied" "$wl" "$wl-nochange-first"
		row "for context: \`agent --once\` applying release 1 to an empty node" "$wl" "$wl-first"
		row "for context: \`agent --once\` applying release 2 (one template changed)" "$wl" "$wl-new"
	done
	row "\`cf-agent -KIf\` no-op (CFEngine $(dpkg-query -Wf '${Version}' cfengine3 2>/dev/null))" cm "cfengine-N$N-noop" peer
	row "\`puppet apply\` no-op (Puppet $(dpkg-query -Wf '${Version}' puppet-agent 2>/dev/null))" cm "puppet-N$N-noop" peer
	echo
	echo "**Bytes on the wire per cycle**, counted at the server's socket: downloaded = what the node receives (headers, body, TLS records), uploaded = its requests; TCP/IP headers not counted. Target for a no-change cycle: under 4 KiB (4,096 bytes) downloaded."
	echo
	echo "| cycle | workload | runs | requests | statuses | body bytes | downloaded | uploaded | both ways | conditional requests | target < 4 KiB |"
	echo "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|"
	while IFS=$'\t' read -r what wl runs rest same; do
		read -r n b d u c st <<<"$rest"
		awk -v what="$what" -v wl="$wl" -v runs="$runs" -v n="$n" -v b="$b" -v d="$d" -v u="$u" -v c="$c" -v st="$st" -v same="$same" "$AWKLIB"'
		BEGIN {
			t = "-"
			if (what ~ /^no change/) t = (d < 4096) ? "met" : "**missed**"
			if (runs > 1) runs = runs (same == "yes" ? " (identical)" : " (worst shown)")
			if (length(st) > 40) { split(st, s, ","); delete cnt; st2 = ""; for (i in s) cnt[s[i]]++; for (k in cnt) st2 = st2 (st2 == "" ? "" : ", ") cnt[k] "× " k; st = st2 }
			printf "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %d of %d | %s |\n", what, wl, runs, n, st, commas(b), commas(d), commas(u), commas(d + u), c, n, t
		}'
	done <"$W/bytes.tsv"
	echo
	echo "Requests of a no-change cycle (http-WORKLOAD-nochange-1.tsv, -nochange-https-1.tsv, -daemon-SCHEME-2nd.tsv; \"(close)\": the server's TLS close_notify):"
	for wl in $WORKLOADS; do
		for f in "nochange-1:HTTP, agent --once" "nochange-https-1:HTTPS, agent --once" "daemon-https-2nd:HTTPS, daemon's second cycle" "daemon-http-2nd:HTTP, daemon's second cycle"; do
			[ -s "$OUT/http-$wl-${f%%:*}.tsv" ] || continue
			awk -F'\t' -v wl="$wl" -v what="${f#*:}" '{printf "- %s, %s: conn %s, %s %s → %s, body %d, downloaded %d, uploaded %d, conditional %s%s\n", wl, what, $1, $2, $3, ($3 == "(close)" ? "-" : $4), $5, $6, $7, $8, ($10 == "-" || $10 == "" ? "" : ", TLS " $10)}' "$OUT/http-$wl-${f%%:*}.tsv"
		done
	done
	echo
	echo "Checks: $(($(wc -l <"$OUT/checks.csv") - 1)) run, $CHECKS_FAILED failed$([ "$CHECKS_FAILED" -gt 0 ] && echo ' (see checks.csv)' || true)."
	awk -F, 'NR > 1 && $3 == "FAIL" {print "- FAILED: " $1 " (" $2 "): " $4}' "$OUT/checks.csv"
} >"$OUT/results.md"
cat "$OUT/results.md"
echo
echo "(written to $OUT: results.md, runs.csv, idle-*.tsv, http-*.tsv, checks.csv, env.txt, logs/)"
[ "$CHECKS_FAILED" = 0 ]
