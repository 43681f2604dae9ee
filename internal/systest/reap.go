package systest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recordDir holds one record per live container. /run is emptied at boot, as are the mounts
// and cgroups the records describe.
const recordDir = "/run/satchel-systest"

// record is what must be undone on the host for one container: enough for another process to
// clean up after a test process that died without running its cleanups.
type record struct {
	Owner      int    // PID of the test process
	OwnerStart uint64 // and its start time, which tells a reused PID
	Name       string
	Dir        string   // the directory holding the overlay's layers
	Merged     string   // the overlay's mount point
	Cgroups    []string // the container's cgroup in each hierarchy
	NspawnLock string   // systemd-nspawn's lock file for the merged directory
}

func (r *record) path() string { return filepath.Join(recordDir, r.Name+".json") }

func (r *record) save() error {
	if err := os.MkdirAll(recordDir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := r.path() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path())
}

// releaseHost kills what is left in the container's cgroups (only the machine's processes can
// be there), unmounts its overlay, removes its cgroups, systemd-nspawn's leftovers, its
// directory and its record. It carries on after an error, and returns them all.
func releaseHost(r *record) []error {
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for _, dir := range r.Cgroups {
		for pids := cgroupPIDs(dir); len(pids) > 0; pids = cgroupPIDs(dir) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("processes %v in %s do not die", pids, dir))
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if r.Merged != "" && mounted(r.Merged) {
		if err := unmount(r.Merged); err != nil {
			errs = append(errs, err)
		}
	}
	for _, dir := range r.Cgroups {
		if err := removeCgroup(dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	// systemd-nspawn removes these itself when it exits normally.
	if r.NspawnLock != "" {
		if err := os.Remove(r.NspawnLock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{"propagate", "unix-export"} {
		if r.Name == "" {
			break
		}
		p := filepath.Join("/run/systemd/nspawn", d, r.Name)
		if mounted(p) {
			if err := unmount(p); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if r.Dir != "" && (r.Merged == "" || !mounted(r.Merged)) { // never delete through a mount
		if err := os.RemoveAll(r.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(r.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errs
}

// unmount unmounts dir, retrying while it is busy, and detaches it lazily as a last resort
// (which is still reported).
func unmount(dir string) error {
	var err error
	for range 50 {
		err = unix.Unmount(dir, 0)
		if err == nil || errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point (any more)
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if derr := unix.Unmount(dir, unix.MNT_DETACH); derr != nil {
		return fmt.Errorf("unmount %s: %w", dir, derr)
	}
	return fmt.Errorf("unmount %s: %w (detached lazily)", dir, err)
}

// reap cleans up after test processes that died without running their cleanups (a -timeout
// panic, a kill): the containers of any record whose owner is gone, and satchel binaries built
// for them. Containers of live test processes are never touched.
func reap(t testing.TB) {
	entries, _ := os.ReadDir(recordDir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(recordDir, e.Name()))
		var r record
		if err != nil || json.Unmarshal(b, &r) != nil || r.Name+".json" != e.Name() || r.Owner == 0 {
			continue
		}
		if alive(r.Owner, r.OwnerStart) {
			continue
		}
		t.Logf("reaping container %s, left by test process %d", r.Name, r.Owner)
		for _, err := range releaseHost(&r) {
			t.Logf("reaping %s: %v", r.Name, err)
		}
	}
	// Binaries: os.TempDir()/satchel-systest-bin-PID-START-*, see SatchelBinary.
	tmp, _ := os.ReadDir(os.TempDir())
	for _, e := range tmp {
		f := strings.Split(e.Name(), "-")
		if !e.IsDir() || len(f) != 6 || !strings.HasPrefix(e.Name(), "satchel-systest-bin-") {
			continue
		}
		pid, err1 := strconv.Atoi(f[3])
		start, err2 := strconv.ParseUint(f[4], 10, 64)
		if err1 == nil && err2 == nil && !alive(pid, start) {
			_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}
