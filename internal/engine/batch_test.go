package engine_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// recordingBatcher stands in for a package: it records which members were converged together.
// (Real packages are tested against apt in internal/systest; this observes the scheduler.)
type recordingBatcher struct {
	name    string
	batches *[][]string
	mu      *sync.Mutex
	fail    bool
}

func (b *recordingBatcher) CheckApply(ctx context.Context, env *resource.Env, apply bool) (*resource.Result, error) {
	panic("batch members are converged through CheckApplyBatch")
}

func (b *recordingBatcher) BatchKey() string { return "pkg" }

func (b *recordingBatcher) CheckApplyBatch(ctx context.Context, env *resource.Env, members []resource.Resource, apply bool) ([]*resource.Result, []error) {
	var names []string
	results := make([]*resource.Result, len(members))
	errs := make([]error, len(members))
	for i, m := range members {
		rb := m.(*recordingBatcher)
		names = append(names, rb.name)
		results[i] = &resource.Result{}
		results[i].Add("ensure", "absent", "installed")
		if rb.fail {
			errs[i] = errUnknown(rb.name)
		}
	}
	b.mu.Lock()
	*b.batches = append(*b.batches, names)
	b.mu.Unlock()
	return results, errs
}

type errUnknown string

func (e errUnknown) Error() string { return "unknown package " + string(e) }

func TestBatchesAreAsFewAsTheGraphAllows(t *testing.T) {
	t.Parallel()
	e, _ := env(t)
	var batches [][]string
	var mu sync.Mutex
	newRes := func(r *catalog.Resource) (resource.Resource, error) {
		if r.Type == "exec" && strings.HasPrefix(r.Name, "pkg_") {
			return &recordingBatcher{name: strings.TrimPrefix(r.Name, "pkg_"), batches: &batches, mu: &mu, fail: r.Name == "pkg_nope"}, nil
		}
		return resource.New(r)
	}
	cmd := map[string]any{"command": "true"}
	cat := newCatalog(
		res(t, "exec.pkg_a", cmd), res(t, "exec.pkg_b", cmd), res(t, "exec.pkg_nope", cmd),
		res(t, "file.conf", map[string]any{"path": "/conf", "content": "x"}, requires("exec.pkg_a")),
		res(t, "exec.pkg_c", cmd, requires("file.conf")),
		res(t, "exec.pkg_d", cmd, requires("file.conf")),
		res(t, "file.other", map[string]any{"path": "/other", "content": "y"}),
		res(t, "file.after_nope", map[string]any{"path": "/after", "content": "z"}, requires("exec.pkg_nope")),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e, New: newRes, Parallel: 4})
	want := [][]string{{"a", "b", "nope"}, {"c", "d"}}
	if !slices.EqualFunc(batches, want, slices.Equal[[]string]) {
		t.Errorf("batches = %v, want %v", batches, want)
	}
	got := statuses(rep)
	if got["exec.pkg_nope"].Status != report.Failed || got["exec.pkg_nope"].Error != "unknown package nope" {
		t.Errorf("pkg_nope = %+v", got["exec.pkg_nope"])
	}
	if got["file.after_nope"].Status != report.Skipped || got["exec.pkg_a"].Status != report.Changed || got["exec.pkg_c"].Status != report.Changed {
		t.Errorf("statuses: after_nope %s, a %s, c %s", got["file.after_nope"].Status, got["exec.pkg_a"].Status, got["exec.pkg_c"].Status)
	}
}

// cancellingResource interrupts the run while it runs, as Ctrl-C would.
type cancellingResource struct{ cancel context.CancelFunc }

func (c *cancellingResource) CheckApply(ctx context.Context, env *resource.Env, apply bool) (*resource.Result, error) {
	c.cancel()
	return &resource.Result{}, nil
}

// An interrupted run with packages held for their batch skips them and what depends on them,
// and still returns a complete report.
func TestInterruptWhileABatchIsHeld(t *testing.T) {
	t.Parallel()
	e, _ := env(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var batches [][]string
	var mu sync.Mutex
	newRes := func(r *catalog.Resource) (resource.Resource, error) {
		switch r.Name {
		case "pkg_a":
			return &recordingBatcher{name: "a", batches: &batches, mu: &mu}, nil
		case "stop":
			return &cancellingResource{cancel: cancel}, nil
		}
		return resource.New(r)
	}
	cat := newCatalog(
		res(t, "exec.pkg_a", map[string]any{"command": "true"}),
		res(t, "exec.stop", map[string]any{"command": "true"}),
		res(t, "file.svc", map[string]any{"path": "/svc", "content": "x"}, requires("exec.pkg_a")),
	)
	rep := engine.Run(ctx, cat, engine.Options{Env: e, New: newRes, Parallel: 2})
	got := statuses(rep)
	if len(rep.Resources) != 3 || rep.Summary.Total != 3 {
		t.Fatalf("report has %d resources: %+v", len(rep.Resources), rep.Summary)
	}
	if len(batches) != 0 {
		t.Errorf("a batch ran after the interrupt: %v", batches)
	}
	for _, a := range []string{"exec.pkg_a", "file.svc"} {
		if got[a].Status != report.Skipped || !strings.Contains(got[a].Error, "interrupted") {
			t.Errorf("%s = %+v, want skipped: interrupted", a, got[a])
		}
	}
}
