package fsroot

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ---- Open, Close, Dir, HostPath ----

func TestOpenMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing")
	r, err := Open(dir)
	if err == nil {
		r.Close()
		t.Fatal("Open of a missing directory succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenFileIsNotADirectory(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "file")
	writeHost(t, f, "x", 0o644)
	r, err := Open(f)
	if err == nil {
		r.Close()
		t.Fatal("Open of a regular file succeeded")
	}
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Open(file) = %v, want ENOTDIR", err)
	}
}

func TestOpenRelativeDirIsMadeAbsolute(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Dir() != wd {
		t.Errorf("Dir() = %q, want %q", r.Dir(), wd)
	}
}

func TestOpenThroughSymlinkedDirectory(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	real := filepath.Join(base, "real")
	writeHost(t, filepath.Join(real, "f"), "hello", 0o644)
	symlinkHost(t, real, filepath.Join(base, "alias"))
	r, err := Open(filepath.Join(base, "alias"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.ReadFile("/f"); err != nil || string(got) != "hello" {
		t.Errorf("ReadFile through aliased root = %q, %v", got, err)
	}
}

func TestDirAndHostPath(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	if r.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", r.Dir(), dir)
	}
	for p, want := range map[string]string{
		"/":         dir,
		"/etc/motd": filepath.Join(dir, "etc/motd"),
	} {
		if got := r.HostPath(p); got != want {
			t.Errorf("HostPath(%q) = %q, want %q", p, got, want)
		}
	}
	host, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if got := host.HostPath("/etc/motd"); got != "/etc/motd" {
		t.Errorf("HostPath on root / = %q", got)
	}
	if host.Dir() != "/" {
		t.Errorf("Dir() of / = %q", host.Dir())
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeHost(t, filepath.Join(dir, "f"), "x", 0o644)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := r.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close = %v, want fs.ErrClosed", err)
	}
	if _, err := r.Lstat("/f"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Lstat after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := r.ReadFile("/f"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadFile after Close = %v, want fs.ErrClosed", err)
	}
	if err := r.Chmod("/f", 0o600); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Chmod after Close = %v, want fs.ErrClosed", err)
	}
}

// TestUseAfterCloseDoesNotUseReusedDescriptor checks that once a Root is closed, its old
// descriptor number, now reused by someone else for another directory, is neither resolved
// against nor closed again. It is not parallel: it needs that number to stay free while it
// runs.
func TestUseAfterCloseDoesNotUseReusedDescriptor(t *testing.T) {
	r, _ := newRoot(t)
	old := r.fd
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	fd, err := unix.Open(outside, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fd != old {
		if _, err := unix.FcntlInt(uintptr(old), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			unix.Close(fd)
			t.Skipf("descriptor %d was taken by someone else", old)
		}
		if err := unix.Dup3(fd, old, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = old
	}
	defer unix.Close(fd)

	if f, err := r.OpenFile("/escaped", os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
		t.Error("OpenFile on a closed Root succeeded")
	}
	mustNotExist(t, filepath.Join(outside, "escaped"))
	_ = r.Close()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("Close of a closed Root closed an unrelated descriptor: %v", err)
	}
}

// ---- the host root "/" ----

func hostFile(t *testing.T) string {
	for _, p := range []string{"/etc/hostname", "/etc/passwd", "/etc/os-release", "/bin/sh"} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	t.Skip("no well-known regular file on this machine")
	return ""
}

func TestHostRoot(t *testing.T) {
	t.Parallel()
	p := hostFile(t)
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	info, err := r.Lstat(p)
	if err != nil {
		t.Fatalf("Lstat(%s) on root /: %v", p, err)
	}
	want := hostStat(t, p)
	if info.Inode != want.Ino || info.Size != want.Size || !info.IsRegular() {
		t.Errorf("Lstat(%s) = %+v, want inode %d size %d", p, info, want.Ino, want.Size)
	}
	got, err := r.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if wantData, _ := os.ReadFile(p); !bytes.Equal(got, wantData) {
		t.Errorf("ReadFile(%s) differs from os.ReadFile", p)
	}
	if info, err := r.Lstat("/"); err != nil || !info.IsDir() {
		t.Errorf("Lstat(/) = %+v, %v", info, err)
	}
	names, err := r.ReadDir(path.Dir(p))
	if err != nil || !slices.Contains(names, path.Base(p)) {
		t.Errorf("ReadDir(%s) = %v, %v", path.Dir(p), names, err)
	}
}

// TestHostRootWithoutOpenat2 exercises the plain-system-call path that Open uses for "/" on
// kernels without openat2.
func TestHostRootWithoutOpenat2(t *testing.T) {
	t.Parallel()
	p := hostFile(t)
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.inRoot = false
	info, err := r.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Inode != hostStat(t, p).Ino {
		t.Errorf("Lstat(%s) inode %d, want %d", p, info.Inode, hostStat(t, p).Ino)
	}
	if _, err := r.Stat("/"); err != nil {
		t.Error(err)
	}
	if _, err := r.ReadFile(p); err != nil {
		t.Error(err)
	}
	if _, err := r.Lstat("/no/such/thing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(missing) = %v", err)
	}
}

func TestProbeClassification(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		dir     string
		err     error
		inRoot  bool
		wantErr string
	}{
		{"/srv/img", nil, true, ""},
		{"/", nil, true, ""},
		{"/", unix.ENOSYS, false, ""},
		{"/", unix.EPERM, false, ""}, // seccomp filters answer EPERM for unknown system calls
		{"/srv/img", unix.ENOSYS, false, "openat2"},
		{"/srv/img", unix.EPERM, false, "openat2"},
		{"/srv/img", unix.EIO, false, "input/output error"},
	} {
		inRoot, err := probeResult(c.dir, c.err)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("probeResult(%s, %v) = %v", c.dir, c.err, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("probeResult(%s, %v) = %v, want error containing %q", c.dir, c.err, err, c.wantErr)
		case c.wantErr == "" && inRoot != c.inRoot:
			t.Errorf("probeResult(%s, %v) inRoot = %v, want %v", c.dir, c.err, inRoot, c.inRoot)
		}
	}
}

// ---- path validation ----

var badPaths = []string{
	"", ".", "..", "a", "a/b", "./a", "/a/", "/a/../b", "/..", "/../x", "/a/..", "/./a",
	"/a/.", "//a", "/a//b", "/a\x00b",
}

// pathOps calls every method that takes a catalog path with p.
var pathOps = map[string]func(r *Root, p string) error{
	"Lstat":    func(r *Root, p string) error { _, err := r.Lstat(p); return err },
	"Stat":     func(r *Root, p string) error { _, err := r.Stat(p); return err },
	"Open":     func(r *Root, p string) error { return closeIfOpened(r.Open(p)) },
	"OpenFile": func(r *Root, p string) error { return closeIfOpened(r.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)) },
	"ReadFile": func(r *Root, p string) error { _, err := r.ReadFile(p); return err },
	"ReadDir":  func(r *Root, p string) error { _, err := r.ReadDir(p); return err },
	"Mkdir":    func(r *Root, p string) error { return r.Mkdir(p, 0o755) },
	"Remove":   func(r *Root, p string) error { return r.Remove(p) },
	"RemoveAll": func(r *Root, p string) error {
		return r.RemoveAll(p)
	},
	"RenameFrom": func(r *Root, p string) error { return r.Rename(p, "/dst") },
	"RenameTo":   func(r *Root, p string) error { return r.Rename("/src", p) },
	"Symlink":    func(r *Root, p string) error { return r.Symlink("target", p) },
	"Readlink":   func(r *Root, p string) error { _, err := r.Readlink(p); return err },
	"Chmod":      func(r *Root, p string) error { return r.Chmod(p, 0o700) },
	"Lchown":     func(r *Root, p string) error { return r.Lchown(p, -1, -1) },
	"CreateTemp": func(r *Root, p string) error {
		f, _, err := r.CreateTemp(p, "t")
		if f != nil {
			f.Close()
		}
		return err
	},
	"SyncDir": func(r *Root, p string) error { return r.SyncDir(p) },
}

func closeIfOpened(f *os.File, err error) error {
	if f != nil {
		f.Close()
	}
	return err
}

// TestPathsMustBeAbsoluteAndClean: every method refuses relative, unclean and ".."
// paths, and creates nothing for them.
func TestPathsMustBeAbsoluteAndClean(t *testing.T) {
	t.Parallel()
	for name, op := range pathOps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, dir := newRoot(t)
			// Make every bad path resolvable if it were accepted: a, b, x exist as dirs.
			for _, d := range []string{"a", "b", "x", "a/b"} {
				mkdirHost(t, filepath.Join(dir, d))
			}
			writeHost(t, filepath.Join(dir, "src"), "src", 0o644)
			before := snapshot(t, dir)
			for _, p := range badPaths {
				err := op(r, p)
				if err == nil {
					t.Errorf("%s(%q) succeeded", name, p)
					continue
				}
				var pe *fs.PathError
				var le *os.LinkError
				if !errors.As(err, &pe) && !errors.As(err, &le) {
					t.Errorf("%s(%q) = %T %v, want *fs.PathError or *os.LinkError", name, p, err, err)
				}
			}
			assertUnchanged(t, dir, before)
		})
	}
}

func TestCreateTempRefusesBadBase(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, ".x"))
	for _, base := range []string{"x/y", "../y", "a\x00b"} {
		if f, name, err := r.CreateTemp("/", base); err == nil {
			f.Close()
			t.Errorf("CreateTemp(/, %q) = %s, want an error", base, name)
		}
	}
	if names := hostNames(t, filepath.Join(dir, ".x")); len(names) != 0 {
		t.Errorf("CreateTemp with a slash in base created %v", names)
	}
}

// TestDotDotIsRefused: ".." is refused outright, not resolved (not even clamped at the root).
func TestDotDotIsRefused(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	writeHost(t, filepath.Join(parent, "secret"), "host secret", 0o644)
	root := filepath.Join(parent, "root")
	mkdirHost(t, filepath.Join(root, "a"))
	writeHost(t, filepath.Join(root, "secret"), "root secret", 0o644)
	before := snapshot(t, parent)
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, p := range []string{"/../secret", "/a/../../secret", "/a/../secret", "/.."} {
		if b, err := r.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%q) = %q, want an error", p, b)
		}
		if _, err := r.Lstat(p); err == nil {
			t.Errorf("Lstat(%q) succeeded", p)
		}
		if err := r.Chmod(p, 0o777); err == nil {
			t.Errorf("Chmod(%q) succeeded", p)
		}
		if err := r.Remove(p); err == nil {
			t.Errorf("Remove(%q) succeeded", p)
		}
	}
	for _, p := range []string{"/../new", "/a/../../new", "/a/../new"} {
		if f, err := r.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
			t.Errorf("OpenFile(%q, O_CREATE) succeeded", p)
		}
		if err := r.Mkdir(p+"dir", 0o755); err == nil {
			t.Errorf("Mkdir(%q) succeeded", p+"dir")
		}
		if err := r.Symlink("x", p+"link"); err == nil {
			t.Errorf("Symlink(%q) succeeded", p+"link")
		}
		if err := r.Rename("/secret", p); err == nil {
			t.Errorf("Rename(/secret, %q) succeeded", p)
		}
	}
	assertUnchanged(t, parent, before)
}

// ---- Lstat, Stat, Info ----

func TestLstatKinds(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "file"), "hello", 0o640)
	mkdirHost(t, filepath.Join(dir, "dir"))
	symlinkHost(t, "/file", filepath.Join(dir, "link"))
	symlinkHost(t, "/nowhere", filepath.Join(dir, "dangling"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	kinds := []string{"file", "dir", "link", "dangling", "fifo"}
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
		kinds = append(kinds, "null")
	} else {
		t.Logf("no character device test: %v", err)
	}
	if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
		err := unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")})
		unix.Close(fd)
		if err == nil {
			kinds = append(kinds, "sock")
		} else {
			t.Logf("no socket test: %v", err)
		}
	}
	for _, k := range kinds {
		info, err := r.Lstat("/" + k)
		if err != nil {
			t.Errorf("Lstat(/%s): %v", k, err)
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if info.Mode != fi.Mode() {
			t.Errorf("Lstat(/%s).Mode = %v, want %v", k, info.Mode, fi.Mode())
		}
		if info.Size != st.Size || info.Inode != st.Ino || info.UID != int(st.Uid) || info.GID != int(st.Gid) {
			t.Errorf("Lstat(/%s) = %+v, want size %d inode %d uid %d gid %d", k, info, st.Size, st.Ino, st.Uid, st.Gid)
		}
		if !info.Mtime.Equal(fi.ModTime()) {
			t.Errorf("Lstat(/%s).Mtime = %v, want %v", k, info.Mtime, fi.ModTime())
		}
		if info.IsRegular() != fi.Mode().IsRegular() || info.IsDir() != fi.IsDir() || info.IsSymlink() != (fi.Mode()&fs.ModeSymlink != 0) {
			t.Errorf("Lstat(/%s): IsRegular/IsDir/IsSymlink disagree with %v", k, fi.Mode())
		}
	}
}

func TestLstatMtimeNanoseconds(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	p := filepath.Join(dir, "f")
	writeHost(t, p, "", 0o644)
	mt := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	info, err := r.Lstat("/f")
	if err != nil {
		t.Fatal(err)
	}
	if !info.Mtime.Equal(mt) {
		t.Errorf("Mtime = %v, want %v", info.Mtime, mt)
	}
}

func TestLstatAndStatOfRoot(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	want := hostStat(t, dir).Ino
	for name, f := range map[string]func(string) (*Info, error){"Lstat": r.Lstat, "Stat": r.Stat} {
		info, err := f("/")
		if err != nil || !info.IsDir() || info.Inode != want {
			t.Errorf("%s(/) = %+v, %v; want the root directory (inode %d)", name, info, err, want)
		}
	}
}

func TestMissingEntriesAreErrNotExist(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "d"))
	symlinkHost(t, "/nowhere", filepath.Join(dir, "dangling"))
	for _, p := range []string{"/missing", "/d/missing", "/missing/child", "/dangling/child"} {
		if _, err := r.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if _, err := r.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if f, err := r.Open(p); !errors.Is(err, fs.ErrNotExist) {
			_ = closeIfOpened(f, nil)
			t.Errorf("Open(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if _, err := r.ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if _, err := r.ReadDir(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadDir(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if _, err := r.Readlink(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Readlink(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if err := r.Remove(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Remove(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if err := r.Chmod(p, 0o644); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Chmod(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if err := r.Lchown(p, -1, -1); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lchown(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if err := r.SyncDir(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("SyncDir(%q) = %v, want fs.ErrNotExist", p, err)
		}
		if err := r.Rename(p, "/d/x"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Rename(%q, /d/x) = %v, want fs.ErrNotExist", p, err)
		}
	}
	if _, err := r.Stat("/dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a dangling symlink = %v, want fs.ErrNotExist", err)
	}
}

func TestIntermediateFileIsENOTDIR(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "x", 0o644)
	if _, err := r.Lstat("/f/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Lstat(/f/x) = %v, want ENOTDIR", err)
	}
	if _, err := r.Stat("/f/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Stat(/f/x) = %v, want ENOTDIR", err)
	}
}

// TestStatFollowsSymlinksInsideRoot: Stat follows final and intermediate symlinks, absolute
// ones relative to the root.
func TestStatFollowsSymlinksInsideRoot(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "etc/real"), "real", 0o644)
	want := hostStat(t, filepath.Join(dir, "etc/real")).Ino
	symlinkHost(t, "/etc/real", filepath.Join(dir, "abs"))
	symlinkHost(t, "etc/real", filepath.Join(dir, "rel"))
	symlinkHost(t, "/etc", filepath.Join(dir, "etclink"))
	symlinkHost(t, "/abs", filepath.Join(dir, "chain"))
	symlinkHost(t, "../etc/real", filepath.Join(dir, "etc/up"))
	for _, p := range []string{"/abs", "/rel", "/etclink/real", "/chain", "/etc/up", "/etclink/up"} {
		info, err := r.Stat(p)
		if err != nil {
			t.Errorf("Stat(%s): %v", p, err)
			continue
		}
		if info.Inode != want || !info.IsRegular() || info.Size != 4 {
			t.Errorf("Stat(%s) = %+v, want the regular file with inode %d", p, info, want)
		}
	}
	if info, err := r.Lstat("/abs"); err != nil || !info.IsSymlink() {
		t.Errorf("Lstat(/abs) = %+v, %v; want the symlink", info, err)
	}
	if info, err := r.Lstat("/etclink/real"); err != nil || info.Inode != want {
		t.Errorf("Lstat(/etclink/real) = %+v, %v; want an intermediate symlink followed", info, err)
	}
	symlinkHost(t, "/loop2", filepath.Join(dir, "loop1"))
	symlinkHost(t, "/loop1", filepath.Join(dir, "loop2"))
	if _, err := r.Stat("/loop1"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("Stat of a symlink loop = %v, want ELOOP", err)
	}
}

// ---- Open, OpenFile, ReadFile ----

func TestOpenFileCreateWriteRead(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "etc"))
	f, err := r.OpenFile("/etc/motd", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != filepath.Join(dir, "etc/motd") {
		t.Errorf("Name() = %q", f.Name())
	}
	if _, err := f.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readHost(t, filepath.Join(dir, "etc/motd")); got != "hello\n" {
		t.Errorf("content = %q", got)
	}
	if got := hostStat(t, filepath.Join(dir, "etc/motd")).Mode & 0o777; fs.FileMode(got) != 0o640&^umask(t) {
		t.Errorf("mode = %o, want %o", got, 0o640&^umask(t))
	}
	if _, err := r.OpenFile("/etc/motd", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file = %v, want fs.ErrExist", err)
	}
	f, err = r.OpenFile("/etc/motd", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("more\n")
	f.Close()
	if got := readHost(t, filepath.Join(dir, "etc/motd")); got != "hello\nmore\n" {
		t.Errorf("after append: %q", got)
	}
	f, err = r.Open("/etc/motd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); string(b) != "hello\nmore\n" {
		t.Errorf("Open+ReadAll = %q", b)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("a file from Open is writable")
	}
}

// TestOpenFileExistingWithPerm: the common os.OpenFile idiom of passing a permission without
// O_CREATE must work (openat2 refuses a mode without O_CREAT with EINVAL).
func TestOpenFileExistingWithPerm(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "old content", 0o644)
	for _, flags := range []int{os.O_WRONLY | os.O_TRUNC, os.O_RDWR, os.O_RDONLY} {
		f, err := r.OpenFile("/f", flags, 0o644)
		if err != nil {
			t.Errorf("OpenFile(/f, %#x, 0644): %v", flags, err)
			continue
		}
		f.Close()
	}
	if got := readHost(t, filepath.Join(dir, "f")); got != "" {
		t.Errorf("O_TRUNC did not truncate: %q", got)
	}
}

func TestReadFileLarge(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	want := make([]byte, 3<<20+17)
	_, _ = rand.NewChaCha8([32]byte{1, 2, 3}).Read(want)
	if err := os.WriteFile(filepath.Join(dir, "big"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadFile("/big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadFile returned %d bytes, want the %d written", len(got), len(want))
	}
}

func TestReadFileEmpty(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "empty"), "", 0o644)
	got, err := r.ReadFile("/empty")
	if err != nil || len(got) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v", got, err)
	}
}

// TestReadFileSizeUnknown reads a file whose stat size (0) is not its length, as in /proc.
func TestReadFileSizeUnknown(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("/proc/self/cmdline")
	if err != nil || len(want) == 0 {
		t.Skip("no /proc/self/cmdline")
	}
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ReadFile(/proc/self/cmdline) = %q, want %q", got, want)
	}
}

// TestOpenRefusesNonRegular: Open and ReadFile promise a regular file. A FIFO must not block
// them, and a directory or device is an error.
func TestOpenRefusesNonRegular(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "dir"))
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	kinds := []string{"dir", "fifo"}
	if err := unix.Mknod(filepath.Join(dir, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err == nil {
		kinds = append(kinds, "zero")
	}
	for _, k := range kinds {
		for name, op := range map[string]func(string) error{
			"Open":     func(p string) error { return closeIfOpened(r.Open(p)) },
			"ReadFile": func(p string) error { _, err := r.ReadFile(p); return err },
		} {
			done := make(chan error, 1)
			go func() { done <- op("/" + k) }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("%s(/%s) succeeded on a non-regular file", name, k)
				}
			case <-time.After(5 * time.Second):
				// Release the blocked open so the test can finish, then fail.
				if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					w.Close()
				}
				t.Fatalf("%s(/%s) blocked", name, k)
			}
		}
	}
	if _, err := r.ReadFile("/dir"); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("ReadFile(dir) = %v, want EISDIR", err)
	}
}

// ---- ReadDir ----

func TestReadDirSorted(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	names := []string{"b", "a", "C", "10", "2", ".hidden", "zz", "é", "a b", "A"}
	for i, n := range names {
		switch i % 3 {
		case 0:
			writeHost(t, filepath.Join(dir, "d", n), "", 0o644)
		case 1:
			mkdirHost(t, filepath.Join(dir, "d", n))
		case 2:
			symlinkHost(t, "/nowhere", filepath.Join(dir, "d", n))
		}
	}
	got, err := r.ReadDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir = %q, want %q", got, want)
	}
	if !slices.IsSorted(got) {
		t.Errorf("ReadDir is not sorted: %q", got)
	}
}

func TestReadDirLargeAndEmpty(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "empty"))
	if got, err := r.ReadDir("/empty"); err != nil || len(got) != 0 {
		t.Errorf("ReadDir(empty) = %q, %v", got, err)
	}
	var want []string
	for i := range 3000 {
		n := "entry-with-a-longish-name-" + strconv.Itoa(i*7919%3000)
		writeHost(t, filepath.Join(dir, "big", n), "", 0o644)
		want = append(want, n)
	}
	slices.Sort(want)
	got, err := r.ReadDir("/big")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir(big) returned %d names, want %d sorted", len(got), len(want))
	}
	rootNames, err := r.ReadDir("/")
	if err != nil || !slices.Equal(rootNames, []string{"big", "empty"}) {
		t.Errorf("ReadDir(/) = %q, %v", rootNames, err)
	}
}

func TestReadDirOfFileIsError(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	if _, err := r.ReadDir("/f"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("ReadDir(file) = %v, want ENOTDIR", err)
	}
}

// ---- Mkdir, Remove, RemoveAll, Rename, Symlink, Readlink, SyncDir ----

func TestMkdir(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	if err := r.Mkdir("/d", 0o750); err != nil {
		t.Fatal(err)
	}
	st := hostStat(t, filepath.Join(dir, "d"))
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || fs.FileMode(st.Mode&0o777) != 0o750&^umask(t) {
		t.Errorf("mode = %o, want directory %o", st.Mode, 0o750&^umask(t))
	}
	if err := r.Mkdir("/d/e", 0o755); err != nil {
		t.Fatal(err)
	}
	mustExist(t, filepath.Join(dir, "d/e"))
	if err := r.Mkdir("/d", 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir(existing) = %v, want fs.ErrExist", err)
	}
	if err := r.Mkdir("/missing/x", 0o755); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Mkdir(missing parent) = %v, want fs.ErrNotExist", err)
	}
	if err := r.Mkdir("/", 0o755); err == nil {
		t.Error("Mkdir(/) succeeded")
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	mkdirHost(t, filepath.Join(dir, "empty"))
	writeHost(t, filepath.Join(dir, "full/x"), "", 0o644)
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/f", "/empty", "/fifo"} {
		if err := r.Remove(p); err != nil {
			t.Errorf("Remove(%s): %v", p, err)
		}
		mustNotExist(t, filepath.Join(dir, p))
	}
	if err := r.Remove("/full"); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		t.Errorf("Remove(non-empty dir) = %v, want ENOTEMPTY", err)
	}
	mustExist(t, filepath.Join(dir, "full/x"))
	if err := r.Remove("/"); err == nil {
		t.Error("Remove(/) succeeded")
	}
	mustExist(t, dir)
}

// TestRemoveReportsPermissionError: Remove of an undeletable (immutable) file reports EPERM
// (and not, say, the ENOTDIR of its fallback rmdir).
func TestRemoveReportsPermissionError(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	r, dir := newRoot(t)
	p := filepath.Join(dir, "immutable")
	writeHost(t, p, "", 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after the flag is reset, below
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("no file attributes here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags|fsImmutableFL); err != nil {
		t.Skipf("cannot make a file immutable here: %v", err)
	}
	t.Cleanup(func() { _ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags) })
	err = r.Remove("/immutable")
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Remove(immutable file) = %v, want EPERM", err)
	}
	mustExist(t, p)
}

func TestRemoveAll(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	tree := filepath.Join(dir, "tree")
	writeHost(t, filepath.Join(tree, "a/b/c/file"), "x", 0o644)
	writeHost(t, filepath.Join(tree, "top"), "x", 0o000)
	mkdirHost(t, filepath.Join(tree, "emptydir"))
	symlinkHost(t, "/keep", filepath.Join(tree, "a/link"))
	if err := unix.Mkfifo(filepath.Join(tree, "a/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	deep := tree
	for i := range 60 {
		deep = filepath.Join(deep, "d"+strconv.Itoa(i))
	}
	writeHost(t, filepath.Join(deep, "leaf"), "x", 0o644)
	mkdirHost(t, filepath.Join(dir, "keep"))
	writeHost(t, filepath.Join(dir, "keep/precious"), "x", 0o644)

	if err := r.RemoveAll("/tree"); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, tree)
	mustExist(t, filepath.Join(dir, "keep/precious"))
	if err := r.RemoveAll("/tree"); err != nil {
		t.Errorf("RemoveAll(missing) = %v, want nil", err)
	}
	if err := r.RemoveAll("/missing/deeper"); err != nil {
		t.Errorf("RemoveAll(missing parent) = %v, want nil", err)
	}
	writeHost(t, filepath.Join(dir, "single"), "x", 0o644)
	if err := r.RemoveAll("/single"); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(dir, "single"))
}

// TestRemoveAllRefusesRoot: RemoveAll("/") is refused before anything is removed.
func TestRemoveAllRefusesRoot(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0o644)
	if err := r.RemoveAll("/"); err == nil {
		t.Error("RemoveAll(/) succeeded")
	}
	mustExist(t, filepath.Join(dir, "etc/passwd"))
}

func TestRename(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "a/from"), "new", 0o644)
	writeHost(t, filepath.Join(dir, "b/to"), "old", 0o644)
	ino := hostStat(t, filepath.Join(dir, "a/from")).Ino
	if err := r.Rename("/a/from", "/b/to"); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(dir, "a/from"))
	if got := readHost(t, filepath.Join(dir, "b/to")); got != "new" || hostStat(t, filepath.Join(dir, "b/to")).Ino != ino {
		t.Errorf("after Rename, /b/to = %q (inode %d), want the renamed file", got, hostStat(t, filepath.Join(dir, "b/to")).Ino)
	}
	if err := r.Rename("/a", "/c"); err != nil {
		t.Fatalf("Rename of a directory: %v", err)
	}
	mustExist(t, filepath.Join(dir, "c"))
	err := r.Rename("/missing", "/x")
	var le *os.LinkError
	if !errors.As(err, &le) || !errors.Is(err, fs.ErrNotExist) || le.Old != "/missing" || le.New != "/x" {
		t.Errorf("Rename(missing) = %#v, want *os.LinkError wrapping ENOENT", err)
	}
	if err := r.Rename("/", "/x"); err == nil {
		t.Error("Rename(/, ...) succeeded")
	}
	if err := r.Rename("/c", "/"); err == nil {
		t.Error("Rename(..., /) succeeded")
	}
}

func TestSymlinkAndReadlink(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	long := strings.Repeat("abcdefghij/", 300) + "end" // > 256 bytes: Readlink must grow its buffer
	for i, target := range []string{"/etc/real", "relative/target", "../../../../escape", "/", "x", long, strings.Repeat("y", 255), strings.Repeat("z", 256)} {
		p := "/link" + strconv.Itoa(i)
		if err := r.Symlink(target, p); err != nil {
			t.Fatalf("Symlink(%q, %s): %v", target[:min(len(target), 40)], p, err)
		}
		if got := readlinkHost(t, filepath.Join(dir, p)); got != target {
			t.Errorf("stored target of %s = %q, want %q", p, got, target)
		}
		got, err := r.Readlink(p)
		if err != nil || got != target {
			t.Errorf("Readlink(%s) = %q, %v; want %q", p, got, err, target)
		}
	}
	if err := r.Symlink("other", "/link0"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Symlink over an existing entry = %v, want fs.ErrExist", err)
	}
	writeHost(t, filepath.Join(dir, "file"), "", 0o644)
	if _, err := r.Readlink("/file"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Readlink(regular file) = %v, want EINVAL", err)
	}
}

func TestSyncDir(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "d"))
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	for _, p := range []string{"/", "/d"} {
		if err := r.SyncDir(p); err != nil {
			t.Errorf("SyncDir(%s): %v", p, err)
		}
	}
	if err := r.SyncDir("/f"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("SyncDir(file) = %v, want ENOTDIR", err)
	}
}

// ---- Chmod, Lchown ----

func TestChmodExact(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	mkdirHost(t, filepath.Join(dir, "d"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    string
		mode fs.FileMode
	}{{"/f", 0o777}, {"/f", 0o000}, {"/f", 0o711}, {"/d", 0o700}, {"/d", 0o777}, {"/fifo", 0o666}, {"/", 0o711}} {
		if err := r.Chmod(c.p, c.mode); err != nil {
			t.Errorf("Chmod(%s, %v): %v", c.p, c.mode, err)
			continue
		}
		if got := hostStat(t, filepath.Join(dir, c.p)).Mode & 0o7777; got != uint32(c.mode) {
			t.Errorf("after Chmod(%s, %o) mode = %o (umask must not apply)", c.p, c.mode, got)
		}
	}
}

// TestChmodSpecialBits: setuid, setgid and sticky are set when asked and cleared when not.
func TestChmodSpecialBits(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	mkdirHost(t, filepath.Join(dir, "d"))
	for _, c := range []struct {
		p    string
		mode fs.FileMode
		raw  uint32
	}{
		{"/f", 0o755 | fs.ModeSetuid, 0o4755},
		{"/f", 0o755 | fs.ModeSetgid, 0o2755},
		{"/f", 0o755 | fs.ModeSetuid | fs.ModeSetgid, 0o6755},
		{"/f", 0o755, 0o755},
		{"/d", 0o777 | fs.ModeSticky, 0o1777},
		{"/d", 0o775 | fs.ModeSetgid | fs.ModeSticky, 0o3775},
		{"/d", 0o755, 0o755},
		{"/f", 0o600 | fs.ModeDir, 0o600}, // type bits in mode are ignored
	} {
		if err := r.Chmod(c.p, c.mode); err != nil {
			t.Fatalf("Chmod(%s, %v): %v", c.p, c.mode, err)
		}
		if got := hostStat(t, filepath.Join(dir, c.p)).Mode & 0o7777; got != c.raw {
			t.Errorf("Chmod(%s, %v): mode %o, want %o", c.p, c.mode, got, c.raw)
		}
		info, err := r.Lstat(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.mode &^ fs.ModeType; info.Mode&^fs.ModeType != want {
			t.Errorf("Lstat(%s).Mode = %v after Chmod(%v)", c.p, info.Mode, c.mode)
		}
	}
}

// TestChmodDescriptorPaths exercises the /proc-less way Chmod changes a mode through its O_PATH
// descriptor, and the /proc one, separately.
func TestChmodDescriptorPaths(t *testing.T) {
	t.Parallel()
	_, dir := newRoot(t)
	p := filepath.Join(dir, "f")
	writeHost(t, p, "", 0o644)
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := chmodViaProc(fd, 0o4700); err != nil {
		t.Fatalf("chmodViaProc: %v", err)
	}
	if got := hostStat(t, p).Mode & 0o7777; got != 0o4700 {
		t.Errorf("after chmodViaProc mode = %o", got)
	}
	if err := fchmodPath(fd, 0o640); err != nil {
		t.Fatalf("fchmodPath: %v", err)
	}
	if got := hostStat(t, p).Mode & 0o7777; got != 0o640 {
		t.Errorf("after fchmodPath mode = %o", got)
	}
}

// TestLchownChangesOwner: Lchown sets owner and group, and -1 leaves one unchanged.
func TestLchownChangesOwner(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "f"), "", 0o644)
	mkdirHost(t, filepath.Join(dir, "d"))
	for _, p := range []string{"/f", "/d", "/"} {
		if err := r.Lchown(p, 12345, 12345); err != nil {
			t.Fatalf("Lchown(%s): %v", p, err)
		}
		st := hostStat(t, filepath.Join(dir, p))
		if st.Uid != 12345 || st.Gid != 12345 {
			t.Errorf("Lchown(%s, 12345, 12345): owner %d:%d", p, st.Uid, st.Gid)
		}
		info, err := r.Lstat(p)
		if err != nil || info.UID != 12345 || info.GID != 12345 {
			t.Errorf("Lstat(%s) after Lchown = %+v, %v", p, info, err)
		}
	}
	if err := r.Lchown("/f", -1, 54321); err != nil {
		t.Fatal(err)
	}
	if st := hostStat(t, filepath.Join(dir, "f")); st.Uid != 12345 || st.Gid != 54321 {
		t.Errorf("Lchown(-1, 54321): owner %d:%d, want 12345:54321", st.Uid, st.Gid)
	}
	if err := r.Lchown("/f", 23456, -1); err != nil {
		t.Fatal(err)
	}
	if st := hostStat(t, filepath.Join(dir, "f")); st.Uid != 23456 || st.Gid != 54321 {
		t.Errorf("Lchown(23456, -1): owner %d:%d, want 23456:54321", st.Uid, st.Gid)
	}
}

// ---- CreateTemp ----

func TestCreateTemp(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "etc"))
	f, name, err := r.CreateTemp("/etc", "motd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if path.Dir(name) != "/etc" || !strings.HasPrefix(path.Base(name), ".motd.") {
		t.Errorf("CreateTemp name = %q, want a hidden name after motd in /etc", name)
	}
	if _, err := rel(name); err != nil {
		t.Errorf("CreateTemp name %q is not a catalog path: %v", name, err)
	}
	host := filepath.Join(dir, name)
	if f.Name() != host {
		t.Errorf("f.Name() = %q, want %q", f.Name(), host)
	}
	if got := hostStat(t, host).Mode; got&syscall.S_IFMT != syscall.S_IFREG || got&0o7777 != 0o600 {
		t.Errorf("temp file mode = %o, want regular 0600", got)
	}
	if _, err := f.WriteString("payload"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(f); string(b) != "payload" {
		t.Errorf("read back %q: the temp file is not read-write", b)
	}
	if f, name, err := r.CreateTemp("/", "x"); err != nil || path.Dir(name) != "/" {
		t.Errorf("CreateTemp(/) = %q, %v", name, err)
	} else {
		f.Close()
	}
	if _, _, err := r.CreateTemp("/missing", "x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CreateTemp(missing dir) = %v, want fs.ErrNotExist", err)
	}
}

// TestCreateTempUniqueConcurrently: many goroutines get distinct, private, empty files.
func TestCreateTempUniqueConcurrently(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	mkdirHost(t, filepath.Join(dir, "d"))
	const workers, each = 32, 40
	var (
		mu    sync.Mutex
		names = map[string]bool{}
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				f, name, err := r.CreateTemp("/d", "conf")
				if err != nil {
					t.Error(err)
					return
				}
				f.Close()
				mu.Lock()
				if names[name] {
					t.Errorf("CreateTemp returned %s twice", name)
				}
				names[name] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(names) != workers*each {
		t.Fatalf("%d names, want %d", len(names), workers*each)
	}
	onDisk := hostNames(t, filepath.Join(dir, "d"))
	if len(onDisk) != workers*each {
		t.Errorf("%d files on disk, want %d", len(onDisk), workers*each)
	}
	for name := range names {
		st := hostStat(t, filepath.Join(dir, name))
		if st.Mode&0o7777 != 0o600 || st.Size != 0 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			t.Errorf("%s: mode %o size %d, want an empty 0600 regular file", name, st.Mode, st.Size)
		}
	}
}

// TestCreateTempSkipsExistingNames: a name that exists (a leftover, or another Root's file)
// is skipped, never opened.
func TestCreateTempSkipsExistingNames(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	pid := strconv.Itoa(os.Getpid())
	for i := 1; i <= 5; i++ {
		writeHost(t, filepath.Join(dir, ".base.satchel-"+pid+"-"+strconv.Itoa(i)), "leftover", 0o644)
	}
	f, name, err := r.CreateTemp("/", "base")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if want := "/.base.satchel-" + pid + "-6"; name != want {
		t.Errorf("CreateTemp = %s, want %s", name, want)
	}
	for i := 1; i <= 5; i++ {
		if got := readHost(t, filepath.Join(dir, ".base.satchel-"+pid+"-"+strconv.Itoa(i))); got != "leftover" {
			t.Errorf("existing temp name %d was touched: %q", i, got)
		}
	}

	// A second Root on the same directory starts its sequence at 1 too.
	r2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	f, name2, err := r2.CreateTemp("/", "base")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if name2 == name || hostStat(t, filepath.Join(dir, name2)).Size != 0 {
		t.Errorf("second Root's CreateTemp = %s (first gave %s)", name2, name)
	}

	r3, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	for i := 1; i <= 100; i++ {
		writeHost(t, filepath.Join(dir, ".full.satchel-"+pid+"-"+strconv.Itoa(i)), "", 0o644)
	}
	if f, name, err := r3.CreateTemp("/", "full"); err == nil {
		f.Close()
		t.Errorf("CreateTemp after 100 collisions = %s, want an error", name)
	}
}

// ---- concurrency ----

// TestConcurrentUse runs every method at once on one Root, for the race detector.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	r, dir := newRoot(t)
	writeHost(t, filepath.Join(dir, "shared"), "shared", 0o644)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			d := "/w" + strconv.Itoa(w)
			if err := r.Mkdir(d, 0o755); err != nil {
				t.Error(err)
				return
			}
			for i := range 50 {
				p := d + "/f" + strconv.Itoa(i)
				f, tmp, err := r.CreateTemp(d, "f")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = f.WriteString(p)
				f.Close()
				if err := r.Chmod(tmp, 0o644); err != nil {
					t.Error(err)
				}
				if err := r.Rename(tmp, p); err != nil {
					t.Error(err)
				}
				if b, err := r.ReadFile(p); err != nil || string(b) != p {
					t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
				}
				if _, err := r.Lstat("/shared"); err != nil {
					t.Error(err)
				}
				if err := r.Symlink(p, p+".l"); err != nil {
					t.Error(err)
				}
				if _, err := r.Stat(p + ".l"); err != nil {
					t.Error(err)
				}
			}
			if _, err := r.ReadDir(d); err != nil {
				t.Error(err)
			}
			if err := r.RemoveAll(d); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if names := hostNames(t, dir); !slices.Equal(names, []string{"shared"}) {
		t.Errorf("left behind: %v", names)
	}
}

const fsImmutableFL = 0x10 // FS_IMMUTABLE_FL from linux/fs.h
