#!/usr/bin/env bash
# Satchel's content transfer beside rsync and casync, in one run, on the shared transfer
# baseline (../shared/baselines/transfer: a 597 MiB content library v1 and a realistic update
# v2). The peers are measured by the baseline's own measure.sh, called by path; then Satchel:
# a server store holding v1 and v2 with their static deltas, served by the baseline's plain
# static file server (xferlab serve: no Satchel code on the server, bytes counted at the
# socket), pulled into a client store and checked out into a directory, whose digest must
# match. Prints one table with ratios; writes it to $OUT/results.md.
#
# Usage: bench/transfer/bench.sh    (as root on Debian; ~6 min on 2 cores; ~6 GB in $WORKDIR)
# Knobs: WORKDIR=/tmp/xferlab  PEERS=1 (0: reuse $WORKDIR/results.tsv from an earlier run of
#        measure.sh, and say so)  INSTALL=1 (apt-get the peers if missing)  PORT=18081
#        SHARED_TRANSFER=<path to the baseline>  OUT=bench/transfer/results/<date>
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED_TRANSFER:-$REPO/../shared/baselines/transfer}
W=${WORKDIR:-/tmp/xferlab}
PORT=${PORT:-18081}
PEERS=${PEERS:-1}
OUT=${OUT:-$HERE/results/$(date -u +%Y-%m-%d)}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
mkdir -p "$OUT"

if [ "${INSTALL:-1}" = 1 ]; then
	missing=
	for t in rsync casync zsync zstd; do command -v "$t" >/dev/null || missing="$missing $t"; done
	command -v /usr/bin/time >/dev/null || missing="$missing time"
	if [ -n "$missing" ]; then
		echo "== installing:$missing"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
fi

if [ "$PEERS" = 1 ]; then
	echo "== peers: $SHARED/measure.sh $W (generates v1 and v2, then rsync, casync, zsync)"
	"$SHARED/measure.sh" "$W" >"$OUT/peers.log" 2>&1 || { tail -20 "$OUT/peers.log"; exit 1; }
	PEERNOTE="measured in this run"
else
	[ -s "$W/results.tsv" ] || { echo "PEERS=0 needs $W/results.tsv from an earlier measure.sh" >&2; exit 1; }
	PEERNOTE="REUSED from $(date -u -r "$W/results.tsv" '+%F %T') UTC, not this run"
fi
cp "$W/results.md" "$OUT/peers.md" 2>/dev/null || true

X=$W/bin/xferlab
SAT=$W/bin/satchel
echo "== building satchel"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$SAT" ./cmd/satchel)
V1D=$("$X" digest "$W/v1")
V2D=$("$X" digest "$W/v2")
IDEAL=$(stat -c %s "$W/newdata.bin")
S=$W/satchel
rm -rf "$S"
mkdir -p "$S"

# run LABEL CMD...: runs CMD under /usr/bin/time; sets WALL (s) and RSS (KiB); keeps its output.
run() {
	local label=$1
	shift
	echo "-- $label: $*" >>"$OUT/satchel.log"
	if ! /usr/bin/time -f '%e %M' -o "$S/time" "$@" >"$S/stdout" 2>"$S/stderr"; then
		echo "FAILED: $label: $*" >&2
		cat "$S/stderr" >&2
		exit 1
	fi
	cat "$S/stdout" "$S/stderr" >>"$OUT/satchel.log"
	read -r WALL RSS <"$S/time"
	echo "   $label: ${WALL}s, peak RSS $((RSS / 1024)) MiB"
}
addf() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a+b}'; }
maxi() { echo $(($1 > $2 ? $1 : $2)); }

serve_start() { # DIR
	rm -f "$S/http.stats" "$S/http.stats.ready"
	"$X" serve "127.0.0.1:$PORT" "$1" "$S/http.stats" &
	SP=$!
	while [ ! -e "$S/http.stats.ready" ]; do sleep 0.05; done
}
serve_stop() { # sets HRX HTX HREQ HRANGED HBODY
	kill "$SP"
	wait "$SP" || true
	read -r HRX HTX HREQ HRANGED HBODY <"$S/http.stats"
}
URL=http://127.0.0.1:$PORT/

echo "== satchel: the server's store (v1, v2, static deltas)"
run "store add v1" "$SAT" store --store "$S/srv" add "$W/v1"
V1=$(cat "$S/stdout")
ADD1="${WALL}s, $((RSS / 1024)) MiB"
run "store add v2" "$SAT" store --store "$S/srv" add "$W/v2"
V2=$(cat "$S/stdout")
run "store delta v1 (from nothing)" "$SAT" store --store "$S/srv" delta "$V1"
DFULL="${WALL}s"
run "store delta v1 -> v2" "$SAT" store --store "$S/srv" delta --from "$V1" "$V2"
DUPD="${WALL}s, $((RSS / 1024)) MiB"
# A mirror of chunks and objects only: what a node meets where no delta was built.
mkdir -p "$S/plain"
ln -s ../srv/chunks "$S/plain/chunks"
ln -s ../srv/objects "$S/plain/objects"

RES=$S/rows.tsv
: >"$RES"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; } # METHOD BYTES REQS WALL RSS_KIB RESULT NOTES
verify() { # DIR DIGEST
	if [ "$("$X" digest "$1")" = "$2" ]; then echo OK; else echo MISMATCH; fi
}

echo "== satchel: first full copy of v1 into an empty store and directory"
serve_start "$S/srv"
run "pull v1" "$SAT" store --store "$S/client" pull "$URL" "$V1"
serve_stop
PW=$WALL PR=$RSS
run "checkout v1" "$SAT" store --store "$S/client" checkout "$V1" "$S/R"
CHECKOUT_RSS=$RSS
row "satchel, first full copy of v1" $((HRX + HTX)) "$HREQ" "$(addf "$PW" "$WALL")" "$(maxi "$PR" "$RSS")" "$(verify "$S/R" "$V1D")" \
	"pull ${PW}s + checkout ${WALL}s; body $HBODY, $HRANGED ranged GETs"
echo "== satchel: v1 -> v2 with the static delta"
cp -a "$S/client" "$S/client-v1"
serve_start "$S/srv"
run "pull v2 --have v1" "$SAT" store --store "$S/client" pull "$URL" "$V2" --have "$V1"
serve_stop
PW=$WALL PR=$RSS
run "checkout v2 over v1" "$SAT" store --store "$S/client" checkout --purge "$V2" "$S/R" --previous "$V1"
UPD_CHECKOUT_RSS=$RSS
row "satchel, v1->v2 (static delta)" $((HRX + HTX)) "$HREQ" "$(addf "$PW" "$WALL")" "$(maxi "$PR" "$RSS")" "$(verify "$S/R" "$V2D")" \
	"pull ${PW}s + checkout ${WALL}s; body $HBODY, $HRANGED ranged GETs"

echo "== satchel: v1 -> v2 from a mirror without deltas (chunks and objects only)"
cp -a "$W/v1" "$S/R2"
serve_start "$S/plain"
run "pull v2 from chunks" "$SAT" store --store "$S/client-v1" pull "$URL" "$V2" --have "$V1"
serve_stop
PW=$WALL PR=$RSS
run "checkout v2 over a copy of v1" "$SAT" store --store "$S/client-v1" checkout --purge "$V2" "$S/R2"
row "satchel, v1->v2 (no delta: missing chunks whole)" $((HRX + HTX)) "$HREQ" "$(addf "$PW" "$WALL")" "$(maxi "$PR" "$RSS")" "$(verify "$S/R2" "$V2D")" \
	"pull ${PW}s + checkout ${WALL}s; body $HBODY"

# ---------------------------------------------------------------- the table
peer() { # METHOD-PREFIX → "bytes wall"
	awk -F'\t' -v m="$1" 'index($1, m) == 1 {print $2, $5; exit}' "$W/results.tsv"
}
read -r RSYNC_FULL RSYNC_FULL_WALL < <(peer "rsync -az, first full copy of v1")
read -r RSYNC_UPD RSYNC_UPD_WALL < <(peer "rsync -az --delete, v1->v2")
{
	echo "Satchel $(cd "$REPO" && git rev-parse --short HEAD) beside rsync and casync on ../shared/baselines/transfer, $(date -u '+%F %H:%M') UTC, $(nproc) CPUs, $(go version | cut -d' ' -f3)."
	echo "Peers: $PEERNOTE. Satchel's server is \`xferlab serve\` (a plain static file server) over the store directory; bytes on the wire are counted at its socket (headers included), as for casync."
	echo "Ideal (genuinely new bytes of v2): $IDEAL. Wall times are on loopback with a warm page cache: CPU and disk cost, not link time."
	echo
	echo "| method | bytes on wire | × ideal | × rsync -az | requests | wall s | × rsync -az wall | peak RSS | result |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	pr() { # METHOD BYTES REQS WALL RSS RESULT BASE BASEWALL
		awk -v m="$1" -v b="$2" -v q="$3" -v w="$4" -v r="$5" -v ok="$6" -v i="$IDEAL" -v base="$7" -v bw="$8" '
			function commas(n,  s) { s = sprintf("%d", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
			BEGIN{
			rss = (r == "-") ? "-" : sprintf("%.1f MiB", r / 1024)
			printf "| %s | %s | %.2f× | %.4f× | %s | %.2f | %.2f× | %s | %s |\n", m, commas(b), b / i, b / base, q, w, w / bw, rss, ok }'
	}
	while IFS=$'\t' read -r m b q w r ok _; do
		case $m in *"full copy"*) pr "$m" "$b" "$q" "$w" "$r" "$ok" "$RSYNC_FULL" "$RSYNC_FULL_WALL" ;;
		*) pr "$m" "$b" "$q" "$w" "$r" "$ok" "$RSYNC_UPD" "$RSYNC_UPD_WALL" ;; esac
	done <"$RES"
	awk -F'\t' '$1 ~ /^(rsync -az|casync)/' "$W/results.tsv" | while IFS=$'\t' read -r m b _ _ w ok notes; do
		case $m in *"full copy"*) base=$RSYNC_FULL bw=$RSYNC_FULL_WALL ;; *) base=$RSYNC_UPD bw=$RSYNC_UPD_WALL ;; esac
		q=$(sed -n 's/^\([0-9]*\) GETs.*/\1/p' <<<"$notes")
		pr "$m" "$b" "${q:--}" "$w" - "$ok" "$base" "$bw"
	done
	echo
	echo "Satchel's server side (not on the wire): store add v1 $ADD1; store delta v1→v2 $DUPD; store delta of v1 from nothing $DFULL."
	echo "Peak RSS of \`store checkout\` writing v1 (with its 300 MiB file) into an empty directory: $((CHECKOUT_RSS / 1024)) MiB; of the v1→v2 checkout, rebuilding the 300 MiB file from the old one: $((UPD_CHECKOUT_RSS / 1024)) MiB."
} >"$OUT/results.md"
cat "$OUT/results.md"
echo
echo "(written to $OUT/results.md; logs: $OUT/satchel.log, $OUT/peers.log)"
