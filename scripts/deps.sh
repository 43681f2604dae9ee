#!/bin/sh
# Install what Satchel's tests need on a fresh Debian machine that has Go. Idempotent: it
# installs only what is missing, so it is cheap on a machine that already has everything.
set -eu

need=""
command -v gcc >/dev/null 2>&1 || need="$need gcc libc6-dev" # go test -race needs cgo
command -v git >/dev/null 2>&1 || need="$need git"
[ -x /bin/sh ] || need="$need dash"
command -v python3 >/dev/null 2>&1 || need="$need python3" # a static mirror with no Satchel code (agent tests)
command -v mkfs.vfat >/dev/null 2>&1 || need="$need dosfstools" # a FAT32 stick image (bundle_fat.txtar)
command -v fusefat >/dev/null 2>&1 || need="$need fusefat"     # mounted without the kernel's vfat
command -v chromium >/dev/null 2>&1 || need="$need chromium"   # the dashboard in a real browser (chromedp)

if [ -n "$need" ]; then
	echo "deps: installing$need"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
fi
go mod download
