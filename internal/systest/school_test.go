package systest

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// exampleDir is the repository's school-server example.
func exampleDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source directory")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "school-server")
}

// schoolServerChecks are commands that succeed on a machine converged to the example as
// school-001: squid running with the school's filter, the teacher account, the timer.
func schoolServerChecks() [][]string {
	return [][]string{
		{"systemctl", "is-active", "squid"},
		{"systemctl", "is-enabled", "squid"},
		{"grep", "-q", "acl school_lan src 10.12.1.0/24", "/etc/squid/squid.conf"},
		{"grep", "-q", "matematicas.example.org", "/etc/squid/allowed-sites.txt"},
		{"id", "-nG", "teacher"},
		{"test", "-d", "/home/teacher"},
		{"systemctl", "is-enabled", "content_inventory.timer"},
	}
}

// The example converges a real Debian machine into a school server: squid installed,
// configured from the inventory and running; the teacher account; the hostname from the
// inventory; time sync; a nightly timer. A second run changes nothing.
func TestSchoolServerConverges(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.CopyIn(t, exampleDir(t), "/etc/satchel/school-server")
	apply := func() (string, int) {
		stdout, stderr, code := c.Exec(t, "satchel", "apply", "--detailed-exitcode", "--node", "school-001", "/etc/satchel/school-server")
		return stdout + stderr, code
	}
	out, code := apply()
	if code != 2 {
		t.Fatalf("first run exited %d, want 2:\n%s", code, out)
	}
	checks := append(schoolServerChecks(), []string{"dpkg-query", "-W", "squid", "systemd-timesyncd"})
	for _, argv := range checks {
		if stdout, stderr, code := c.Exec(t, argv...); code != 0 {
			t.Errorf("%s: exit %d %s%s", strings.Join(argv, " "), code, stdout, stderr)
		}
	}
	if got := strings.TrimSpace(c.MustExec(t, "hostname")); got != "school-001" {
		t.Errorf("hostname = %q, want school-001 (from the inventory)", got)
	}
	if got := c.MustExec(t, "cat", "/etc/hostname"); got != "school-001\n" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if !strings.Contains(c.MustExec(t, "id", "-nG", "teacher"), "teachers") {
		t.Error("teacher is not in the teachers group")
	}
	// The wifi passphrase (a sensitive inventory column) is in its file, never in the output.
	if strings.Contains(out, "monte-verde-1949") {
		t.Error("the wifi passphrase appeared in the output")
	}
	out, code = apply()
	if code != 0 || !strings.Contains(out, " 0 changed, ") {
		t.Fatalf("second run exited %d, want 0 with nothing changed:\n%s", code, out)
	}
}
