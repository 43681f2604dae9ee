package systest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoots returns the cgroup hierarchies in which a container gets a cgroup of its own:
// the unified (v2) one, and on a v1 or hybrid host also name=systemd, which systemd-nspawn and
// the container's systemd use.
func cgroupRoots() ([]string, error) {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{"/sys/fs/cgroup"}, nil
	}
	var roots []string
	for _, dir := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
		if unix.Statfs(dir, &st) == nil && (st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC) {
			roots = append(roots, dir)
		}
	}
	if len(roots) == 0 {
		return nil, errors.New("no cgroup hierarchy for systemd-nspawn (neither cgroup2 on /sys/fs/cgroup nor /sys/fs/cgroup/systemd)")
	}
	return roots, nil
}

// makeCgroups creates the cgroup name in every hierarchy and returns their directories.
func makeCgroups(name string) ([]string, error) {
	roots, err := cgroupRoots()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, root := range roots {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return dirs, fmt.Errorf("create cgroup: %w", err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// cgroupPIDs returns the processes in the cgroup dir and its descendants.
func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		f, err := os.Open(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroup removes the cgroup dir and its descendants, deepest first. A cgroup whose last
// processes just died may stay busy for a moment, so EBUSY is retried until the deadline.
func removeCgroup(dir string, deadline time.Time) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	slices.Reverse(dirs) // WalkDir lists a directory before its children
	for _, d := range dirs {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w (processes: %v)", d, err, cgroupPIDs(d))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
