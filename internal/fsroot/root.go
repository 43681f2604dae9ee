package fsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Root is an open directory tree. It is safe for concurrent use.
type Root struct {
	dir    string
	mu     sync.RWMutex // read-held while fd is in use, write-held by Close
	fd     int          // -1 once closed
	inRoot bool         // openat2 with RESOLVE_IN_ROOT is available
	seq    atomic.Uint64
}

// Info is what Lstat and Stat report of an entry.
type Info struct {
	Mode  fs.FileMode
	Size  int64
	UID   int
	GID   int
	Mtime time.Time
	Inode uint64
}

// IsRegular reports whether the entry is a regular file.
func (i *Info) IsRegular() bool { return i.Mode.IsRegular() }

// IsDir reports whether the entry is a directory.
func (i *Info) IsDir() bool { return i.Mode.IsDir() }

// IsSymlink reports whether the entry is a symbolic link.
func (i *Info) IsSymlink() bool { return i.Mode&fs.ModeSymlink != 0 }

// Open opens dir as a root. dir must be an existing directory.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", dir, err)
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", abs, err)
	}
	probe, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err == nil {
		_ = unix.Close(probe)
	}
	inRoot, err := probeResult(abs, err)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &Root{dir: abs, fd: fd, inRoot: inRoot}, nil
}

// probeResult decides, from the error of a trial openat2 on the root abs, whether openat2 is
// available. ENOSYS is a kernel before 5.6; EPERM is a seccomp filter that does not know the
// system call (older container runtimes), as opening "." with O_PATH needs no permission.
// Without openat2 only the root "/" works.
func probeResult(abs string, err error) (inRoot bool, _ error) {
	switch {
	case err == nil:
		return true, nil
	case (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM)) && abs == "/":
		return false, nil
	case errors.Is(err, unix.ENOSYS):
		return false, fmt.Errorf("open root %s: this kernel lacks openat2 (Linux 5.6 or newer is needed for --root)", abs)
	case errors.Is(err, unix.EPERM):
		return false, fmt.Errorf("open root %s: openat2 is not permitted here (a seccomp filter?), and --root needs it", abs)
	default:
		return false, fmt.Errorf("open root %s: %w", abs, err)
	}
}

// Close releases the root's directory descriptor, once any operation using it has finished.
// Operations after Close, and Close again, fail with fs.ErrClosed: the descriptor's number
// may by then name another directory, which must not be used as the root.
func (r *Root) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return &fs.PathError{Op: "close", Path: r.dir, Err: fs.ErrClosed}
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.dir, Err: err}
	}
	return nil
}

// Dir returns the root's directory on the host.
func (r *Root) Dir() string { return r.dir }

// HostPath returns where p lies on the host, for messages and for a command's working
// directory. It is lexical: symlinks inside the root are not resolved.
func (r *Root) HostPath(p string) string {
	if r.dir == "/" {
		return p
	}
	return filepath.Join(r.dir, p)
}

// rel turns an absolute catalog path into one relative to the root.
func rel(p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q is not absolute and clean", p)
	}
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// openat resolves name (relative to the root) and opens it with flags. perm is used only
// when flags create a file.
func (r *Root) openat(name string, flags int, perm uint32) (int, error) {
	flags |= unix.O_CLOEXEC
	if flags&unix.O_CREAT == 0 && flags&unix.O_TMPFILE != unix.O_TMPFILE {
		perm = 0 // openat2, unlike openat, refuses a mode it would not use (EINVAL)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.fd < 0 {
		return -1, fs.ErrClosed
	}
	if r.inRoot {
		for {
			fd, err := unix.Openat2(r.fd, name, &unix.OpenHow{Flags: uint64(flags), Mode: uint64(perm),
				Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) { // a concurrent rename; retry
				continue
			}
			return fd, err
		}
	}
	return unix.Openat(r.fd, name, flags, perm)
}

// parent opens the directory containing p and returns it with p's last component.
func (r *Root) parent(op, p string) (dirfd int, base string, err error) {
	name, err := rel(p)
	if err != nil {
		return -1, "", &fs.PathError{Op: op, Path: p, Err: err}
	}
	if name == "." {
		return -1, "", &fs.PathError{Op: op, Path: p, Err: errors.New("cannot operate on the root itself")}
	}
	dir, base := path.Split(name)
	if dir == "" {
		dir = "."
	}
	fd, err := r.openat(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", &fs.PathError{Op: op, Path: p, Err: err}
	}
	return fd, base, nil
}

func toInfo(st *unix.Stat_t) *Info {
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return &Info{Mode: mode, Size: st.Size, UID: int(st.Uid), GID: int(st.Gid),
		Mtime: time.Unix(st.Mtim.Unix()), Inode: st.Ino}
}

// Lstat describes the entry at p without following a final symlink.
func (r *Root) Lstat(p string) (*Info, error) {
	if p == "/" {
		return r.Stat(p)
	}
	dfd, base, err := r.parent("lstat", p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return toInfo(&st), nil
}

// Stat describes the entry at p, following symlinks (inside the root).
func (r *Root) Stat(p string) (*Info, error) {
	name, err := rel(p)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	fd, err := r.openat(name, unix.O_PATH, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	return toInfo(&st), nil
}

// errSymlink is the error for a symbolic link where one is not followed. It wraps ELOOP, the
// kernel's answer to O_NOFOLLOW.
var errSymlink error = symlinkError{}

type symlinkError struct{}

func (symlinkError) Error() string { return "is a symbolic link" }
func (symlinkError) Unwrap() error { return unix.ELOOP }

// Open opens the regular file at p for reading. A final symlink is not followed, and anything
// but a regular file is an error; a FIFO or device is not waited on.
func (r *Root) Open(p string) (*os.File, error) {
	fd, err := r.open(p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	switch {
	case err != nil:
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		err = unix.EISDIR
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = errors.New("not a regular file")
	default:
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), r.HostPath(p)), nil
}

// OpenFile opens p with flags (os.O_*). A final symlink is never followed.
func (r *Root) OpenFile(p string, flags int, perm fs.FileMode) (*os.File, error) {
	fd, err := r.open(p, flags, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), r.HostPath(p)), nil
}

// open opens p with flags and O_NOFOLLOW, and returns the descriptor.
func (r *Root) open(p string, flags int, perm fs.FileMode) (int, error) {
	name, err := rel(p)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	fd, err := r.openat(name, flags|unix.O_NOFOLLOW, uint32(perm.Perm()))
	if err != nil {
		// O_NOFOLLOW gives ELOOP (ENOTDIR with O_DIRECTORY) for a final symlink; say so,
		// but not for a symlink loop or a file earlier in the path.
		if (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) && r.isSymlink(name) {
			err = errSymlink
		}
		return -1, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// isSymlink reports whether name (relative to the root) is itself a symbolic link.
func (r *Root) isSymlink(name string) bool {
	fd, err := r.openat(name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// ReadFile reads the whole regular file at p. A final symlink is not followed, and anything
// but a regular file is an error.
func (r *Root) ReadFile(p string) ([]byte, error) {
	f, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	return buf.Bytes(), nil
}

// ReadDir returns the names in the directory p, sorted.
func (r *Root) ReadDir(p string) ([]string, error) {
	f, err := r.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
	}
	slices.Sort(names)
	return names, nil
}

// Mkdir creates the directory p with perm (before umask; call Chmod to be exact).
func (r *Root) Mkdir(p string, perm fs.FileMode) error {
	dfd, base, err := r.parent("mkdir", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, base, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	return nil
}

// Remove removes the file, symlink or empty directory at p.
func (r *Root) Remove(p string) error {
	dfd, base, err := r.parent("remove", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, base, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return nil
}

// RemoveAll removes p and everything below it. Symlinks are removed, never followed. The root
// itself cannot be removed.
func (r *Root) RemoveAll(p string) error {
	name, err := rel(p)
	if err != nil {
		return &fs.PathError{Op: "removeall", Path: p, Err: err}
	}
	if name == "." { // refuse before emptying it, not after
		return &fs.PathError{Op: "removeall", Path: p, Err: errors.New("cannot operate on the root itself")}
	}
	info, err := r.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		names, err := r.ReadDir(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := r.RemoveAll(path.Join(p, n)); err != nil {
				return err
			}
		}
	}
	return r.Remove(p)
}

// Rename renames from to to, replacing to atomically if it exists.
func (r *Root) Rename(from, to string) error {
	ffd, fbase, err := r.parent("rename", from)
	if err != nil {
		return err
	}
	defer unix.Close(ffd)
	tfd, tbase, err := r.parent("rename", to)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := unix.Renameat(ffd, fbase, tfd, tbase); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// Symlink creates a symbolic link at p pointing to target. The target is stored as given.
func (r *Root) Symlink(target, p string) error {
	dfd, base, err := r.parent("symlink", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Symlinkat(target, dfd, base); err != nil {
		return &fs.PathError{Op: "symlink", Path: p, Err: err}
	}
	return nil
}

// Readlink returns the target of the symbolic link at p.
func (r *Root) Readlink(p string) (string, error) {
	dfd, base, err := r.parent("readlink", p)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dfd, base, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: p, Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// openNoFollow opens the entry at p itself (never a symlink's target) as an O_PATH descriptor.
func (r *Root) openNoFollow(op, p string) (int, error) {
	name, err := rel(p)
	if err != nil {
		return -1, &fs.PathError{Op: op, Path: p, Err: err}
	}
	fd, err := r.openat(name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, &fs.PathError{Op: op, Path: p, Err: err}
	}
	return fd, nil
}

// Chmod sets the permission bits (and setuid, setgid, sticky) of the file or directory at p.
// A symlink at p is an error: its mode means nothing and its target is not ours to change.
func (r *Root) Chmod(p string, mode fs.FileMode) error {
	fd, err := r.openNoFollow("chmod", p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "chmod", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return &fs.PathError{Op: "chmod", Path: p, Err: errSymlink}
	}
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if mode&fs.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if mode&fs.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	if err := fchmodPath(fd, m); err != nil {
		return &fs.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

// fchmodPath sets the mode of the inode that the O_PATH descriptor fd refers to, which
// fchmod refuses. fchmodat2 (Linux 6.6) accepts it with AT_EMPTY_PATH; older kernels go
// through /proc.
func fchmodPath(fd int, mode uint32) error {
	err := unix.Fchmodat(fd, "", mode, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EPERM) { // no fchmodat2, or a seccomp filter that does not know it
		return chmodViaProc(fd, mode)
	}
	return err
}

// chmodViaProc sets the mode of fd's inode through /proc/self/fd, whose link names exactly the
// inode we opened, whatever happens to the path meanwhile.
func chmodViaProc(fd int, mode uint32) error {
	return unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0)
}

// Lchown sets the owner and group of the entry at p (a symlink's own, if p is one). -1 leaves
// a value unchanged.
func (r *Root) Lchown(p string, uid, gid int) error {
	fd, err := r.openNoFollow("chown", p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chown", Path: p, Err: err}
	}
	return nil
}

// CreateTemp creates a new, empty, private (0600) file in directory dir, named after base so
// that a leftover is recognisable, and returns it with its path.
func (r *Root) CreateTemp(dir, base string) (*os.File, string, error) {
	if _, err := rel(dir); err != nil { // path.Join below would clean it
		return nil, "", &fs.PathError{Op: "createtemp", Path: dir, Err: err}
	}
	if strings.ContainsAny(base, "/\x00") {
		return nil, "", &fs.PathError{Op: "createtemp", Path: dir, Err: fmt.Errorf("base name %q is not a single path component", base)}
	}
	for range 100 {
		name := path.Join(dir, fmt.Sprintf(".%s.satchel-%d-%d", base, os.Getpid(), r.seq.Add(1)))
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many collisions", dir)
}

// SyncDir flushes the directory p to disk, making renames and creations in it durable.
func (r *Root) SyncDir(p string) error {
	name, err := rel(p)
	if err != nil {
		return &fs.PathError{Op: "sync", Path: p, Err: err}
	}
	fd, err := r.openat(name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &fs.PathError{Op: "sync", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &fs.PathError{Op: "sync", Path: p, Err: err}
	}
	return nil
}
