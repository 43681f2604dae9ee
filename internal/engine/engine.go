package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// Options control one run.
type Options struct {
	// Noop checks without changing anything: resources report what they would change.
	Noop bool
	// Env is passed to every resource. Run fills in Env.Managed from the catalog.
	Env *resource.Env
	// New makes a Resource from a catalog entry; nil means resource.New.
	New func(*catalog.Resource) (resource.Resource, error)
	// Progress, if set, is called before each resource is visited.
	Progress func(done, total int, address string)
	// Parallel is how many resources may be converged at once (at least 1). Resources run
	// only once everything they depend on is done; Serial ones (commands, package managers)
	// also run one at a time. The report is in the same order whatever this is.
	Parallel int
	// Stop, if set, ends the run between resources when it is done: nothing more starts,
	// and what is running finishes (a daemon's graceful stop). ctx, in contrast, is passed
	// to the resources, and its end interrupts what is running too (Ctrl-C).
	Stop context.Context
}

// Run converges the machine to cat (or, with Noop, reports what that would change) and
// returns the report. A catalog that cannot run at all (a cycle) gives a report whose Error
// says why; every resource then counts as skipped.
func Run(ctx context.Context, cat *catalog.Catalog, opts Options) *report.Report {
	rep := report.New(cat.Node, opts.Noop, time.Now())
	if opts.Env != nil && opts.Env.Root != nil && opts.Env.Root.Dir() != "/" {
		rep.Root = opts.Env.Root.Dir()
	}
	defer func() { rep.Finish(time.Now()) }()
	newResource := opts.New
	if newResource == nil {
		newResource = resource.New
	}
	order, graph, err := plan(cat)
	if err != nil {
		rep.Error = err.Error()
		for _, r := range cat.Resources {
			rep.Add(&report.Resource{Address: r.Address, Type: r.Type, Status: report.Skipped,
				Error: "not run: " + err.Error(), Origin: r.Origin})
		}
		return rep
	}

	instances := make(map[string]resource.Resource, len(order))
	decodeErr := make(map[string]error)
	var managed []string
	pathLocks := map[string]*sync.Mutex{} // resources sharing a path never run at once
	lockOf := map[string]*sync.Mutex{}
	for _, r := range order {
		inst, err := newResource(r)
		if err != nil {
			decodeErr[r.Address] = err
			continue
		}
		instances[r.Address] = inst
		paths := managedPaths(r, inst)
		managed = append(managed, paths...)
		if len(paths) > 0 {
			if pathLocks[paths[0]] == nil {
				pathLocks[paths[0]] = &sync.Mutex{}
			}
			lockOf[r.Address] = pathLocks[paths[0]]
		}
	}
	env := *opts.Env
	env.Managed = resource.NewPathSet(managed)
	env.Changes = &resource.Changes{}
	if env.Accounts == nil {
		env.Accounts = resource.NewAccounts(env.Root)
	}
	secrets := newRedactor(cat)
	var serialMu sync.Mutex

	stopped := func() bool { return ctx.Err() != nil || opts.Stop != nil && opts.Stop.Err() != nil }
	sched := &scheduler{order: order, graph: graph, parallel: opts.Parallel, progress: opts.Progress,
		stopped: stopped,
		check: func(r *catalog.Resource, status map[string]report.Status) *report.Resource {
			out := &report.Resource{Address: r.Address, Type: r.Type, Origin: r.Origin}
			switch cause := blocked(graph, r.Address, status); {
			case stopped():
				out.Status, out.Error = report.Skipped, "not run: the run was interrupted"
			case cause != "":
				out.Status, out.Error = report.Skipped, cause
			case decodeErr[r.Address] != nil:
				out.Status, out.Error = report.Failed, decodeErr[r.Address].Error()
			}
			return out
		},
		batchKey: func(r *catalog.Resource) string {
			if b, ok := instances[r.Address].(resource.Batcher); ok {
				return b.BatchKey()
			}
			return ""
		},
	}
	sched.run = func(t *task) {
		start := time.Now()
		if len(t.idx) > 1 || sched.batchKey(order[t.idx[0]]) != "" {
			members := make([]resource.Resource, len(t.idx))
			for k, i := range t.idx {
				members[k] = instances[order[i].Address]
			}
			serialMu.Lock()
			defer serialMu.Unlock()
			visitBatch(ctx, &env, members, !opts.Noop, t.outs)
			for _, out := range t.outs {
				out.DurationMS = report.Millis(time.Since(start))
			}
			return
		}
		r, out := order[t.idx[0]], t.outs[0]
		inst := instances[r.Address]
		if _, serial := inst.(resource.Serial); serial {
			serialMu.Lock()
			defer serialMu.Unlock()
		}
		if mu := lockOf[r.Address]; mu != nil {
			mu.Lock()
			defer mu.Unlock()
		}
		visit(ctx, &env, inst, t.notified[0], !opts.Noop, out)
		if out.Status == report.Changed && !opts.Noop {
			env.Changes.Add(managedPaths(r, inst)...)
		}
		out.DurationMS = report.Millis(time.Since(start))
	}
	results := sched.runAll()
	for _, out := range results {
		secrets.redact(out)
		rep.Add(out)
	}
	return rep
}

// plan orders the catalog's resources.
func plan(cat *catalog.Catalog) ([]*catalog.Resource, *catalog.Graph, error) {
	if err := cat.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid catalog: %w", err)
	}
	cat.Sort()
	g, err := catalog.NewGraph(cat)
	if err != nil {
		return nil, nil, err
	}
	order, err := g.Order()
	if err != nil {
		return nil, nil, err
	}
	return order, g, nil
}

// blocked returns why a resource cannot run: a dependency that failed or was skipped.
func blocked(g *catalog.Graph, addr string, status map[string]report.Status) string {
	for _, dep := range g.Requires(addr) {
		switch status[dep] {
		case report.Failed:
			return "skipped: dependency " + dep + " failed"
		case report.Skipped:
			return "skipped: dependency " + dep + " was skipped"
		}
	}
	return ""
}

// visit checks (and applies) one resource, refreshing it if it was notified.
func visit(ctx context.Context, env *resource.Env, inst resource.Resource, notified, apply bool, out *report.Resource) {
	res, err := inst.CheckApply(ctx, env, apply)
	merge(out, res)
	if err == nil && notified {
		if rf, ok := inst.(resource.Refresher); ok {
			rres, rerr := rf.Refresh(ctx, env, apply)
			merge(out, rres)
			out.Refreshed = rres.Changed()
			err = rerr
		}
	}
	switch {
	case err != nil:
		out.Status, out.Error = report.Failed, err.Error()
	case len(out.Changes) > 0:
		out.Status = report.Changed
	default:
		out.Status = report.Unchanged
	}
}

// visitBatch checks (and applies) the members of a batch together.
func visitBatch(ctx context.Context, env *resource.Env, members []resource.Resource, apply bool, outs []*report.Resource) {
	results, errs := members[0].(resource.Batcher).CheckApplyBatch(ctx, env, members, apply)
	for k, out := range outs {
		var res *resource.Result
		var err error
		if k < len(results) {
			res = results[k]
		}
		if k < len(errs) {
			err = errs[k]
		}
		merge(out, res)
		switch {
		case err != nil:
			out.Status, out.Error = report.Failed, err.Error()
		case len(out.Changes) > 0:
			out.Status = report.Changed
		default:
			out.Status = report.Unchanged
		}
	}
}

func merge(out *report.Resource, res *resource.Result) {
	if res == nil {
		return
	}
	out.Changes = append(out.Changes, res.Changes...)
	out.Notes = append(out.Notes, res.Notes...)
	if res.Diff != "" {
		out.Diff += res.Diff
	}
}

// managedPaths returns the paths a resource manages: its path attribute, if its type has
// one, and any it declares itself.
func managedPaths(r *catalog.Resource, inst resource.Resource) []string {
	var out []string
	if t := resource.Lookup(r.Type); t != nil && t.Schema.PathAttr != "" {
		var p string
		if json.Unmarshal(r.Attributes[t.Schema.PathAttr], &p) == nil && p != "" {
			out = append(out, p)
		}
	}
	if pm, ok := inst.(resource.PathManager); ok {
		out = append(out, pm.ManagedPaths()...)
	}
	return out
}
