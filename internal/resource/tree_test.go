package resource_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/store"
)

// libEntry is an entry of a test library: a file's content, or a symlink's target.
type libEntry struct {
	content string
	target  string
	mode    os.FileMode
}

// addLibrary writes the entries below a fresh directory, stores it and returns its ID.
func addLibrary(t testing.TB, st *store.Store, entries map[string]libEntry) store.ID {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "library")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, e := range entries {
		hp := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if e.target != "" {
			err = os.Symlink(e.target, hp)
		} else {
			mode := e.mode
			if mode == 0 {
				mode = 0o644
			}
			if err = os.WriteFile(hp, []byte(e.content), mode); err == nil {
				err = os.Chmod(hp, mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	id, err := st.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// withContent gives the fixture a content store.
func (fx *fixture) withContent() *store.Store {
	fx.t.Helper()
	st, err := store.Open(filepath.Join(fx.t.TempDir(), "store"))
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.env.Content = st
	return st
}

func randomText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

func libV1() map[string]libEntry {
	return map[string]libEntry{
		"a.txt":      {content: "alpha\n"},
		"docs/b.txt": {content: "bravo\n"},
		"docs/c.bin": {content: randomText(1, 200_000)},
		"link":       {target: "a.txt"},
	}
}

func libV2() map[string]libEntry {
	v := libV1()
	c := []byte(v["docs/c.bin"].content)
	copy(c[100_000:], "an edit in the middle")
	v["docs/c.bin"] = libEntry{content: string(c)}
	v["a.txt"] = libEntry{content: "alpha two\n"}
	delete(v, "docs/b.txt")
	v["docs/d.txt"] = libEntry{content: "delta\n", mode: 0o600}
	v["link"] = libEntry{target: "docs/d.txt"}
	return v
}

func treeCat(path string, id store.ID, attrs map[string]any) *catalog.Resource {
	a := map[string]any{"path": path, "root": id.String()}
	for k, v := range attrs {
		a[k] = v
	}
	return cat("tree", "library", a)
}

// assertLibrary checks that the directory p holds exactly the entries.
func (fx *fixture) assertLibrary(p string, entries map[string]libEntry) {
	fx.t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(fx.host(p), func(hp string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(fx.host(p), hp)
		if d.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(hp)
			got[rel] = "-> " + target
			return nil
		}
		b, err := os.ReadFile(hp)
		info, _ := d.Info()
		got[rel] = fmt.Sprintf("%04o %s", info.Mode().Perm(), sha256Hex(string(b)))
		return err
	})
	if err != nil {
		fx.t.Fatal(err)
	}
	want := map[string]string{}
	for rel, e := range entries {
		if e.target != "" {
			want[rel] = "-> " + e.target
			continue
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		want[rel] = fmt.Sprintf("%04o %s", mode, sha256Hex(e.content))
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok && !yield(k) {
				return
			}
		}
	}) {
		if got[k] != want[k] {
			fx.t.Errorf("%s/%s: %q, want %q", p, k, got[k], want[k])
		}
	}
}

func TestTreeCreate(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	st := fx.withContent()
	id := addLibrary(t, st, libV1())
	noop, _ := fx.contract(treeCat("/srv/content/lib", id, nil),
		"ensure: absent -> present",
		"parents: absent -> /srv, /srv/content",
		"files:  -> 3 added (200.0 kB written)",
		"directories:  -> 1 added",
		"symlinks:  -> 1 added")
	if noop.Diff != "+ ./ (3 files, 1 directory, 1 symlink, 200.0 kB)\n" {
		t.Errorf("diff %q", noop.Diff)
	}
	fx.assertLibrary("/srv/content/lib", libV1())
	fx.assertNoBackups()
	fx.assertNoTemp("/srv/content")
}

// An update writes only what changed, takes the unchanged chunks of a changed file from
// the file in place, purges what the tree no longer has and backs up nothing.
func TestTreeUpdate(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	st := fx.withContent()
	v1, v2 := addLibrary(t, st, libV1()), addLibrary(t, st, libV2())
	fx.run(treeCat("/lib", v1, map[string]any{"purge": true}), true)
	fx.write("/lib/local.txt", "a teacher's file\n", 0o644)

	// What c.bin's new version shares with its old one is reused.
	files := map[string]*store.FileObject{}
	for _, id := range []store.ID{v1, v2} {
		if err := st.Walk(context.Background(), id, func(p string, e store.Entry, f *store.FileObject) error {
			if p == "docs/c.bin" {
				files[id.String()] = f
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	old := map[store.ID]bool{}
	for _, c := range files[v1.String()].Chunks {
		old[c.ID] = true
	}
	var reused int64
	for _, c := range files[v2.String()].Chunks {
		if old[c.ID] {
			reused += int64(c.Length)
		}
	}
	if reused < 100_000 {
		t.Fatalf("only %d bytes of c.bin reusable", reused)
	}
	written := int64(len("alpha two\n") + 200_000 + len("delta\n"))
	fx.contract(treeCat("/lib", v2, map[string]any{"purge": true}),
		fmt.Sprintf("files:  -> 1 added, 2 updated, 2 removed (%s written, %s of it reused from files in place)",
			store.HumanBytes(written), store.HumanBytes(reused)),
		"symlinks:  -> 1 updated")
	fx.assertLibrary("/lib", libV2())
	fx.assertNoBackups()

	// The diff lists the paths, in order.
	fx.run(treeCat("/lib", v1, map[string]any{"purge": true}), true)
	res := fx.run(treeCat("/lib", v2, map[string]any{"purge": true}), false)
	want := "~ a.txt (6 bytes -> 10 bytes)\n- docs/b.txt\n~ docs/c.bin (200.0 kB -> 200.0 kB)\n+ docs/d.txt (6 bytes)\n~ link (-> \"docs/d.txt\", was \"a.txt\")\n"
	if res.Diff != want {
		t.Errorf("diff\n%s\nwant\n%s", res.Diff, want)
	}
}

// Without purge, what the tree does not have stays; with it, only what the catalog manages
// otherwise stays.
func TestTreePurge(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	st := fx.withContent()
	id := addLibrary(t, st, libV1())
	fx.run(treeCat("/lib", id, nil), true)
	fx.write("/lib/local.txt", "local\n", 0o644)
	fx.write("/lib/local/managed", "managed by a file resource\n", 0o644)
	fx.write("/lib/local/other", "other\n", 0o644)
	fx.env.Managed = resource.NewPathSet([]string{"/lib", "/lib/local/managed"})
	assertChanges(t, "without purge", fx.run(treeCat("/lib", id, nil), true))
	if !fx.exists("/lib/local.txt") || !fx.exists("/lib/local/other") {
		t.Fatal("removed without purge")
	}
	fx.contract(treeCat("/lib", id, map[string]any{"purge": true}), "files:  -> 2 removed")
	if fx.exists("/lib/local.txt") || fx.exists("/lib/local/other") || !fx.exists("/lib/local/managed") {
		t.Error("purge removed the wrong entries")
	}
	fx.assertNoBackups()
}

func TestTreeOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	st := fx.withContent()
	id := addLibrary(t, st, libV1())
	fx.mkdir("/lib", 0o755)
	fx.contract(treeCat("/lib", id, map[string]any{"owner": "alice", "group": "web"}),
		"files:  -> 3 added (200.0 kB written)", "directories:  -> 1 added", "symlinks:  -> 1 added",
		"modes and owners:  -> 1 fixed")
	for _, p := range []string{"/lib", "/lib/a.txt", "/lib/docs", "/lib/docs/c.bin", "/lib/link"} {
		if s := fx.lstat(p); s.Uid != 1234 || s.Gid != 2346 {
			t.Errorf("%s: owner %d:%d, want 1234:2346", p, s.Uid, s.Gid)
		}
	}
	fx.chown("/lib/docs/b.txt", 0, 0)
	fx.contract(treeCat("/lib", id, map[string]any{"owner": "alice", "group": "web"}), "modes and owners:  -> 1 fixed")
}

// A file edited in place is found, by its stat; verify = "content" finds even one whose
// stat was put back.
func TestTreeVerify(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	st := fx.withContent()
	id := addLibrary(t, st, libV1())
	fx.run(treeCat("/lib", id, nil), true)
	fx.write("/lib/a.txt", "ALPHA\n", 0o644)
	fx.contract(treeCat("/lib", id, nil), "files:  -> 1 updated (6 bytes written)")

	// An edit that keeps size and mtime, and a cache that believes it (an index whose
	// ctime and inode were faked is out of reach of a test; a stale cache is).
	info, _ := os.Stat(fx.host("/lib/docs/b.txt"))
	fx.write("/lib/docs/b.txt", "BRAVO\n", 0o644)
	if err := os.Chtimes(fx.host("/lib/docs/b.txt"), info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	fx.contract(treeCat("/lib", id, map[string]any{"verify": "content"}), "files:  -> 1 updated (6 bytes written)")
	fx.assertLibrary("/lib", libV1())
}

func TestTreeErrors(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cr := treeCat("/lib", store.Sum([]byte("nothing")), nil)
	fx.wantErr(cr, "no content store configured: tree resources need one (satchel apply --store DIR)")

	st := fx.withContent()
	missing := store.Sum([]byte("nothing"))
	fx.wantErr(cr, fmt.Sprintf("tree %s is not in the content store %s: fetch it or add it first (satchel store add)", missing, st.Dir()))

	id := addLibrary(t, st, libV1())
	fx.write("/file", "x", 0o644)
	fx.wantErr(treeCat("/file", id, nil), fmt.Sprintf("%s is a file, not a directory; remove it or mirror the tree elsewhere", fx.host("/file")))

	// A chunk missing from the store: named, and nothing written.
	if err := st.Walk(context.Background(), id, func(p string, e store.Entry, f *store.FileObject) error {
		if p == "docs/c.bin" {
			return os.Remove(st.ChunkPath(f.Chunks[0].ID))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fx.mkdir("/lib", 0o755)
	before := fx.snapshot()
	_, err := fx.runErr(treeCat("/lib", id, nil), true)
	if !strings.Contains(err.Error(), "1 chunks") || !strings.Contains(err.Error(), "fetch them first") {
		t.Errorf("error %v", err)
	}
	fx.assertUnchanged(before, "a run with a missing chunk")

	_, err = resource.New(cat("tree", "library", map[string]any{"path": "/lib", "root": "ABC"}))
	if err == nil || !strings.Contains(err.Error(), "Invalid tree ID") {
		t.Errorf("bad root: %v", err)
	}
}

// manyFiles is a tree of n small files in directories of 1,000, stored and materialized
// at /lib in a fresh root: the no-op check is what is measured.
type manyFiles struct {
	env *resource.Env
	cr  *catalog.Resource
}

func newManyFiles(tb testing.TB, n int, tempDir func(testing.TB) string) *manyFiles {
	tb.Helper()
	src := filepath.Join(tempDir(tb), "library")
	for i := range n {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.txt", i%1000)), fmt.Appendf(nil, "file %d\n", i), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(tempDir(tb), "store"))
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	id, err := st.AddTree(context.Background(), src, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%d files: stored in %v", n, time.Since(start).Round(time.Millisecond))
	dir := tempDir(tb)
	root, err := fsroot.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { root.Close() })
	m := &manyFiles{
		env: &resource.Env{Root: root, Content: st, Accounts: resource.NewAccounts(root),
			Managed: resource.NewPathSet([]string{"/lib"}), Log: slog.New(slog.DiscardHandler)},
		cr: treeCat("/lib", id, map[string]any{"purge": true}),
	}
	start = time.Now()
	res := m.check(tb, true)
	tb.Logf("%d files: materialized in %v: %v", n, time.Since(start).Round(time.Millisecond), res.Changes[1])
	// The files written in the last moments before the cache was saved are racy: a run
	// hashes them again and settles them.
	m.check(tb, true)
	return m
}

func (m *manyFiles) check(tb testing.TB, apply bool) *resource.Result {
	tb.Helper()
	r, err := resource.New(m.cr)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := r.CheckApply(context.Background(), m.env, apply)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// memDir returns a temporary directory in memory (/dev/shm) if there is one: creating and
// removing tens of thousands of files on a shared disk takes longer than what is tested.
func memDir(tb testing.TB) string {
	tb.Helper()
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "satchel-test-"); err == nil {
			tb.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// TestTreeManyFiles: a no-op check of 20,000 files changes nothing, and one edited file
// among them is found and rewritten alone. BenchmarkTreeNoop measures the speed, at
// 20,000 and 100,000 files.
func TestTreeManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 20_000
	m := newManyFiles(t, n, memDir)
	start := time.Now()
	res := m.check(t, false)
	elapsed := time.Since(start)
	assertChanges(t, "no-op check", res)
	t.Logf("%d files: no-op check in %v", n, elapsed.Round(time.Millisecond))
	// One changed file is found and rewritten, alone.
	p := m.env.Root.HostPath("/lib/d007/f0123.txt")
	if err := os.WriteFile(p, []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	assertChanges(t, "after an edit", m.check(t, true), "files:  -> 1 updated (10 bytes written)")
	assertChanges(t, "after repairing", m.check(t, false))
}

// BenchmarkTreeNoop measures the no-op check of a tree resource (as `satchel plan` runs
// it) on a materialized tree of small files.
func BenchmarkTreeNoop(b *testing.B) {
	for _, n := range []int{20_000, 100_000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			m := newManyFiles(b, n, testing.TB.TempDir)
			for b.Loop() {
				if res := m.check(b, false); res.Changed() {
					b.Fatalf("changes: %v", res.Changes)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
