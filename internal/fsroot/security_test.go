package fsroot

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests in this file check the confinement promises of the package. Each builds a
// "sentinel" directory outside the root (another t.TempDir()) with content that a confinement
// failure would read or change, and asserts at the end that nothing in it changed.

// TestAbsoluteSymlinkResolvesInsideRoot: root/lnk -> /outside; writing /lnk/f through the
// Root creates root/outside/f, never the host's /outside/f.
func TestAbsoluteSymlinkResolvesInsideRoot(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	hostHad := hostExists("/outside/f")
	mkdirHost(t, filepath.Join(dir, "outside"))
	symlinkHost(t, "/outside", filepath.Join(dir, "lnk"))
	f, err := r.OpenFile("/lnk/f", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("inside")
	f.Close()
	if got := readHost(t, filepath.Join(dir, "outside/f")); got != "inside" {
		t.Errorf("root/outside/f = %q", got)
	}
	if !hostHad && hostExists("/outside/f") {
		t.Error("the host's /outside/f was created")
	}
}

// TestAbsoluteSymlinkToExistingHostDirStaysInside is the same with a link to a host
// directory that does exist (the sentinel), so that a broken Root would really write there.
func TestAbsoluteSymlinkToExistingHostDirStaysInside(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	symlinkHost(t, sentinel, filepath.Join(dir, "lnk"))
	// The link's target does not exist inside the root: writes through it must fail.
	if f, err := r.OpenFile("/lnk/new", os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
		f.Close()
		t.Error("OpenFile through a link to a host-only directory succeeded")
	}
	if b, err := r.ReadFile("/lnk/secret"); err == nil {
		t.Errorf("ReadFile read %q through a link to a host directory", b)
	}
	if err := r.Chmod("/lnk/secret", 0o777); err == nil {
		t.Error("Chmod through a link to a host directory succeeded")
	}
	if err := r.Remove("/lnk/secret"); err == nil {
		t.Error("Remove through a link to a host directory succeeded")
	}
	assertUnchanged(t, sentinel, before)
}

// TestRelativeSymlinkCannotClimbOut: root/a -> ../../.. stays at the root.
func TestRelativeSymlinkCannotClimbOut(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	symlinkHost(t, "../../..", filepath.Join(dir, "a"))
	naive := filepath.Clean(filepath.Join(dir, "../../..", "escaped-by-fsroot-test"))
	hostHad := hostExists(naive)
	f, err := r.OpenFile("/a/escaped-by-fsroot-test", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustExist(t, filepath.Join(dir, "escaped-by-fsroot-test"))
	if !hostHad && hostExists(naive) {
		_ = os.Remove(naive)
		t.Errorf("%s was created outside the root", naive)
	}
	info, err := r.Stat("/a")
	if err != nil || info.Inode != hostStat(t, dir).Ino {
		t.Errorf("Stat(/a) = %+v, %v; want the root itself", info, err)
	}
	writeHost(t, filepath.Join(dir, "x/marker"), "", 0o644)
	names, err := r.ReadDir("/a/a/a/x")
	if err != nil || !slices.Equal(names, []string{"marker"}) {
		t.Errorf("ReadDir(/a/a/a/x) = %q, %v; want root/x's entries", names, err)
	}
}

// TestRelativeSymlinkToSentinelStaysInside: a link that climbs to the host's / and goes
// down to an existing host directory lands at the same path inside the root.
func TestRelativeSymlinkToSentinelStaysInside(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	mkdirHost(t, filepath.Join(dir, "x/y"))
	symlinkHost(t, climb(sentinel), filepath.Join(dir, "x/y/lnk"))
	if b, err := r.ReadFile("/x/y/lnk/secret"); err == nil {
		t.Errorf("ReadFile read %q through a climbing link", b)
	}
	mirror := populateMirror(t, dir, sentinel)
	if b, err := r.ReadFile("/x/y/lnk/secret"); err != nil || string(b) != "root secret" {
		t.Errorf("ReadFile through a climbing link = %q, %v; want the copy inside the root", b, err)
	}
	f, err := r.OpenFile("/x/y/lnk/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	mustExist(t, filepath.Join(mirror, "new"))
	assertUnchanged(t, sentinel, before)
}

// linkKinds are ways of pointing /lnk (or a deeper link) at the sentinel directory.
var linkKinds = []struct {
	name  string
	at    string // the link's catalog path
	setup func(t *testing.T, root, sentinel string)
}{
	{"absolute", "/lnk", func(t *testing.T, root, sentinel string) {
		symlinkHost(t, sentinel, filepath.Join(root, "lnk"))
	}},
	{"relative-climb", "/lnk", func(t *testing.T, root, sentinel string) {
		symlinkHost(t, climb(sentinel), filepath.Join(root, "lnk"))
	}},
	{"deep-relative-climb", "/a/b/c/lnk", func(t *testing.T, root, sentinel string) {
		symlinkHost(t, climb(sentinel), filepath.Join(root, "a/b/c/lnk"))
	}},
	{"chained", "/lnk", func(t *testing.T, root, sentinel string) {
		// lnk -> /hop1 -> hop2/../hop3 -> ../../…/sentinel
		mkdirHost(t, filepath.Join(root, "hop2"))
		symlinkHost(t, "/hop1", filepath.Join(root, "lnk"))
		symlinkHost(t, "hop2/../hop3", filepath.Join(root, "hop1"))
		symlinkHost(t, climb(sentinel), filepath.Join(root, "hop3"))
	}},
	{"dotdot-inside-target", "/lnk", func(t *testing.T, root, sentinel string) {
		symlinkHost(t, "/../.."+sentinel+"/sub/..", filepath.Join(root, "lnk"))
	}},
}

// escapeOps each do one operation through the link at `at` and check that it acted on the
// copy of the sentinel inside the root (mirror).
var escapeOps = []struct {
	name string
	run  func(t *testing.T, r *Root, at, root, mirror string)
}{
	{"OpenFile-create", func(t *testing.T, r *Root, at, root, mirror string) {
		f, err := r.OpenFile(at+"/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteString("new")
		f.Close()
		if got := readHost(t, filepath.Join(mirror, "new")); got != "new" {
			t.Errorf("mirror/new = %q", got)
		}
	}},
	{"OpenFile-truncate", func(t *testing.T, r *Root, at, root, mirror string) {
		f, err := r.OpenFile(at+"/secret", os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.WriteString("overwritten")
		f.Close()
		if got := readHost(t, filepath.Join(mirror, "secret")); got != "overwritten" {
			t.Errorf("mirror/secret = %q", got)
		}
	}},
	{"Open", func(t *testing.T, r *Root, at, root, mirror string) {
		f, err := r.Open(at + "/secret")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if b, _ := io.ReadAll(f); string(b) != "root secret" {
			t.Errorf("read %q", b)
		}
	}},
	{"ReadFile", func(t *testing.T, r *Root, at, root, mirror string) {
		if b, err := r.ReadFile(at + "/sub/f"); err != nil || string(b) != "root sub" {
			t.Errorf("ReadFile = %q, %v", b, err)
		}
	}},
	{"Stat", func(t *testing.T, r *Root, at, root, mirror string) {
		info, err := r.Stat(at + "/secret")
		if err != nil || info.Inode != hostStat(t, filepath.Join(mirror, "secret")).Ino {
			t.Errorf("Stat = %+v, %v", info, err)
		}
	}},
	{"Stat-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		info, err := r.Stat(at)
		if err != nil || info.Inode != hostStat(t, mirror).Ino {
			t.Errorf("Stat = %+v, %v", info, err)
		}
	}},
	{"Lstat", func(t *testing.T, r *Root, at, root, mirror string) {
		info, err := r.Lstat(at + "/l")
		if err != nil || !info.IsSymlink() || info.Inode != hostStat(t, filepath.Join(mirror, "l")).Ino {
			t.Errorf("Lstat = %+v, %v", info, err)
		}
	}},
	{"ReadDir", func(t *testing.T, r *Root, at, root, mirror string) {
		names, err := r.ReadDir(at + "/sub")
		if want := []string{"f", "only-in-root"}; err != nil || !slices.Equal(names, want) {
			t.Errorf("ReadDir = %q, %v; want %q", names, err, want)
		}
	}},
	{"Readlink", func(t *testing.T, r *Root, at, root, mirror string) {
		if s, err := r.Readlink(at + "/l"); err != nil || s != "root-link-target" {
			t.Errorf("Readlink = %q, %v", s, err)
		}
	}},
	{"Mkdir", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Mkdir(at+"/newdir", 0o755); err != nil {
			t.Fatal(err)
		}
		mustExist(t, filepath.Join(mirror, "newdir"))
	}},
	{"Remove", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Remove(at + "/secret"); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(mirror, "secret"))
	}},
	{"RemoveAll", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.RemoveAll(at + "/sub"); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(mirror, "sub"))
	}},
	{"Rename-from", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Rename(at+"/secret", "/moved"); err != nil {
			t.Fatal(err)
		}
		if got := readHost(t, filepath.Join(root, "moved")); got != "root secret" {
			t.Errorf("moved = %q", got)
		}
	}},
	{"Rename-to", func(t *testing.T, r *Root, at, root, mirror string) {
		writeHost(t, filepath.Join(root, "plain"), "plain", 0o644)
		if err := r.Rename("/plain", at+"/secret"); err != nil {
			t.Fatal(err)
		}
		if got := readHost(t, filepath.Join(mirror, "secret")); got != "plain" {
			t.Errorf("mirror/secret = %q", got)
		}
	}},
	{"Symlink", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Symlink("t", at+"/newlink"); err != nil {
			t.Fatal(err)
		}
		if got := readlinkHost(t, filepath.Join(mirror, "newlink")); got != "t" {
			t.Errorf("mirror/newlink -> %q", got)
		}
	}},
	{"Chmod", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Chmod(at+"/secret", 0o777|fs.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		if got := hostStat(t, filepath.Join(mirror, "secret")).Mode & 0o7777; got != 0o4777 {
			t.Errorf("mirror/secret mode %o", got)
		}
	}},
	{"Lchown", func(t *testing.T, r *Root, at, root, mirror string) {
		requireRoot(t)
		if err := r.Lchown(at+"/secret", 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if st := hostStat(t, filepath.Join(mirror, "secret")); st.Uid != 12345 || st.Gid != 12345 {
			t.Errorf("mirror/secret owner %d:%d", st.Uid, st.Gid)
		}
	}},
	{"CreateTemp", func(t *testing.T, r *Root, at, root, mirror string) {
		f, name, err := r.CreateTemp(at, "secret")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		mustExist(t, filepath.Join(mirror, filepath.Base(name)))
	}},
	{"SyncDir", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.SyncDir(at); err != nil {
			t.Fatal(err)
		}
	}},
	// Operations on the link itself.
	{"ReadDir-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		if names, err := r.ReadDir(at); err == nil || !errors.Is(err, syscall.ELOOP) {
			t.Errorf("ReadDir of the link = %q, %v; want a symbolic link error", names, err)
		}
	}},
	{"Open-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		if f, err := r.OpenFile(at, os.O_RDONLY, 0); err == nil {
			f.Close()
			t.Error("OpenFile of the link succeeded")
		}
	}},
	{"Chmod-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		before := hostStat(t, mirror).Mode
		if err := r.Chmod(at, 0o777); err == nil {
			t.Error("Chmod of the link succeeded")
		}
		if got := hostStat(t, mirror).Mode; got != before {
			t.Errorf("the link's target inside the root changed mode %o -> %o", before, got)
		}
	}},
	{"Lchown-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		requireRoot(t)
		if err := r.Lchown(at, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if st := hostStat(t, filepath.Join(root, at)); st.Uid != 12345 || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			t.Errorf("the link's owner is %d", st.Uid)
		}
		if st := hostStat(t, mirror); st.Uid == 12345 {
			t.Error("the link's target inside the root changed owner")
		}
	}},
	{"Remove-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.Remove(at); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(root, at))
		mustExist(t, filepath.Join(mirror, "secret"))
	}},
	{"RemoveAll-final-link", func(t *testing.T, r *Root, at, root, mirror string) {
		if err := r.RemoveAll(at); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(root, at))
		mustExist(t, filepath.Join(mirror, "sub/f"))
	}},
}

// TestSymlinksToOutsideResolveInsideRoot: through every kind of link that, followed on the
// host, would reach the sentinel, every operation acts on the copy inside the root instead.
func TestSymlinksToOutsideResolveInsideRoot(t *testing.T) {
	t.Parallel()
	for _, lk := range linkKinds {
		for _, op := range escapeOps {
			t.Run(lk.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				r, root := newRoot(t)
				sentinel, before := newSentinel(t)
				mirror := populateMirror(t, root, sentinel)
				lk.setup(t, root, sentinel)
				if info, err := r.Stat(lk.at); err != nil || info.Inode != hostStat(t, mirror).Ino {
					t.Fatalf("setup: %s does not resolve to the mirror: %+v, %v", lk.at, info, err)
				}
				op.run(t, r, lk.at, root, mirror)
				assertUnchanged(t, sentinel, before)
			})
		}
	}
}

// ---- the last component is never followed ----

// TestLstatDoesNotFollow: Lstat describes the link, even one to a directory or outside.
func TestLstatDoesNotFollow(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, _ := newSentinel(t)
	mkdirHost(t, filepath.Join(dir, "d"))
	symlinkHost(t, "/d", filepath.Join(dir, "todir"))
	symlinkHost(t, sentinel, filepath.Join(dir, "out"))
	for _, p := range []string{"/todir", "/out"} {
		info, err := r.Lstat(p)
		if err != nil || !info.IsSymlink() || info.IsDir() || info.Inode != hostStat(t, filepath.Join(dir, p)).Ino {
			t.Errorf("Lstat(%s) = %+v, %v; want the link", p, info, err)
		}
	}
}

// TestOpenFileRefusesFinalSymlink: OpenFile never opens, truncates or creates through a link
// in the last component (O_NOFOLLOW), whatever the flags.
func TestOpenFileRefusesFinalSymlink(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	writeHost(t, filepath.Join(dir, "target"), "target", 0o644)
	symlinkHost(t, "/target", filepath.Join(dir, "link"))
	symlinkHost(t, "/newfile", filepath.Join(dir, "dangling"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "out"))
	symlinkHost(t, filepath.Join(sentinel, "created"), filepath.Join(dir, "outdangling"))
	mkdirHost(t, filepath.Join(dir, "d"))
	symlinkHost(t, "/d", filepath.Join(dir, "dirlink"))
	for _, p := range []string{"/link", "/dangling", "/out", "/outdangling", "/dirlink"} {
		for _, flags := range []int{
			os.O_RDONLY, os.O_WRONLY | os.O_TRUNC, os.O_RDWR | os.O_APPEND,
			os.O_WRONLY | os.O_CREATE, os.O_WRONLY | os.O_CREATE | os.O_TRUNC,
		} {
			f, err := r.OpenFile(p, flags, 0o644)
			if err == nil {
				f.Close()
				t.Errorf("OpenFile(%s, %#x) succeeded", p, flags)
			} else if !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("OpenFile(%s, %#x) = %v, want a symbolic link error", p, flags, err)
			} else if !errors.Is(err, syscall.ELOOP) {
				t.Errorf("OpenFile(%s, %#x) = %v, want it to wrap ELOOP", p, flags, err)
			}
		}
		if _, err := r.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
			t.Errorf("OpenFile(%s, O_CREATE|O_EXCL) = %v, want fs.ErrExist", p, err)
		}
		if f, err := r.Open(p); err == nil {
			f.Close()
			t.Errorf("Open(%s) succeeded", p)
		}
		if b, err := r.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%s) = %q, want an error", p, b)
		}
	}
	if _, err := r.ReadDir("/dirlink"); !errors.Is(err, errSymlink) {
		t.Errorf("ReadDir of a link to a directory = %v, want a symbolic link error", err)
	}
	if got := readHost(t, filepath.Join(dir, "target")); got != "target" {
		t.Errorf("target changed: %q", got)
	}
	mustNotExist(t, filepath.Join(dir, "newfile"))
	assertUnchanged(t, sentinel, before)
}

// TestOpenFileLoopIsNotCalledALink: ELOOP from a loop in the middle of a path is not
// reported as "is a symbolic link".
func TestOpenFileLoopIsNotCalledALink(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	symlinkHost(t, "/loop2", filepath.Join(dir, "loop1"))
	symlinkHost(t, "/loop1", filepath.Join(dir, "loop2"))
	_, err := r.Open("/loop1/f")
	if !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("Open through a loop = %v, want ELOOP", err)
	}
	if strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("Open through a loop = %v, which blames the last component", err)
	}
}

// TestChmodRefusesSymlink: Chmod of a link is an error and its target keeps its mode,
// whether the target is inside the root or (naively) outside.
func TestChmodRefusesSymlink(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	writeHost(t, filepath.Join(dir, "target"), "", 0o640)
	symlinkHost(t, "/target", filepath.Join(dir, "link"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "out"))
	writeHost(t, filepath.Join(dir, sentinel, "secret"), "", 0o640) // the in-root resolution of /out
	for _, p := range []string{"/link", "/out"} {
		err := r.Chmod(p, 0o777|fs.ModeSetuid)
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Chmod(%s) = %v, want a symbolic link error", p, err)
		}
	}
	if got := hostStat(t, filepath.Join(dir, "target")).Mode & 0o7777; got != 0o640 {
		t.Errorf("target mode changed to %o", got)
	}
	if got := hostStat(t, filepath.Join(dir, sentinel, "secret")).Mode & 0o7777; got != 0o640 {
		t.Errorf("in-root target of /out changed mode to %o", got)
	}
	assertUnchanged(t, sentinel, before)
}

// TestLchownActsOnLink: Lchown of a link changes the link's owner, not the target's.
func TestLchownActsOnLink(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	writeHost(t, filepath.Join(dir, "target"), "", 0o644)
	symlinkHost(t, "/target", filepath.Join(dir, "link"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "out"))
	for _, p := range []string{"/link", "/out"} {
		if err := r.Lchown(p, 12345, 12345); err != nil {
			t.Fatalf("Lchown(%s): %v", p, err)
		}
		if st := hostStat(t, filepath.Join(dir, p)); st.Uid != 12345 || st.Gid != 12345 {
			t.Errorf("link %s owner %d:%d, want 12345:12345", p, st.Uid, st.Gid)
		}
	}
	if st := hostStat(t, filepath.Join(dir, "target")); st.Uid == 12345 || st.Gid == 12345 {
		t.Error("Lchown of a link changed its target")
	}
	assertUnchanged(t, sentinel, before)
}

// TestRemoveRemovesLinkNotTarget: Remove of a link (to a file, a directory, or outside)
// removes the link only.
func TestRemoveRemovesLinkNotTarget(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	writeHost(t, filepath.Join(dir, "target"), "t", 0o644)
	mkdirHost(t, filepath.Join(dir, "emptydir"))
	symlinkHost(t, "/target", filepath.Join(dir, "tofile"))
	symlinkHost(t, "/emptydir", filepath.Join(dir, "todir"))
	symlinkHost(t, sentinel, filepath.Join(dir, "out"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "outfile"))
	for _, p := range []string{"/tofile", "/todir", "/out", "/outfile"} {
		if err := r.Remove(p); err != nil {
			t.Errorf("Remove(%s): %v", p, err)
		}
		mustNotExist(t, filepath.Join(dir, p))
	}
	mustExist(t, filepath.Join(dir, "target"))
	mustExist(t, filepath.Join(dir, "emptydir"))
	assertUnchanged(t, sentinel, before)
}

// TestRenameMovesLinkNotTarget: Rename of a link moves the link; renaming onto a link
// replaces the link, not its target.
func TestRenameMovesLinkNotTarget(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	writeHost(t, filepath.Join(dir, "target"), "t", 0o644)
	symlinkHost(t, "/target", filepath.Join(dir, "link"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "out"))
	if err := r.Rename("/link", "/moved"); err != nil {
		t.Fatal(err)
	}
	if got := readlinkHost(t, filepath.Join(dir, "moved")); got != "/target" {
		t.Errorf("moved link -> %q", got)
	}
	writeHost(t, filepath.Join(dir, "new"), "new", 0o644)
	if err := r.Rename("/new", "/out"); err != nil {
		t.Fatal(err)
	}
	if st := hostStat(t, filepath.Join(dir, "out")); st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("/out is not the renamed file: mode %o", st.Mode)
	}
	if got := readHost(t, filepath.Join(dir, "target")); got != "t" {
		t.Errorf("target changed: %q", got)
	}
	assertUnchanged(t, sentinel, before)
}

// TestMkdirAndSymlinkDoNotFollowFinalLink: creating over a dangling link fails and creates
// nothing at its target.
func TestMkdirAndSymlinkDoNotFollowFinalLink(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	symlinkHost(t, "/newdir", filepath.Join(dir, "dangling"))
	symlinkHost(t, filepath.Join(sentinel, "newdir"), filepath.Join(dir, "outdangling"))
	for _, p := range []string{"/dangling", "/outdangling"} {
		if err := r.Mkdir(p, 0o755); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Mkdir(%s) = %v, want fs.ErrExist", p, err)
		}
		if err := r.Symlink("x", p); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Symlink(x, %s) = %v, want fs.ErrExist", p, err)
		}
		if s, err := r.Readlink(p); err != nil || s != readlinkHost(t, filepath.Join(dir, p)) {
			t.Errorf("Readlink(%s) = %q, %v", p, s, err)
		}
	}
	mustNotExist(t, filepath.Join(dir, "newdir"))
	assertUnchanged(t, sentinel, before)
}

// TestRemoveAllDoesNotFollowSymlinks: RemoveAll of a tree holding links to directories
// outside (and inside) the root removes the links and leaves the targets' content.
func TestRemoveAllDoesNotFollowSymlinks(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	mirror := populateMirror(t, dir, sentinel)
	writeHost(t, filepath.Join(dir, "keep/precious"), "x", 0o644)
	tree := filepath.Join(dir, "tree")
	writeHost(t, filepath.Join(tree, "file"), "x", 0o644)
	symlinkHost(t, sentinel, filepath.Join(tree, "abs"))
	symlinkHost(t, climb(sentinel), filepath.Join(tree, "sub/rel"))
	symlinkHost(t, "/keep", filepath.Join(tree, "inside"))
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(tree, "outfile"))
	if err := r.RemoveAll("/tree"); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, tree)
	mustExist(t, filepath.Join(dir, "keep/precious"))
	mustExist(t, filepath.Join(mirror, "secret"))
	mustExist(t, filepath.Join(mirror, "sub/f"))
	assertUnchanged(t, sentinel, before)

	// RemoveAll of the link itself.
	symlinkHost(t, sentinel, filepath.Join(dir, "out"))
	if err := r.RemoveAll("/out"); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(dir, "out"))
	assertUnchanged(t, sentinel, before)
}

// TestMagicLinksRefused: /proc magic links (which jump anywhere, ignoring RESOLVE_IN_ROOT)
// are refused. Only a root with /proc in it has them: use "/".
func TestMagicLinksRefused(t *testing.T) {
	t.Parallel()
	p := hostFile(t)
	if _, err := os.Stat("/proc/self/root" + p); err != nil {
		t.Skip("no /proc here")
	}
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.inRoot {
		t.Skip("no openat2")
	}
	if b, err := r.ReadFile("/proc/self/root" + p); err == nil {
		t.Errorf("ReadFile through /proc/self/root = %d bytes, want an error", len(b))
	}
	if _, err := r.Stat("/proc/self/cwd"); err == nil {
		t.Error("Stat(/proc/self/cwd) followed a magic link")
	}
}

// ---- races: swapping entries for symlinks while the Root works ----

// swapper repeatedly replaces root/name with a real directory or file and with a link
// pointing at the sentinel, until stop is closed.
func swapper(t *testing.T, real, link, at string, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.Rename(real, at); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(at, real); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(link, at); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(at, link); err != nil {
				t.Error(err)
				return
			}
		}
	})
}

// TestSymlinkSwapRaceStaysInside: while a directory is swapped, over and over, for a link to
// the sentinel, operations through it never reach the sentinel.
func TestSymlinkSwapRaceStaysInside(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	populateMirror(t, dir, sentinel)
	writeHost(t, filepath.Join(dir, "realdir/secret"), "real", 0o644)
	symlinkHost(t, sentinel, filepath.Join(dir, "linkdir"))
	stop := make(chan struct{})
	var swap, work sync.WaitGroup
	swapper(t, filepath.Join(dir, "realdir"), filepath.Join(dir, "linkdir"), filepath.Join(dir, "d"), stop, &swap)
	var n atomic.Int64
	deadline := time.Now().Add(300 * time.Millisecond)
	for w := range 4 {
		work.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				n.Add(1)
				s := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if f, err := r.OpenFile("/d/secret", os.O_WRONLY|os.O_TRUNC, 0); err == nil {
					_, _ = f.WriteString("pwned")
					f.Close()
				}
				if f, err := r.OpenFile("/d/new"+s, os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
					f.Close()
				}
				_ = r.Chmod("/d/secret", 0o777)
				if os.Geteuid() == 0 {
					_ = r.Lchown("/d/secret", 12345, 12345)
				}
				_ = r.Mkdir("/d/dir"+s, 0o755)
				_ = r.Symlink("x", "/d/link"+s)
				_ = r.Remove("/d/l")
				_ = r.RemoveAll("/d/sub")
				_ = r.Rename("/d/new"+s, "/d/renamed"+s)
				if f, _, err := r.CreateTemp("/d", "t"); err == nil {
					f.Close()
				}
			}
		})
	}
	work.Wait()
	close(stop)
	swap.Wait()
	t.Logf("%d rounds", n.Load())
	assertUnchanged(t, sentinel, before)
}

// TestFinalComponentSwapRace: while a file is swapped, over and over, for a link to a
// sentinel file, Chmod, Lchown and OpenFile on it never change the sentinel.
func TestFinalComponentSwapRace(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	sentinel, before := newSentinel(t)
	mirror := populateMirror(t, dir, sentinel)
	mirrorBefore := snapshot(t, mirror)
	writeHost(t, filepath.Join(dir, "realfile"), "real", 0o644)
	symlinkHost(t, filepath.Join(sentinel, "secret"), filepath.Join(dir, "linkfile"))
	stop := make(chan struct{})
	var swap, work sync.WaitGroup
	swapper(t, filepath.Join(dir, "realfile"), filepath.Join(dir, "linkfile"), filepath.Join(dir, "x"), stop, &swap)
	deadline := time.Now().Add(300 * time.Millisecond)
	for range 4 {
		work.Go(func() {
			for time.Now().Before(deadline) {
				_ = r.Chmod("/x", 0o777|fs.ModeSetuid)
				if os.Geteuid() == 0 {
					_ = r.Lchown("/x", 12345, 12345)
				}
				if f, err := r.OpenFile("/x", os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644); err == nil {
					_, _ = f.WriteString("pwned")
					f.Close()
				}
			}
		})
	}
	work.Wait()
	close(stop)
	swap.Wait()
	assertUnchanged(t, sentinel, before)
	// Not even the in-root resolution of the link may change: the last component is never
	// followed.
	assertUnchanged(t, mirror, mirrorBefore)
}
