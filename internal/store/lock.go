package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// ErrBusy: GC cannot run while the store is being written to.
var ErrBusy = errors.New("store in use")

// storeLock keeps GC from deleting what a writer has just found present and is about to
// refer to. Writers (Put*, Add*) hold it shared, GC exclusively: within the process an
// RWMutex, across processes flock(2) on the store's lock file (one shared flock for all of
// the process's writers, taken by the first and released by the last).
type storeLock struct {
	path string
	rw   sync.RWMutex

	mu      sync.Mutex
	holders int
	f       *os.File // holds the shared flock while holders > 0
}

func openLock(path string) (*storeLock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	_ = f.Close()
	return &storeLock{path: path}, nil
}

// shared takes the lock for a writer, waiting for a GC to end, and returns its release.
func (l *storeLock) shared() (release func(), err error) {
	l.rw.RLock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holders == 0 {
		f, err := os.Open(l.path)
		if err == nil {
			err = flock(f, syscall.LOCK_SH)
			if err != nil {
				_ = f.Close()
			}
		}
		if err != nil {
			l.rw.RUnlock()
			return nil, fmt.Errorf("lock store: %w", err)
		}
		l.f = f
	}
	l.holders++
	return func() {
		l.mu.Lock()
		l.holders--
		if l.holders == 0 {
			_ = l.f.Close() // releases the flock
			l.f = nil
		}
		l.mu.Unlock()
		l.rw.RUnlock()
	}, nil
}

// Hold keeps GC away from the store until release is called: for an operation that finds
// content present and relies on it staying there (a transfer, a checkout), as the store's
// own writers do for each write. GC meanwhile fails with ErrBusy. Holds may nest.
func (s *Store) Hold() (release func(), err error) { return s.lock.shared() }

// exclusive takes the lock for GC, or fails with ErrBusy at once if a writer holds it.
func (l *storeLock) exclusive() (release func(), err error) {
	if !l.rw.TryLock() {
		return nil, fmt.Errorf("%w: an add, a transfer or a checkout is using it in this process", ErrBusy)
	}
	f, err := os.Open(l.path)
	if err != nil {
		l.rw.Unlock()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		l.rw.Unlock()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another process is adding to it, fetching into it or checking out from it", ErrBusy)
		}
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return func() {
		_ = f.Close()
		l.rw.Unlock()
	}, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
