#!/bin/sh
# Satchel's package is being removed: its services stop first.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now satchel-agent.service satchel-server.service >/dev/null 2>&1 || true
fi
