package systest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// buildDeb makes Satchel's Debian package for this machine's architecture from this
// checkout, as make dist does (tools/dist, nfpm), and returns its path.
func buildDeb(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, err := os.ReadFile(SatchelBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "satchel-linux-"+runtime.GOARCH), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", ".", "-version", "0.1.0", "-dir", dir, "-repo", root, "-arch", runtime.GOARCH)
	cmd.Dir = filepath.Join(root, "tools", "dist")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tools/dist: %v\n%s", err, out)
	}
	return filepath.Join(dir, "satchel_0.1.0_"+runtime.GOARCH+".deb")
}

// The Debian package, installed on a real Debian machine: the server runs as a service of
// its own user, an agent enrolls and, as a service, converges to the server's release;
// removing the package stops both and leaves their data.
func TestDebianPackage(t *testing.T) {
	t.Parallel()
	img := Available(t)
	deb := buildDeb(t)
	c := img.Boot(t)
	c.CopyIn(t, deb, "/tmp/satchel.deb")
	c.MustExec(t, "dpkg", "-i", "/tmp/satchel.deb")
	for _, p := range []string{"/usr/bin/satchel", "/lib/systemd/system/satchel-agent.service", "/usr/share/bash-completion/completions/satchel"} {
		c.MustExec(t, "test", "-e", p)
	}
	// The man pages (satchel man), one per command, gzipped where man looks for them.
	listed := c.MustExec(t, "dpkg", "-L", "satchel")
	for _, p := range []string{"/usr/share/man/man1/satchel.1.gz", "/usr/share/man/man1/satchel-bundle-export.1.gz"} {
		if !strings.Contains(listed, "\n"+p+"\n") {
			t.Errorf("dpkg -L satchel does not list %s", p)
		}
		c.MustExec(t, "test", "-f", p)
	}
	if out := c.MustExec(t, "zcat", "/usr/share/man/man1/satchel.1.gz"); !strings.Contains(out, "\n.TH \"SATCHEL\" \"1\" ") {
		t.Errorf("satchel.1.gz has no .TH header:\n%.300s", out)
	}
	if out := c.MustExec(t, "getent", "passwd", "satchel-server"); !strings.HasPrefix(out, "satchel-server:") {
		t.Errorf("no satchel-server user: %q", out)
	}

	c.MustExec(t, "systemctl", "enable", "--now", "satchel-server.service")
	waitFor(t, c, "the server's credential", "test", "-s", "/var/lib/satchel-server/admin.json")
	if user := strings.TrimSpace(c.MustExec(t, "ps", "-o", "user=", "-C", "satchel")); user != "satchel-server" {
		t.Errorf("the server runs as %q, want satchel-server", user)
	}
	var cred struct {
		CAFingerprint string `json:"ca_fingerprint"`
	}
	if err := json.Unmarshal(c.ReadFile(t, "/var/lib/satchel-server/admin.json"), &cred); err != nil {
		t.Fatal(err)
	}
	admin := []string{"--credential", "/var/lib/satchel-server/admin.json"}
	c.WriteFile(t, "/root/config/main.hcl", []byte("inventory {\n  source = \"inventory.csv\"\n}\nnode \"*\" {\n  file \"motd\" {\n    path    = \"/etc/motd\"\n    content = \"converged by the satchel package\\n\"\n  }\n}\n"), 0o644)
	c.WriteFile(t, "/root/config/inventory.csv", []byte("hostname\n"+c.Name()+"\n"), 0o644)
	c.MustExec(t, append([]string{"satchel", "release", "/root/config", "--server"}, admin...)...)
	var tok struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(c.MustExec(t, append([]string{"satchel", "tokens", "create", "--uses", "1", "-o", "json"}, admin...)...)), &tok); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "satchel", "enroll", "--server", "https://127.0.0.1:8443", "--ca-fingerprint", cred.CAFingerprint, "--token", tok.ID)
	c.WriteFile(t, "/etc/satchel/agent.hcl", []byte("splay = \"0s\"\n"), 0o644)
	c.MustExec(t, "systemctl", "enable", "--now", "satchel-agent.service")
	waitFor(t, c, "the agent to converge", "grep", "-q", "converged by the satchel package", "/etc/motd")
	if out := c.MustExec(t, "satchel", "agent", "status"); !strings.Contains(out, "last good release:  1") {
		t.Errorf("agent status:\n%s", out)
	}
	waitFor(t, c, "the agent's report on the server", "sh", "-c", "satchel reports "+c.Name()+" --credential /var/lib/satchel-server/admin.json | grep -q 'applied  release 1'")

	c.MustExec(t, "dpkg", "-r", "satchel")
	for _, unit := range []string{"satchel-server.service", "satchel-agent.service"} {
		if out, _, _ := c.Exec(t, "systemctl", "is-active", unit); strings.TrimSpace(out) == "active" {
			t.Errorf("%s is still active after the package's removal", unit)
		}
	}
	if _, _, code := c.Exec(t, "test", "-e", "/usr/bin/satchel"); code == 0 {
		t.Error("/usr/bin/satchel is still there")
	}
	c.MustExec(t, "test", "-s", "/var/lib/satchel-server/admin.json") // the data stays
	c.MustExec(t, "test", "-d", "/var/lib/satchel/trust")
}

// waitFor runs argv in the container until it succeeds, for up to a minute.
func waitFor(t *testing.T, c *Container, what string, argv ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		stdout, stderr, code := c.Exec(t, argv...)
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			logs, _, _ := c.Exec(t, "journalctl", "--no-pager", "-n", "60", "-u", "satchel-server", "-u", "satchel-agent")
			t.Fatalf("waiting for %s: %s: exit %d %s%s\n%s", what, strings.Join(argv, " "), code, stdout, stderr, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
