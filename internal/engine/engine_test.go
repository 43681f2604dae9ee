package engine_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// res builds a catalog resource from plain attributes.
func res(t testing.TB, addr string, attrs map[string]any, edges ...func(*catalog.Resource)) *catalog.Resource {
	t.Helper()
	a, err := catalog.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &catalog.Resource{Address: addr, Type: a.Type, Name: a.Name, Key: a.Key, Attributes: map[string]json.RawMessage{}}
	for k, v := range attrs {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r.Attributes[k] = raw
	}
	for _, e := range edges {
		e(r)
	}
	return r
}

func requires(addrs ...string) func(*catalog.Resource) {
	return func(r *catalog.Resource) { r.Require = append(r.Require, addrs...) }
}

func notifies(addrs ...string) func(*catalog.Resource) {
	return func(r *catalog.Resource) { r.Notify = append(r.Notify, addrs...) }
}

func sensitive(attrs ...string) func(*catalog.Resource) {
	return func(r *catalog.Resource) { r.Sensitive = append(r.Sensitive, attrs...) }
}

func newCatalog(rs ...*catalog.Resource) *catalog.Catalog {
	c := catalog.New("test")
	c.Resources = rs
	c.Sort()
	return c
}

// env returns an Env over a fresh temporary root.
func env(t testing.TB) (*resource.Env, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := fsroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	return &resource.Env{Root: root, Accounts: resource.NewAccounts(root)}, dir
}

func statuses(rep *report.Report) map[string]*report.Resource {
	m := map[string]*report.Resource{}
	for _, r := range rep.Resources {
		m[r.Address] = r
	}
	return m
}

func TestFailureSkipsDependentsAndTheRunGoesOn(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	cat := newCatalog(
		res(t, "exec.broken", map[string]any{"command": "exit 7"}),
		res(t, "file.a", map[string]any{"path": "/a", "content": "a"}, requires("exec.broken")),
		res(t, "file.b", map[string]any{"path": "/b", "content": "b"}, requires("file.a")),
		res(t, "file.c", map[string]any{"path": "/c", "content": "c"}),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
	got := statuses(rep)
	if got["exec.broken"].Status != report.Failed || !strings.Contains(got["exec.broken"].Error, "exited with status 7") {
		t.Errorf("exec.broken = %+v", got["exec.broken"])
	}
	if got["file.a"].Status != report.Skipped || got["file.a"].Error != "skipped: dependency exec.broken failed" {
		t.Errorf("file.a = %+v", got["file.a"])
	}
	if got["file.b"].Status != report.Skipped || got["file.b"].Error != "skipped: dependency file.a was skipped" {
		t.Errorf("file.b = %+v", got["file.b"])
	}
	if got["file.c"].Status != report.Changed {
		t.Errorf("file.c = %+v", got["file.c"])
	}
	if rep.Summary != (report.Summary{Total: 4, Changed: 1, Failed: 1, Skipped: 2}) {
		t.Errorf("summary = %+v", rep.Summary)
	}
	for _, f := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s was created although its dependency failed", f)
		}
	}
}

func TestOrderIsDependenciesFirstThenAddress(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	log := filepath.Join(dir, "log")
	step := func(name string) map[string]any {
		return map[string]any{"command": "echo " + name + " >> " + log}
	}
	cat := newCatalog(
		res(t, "exec.a", step("a"), requires("exec.z")),
		res(t, "exec.b", step("b")),
		res(t, "exec.z", step("z")),
		res(t, "exec.c", step("c"), requires("exec.a")),
	)
	for range 2 { // the same order every time
		_ = os.Remove(log)
		rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
		if rep.Failed() {
			t.Fatalf("run failed: %+v", rep)
		}
		data, _ := os.ReadFile(log)
		if got := strings.Fields(string(data)); strings.Join(got, " ") != "b z a c" {
			t.Errorf("order = %v, want b z a c", got)
		}
	}
}

func TestCycleIsRejectedByName(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	cat := newCatalog(
		res(t, "file.a", map[string]any{"path": "/a", "content": "a"}, requires("file.b")),
		res(t, "file.b", map[string]any{"path": "/b", "content": "b"}, requires("file.c")),
		res(t, "file.c", map[string]any{"path": "/c", "content": "c"}, requires("file.a")),
		res(t, "file.d", map[string]any{"path": "/d", "content": "d"}),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
	if rep.Error != "dependency cycle: file.a -> file.b -> file.c -> file.a" {
		t.Errorf("error = %q", rep.Error)
	}
	if rep.Summary.Skipped != 4 || rep.Summary.Changed != 0 {
		t.Errorf("summary = %+v, want everything skipped", rep.Summary)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a cyclic catalog changed the machine: %v", entries)
	}
}

// Notifications reach their target once, after all notifiers, and only when one changed.
func TestNotifyOnceAfterAllNotifiers(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	log := filepath.Join(dir, "restarts")
	cat := func(a, b string) *catalog.Catalog {
		return newCatalog(
			res(t, "file.a", map[string]any{"path": "/a", "content": a}, notifies("exec.restart")),
			res(t, "file.b", map[string]any{"path": "/b", "content": b}, notifies("exec.restart")),
			res(t, "exec.restart", map[string]any{
				"command": "test -f $SATCHEL_ROOT/a && test -f $SATCHEL_ROOT/b && echo restarted >> " + log, "refresh_only": true}),
		)
	}
	count := func() int {
		data, _ := os.ReadFile(log)
		return strings.Count(string(data), "restarted")
	}
	rep := engine.Run(context.Background(), cat("1", "1"), engine.Options{Env: e})
	if count() != 1 || !statuses(rep)["exec.restart"].Refreshed {
		t.Fatalf("after the first run: %d restarts, report %+v", count(), statuses(rep)["exec.restart"])
	}
	engine.Run(context.Background(), cat("1", "1"), engine.Options{Env: e})
	if count() != 1 {
		t.Errorf("a run without changes restarted: %d restarts", count())
	}
	engine.Run(context.Background(), cat("1", "2"), engine.Options{Env: e})
	if count() != 2 {
		t.Errorf("one changed notifier: %d restarts, want 2 in all", count())
	}
	rep = engine.Run(context.Background(), cat("3", "3"), engine.Options{Env: e, Noop: true})
	if count() != 2 {
		t.Errorf("a noop run restarted")
	}
	if r := statuses(rep)["exec.restart"]; r.Status != report.Changed || !r.Refreshed {
		t.Errorf("noop: the restart is not reported as pending: %+v", r)
	}
}

func TestSecretsAreRedactedEverywhere(t *testing.T) {
	t.Parallel()
	e, _ := env(t)
	cat := newCatalog(
		res(t, "file.secret", map[string]any{"path": "/secret", "content": "pw=correct-horse\n"}, sensitive("content")),
		res(t, "exec.leak", map[string]any{"command": "echo correct-horse; exit 1"}),
		res(t, "file.mention", map[string]any{"path": "/m", "content": "the password is pw=correct-horse\n"}),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
	out, err := report.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "correct-horse") {
		t.Errorf("the secret reached the report:\n%s", out)
	}
	if !strings.Contains(string(out), resource.Redacted) {
		t.Errorf("nothing was redacted:\n%s", out)
	}
}

func TestInterruptedRunSkipsTheRest(t *testing.T) {
	t.Parallel()
	e, _ := env(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cat := newCatalog(res(t, "file.a", map[string]any{"path": "/a", "content": "a"}))
	rep := engine.Run(ctx, cat, engine.Options{Env: e})
	if r := statuses(rep)["file.a"]; r.Status != report.Skipped || !strings.Contains(r.Error, "interrupted") {
		t.Errorf("file.a = %+v", r)
	}
}

// A graceful stop (Options.Stop) lets the command in flight finish and starts nothing
// after it.
func TestStopLetsTheResourceInFlightFinish(t *testing.T) {
	t.Parallel()
	e, root := env(t)
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := filepath.Join(t.TempDir(), "started")
	go func() {
		for stop.Err() == nil {
			if _, err := os.Stat(started); err == nil {
				cancel()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	cat := newCatalog(
		res(t, "exec.slow", map[string]any{"command": "touch " + started + "; sleep 0.5; echo done > \"$SATCHEL_ROOT/slow\""}),
		res(t, "file.after", map[string]any{"path": "/after", "content": "x"}, requires("exec.slow")),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e, Stop: stop})
	st := statuses(rep)
	if st["exec.slow"].Status != report.Changed {
		t.Errorf("exec.slow = %+v, want it finished", st["exec.slow"])
	}
	if st["file.after"].Status != report.Skipped || !strings.Contains(st["file.after"].Error, "interrupted") {
		t.Errorf("file.after = %+v, want it skipped", st["file.after"])
	}
	if data, err := os.ReadFile(filepath.Join(root, "slow")); err != nil || string(data) != "done\n" {
		t.Errorf("the command did not finish: %q, %v", data, err)
	}
}

func TestUndecodableResourceFails(t *testing.T) {
	t.Parallel()
	e, _ := env(t)
	cat := newCatalog(
		res(t, "file.bad", map[string]any{"path": "/bad", "content": "x", "colour": "red"}),
		res(t, "file.after", map[string]any{"path": "/after", "content": "x"}, requires("file.bad")),
	)
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
	got := statuses(rep)
	if got["file.bad"].Status != report.Failed || !strings.Contains(got["file.bad"].Error, `no attribute "colour"`) {
		t.Errorf("file.bad = %+v", got["file.bad"])
	}
	if got["file.after"].Status != report.Skipped {
		t.Errorf("file.after = %+v", got["file.after"])
	}
}

func TestLockExcludesASecondRun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state", "run.lock")
	first, err := engine.AcquireLock(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.AcquireLock(path, 0); err == nil || !strings.Contains(err.Error(), "another satchel run is in progress") {
		t.Fatalf("second lock: %v", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	second, err := engine.AcquireLock(path, 0)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	_ = second.Release()
	info, err := os.Stat(filepath.Dir(path))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode = %v, %v; want 0700", info.Mode(), err)
	}
}

// An account added earlier in the run (here by a line in /etc/passwd) can own a file later
// in the same run: name resolution is refreshed when the account files change.
func TestAccountAddedInTheSameRun(t *testing.T) {
	t.Parallel()
	e, dir := env(t)
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat := newCatalog(
		res(t, "line.alice", map[string]any{"path": "/etc/passwd", "line": "alice:x:4321:4321::/home/alice:/bin/sh"}),
		res(t, "file.note", map[string]any{"path": "/note", "content": "hi", "owner": "alice"}, requires("line.alice")),
	)
	// Resolve a name first, as a run that checks owners early would.
	if _, err := e.Accounts.UID("root"); err != nil {
		t.Fatal(err)
	}
	rep := engine.Run(context.Background(), cat, engine.Options{Env: e})
	if rep.Summary.Failed != 0 {
		t.Fatalf("run failed: %+v", statuses(rep)["file.note"])
	}
	info, err := os.Stat(filepath.Join(dir, "note"))
	if err != nil || info.Sys().(*syscall.Stat_t).Uid != 4321 {
		t.Errorf("note owner: %v, %v; want uid 4321", info, err)
	}
}

// What a resource could not check or do on this machine reaches the report as a note, not a
// change: under --root a service's running is not applicable, and the operator is told so.
// Notes are redacted like everything else.
func TestNotesReachTheReport(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed")
	}
	e, dir := env(t)
	unit := "[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.MkdirAll(filepath.Join(dir, "etc/systemd/system/multi-user.target.wants"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/systemd/system/squid.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/squid.service", filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/squid.service")); err != nil {
		t.Fatal(err)
	}
	cat := newCatalog(
		res(t, "service.squid", map[string]any{"name": "squid", "running": true, "enabled": true}),
		// A unit whose name is a secret, which a plan notes as missing.
		res(t, "service.hidden", map[string]any{"name": "correct-horse", "running": true}, sensitive("name")),
	)
	for _, noop := range []bool{true, false} {
		rep := engine.Run(context.Background(), cat, engine.Options{Env: e, Noop: noop})
		got := statuses(rep)
		squid := got["service.squid"]
		if squid.Status != report.Unchanged {
			t.Errorf("noop=%v: service.squid is %s (%s), want unchanged", noop, squid.Status, squid.Error)
		}
		if want := []string{"running: not applicable under --root (services start when the image boots)"}; !slices.Equal(squid.Notes, want) {
			t.Errorf("noop=%v: service.squid notes %q, want %q", noop, squid.Notes, want)
		}
		out, err := report.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"notes": [`) {
			t.Errorf("noop=%v: the JSON report has no notes:\n%s", noop, out)
		}
		if strings.Contains(string(out), "correct-horse") {
			t.Errorf("noop=%v: the secret reached the report:\n%s", noop, out)
		}
		if noop && !slices.ContainsFunc(got["service.hidden"].Notes, func(n string) bool { return strings.Contains(n, resource.Redacted+".service does not exist yet") }) {
			t.Errorf("plan: service.hidden notes %q, want the missing unit noted, its name redacted", got["service.hidden"].Notes)
		}
	}
}
