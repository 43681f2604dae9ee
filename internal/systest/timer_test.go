package systest

import (
	"strings"
	"testing"
)

// stampConf is a job whose command needs careful quoting (quotes, $, %, a backslash, two
// lines), scheduled by on_calendar, and a service that requires it.
func stampConf(onCalendar, ensure string) string {
	return `node "n" {
  timer "stamp" {
    ensure           = "` + ensure + `"
    description      = "Stamp job"
    on_calendar      = "` + onCalendar + `"
    randomized_delay = "10m"
    command          = <<-EOT
      echo "a  b" '$x' 100% \\ >> /var/log/stamp
      echo two >> /var/log/stamp
      EOT
  }
  service "sleeper" {
    running = true
    require = [timer.stamp]
  }
}
`
}

// A timer is written, loaded, enabled and started; systemd lists it; its service runs the
// command exactly as written when started by hand; a new schedule takes effect; absent removes
// it. The timer reloads systemd itself, so the service after it does not reload again.
func TestTimerScheduledJob(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/etc/systemd/system/sleeper.service", []byte(sleeperUnit), 0o644)
	c.MustExec(t, "systemctl", "daemon-reload")

	out := mustApply(t, c, stampConf("*-*-* 03:00", "present"), 2)
	wantOutput(t, out, "+ timer.stamp", "ensure: absent -> present", "enabled: false -> true", "active: false -> true",
		"~ service.sleeper", "running: false -> true")
	if strings.Contains(out, "daemon-reload") {
		t.Errorf("the service reloaded systemd again after the timer did:\n%s", out)
	}
	if got := strings.TrimSpace(c.MustExec(t, "systemctl", "is-enabled", "stamp.timer")); got != "enabled" {
		t.Errorf("stamp.timer is %s at boot", got)
	}
	if got := unitProp(t, c, "stamp.timer", "ActiveState"); got != "active" {
		t.Errorf("stamp.timer is %s", got)
	}
	if timers := c.MustExec(t, "systemctl", "list-timers", "--all", "--no-legend"); !strings.Contains(timers, "stamp.timer") {
		t.Errorf("systemctl list-timers does not list stamp.timer:\n%s", timers)
	}
	if got := unitProp(t, c, "stamp.timer", "TimersCalendar"); !strings.Contains(got, "OnCalendar=*-*-* 03:00:00") {
		t.Errorf("TimersCalendar = %s", got)
	}
	if got := unitProp(t, c, "stamp.timer", "RandomizedDelayUSec"); got != "10min" {
		t.Errorf("RandomizedDelayUSec = %s", got)
	}
	if got := unitProp(t, c, "stamp.timer", "Persistent"); got != "yes" {
		t.Errorf("Persistent = %s", got)
	}
	if got := unitProp(t, c, "stamp.service", "Description"); got != "Stamp job" {
		t.Errorf("stamp.service Description = %q", got)
	}

	// Started by hand (a oneshot: systemctl waits for it), the job runs the command verbatim.
	c.MustExec(t, "systemctl", "start", "stamp.service")
	if got, want := string(c.ReadFile(t, "/var/log/stamp")), "a  b $x 100% \\\ntwo\n"; got != want {
		t.Errorf("the job wrote %q, want %q", got, want)
	}
	if got := unitProp(t, c, "stamp.service", "Result"); got != "success" {
		t.Errorf("stamp.service Result = %s", got)
	}
	mustApply(t, c, stampConf("*-*-* 03:00", "present"), 0)

	// A new schedule: the timer unit alone changes and the running timer uses it.
	out = mustApply(t, c, stampConf("Mon..Fri 07:30", "present"), 2)
	wantOutput(t, out, "/etc/systemd/system/stamp.timer: ")
	if strings.Contains(out, "/etc/systemd/system/stamp.service") {
		t.Errorf("the unchanged service unit was reported:\n%s", out)
	}
	if got := unitProp(t, c, "stamp.timer", "TimersCalendar"); !strings.Contains(got, "OnCalendar=Mon..Fri *-*-* 07:30:00") {
		t.Errorf("after the change, TimersCalendar = %s", got)
	}
	if got := unitProp(t, c, "stamp.timer", "NeedDaemonReload"); got != "no" {
		t.Errorf("NeedDaemonReload = %s", got)
	}
	mustApply(t, c, stampConf("Mon..Fri 07:30", "present"), 0)

	// Absent: stopped, disabled, both units gone.
	out = mustApply(t, c, stampConf("Mon..Fri 07:30", "absent"), 2)
	wantOutput(t, out, "x timer.stamp", "ensure: present -> absent")
	if timers := c.MustExec(t, "systemctl", "list-timers", "--all", "--no-legend"); strings.Contains(timers, "stamp.timer") {
		t.Errorf("systemctl list-timers still lists stamp.timer:\n%s", timers)
	}
	for _, p := range []string{"/etc/systemd/system/stamp.timer", "/etc/systemd/system/stamp.service", "/etc/systemd/system/timers.target.wants/stamp.timer"} {
		if _, _, code := c.Exec(t, "test", "-e", p); code == 0 {
			t.Errorf("%s still exists", p)
		}
	}
	if got := unitProp(t, c, "stamp.timer", "LoadState"); got != "not-found" {
		t.Errorf("stamp.timer LoadState = %s after removal", got)
	}
	mustApply(t, c, stampConf("Mon..Fri 07:30", "absent"), 0)
}
