package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/spool"
	"github.com/satchelcm/satchel/internal/store"
)

// Two releases, from a directory, from net/http's file server and from python3's
// http.server: the node converges to each in turn, then re-applies the last one, repairing
// drift, with nothing new downloaded.
func TestTwoReleases(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"dir", "go-http", "python-http"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			remote := f.repo
			switch kind {
			case "go-http":
				remote = serveGo(t, f.repo)
			case "python-http":
				remote = servePython(t, f.repo)
			}
			opts := f.options(remote)
			m1 := f.release("1", "setting = 1\n")
			rep := f.cycle(opts)
			if rep.Outcome != Applied || rep.Release != 1 || rep.Run.Summary.Changed != 2 {
				t.Fatalf("first cycle: %s, release %d, error %q; want release 1 applied with 2 changes", rep.Outcome, rep.Release, rep.Error)
			}
			f.wantFiles("1", "setting = 1\n")

			f.release("2", "setting = 2\n")
			rep = f.cycle(opts)
			if rep.Outcome != Applied || rep.Release != 2 || rep.Attempted != 2 {
				t.Fatalf("second cycle: %s, release %d, error %q; want release 2 applied", rep.Outcome, rep.Release, rep.Error)
			}
			f.wantFiles("2", "setting = 2\n")
			if rep.Transfer.Bytes == 0 || rep.Transfer.Pulls != 1 || rep.Transfer.Deltas != 1 {
				t.Errorf("second cycle transfer %+v: want one pull of the new config, by the delta from release 1's", rep.Transfer)
			}
			// Release 1's config left the node's store and its checkout is gone.
			s, err := store.Open(filepath.Join(f.state, storeDirName))
			must(t, err)
			if s.HasObject(m1.Config) {
				t.Error("release 1's config tree is still in the node's store after release 2 was applied")
			}
			if _, err := os.Stat(filepath.Join(f.state, releasesDirName, "1")); !os.IsNotExist(err) {
				t.Errorf("release 1's checkout: %v, want it removed", err)
			}

			// Drift: the agent puts it right without any new release, downloading nothing.
			must(t, os.WriteFile(filepath.Join(f.root, "etc/motd"), []byte("defaced\n"), 0o644))
			rep = f.cycle(opts)
			if rep.Outcome != Reapplied || rep.Release != 2 || rep.Run.Summary.Changed != 1 || rep.Transfer.Pulls != 0 {
				t.Fatalf("third cycle: %s, release %d, %d changed, transfer %+v; want release 2 re-applied, 1 change, nothing pulled", rep.Outcome, rep.Release, rep.Run.Summary.Changed, rep.Transfer)
			}
			f.wantFiles("2", "setting = 2\n")
			st := f.readState()
			if st.Good == nil || st.Good.Version != 2 || st.LastRun == nil || st.LastRun.Outcome != Reapplied || st.Failures != 0 {
				t.Errorf("state after three cycles: %+v", st)
			}
			entries, err := readSpool(f)
			must(t, err)
			if len(entries) != 3 || entries[0].Outcome != Applied || entries[2].Outcome != Reapplied || entries[2].Format != ReportFormat || entries[2].Node != "school-1" {
				t.Errorf("spool: %d reports %+v; want 3, applied first, reapplied last", len(entries), entries)
			}
		})
	}
}

// readSpool decodes the reports in the node's spool, oldest first.
func readSpool(f *fleet) ([]CycleReport, error) {
	sp, err := spool.Open(filepath.Join(f.state, spoolDirName), DefaultSpoolMax)
	if err != nil {
		return nil, err
	}
	list, err := sp.List()
	if err != nil {
		return nil, err
	}
	var out []CycleReport
	for _, e := range list {
		data, err := sp.Read(e.Name)
		if err != nil {
			return nil, err
		}
		var r CycleReport
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// With no repository reachable, the node keeps re-applying its last good release.
func TestOfflineReappliesLastGood(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	f.cycle(f.options(f.repo))
	must(t, os.Remove(filepath.Join(f.root, "etc/app.conf")))
	rep := f.cycle(f.options(filepath.Join(f.base, "unplugged-usb-stick"), "http://127.0.0.1:1/"))
	if rep.Outcome != Reapplied || rep.Run.Summary.Changed != 1 || len(rep.RefreshErrors) != 2 {
		t.Fatalf("offline cycle: %s, refresh errors %q; want release 1 re-applied, 2 repositories failing", rep.Outcome, rep.RefreshErrors)
	}
	f.wantFiles("1", "a\n")
	if st := f.readState(); st.Failures != 0 || st.Good.Version != 1 {
		t.Errorf("state: %+v", st)
	}
}

// A mirror replaying an older copy of the repository (old trust metadata, older
// release) is refused, whatever channel brings it, and nothing of it is applied.
func TestReplayRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	old := f.snapshot()
	f.release("2", "b\n")
	f.cycle(f.options(f.repo))
	f.wantFiles("2", "b\n")
	for name, remote := range map[string]string{"dir": old, "http": serveGo(t, old)} {
		rep := f.cycle(f.options(remote))
		if len(rep.RefreshErrors) != 1 || !strings.Contains(rep.RefreshErrors[0], "REFUSED") || !strings.Contains(rep.RefreshErrors[0], "rollback or replay") {
			t.Errorf("%s: refresh errors %q, want the replay refused", name, rep.RefreshErrors)
		}
		if rep.Outcome != Reapplied || rep.Release != 2 {
			t.Errorf("%s: %s release %d, want release 2 re-applied", name, rep.Outcome, rep.Release)
		}
		f.wantFiles("2", "b\n")
	}
}

// A repository signed by keys the node does not trust is refused; nothing is applied.
func TestUnknownKeysRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	f.cycle(f.options(f.repo))
	other := newFleet(t) // same config, its own keys
	other.config = f.config
	other.release("2", "forged\n")
	rep := f.cycle(f.options(other.repo))
	if len(rep.RefreshErrors) != 1 || !strings.Contains(rep.RefreshErrors[0], "not enough signatures") || rep.Outcome != Reapplied || rep.Release != 1 {
		t.Fatalf("forged repository: %s release %d, refresh errors %q; want it refused and release 1 re-applied", rep.Outcome, rep.Release, rep.RefreshErrors)
	}
	f.wantFiles("1", "a\n")
}

// A chunk modified or truncated on the mirror is refused; the release is not applied
// until the mirror has it right, and then it is.
func TestDamagedChunkRefused(t *testing.T) {
	t.Parallel()
	for _, damage := range []string{"modified", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			f.release("1", "a\n")
			opts := f.options(f.repo)
			opts.Config.Repositories = []string{serveGo(t, f.repo)}
			f.cycle(opts)
			before := map[string]bool{}
			for _, p := range f.chunkFiles() {
				before[p] = true
			}
			f.release("2", strings.Repeat("new content ", 100))
			var added []string
			for _, p := range f.chunkFiles() {
				if !before[p] {
					added = append(added, p)
				}
			}
			if len(added) == 0 {
				t.Fatal("release 2 added no chunk")
			}
			saved := map[string][]byte{}
			for _, p := range added {
				data, err := os.ReadFile(p)
				must(t, err)
				saved[p] = data
				bad := append([]byte(nil), data...)
				if damage == "modified" {
					bad[len(bad)/2] ^= 0x55
				} else {
					bad = bad[:len(bad)/2]
				}
				must(t, os.WriteFile(p, bad, 0o644))
			}
			// The delta carries the same bytes: remove it so the chunk files are what is read.
			must(t, os.RemoveAll(filepath.Join(f.repo, release.StoreDir, "deltas")))
			rep := f.cycle(opts)
			if rep.Outcome != Reapplied || rep.Release != 1 || !strings.Contains(rep.Error, "release 2") || !strings.Contains(rep.Error, "corrupt") {
				t.Fatalf("damaged chunk: %s release %d error %q; want release 2 refused, 1 re-applied", rep.Outcome, rep.Release, rep.Error)
			}
			f.wantFiles("1", "a\n")
			for p, data := range saved {
				must(t, os.WriteFile(p, data, 0o644))
			}
			rep = f.cycle(opts)
			if rep.Outcome != Applied || rep.Release != 2 {
				t.Fatalf("repaired mirror: %s release %d error %q; want release 2 applied", rep.Outcome, rep.Release, rep.Error)
			}
			f.wantFiles("2", strings.Repeat("new content ", 100))
		})
	}
}

// A release whose health check fails is rolled back: the previous release's files are
// back, the failed release is not tried again, and a newer one is.
func TestHealthCheckRollback(t *testing.T) {
	t.Parallel()
	f, opts := withRelease1(t)
	must(t, os.WriteFile(filepath.Join(f.root, "etc/unmanaged"), []byte("keep\n"), 0o644))
	bad := release.HealthCheck{Name: "web", Command: []string{"sh", "-c", "echo checking $SATCHEL_RELEASE; test \"$(cat \"$SATCHEL_ROOT/etc/app.conf\")\" = ok"}, Timeout: 10 * time.Second}
	f.release("2", "broken\n", bad)
	rep := f.cycle(opts)
	if rep.Outcome != RolledBack || rep.Rollback == nil || rep.Rollback.From != 2 || rep.Rollback.To != 1 || rep.Release != 1 {
		t.Fatalf("bad release: %s, rollback %+v; want release 2 rolled back to 1", rep.Outcome, rep.Rollback)
	}
	if !strings.Contains(rep.Rollback.Cause, "health check web failed: exit status 1") || rep.Rollback.Restored != 2 {
		t.Errorf("rollback %+v: want the health check named and 2 files restored", rep.Rollback)
	}
	if len(rep.HealthChecks) != 1 || rep.HealthChecks[0].OK || rep.HealthChecks[0].Output != "checking 2\n" {
		t.Errorf("health checks %+v", rep.HealthChecks)
	}
	if rep.FailedRun == nil || rep.FailedRun.Summary.Changed != 2 {
		t.Errorf("the failed run's report is missing: %+v", rep.FailedRun)
	}
	f.wantFiles("1", "a\n")
	if f.read("etc/unmanaged") != "keep\n" {
		t.Error("rollback touched an unmanaged file")
	}
	st := f.readState()
	if st.Good.Version != 1 || st.FailedRelease != 2 || st.LastError == "" {
		t.Errorf("state after rollback: good %d failed %d error %q", st.Good.Version, st.FailedRelease, st.LastError)
	}

	// Not retried.
	rep = f.cycle(opts)
	if rep.Outcome != Reapplied || rep.Release != 1 || rep.Attempted != 0 {
		t.Fatalf("after rollback: %s release %d attempted %d; want release 1 re-applied, 2 not retried", rep.Outcome, rep.Release, rep.Attempted)
	}
	f.wantFiles("1", "a\n")

	// A newer, healthy release is applied.
	f.release("3", "ok", bad)
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 3 {
		t.Fatalf("release 3: %s release %d error %q", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("3", "ok")
}

// A release whose run fails (a resource fails) is rolled back as well.
func TestFailedRunRollback(t *testing.T) {
	t.Parallel()
	f, opts := withRelease1(t)
	f.writeConfig("2", "b\n")
	f.addResources("fail", `  exec "fails" {
    argv    = ["false"]
    require = [file.motd]
  }
`)
	f.publish(release.Options{})
	rep := f.cycle(opts)
	if rep.Outcome != RolledBack || !strings.Contains(rep.Rollback.Cause, "exec.fails") {
		t.Fatalf("failing run: %s rollback %+v error %q; want rolled back naming exec.fails", rep.Outcome, rep.Rollback, rep.Error)
	}
	f.wantFiles("1", "a\n")
}

// A first release that fails has nothing to roll back to: the node keeps what it did and
// tries it again at the next cycle, and applies it once it succeeds.
func TestFirstReleaseFailingIsRetried(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	opts := f.options(f.repo)
	marker := filepath.Join(f.base, "healthy")
	f.release("1", "a\n", release.HealthCheck{Name: "marker", Command: []string{"test", "-e", marker}, Timeout: 10 * time.Second})
	rep := f.cycle(opts)
	if rep.Outcome != Failed || rep.Rollback != nil || !strings.Contains(rep.Error, "release 1 failed: health check marker failed") || !strings.Contains(rep.Error, "tried again next cycle") {
		t.Fatalf("failing first release: %s rollback %+v error %q", rep.Outcome, rep.Rollback, rep.Error)
	}
	if st := f.readState(); st.Good != nil || st.FailedRelease != 0 || st.Failures != 1 {
		t.Errorf("state: %+v; want no good release, none marked failed, 1 failure", st)
	}
	must(t, os.WriteFile(marker, nil, 0o644))
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 1 {
		t.Fatalf("retry: %s release %d error %q; want release 1 applied", rep.Outcome, rep.Release, rep.Error)
	}
}

// Rollback puts back what the failed release changed even where the good release manages
// nothing: a file only the failed release wrote is as it was before it, and one it created
// is gone.
func TestRollbackRestoresFilesOnlyTheFailedReleaseManaged(t *testing.T) {
	t.Parallel()
	f, opts := withRelease1(t)
	must(t, os.WriteFile(filepath.Join(f.root, "etc/other"), []byte("original\n"), 0o640))
	f.writeConfig("2", "b\n")
	f.addResources("other", otherFile+`  file "cron" {
    path    = "/etc/cron.d/release2"
    content = "* * * * * root reboot\n"
  }
`)
	f.publish(release.Options{HealthChecks: []release.HealthCheck{{Name: "never", Command: []string{"false"}, Timeout: 10 * time.Second}}})
	rep := f.cycle(opts)
	if rep.Outcome != RolledBack || rep.Rollback.Restored != 3 || rep.Rollback.Removed != 1 || rep.Error != "" {
		t.Fatalf("%s, rollback %+v, error %q; want rolled back with 3 files restored and 1 removed", rep.Outcome, rep.Rollback, rep.Error)
	}
	if _, err := os.Lstat(filepath.Join(f.root, "etc/cron.d/release2")); !os.IsNotExist(err) {
		t.Errorf("the file release 2 created survived its rollback: %v", err)
	}
	if got := f.read("etc/other"); got != "original\n" {
		t.Errorf("/etc/other after the rollback = %q, want the original", got)
	}
	info, err := os.Stat(filepath.Join(f.root, "etc/other"))
	must(t, err)
	if info.Mode().Perm() != 0o640 {
		t.Errorf("/etc/other mode %v, want 0640 as before", info.Mode().Perm())
	}
	f.wantFiles("1", "a\n")
}

// deathFixture applies release 1, then release 2 — which rewrites /etc/other and creates
// /etc/cron.d/release2 — and returns the state file as it was saved before release 2's
// run, and the backup store's mark then. A death is simulated by putting that state back
// (with an open attempt): a process cannot be killed mid-run inside a test without killing
// the test.
func deathFixture(t *testing.T) (f *fleet, opts Options, before State, mark string) {
	f = newFleet(t)
	opts = f.options(f.repo)
	f.release("1", "a\n")
	f.cycle(opts)
	must(t, os.WriteFile(filepath.Join(f.root, "etc/other"), []byte("original\n"), 0o644))
	saved, err := os.ReadFile(filepath.Join(f.state, stateFileName))
	must(t, err)
	must(t, json.Unmarshal(saved, &before))
	f.writeConfig("2", "b\n")
	f.addResources("other", otherFile+`  file "cron" {
    path    = "/etc/cron.d/release2"
    content = "* * * * * root reboot\n"
  }
`)
	f.publish(release.Options{})
	mark, err = f.backups(t).Mark()
	must(t, err)
	if rep := f.cycle(opts); rep.Outcome != Applied {
		t.Fatalf("release 2: %s", rep.Outcome)
	}
	return f, opts, before, mark
}

func (f *fleet) backups(t *testing.T) *backup.Store {
	b, err := backup.Open(filepath.Join(f.state, backupsDirName))
	must(t, err)
	return b
}

// An agent that dies once while applying a release (a stop that outlasted systemd's
// patience, a power cut) tries it again at its next start.
func TestDeathDuringAttemptRetriedOnce(t *testing.T) {
	t.Parallel()
	f, opts, st, mark := deathFixture(t)
	st.Attempt = &Attempt{Version: 2, BackupMark: mark, Started: time.Now().UTC()}
	must(t, writeState(f.state, &st))
	rep := f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 2 || rep.Rollback != nil {
		t.Fatalf("after one death: %s release %d rollback %+v; want release 2 tried again and applied", rep.Outcome, rep.Release, rep.Rollback)
	}
	if !strings.Contains(f.log.String(), "trying it again; if it stops again, the release is rolled back") {
		t.Errorf("log: %s", f.log)
	}
	if st := f.readState(); st.Attempt != nil || st.Good.Version != 2 {
		t.Errorf("state: attempt %+v good %d", st.Attempt, st.Good.Version)
	}
}

// An agent that dies twice while applying a release (a release that reboots the machine)
// rolls it back at its next start: files put back, files it created removed.
func TestDeathsDuringAttemptRollBack(t *testing.T) {
	t.Parallel()
	f, opts, st, mark := deathFixture(t)
	st.Attempt = &Attempt{Version: 2, BackupMark: mark, Started: time.Now().UTC(), Deaths: 1}
	must(t, writeState(f.state, &st))
	rep := f.cycle(opts)
	if rep.Outcome != RolledBack || rep.Rollback.From != 2 || rep.Rollback.To != 1 || !strings.Contains(rep.Rollback.Cause, "the agent stopped twice while applying release 2") || rep.Error != "" {
		t.Fatalf("after two deaths: %s rollback %+v error %q", rep.Outcome, rep.Rollback, rep.Error)
	}
	f.wantFiles("1", "a\n")
	if got := f.read("etc/other"); got != "original\n" {
		t.Errorf("/etc/other = %q, want the original", got)
	}
	if st := f.readState(); st.FailedRelease != 2 || st.Attempt != nil || st.Good.Version != 1 {
		t.Errorf("state: failed %d attempt %+v good %d", st.FailedRelease, st.Attempt, st.Good.Version)
	}
	if rep := f.cycle(opts); rep.Outcome != Reapplied || rep.Release != 1 {
		t.Errorf("next cycle: %s release %d; want release 1 re-applied, 2 not retried", rep.Outcome, rep.Release)
	}
}

// A death during a rollback is followed by the same rollback: what the rollback itself
// saved to the backup store (the created file it removed) is not taken for the release's.
func TestDeathDuringRollbackResumes(t *testing.T) {
	t.Parallel()
	f, opts, st, mark := deathFixture(t)
	b := f.backups(t)
	until, err := b.Mark()
	must(t, err)
	// The rollback had begun: it removed the file release 2 created, saving it first...
	root, err := fsroot.Open(f.root)
	must(t, err)
	env := &resource.Env{Root: root, Backup: b}
	must(t, resource.BackupFile(env, "/etc/cron.d/release2", "removed by the rollback of release 2"))
	must(t, root.Remove("/etc/cron.d/release2"))
	root.Close()
	// ... then the agent died.
	st.Attempt = &Attempt{Version: 2, BackupMark: mark, Started: time.Now().UTC(),
		Rollback: &RollbackPlan{Cause: "health check web failed", UntilMark: until, Created: []string{"/etc/cron.d/release2"}}}
	must(t, writeState(f.state, &st))
	rep := f.cycle(opts)
	if rep.Outcome != RolledBack || rep.Rollback.Cause != "health check web failed" || rep.Error != "" {
		t.Fatalf("resumed rollback: %s %+v error %q", rep.Outcome, rep.Rollback, rep.Error)
	}
	if _, err := os.Lstat(filepath.Join(f.root, "etc/cron.d/release2")); !os.IsNotExist(err) {
		t.Errorf("the file release 2 created is back after the resumed rollback: %v", err)
	}
	if got := f.read("etc/other"); got != "original\n" {
		t.Errorf("/etc/other = %q, want the original", got)
	}
	f.wantFiles("1", "a\n")
	if st := f.readState(); st.FailedRelease != 2 || st.Attempt != nil {
		t.Errorf("state: failed %d attempt %+v", st.FailedRelease, st.Attempt)
	}
}

// A stop (SIGTERM) during a release's run lets the resource in flight finish and starts
// nothing else; the release is not rolled back but tried again at the next start.
func TestInterruptedAttemptIsRetried(t *testing.T) {
	t.Parallel()
	f, opts := withRelease1(t)
	f.writeConfig("2", "b\n")
	started := filepath.Join(f.base, "slow-started")
	f.addResources("slow", `  exec "slow" {
    argv    = ["sh", "-c", "touch `+started+`; sleep 1"]
    creates = "/etc/slow-done"
  }
  file "slow_done" {
    path    = "/etc/slow-done"
    content = "done\n"
    require = [exec.slow]
  }
`)
	f.publish(release.Options{})
	a, err := Open(opts)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // stop the agent while exec.slow runs
		for ctx.Err() == nil {
			if _, err := os.Stat(started); err == nil {
				cancel()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer cancel()
	rep, err := a.Cycle(ctx)
	a.Close()
	must(t, err)
	if rep.Outcome != Interrupted || rep.Rollback != nil {
		t.Fatalf("stopped cycle: %s rollback %+v error %q; want interrupted", rep.Outcome, rep.Rollback, rep.Error)
	}
	st := f.readState()
	if st.Attempt == nil || !st.Attempt.Interrupted || st.Attempt.Version != 2 || st.FailedRelease != 0 || st.Good.Version != 1 {
		t.Fatalf("state after the stop: %+v", st)
	}
	if f.read("etc/slow-done") != "" {
		t.Error("a resource started after the stop")
	}
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 2 {
		t.Fatalf("next start: %s release %d error %q; want release 2 applied", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("2", "b\n")
	if st := f.readState(); st.Attempt != nil {
		t.Errorf("attempt still open: %+v", st.Attempt)
	}
}

// A release whose tree resource mirrors a content library: the library is pulled from the
// repository's store, then its next version by the delta from the one the node holds.
func TestContentLibrary(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	ctx := context.Background()
	repoStore, err := store.Open(filepath.Join(f.repo, release.StoreDir))
	must(t, err)
	lib := filepath.Join(f.base, "library")
	must(t, os.MkdirAll(filepath.Join(lib, "books"), 0o755))
	must(t, os.WriteFile(filepath.Join(lib, "books", "a.txt"), []byte(randomText(3, 300<<10)), 0o644))
	must(t, os.WriteFile(filepath.Join(lib, "index.html"), []byte("<h1>library v1</h1>\n"), 0o644))
	v1, err := repoStore.Add(ctx, lib, nil)
	must(t, err)
	tree := func(id store.ID) string {
		return `  tree "library" {
    path = "/srv/library"
    root = "` + id.String() + `"
  }
`
	}
	f.writeConfig("1", "a\n")
	f.addResources("library", tree(v1))
	f.publish(release.Options{})
	opts := f.options(serveGo(t, f.repo))
	rep := f.cycle(opts)
	if rep.Outcome != Applied || rep.Transfer.Pulls != 2 {
		t.Fatalf("release 1: %s error %q transfer %+v; want applied with the config and the library pulled", rep.Outcome, rep.Error, rep.Transfer)
	}
	if got := f.read("srv/library/index.html"); got != "<h1>library v1</h1>\n" {
		t.Fatalf("library index = %q", got)
	}
	first := rep.Transfer.Bytes

	// Version 2 of the library: one small file changed; the office builds the delta.
	must(t, os.WriteFile(filepath.Join(lib, "index.html"), []byte("<h1>library v2</h1>\n"), 0o644))
	v2, err := repoStore.Add(ctx, lib, nil)
	must(t, err)
	_, err = repoStore.BuildDelta(ctx, v1, v2, nil)
	must(t, err)
	f.writeConfig("2", "a\n")
	f.addResources("library", tree(v2))
	f.publish(release.Options{})
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Transfer.Deltas != 2 {
		t.Fatalf("release 2: %s error %q transfer %+v; want applied, config and library by delta", rep.Outcome, rep.Error, rep.Transfer)
	}
	if got := f.read("srv/library/index.html"); got != "<h1>library v2</h1>\n" {
		t.Fatalf("library index = %q", got)
	}
	if rep.Transfer.Bytes*20 > first {
		t.Errorf("release 2 downloaded %d bytes, release 1 %d: want the delta far smaller", rep.Transfer.Bytes, first)
	}
	t.Logf("release 1: %d bytes; release 2: %d bytes", first, rep.Transfer.Bytes)
}
