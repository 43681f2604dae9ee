#!/bin/sh
# Satchel's package: the server's user, and systemd told of the new units. The services
# are not started here: the agent starts once enrolled (satchel enroll, or the first-boot
# unit of satchel bootstrap-script), the server when the operator enables it.
set -e
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/satchel-server.conf
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
