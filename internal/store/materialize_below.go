package store

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Containment. The plan inspects the tree's directory without following symlinks, but the
// writes come later, by path; whoever may write in the directory (the user a content
// library belongs to) could meanwhile replace a subdirectory with a symlink to /etc, and a
// write meant for lib/sub/x would land in /etc/x. So once planned, every path strictly below
// the tree's directory is reached through a second root opened at that directory
// (r.below): there, as openat2's RESOLVE_IN_ROOT has it, a symlink cannot lead outside,
// and such a write lands inside the tree's directory, or fails. The directory itself, and
// the entries staged beside it when it is created or replaced, go through the caller's
// root, as planned.

// containBelow opens the second root, once the plan is made, when the directory exists.
// Without openat2 (kernels before 5.6) there is no such root: the writes then go through
// the caller's root alone.
func (r *treeRun) containBelow() error {
	var want unix.Stat_t
	if err := r.lstat(r.dir, &want); err != nil {
		return nil // created by this run (staged beside it), or gone: the writes find out
	}
	below, err := fsroot.Open(r.root.HostPath(r.dir))
	if err != nil {
		return nil // no openat2: see above
	}
	d, err := below.OpenFile("/", os.O_RDONLY|unix.O_DIRECTORY, 0)
	var got unix.Stat_t
	if err == nil {
		err = unix.Fstat(int(d.Fd()), &got)
		_ = d.Close()
	}
	if err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		_ = below.Close()
		return fmt.Errorf("%s changed while the tree was being planned; try again", r.root.HostPath(r.dir))
	}
	r.below = below
	return nil
}

// at returns the root through which to reach p (a path inside the caller's root), and p's
// path in it.
func (r *treeRun) at(p string) (*fsroot.Root, string) {
	if r.below == nil {
		return r.root, p
	}
	prefix := r.dir + "/"
	if r.dir == "/" {
		prefix = "/"
	}
	if p == r.dir || !strings.HasPrefix(p, prefix) {
		return r.root, p
	}
	return r.below, "/" + strings.TrimPrefix(p, prefix)
}

func (r *treeRun) openFile(p string, flags int, perm fs.FileMode) (*os.File, error) {
	fr, q := r.at(p)
	return fr.OpenFile(q, flags, perm)
}

// createTemp is fsroot's CreateTemp in dir; the name returned is inside the caller's root.
func (r *treeRun) createTemp(dir, base string) (*os.File, string, error) {
	fr, q := r.at(dir)
	f, name, err := fr.CreateTemp(q, base)
	if fr == r.below && err == nil {
		name = path.Join(r.dir, name)
	}
	return f, name, err
}

func (r *treeRun) mkdir(p string, perm fs.FileMode) error {
	fr, q := r.at(p)
	return fr.Mkdir(q, perm)
}

func (r *treeRun) symlink(target, p string) error {
	fr, q := r.at(p)
	return fr.Symlink(target, q)
}

func (r *treeRun) lchown(p string, uid, gid int) error {
	fr, q := r.at(p)
	return fr.Lchown(q, uid, gid)
}

func (r *treeRun) chmod(p string, mode fs.FileMode) error {
	fr, q := r.at(p)
	return fr.Chmod(q, mode)
}

func (r *treeRun) lstatAt(p string) (*fsroot.Info, error) {
	fr, q := r.at(p)
	return fr.Lstat(q)
}

func (r *treeRun) removeAll(p string) error {
	fr, q := r.at(p)
	return fr.RemoveAll(q)
}

func (r *treeRun) syncDir(p string) error {
	fr, q := r.at(p)
	return fr.SyncDir(q)
}

// rename renames within one root: the second one when both paths lie below the tree's
// directory, else the caller's.
func (r *treeRun) rename(from, to string) error {
	ff, fq := r.at(from)
	tf, tq := r.at(to)
	if ff == tf {
		return ff.Rename(fq, tq)
	}
	return r.root.Rename(from, to)
}
