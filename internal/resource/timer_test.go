package resource_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

const (
	backupService = "/etc/systemd/system/backup.service"
	backupTimer   = "/etc/systemd/system/backup.timer"
	backupLink    = "/etc/systemd/system/timers.target.wants/backup.timer"
)

func backupAttrs() map[string]any {
	return map[string]any{"command": "tar czf /var/backups/home.tgz /home", "on_calendar": "*-*-* 02:00"}
}

const backupServiceUnit = `# Managed by Satchel: changes made here are overwritten.
[Unit]
Description=backup (scheduled by Satchel)

[Service]
Type=oneshot
ExecStart=/bin/sh -c "tar czf /var/backups/home.tgz /home"
`

const backupTimerUnit = `# Managed by Satchel: changes made here are overwritten.
[Unit]
Description=backup (scheduled by Satchel)

[Timer]
OnCalendar=*-*-* 02:00
Persistent=true

[Install]
WantedBy=timers.target
`

func TestTimerCreateUnderRoot(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	noop, real := fx.contract(cat("timer", "backup", backupAttrs()),
		"ensure: absent -> present", "parents: absent -> /etc, /etc/systemd, /etc/systemd/system", "enabled: false -> true")
	fx.assertFile(backupService, backupServiceUnit, 0o644, 0, 0)
	fx.assertFile(backupTimer, backupTimerUnit, 0o644, 0, 0)
	// Enabled offline: the link `systemctl enable` makes, inside the root.
	fx.assertLink(backupLink, backupTimer)
	for _, res := range []*resource.Result{noop, real} {
		if want := []string{"active: not applicable under --root (services start when the image boots)"}; !slices.Equal(res.Notes, want) {
			t.Errorf("notes %q, want %q", res.Notes, want)
		}
	}
	// The diff shows both new files, service first.
	for _, want := range []string{"--- " + backupService + " (current)", "+ExecStart=/bin/sh -c \"tar czf /var/backups/home.tgz /home\"",
		"--- " + backupTimer + " (current)", "+OnCalendar=*-*-* 02:00"} {
		if !strings.Contains(real.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, real.Diff)
		}
	}
	if strings.Index(real.Diff, backupService) > strings.Index(real.Diff, backupTimer) {
		t.Errorf("diff shows the timer before the service:\n%s", real.Diff)
	}
	fx.assertNoBackups()
	fx.assertNoTemp("/etc/systemd/system")
}

// Unit files are a pure function of the attributes: every attribute in its place, and the
// command quoted so that systemd hands /bin/sh exactly the text given.
func TestTimerUnitContent(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	attrs := map[string]any{
		"command":          "echo \"100%\" $HOME \\ 'x'\n\techo two",
		"on_calendar":      "Mon..Fri 07:30",
		"persistent":       false,
		"randomized_delay": "1h30m5s",
		"user":             "backup",
		"description":      "Nightly copy (50% of /home)",
	}
	const wantService = `# Managed by Satchel: changes made here are overwritten.
[Unit]
Description=Nightly copy (50%% of /home)

[Service]
Type=oneshot
User=backup
ExecStart=/bin/sh -c "echo \"100%%\" $$HOME \\ 'x'\n\techo two"
`
	const wantTimer = `# Managed by Satchel: changes made here are overwritten.
[Unit]
Description=Nightly copy (50%% of /home)

[Timer]
OnCalendar=Mon..Fri 07:30
Persistent=false
RandomizedDelaySec=1h 30min 5s

[Install]
WantedBy=timers.target
`
	var first map[string]string
	for i := range 3 {
		fx := newFixture(t)
		fx.write("/etc/passwd", "root:x:0:0::/root:/bin/sh\nbackup:x:34:34::/var/backups:/bin/sh\n", 0o644)
		fx.run(cat("timer", "job", attrs), true)
		got := map[string]string{"service": fx.read("/etc/systemd/system/job.service"), "timer": fx.read("/etc/systemd/system/job.timer")}
		if i == 0 {
			first = got
			if got["service"] != wantService {
				t.Errorf("job.service:\n%s\nwant\n%s", got["service"], wantService)
			}
			if got["timer"] != wantTimer {
				t.Errorf("job.timer:\n%s\nwant\n%s", got["timer"], wantTimer)
			}
		} else if got["service"] != first["service"] || got["timer"] != first["timer"] {
			t.Errorf("run %d wrote other content than the first", i)
		}
	}
}

func TestTimerRandomizedDelayUnits(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	for delay, want := range map[string]string{"30m": "30min", "45s": "45s", "1500ms": "1s 500ms", "2h": "2h", "90s": "1min 30s"} {
		fx := newFixture(t)
		attrs := backupAttrs()
		attrs["randomized_delay"] = delay
		fx.run(cat("timer", "backup", attrs), true)
		if line := "RandomizedDelaySec=" + want + "\n"; !strings.Contains(fx.read(backupTimer), line) {
			t.Errorf("randomized_delay %s: timer lacks %q:\n%s", delay, line, fx.read(backupTimer))
		}
	}
}

func TestTimerChangeRewritesOnlyWhatDiffers(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.run(cat("timer", "backup", backupAttrs()), true)
	serviceIno := fx.lstat(backupService).Ino

	attrs := backupAttrs()
	attrs["on_calendar"] = "daily"
	newTimer := strings.Replace(backupTimerUnit, "OnCalendar=*-*-* 02:00", "OnCalendar=daily", 1)
	_, real := fx.contract(cat("timer", "backup", attrs),
		fmt.Sprintf("%s: %s -> %s", backupTimer, describe(backupTimerUnit), describe(newTimer)))
	fx.assertFile(backupTimer, newTimer, 0o644, 0, 0)
	if fx.lstat(backupService).Ino != serviceIno {
		t.Error("the unchanged service unit was rewritten")
	}
	if want := "-OnCalendar=*-*-* 02:00\n+OnCalendar=daily\n"; !strings.Contains(real.Diff, want) || strings.Contains(real.Diff, backupService) {
		t.Errorf("diff:\n%s\nwant only the timer's OnCalendar line changed", real.Diff)
	}
	fx.assertBackup(backupTimer, backupTimerUnit, 0o644, 0, 0, "replaced by timer.backup")
	fx.assertLink(backupLink, backupTimer)
}

func TestTimerRepairsLocalEdits(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.run(cat("timer", "backup", backupAttrs()), true)
	edited := backupServiceUnit + "Nice=19\n"
	fx.write(backupService, edited, 0o644)
	chmodHost(t, fx.host(backupTimer), 0o600)
	fx.contract(cat("timer", "backup", backupAttrs()),
		fmt.Sprintf("%s: %s -> %s", backupService, describe(edited), describe(backupServiceUnit)),
		backupTimer+": mode 0600 -> mode 0644")
	fx.assertFile(backupService, backupServiceUnit, 0o644, 0, 0)
	fx.assertFile(backupTimer, backupTimerUnit, 0o644, 0, 0)
	fx.assertBackup(backupService, edited, 0o644, 0, 0, "replaced by timer.backup")

	// Disabled by hand: enabled again.
	if err := os.Remove(fx.host(backupLink)); err != nil {
		t.Fatal(err)
	}
	fx.contract(cat("timer", "backup", backupAttrs()), "enabled: false -> true")
	fx.assertLink(backupLink, backupTimer)
}

func TestTimerAbsent(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	absent := cat("timer", "backup", map[string]any{"ensure": "absent"})
	fx.contract(absent) // nothing to remove
	fx.run(cat("timer", "backup", backupAttrs()), true)

	_, real := fx.contract(absent, "ensure: present -> absent")
	for _, p := range []string{backupService, backupTimer, backupLink} {
		if fx.exists(p) {
			t.Errorf("%s still exists", p)
		}
	}
	if !strings.Contains(real.Diff, "-ExecStart=") || !strings.Contains(real.Diff, "-OnCalendar=") {
		t.Errorf("removal diff:\n%s", real.Diff)
	}
	fx.assertBackup(backupService, backupServiceUnit, 0o644, 0, 0, "removed by timer.backup")
	fx.assertBackup(backupTimer, backupTimerUnit, 0o644, 0, 0, "removed by timer.backup")

	// A link left behind by units deleted by hand is removed too.
	fx.symlink(backupTimer, backupLink)
	fx.contract(absent, "ensure: present -> absent")
	if fx.exists(backupLink) {
		t.Error("the dangling link is still there")
	}
}

func TestTimerUserMustExist(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.accounts()
	attrs := backupAttrs()
	attrs["user"] = "nobody-here"
	cr := cat("timer", "backup", attrs)
	// A plan does not look: a user resource earlier in the run may create the account.
	assertChanges(t, "plan", fx.run(cr, false), "ensure: absent -> present", "parents: absent -> /etc/systemd, /etc/systemd/system", "enabled: false -> true")
	before := fx.snapshot()
	_, err := fx.runErr(cr, true)
	if want := `run as nobody-here: user "nobody-here" does not exist in ` + fx.host("/etc/passwd") + "; create it first (and require that resource)"; err.Error() != want {
		t.Errorf("error\n  %s\nwant\n  %s", err, want)
	}
	fx.assertUnchanged(before, "a failed apply")
	attrs["user"] = "alice"
	fx.run(cat("timer", "backup", attrs), true)
	if !strings.Contains(fx.read(backupService), "\nUser=alice\n") {
		t.Errorf("service unit:\n%s", fx.read(backupService))
	}
}

func TestTimerSensitiveCommandHasNoDiff(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.run(cat("timer", "backup", backupAttrs()), true)
	attrs := backupAttrs()
	attrs["command"] = "curl -u admin:s3cret https://office/report"
	noop, _ := fx.contract(cat("timer", "backup", attrs, "command"),
		backupService+": (sensitive) -> (sensitive)")
	if noop.Diff != "" {
		t.Errorf("diff of a sensitive command:\n%s", noop.Diff)
	}
}

// The engine records the units of a timer that changed; the timer reloaded systemd itself
// (when it runs), so the next service must not reload again for them.
func TestTimerMarksItsUnitsHandled(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.env.Changes = &resource.Changes{}
	r := build(t, cat("timer", "backup", backupAttrs()))
	fx.checkApply(r, true)
	paths := r.(resource.PathManager).ManagedPaths()
	if !slices.Equal(paths, []string{backupTimer, backupService}) {
		t.Errorf("ManagedPaths() = %q", paths)
	}
	fx.env.Changes.Add(paths...) // as the engine does after a change
	if got, _ := fx.env.Changes.Pending("systemd-daemon-reload", func(string) bool { return true }); len(got) != 0 {
		t.Errorf("after the timer, unit changes pending: %q", got)
	}
}

func TestTimerDecode(t *testing.T) {
	t.Parallel()
	tm := build(t, cat("timer", "backup", backupAttrs())).(*resource.Timer)
	if tm.Name != "backup" || tm.Ensure != "present" || !tm.Persistent || tm.RandomizedDelay != nil || tm.User != nil || tm.Description != nil {
		t.Errorf("decoded as %+v", tm)
	}
	build(t, cat("timer", "backup", map[string]any{"ensure": "absent"}))
	with := func(k string, v any) map[string]any {
		a := backupAttrs()
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
		return a
	}
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{with("command", nil), "command: Missing command: a timer that is present needs command."},
		{with("command", " "), "command: Missing command: a timer that is present needs command."},
		{with("on_calendar", nil), "on_calendar: Missing on_calendar: a timer that is present needs on_calendar."},
		{with("on_calendar", "daily\nOnCalendar=hourly"), "on_calendar: Invalid on_calendar: on_calendar must be one line, without control characters or a final backslash."},
		{with("description", `a\`), "description: Invalid description: description must be one line, without control characters or a final backslash."},
		{with("name", "backup.timer"), `name: Invalid timer name: "backup.timer": give the name without a suffix; the units are NAME.timer and NAME.service.`},
		{with("name", "../etc/x"), `name: Invalid timer name: "../etc/x" cannot name a unit: use letters, digits and : _ . - (starting with a letter or digit), at most 200.`},
		{with("name", "a b"), `name: Invalid timer name: "a b" cannot name a unit: use letters, digits and : _ . - (starting with a letter or digit), at most 200.`},
		{with("randomized_delay", "1d"), `randomized_delay: Invalid duration: "1d" is not a duration such as "30s" or "5m"`},
		{with("user", "a b"), `user: Invalid user: "a b" is not a user name or number.`},
		{with("ensure", "running"), `ensure: Invalid value: "running" is not one of "present", "absent".`},
	} {
		_, err := resource.New(cat("timer", "backup", tc.attrs))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v\nwant %s", tc.attrs, err, tc.want)
		}
	}
}

// Where systemd-analyze is installed, a bad calendar expression fails the plan too, with
// systemd's own words, and nothing is written.
func TestTimerBadCalendar(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	fx := newFixture(t)
	attrs := backupAttrs()
	attrs["on_calendar"] = "every tuesday"
	fx.wantErr(cat("timer", "backup", attrs),
		`on_calendar "every tuesday" is not a systemd calendar expression (systemd-analyze says: Failed to parse calendar specification 'every tuesday': Invalid argument); see systemd.time(7)`)
}

// A timer never takes over, or deletes, a unit Satchel did not write.
func TestTimerRefusesUnitsItDidNotWrite(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/lib/systemd/system/ssh.service", "[Service]\nExecStart=/usr/sbin/sshd -D\n", 0o644)
	for _, apply := range []bool{false, true} {
		_, err := fx.runErr(cat("timer", "ssh", map[string]any{"command": "true", "on_calendar": "daily"}), apply)
		if err == nil || !strings.Contains(err.Error(), `a unit ssh.service is installed by a package`) {
			t.Errorf("apply=%v: timer named after a packaged service: %v", apply, err)
		}
	}
	fx.write("/etc/systemd/system/backup.service", "[Service]\nExecStart=/usr/local/bin/backup\n", 0o644)
	_, err := fx.runErr(cat("timer", "backup", map[string]any{"ensure": "absent"}), true)
	if err == nil || !strings.Contains(err.Error(), "was not written by Satchel") {
		t.Errorf("absent over a hand-written unit: %v", err)
	}
	if _, err := os.Stat(fx.host("/etc/systemd/system/backup.service")); err != nil {
		t.Errorf("the hand-written unit was removed: %v", err)
	}
}
