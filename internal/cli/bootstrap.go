package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// bootstrapScript is the template of the snippet satchel bootstrap-script prints. It runs as root in an
// installer's last step (kickstart %post, preseed late_command, cloud-init runcmd) or on
// an image directory (ROOT=/path), and needs only sh: it keeps the token in a file only
// root can read, and installs a unit that enrolls the machine at its first boot (when it
// has its own machine ID and a network), then starts the agent and removes itself.
const bootstrapScript = `#!/bin/sh
# Satchel first-boot enrollment (satchel bootstrap-script). Run as root; ROOT=DIR prepares
# an image directory instead of this machine.
set -eu
ROOT="${ROOT:-}"
{{- if .Deb}}
if [ -z "$ROOT" ] && ! command -v satchel >/dev/null 2>&1; then
	tmp=$(mktemp) && curl -fsSL {{.Deb}} -o "$tmp" && apt-get install -y "$tmp"; rm -f "$tmp"
fi
{{- end}}
mkdir -p "$ROOT/etc/satchel" "$ROOT/etc/systemd/system/multi-user.target.wants"
umask 077
cat > "$ROOT/etc/satchel/enroll.env" <<'SATCHEL_EOF'
SATCHEL_ENROLL_TOKEN={{.Token}}
SATCHEL_SERVER={{.Server}}
SATCHEL_CA_FINGERPRINT={{.Fingerprint}}
SATCHEL_EOF
umask 022
cat > "$ROOT/etc/systemd/system/satchel-enroll.service" <<'SATCHEL_EOF'
[Unit]
Description=Enroll this machine with its Satchel server (once, at first boot)
Wants=network-online.target
After=network-online.target
ConditionPathExists=/etc/satchel/enroll.env

[Service]
Type=oneshot
EnvironmentFile=/etc/satchel/enroll.env
ExecStart=/usr/bin/satchel enroll --server ${SATCHEL_SERVER} --ca-fingerprint ${SATCHEL_CA_FINGERPRINT} --wait 24h
ExecStartPost=/bin/rm -f /etc/satchel/enroll.env
ExecStartPost=/bin/systemctl enable --now satchel-agent.service
Restart=on-failure
RestartSec=5min

[Install]
WantedBy=multi-user.target
SATCHEL_EOF
ln -sf /etc/systemd/system/satchel-enroll.service "$ROOT/etc/systemd/system/multi-user.target.wants/satchel-enroll.service"
echo "satchel: this machine enrolls with {{.Server}} at its first boot"
`

func newBootstrapScript(s *streams) *cobra.Command {
	var serverURL, token, fingerprint, deb string
	cmd := &cobra.Command{
		Use:   "bootstrap-script --server URL --ca-fingerprint FP --token TOKEN [--deb URL]",
		Short: "Print a shell snippet that enrolls a machine at its first boot (for installers and images)",
		Long: `Print a POSIX shell snippet for the last step of an installer (a kickstart %post, a preseed
late_command, cloud-init's runcmd), or to run on an image directory with ROOT=DIR: it keeps
the bootstrap token where only root can read it and installs a unit that, at the machine's
first boot (with its own machine ID and a network), runs satchel enroll, deletes the token,
and starts the agent. With --deb, it first installs Satchel's Debian package from that URL
when the machine has no satchel yet.

The token enrolls as many machines as it has uses (satchel tokens create --uses N): the
warehouse flow of a hundred servers imaged in a day is one line in the installer.`,
		Args: wantArgs(0, "flags only"),
		RunE: func(_ *cobra.Command, _ []string) error {
			// What goes into the script is checked to be plain: nothing a shell or a
			// here-document would read as anything but text. (Compiled here, not at
			// start-up: every other command would pay for them.)
			fingerprintRE := regexp.MustCompile(`^[0-9a-f]{64}$`)
			tokenRE := regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)
			safeURL := regexp.MustCompile(`^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%+/-]*)?$`)
			switch {
			case !safeURL.MatchString(serverURL):
				return &usageError{fmt.Errorf("--server %q: want the server's https:// URL", serverURL)}
			case !fingerprintRE.MatchString(fingerprint):
				return &usageError{fmt.Errorf("--ca-fingerprint %q: want the 64 hex digits satchel server prints", fingerprint)}
			case !tokenRE.MatchString(token):
				return &usageError{errors.New("--token: want the bootstrap token satchel tokens create printed")}
			case deb != "" && !safeURL.MatchString(deb):
				return &usageError{fmt.Errorf("--deb %q: want an https:// URL of the package", deb)}
			}
			return template.Must(template.New("bootstrap").Parse(bootstrapScript)).Execute(s.stdout, struct{ Server, Fingerprint, Token, Deb string }{
				strings.TrimSuffix(serverURL, "/"), fingerprint, token, deb})
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "the server's `URL` (https://…)")
	cmd.Flags().StringVar(&fingerprint, "ca-fingerprint", "", "the `fingerprint` of the server's CA (satchel server prints it)")
	cmd.Flags().StringVar(&token, "token", "", "a bootstrap `token` (satchel tokens create --uses N)")
	cmd.Flags().StringVar(&deb, "deb", "", "install Satchel's Debian package from this https `URL` first, if the machine has no satchel")
	return cmd
}
