#!/usr/bin/env bash
# satchel server under a fleet's load: many simulated agents in one process (loadgen) over
# real mutual TLS on loopback, against `satchel server` run as a process of its own, so that
# its RSS and CPU time are its alone. For each agent count (AGENTS="1000 10000"), on a new
# data directory:
#
#   1. start `satchel server --data DATA --listen LISTEN --log-level warn`;
#   2. loadgen (see loadgen/main.go): enroll the agents with a bootstrap token, and wait
#      for the connections enrollment left to close; check-ins when nothing is new (a
#      conditional GET of timestamp.json, answered 304) at RATE per second, open loop, for
#      DURATION on a new TLS connection each with a full handshake (mode full: the issue's
#      target), then for OTHER_DURATION each resuming the TLS session (resumed) and with
#      the agent's own kept-alive client (keepalive); report uploads of REPORT_RESOURCES
#      resources, REPORT_CONCURRENCY at a time, for REPORT_DURATION (each agent's
#      connection closed after its upload, as the agent closes it after its cycle;
#      REPORT_CONN=keep keeps it for the agent's next upload), once for each
#      percentage of them changed in REPORT_CHANGED (1: a cycle correcting some drift, the
#      agent's spooled report listing only what changed; 100: every resource changed, the
#      largest report of that many resources); then every stored report read back and some
#      uploaded again (no loss, no duplicate);
#   3. the server's VmRSS sampled every second meanwhile (rss-N.tsv), its CPU time at the
#      end, its database's size; then it is stopped.
#
# The issue's target (this 2-core machine, load generator included): 170 check-ins/s for
# 5 minutes with 10,000 agents, each on a new TLS connection, p99 under 200 ms, server RSS
# under 300 MiB; at least 100 reports/s of 1,000 resources without loss. loadgen prints a
# "target:" line for each; the figures to report come from DURATION=5m (the default).
#
# Knobs (environment):
#   AGENTS="1000 10000"  RATE=170  DURATION=5m  OTHER_DURATION=2m  MODES=full,resumed,keepalive
#   REPORT_DURATION=1m  REPORT_CONCURRENCY=16  REPORT_RESOURCES=1000  REPORT_CHANGED=1,100
#   REPORT_CONN=close  RESEND=100
#   ENROLL_CONCURRENCY=8
#   QUICK=1              a quick try: DURATION=30s OTHER_DURATION=20s REPORT_DURATION=20s
#                        unless set (its figures are not the target's)
#   LISTEN=127.0.0.1:0   (port 0: any free port; the server records it in DATA/admin.json)
#   WORKDIR=/tmp         where the run's directory is made: the server's data (on disk, as
#                        in production)
#   AGENT_DIR=/dev/shm   where the agents' identities go (tmpfs if there is one: the load
#                        generator's own fsyncs are not what is measured)
#   KEEP=0 (1: keep the work directory)  OUT=bench/server/results/<date>[-k]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DURATION=${DURATION:-30s} OTHER_DURATION=${OTHER_DURATION:-20s} REPORT_DURATION=${REPORT_DURATION:-20s}
fi
AGENTS=${AGENTS:-"1000 10000"}
RATE=${RATE:-170}
DURATION=${DURATION:-5m}
OTHER_DURATION=${OTHER_DURATION:-2m}
MODES=${MODES-full,resumed,keepalive}
REPORT_DURATION=${REPORT_DURATION:-1m}
REPORT_CONCURRENCY=${REPORT_CONCURRENCY:-16}
REPORT_RESOURCES=${REPORT_RESOURCES:-1000}
REPORT_CHANGED=${REPORT_CHANGED:-1,100}
REPORT_CONN=${REPORT_CONN:-close}
RESEND=${RESEND:-100}
ENROLL_CONCURRENCY=${ENROLL_CONCURRENCY:-8}
LISTEN=${LISTEN:-127.0.0.1:0}
KEEP=${KEEP:-0}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
if [ -z "${AGENT_DIR:-}" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then AGENT_DIR=/dev/shm; else AGENT_DIR=${WORKDIR:-/tmp}; fi
fi

if [ -z "${OUT:-}" ]; then # results/<date>, then results/<date>-2, -3... for later runs that day
	OUT=$HERE/results/$(date -u +%Y-%m-%d)
	k=2
	while [ -e "$OUT" ]; do OUT=$HERE/results/$(date -u +%Y-%m-%d)-$k; k=$((k + 1)); done
fi
mkdir -p "$OUT" "${WORKDIR:-/tmp}"
W=$(mktemp -d "${WORKDIR:-/tmp}/satchel-bench-server.XXXXXX")
AW=$(mktemp -d "$AGENT_DIR/satchel-bench-agents.XXXXXX")
SP= SAMPLER= BG= # the server, its RSS sampler, the machine's sampler
cleanup() {
	for p in $SAMPLER $BG; do kill "$p" 2>/dev/null || true; done
	if [ -n "$SP" ]; then
		kill -TERM "$SP" 2>/dev/null || true
		wait "$SP" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ]; then echo "(work directories kept: $W $AW)"; else rm -rf "$W" "$AW"; fi
}
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

BIN=$W/bin SAT=$W/bin/satchel LG=$W/bin/loadgen
log "build satchel and loadgen ($("$GO" version | cut -d' ' -f3))"
mkdir -p "$BIN"
(cd "$REPO" && CGO_ENABLED=0 "$GO" build -trimpath -o "$SAT" ./cmd/satchel &&
	CGO_ENABLED=0 "$GO" build -trimpath -o "$LG" ./bench/server/loadgen) || die "build"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)
COMMAND="AGENTS=\"$AGENTS\" RATE=$RATE DURATION=$DURATION OTHER_DURATION=$OTHER_DURATION MODES=$MODES REPORT_DURATION=$REPORT_DURATION REPORT_CONCURRENCY=$REPORT_CONCURRENCY REPORT_RESOURCES=$REPORT_RESOURCES REPORT_CHANGED=$REPORT_CHANGED REPORT_CONN=$REPORT_CONN ENROLL_CONCURRENCY=$ENROLL_CONCURRENCY ./bench/server/bench.sh"
{
	echo "date: $(date -u -Is)"
	echo "host: $(hostname)  kernel: $(uname -r)"
	echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "cpus: $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
	echo "mem: $(awk '/MemTotal/{printf "%d MiB", $2/1024}' /proc/meminfo)"
	echo "satchel: $COMMIT ($("$GO" version | cut -d' ' -f3), CGO_ENABLED=0, binary $(stat -c %s "$SAT") bytes)"
	echo "paths that differ from HEAD: $(cd "$REPO" && git status --porcelain 2>/dev/null | cut -c4- | tr '\n' ' ')"
	echo "command: $COMMAND"
	echo "server data: $W  agent identities: $AW"
	echo "load at start: $LOAD_START"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

# The machine may be shared: record what else ran.
(while :; do
	echo "$(date +%T) load=$(cut -d' ' -f1-3 /proc/loadavg) top: $(top -b -n2 -d1 -w 200 2>/dev/null | awk '/^top -/{i++} i==2 && $1 ~ /^[0-9]+$/ && n<4 {printf "%s %s%%; ", $12, $9; n++}')"
	sleep 9
done) >"$OUT/background.log" 2>&1 &
BG=$!

: >"$OUT/table.md"
: >"$W/server.tsv" # agents wall_s cpu_s sampled_max_rss_kib sampled_max_open_files db_bytes
START=$(date +%s)
for N in $AGENTS; do
	D=$W/data-$N
	log "== $N agents: server on $D"
	"$SAT" server --data "$D" --listen "$LISTEN" --log-level warn >"$OUT/server-$N.log" 2>&1 &
	SP=$!
	for _ in $(seq 200); do
		grep -q '^satchel server listening on' "$OUT/server-$N.log" && break
		kill -0 "$SP" 2>/dev/null || break
		sleep 0.05
	done
	grep -q '^satchel server listening on' "$OUT/server-$N.log" || die "the server did not start (see server-$N.log)"
	S0=$(date +%s.%N)
	# the server every second: time VmRSS VmHWM (KiB) threads open_files
	(while [ -r "/proc/$SP/status" ]; do
		awk -v t="$(date +%s.%N)" -v fds="$(find "/proc/$SP/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
			'/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} /^Threads:/{n=$2} END{printf "%.1f %s %s %s %s\n", t, r, h, n, fds}' "/proc/$SP/status" 2>/dev/null || true
		sleep 1
	done) >"$OUT/rss-$N.tsv" &
	SAMPLER=$!
	rc=0
	"$LG" --credential "$D/admin.json" --agents "$N" --server-pid "$SP" --work "$AW/$N" \
		--enroll-concurrency "$ENROLL_CONCURRENCY" --modes "$MODES" --rate "$RATE" \
		--duration "$DURATION" --other-duration "$OTHER_DURATION" \
		--report-concurrency "$REPORT_CONCURRENCY" --report-duration "$REPORT_DURATION" \
		--report-resources "$REPORT_RESOURCES" --report-changed "$REPORT_CHANGED" --report-conn "$REPORT_CONN" --resend "$RESEND" \
		--rows "$OUT/table.md" 2>&1 | tee "$OUT/loadgen-$N.log" || rc=$?
	[ "$rc" = 0 ] || die "loadgen with $N agents (exit $rc; see loadgen-$N.log)"
	read -r _ _ cpu_ticks_u cpu_ticks_s < <(awk '{sub(/.*\) /, ""); print $1, $2, $12, $13}' "/proc/$SP/stat")
	kill "$SAMPLER" 2>/dev/null || true
	wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=
	maxrss=$(awk '$2 > m {m = $2} END {print m + 0}' "$OUT/rss-$N.tsv")
	maxfds=$(awk '$5 > m {m = $5} END {print m + 0}' "$OUT/rss-$N.tsv")
	db=$(du -cb "$D"/state.db* | tail -1 | cut -f1)
	wall=$(awk -v a="$S0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b - a}')
	echo "$N $wall $(awk -v u="$cpu_ticks_u" -v s="$cpu_ticks_s" 'BEGIN{printf "%.1f", (u + s) / 100}') $maxrss $maxfds $db" >>"$W/server.tsv"
	kill -TERM "$SP"
	wait "$SP" || log "the server with $N agents exited $?"
	SP=
	grep -vE '^(satchel server (listening|stopped)|CA fingerprint|admin credential)' "$OUT/server-$N.log" | head -20 >"$W/server-log" || true
	if [ -s "$W/server-log" ]; then
		log "the server logged (warn and above; first lines, see server-$N.log):"
		cat "$W/server-log" >&2
	fi
	[ "$KEEP" = 1 ] || rm -rf "$D" "$AW/$N"
done
ELAPSED=$(($(date +%s) - START))

{
	echo
	echo "## satchel server under load ($COMMIT, $(nproc) CPUs, $(date -u +%Y-%m-%d))"
	echo
	cat "$OUT/table.md"
	echo
	echo "The server process over the whole run (sampled every second: rss-N.tsv):"
	echo
	echo "| agents | wall (s) | server CPU (s) | largest sampled VmRSS (MiB) | most open files (sampled) | state.db with WAL at the end (MiB) |"
	echo "|---:|---:|---:|---:|---:|---:|"
	while read -r n wall cpu maxrss maxfds db; do
		awk -v n="$n" -v w="$wall" -v c="$cpu" -v r="$maxrss" -v f="$maxfds" -v d="$db" 'BEGIN{printf "| %d | %d | %.1f | %.1f | %d | %.1f |\n", n, w, c, r / 1024, f, d / 1048576}'
	done <"$W/server.tsv"
	echo
	for N in $AGENTS; do grep -h '^target:' "$OUT/loadgen-$N.log" || true; done
	echo
	echo "machine: $(nproc) CPUs (nproc); load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "command: $COMMAND"
	echo "wall time: ${ELAPSED} s (the builds excluded); results in $OUT"
} | tee "$OUT/summary.md"
