package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Lock is held for the whole of a run, so that two runs on one machine never overlap.
type Lock struct {
	f *os.File
}

// ErrLocked means another run holds the lock.
var ErrLocked = errors.New("another satchel run is in progress")

// AcquireLock takes the lock file at path, creating it and its directory if needed. It waits
// up to wait for a run in progress to finish, then fails with an error wrapping ErrLocked
// that says which process holds the lock and since when.
func AcquireLock(path string, wait time.Duration) (*Lock, error) {
	return AcquireLockContext(context.Background(), path, wait)
}

// AcquireLockContext is AcquireLock that also gives up, with ctx's error, when ctx is done
// (a daemon told to stop while it waits).
func AcquireLockContext(ctx context.Context, path string, wait time.Duration) (*Lock, error) {
	if err := MakeStateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create state directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock %s is not a regular file", path)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(path)
			f.Close()
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "unknown process"
			}
			return nil, fmt.Errorf("%w (%s holds %s); wait for it to finish or pass --lock-timeout", ErrLocked, who, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	}
	return &Lock{f: f}, nil
}

// Release frees the lock.
func (l *Lock) Release() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing the descriptor releases the flock
}

// MakeStateDir creates a state directory (mode 0700) and any missing parents (mode 0755,
// as /var and /var/lib must be in an image).
func MakeStateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
