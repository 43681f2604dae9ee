package resource_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
)

// privateSlashVar names the test that the child process of onPrivateSlash runs.
const privateSlashVar = "SATCHEL_TEST_PRIVATE_SLASH"

// onPrivateSlash runs body in a child process of this test binary that has mount and UTS
// namespaces of its own, a private copy of /etc mounted on /etc and an empty /run (so no
// systemd, whatever the host runs): body may apply resources to the root "/", as
// `satchel apply` does on a machine without systemd, and set the host name, without
// touching this machine.
func onPrivateSlash(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	if os.Getenv(privateSlashVar) == t.Name() {
		body(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, for namespaces")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	etc := t.TempDir()
	if out, err := exec.Command("cp", "-a", "/etc/.", etc).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	const script = `mount --bind "$1" /etc && mount -t tmpfs tmpfs /run && exec "$2" -test.run="^$3\$" -test.count=1 -test.v`
	cmd := exec.Command(unshare, "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", script,
		"sh", etc, os.Args[0], regexp.QuoteMeta(t.Name()))
	cmd.Env = append(os.Environ(), privateSlashVar+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in private namespaces: %v\n%s", err, out)
	}
	t.Logf("in private namespaces:\n%s", out)
}

// slashEnv is the environment of `satchel apply` on the machine itself.
func slashEnv(t *testing.T) *resource.Env {
	t.Helper()
	root, err := fsroot.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &resource.Env{Root: root, Accounts: resource.NewAccounts(root), Managed: resource.NewPathSet(nil),
		Changes: &resource.Changes{}, Log: slog.New(slog.DiscardHandler)}
}

func applySlash(t *testing.T, env *resource.Env, cr map[string]any, typ, name string, apply bool, want ...string) *resource.Result {
	t.Helper()
	res, err := build(t, cat(typ, name, cr)).CheckApply(context.Background(), env, apply)
	if err != nil {
		t.Fatalf("%s.%s (apply=%v): %v", typ, name, apply, err)
	}
	assertChanges(t, typ+"."+name, res, want...)
	return res
}

// TestOnMachineWithoutSystemd applies hostname, service and timer to "/" of a machine whose
// PID 1 is not systemd (this one, or a private copy of it): the files change, the running
// host name is set with sethostname(2), units are enabled through systemctl --root=/, and
// running is a note.
func TestOnMachineWithoutSystemd(t *testing.T) {
	needSystemctl(t)
	onPrivateSlash(t, func(t *testing.T) {
		env := slashEnv(t)
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			t.Fatal("/run/systemd/system exists in the private namespaces")
		}
		before, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		const name = "satchel-private-test"
		hostsBefore, _ := os.ReadFile("/etc/hosts")
		var entry string
		for _, l := range strings.Split(string(hostsBefore), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "127.0.1.1" && entry == "" {
				entry = strings.Join(f, " ")
			}
		}
		if entry == "" {
			entry = "(none)"
		}
		oldName, _ := os.ReadFile("/etc/hostname")
		want := []string{"/etc/hostname: " + strings.TrimSpace(string(oldName)) + " -> " + name,
			"/etc/hosts: " + entry + " -> 127.0.1.1 " + name + ".example.org " + name, "running: " + before + " -> " + name}
		h := map[string]any{"domain": "example.org"}
		applySlash(t, env, h, "hostname", name, false, want...)
		if now, _ := os.Hostname(); now != before {
			t.Errorf("a plan renamed the machine to %s", now)
		}
		applySlash(t, env, h, "hostname", name, true, want...)
		if now, _ := os.Hostname(); now != name {
			t.Errorf("running host name %q, want %q", now, name)
		}
		if b, _ := os.ReadFile("/etc/hostname"); string(b) != name+"\n" {
			t.Errorf("/etc/hostname = %q", b)
		}
		applySlash(t, env, h, "hostname", name, true)

		// A service: enabled through systemctl --root=/, running is a note.
		if err := os.MkdirAll("/etc/systemd/system", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("/etc/systemd/system/satchel-test.service", []byte(wantedUnit), 0o644); err != nil {
			t.Fatal(err)
		}
		res := applySlash(t, env, map[string]any{"enabled": true, "running": true}, "service", "satchel-test", true, "enabled: false -> true")
		if want := []string{"running: not applicable: systemd is not running on this machine (no /run/systemd/system)"}; !slices.Equal(res.Notes, want) {
			t.Errorf("notes %q, want %q", res.Notes, want)
		}
		if target, err := os.Readlink("/etc/systemd/system/multi-user.target.wants/satchel-test.service"); err != nil || target != "/etc/systemd/system/satchel-test.service" {
			t.Errorf("wants link: %q, %v", target, err)
		}
		applySlash(t, env, map[string]any{"enabled": true, "running": true}, "service", "satchel-test", true)

		// A timer: written and enabled, not started.
		applySlash(t, env, map[string]any{"command": "true", "on_calendar": "hourly"}, "timer", "satchel-test-job", true,
			"ensure: absent -> present", "enabled: false -> true")
		if _, err := os.Readlink("/etc/systemd/system/timers.target.wants/satchel-test-job.timer"); err != nil {
			t.Errorf("timer not enabled: %v", err)
		}
		applySlash(t, env, map[string]any{"command": "true", "on_calendar": "hourly"}, "timer", "satchel-test-job", true)
	})
}
