package systest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// aptShim logs every apt-get invocation before running the real one, so a test can count
// transactions: satchel looks tools up in the usual PATH, where /usr/local/sbin comes first.
const aptShim = `#!/bin/sh
echo "$*" >> /var/log/apt-get-calls
exec /usr/bin/apt-get "$@"
`

// applyConfig writes a configuration into the container and applies it with satchel,
// returning its output and exit status (--detailed-exitcode).
func applyConfig(t *testing.T, c *Container, hcl string, extra ...string) (string, int) {
	t.Helper()
	c.WriteFile(t, "/etc/satchel/conf/main.hcl", []byte(hcl), 0o644)
	args := append([]string{"satchel", "apply", "--detailed-exitcode", "--node", "n"}, extra...)
	stdout, stderr, code := c.Exec(t, append(args, "/etc/satchel/conf")...)
	return stdout + stderr, code
}

// installCalls returns the apt-get install transactions logged by the shim so far: the
// invocations that change the machine, not the downloads that precede them or simulations.
func installCalls(t *testing.T, c *Container) []string {
	t.Helper()
	out, _, _ := c.Exec(t, "cat", "/var/log/apt-get-calls")
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(l, " install") && !strings.Contains(l, "--download-only") && !strings.Contains(l, "--simulate") {
			calls = append(calls, l)
		}
	}
	return calls
}

func dpkgStatus(t *testing.T, c *Container, name string) string {
	t.Helper()
	out, _, code := c.Exec(t, "dpkg-query", "-W", "-f=${Status}", name)
	if code != 0 {
		return "not known to dpkg"
	}
	return out
}

// Two independent packages are installed in one apt transaction, and a second run changes
// nothing and calls no apt-get install at all.
func TestPackagesInstallInOneTransaction(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/usr/local/sbin/apt-get", []byte(aptShim), 0o755)
	conf := `node "n" {
  package "hello" {}
  package "tree" {}
  file "motd" {
    path    = "/etc/motd"
    content = "hello\n"
    require = [package.hello]
  }
}
`
	out, code := applyConfig(t, c, conf)
	if code != 2 {
		t.Fatalf("first run exited %d, want 2:\n%s", code, out)
	}
	for _, want := range []string{"+ package.hello", "+ package.tree", "ensure: absent -> installed ("} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	calls := installCalls(t, c)
	if len(calls) != 1 || !strings.HasSuffix(calls[0], "install hello tree") {
		t.Errorf("apt-get install calls = %q, want one installing hello and tree", calls)
	}
	for _, p := range []string{"hello", "tree"} {
		if st := dpkgStatus(t, c, p); st != "install ok installed" {
			t.Errorf("%s: dpkg status %q", p, st)
		}
	}
	out, code = applyConfig(t, c, conf)
	if code != 0 || !strings.Contains(out, "0 changed") {
		t.Errorf("second run exited %d, want 0 and nothing changed:\n%s", code, out)
	}
	if calls := installCalls(t, c); len(calls) != 1 {
		t.Errorf("the second run called apt-get install: %q", calls)
	}
}

// absent removes a package and keeps its configuration files; purged removes those too.
func TestPackageRemoveAndPurge(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	pkg := func(ensure string) string {
		return `node "n" {
  package "logrotate" {
    ensure = "` + ensure + `"
  }
}
`
	}
	if out, code := applyConfig(t, c, pkg("installed")); code != 2 {
		t.Fatalf("install exited %d:\n%s", code, out)
	}
	if !strings.Contains(c.MustExec(t, "cat", "/etc/logrotate.conf"), "rotate") {
		t.Fatal("logrotate.conf (a conffile) missing after install")
	}
	out, code := applyConfig(t, c, pkg("absent"))
	if code != 2 || !strings.Contains(out, "ensure: installed (") || !strings.Contains(out, "-> absent") {
		t.Fatalf("remove exited %d:\n%s", code, out)
	}
	if st := dpkgStatus(t, c, "logrotate"); st != "deinstall ok config-files" {
		t.Errorf("after absent: dpkg status %q, want its configuration kept", st)
	}
	if out, code := applyConfig(t, c, pkg("absent")); code != 0 {
		t.Errorf("absent again exited %d:\n%s", code, out)
	}
	out, code = applyConfig(t, c, pkg("purged"))
	if code != 2 || !strings.Contains(out, "ensure: removed, configuration kept -> purged") {
		t.Fatalf("purge exited %d:\n%s", code, out)
	}
	if st := dpkgStatus(t, c, "logrotate"); st != "not known to dpkg" && st != "unknown ok not-installed" {
		t.Errorf("after purged: dpkg status %q", st)
	}
	if _, _, code := c.Exec(t, "test", "-e", "/etc/logrotate.conf"); code == 0 {
		t.Error("/etc/logrotate.conf survived the purge")
	}
}

// A package apt does not know fails alone, with a clear message: the other packages of its
// transaction and the other resources are still applied.
func TestUnknownPackageFailsAlone(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	out, code := applyConfig(t, c, `node "n" {
  package "satchel-no-such-package" {}
  package "hello" {}
  file "f" {
    path    = "/etc/f"
    content = "x\n"
  }
  file "needs_it" {
    path    = "/etc/needs"
    content = "x\n"
    require = [package.satchel-no-such-package]
  }
}
`)
	if code != 6 {
		t.Fatalf("exited %d, want 6 (changes and failures):\n%s", code, out)
	}
	for _, want := range []string{
		"! package.satchel-no-such-package failed",
		"unknown package satchel-no-such-package: apt knows no package of that name (even after refreshing its lists)",
		"- file.needs_it skipped",
		"+ package.hello",
		"+ file.f",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if st := dpkgStatus(t, c, "hello"); st != "install ok installed" {
		t.Errorf("hello: dpkg status %q", st)
	}
}

// A plan reports every package change and changes nothing.
func TestPackagePlanChangesNothing(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/etc/satchel/conf/main.hcl", []byte(`node "n" {
  package "hello" {}
  package "cron" {
    ensure = "absent"
  }
}
`), 0o644)
	stdout, stderr, code := c.Exec(t, "satchel", "plan", "--detailed-exitcode", "--node", "n", "/etc/satchel/conf")
	if code != 2 {
		t.Fatalf("plan exited %d:\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"+ package.hello", "x package.cron", "ensure: installed ("} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	if st := dpkgStatus(t, c, "hello"); st != "not known to dpkg" {
		t.Errorf("plan installed hello: %q", st)
	}
	if st := dpkgStatus(t, c, "cron"); st != "install ok installed" {
		t.Errorf("plan removed cron: %q", st)
	}
}

// A refresh is remembered even when no list file changed (apt leaves unchanged lists alone):
// lists that are older than update_age but were just refreshed are not refreshed again.
func TestPackageListsRefreshedOnce(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/usr/local/sbin/apt-get", []byte(aptShim), 0o755)
	// Lists three days old, as on a machine whose mirror has not changed since.
	c.MustExec(t, "sh", "-c", "touch -d '3 days ago' /var/lib/apt/lists/* && rm -f /var/lib/apt/periodic/update-success-stamp")
	for i, pkg := range []string{"hello", "tree"} {
		out, code := applyConfig(t, c, `node "n" {
  package "`+pkg+`" {}
}
`)
		if code != 2 {
			t.Fatalf("run %d exited %d:\n%s", i+1, code, out)
		}
	}
	calls, _, _ := c.Exec(t, "cat", "/var/log/apt-get-calls")
	if n := strings.Count(calls, " update"); n != 1 {
		t.Errorf("apt-get update ran %d times, want once (the first run's lists were stale; the second's were just refreshed):\n%s", n, calls)
	}
}

// buildLockHolder builds testdata/lockholder, statically, for the containers.
func buildLockHolder(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "lockholder")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/lockholder")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build lockholder: %v\n%s", err, b)
	}
	return out
}

// While another package manager holds the dpkg lock, satchel waits lock_timeout for it, then
// fails the packages with a message that says so; the rest of the run goes on.
func TestPackageWaitsForTheDpkgLock(t *testing.T) {
	t.Parallel()
	holder := buildLockHolder(t)
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.CopyIn(t, holder, "/usr/local/bin/lockholder")
	c.MustExec(t, "systemd-run", "--unit=holder", "/usr/local/bin/lockholder", "/var/lib/dpkg/lock-frontend", "60s")
	c.MustExec(t, "sh", "-c", "for i in $(seq 50); do systemctl is-active -q holder && exit 0; sleep 0.1; done; exit 1")
	out, code := applyConfig(t, c, `node "n" {
  package "hello" {
    lock_timeout = "2s"
  }
  file "f" {
    path    = "/etc/f"
    content = "x\n"
  }
}
`)
	if code != 6 {
		t.Fatalf("exited %d, want 6:\n%s", code, out)
	}
	for _, want := range []string{
		"! package.hello failed",
		"another package manager (apt, unattended-upgrades) held the dpkg lock for more than 2s",
		"+ file.f",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	c.MustExec(t, "systemctl", "stop", "holder")
	if out, code := applyConfig(t, c, `node "n" {
  package "hello" {}
}
`); code != 2 {
		t.Errorf("after the lock was released: exit %d\n%s", code, out)
	}
}

// A held dpkg lock concerns every package of a transaction: they all fail after one wait of
// lock_timeout, not one wait per package.
func TestPackageLockWaitIsNotMultiplied(t *testing.T) {
	t.Parallel()
	holder := buildLockHolder(t)
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.CopyIn(t, holder, "/usr/local/bin/lockholder")
	c.MustExec(t, "systemd-run", "--unit=holder", "/usr/local/bin/lockholder", "/var/lib/dpkg/lock-frontend", "120s")
	c.MustExec(t, "sh", "-c", "for i in $(seq 50); do systemctl is-active -q holder && exit 0; sleep 0.1; done; exit 1")
	start := time.Now()
	out, code := applyConfig(t, c, `node "n" {
  package "hello" {
    lock_timeout = "3s"
  }
  package "tree" {
    lock_timeout = "3s"
  }
  package "bc" {
    lock_timeout = "3s"
  }
}
`)
	elapsed := time.Since(start)
	if code != 4 || strings.Count(out, "held the dpkg lock for more than 3s") != 3 {
		t.Fatalf("exited %d:\n%s", code, out)
	}
	if elapsed > 9*time.Second {
		t.Errorf("the run took %v: the 3 s lock wait was repeated per package", elapsed)
	}
}
