package resource

import (
	"context"
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

	state      pkgState
	prefetched bool
}

var packageDef = definition{
	name:       "package",
	doc:        "A Debian package, installed (a version, or the latest), removed or purged; all of a run's package changes go to apt in as few transactions as the dependency graph allows.",
	proto:      (*Package)(nil),
	uniqueAttr: "name",
	check: func(v schema.Values) []*schema.AttrError {
		if name, ok := v["name"].(string); ok && !debianName.MatchString(name) {
			return []*schema.AttrError{{Attr: "name", Summary: "Invalid package name",
				Detail: fmt.Sprintf("%q is not a Debian package name (lower-case letters, digits, + - . and an optional :arch).", name)}}
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
	debianName     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)
	debianVersion  = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)
)

// packageSystem is the package manager packages use.
func packageSystem() packageManager { return apt{} }

// BatchKey implements Batcher: all packages go together.
func (p *Package) BatchKey() string { return "package" }

// Serial implements resource.Serial: one package manager at a time.
func (p *Package) Serial() {}

// Prefetch implements Prefetcher: one dpkg-query for every package of the catalog.
func (p *Package) Prefetch(ctx context.Context, env *Env, members []Resource) error {
	pkgs := asPackages(members)
	states, err := packageSystem().Query(ctx, env, packageNames(pkgs))
	if err != nil {
		return err
	}
	for _, q := range pkgs {
		q.state, q.prefetched = states[q.Name], true
	}
	return nil
}

// CheckApply implements Resource (a batch of one).
func (p *Package) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res, errs := p.CheckApplyBatch(ctx, env, []Resource{p}, apply)
	return res[0], errs[0]
}

// CheckApplyBatch implements Batcher.
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
	if !pkgs[0].prefetched {
		if err := p.Prefetch(ctx, env, members); err != nil {
			return failAll(err)
		}
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
	// a package to install (it may be new). A plan does not refresh them.
	updateAge := minDuration(pkgs, func(q *Package) string { return q.UpdateAge })
	stale := pm.ListsAge(env) > updateAge
	unknown := slices.ContainsFunc(needCandidate, func(n string) bool { return candidates[n] == "" })
	var refreshWarnings string
	if apply && len(needCandidate) > 0 && (stale || unknown) {
		if refreshWarnings, err = pm.Refresh(ctx, env, lockTimeout); err != nil {
			return failAll(err)
		}
		if candidates, err = pm.Candidates(ctx, env, needCandidate); err != nil {
			return failAll(err)
		}
	}

	// The changes, member by member.
	var ops []pkgOp
	opOf := map[string]int{}
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
			opOf[q.Name] = len(ops)
			ops = append(ops, *op)
		}
	}
	if !apply || len(ops) == 0 {
		return results, errs
	}

	// One transaction; if it fails, each change alone, so that one bad package does not
	// hold back the others and each failure is reported where it belongs.
	if err := pm.Apply(ctx, env, ops, lockTimeout); err != nil {
		if len(ops) == 1 {
			errs[pkgIndex(pkgs, ops[0].Name)] = err
		} else {
			for _, op := range ops {
				if e := pm.Apply(ctx, env, []pkgOp{op}, lockTimeout); e != nil {
					errs[pkgIndex(pkgs, op.Name)] = e
				}
			}
		}
	}

	// Whatever apt said, check that each package is now as desired.
	states, err := pm.Query(ctx, env, packageNames(pkgs))
	if err != nil {
		return failAll(err)
	}
	for i, q := range pkgs {
		if _, changed := opOf[q.Name]; !changed || errs[i] != nil {
			continue
		}
		q.state = states[q.Name]
		if !q.satisfied(candidates[q.Name]) {
			errs[i] = fmt.Errorf("apt-get finished but %s is %s, not %s", q.Name, q.describe(), q.Ensure)
		}
	}
	return results, errs
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
	case p.Ensure == "installed" && !st.Installed:
		res.Add("ensure", p.describe(), "installed ("+candidates[p.Name]+")")
		return &pkgOp{Name: p.Name, Action: "install"}, nil
	case p.Ensure == "latest" && st.Version != candidates[p.Name]:
		res.Add("version", p.describe(), candidates[p.Name])
		return &pkgOp{Name: p.Name, Action: "install", Version: candidates[p.Name]}, nil
	case wantInstalled && p.Ensure != "installed" && p.Ensure != "latest" && st.Version != p.Ensure:
		res.Add("version", p.describe(), p.Ensure)
		return &pkgOp{Name: p.Name, Action: "install", Version: p.Ensure}, nil
	case p.Ensure == "absent" && st.Installed:
		res.Add("ensure", p.describe(), "absent")
		return &pkgOp{Name: p.Name, Action: "remove"}, nil
	case p.Ensure == "purged" && (st.Installed || st.ConfigOnly):
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
		return !st.Installed
	case "purged":
		return !st.Installed && !st.ConfigOnly
	}
	return st.Installed && st.Version == p.Ensure
}

// describe says what is installed, for changes and messages.
func (p *Package) describe() string {
	switch {
	case p.state.Installed:
		return "installed (" + p.state.Version + ")"
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
	_ Batcher    = (*Package)(nil)
	_ Prefetcher = (*Package)(nil)
	_ Serial     = (*Package)(nil)
)
