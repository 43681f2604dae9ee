package resource

import (
	"bufio"
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// systemd is how the service and timer types reach systemd. When the root is "/" and systemd
// runs there (/run/systemd/system exists, as sd_booted(3) checks), systemctl talks to the
// running manager. Otherwise — an image built under --root, or a machine or container
// without systemd as PID 1 — only the unit files can be changed, through
// `systemctl --root=DIR`, which works without a running systemd; whether a unit runs is then
// not applicable. Under --root the host's running systemd is never touched.
type systemd struct {
	root   string // env.Root.Dir()
	online bool
}

func newSystemd(env *Env) systemd {
	sd := systemd{root: env.Root.Dir()}
	if sd.root == "/" {
		info, err := env.Root.Lstat("/run/systemd/system")
		sd.online = err == nil && info.IsDir()
	}
	return sd
}

// offlineReason says why units cannot be started or stopped, for notes.
func (sd systemd) offlineReason() string {
	if sd.root != "/" {
		return "not applicable under --root (services start when the image boots)"
	}
	return "not applicable: systemd is not running on this machine (no /run/systemd/system)"
}

// systemctlTimeout bounds one systemctl call; a start waits for the unit's start job, which
// systemd itself times out after 90 s by default.
const systemctlTimeout = 5 * time.Minute

// systemctl runs systemctl with args, against the running manager or the root's files.
func (sd systemd) systemctl(ctx context.Context, args ...string) (*commandResult, error) {
	argv := []string{"systemctl", "--no-ask-password"}
	if !sd.online {
		argv = append(argv, "--root="+sd.root)
	}
	return command{argv: append(argv, args...), timeout: systemctlTimeout}.run(ctx)
}

// do runs `systemctl ARGS…` and fails with systemctl's message if it fails.
func (sd systemd) do(ctx context.Context, args ...string) error {
	what := "systemctl " + strings.Join(slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--" }), " ")
	res, err := sd.systemctl(ctx, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if res.code != 0 {
		return fmt.Errorf("%s failed (status %d): %s", what, res.code, lastLines(res.output(), 8))
	}
	return nil
}

// unitState is what systemd says of a unit.
type unitState struct {
	Load      string // LoadState: loaded, not-found, masked, bad-setting, error; offline: loaded, not-found or masked
	LoadError string // why it could not be loaded
	Active    string // ActiveState (online only): active, reloading, inactive, failed, activating, deactivating
	File      string // UnitFileState, as is-enabled prints it: enabled, disabled, static, masked…
}

// running reports whether the unit runs: active, or reloading its configuration.
func (u unitState) running() bool { return u.Active == "active" || u.Active == "reloading" }

// stopped reports whether the unit neither runs nor is on its way up or down.
func (u unitState) stopped() bool {
	return u.Active == "inactive" || u.Active == "failed" || u.Active == ""
}

// state reads the unit's state: `systemctl show` online, `systemctl --root is-enabled`
// offline (nothing but the unit files is known then).
func (sd systemd) state(ctx context.Context, unit string) (unitState, error) {
	if !sd.online {
		return sd.fileState(ctx, unit)
	}
	res, err := sd.systemctl(ctx, "show", "--property=LoadState,LoadError,ActiveState,UnitFileState", "--", unit)
	if err != nil {
		return unitState{}, fmt.Errorf("read the state of %s: %w", unit, err)
	}
	if res.code != 0 {
		return unitState{}, fmt.Errorf("read the state of %s: systemctl show failed (status %d): %s", unit, res.code, res.output())
	}
	var st unitState
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "LoadState":
			st.Load = v
		case "LoadError":
			// `org.freedesktop.systemd1.NoSuchUnit "Unit x.service not found."`; "" when none.
			if _, msg, ok := strings.Cut(v, " "); ok {
				st.LoadError = strings.Trim(msg, `"`)
			}
		case "ActiveState":
			st.Active = v
		case "UnitFileState":
			st.File = v
		}
	}
	if st.Load == "" {
		return st, fmt.Errorf("read the state of %s: systemctl show printed no LoadState: %s", unit, res.output())
	}
	return st, nil
}

// fileState asks `systemctl --root=DIR is-enabled`, which reads only the unit files.
func (sd systemd) fileState(ctx context.Context, unit string) (unitState, error) {
	res, err := sd.systemctl(ctx, "is-enabled", "--", unit)
	if err != nil {
		return unitState{}, fmt.Errorf("read the state of %s: %w", unit, err)
	}
	state := strings.TrimSpace(res.stdout)
	if i := strings.IndexByte(state, '\n'); i >= 0 {
		state = state[:i]
	}
	switch {
	case state == "" && strings.Contains(res.stderr, "No such file or directory"):
		return unitState{Load: "not-found"}, nil
	case state == "":
		return unitState{}, fmt.Errorf("read the state of %s: systemctl is-enabled failed (status %d): %s", unit, res.code, res.output())
	case strings.HasPrefix(state, "masked"):
		return unitState{Load: "masked", File: state}, nil
	}
	return unitState{Load: "loaded", File: state}, nil
}

// isEnabled interprets a unit file state for the enabled attribute: whether the unit is
// enabled, or why enabled cannot be managed (want is the desired value).
func isEnabled(unit, state string, want bool) (bool, error) {
	switch state {
	case "enabled":
		return true, nil
	case "disabled", "linked", "linked-runtime", "enabled-runtime":
		// enabled-runtime lasts until the next boot: not what enabled = true asks for.
		return false, nil
	case "static":
		if want {
			return false, fmt.Errorf("%s cannot be enabled: its unit file has no [Install] section (it is static, started by other units or by activation); leave enabled unset", unit)
		}
		return false, nil
	case "indirect":
		if want {
			return false, fmt.Errorf("%s cannot be enabled itself: its [Install] section only names other units (Also=); manage those, or leave enabled unset", unit)
		}
		return false, nil
	case "masked", "masked-runtime":
		if want {
			return false, fmt.Errorf("%s is masked, so it cannot be enabled; unmask it (systemctl unmask %s) or stop managing it", unit, unit)
		}
		return false, nil
	case "alias":
		return false, fmt.Errorf("%s is an alias of another unit; name the unit itself (systemctl show -p Id %s)", unit, unit)
	case "generated", "transient":
		return false, fmt.Errorf("%s is %s (made by systemd at run time, not from a unit file), so it cannot be enabled or disabled; leave enabled unset", unit, state)
	case "", "bad":
		return false, fmt.Errorf("%s: its unit file cannot be read (state %q); check it with systemd-analyze verify", unit, state)
	}
	return false, fmt.Errorf("%s: unknown unit file state %q", unit, state)
}

// daemonReloadKey marks, in env.Changes, the last time this run reloaded systemd.
const daemonReloadKey = "systemd-daemon-reload"

// unitDirs are the directories systemd reads units from; a change of anything in them (a
// unit, a drop-in, a .wants link) takes effect only after a daemon-reload.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// isUnitPath reports whether p lies in one of the unit directories.
func isUnitPath(p string) bool {
	for _, d := range unitDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// unitFilesChanged returns the unit paths that changed in this run since the last
// daemon-reload, and the position to commit (env.Changes.Commit) once systemd has been
// reloaded. Offline there is nothing to reload: systemd reads the files when it starts.
func (sd systemd) unitFilesChanged(env *Env) ([]string, int) {
	changed, pos := env.Changes.Pending(daemonReloadKey, isUnitPath)
	if !sd.online {
		env.Changes.Commit(daemonReloadKey, pos)
		return nil, pos
	}
	slices.Sort(changed)
	return slices.Compact(changed), pos
}

// daemonReload makes the running systemd re-read its unit files.
func (sd systemd) daemonReload(ctx context.Context) error {
	return sd.do(ctx, "daemon-reload")
}

// reloadIfChanged reloads systemd if unit files changed earlier in the run, or if systemd
// itself says the unit's files changed since it loaded them (NeedDaemonReload: a previous run
// that was interrupted, or a change by hand), and records that as a change (under no-op: that
// it would). The run's mark moves only once the reload succeeded.
func (sd systemd) reloadIfChanged(ctx context.Context, env *Env, res *Result, apply bool, unit string) error {
	changed, pos := sd.unitFilesChanged(env)
	if len(changed) == 0 && sd.online {
		need, err := sd.needsReload(ctx, env, unit)
		if err != nil {
			return err
		}
		if need {
			changed = []string{"the files of " + unit + " changed since systemd loaded them"}
		}
	}
	if len(changed) == 0 {
		return nil
	}
	res.Add("daemon-reload", "", describePaths(changed))
	if !apply {
		env.Changes.Commit(daemonReloadKey, pos) // a plan reports the reload once
		return nil
	}
	if err := sd.daemonReload(ctx); err != nil {
		return err
	}
	env.Changes.Commit(daemonReloadKey, pos)
	return nil
}

// needsReload reports whether systemd has loaded an older version of the unit's files than
// is on disk, or does not know a unit whose file is there.
func (sd systemd) needsReload(ctx context.Context, env *Env, unit string) (bool, error) {
	res, err := sd.systemctl(ctx, "show", "--property=NeedDaemonReload,LoadState", "--", unit)
	if err != nil || res.code != 0 {
		return false, nil // the state read that follows reports what is wrong
	}
	props := map[string]string{}
	for _, l := range strings.Split(res.stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			props[k] = v
		}
	}
	if props["NeedDaemonReload"] == "yes" {
		return true, nil
	}
	if props["LoadState"] == "not-found" {
		for _, d := range unitDirs {
			if info, _ := current(env, path.Join(d, unit)); info != nil {
				return true, nil
			}
		}
	}
	return false, nil
}

// describePaths lists paths for a change line, eliding beyond a few.
func describePaths(paths []string) string {
	const most = 4
	if len(paths) <= most {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:most], ", "), len(paths)-most)
}

// unitSuffixes are the kinds of systemd units.
var unitSuffixes = []string{".service", ".socket", ".timer", ".target", ".path", ".mount", ".automount",
	".swap", ".slice", ".scope", ".device"}

// unitNameRE is what systemd accepts in a unit name (with @ for template instances).
var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+$`)

// checkUnitName validates a unit name as given (with or without its suffix).
func checkUnitName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a unit name cannot be empty")
	case len(name) > 240:
		return fmt.Errorf("%q is too long for a unit name", name)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "."):
		return fmt.Errorf("%q cannot start with %q", name, name[:1])
	case !unitNameRE.MatchString(name):
		return fmt.Errorf("%q is not a unit name (letters, digits and : _ . @ - \\ only)", name)
	}
	return nil
}

// hasUnitSuffix reports whether name ends with a unit kind such as .service.
func hasUnitSuffix(name string) bool {
	return slices.ContainsFunc(unitSuffixes, func(s string) bool { return strings.HasSuffix(name, s) && len(name) > len(s) })
}
