package resource

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// packageManager is what the package type needs of a package system. apt (Debian, Ubuntu)
// is the one implemented; dnf/rpm would be another.
type packageManager interface {
	// Query returns the installed state of the named packages, in one call.
	Query(ctx context.Context, env *Env, names []string) (map[string]pkgState, error)
	// Candidates returns, in one call, the version that would be installed for each name;
	// a name the package lists do not know is absent from the map.
	Candidates(ctx context.Context, env *Env, names []string) (map[string]string, error)
	// ListsAge returns how long ago the package lists were refreshed (a large value if never).
	ListsAge(env *Env) time.Duration
	// Refresh refreshes the package lists. It returns the warnings of a refresh that
	// partly failed (a mirror unreachable) but left usable lists.
	Refresh(ctx context.Context, env *Env, lockTimeout time.Duration) (warnings string, err error)
	// Removals returns the packages a transaction of ops would remove (to refuse one that
	// would take a wanted package with it).
	Removals(ctx context.Context, env *Env, ops []pkgOp, lockTimeout time.Duration) ([]string, error)
	// Apply performs the operations, in as few transactions as the package system allows.
	// Once the package system starts changing the machine it is never killed: an interrupted
	// run waits for it.
	Apply(ctx context.Context, env *Env, ops []pkgOp, lockTimeout time.Duration) error
	// Repair finishes what an interrupted package system left half done.
	Repair(ctx context.Context, env *Env) error
}

// pkgState is what is installed of one package.
type pkgState struct {
	Installed  bool   // unpacked and configured
	Broken     bool   // half installed or configured: an interrupted dpkg left it so
	ConfigOnly bool   // removed, its configuration files left ("rc")
	Held       bool   // apt-mark hold
	Version    string // installed (or half-installed) version, or ""
}

// pkgOp is one change to make.
type pkgOp struct {
	Name    string
	Action  string // "install", "remove" or "purge"
	Version string // for install: a specific version, or "" for the candidate
}

func (o pkgOp) String() string {
	if o.Version != "" {
		return o.Action + " " + o.Name + "=" + o.Version
	}
	return o.Action + " " + o.Name
}

// apt drives dpkg-query, apt-cache and apt-get.
type apt struct{}

// aptEnv makes apt and dpkg non-interactive and keep existing configuration files.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none", "NEEDRESTART_MODE=a", "UCF_FORCE_CONFFOLD=1"}

func (apt) Query(ctx context.Context, env *Env, names []string) (map[string]pkgState, error) {
	states := make(map[string]pkgState, len(names))
	if len(names) == 0 {
		return states, nil
	}
	argv := inRoot(env, append([]string{"dpkg-query", "-W", "-f=${Package}\t${Status}\t${Version}\n", "--"}, names...)...)
	res, err := command{argv: argv, timeout: time.Minute}.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("read installed packages: %w", err)
	}
	// dpkg-query exits 1 when some names match nothing; those are simply not installed.
	if res.code > 1 {
		return nil, fmt.Errorf("read installed packages: dpkg-query exited with status %d: %s", res.code, res.output())
	}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			continue
		}
		name, status, version := f[0], strings.Fields(f[1]), f[2]
		if len(status) != 3 {
			continue
		}
		st := pkgState{Held: status[0] == "hold"}
		switch status[2] {
		case "installed":
			st.Installed, st.Version = true, version
		case "half-configured", "unpacked", "triggers-awaited", "triggers-pending", "half-installed":
			st.Broken, st.Version = true, version
		case "config-files":
			st.ConfigOnly = true
		}
		if prev, ok := states[name]; ok && prev.Installed && !st.Installed {
			continue // another architecture of the same name is the installed one
		}
		states[name] = st
	}
	return states, nil
}

func (apt) Candidates(ctx context.Context, env *Env, names []string) (map[string]string, error) {
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	res, err := command{argv: inRoot(env, append([]string{"apt-cache", "policy", "--"}, names...)...), timeout: time.Minute}.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("read package candidates: %w", err)
	}
	if res.code != 0 {
		return nil, fmt.Errorf("read package candidates: apt-cache exited with status %d: %s", res.code, res.output())
	}
	var current string
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			current = strings.TrimSuffix(line, ":")
			if i := strings.IndexByte(current, ':'); i >= 0 && !slices.Contains(names, current) {
				current = current[:i] // "hello:amd64" asked as "hello"
			}
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok && current != "" && v != "(none)" {
			out[current] = v
		}
	}
	return out, nil
}

// updateStamp is touched after every successful refresh, as Debian's daily apt job does: apt
// leaves a list file alone when the mirror's copy has not changed, so the lists' own times
// can be old right after a refresh.
const updateStamp = "/var/lib/apt/periodic/update-success-stamp"

func (apt) ListsAge(env *Env) time.Duration {
	var newest time.Time
	if info, err := env.Root.Lstat(updateStamp); err == nil {
		newest = info.Mtime
	}
	names, err := env.Root.ReadDir("/var/lib/apt/lists")
	if err != nil && newest.IsZero() {
		return 1 << 62
	}
	for _, n := range names {
		if !strings.HasSuffix(n, "_Packages") && !strings.HasSuffix(n, "Release") {
			continue
		}
		if info, err := env.Root.Lstat(path.Join("/var/lib/apt/lists", n)); err == nil && info.Mtime.After(newest) {
			newest = info.Mtime
		}
	}
	if newest.IsZero() {
		return 1 << 62
	}
	return time.Since(newest)
}

func (apt) Refresh(ctx context.Context, env *Env, lockTimeout time.Duration) (string, error) {
	argv := inRoot(env, "apt-get", "-q", "-o", lockOption(lockTimeout), "update")
	// DPkg::Lock::Timeout does not cover the lists' own lock, which apt's daily job holds
	// right after a school server boots: wait for it here, up to the same timeout.
	deadline := time.Now().Add(lockTimeout)
	var res *commandResult
	for {
		var err error
		res, err = command{argv: argv, env: aptEnv, timeout: lockTimeout + 10*time.Minute}.run(ctx)
		if err != nil {
			return "", fmt.Errorf("refresh package lists: %w", err)
		}
		if res.code == 0 && !strings.Contains(res.stderr, "E: ") {
			break
		}
		failure := aptError("refresh package lists (apt-get update)", res, lockTimeout)
		if failure.kind != aptLocked || time.Now().After(deadline) {
			return "", failure
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("refresh package lists: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
	// apt-get update exits 0 with "W: Failed to fetch" when a mirror is unreachable: the
	// lists of the other sources are fresh, but a package may be missing because of it.
	var warnings []string
	for _, l := range strings.Split(res.stderr, "\n") {
		if strings.HasPrefix(l, "W: ") {
			warnings = append(warnings, strings.TrimSpace(l))
		}
	}
	if len(warnings) == 0 {
		if err := touch(env, updateStamp); err != nil {
			return "", fmt.Errorf("refresh package lists: %w", err)
		}
	}
	return strings.Join(warnings, "; "), nil
}

// touch creates or updates an empty marker file inside the root.
func touch(env *Env, p string) error {
	if err := makeParents(env, mustMissingParents(env, p)); err != nil {
		return err
	}
	f, err := env.Root.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	now := time.Now()
	err = f.Close()
	if err == nil {
		err = os.Chtimes(f.Name(), now, now)
	}
	return err
}

func mustMissingParents(env *Env, p string) []string {
	missing, _ := missingParents(env, p)
	return missing
}

// transactions turns operations into apt-get install argument lists: one transaction
// installs, upgrades, downgrades and removes ("name-"); purging needs --purge, which applies to
// every removal of its transaction, so plain removals and purges share one only when there
// are no plain removals.
func transactions(ops []pkgOp) [][]string {
	var installs, removes, purges []string
	for _, o := range ops {
		switch o.Action {
		case "install":
			if o.Version != "" {
				installs = append(installs, o.Name+"="+o.Version)
			} else {
				installs = append(installs, o.Name)
			}
		case "remove":
			removes = append(removes, o.Name+"-")
		case "purge":
			purges = append(purges, o.Name+"-")
		}
	}
	switch {
	case len(removes) > 0 && len(purges) > 0:
		return [][]string{append(slices.Clone(installs), removes...), append([]string{"--purge"}, purges...)}
	case len(purges) > 0:
		return [][]string{append([]string{"--purge"}, append(slices.Clone(installs), purges...)...)}
	}
	return [][]string{append(slices.Clone(installs), removes...)}
}

func aptInstall(lockTimeout time.Duration, extra ...string) []string {
	return append([]string{"apt-get", "-y", "-q", "-o", lockOption(lockTimeout),
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
		"--allow-downgrades"}, extra...)
}

func (apt) Removals(ctx context.Context, env *Env, ops []pkgOp, lockTimeout time.Duration) ([]string, error) {
	var removed []string
	for _, t := range transactions(ops) {
		argv := inRoot(env, append(aptInstall(lockTimeout, "--simulate", "install"), t...)...)
		res, err := command{argv: argv, env: aptEnv, timeout: time.Minute}.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("apt-get --simulate: %w", err)
		}
		if res.code != 0 {
			return nil, aptError("apt-get --simulate install "+strings.Join(t, " "), res, lockTimeout)
		}
		for _, l := range strings.Split(res.stdout, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && (f[0] == "Remv" || f[0] == "Purg") {
				removed = append(removed, f[1])
			}
		}
	}
	return removed, nil
}

func (a apt) Apply(ctx context.Context, env *Env, ops []pkgOp, lockTimeout time.Duration) error {
	for _, t := range transactions(ops) {
		// Downloads first, interruptible and under a timeout (a rural link may take long,
		// and a cut one must not hang the run); then the transaction itself, from the
		// downloaded files, which is never killed half-way.
		argv := inRoot(env, append(aptInstall(lockTimeout, "--download-only", "install"), t...)...)
		res, err := command{argv: argv, env: aptEnv, timeout: lockTimeout + 2*time.Hour}.run(ctx)
		if err != nil {
			return fmt.Errorf("download packages: %w", err)
		}
		if res.code != 0 {
			return aptError("apt-get install --download-only "+strings.Join(t, " "), res, lockTimeout)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("apt-get install %s: not started: the run was interrupted", strings.Join(t, " "))
		}
		for attempt := 0; ; attempt++ {
			argv = inRoot(env, append(aptInstall(lockTimeout, "install"), t...)...)
			res, err = command{argv: argv, env: aptEnv, mustFinish: true}.run(ctx)
			if err != nil {
				return fmt.Errorf("apt-get install: %w", err)
			}
			if res.code == 0 {
				break
			}
			failure := aptError("apt-get install "+strings.Join(t, " "), res, lockTimeout)
			if failure.kind != aptInterrupted || attempt > 0 {
				return failure
			}
			if err := a.Repair(ctx, env); err != nil { // a previous run was cut off in dpkg
				return err
			}
		}
	}
	return nil
}

func (apt) Repair(ctx context.Context, env *Env) error {
	res, err := command{argv: inRoot(env, "dpkg", "--configure", "-a"), env: aptEnv, mustFinish: true}.run(ctx)
	if err != nil {
		return fmt.Errorf("dpkg --configure -a: %w", err)
	}
	if res.code != 0 {
		return fmt.Errorf("an interrupted dpkg left packages half installed, and dpkg --configure -a failed (status %d): %s", res.code, lastLines(res.output(), 5))
	}
	return nil
}

func lockOption(timeout time.Duration) string {
	return fmt.Sprintf("DPkg::Lock::Timeout=%d", int(timeout.Seconds()))
}

// Kinds of apt failure: which ones concern one package (worth retrying the others alone) and
// which concern them all.
const (
	aptUnknown     = "unknown package"
	aptLocked      = "lock"
	aptHeld        = "held"
	aptBroken      = "dependencies"
	aptNetwork     = "network"
	aptInterrupted = "interrupted"
	aptOther       = "other"
)

// aptFailure is an apt error that says in plain words what went wrong.
type aptFailure struct {
	kind string
	msg  string
}

func (f *aptFailure) Error() string { return f.msg }

// perPackage reports whether the failure may concern only some packages of a transaction.
func (f *aptFailure) perPackage() bool {
	return f.kind != aptLocked && f.kind != aptNetwork && f.kind != aptInterrupted
}

// aptError turns apt's output into an error that says in plain words what went wrong, with
// apt's own E: lines attached.
func aptError(what string, res *commandResult, lockTimeout time.Duration) *aptFailure {
	out := res.stdout + "\n" + res.stderr
	var apts []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			apts = append(apts, strings.TrimSpace(l))
		}
	}
	says := strings.Join(apts, "; ")
	if says == "" {
		says = lastLines(strings.TrimSpace(out), 5)
	}
	var why, kind string
	switch {
	case unknownRE.MatchString(out):
		kind, why = aptUnknown, "unknown package "+strings.Join(unknownPackages(out), ", ")
	case strings.Contains(out, "dpkg was interrupted"):
		kind, why = aptInterrupted, "an earlier dpkg run was interrupted and left packages half installed"
	case strings.Contains(out, "/var/lib/apt/lists/lock"):
		kind, why = aptLocked, fmt.Sprintf("another apt (apt-daily, a technician) held the package lists' lock for more than %s", lockTimeout)
	case strings.Contains(out, "Could not get lock") || strings.Contains(out, "Unable to acquire the dpkg frontend lock"):
		kind, why = aptLocked, fmt.Sprintf("another package manager (apt, unattended-upgrades) held the dpkg lock for more than %s", lockTimeout)
	case strings.Contains(out, "Held packages were changed"):
		kind, why = aptHeld, "a held package would have to change (apt-mark unhold it, or leave it alone)"
	case strings.Contains(out, "unmet dependencies") || strings.Contains(out, "held broken packages") || strings.Contains(out, "Unable to correct problems"):
		kind, why = aptBroken, "broken dependencies"
	case strings.Contains(out, "Temporary failure resolving") || strings.Contains(out, "Could not resolve") ||
		strings.Contains(out, "Failed to fetch") || strings.Contains(out, "Unable to fetch") || strings.Contains(out, "Network is unreachable"):
		kind, why = aptNetwork, "the package mirror cannot be reached (no network?)"
	default:
		kind, why = aptOther, fmt.Sprintf("exited with status %d", res.code)
	}
	return &aptFailure{kind: kind, msg: fmt.Sprintf("%s: %s; apt says: %s", what, why, says)}
}

var unknownRE = regexp.MustCompile(`Unable to locate package (\S+)`)

func unknownPackages(out string) []string {
	var names []string
	for _, m := range unknownRE.FindAllStringSubmatch(out, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

var _ packageManager = apt{}
