package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/report"
)

// mixedCatalog has directories, files under them, a failing command with dependents, and
// notifications, so that parallel and sequential runs can be compared.
func mixedCatalog(t *testing.T) *catalog.Catalog {
	var rs []*catalog.Resource
	for d := range 10 {
		dir := fmt.Sprintf("directory.d%d", d)
		rs = append(rs, res(t, dir, map[string]any{"path": fmt.Sprintf("/d%d", d)}))
		for f := range 20 {
			rs = append(rs, res(t, fmt.Sprintf("file.f%d_%d", d, f),
				map[string]any{"path": fmt.Sprintf("/d%d/f%d", d, f), "content": fmt.Sprintf("%d/%d\n", d, f)},
				requires(dir), notifies("exec.count")))
		}
	}
	rs = append(rs,
		res(t, "exec.count", map[string]any{"command": "echo notified >> $SATCHEL_ROOT/count", "refresh_only": true}),
		res(t, "exec.broken", map[string]any{"command": "exit 3"}),
		res(t, "file.after_broken", map[string]any{"path": "/after", "content": "x"}, requires("exec.broken", "directory.d0")),
	)
	return newCatalog(rs...)
}

func TestParallelRunMatchesSequentialRun(t *testing.T) {
	t.Parallel()
	outcome := func(parallel int) (*report.Report, string) {
		e, dir := env(t)
		rep := engine.Run(context.Background(), mixedCatalog(t), engine.Options{Env: e, Parallel: parallel})
		for _, r := range rep.Resources {
			r.DurationMS = 0
		}
		rep.DurationMS, rep.Started, rep.Root = 0, rep.Started.Truncate(1<<62), ""
		return rep, dir
	}
	seq, seqDir := outcome(1)
	par, parDir := outcome(8)
	if !reflect.DeepEqual(seq, par) {
		t.Fatalf("parallel report differs from sequential:\nseq %+v\npar %+v", seq.Summary, par.Summary)
	}
	if seq.Summary != (report.Summary{Total: 213, Changed: 211, Failed: 1, Skipped: 1}) {
		t.Errorf("summary = %+v", seq.Summary)
	}
	for _, dir := range []string{seqDir, parDir} {
		data, err := os.ReadFile(filepath.Join(dir, "count"))
		if err != nil || string(data) != "notified\n" {
			t.Errorf("%s: notified exec ran %q, %v; want once", dir, data, err)
		}
	}
}

// Commands never overlap, even when nothing orders them: each takes a lock directory and
// fails if another command holds it.
func TestSerialResourcesDoNotOverlap(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	lock := filepath.Join(dir, "lock")
	var rs []*catalog.Resource
	for i := range 6 {
		rs = append(rs, res(t, fmt.Sprintf("exec.c%d", i), map[string]any{
			"command": fmt.Sprintf("mkdir %s || exit 9; sleep 0.05; rmdir %s", lock, lock)}))
	}
	rep := engine.Run(context.Background(), newCatalog(rs...), engine.Options{Env: e, Parallel: 6})
	if rep.Summary.Failed != 0 || rep.Summary.Changed != 6 {
		for _, r := range rep.Resources {
			t.Logf("%s: %s %s", r.Address, r.Status, r.Error)
		}
		t.Fatalf("summary = %+v: commands overlapped", rep.Summary)
	}
}

// Resources that edit one file never run at once, even in a catalog that does not order
// them: no edit is lost, and one run converges.
func TestEditorsOfOneFileDoNotOverlap(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var rs []*catalog.Resource
	for i := range 40 {
		rs = append(rs, res(t, fmt.Sprintf("line.l%02d", i), map[string]any{"path": "/hosts", "line": fmt.Sprintf("10.0.0.%d host%d", i, i)}))
	}
	cat := newCatalog(rs...)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e, Parallel: 8})
	if rep.Summary.Changed != 40 || rep.Summary.Failed != 0 {
		t.Fatalf("first run: %+v", rep.Summary)
	}
	rep = engine.Run(context.Background(), cat, engine.Options{Env: e, Parallel: 8})
	if rep.Summary.Changed != 0 || rep.Summary.Failed != 0 {
		t.Fatalf("second run changed %d, failed %d: edits were lost in the first", rep.Summary.Changed, rep.Summary.Failed)
	}
}
