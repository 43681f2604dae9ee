package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// How long replaced content is kept, and how much of it at most, as satchel apply keeps it.
const (
	backupMaxAge   = 90 * 24 * time.Hour
	backupMaxBytes = 1 << 30
)

// runCatalog converges the node (or the --root directory, created if missing) to cat,
// compiled from the config repository checked out in configDir (where files' sources are
// read). The error says why a run could not start at all, which is no fault of the
// release; what failed in the run is in the report.
func (a *Agent) runCatalog(ctx context.Context, cat *catalog.Catalog, configDir string) (*report.Report, error) {
	if err := os.MkdirAll(a.rootDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the root directory: %w", err)
	}
	root, err := fsroot.Open(a.rootDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	sources, err := resource.NewDirSources(configDir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sources.Close() }()
	env := &resource.Env{Root: root, Sources: sources, Backup: a.backups, Content: a.store, Accounts: resource.NewAccounts(root)}
	rep := engine.Run(ctx, cat, engine.Options{Env: env, Parallel: a.opts.Parallel})
	if rep.Summary.Changed > 0 {
		if _, err := a.backups.Prune(backupMaxAge, backupMaxBytes); err != nil {
			a.logf("warning: prune backups: %v", err)
		}
	}
	return rep, nil
}

// rollback undoes release rel, whose run (started at runStart) failed or whose health
// checks failed: every file the run replaced or removed is put back from the backup store,
// then the last good release (st.Good, not nil) is applied as usual. rel is marked failed,
// never tried again.
func (c *cycle) rollback(ctx context.Context, remote string, rel *Release, failed *report.Report, runStart time.Time, cause string) {
	a, st, rep := c.a, c.st, c.rep
	st.FailedRelease = max(st.FailedRelease, rel.Version)
	rb := &Rollback{From: rel.Version, Cause: cause}
	rep.Rollback, rep.FailedRun, rep.Outcome = rb, failed, RolledBack
	a.logf("release %d failed (%s): rolling back", rel.Version, cause)
	restored, err := a.restoreSince(runStart, rel.Version)
	rb.Restored = restored
	if err != nil {
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back release %d: restore files: %v", rel.Version, err))
	}
	rb.To = st.Good.Version
	run, err := a.applyRelease(ctx, st.Good, remote, c)
	rep.Run = run
	switch {
	case err != nil:
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back to release %d: %v", st.Good.Version, err))
	case run.Failed():
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back to release %d: %s", st.Good.Version, failedResources(run)))
	}
}

// restoreSince puts back, for every path the backup store saved a version of since t, the
// oldest such version: the file as it was before the run that started at t.
func (a *Agent) restoreSince(t time.Time, version uint64) (int, error) {
	entries, err := a.backups.List("")
	if err != nil {
		return 0, err
	}
	// List is newest first: the last entry seen for a path is its oldest since t.
	before := map[string]backup.Entry{}
	for _, e := range entries {
		if !e.Time.Before(t) {
			before[e.Path] = e
		}
	}
	paths := make([]string, 0, len(before))
	for p := range before {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	root, err := fsroot.Open(a.rootDir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	env := &resource.Env{Root: root, Backup: a.backups}
	n := 0
	for _, p := range paths {
		e := before[p]
		if err := resource.RestoreBackup(env, e, fmt.Sprintf("replaced by the rollback of release %d", version)); err != nil {
			return n, fmt.Errorf("%s: %w", p, err)
		}
		n++
	}
	return n, nil
}

// collectGarbage removes from the store what the new good release rel does not need: the
// config and content of older releases (package store, GC). It is done after a release is
// applied, so a rollback never lacks what it needs; the next release's deltas are built
// against rel's trees, which stay. A store busy with another pull is left for next time.
func (a *Agent) collectGarbage(ctx context.Context, rel *Release) {
	keep := rel.contentIDs()
	id, err := rel.configID()
	if err != nil {
		return
	}
	keep = append(keep, id)
	st, err := a.store.GC(ctx, keep)
	if err != nil {
		a.logf("warning: store gc: %v", err)
		return
	}
	if st.Chunks+st.Objects > 0 {
		a.logf("store gc: removed %d objects and %d chunks (%s) that release %d does not need", st.Objects, st.Chunks, formatSize(st.Bytes), rel.Version)
	}
}
