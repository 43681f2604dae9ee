package systest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The container's files are reached from the host, through /proc/LEADER/root, while it runs.
// Paths are the container's ("/etc/hosts"), and every one is resolved by the kernel with
// openat2's RESOLVE_IN_ROOT: ".." and symlinks, absolute ones included (/var/run -> /run), stay
// inside the container's root, and mounts inside the container are seen, as they would be by a
// process inside it.

// WriteFile writes data to the file at p inside the running container, creating it and missing
// parent directories (0755), and sets its mode (permissions, setuid, setgid, sticky) to mode. It is
// owned by root.
func (c *Container) WriteFile(t testing.TB, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := c.writeFrom(p, bytes.NewReader(data), mode); err != nil {
		t.Fatalf("container %s: write %s: %v", c.name, p, err)
	}
}

// ReadFile returns the content of the file at p inside the running container.
func (c *Container) ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := c.readFile(p)
	if err != nil {
		t.Fatalf("container %s: read %s: %v", c.name, p, err)
	}
	return b
}

// CopyIn copies the host file or directory tree hostPath to containerPath inside the running
// container, creating missing parent directories. Modes are kept; symlinks are copied as
// symlinks; everything copied is owned by root.
func (c *Container) CopyIn(t testing.TB, hostPath, containerPath string) {
	t.Helper()
	if err := c.copyIn(hostPath, containerPath); err != nil {
		t.Fatalf("container %s: copy %s to %s: %v", c.name, hostPath, containerPath, err)
	}
}

// rel checks that p is an absolute container path without ".." and returns it relative to
// the root.
func rel(p string) (string, error) {
	if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%q: paths with .. are refused", p)
		}
	}
	if p = path.Clean(p); p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// openRoot opens the container's root directory as its processes see it: through
// /proc/LEADER/root, so that lookups cross the mounts made inside the container (/tmp and /run
// are tmpfs there, /var/cache/apt/archives an overlay, binds), which the overlay's mount
// point on the host does not show.
func (c *Container) openRoot() (int, error) {
	if c.leaderFD < 0 || c.exited() {
		return -1, fmt.Errorf("container %s is not running", c.name)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(c.leader)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	// The leader still runs (signal 0 through its pidfd), so the PID was not reused: fd is its root.
	if err := unix.PidfdSendSignal(c.leaderFD, 0, nil, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s is not running: %w", c.name, err)
	}
	return fd, nil
}

// openIn opens name, relative to the root root, resolving it inside that root.
func openIn(root int, name string, flags int, perm uint32) (int, error) {
	if flags&unix.O_CREAT == 0 {
		perm = 0 // openat2 refuses a mode it would not use
	}
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(perm),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(root, name, how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) { // a concurrent rename: retry
			continue
		}
		return fd, err
	}
}

// mkdirAll creates the directory name (relative to root) and its missing parents, one
// component at a time, each below a parent resolved inside the root.
func mkdirAll(root int, name string) error {
	if name == "." {
		return nil
	}
	parent := "."
	for _, elem := range strings.Split(name, "/") {
		pfd, err := openIn(root, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("/%s: %w", parent, err)
		}
		err = unix.Mkdirat(pfd, elem, 0o755)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir /%s: %w", path.Join(parent, elem), err)
		}
		parent = path.Join(parent, elem)
	}
	return nil
}

// unixMode converts a FileMode's permission and special bits to the kernel's.
func unixMode(mode fs.FileMode) uint32 {
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
	return m
}

func (c *Container) writeFrom(p string, r io.Reader, mode fs.FileMode) error {
	name, err := rel(p)
	if err != nil {
		return err
	}
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return writeIn(root, name, r, mode)
}

func writeIn(root int, name string, r io.Reader, mode fs.FileMode) error {
	if name == "." {
		return errors.New("cannot write to the root directory")
	}
	if err := mkdirAll(root, path.Dir(name)); err != nil {
		return err
	}
	fd, err := openIn(root, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Fchmod(fd, unixMode(mode)); err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Close()
}

func (c *Container) readFile(p string) ([]byte, error) {
	name, err := rel(p)
	if err != nil {
		return nil, err
	}
	root, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	fd, err := openIn(root, name, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(f)
}

func (c *Container) copyIn(hostPath, containerPath string) error {
	name, err := rel(containerPath)
	if err != nil {
		return err
	}
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return filepath.WalkDir(hostPath, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, err := filepath.Rel(hostPath, hp)
		if err != nil {
			return err
		}
		dst := path.Join(name, filepath.ToSlash(sub))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := mkdirAll(root, dst); err != nil {
				return err
			}
			fd, err := openIn(root, dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Fchmod(fd, unixMode(info.Mode()))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			if err := mkdirAll(root, path.Dir(dst)); err != nil {
				return err
			}
			pfd, err := openIn(root, path.Dir(dst), unix.O_PATH|unix.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			defer unix.Close(pfd)
			if err := unix.Unlinkat(pfd, path.Base(dst), 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
			return unix.Symlinkat(target, pfd, path.Base(dst))
		case info.Mode().IsRegular():
			f, err := os.Open(hp)
			if err != nil {
				return err
			}
			defer f.Close()
			return writeIn(root, dst, f, info.Mode())
		default:
			return fmt.Errorf("%s: cannot copy a %v", hp, info.Mode().Type())
		}
	})
}
