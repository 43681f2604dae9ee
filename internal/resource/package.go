package resource

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/schema"
)

// Package manages a Debian package through apt and dpkg.
//
// Packages are converged in batches (resource.Batcher): the state of every package of the
// catalog is read with one dpkg-query before the run, and all the package changes that the
// dependency graph lets happen together go to apt-get as one transaction. A package that apt
// does not know fails alone: the others of its batch are still applied.
type Package struct {
	base
	Name        string `attr:"name" namevar:"true" doc:"The package name (default: the resource's name)."`
	Ensure      string `attr:"ensure" default:"installed" doc:"installed (any version), latest (the newest available), a version such as \"2.10-3\", absent (removed, configuration kept) or purged (configuration too)."`
	UpdateAge   string `attr:"update_age" default:"24h" format:"duration" doc:"Refresh the package lists (apt-get update) before installing when they are older than this; they are also refreshed when a package is not found."`
	LockTimeout string `attr:"lock_timeout" default:"5m" format:"duration" doc:"How long to wait for another package manager (unattended-upgrades, a technician's apt) to release the dpkg lock."`

	state pkgState
}

var packageDef = definition{
	name:       "package",
	doc:        "A Debian package, installed (a version, or the latest), removed or purged; all of a run's package changes go to apt in as few transactions as the dependency graph allows.",
	proto:      (*Package)(nil),
	uniqueAttr: "name",
	check: func(v schema.Values) []*schema.AttrError {
		if name, ok := v["name"].(string); ok && !debianName.MatchString(name) {
			return []*schema.AttrError{{Attr: "name", Summary: "Invalid package name",
				Detail: fmt.Sprintf("%q is not a Debian package name (lower-case letters, digits, + - and .; no :arch).", name)}}
		}
		if e, ok := v["ensure"].(string); ok && !slices.Contains(packageEnsures, e) && !debianVersion.MatchString(e) {
			return []*schema.AttrError{{Attr: "ensure", Summary: "Invalid ensure",
				Detail: fmt.Sprintf("%q is neither installed, latest, absent, purged nor a version such as \"2.10-3\".", e)}}
		}
		return nil
	},
}

var (
	packageEnsures = []string{"installed", "latest", "absent", "purged"}
	debianName     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	debianVersion  = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)
)

// packageSystem is the package manager packages use.
func packageSystem() packageManager { return apt{} }

// BatchKey implements Batcher: all packages go together.
func (p *Package) BatchKey() string { return "package" }

// Serial implements resource.Serial: one package manager at a time.
func (p *Package) Serial() {}

// CheckApply implements Resource (a batch of one).
func (p *Package) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res, errs := p.CheckApplyBatch(ctx, env, []Resource{p}, apply)
	return res[0], errs[0]
}

// CheckApplyBatch implements Batcher: the state of all members is read with one dpkg-query
// when the batch starts (not before the run: a command or an earlier batch may have changed
// it), their changes go to apt as one transaction, and afterwards every member is read again,
// so that what apt did as a side effect (a dependency installed, a package removed with
// another) is reported, never passed over.
func (p *Package) CheckApplyBatch(ctx context.Context, env *Env, members []Resource, apply bool) ([]*Result, []error) {
	pm := packageSystem()
	pkgs := asPackages(members)
	results := make([]*Result, len(pkgs))
	errs := make([]error, len(pkgs))
	for i := range results {
		results[i] = &Result{}
	}
	failAll := func(err error) ([]*Result, []error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return results, errs
	}
	states, err := pm.Query(ctx, env, packageNames(pkgs))
	if err != nil {
		return failAll(err)
	}
	before := make([]pkgState, len(pkgs))
	for i, q := range pkgs {
		q.state, before[i] = states[q.Name], states[q.Name]
	}
	lockTimeout := maxDuration(pkgs, func(q *Package) string { return q.LockTimeout })

	// What is missing, and what apt would install for it.
	var needCandidate []string
	for _, q := range pkgs {
		if q.Ensure == "latest" || (!q.state.Installed && q.Ensure != "absent" && q.Ensure != "purged") {
			needCandidate = append(needCandidate, q.Name)
		}
	}
	candidates, err := pm.Candidates(ctx, env, needCandidate)
	if err != nil {
		return failAll(err)
	}
	// The lists are refreshed when they are older than update_age, or when they do not know
	// a package to install (it may be new) unless they were refreshed minutes ago (a typo
	// must not cost an apt-get update on every run). A plan does not refresh them.
	updateAge := minDuration(pkgs, func(q *Package) string { return q.UpdateAge })
	age := pm.ListsAge(env)
	unknown := slices.ContainsFunc(needCandidate, func(n string) bool { return candidates[n] == "" })
	var refreshWarnings string
	if apply && len(needCandidate) > 0 && (age > updateAge || (unknown && age > recentRefresh)) {
		if refreshWarnings, err = pm.Refresh(ctx, env, lockTimeout); err != nil {
			return failAll(err)
		}
		if candidates, err = pm.Candidates(ctx, env, needCandidate); err != nil {
			return failAll(err)
		}
	}

	// The changes, member by member.
	var ops []pkgOp
	repair := false
	for i, q := range pkgs {
		op, err := q.plan(candidates, results[i], apply)
		if err != nil && refreshWarnings != "" && candidates[q.Name] == "" {
			err = fmt.Errorf("%w (apt-get update warned: %s)", err, refreshWarnings)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		if op != nil {
			ops = append(ops, *op)
		}
		repair = repair || q.state.Broken
	}
	if !apply || len(ops) == 0 {
		return results, errs
	}
	if repair {
		if err := pm.Repair(ctx, env); err != nil {
			return failAll(err)
		}
	}
	ops = p.refuseCollateralRemovals(ctx, env, pkgs, ops, lockTimeout, errs)

	// One transaction; if it fails for a reason that may concern only some packages, each
	// change alone, so that one bad package does not hold back the others and each failure
	// is reported where it belongs. A lock or a dead mirror concerns them all.
	if len(ops) > 0 {
		if err := pm.Apply(ctx, env, ops, lockTimeout); err != nil {
			var failure *aptFailure
			if len(ops) == 1 || !errors.As(err, &failure) || !failure.perPackage() {
				for _, op := range ops {
					errs[pkgIndex(pkgs, op.Name)] = err
				}
			} else {
				for _, op := range ops {
					if e := pm.Apply(ctx, env, []pkgOp{op}, lockTimeout); e != nil {
						errs[pkgIndex(pkgs, op.Name)] = e
					}
				}
			}
		}
	}

	// Whatever apt said, each member is checked again: the ones it changed, and the ones it
	// changed as a side effect.
	states, err = pm.Query(ctx, env, packageNames(pkgs))
	if err != nil {
		return failAll(err)
	}
	changed := map[string]bool{}
	for _, op := range ops {
		changed[op.Name] = true
	}
	for i, q := range pkgs {
		q.state = states[q.Name]
		switch {
		case errs[i] != nil:
		case changed[q.Name] && !q.satisfied(candidates[q.Name]):
			errs[i] = fmt.Errorf("apt-get finished but %s is %s, not %s", q.Name, q.describe(), q.Ensure)
		case !changed[q.Name] && q.state != before[i] && !q.satisfied(candidates[q.Name]):
			errs[i] = fmt.Errorf("apt changed %s as a side effect of this run's transaction (it is now %s, not %s): it conflicts with another package of the configuration",
				q.Name, q.describe(), q.Ensure)
		case !changed[q.Name] && q.state != before[i]:
			results[i].Note("apt changed it as a side effect of this run's transaction: now %s", q.describe())
		}
	}
	return results, errs
}

// recentRefresh is how fresh the lists must be for a package they do not know to count as
// unknown without refreshing them again.
const recentRefresh = 10 * time.Minute

// refuseCollateralRemovals drops the removals that would make apt remove a package the
// configuration wants installed (A depends on B; B absent, A installed): those fail with a
// message naming the conflict, instead of flip-flopping on every run. It returns the ops left.
func (p *Package) refuseCollateralRemovals(ctx context.Context, env *Env, pkgs []*Package, ops []pkgOp, lockTimeout time.Duration, errs []error) []pkgOp {
	if !slices.ContainsFunc(ops, func(o pkgOp) bool { return o.Action != "install" }) {
		return ops
	}
	removed, err := packageSystem().Removals(ctx, env, ops, lockTimeout)
	if err != nil {
		return ops // the transaction itself will report what is wrong
	}
	var wanted []string
	for _, q := range pkgs {
		if q.Ensure != "absent" && q.Ensure != "purged" && slices.Contains(removed, q.Name) {
			wanted = append(wanted, q.Name)
		}
	}
	if len(wanted) == 0 {
		return ops
	}
	kept := ops[:0:0]
	for _, op := range ops {
		if op.Action == "install" {
			kept = append(kept, op)
			continue
		}
		errs[pkgIndex(pkgs, op.Name)] = fmt.Errorf("not removed: apt would also remove %s, which this configuration wants installed (one of them depends on %s)",
			strings.Join(wanted, ", "), op.Name)
	}
	return kept
}

// plan decides what to do for one package and records the change in res. listsFresh says
// whether a package missing from the lists is unknown for sure, or only until they are
// refreshed (in a plan).
func (p *Package) plan(candidates map[string]string, res *Result, listsFresh bool) (*pkgOp, error) {
	st := p.state
	wantInstalled := p.Ensure != "absent" && p.Ensure != "purged"
	if st.Held && !p.satisfied(candidates[p.Name]) {
		return nil, fmt.Errorf("package %s is held (apt-mark hold) at %s; unhold it or stop managing it", p.Name, p.describe())
	}
	if wantInstalled && !st.Installed || p.Ensure == "latest" {
		if candidates[p.Name] == "" {
			if listsFresh {
				return nil, fmt.Errorf("unknown package %s: apt knows no package of that name (even after refreshing its lists)", p.Name)
			}
			res.Add("ensure", p.describe(), p.Ensure+" (not in the current package lists: apply refreshes them first)")
			return nil, nil
		}
	}
	switch {
	case p.Ensure == "installed" && st.Broken:
		// Left half done by an interrupted dpkg: dpkg --configure -a finishes it before the
		// transaction, which then reinstalls it if that was not enough.
		res.Add("ensure", p.describe(), "installed (finishing what an interrupted dpkg left half done)")
		return &pkgOp{Name: p.Name, Action: "install"}, nil
	case p.Ensure == "installed" && !st.Installed:
		res.Add("ensure", p.describe(), "installed ("+candidates[p.Name]+")")
		return &pkgOp{Name: p.Name, Action: "install"}, nil
	case p.Ensure == "latest" && st.Version != candidates[p.Name]:
		res.Add("version", p.describe(), candidates[p.Name])
		return &pkgOp{Name: p.Name, Action: "install", Version: candidates[p.Name]}, nil
	case wantInstalled && p.Ensure != "installed" && p.Ensure != "latest" && st.Version != p.Ensure:
		res.Add("version", p.describe(), p.Ensure)
		return &pkgOp{Name: p.Name, Action: "install", Version: p.Ensure}, nil
	case p.Ensure == "absent" && (st.Installed || st.Broken):
		res.Add("ensure", p.describe(), "absent")
		return &pkgOp{Name: p.Name, Action: "remove"}, nil
	case p.Ensure == "purged" && (st.Installed || st.Broken || st.ConfigOnly):
		res.Add("ensure", p.describe(), "purged")
		return &pkgOp{Name: p.Name, Action: "purge"}, nil
	}
	return nil, nil
}

// satisfied reports whether the current state is the desired one.
func (p *Package) satisfied(candidate string) bool {
	st := p.state
	switch p.Ensure {
	case "installed":
		return st.Installed
	case "latest":
		return st.Installed && (candidate == "" || st.Version == candidate)
	case "absent":
		return !st.Installed && !st.Broken
	case "purged":
		return !st.Installed && !st.Broken && !st.ConfigOnly
	}
	return st.Installed && st.Version == p.Ensure
}

// describe says what is installed, for changes and messages.
func (p *Package) describe() string {
	switch {
	case p.state.Installed:
		return "installed (" + p.state.Version + ")"
	case p.state.Broken:
		return "half installed (" + p.state.Version + ")"
	case p.state.ConfigOnly:
		return "removed, configuration kept"
	}
	return "absent"
}

func pkgIndex(pkgs []*Package, name string) int {
	return slices.IndexFunc(pkgs, func(q *Package) bool { return q.Name == name })
}

func asPackages(members []Resource) []*Package {
	out := make([]*Package, len(members))
	for i, m := range members {
		out[i] = m.(*Package)
	}
	return out
}

func packageNames(pkgs []*Package) []string {
	names := make([]string, len(pkgs))
	for i, q := range pkgs {
		names[i] = q.Name
	}
	return names
}

func maxDuration(pkgs []*Package, get func(*Package) string) time.Duration {
	var d time.Duration
	for _, q := range pkgs {
		if v, err := time.ParseDuration(get(q)); err == nil && v > d {
			d = v
		}
	}
	return d
}

func minDuration(pkgs []*Package, get func(*Package) string) time.Duration {
	d := time.Duration(1 << 62)
	for _, q := range pkgs {
		if v, err := time.ParseDuration(get(q)); err == nil && v < d {
			d = v
		}
	}
	return d
}

// String names the package for messages.
func (p *Package) String() string { return "package " + strings.TrimSpace(p.Name) }

var (
	_ Batcher = (*Package)(nil)
	_ Serial  = (*Package)(nil)
)
