package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	// A stop (ctx) lets the resources in flight finish: none is left half-applied. Only
	// Options.Hard (a second signal) interrupts them.
	rctx := a.opts.Hard
	if rctx == nil {
		rctx = context.WithoutCancel(ctx)
	}
	return engine.Run(rctx, cat, engine.Options{Env: env, Parallel: a.opts.Parallel, Stop: ctx}), nil
}

// rollback undoes release version, whose run failed (failed: its report, with failedCat its
// catalog; nil after a death) or whose health checks failed, then applies the last good
// release (st.Good, not nil) as usual. The plan — the failed release's backups (between the
// attempt's mark and the backup store's mark now) and the files it created — is saved
// before anything changes, so that a death during the rollback is followed by the same
// rollback (resume), not by one that would count the rollback's own backups as the release's.
// The release is marked failed, never tried again, and the attempt closed.
func (c *cycle) rollback(ctx context.Context, remote string, version uint64, failed *report.Report, failedCat *catalog.Catalog, cause string) {
	a, st, rep := c.a, c.st, c.rep
	st.FailedRelease = max(st.FailedRelease, version)
	rb := &Rollback{From: version, To: st.Good.Version, Cause: cause}
	rep.Rollback, rep.FailedRun, rep.Outcome = rb, failed, RolledBack
	a.logf("release %d failed (%s): rolling back to release %d", version, cause, st.Good.Version)
	if st.Attempt == nil {
		st.Attempt = &Attempt{Version: version} // no mark: nothing to restore
	}
	at := st.Attempt
	if at.Rollback == nil {
		until, err := a.backups.Mark()
		if err != nil {
			rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back release %d: %v", version, err))
			until = at.BackupMark // restore nothing rather than the unknown
		}
		at.Rollback = &RollbackPlan{Cause: cause, UntilMark: until, Created: createdPaths(failed, failedCat)}
		if err := writeState(a.state, st); err != nil {
			rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back release %d: %v", version, err))
		}
	}
	plan := at.Rollback
	restored, err := a.restoreBetween(at.BackupMark, plan.UntilMark, version)
	rb.Restored = restored
	if err != nil {
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back release %d: put back files: %v", version, err))
	}
	removed, err := a.removeCreated(plan.Created, version)
	rb.Removed = removed
	if err != nil {
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back release %d: remove what it created: %v", version, err))
	}
	run, err := a.applyRelease(ctx, st.Good, remote, c)
	rep.Run = run
	switch {
	case ctx.Err() != nil:
		return // stopped: the rollback resumes at the next start (the attempt stays open)
	case err != nil:
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back to release %d: %v", st.Good.Version, err))
	case run.Failed():
		rep.Error = joinErr(rep.Error, fmt.Sprintf("roll back to release %d: %s", st.Good.Version, failedResources(run)))
	}
	st.Attempt = nil
}

// restoreBetween puts back every path the backup store saved a version of after mark and
// up to until (both from Mark), as its first such version: the file as it was before the
// attempt. It goes on past a path it cannot restore, and returns how many it restored and
// what failed.
func (a *Agent) restoreBetween(mark, until string, version uint64) (int, error) {
	if until == mark {
		return 0, nil
	}
	entries, err := a.backups.Since(mark)
	if errors.Is(err, backup.ErrNotFound) {
		// The mark was pruned (by satchel apply, say, during a long interruption): what
		// was saved after it can only be told by time now.
		a.logf("warning: the backup mark %s of the attempt was pruned: restoring the backups saved after it by their times", mark)
		all, lerr := a.backups.List("")
		if lerr != nil {
			return 0, lerr
		}
		entries, err = nil, nil
		for i := len(all) - 1; i >= 0; i-- { // List is newest first
			if all[i].ID > mark {
				entries = append(entries, all[i])
			}
		}
	}
	if err != nil {
		return 0, err
	}
	first := map[string]backup.Entry{}
	for _, e := range entries { // oldest first
		if _, ok := first[e.Path]; !ok {
			first[e.Path] = e
		}
		if e.ID == until {
			break
		}
	}
	paths := make([]string, 0, len(first))
	for p := range first {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return a.eachPath(paths, func(env *resource.Env, p string) error {
		return resource.RestoreBackup(env, first[p], fmt.Sprintf("replaced by the rollback of release %d", version))
	})
}

// eachPath calls fn for each path, in the root the agent converges, with the backup store
// at hand; it goes on past a failure and returns how many succeeded and what failed.
func (a *Agent) eachPath(paths []string, fn func(env *resource.Env, p string) error) (int, error) {
	root, err := fsroot.Open(a.rootDir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	env := &resource.Env{Root: root, Backup: a.backups}
	n := 0
	var errs []error
	for _, p := range paths {
		if err := fn(env, p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// createdPaths lists the files and links the failed run created where nothing was before
// (a file or symlink resource reporting ensure absent → present).
func createdPaths(failed *report.Report, cat *catalog.Catalog) []string {
	if failed == nil || cat == nil {
		return nil
	}
	byAddr := make(map[string]*catalog.Resource, len(cat.Resources))
	for _, r := range cat.Resources {
		byAddr[r.Address] = r
	}
	var paths []string
	for _, out := range failed.Resources {
		r := byAddr[out.Address]
		if r == nil || out.Status != report.Changed || r.Type != "file" && r.Type != "symlink" || !created(out) {
			continue
		}
		var p string
		if json.Unmarshal(r.Attributes["path"], &p) == nil && p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// removeCreated removes paths, each saved to the backup store first: before the failed
// release, they were not there. What the good release manages of them, its run puts back.
// Directories are left: they may hold what others put.
func (a *Agent) removeCreated(paths []string, version uint64) (int, error) {
	return a.eachPath(paths, func(env *resource.Env, p string) error {
		info, err := env.Root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone already (a rollback resumed)
		}
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		if err := resource.BackupFile(env, p, fmt.Sprintf("removed by the rollback of release %d", version)); err != nil {
			return err
		}
		if err := env.Root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// created reports whether a resource's changes say it brought its path into being.
func created(out *report.Resource) bool {
	for _, ch := range out.Changes {
		if ch.Attribute == "ensure" && ch.From == "absent" {
			return true
		}
	}
	return false
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
