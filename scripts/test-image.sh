#!/bin/sh
# Build, or reuse, the Debian image that Satchel's system tests boot with systemd-nspawn
# (internal/systest; the recipe is ../shared/recipes/system-tests.md).
#
#   $CACHE/base.tar.zst   the image as mmdebstrap wrote it
#   $CACHE/base/          the same, extracted: the read-only lower layer of every test container
#   $CACHE/base.stamp     hash of the recipe below; written last, once base/ is complete
#   $CACHE/apt-archives/  .debs downloaded inside test containers, shared by all of them
#
# CACHE is $SATCHEL_TEST_CACHE, default /var/cache/satchel-test. The image is rebuilt when it is
# missing, when the recipe changed (any variable below), or when the tarball is older than
# $SATCHEL_TEST_IMAGE_MAX_AGE days (default 7; 0 = never): its package lists come from the
# mirror at build time, and the mirror drops superseded .debs at point releases.
# Quick (a hash and a stat) when the image is current. Needs root; installs its tools if missing.
set -eu

CACHE=${SATCHEL_TEST_CACHE:-/var/cache/satchel-test}
MAX_AGE=${SATCHEL_TEST_IMAGE_MAX_AGE:-7}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# What the system tests need: a booting systemd with a bus and logind, user tools, cron,
# process and network tools, TLS roots.
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,passwd,cron,procps,iproute2,ca-certificates
# force-unsafe-io: dpkg's fsyncs dominate install time; the setting stays in the image
# (/etc/dpkg/dpkg.cfg.d/99mmdebstrap), so dpkg inside the tests is fast too. The package lists
# stay in the image (--skip=cleanup/apt/lists), so tests install without apt-get update.
OPTIONS="--variant=minbase --dpkgopt=force-unsafe-io --skip=cleanup/apt/lists"
# No translations, here or in apt-get update inside tests (/etc/apt/apt.conf.d/99mmdebstrap).
APTOPT='Acquire::Languages "none";'
# No /etc/hostname (mmdebstrap copies the build host's): a container's hostname is then its
# machine name. A Debian-like /etc/hosts.
HOOK='rm -f "$1/etc/hostname"; printf "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n" >"$1/etc/hosts"'
# After extraction: apt's binary caches, built once here rather than by the first apt command of
# every container (0.7 s each). Not in the tarball: mmdebstrap clamps mtimes, which invalidates them.
POST='apt-cache gencaches'
RECIPE_VERSION=1 # bump to force a rebuild when something not listed above changes

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { echo "test-image: $*"; }
start=$(now)

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo SATCHEL_TEST_CACHE="$CACHE" SATCHEL_TEST_IMAGE_MAX_AGE="$MAX_AGE" sh "$0" "$@"
	fi
	say "needs root (so do systemd-nspawn containers), and sudo is missing" >&2
	exit 1
fi

need=""
command -v mmdebstrap >/dev/null 2>&1 || need="$need mmdebstrap"
command -v systemd-nspawn >/dev/null 2>&1 || need="$need systemd-container"
command -v zstd >/dev/null 2>&1 || need="$need zstd"
command -v nsenter >/dev/null 2>&1 || need="$need util-linux"
if [ -n "$need" ]; then
	say "installing$need"
	t=$(now)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
	say "installed$need in $(since "$t")"
fi

mkdir -p "$CACHE/apt-archives"
tarball="$CACHE/base.tar.zst"
stamp="$CACHE/base.stamp"
want=$(printf '%s\n' "$RECIPE_VERSION" "$SUITE" "$MIRROR" "$PACKAGES" "$OPTIONS" "$APTOPT" "$HOOK" "$POST" "$(uname -m)" | sha256sum | cut -d' ' -f1)

# One build at a time.
exec 9>"$CACHE/build.lock"
flock 9

same_recipe() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }
expired() { [ "$MAX_AGE" -ne 0 ] && [ -n "$(find "$tarball" -mmin +$((MAX_AGE * 1440)))" ]; }

if same_recipe && [ -f "$tarball" ] && [ -d "$CACHE/base" ] && ! expired; then
	say "image $CACHE/base is current ($(since "$start"))"
	exit 0
fi

if ! same_recipe || ! [ -f "$tarball" ] || expired; then
	if ! [ -f "$tarball" ]; then
		why="no image yet"
	elif ! same_recipe; then
		why="the recipe changed"
	else
		why="the image is older than $MAX_AGE days"
	fi
	say "building the $SUITE image with mmdebstrap ($why; about 30 s)"
	t=$(now)
	rm -f "$stamp" "$CACHE/base.new.tar.zst"
	# shellcheck disable=SC2086 # OPTIONS is a list of words
	mmdebstrap --quiet $OPTIONS --aptopt="$APTOPT" --include="$PACKAGES" --customize-hook="$HOOK" \
		"$SUITE" "$CACHE/base.new.tar.zst" "$MIRROR" </dev/null
	mv "$CACHE/base.new.tar.zst" "$tarball"
	say "built $tarball ($(du -h "$tarball" | cut -f1)) in $(since "$t")"
fi

t=$(now)
rm -rf "$CACHE/base.new"
mkdir "$CACHE/base.new"
zstd -dc "$tarball" | tar -x -p --numeric-owner -C "$CACHE/base.new"
chroot "$CACHE/base.new" sh -c "$POST" >/dev/null
say "extracted in $(since "$t")"

# Running test processes hold base.lock shared while their containers use base/ as their
# lower layer: swap base/ (and delete the old one) only when none does.
exec 8>"$CACHE/base.lock"
if ! flock -n 8; then
	say "waiting (at most 30 min) for running system tests to let go of $CACHE/base"
	flock -w 1800 8
fi
if [ -d "$CACHE/base" ]; then
	mv "$CACHE/base" "$CACHE/base.old.$$"
fi
mv "$CACHE/base.new" "$CACHE/base"
echo "$want" >"$stamp"
flock -u 8
rm -rf "$CACHE/base.old.$$"
say "image $CACHE/base ready ($(since "$start") in all)"
