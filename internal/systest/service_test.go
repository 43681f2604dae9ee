package systest

import (
	"strconv"
	"strings"
	"testing"
)

// satchelRun writes conf as the configuration of node "n" in the container and runs
// `satchel VERB` on it (apply with --detailed-exitcode: 0 nothing changed, 2 changes, 1 or more
// failures), returning its output and exit status.
func satchelRun(t *testing.T, c *Container, verb, conf string) (string, int) {
	t.Helper()
	c.WriteFile(t, "/etc/satchel/svc/main.hcl", []byte(conf), 0o644)
	args := []string{"satchel", verb, "--node", "n"}
	if verb == "apply" {
		args = append(args, "--detailed-exitcode")
	}
	stdout, stderr, code := c.Exec(t, append(args, "/etc/satchel/svc")...)
	return stdout + stderr, code
}

// mustApply applies conf and fails unless the exit status is want.
func mustApply(t *testing.T, c *Container, conf string, want int) string {
	t.Helper()
	out, code := satchelRun(t, c, "apply", conf)
	if code != want {
		t.Fatalf("satchel apply exited %d, want %d:\n%s", code, want, out)
	}
	return out
}

func wantOutput(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// unitProp returns one property of a unit, as systemctl show prints it.
func unitProp(t *testing.T, c *Container, unit, prop string) string {
	t.Helper()
	return strings.TrimSpace(c.MustExec(t, "systemctl", "show", "--value", "-p", prop, unit))
}

func mainPID(t *testing.T, c *Container, unit string) int {
	t.Helper()
	pid, err := strconv.Atoi(unitProp(t, c, unit, "MainPID"))
	if err != nil || pid == 0 {
		t.Fatalf("%s has no main process (MainPID %v)", unit, unitProp(t, c, unit, "MainPID"))
	}
	return pid
}

// countLines returns the number of lines of a log file in the container (0 if absent).
func countLines(t *testing.T, c *Container, p string) int {
	t.Helper()
	out, _, _ := c.Exec(t, "cat", p)
	return len(strings.Fields(out))
}

// webConf is a unit written by a file resource, its configuration file, and a service that
// both notify. Every start and every reload of the daemon is logged.
func webConf(unitDescription, config, onRefresh string) string {
	return `node "n" {
  file "web_unit" {
    path    = "/etc/systemd/system/web.service"
    content = <<-EOT
      [Unit]
      Description=` + unitDescription + `

      [Service]
      ExecStartPre=/bin/sh -c 'echo start >> /var/log/web-starts'
      ExecStart=/bin/sleep infinity
      ExecReload=/bin/sh -c 'echo reload >> /var/log/web-reloads'

      [Install]
      WantedBy=multi-user.target
      EOT
    notify  = [service.web]
  }
  file "web_conf" {
    path    = "/etc/web.conf"
    content = "` + config + `\n"
    notify  = [service.web]
  }
  service "web" {
    running    = true
    enabled    = true
    on_refresh = "` + onRefresh + `"
  }
}
`
}

// A unit file written in the same run is loaded (daemon-reload) before the service starts; a
// service just started is not restarted for its notifications; later, two notifiers in one run
// restart it exactly once, after one daemon-reload.
func TestServiceNotifiedRestartsOnce(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)

	out := mustApply(t, c, webConf("test web", "v1", "restart"), 2)
	wantOutput(t, out, "~ service.web", "daemon-reload: /etc/systemd/system/web.service", "running: false -> true", "enabled: false -> true")
	if strings.Contains(out, "refreshed") {
		t.Errorf("a service started in this run was also restarted:\n%s", out)
	}
	if n := countLines(t, c, "/var/log/web-starts"); n != 1 {
		t.Errorf("first run: %d starts, want 1", n)
	}
	if got := unitProp(t, c, "web.service", "ActiveState"); got != "active" {
		t.Errorf("web.service is %s", got)
	}
	if got := strings.TrimSpace(c.MustExec(t, "systemctl", "is-enabled", "web.service")); got != "enabled" {
		t.Errorf("web.service is %s at boot", got)
	}
	pid := mainPID(t, c, "web.service")

	// Nothing to do: nothing restarts.
	mustApply(t, c, webConf("test web", "v1", "restart"), 0)
	if got := mainPID(t, c, "web.service"); got != pid {
		t.Errorf("an unchanged run restarted the service: MainPID %d -> %d", pid, got)
	}

	// A plan of two changes says the service would be restarted, and restarts nothing.
	plan, code := satchelRun(t, c, "plan", webConf("test web, v2", "v2", "restart"))
	if code != 0 {
		t.Fatalf("satchel plan exited %d:\n%s", code, plan)
	}
	wantOutput(t, plan, "~ service.web (would be refreshed: notified)", "refresh: restart")
	if got := mainPID(t, c, "web.service"); got != pid {
		t.Errorf("a plan restarted the service: MainPID %d -> %d", pid, got)
	}

	// Both notifiers change: one daemon-reload, one restart.
	out = mustApply(t, c, webConf("test web, v2", "v2", "restart"), 2)
	wantOutput(t, out, "~ service.web (refreshed: notified)", "daemon-reload: /etc/systemd/system/web.service", "refresh: restart")
	if n := strings.Count(out, "refresh: restart"); n != 1 {
		t.Errorf("%d restarts reported, want 1:\n%s", n, out)
	}
	if n := countLines(t, c, "/var/log/web-starts"); n != 2 {
		t.Errorf("after two notifications: %d starts in all, want 2 (one restart)", n)
	}
	newPID := mainPID(t, c, "web.service")
	if newPID == pid {
		t.Error("the main PID did not change: the service was not restarted")
	}
	if got := unitProp(t, c, "web.service", "Description"); got != "test web, v2" {
		t.Errorf("the running unit says Description=%q: the new unit file was not loaded", got)
	}
	if got := unitProp(t, c, "web.service", "NeedDaemonReload"); got != "no" {
		t.Errorf("NeedDaemonReload=%s after the run", got)
	}
	mustApply(t, c, webConf("test web, v2", "v2", "restart"), 0)
	if got := mainPID(t, c, "web.service"); got != newPID {
		t.Errorf("the second run restarted the service again: MainPID %d -> %d", newPID, got)
	}
}

// on_refresh = "reload" reloads the daemon (ExecReload) instead of restarting it.
func TestServiceNotifiedReload(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	mustApply(t, c, webConf("test web", "v1", "reload"), 2)
	pid := mainPID(t, c, "web.service")
	out := mustApply(t, c, webConf("test web", "v2", "reload"), 2)
	wantOutput(t, out, "refresh: reload")
	if n := countLines(t, c, "/var/log/web-reloads"); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
	if got := mainPID(t, c, "web.service"); got != pid {
		t.Errorf("reload restarted the service: MainPID %d -> %d", pid, got)
	}
}

const sleeperUnit = "[Unit]\nDescription=sleeper\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n"

func sleeperConf(running, enabled bool) string {
	return `node "n" {
  service "sleeper" {
    running = ` + strconv.FormatBool(running) + `
    enabled = ` + strconv.FormatBool(enabled) + `
  }
}
`
}

// running and enabled, each way, and only what differs changes.
func TestServiceRunningAndEnabled(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/etc/systemd/system/sleeper.service", []byte(sleeperUnit), 0o644)
	c.MustExec(t, "systemctl", "daemon-reload")
	state := func() (string, string) {
		active, _, _ := c.Exec(t, "systemctl", "is-active", "sleeper.service")
		enabled, _, _ := c.Exec(t, "systemctl", "is-enabled", "sleeper.service")
		return strings.TrimSpace(active), strings.TrimSpace(enabled)
	}
	for _, step := range []struct {
		running, enabled bool
		changes          []string
		active, atBoot   string
	}{
		{true, true, []string{"running: false -> true", "enabled: false -> true"}, "active", "enabled"},
		{true, false, []string{"enabled: true -> false"}, "active", "disabled"},
		{false, false, []string{"running: true -> false"}, "inactive", "disabled"},
		{false, true, []string{"enabled: false -> true"}, "inactive", "enabled"},
	} {
		conf := sleeperConf(step.running, step.enabled)
		plan, _ := satchelRun(t, c, "plan", conf)
		out := mustApply(t, c, conf, 2)
		for _, want := range step.changes {
			if !strings.Contains(plan, want) || !strings.Contains(out, want) {
				t.Errorf("running %v, enabled %v: plan or apply lacks %q:\n%s\n%s", step.running, step.enabled, want, plan, out)
			}
		}
		if n := strings.Count(out, " -> "); n != len(step.changes) {
			t.Errorf("running %v, enabled %v: %d changes, want %d:\n%s", step.running, step.enabled, n, len(step.changes), out)
		}
		if active, enabled := state(); active != step.active || enabled != step.atBoot {
			t.Errorf("running %v, enabled %v: systemctl says %s, %s; want %s, %s", step.running, step.enabled, active, enabled, step.active, step.atBoot)
		}
		mustApply(t, c, conf, 0)
	}
}

// A unit that does not exist is a clear error for its resource only; a stopped service is not
// started by a notification.
func TestServiceMissingUnitAndStoppedService(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/etc/systemd/system/sleeper.service", []byte(sleeperUnit), 0o644)
	c.MustExec(t, "systemctl", "daemon-reload")
	out := mustApply(t, c, `node "n" {
  service "nosuch" {
    running = true
  }
  file "marker" {
    path    = "/etc/marker"
    content = "x\n"
    notify  = [service.sleeper]
  }
  service "sleeper" {}
}
`, 6)
	wantOutput(t, out, "! service.nosuch failed", "no unit nosuch.service is installed", "+ file.marker")
	if strings.Contains(out, "service.sleeper") {
		t.Errorf("the stopped, notified service changed:\n%s", out)
	}
	if active, _, _ := c.Exec(t, "systemctl", "is-active", "sleeper.service"); strings.TrimSpace(active) != "inactive" {
		t.Errorf("a notification started a stopped service: %s", active)
	}
}
