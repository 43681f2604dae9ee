package resource

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// Timer is a scheduled job: a systemd timer unit and the oneshot service it starts, both
// written to /etc/systemd/system, the timer enabled and started.
//
// Satchel schedules jobs with systemd timers rather than cron because of where it runs.
// School servers are switched off at night and over holidays: with Persistent=true a job
// whose time passed while the machine was off runs soon after it boots, where cron would
// silently skip it. A job's output and exit status go to the journal (journalctl -u NAME),
// not to a mail nobody reads. RandomizedDelaySec spreads a fleet's jobs over a window, so a
// thousand servers do not reach the central office in the same second. And a job never
// overlaps itself: a timer does not start its service again while the last run is going.
//
// The unit files are rendered deterministically from the attributes, replaced atomically
// (the old content kept in the backup store) and shown as a diff. When systemd runs, the
// timer is enabled and started (`systemctl enable --now`) after a daemon-reload; without a
// running systemd (--root, an image) it is only enabled, through `systemctl --root`.
type Timer struct {
	base
	Name            string  `attr:"name" namevar:"true" doc:"Names the units NAME.timer and NAME.service, under /etc/systemd/system (default: the resource's name)."`
	Command         string  `attr:"command" doc:"The job: a shell command, run by /bin/sh -c, as written (quoted for systemd). Unit files are world-readable, so read secrets from a file rather than writing them here. Required unless ensure is absent."`
	OnCalendar      string  `attr:"on_calendar" doc:"When to run: a systemd calendar expression such as \"daily\", \"Mon..Fri 07:30\" or \"*-*-* 02:00:00\" (systemd.time(7); check one with systemd-analyze calendar). Required unless ensure is absent."`
	Persistent      bool    `attr:"persistent" default:"true" doc:"Run a job whose time passed while the machine was off soon after it boots (school servers are switched off at night)."`
	RandomizedDelay *string `attr:"randomized_delay" format:"duration" doc:"Delay each run by a random time up to this long, so that a fleet's servers do not all start the job at once."`
	User            *string `attr:"user" format:"account" refers:"user" doc:"Run the job as this user (default: root). It must exist when the timer is applied."`
	Description     *string `attr:"description" doc:"One line describing the job, shown by systemctl and in the journal (default: \"NAME (scheduled by Satchel)\")."`
	Ensure          string  `attr:"ensure" default:"present" enum:"present,absent" doc:"present: both units exist and the timer is enabled and, when systemd runs, active; absent: the timer is stopped and disabled and both units are removed."`
}

var timerDef = definition{
	name:       "timer",
	doc:        "A scheduled job as a systemd timer and service pair: runs missed while the machine was off are caught up at boot, output goes to the journal, and a random delay spreads a fleet's load.",
	proto:      (*Timer)(nil),
	uniqueAttr: "name",
	check:      checkTimer,
}

// timerUnitDir is where the timer's units are written.
const timerUnitDir = "/etc/systemd/system"

var timerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:_.-]*$`)

func checkTimer(v schema.Values) []*schema.AttrError {
	bad := func(attr, summary, detail string) []*schema.AttrError {
		return []*schema.AttrError{{Attr: attr, Summary: summary, Detail: detail}}
	}
	if name, ok := v["name"].(string); ok {
		switch {
		case !timerNameRE.MatchString(name) || len(name) > 200:
			return bad("name", "Invalid timer name", fmt.Sprintf("%q cannot name a unit: use letters, digits and : _ . - (starting with a letter or digit), at most 200.", name))
		case strings.HasSuffix(name, ".timer") || strings.HasSuffix(name, ".service"):
			return bad("name", "Invalid timer name", fmt.Sprintf("%q: give the name without a suffix; the units are NAME.timer and NAME.service.", name))
		}
	}
	if v["ensure"] != "absent" {
		for _, attr := range []string{"command", "on_calendar"} {
			if s, _ := v[attr].(string); strings.TrimSpace(s) == "" {
				return bad(attr, "Missing "+attr, "a timer that is present needs "+attr+".")
			}
		}
	}
	for _, attr := range []string{"on_calendar", "description"} {
		if s, ok := v[attr].(string); ok && (strings.ContainsFunc(s, isControl) || strings.HasSuffix(s, `\`)) {
			return bad(attr, "Invalid "+attr, attr+" must be one line, without control characters or a final backslash.")
		}
	}
	if s, ok := v["command"].(string); ok && strings.ContainsRune(s, 0) {
		return bad("command", "Invalid command", "command must not contain a NUL character.")
	}
	if s, ok := v["user"].(string); ok && strings.ContainsFunc(s, func(r rune) bool { return r == ' ' || isControl(r) }) {
		return bad("user", "Invalid user", fmt.Sprintf("%q is not a user name or number.", s))
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// paths returns where the service and the timer unit are written.
func (t *Timer) paths() (service, timer string) {
	return path.Join(timerUnitDir, t.Name+".service"), path.Join(timerUnitDir, t.Name+".timer")
}

// ManagedPaths implements PathManager: a purging /etc/systemd/system keeps the two units,
// and the engine records them as changed for the next daemon-reload.
func (t *Timer) ManagedPaths() []string {
	s, tm := t.paths()
	return []string{tm, s}
}

// unitHeader opens both unit files.
const unitHeader = "# Managed by Satchel: changes made here are overwritten.\n"

func (t *Timer) description() string {
	if t.Description != nil && *t.Description != "" {
		return *t.Description
	}
	return t.Name + " (scheduled by Satchel)"
}

// serviceUnit renders NAME.service.
func (t *Timer) serviceUnit() []byte {
	var b strings.Builder
	b.WriteString(unitHeader)
	b.WriteString("[Unit]\n")
	b.WriteString("Description=" + escapeSpecifiers(t.description()) + "\n")
	b.WriteString("\n[Service]\n")
	b.WriteString("Type=oneshot\n")
	if t.User != nil {
		b.WriteString("User=" + escapeSpecifiers(*t.User) + "\n")
	}
	b.WriteString("ExecStart=/bin/sh -c " + quoteExecArg(t.Command) + "\n")
	return []byte(b.String())
}

// timerUnit renders NAME.timer.
func (t *Timer) timerUnit() []byte {
	var b strings.Builder
	b.WriteString(unitHeader)
	b.WriteString("[Unit]\n")
	b.WriteString("Description=" + escapeSpecifiers(t.description()) + "\n")
	b.WriteString("\n[Timer]\n")
	b.WriteString("OnCalendar=" + escapeSpecifiers(strings.TrimSpace(t.OnCalendar)) + "\n")
	fmt.Fprintf(&b, "Persistent=%t\n", t.Persistent)
	if t.RandomizedDelay != nil {
		d, _ := time.ParseDuration(*t.RandomizedDelay) // validated by the schema
		b.WriteString("RandomizedDelaySec=" + systemdTimespan(d) + "\n")
	}
	b.WriteString("\n[Install]\n")
	b.WriteString("WantedBy=timers.target\n")
	return []byte(b.String())
}

// escapeSpecifiers protects a value from systemd's %-specifier expansion.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// quoteExecArg quotes s as one argument of an Exec= line: within double quotes systemd
// undoes C escapes, so backslashes, quotes and control characters (a multi-line script's
// newlines) are escaped; % is doubled against specifier expansion and $ against
// environment variable substitution.
func quoteExecArg(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		default:
			if isControl(r) {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// systemdTimespan writes d as systemd.time(7) does: "1h 30min", "45s", "1500ms".
func systemdTimespan(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	var parts []string
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"min", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.d
		}
	}
	if len(parts) == 0 {
		return "1us" // below systemd's resolution
	}
	return strings.Join(parts, " ")
}

// unitFile is one of the two files: where, what it should hold, what it holds.
type unitFile struct {
	path    string
	desired []byte
	info    *fsroot.Info // nil if absent
	current []byte       // content of a regular file
}

func (u *unitFile) differs() bool {
	return u.info == nil || !u.info.IsRegular() || !bytes.Equal(u.current, u.desired) || permBits(u.info.Mode) != 0o644
}

// secret reports whether the units hold a sensitive value, so that no diff shows them.
func (t *Timer) secret() bool {
	for _, a := range []string{"command", "on_calendar", "user", "description"} {
		if t.isSensitive(a) {
			return true
		}
	}
	return false
}

// describe summarises a unit's content for a change line.
func (t *Timer) describe(info *fsroot.Info, content []byte) string {
	switch {
	case info == nil:
		return "absent"
	case !info.IsRegular():
		return kindOf(info)
	case t.secret():
		return Redacted
	}
	return fmt.Sprintf("%d bytes, sha256 %s", len(content), textdiff.ShortHash(content))
}

// readUnit looks at one unit file.
func readUnit(env *Env, p string, desired []byte) (*unitFile, error) {
	u := &unitFile{path: p, desired: desired}
	info, err := current(env, p)
	if err != nil {
		return nil, err
	}
	u.info = info
	switch {
	case info == nil:
	case info.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a unit file", env.Root.HostPath(p))
	case info.IsRegular():
		if u.current, err = env.Root.ReadFile(p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// CheckApply implements Resource.
func (t *Timer) CheckApply(ctx context.Context, env *Env, apply bool) (_ *Result, err error) {
	res := &Result{}
	defer func() {
		// This resource reloads systemd itself; the engine records its units as changed
		// once it returns, which must not make the next service reload again.
		if apply && err == nil && res.Changed() {
			env.Changes.Handled(daemonReloadKey, t.ManagedPaths()...)
		}
	}()
	sd := newSystemd(env)
	servicePath, timerPath := t.paths()
	var files []*unitFile
	for _, f := range []struct {
		path    string
		desired []byte
	}{{servicePath, t.serviceUnit()}, {timerPath, t.timerUnit()}} {
		u, err := readUnit(env, f.path, f.desired)
		if err != nil {
			return res, err
		}
		files = append(files, u)
	}
	if err := t.checkOwnership(env, files); err != nil {
		return res, err
	}
	if t.Ensure == "absent" {
		return res, t.remove(ctx, env, sd, files, res, apply)
	}
	if err := checkCalendar(ctx, t.OnCalendar); err != nil {
		return res, err
	}

	// The files.
	var write []*unitFile
	var parents []string
	if files[0].info == nil && files[1].info == nil {
		res.Add("ensure", "absent", "present")
		var err error
		if parents, err = addParents(env, servicePath, res); err != nil {
			return res, err
		}
		write = files
	} else {
		for _, u := range files {
			if !u.differs() {
				continue
			}
			write = append(write, u)
			if u.info.IsRegular() && bytes.Equal(u.current, u.desired) {
				res.Add(u.path, "mode "+formatMode(permBits(u.info.Mode)), "mode 0644")
				continue
			}
			res.Add(u.path, t.describe(u.info, u.current), t.describe(&fsroot.Info{Mode: 0o644}, u.desired))
		}
	}
	if !t.secret() {
		var diff strings.Builder
		for _, u := range write {
			diff.WriteString(textdiff.Unified(u.path, u.current, u.desired))
		}
		res.Diff = diff.String()
	}

	// The timer's state.
	timerUnit := t.Name + ".timer"
	st, err := sd.state(ctx, timerUnit)
	if err != nil {
		return res, err
	}
	if (st.Load == "bad-setting" || st.Load == "error") && len(write) == 0 {
		return res, fmt.Errorf("%s cannot be loaded: %s; check it with systemd-analyze verify %s", timerUnit, strings.TrimSuffix(st.LoadError, "."), timerUnit)
	}
	enabled := false
	if st.Load != "not-found" {
		if enabled, err = isEnabled(timerUnit, st.File, true); err != nil {
			return res, err
		}
	}
	if !enabled {
		res.Add("enabled", "false", "true")
	}
	active := st.running()
	if sd.online && !active {
		res.Add("active", "false", "true")
	} else if !sd.online {
		res.Note("active: %s", sd.offlineReason())
	}
	others, pending := sd.unitFilesChanged(env)
	if len(others) > 0 {
		res.Add("daemon-reload", "", describePaths(others))
	}
	if !apply || !res.Changed() {
		return res, nil
	}

	// Apply.
	if t.User != nil && env.Accounts != nil {
		if _, err := env.Accounts.UID(*t.User); err != nil {
			return res, fmt.Errorf("run as %s: %w", *t.User, err)
		}
	}
	if err := makeParents(env, parents); err != nil {
		return res, err
	}
	timerChanged := false
	for _, u := range write {
		if u.info != nil && u.info.IsRegular() {
			if err := saveBackup(env, u.path, u.info, "replaced by "+t.address); err != nil {
				return res, err
			}
		}
		if err := writeAtomic(env.Root, u.path, bytes.NewReader(u.desired), 0o644, -1, -1); err != nil {
			return res, err
		}
		timerChanged = timerChanged || u.path == timerPath
	}
	if !sd.online {
		if !enabled {
			return res, sd.do(ctx, "enable", "--", timerUnit)
		}
		return res, nil
	}
	if len(write) > 0 || len(others) > 0 {
		if err := sd.daemonReload(ctx); err != nil {
			return res, err
		}
		env.Changes.Commit(daemonReloadKey, pending)
	}
	switch {
	case !enabled && !active:
		return res, sd.do(ctx, "enable", "--now", "--", timerUnit)
	case !enabled:
		if err := sd.do(ctx, "enable", "--", timerUnit); err != nil {
			return res, err
		}
	case !active:
		return res, sd.do(ctx, "start", "--", timerUnit)
	}
	if timerChanged {
		// Restart a running timer so that its new schedule (or delay) takes effect now.
		return res, sd.do(ctx, "restart", "--", timerUnit)
	}
	return res, nil
}

// vendorUnitDirs are where packages put their units.
var vendorUnitDirs = []string{"/lib/systemd/system", "/usr/lib/systemd/system"}

// checkOwnership refuses to take over units Satchel did not write: a timer named "ssh" must
// not replace (or, when absent, delete) the packaged ssh.service. Satchel's own units start
// with its header.
func (t *Timer) checkOwnership(env *Env, files []*unitFile) error {
	for _, u := range files {
		if u.info != nil && (!u.info.IsRegular() || !bytes.HasPrefix(u.current, []byte(unitHeader))) {
			return fmt.Errorf("%s exists and was not written by Satchel: a timer named %q would replace it; give the timer another name (or remove that file if it is a leftover)",
				env.Root.HostPath(u.path), t.Name)
		}
	}
	for _, unit := range []string{t.Name + ".service", t.Name + ".timer"} {
		for _, d := range vendorUnitDirs {
			if info, _ := current(env, path.Join(d, unit)); info != nil {
				return fmt.Errorf("a unit %s is installed by a package (%s): a timer named %q would override it; give the timer another name",
					unit, env.Root.HostPath(path.Join(d, unit)), t.Name)
			}
		}
	}
	return nil
}

// checkCalendar asks systemd-analyze, where it is installed, whether expr is a calendar
// expression, so that a plan reports a bad one rather than systemd failing to start the
// timer.
func checkCalendar(ctx context.Context, expr string) error {
	if _, err := lookPath("systemd-analyze", baseEnv); err != nil {
		return nil
	}
	res, err := command{argv: []string{"systemd-analyze", "calendar", "--", strings.TrimSpace(expr)}, timeout: 30 * time.Second}.run(ctx)
	if err != nil || res.code == 0 {
		return nil // if the checker itself cannot run, systemd will say
	}
	return fmt.Errorf("on_calendar %q is not a systemd calendar expression (systemd-analyze says: %s); see systemd.time(7)", expr, lastLines(res.output(), 3))
}

// wantsLink is the link `systemctl enable` makes for the timer.
func (t *Timer) wantsLink() string {
	return path.Join(timerUnitDir, "timers.target.wants", t.Name+".timer")
}

// remove stops and disables the timer and removes both units.
func (t *Timer) remove(ctx context.Context, env *Env, sd systemd, files []*unitFile, res *Result, apply bool) error {
	// A running job (the service) is left to finish; it is not started again.
	link, err := current(env, t.wantsLink())
	if err != nil {
		return err
	}
	if files[0].info == nil && files[1].info == nil && link == nil {
		return nil
	}
	res.Add("ensure", "present", "absent")
	if !t.secret() {
		var diff strings.Builder
		for _, u := range files {
			if u.info != nil && u.info.IsRegular() {
				diff.WriteString(textdiff.Unified(u.path, u.current, nil))
			}
		}
		res.Diff = diff.String()
	}
	if !apply {
		return nil
	}
	timerUnit := t.Name + ".timer"
	if files[1].info != nil {
		st, err := sd.state(ctx, timerUnit)
		if err != nil {
			return err
		}
		if st.Load != "not-found" {
			if sd.online && !st.stopped() {
				if err := sd.do(ctx, "stop", "--", timerUnit); err != nil {
					return err
				}
			}
			if enabled, _ := isEnabled(timerUnit, st.File, false); enabled {
				if err := sd.do(ctx, "disable", "--", timerUnit); err != nil {
					return err
				}
			}
		}
	}
	for _, u := range files {
		if u.info == nil {
			continue
		}
		if u.info.IsRegular() {
			if err := saveBackup(env, u.path, u.info, "removed by "+t.address); err != nil {
				return err
			}
		}
		if err := removeDurably(env.Root, u.path); err != nil {
			return err
		}
	}
	// A link left behind (the units were deleted by hand) would dangle.
	if link, err := current(env, t.wantsLink()); err != nil {
		return err
	} else if link != nil && link.IsSymlink() {
		if err := removeDurably(env.Root, t.wantsLink()); err != nil {
			return err
		}
	}
	_, pending := sd.unitFilesChanged(env) // the reload below covers whatever else changed
	if sd.online {
		if err := sd.daemonReload(ctx); err != nil {
			return err
		}
		env.Changes.Commit(daemonReloadKey, pending)
	}
	return nil
}

// Serial implements resource.Serial: one systemctl at a time.
func (t *Timer) Serial() {}

var (
	_ Resource    = (*Timer)(nil)
	_ PathManager = (*Timer)(nil)
	_ Serial      = (*Timer)(nil)
)
