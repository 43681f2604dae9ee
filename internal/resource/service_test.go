package resource_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

// These tests drive the real systemctl against unit files in a temporary root, the way
// `satchel apply --root` does for an image: `systemctl --root=DIR enable|disable|is-enabled`
// works without a running systemd. The paths that need one (start, stop, restart,
// daemon-reload) are tested in a booted container, in internal/systest.

// needSystemctl skips the test on a machine without systemctl (it is part of Debian's
// systemd package, which CI has).
func needSystemctl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed")
	}
}

const wantedUnit = "[Unit]\nDescription=test\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n"

// assertNoLink checks that nothing is at p in the root.
func (fx *fixture) assertNoLink(p string) {
	fx.t.Helper()
	if got, err := os.Readlink(fx.host(p)); err == nil {
		fx.t.Errorf("%s -> %s exists, want no link", p, got)
	} else if !isNotExist(err) {
		fx.t.Errorf("%s: %v", p, err)
	}
}

func TestServiceEnableDisableOffline(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	const link = "/etc/systemd/system/multi-user.target.wants/squid.service"

	fx.contract(cat("service", "squid", map[string]any{"enabled": true}), "enabled: false -> true")
	fx.assertLink(link, "/etc/systemd/system/squid.service")

	fx.contract(cat("service", "squid", map[string]any{"enabled": false}), "enabled: true -> false")
	fx.assertNoLink(link)
}

func TestServiceUnitFromPackageDirectory(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/lib/systemd/system/cron.service", wantedUnit, 0o644)
	// "cron.service" names the same unit as "cron".
	fx.contract(cat("service", "c", map[string]any{"name": "cron.service", "enabled": true}), "enabled: false -> true")
	fx.assertLink("/etc/systemd/system/multi-user.target.wants/cron.service", "/lib/systemd/system/cron.service")
	assertChanges(t, "by its short name", fx.run(cat("service", "cron", map[string]any{"enabled": true}), false))
}

func TestServiceTemplateInstanceAndOtherSuffix(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/worker@.service", wantedUnit, 0o644)
	fx.contract(cat("service", "w", map[string]any{"name": "worker@a", "enabled": true}), "enabled: false -> true")
	fx.assertLink("/etc/systemd/system/multi-user.target.wants/worker@a.service", "/etc/systemd/system/worker@.service")

	fx.write("/etc/systemd/system/api.socket", "[Socket]\nListenStream=8080\n\n[Install]\nWantedBy=sockets.target\n", 0o644)
	fx.contract(cat("service", "api", map[string]any{"name": "api.socket", "enabled": true}), "enabled: false -> true")
	fx.assertLink("/etc/systemd/system/sockets.target.wants/api.socket", "/etc/systemd/system/api.socket")
}

func TestServiceRunningNotApplicableUnderRoot(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	for _, running := range []bool{true, false} {
		noop, real := fx.contract(cat("service", "squid", map[string]any{"running": running}))
		for _, res := range []*resource.Result{noop, real} {
			if want := []string{"running: not applicable under --root (services start when the image boots)"}; !slices.Equal(res.Notes, want) {
				t.Errorf("running = %v: notes %q, want %q", running, res.Notes, want)
			}
		}
	}
	// With enabled too, only enabled changes.
	fx.contract(cat("service", "squid", map[string]any{"running": true, "enabled": true}), "enabled: false -> true")
}

func TestServiceUnmanagedAttributesChangeNothing(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	fx.contract(cat("service", "squid", map[string]any{}))
}

func TestServiceNotFound(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	before := fx.snapshot()
	cr := cat("service", "squid", map[string]any{"enabled": true, "running": true})
	_, err := fx.runErr(cr, true)
	want := "service squid: no unit squid.service is installed (no unit file in /etc/systemd/system or /lib/systemd/system under " + fx.dir +
		"); install the package that provides it, or write the unit with a file resource, and require that resource"
	if err.Error() != want {
		t.Errorf("error\n  %s\nwant\n  %s", err, want)
	}
	// A plan does not fail: a package earlier in the run may install the unit.
	res := fx.run(cr, false)
	assertChanges(t, "plan", res, "enabled: (no such unit) -> true")
	if len(res.Notes) != 2 || !strings.Contains(res.Notes[0], "squid.service does not exist yet") {
		t.Errorf("plan notes %q", res.Notes)
	}
	fx.assertUnchanged(before, "runs on a missing unit")
}

func TestServiceStaticMaskedAlias(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/helper.service", "[Service]\nExecStart=/bin/true\n", 0o644)
	fx.wantErr(cat("service", "helper", map[string]any{"enabled": true}),
		"helper.service cannot be enabled: its unit file has no [Install] section (it is static, started by other units or by activation); leave enabled unset")
	fx.contract(cat("service", "helper", map[string]any{"enabled": false}))

	fx.symlink("/dev/null", "/etc/systemd/system/masked.service")
	fx.wantErr(cat("service", "masked", map[string]any{"enabled": true}),
		"masked.service is masked, so it cannot be enabled; unmask it (systemctl unmask masked.service) or stop managing it")
	fx.contract(cat("service", "masked", map[string]any{"enabled": false}))

	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	fx.symlink("/etc/systemd/system/squid.service", "/etc/systemd/system/sq.service")
	fx.wantErr(cat("service", "sq", map[string]any{"enabled": true}),
		"sq.service is an alias of another unit; name the unit itself (systemctl show -p Id sq.service)")
}

func TestServiceRefreshOffline(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	for _, apply := range []bool{false, true} {
		r := build(t, cat("service", "squid", map[string]any{"on_refresh": "reload"}))
		fx.checkApply(r, apply)
		res := fx.refresh(r, apply)
		assertChanges(t, "refresh", res)
		if want := []string{"reload on notification: not applicable under --root (services start when the image boots)"}; !slices.Equal(res.Notes, want) {
			t.Errorf("notes %q, want %q", res.Notes, want)
		}
	}
}

// Offline there is nothing to reload, but the changed unit files are taken into account: a
// later service does not see them again.
func TestServiceNoDaemonReloadOffline(t *testing.T) {
	t.Parallel()
	needSystemctl(t)
	fx := newFixture(t)
	fx.write("/etc/systemd/system/squid.service", wantedUnit, 0o644)
	fx.env.Changes = &resource.Changes{}
	fx.env.Changes.Add("/etc/systemd/system/squid.service")
	res := fx.run(cat("service", "squid", map[string]any{"enabled": true}), true)
	assertChanges(t, "apply", res, "enabled: false -> true")
	if got, _ := fx.env.Changes.Pending("systemd-daemon-reload", func(string) bool { return true }); len(got) != 0 {
		t.Errorf("unit changes still pending after the service ran: %q", got)
	}
}

func TestServiceDecode(t *testing.T) {
	t.Parallel()
	s := build(t, cat("service", "squid", map[string]any{})).(*resource.Service)
	if s.Name != "squid" || s.Running != nil || s.Enabled != nil || s.OnRefresh != "restart" {
		t.Errorf("decoded as %+v", s)
	}
	s = build(t, cat("service", "x", map[string]any{"name": "getty@tty1.service", "running": false, "enabled": true, "on_refresh": "try-restart"})).(*resource.Service)
	if s.Name != "getty@tty1.service" || s.Running == nil || *s.Running || s.Enabled == nil || !*s.Enabled || s.OnRefresh != "try-restart" {
		t.Errorf("decoded as %+v", s)
	}
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"name": "squid; reboot"}, `name: Invalid unit name: "squid; reboot" is not a unit name (letters, digits and : _ . @ - \ only).`},
		{map[string]any{"name": "--now"}, `name: Invalid unit name: "--now" cannot start with "-".`},
		{map[string]any{"name": "a/b"}, `name: Invalid unit name: "a/b" is not a unit name (letters, digits and : _ . @ - \ only).`},
		{map[string]any{"name": ""}, `name: Invalid unit name: a unit name cannot be empty.`},
		{map[string]any{"on_refresh": "kill"}, `on_refresh: Invalid value: "kill" is not one of "restart", "reload", "try-restart".`},
		{map[string]any{"running": "yes"}, "attribute running: json: cannot unmarshal string into Go value of type bool"},
	} {
		_, err := resource.New(cat("service", "x", tc.attrs))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %s", tc.attrs, err, tc.want)
		}
	}
}

func TestChangesPendingCommitHandled(t *testing.T) {
	t.Parallel()
	var c resource.Changes
	all := func(string) bool { return true }
	c.Add("/a")
	c.Handled("k", "/b", "/c")
	c.Add("/b", "/c", "/d")
	got, pos := c.Pending("k", all)
	if !slices.Equal(got, []string{"/a", "/d"}) {
		t.Errorf("Pending(k) = %q, want the paths not handled", got)
	}
	// Not committed (the reload failed): the next caller sees them again.
	if again, _ := c.Pending("k", all); !slices.Equal(again, got) {
		t.Errorf("Pending(k) after no commit = %q, want %q again", again, got)
	}
	c.Commit("k", pos)
	if rest, _ := c.Pending("k", all); len(rest) != 0 {
		t.Errorf("Pending(k) after Commit = %q, want nothing", rest)
	}
	c.Add("/b")
	if got, _ := c.Pending("k", all); !slices.Equal(got, []string{"/b"}) {
		t.Errorf("Pending(k) = %q: a path is skipped once per Handled", got)
	}
	if got, _ := c.Pending("other", all); !slices.Equal(got, []string{"/a", "/b", "/c", "/d", "/b"}) {
		t.Errorf("Pending(other) = %q: Handled is per key", got)
	}
	var nilChanges *resource.Changes
	nilChanges.Handled("k", "/x") // a resource run outside the engine has no change log
	nilChanges.Commit("k", 3)
}

// The language sees these flags: two resources for one unit, or two hostnames, are errors;
// only a service can be notified.
func TestSystemTypesSchema(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]struct {
		unique      string
		singleton   bool
		refreshable bool
		defaults    map[string]any
	}{
		"service":  {"name", false, true, map[string]any{"on_refresh": "restart"}},
		"timer":    {"name", false, false, map[string]any{"ensure": "present", "persistent": true}},
		"hostname": {"", true, false, map[string]any{"hosts_entry": true}},
	} {
		s := resource.Lookup(name).Schema
		if s.UniqueAttr != want.unique || s.Singleton != want.singleton || s.Refreshable != want.refreshable || s.PathAttr != "" {
			t.Errorf("%s: UniqueAttr %q, Singleton %v, Refreshable %v, PathAttr %q", name, s.UniqueAttr, s.Singleton, s.Refreshable, s.PathAttr)
		}
		for attr, def := range want.defaults {
			if a := s.Attribute(attr); a == nil || a.Default != def {
				t.Errorf("%s.%s: %+v, want default %v", name, attr, a, def)
			}
		}
		if a := s.Attribute("name"); a == nil || !a.NameVar {
			t.Errorf("%s.name is not the namevar", name)
		}
	}
	if a := resource.Lookup("timer").Schema.Attribute("randomized_delay"); a.Format != "duration" {
		t.Errorf("timer.randomized_delay format %q", a.Format)
	}
}
