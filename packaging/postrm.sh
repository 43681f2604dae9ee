#!/bin/sh
# After removal: systemd forgets the units. The data (/var/lib/satchel, the server's
# /var/lib/satchel-server) is kept: it holds keys and a fleet's history.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
