package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// errDeferred ends a download that would take more than is allowed outside the transfer
// windows.
var errDeferred = errors.New("deferred to the transfer window")

// cycle is one cycle's work in progress.
type cycle struct {
	a       *Agent
	st      *State
	rep     *CycleReport
	facts   map[string]any
	node    string
	budget  int64 // bytes that may still be downloaded this cycle; <0: no limit
	deferTo time.Time
	applied *Release // the release applied this cycle: its store is collected after the state is saved
}

// Cycle runs one cycle: refresh the trust metadata from the first repository that answers;
// if it offers a release newer than the last good one (and newer than any that failed),
// fetch what is missing of it, apply it and run its health checks, rolling back to the
// last good release if anything fails; otherwise apply the last good release again. The
// report is spooled and the state saved whatever happens. The error is nil unless the
// cycle could not be recorded; how it went is in the report.
func (a *Agent) Cycle(ctx context.Context) (*CycleReport, error) {
	st, err := ReadState(a.state)
	if err != nil {
		return nil, err
	}
	start := a.opts.Now()
	c := &cycle{a: a, st: st, rep: &CycleReport{Format: ReportFormat, Started: start.UTC()}, budget: -1}
	if len(a.opts.Windows) > 0 && !InWindow(a.opts.Windows, start) {
		c.budget = a.opts.SmallTransfer
		c.deferTo = NextWindowStart(a.opts.Windows, start)
	}
	c.run(ctx)
	rep := c.rep
	rep.DurationMS = float64(a.opts.Now().Sub(start).Microseconds()) / 1000
	if st.Good != nil && rep.Release == 0 {
		rep.Release = st.Good.Version
	}
	if st.Good != nil {
		rep.Holds = &Holdings{Config: st.Good.Config, Trees: st.Good.Trees}
	}
	info := &RunInfo{Started: rep.Started, DurationMS: rep.DurationMS, Outcome: rep.Outcome,
		Release: rep.Release, Attempted: rep.Attempted, Error: rep.Error}
	if rep.Run != nil {
		info.Changed, info.Failed = rep.Run.Summary.Changed, rep.Run.Summary.Failed+rep.Run.Summary.Skipped
	}
	if data, err := marshalReport(rep); err != nil {
		a.logf("warning: report: %v", err)
	} else if name, err := a.spool.Put("report", data); err != nil {
		a.logf("warning: spool the report: %v", err)
	} else {
		info.Report = name
	}
	st.LastRun = info
	switch {
	case rep.Outcome == Interrupted:
	case rep.Error != "" || rep.Outcome == Failed || rep.Outcome == RolledBack:
		st.Failures++
		st.LastError = firstLine(rep.Error)
		if rep.Rollback != nil {
			st.LastError = firstLine(fmt.Sprintf("release %d rolled back: %s", rep.Rollback.From, rep.Rollback.Cause))
		}
	default:
		st.Failures, st.LastError = 0, ""
	}
	if err := writeState(a.state, st); err != nil {
		return rep, err
	}
	a.logf("%s", summary(rep))
	a.syncServer(ctx, c.facts)
	// Only once the state names the new good release may what the old one needed go.
	if c.applied != nil {
		a.collectGarbage(ctx, c.applied)
	}
	// Not while an attempt is open: its rollback needs the backups since its mark.
	if st.Attempt == nil && (rep.Run != nil && rep.Run.Summary.Changed > 0 || rep.FailedRun != nil) {
		if _, err := a.backups.Prune(backupMaxAge, backupMaxBytes); err != nil {
			a.logf("warning: prune backups: %v", err)
		}
	}
	return rep, nil
}

// run does the cycle's work, recording everything in c.rep.
func (c *cycle) run(ctx context.Context) {
	a, st, rep := c.a, c.st, c.rep
	var err error
	if c.facts, c.node, err = a.gatherFacts(); err != nil {
		c.fail(err)
		return
	}
	rep.Node = c.node
	if err := a.ensureCertificate(ctx, c.facts); err != nil {
		if len(a.repositories()) == 0 && st.Good == nil {
			c.fail(err)
			return
		}
		// Other repositories may serve the node, and its last good release is applied
		// again in any case.
		rep.RefreshErrors = append(rep.RefreshErrors, err.Error())
		a.logf("%v", err)
	}
	lock, err := engine.AcquireLockContext(ctx, filepath.Join(a.state, runLockName), a.opts.LockWait)
	if ctx.Err() != nil {
		rep.Outcome = Interrupted
		return
	}
	if err != nil {
		c.fail(err)
		return
	}
	defer func() { _ = lock.Release() }()
	m, remote := c.refresh(ctx)
	if ctx.Err() != nil {
		rep.Outcome = Interrupted
		return
	}
	if at := st.Attempt; at != nil && !at.Interrupted {
		if c.recover(ctx, at, remote) {
			return
		}
	}
	if m != nil {
		rep.Available = m.Version
		switch {
		case st.Good != nil && m.Version <= st.Good.Version:
			// Nothing new.
		case m.Version <= st.FailedRelease:
			a.logf("release %d failed before and was rolled back: not trying it again; waiting for a newer one", m.Version)
		default:
			if c.tryRelease(ctx, remote, m) {
				return
			}
		}
	}
	if rep.Outcome == "" {
		c.reapply(ctx, remote)
	}
}

// refresh asks the repositories in order for the newest release and returns its manifest
// and the repository that gave it, or nil when none could be used (the reasons are in the
// report).
func (c *cycle) refresh(ctx context.Context) (*release.Manifest, string) {
	a := c.a
	trust := filepath.Join(a.state, trustDirName)
	for _, remote := range a.repositories() {
		m, err := release.Refresh(ctx, remote, trust, release.RefreshOptions{
			Now:        a.opts.Now,
			Warn:       func(msg string) { a.logf("warning: %s", msg) },
			HTTPClient: a.httpFor(remote),
		})
		if err == nil {
			c.rep.Repository = remote
			return m, remote
		}
		if ctx.Err() != nil {
			return nil, ""
		}
		msg := err.Error()
		if errors.Is(err, release.ErrRollback) {
			msg = "REFUSED: " + msg
		}
		c.rep.RefreshErrors = append(c.rep.RefreshErrors, msg)
		a.logf("%s", msg)
	}
	return nil, ""
}

// tryRelease fetches, applies and checks the newer release m. It reports whether the cycle
// is over (the release applied, or rolled back); false means the last good release is to
// be applied again (the release could not be fetched in full, or waits for a window).
func (c *cycle) tryRelease(ctx context.Context, remote string, m *release.Manifest) bool {
	a, st, rep := c.a, c.st, c.rep
	rel := releaseOf(m)
	rep.Attempted = m.Version
	cat, dir, err := c.fetch(ctx, remote, rel)
	if errors.Is(err, errDeferred) {
		rep.Deferred = fmt.Sprintf("release %d needs more than %s outside the transfer windows; the rest is downloaded from %s", m.Version, formatSize(a.opts.SmallTransfer), c.deferTo.Format("2006-01-02 15:04"))
		a.logf("%s", rep.Deferred)
		return false
	}
	if err != nil {
		if ctx.Err() != nil {
			rep.Outcome = Interrupted
			return true
		}
		// A release that cannot be fetched or compiled here is not applied; the good one is.
		rep.Error = fmt.Sprintf("release %d: %v", m.Version, err)
		a.logf("%s", rep.Error)
		return false
	}
	// The attempt is recorded before anything changes, with the backup store's mark: if
	// the agent dies during it, the next start knows, and rolls it back.
	if st.Attempt == nil {
		mark, err := a.backups.Mark()
		if err != nil {
			rep.Error = fmt.Sprintf("release %d: %v", m.Version, err)
			return false
		}
		st.Attempt = &Attempt{BackupMark: mark}
	}
	if st.Attempt.Version != m.Version {
		st.Attempt.Deaths = 0 // a newer release: its own chances
	}
	st.Attempt.Version, st.Attempt.Started, st.Attempt.Interrupted = m.Version, a.opts.Now().UTC(), false
	if err := writeState(a.state, st); err != nil {
		st.Attempt = nil
		rep.Error = fmt.Sprintf("release %d: %v", m.Version, err)
		return false
	}
	run, err := a.runCatalog(ctx, cat, dir)
	if err != nil {
		st.Attempt = nil // nothing ran
		rep.Error = fmt.Sprintf("release %d: the run could not start: %v", m.Version, err)
		rep.Outcome = Failed
		return true
	}
	if ctx.Err() != nil {
		// Stopped midway: what ran finished; the next start tries the release again.
		st.Attempt.Interrupted = true
		rep.Run, rep.Outcome = run, Interrupted
		return true
	}
	cause := ""
	switch {
	case run.Error != "":
		cause = "the run failed: " + run.Error
	case run.Summary.Failed+run.Summary.Skipped > 0:
		cause = fmt.Sprintf("the run failed: %s", failedResources(run))
	default:
		results, err := runHealthChecks(ctx, m.HealthChecks, m.Version, a.rootDir)
		// What a check prints may quote a secret the release put in place.
		scrub := engine.Scrubber(cat)
		for i := range results {
			results[i].Output, results[i].Error = scrub(results[i].Output), scrub(results[i].Error)
		}
		rep.HealthChecks = results
		if ctx.Err() != nil {
			st.Attempt.Interrupted = true
			rep.Run, rep.Outcome = run, Interrupted
			return true
		}
		if err != nil {
			cause = err.Error()
		}
	}
	if cause == "" {
		rel.Applied = a.opts.Now().UTC()
		st.Good, st.Attempt = rel, nil
		rep.Run, rep.Outcome, rep.Release = run, Applied, m.Version
		a.pruneReleases(m.Version)
		a.pruneSecrets(m.Version)
		c.applied = rel
		return true
	}
	if st.Good == nil {
		st.Attempt = nil
		// Nothing to go back to: the node keeps what the release did, and tries it again
		// next cycle (a package mirror that was down may be up by then).
		rep.Run, rep.Outcome = run, Failed
		rep.Error = fmt.Sprintf("release %d failed: %s (no earlier good release to roll back to: it is tried again next cycle)", m.Version, cause)
		return true
	}
	c.rollback(ctx, remote, m.Version, run, cat, cause)
	return true
}

// recover deals with an attempt the agent died during (State.Attempt). A rollback that was
// under way is resumed. A first death is forgiven: the release is tried again (false: the
// cycle goes on). A second one, with a good release to go back to, rolls the release back
// as failed (true: the cycle is over); with none, the release is tried again.
func (c *cycle) recover(ctx context.Context, at *Attempt, remote string) bool {
	a := c.a
	switch {
	case at.Rollback != nil && c.st.Good != nil:
		c.rep.Attempted = at.Version
		a.logf("the agent stopped while rolling back release %d: resuming the rollback", at.Version)
		c.rollback(ctx, remote, at.Version, nil, nil, at.Rollback.Cause)
		return true
	case c.st.Good == nil:
		a.logf("the agent stopped while applying release %d; no release was good before it: trying it again", at.Version)
		c.st.Attempt = nil
		return false
	case at.Deaths == 0:
		a.logf("the agent stopped while applying release %d (a crash, a power cut, a kill): trying it again; if it stops again, the release is rolled back", at.Version)
		at.Deaths = 1
		at.Interrupted = true
		return false
	}
	c.rep.Attempted = at.Version
	c.rollback(ctx, remote, at.Version, nil, nil, fmt.Sprintf("the agent stopped twice while applying release %d (a crash, a power cut, a kill or a reboot during the run or its health checks)", at.Version))
	return true
}

// fetch brings release rel's config into the store, checks it out, compiles it for this
// node, and brings the content its tree resources mirror into the store. rel.Content is
// set to those trees.
func (c *cycle) fetch(ctx context.Context, remote string, rel *Release) (*catalog.Catalog, string, error) {
	a := c.a
	id, err := rel.configID()
	if err != nil {
		return nil, "", err
	}
	var have []storeID
	if c.st.Good != nil {
		if gid, err := c.st.Good.configID(); err == nil {
			have = append(have, gid)
		}
	}
	if err := c.pull(ctx, remote, id, have); err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	dir, err := a.checkout(ctx, rel)
	if err != nil {
		return nil, "", err
	}
	cat, err := a.compile(dir, c.node, c.facts, a.secretsOf(ctx, rel, remote))
	if err != nil {
		return nil, "", err
	}
	roots, err := resource.TreeRoots(cat)
	if err != nil {
		return nil, "", err
	}
	rel.Content, rel.Trees = nil, map[string]string{}
	for _, r := range roots {
		if err := c.pull(ctx, remote, r.ID, c.st.Good.contentHave(r.Address)); err != nil {
			return nil, "", fmt.Errorf("content: %w", err)
		}
		rel.Content = append(rel.Content, r.ID.String())
		rel.Trees[r.Address] = r.ID.String()
	}
	return cat, dir, nil
}

// reapply applies the last good release again, from the local store (fetching what is
// missing of it from remote if one answered).
func (c *cycle) reapply(ctx context.Context, remote string) {
	a, st, rep := c.a, c.st, c.rep
	if st.Good == nil {
		if rep.Error == "" {
			switch {
			case len(rep.RefreshErrors) > 0:
				rep.Error = "no release applied yet, and none could be fetched: " + rep.RefreshErrors[0]
			case st.FailedRelease > 0:
				rep.Error = fmt.Sprintf("no good release yet: release %d failed and is not tried again; waiting for a newer one", st.FailedRelease)
			default:
				rep.Error = "no release applied yet"
			}
		}
		rep.Outcome = Failed
		return
	}
	run, err := a.applyRelease(ctx, st.Good, remote, c)
	rep.Run = run
	switch {
	case ctx.Err() != nil:
		rep.Outcome = Interrupted
	case err != nil:
		rep.Error = joinErr(rep.Error, fmt.Sprintf("re-apply release %d: %v", st.Good.Version, err))
		rep.Outcome = Failed
	case run.Failed():
		rep.Error = joinErr(rep.Error, fmt.Sprintf("re-apply release %d: %s", st.Good.Version, failedResources(run)))
		rep.Outcome = Failed
	default:
		rep.Outcome = Reapplied
	}
}

// applyRelease checks out, compiles and applies a release already verified once.
func (a *Agent) applyRelease(ctx context.Context, rel *Release, remote string, c *cycle) (*report.Report, error) {
	id, err := rel.configID()
	if err != nil {
		return nil, err
	}
	if objs, chunks, err := a.store.Missing(ctx, id); err != nil {
		return nil, err
	} else if len(objs)+len(chunks) > 0 {
		if remote == "" {
			return nil, fmt.Errorf("its config is no longer complete in the store %s, and no repository answered", a.store.Dir())
		}
		if err := c.pull(ctx, remote, id, nil); err != nil {
			return nil, err
		}
	}
	dir, err := a.checkout(ctx, rel)
	if err != nil {
		return nil, err
	}
	cat, err := a.compile(dir, c.node, c.facts, a.secretsOf(ctx, rel, remote))
	if err != nil {
		return nil, err
	}
	// Content its tree resources mirror, if the store lost any of it (fetched again).
	roots, err := resource.TreeRoots(cat)
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		if objs, chunks, err := a.store.Missing(ctx, r.ID); err != nil {
			return nil, err
		} else if len(objs)+len(chunks) > 0 {
			if remote == "" {
				return nil, fmt.Errorf("content tree %s is no longer complete in the store %s, and no repository answered", r.ID, a.store.Dir())
			}
			if err := c.pull(ctx, remote, r.ID, nil); err != nil {
				return nil, fmt.Errorf("content: %w", err)
			}
		}
	}
	return a.runCatalog(ctx, cat, dir)
}

// failedResources names the resources of a run that failed or were skipped.
func failedResources(run *report.Report) string {
	var names []string
	for _, r := range run.Resources {
		if r.Status == report.Failed {
			names = append(names, r.Address+": "+firstLine(r.Error))
		}
	}
	skipped := run.Summary.Skipped
	s := fmt.Sprintf("%d failed", run.Summary.Failed)
	if len(names) > 0 {
		if len(names) > 3 {
			names = append(names[:3], "…")
		}
		s += " (" + strings.Join(names, "; ") + ")"
	}
	if skipped > 0 {
		s += fmt.Sprintf(", %d skipped", skipped)
	}
	return s
}

func (c *cycle) fail(err error) {
	c.rep.Error = err.Error()
	c.rep.Outcome = Failed
	c.a.logf("%v", err)
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// summary is the log line of a cycle.
func summary(rep *CycleReport) string {
	s := fmt.Sprintf("cycle %s: release %d", rep.Outcome, rep.Release)
	if rep.Run != nil {
		s += fmt.Sprintf(", %d changed, %d failed", rep.Run.Summary.Changed, rep.Run.Summary.Failed)
	}
	if rep.Rollback != nil {
		s += fmt.Sprintf("; release %d rolled back: %s", rep.Rollback.From, rep.Rollback.Cause)
	}
	if rep.Error != "" {
		s += "; " + firstLine(rep.Error)
	}
	return s
}
