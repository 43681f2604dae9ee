package resource_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
)

// fixture is one test's world: a root directory (the node, or an image), a config
// repository with files/, a backup store and a directory outside all of them for sentinels.
// Every one is a fresh t.TempDir(); nothing is mocked.
type fixture struct {
	t        *testing.T
	dir      string // the root, on the host
	root     *fsroot.Root
	repo     string // the config repository
	storeDir string
	store    *backup.Store
	outside  string // not under the root: nothing may ever be written here
	env      *resource.Env
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{t: t, dir: t.TempDir(), repo: t.TempDir(), storeDir: t.TempDir(), outside: t.TempDir()}
	var err error
	if fx.root, err = fsroot.Open(fx.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.root.Close() })
	if err := os.Mkdir(filepath.Join(fx.repo, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	sources, err := resource.NewDirSources(fx.repo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sources.Close() })
	if fx.store, err = backup.Open(fx.storeDir); err != nil {
		t.Fatal(err)
	}
	fx.env = &resource.Env{
		Root:     fx.root,
		Sources:  sources,
		Backup:   fx.store,
		Accounts: resource.NewAccounts(fx.root),
		Managed:  resource.NewPathSet(nil),
		Log:      slog.New(slog.DiscardHandler),
	}
	return fx
}

// host returns where the catalog path p lies on the host.
func (fx *fixture) host(p string) string { return filepath.Join(fx.dir, p) }

// write creates the file p inside the root (and its parents) with content and exactly mode.
func (fx *fixture) write(p, content string, mode fs.FileMode) {
	fx.t.Helper()
	writeHost(fx.t, fx.host(p), content, mode)
}

func writeHost(t *testing.T, hp, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	chmodHost(t, hp, mode)
}

// chmodHost sets exactly the st_mode permission bits perm (0o4755 is setuid), whatever the
// umask. Test modes are written as chmod(1) takes them, not as os.FileMode flags.
func chmodHost(t *testing.T, hp string, perm fs.FileMode) {
	t.Helper()
	if err := syscall.Chmod(hp, uint32(perm)); err != nil {
		t.Fatal(err)
	}
}

// mkdir creates the directory p inside the root (and its parents) with exactly mode.
func (fx *fixture) mkdir(p string, mode fs.FileMode) {
	fx.t.Helper()
	if err := os.MkdirAll(fx.host(p), 0o755); err != nil {
		fx.t.Fatal(err)
	}
	chmodHost(fx.t, fx.host(p), mode)
}

// symlink creates the link p inside the root pointing to target, stored as given.
func (fx *fixture) symlink(target, p string) {
	fx.t.Helper()
	if err := os.MkdirAll(filepath.Dir(fx.host(p)), 0o755); err != nil {
		fx.t.Fatal(err)
	}
	if err := os.Symlink(target, fx.host(p)); err != nil {
		fx.t.Fatal(err)
	}
}

func (fx *fixture) chown(p string, uid, gid int) {
	fx.t.Helper()
	if err := os.Lchown(fx.host(p), uid, gid); err != nil {
		fx.t.Fatal(err)
	}
}

// read returns the content of the file p inside the root.
func (fx *fixture) read(p string) string {
	fx.t.Helper()
	return readHost(fx.t, fx.host(p))
}

func readHost(t *testing.T, hp string) string {
	t.Helper()
	b, err := os.ReadFile(hp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lstat is the raw lstat(2) of p inside the root.
func (fx *fixture) lstat(p string) *syscall.Stat_t {
	fx.t.Helper()
	return lstatHost(fx.t, fx.host(p))
}

func lstatHost(t *testing.T, hp string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(hp, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// exists reports whether anything (even a dangling link) is at p inside the root.
func (fx *fixture) exists(p string) bool {
	_, err := os.Lstat(fx.host(p))
	return err == nil
}

// assertFile checks the content, permission bits (st_mode & 07777) and ids of p.
func (fx *fixture) assertFile(p, content string, perm uint32, uid, gid int) {
	fx.t.Helper()
	st := fx.lstat(p)
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		fx.t.Fatalf("%s: type %#o, want a regular file", p, st.Mode&syscall.S_IFMT)
	}
	if got := fx.read(p); got != content {
		fx.t.Errorf("%s: content %q, want %q", p, got, content)
	}
	if st.Mode&0o7777 != perm {
		fx.t.Errorf("%s: mode %#o, want %#o", p, st.Mode&0o7777, perm)
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		fx.t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

// accounts writes the root's own /etc/passwd and /etc/group: root (0), alice (1234) and
// bob (1235); groups root (0), staff (2345) and web (2346). None of these ids is meant to
// exist on the host, so a test passing proves the root's files were read.
func (fx *fixture) accounts() {
	fx.t.Helper()
	fx.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n# a comment\nalice:x:1234:2345::/home/alice:/bin/sh\nbob:x:1235:2345::/home/bob:/bin/sh\n", 0o644)
	fx.write("/etc/group", "root:x:0:\nstaff:x:2345:alice,bob\nweb:x:2346:\n", 0o644)
}

// source puts content at files/name in the repository and returns the catalog value of a
// source attribute pinning it, as the language writes it.
func (fx *fixture) source(name, content string) map[string]any {
	fx.t.Helper()
	writeHost(fx.t, filepath.Join(fx.repo, "files", name), content, 0o644)
	return sourceRef(name, content)
}

func sourceRef(name, content string) map[string]any {
	return map[string]any{"path": "files/" + name, "size": len(content), "sha256": sha256Hex(content)}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// describe is how a change line summarises content: "N bytes, sha256 <12 hex digits>".
func describe(content string) string {
	return fmt.Sprintf("%d bytes, sha256 %s", len(content), sha256Hex(content)[:12])
}

// cat builds a catalog entry the way the language does: attributes marshalled to JSON.
func cat(typ, name string, attrs map[string]any, sensitive ...string) *catalog.Resource {
	ca := make(map[string]json.RawMessage, len(attrs))
	for k, v := range attrs {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		ca[k] = b
	}
	return &catalog.Resource{Address: typ + "." + name, Type: typ, Name: name, Attributes: ca, Sensitive: sensitive}
}

// build decodes a catalog entry as the engine does.
func build(t *testing.T, cr *catalog.Resource) resource.Resource {
	t.Helper()
	r, err := resource.New(cr)
	if err != nil {
		t.Fatalf("resource.New(%s): %v", cr.Address, err)
	}
	return r
}

// run calls CheckApply on a fresh instance and fails the test on an error.
func (fx *fixture) run(cr *catalog.Resource, apply bool) *resource.Result {
	fx.t.Helper()
	res, err := build(fx.t, cr).CheckApply(context.Background(), fx.env, apply)
	if err != nil {
		fx.t.Fatalf("%s: CheckApply(apply=%v): %v", cr.Address, apply, err)
	}
	if res == nil {
		fx.t.Fatalf("%s: CheckApply(apply=%v) returned a nil Result", cr.Address, apply)
	}
	return res
}

// runErr calls CheckApply on a fresh instance and returns its error, which must not be nil.
func (fx *fixture) runErr(cr *catalog.Resource, apply bool) (*resource.Result, error) {
	fx.t.Helper()
	res, err := build(fx.t, cr).CheckApply(context.Background(), fx.env, apply)
	if err == nil {
		fx.t.Fatalf("%s: CheckApply(apply=%v) succeeded with %v, want an error", cr.Address, apply, changes(res))
	}
	if res == nil {
		fx.t.Fatalf("%s: CheckApply(apply=%v) returned a nil Result with its error", cr.Address, apply)
	}
	return res, err
}

// wantErr runs cr with apply false and then true, expecting the same error text both times
// and nothing changed on disk by either.
func (fx *fixture) wantErr(cr *catalog.Resource, want string) {
	fx.t.Helper()
	before := fx.snapshot()
	for _, apply := range []bool{false, true} {
		_, err := fx.runErr(cr, apply)
		if err.Error() != want {
			fx.t.Errorf("apply=%v: error\n  %s\nwant\n  %s", apply, err, want)
		}
	}
	fx.assertUnchanged(before, "failed runs")
}

// changes renders a Result's changes as "attribute: from -> to" lines.
func changes(res *resource.Result) []string {
	if res == nil {
		return nil
	}
	out := []string{}
	for _, c := range res.Changes {
		out = append(out, fmt.Sprintf("%s: %s -> %s", c.Attribute, c.From, c.To))
	}
	return out
}

func assertChanges(t *testing.T, what string, res *resource.Result, want ...string) {
	t.Helper()
	got := changes(res)
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: changes\n  %q\nwant\n  %q", what, got, want)
	}
}

// state is what a snapshot records of one entry: everything that a change would alter.
type state struct {
	Mode    uint32
	UID     uint32
	GID     uint32
	Size    int64
	Ino     uint64
	Nlink   uint64
	Mtime   syscall.Timespec
	Ctime   syscall.Timespec
	Content string // SHA-256 of a regular file
	Target  string // of a symlink
}

// snapshot records every entry under the fixture's directories (root, repository, backup
// store, outside), without following symlinks.
func (fx *fixture) snapshot() map[string]state {
	fx.t.Helper()
	return snapshotDirs(fx.t, fx.dir, fx.repo, fx.storeDir, fx.outside)
}

func snapshotDirs(t *testing.T, dirs ...string) map[string]state {
	t.Helper()
	snap := map[string]state{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				return err
			}
			s := state{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, Ino: st.Ino,
				Nlink: st.Nlink, Mtime: st.Mtim, Ctime: st.Ctim}
			switch st.Mode & syscall.S_IFMT {
			case syscall.S_IFREG:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				s.Content = sha256Hex(string(b))
			case syscall.S_IFLNK:
				if s.Target, err = os.Readlink(p); err != nil {
					return err
				}
			}
			snap[p] = s
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

// assertUnchanged fails if anything differs from the snapshot before.
func (fx *fixture) assertUnchanged(before map[string]state, what string) {
	fx.t.Helper()
	assertSameSnapshot(fx.t, before, fx.snapshot(), what)
}

func assertSameSnapshot(t *testing.T, before, after map[string]state, what string) {
	t.Helper()
	if reflect.DeepEqual(before, after) {
		return
	}
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+p)
		case a != b:
			diffs = append(diffs, fmt.Sprintf("changed %s: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "created "+p)
		}
	}
	slices.Sort(diffs)
	t.Errorf("%s changed the file system:\n  %s", what, strings.Join(diffs, "\n  "))
}

// contract checks the CheckApply contract for cr, against real files:
//   - apply=false changes nothing anywhere (contents, modes, owners, inodes, mtimes,
//     ctimes, the backup store) and reports want;
//   - apply=true reports exactly the same changes and the same diff, and succeeds;
//   - a second apply=true, and an apply=false after it, report no changes (idempotence)
//     and change nothing.
//
// Each phase uses a fresh instance, as each run of the engine does. It returns the no-op
// and the real result.
func (fx *fixture) contract(cr *catalog.Resource, want ...string) (noop, real *resource.Result) {
	fx.t.Helper()
	before := fx.snapshot()
	noop = fx.run(cr, false)
	fx.assertUnchanged(before, "apply=false")
	assertChanges(fx.t, "apply=false", noop, want...)

	real = fx.run(cr, true)
	assertChanges(fx.t, "apply=true", real, changes(noop)...)
	if real.Diff != noop.Diff {
		fx.t.Errorf("apply=true diff\n%s\ndiffers from apply=false diff\n%s", real.Diff, noop.Diff)
	}
	if len(want) > 0 && reflect.DeepEqual(before, fx.snapshot()) {
		fx.t.Errorf("apply=true reported %q but changed nothing", changes(real))
	}

	after := fx.snapshot()
	again := fx.run(cr, true)
	assertChanges(fx.t, "second apply=true", again)
	if again.Diff != "" {
		fx.t.Errorf("second apply=true has a diff:\n%s", again.Diff)
	}
	check := fx.run(cr, false)
	assertChanges(fx.t, "apply=false after applying", check)
	fx.assertUnchanged(after, "the runs after converging")
	return noop, real
}

// backups returns the backup entries for the path p, newest first.
func (fx *fixture) backups(p string) []backup.Entry {
	fx.t.Helper()
	entries, err := fx.store.List(p)
	if err != nil {
		fx.t.Fatal(err)
	}
	return entries
}

// backupContent reads an entry's content back, verified.
func (fx *fixture) backupContent(e backup.Entry) string {
	fx.t.Helper()
	r, err := fx.store.Open(e)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		fx.t.Fatal(err)
	}
	return string(b)
}

// assertBackup checks that p has exactly one backup entry, with this content, mode, ids and
// reason.
func (fx *fixture) assertBackup(p, content string, mode uint32, uid, gid int, reason string) {
	fx.t.Helper()
	entries := fx.backups(p)
	if len(entries) != 1 {
		fx.t.Fatalf("backups of %s: %d entries %+v, want 1", p, len(entries), entries)
	}
	e := entries[0]
	if got := fx.backupContent(e); got != content {
		fx.t.Errorf("backup of %s: content %q, want %q", p, got, content)
	}
	if e.Path != p || e.Mode != mode || e.UID != uid || e.GID != gid || e.Reason != reason ||
		e.Size != int64(len(content)) || e.SHA256 != sha256Hex(content) {
		fx.t.Errorf("backup of %s: %+v, want mode %#o, ids %d:%d, reason %q, size %d", p, e, mode, uid, gid, reason, len(content))
	}
}

// assertNoBackups checks that the store holds no entry at all.
func (fx *fixture) assertNoBackups() {
	fx.t.Helper()
	if entries := fx.backups(""); len(entries) != 0 {
		fx.t.Errorf("backup store has %d entries, want none: %+v", len(entries), entries)
	}
}

// tempLeftovers lists the names in the host directory dir that look like Satchel's
// temporary files.
func tempLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".satchel-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (fx *fixture) assertNoTemp(dir string) {
	fx.t.Helper()
	if left := tempLeftovers(fx.t, fx.host(dir)); len(left) > 0 {
		fx.t.Errorf("temporary files left in %s: %q", dir, left)
	}
}

// isNotExist is errors.Is(err, fs.ErrNotExist), for brevity.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
