package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// staleTemp is how old (by modification time) an unlocked temporary file must be before Prune
// deletes it as left over from a crashed Save.
const staleTemp = time.Hour

// Prune removes the entries older than maxAge (0 = no age limit), then, oldest first, as many
// entries as needed to bring the stored bytes to at most maxBytes (0 = no limit), and rewrites
// the index atomically. Stored bytes count each distinct object once, so removing an entry
// whose content another kept entry shares frees nothing. Prune then deletes the objects no
// entry refers to any more (including those left by a crash between storing an object and
// recording its entry) and stale temporary files. It returns the entries it removed, oldest
// first; if it fails after rewriting the index, it returns them together with the error.
func (s *Store) Prune(maxAge time.Duration, maxBytes int64) (removed []Entry, err error) {
	fail := func(removed []Entry, err error) ([]Entry, error) {
		return removed, fmt.Errorf("backup: prune %s: %w", s.dir, err)
	}
	if maxAge < 0 || maxBytes < 0 {
		return fail(nil, fmt.Errorf("negative limit (max age %v, max bytes %d)", maxAge, maxBytes))
	}
	unlock, err := s.lock()
	if err != nil {
		return fail(nil, err)
	}
	defer unlock()

	entries, bad, err := s.readIndex()
	if err != nil {
		return fail(nil, err)
	}
	// Oldest first; ties in file (saving) order.
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return entries[a].Time.Compare(entries[b].Time) })

	drop := make([]bool, len(entries))
	if maxAge > 0 {
		cutoff := time.Now().Add(-maxAge)
		for _, i := range order {
			if entries[i].Time.Before(cutoff) {
				drop[i] = true
				removed = append(removed, entries[i])
			}
		}
	}
	if maxBytes > 0 {
		refs := make(map[string]int)
		var total int64
		for i, e := range entries {
			if drop[i] {
				continue
			}
			if refs[e.SHA256] == 0 {
				total += e.Size
			}
			refs[e.SHA256]++
		}
		for _, i := range order {
			if total <= maxBytes {
				break
			}
			if drop[i] {
				continue
			}
			e := entries[i]
			drop[i] = true
			removed = append(removed, e)
			if refs[e.SHA256]--; refs[e.SHA256] == 0 {
				total -= e.Size
			}
		}
	}

	kept := make([]Entry, 0, len(entries)-len(removed))
	live := make(map[string]bool)
	for i, e := range entries {
		if !drop[i] {
			kept = append(kept, e)
			live[e.SHA256] = true
		}
	}
	if len(removed) > 0 || bad > 0 {
		if err := s.rewriteIndex(kept); err != nil {
			return fail(nil, err)
		}
	}
	if err := s.collectGarbage(live); err != nil {
		return fail(removed, err)
	}
	return removed, nil
}

// collectGarbage deletes objects not in live, stale temporary files and index temporaries.
// The caller holds the lock, so no Save is between storing an object and recording it.
func (s *Store) collectGarbage(live map[string]bool) error {
	var errs []error
	subdirs, err := os.ReadDir(s.objectsDir())
	if err != nil {
		return err
	}
	for _, sd := range subdirs {
		if !sd.IsDir() || len(sd.Name()) != 2 {
			continue
		}
		dir := filepath.Join(s.objectsDir(), sd.Name())
		objs, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range objs {
			name := o.Name()
			if !validSum(name) || name[:2] != sd.Name() || live[name] {
				continue
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}

	// Temporary content from Saves that crashed: not flocked by a running Save, and old.
	temps, err := os.ReadDir(s.tmpDir())
	if err != nil {
		errs = append(errs, err)
	}
	for _, t := range temps {
		p := filepath.Join(s.tmpDir(), t.Name())
		if stale, err := staleTempFile(p); err != nil {
			errs = append(errs, err)
		} else if stale {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}

	// Index temporaries are only written under the lock, which we hold: any left is stale.
	leftovers, err := filepath.Glob(filepath.Join(s.dir, "index.jsonl.tmp-*"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range leftovers {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// staleTempFile reports whether the temporary file at p is left over from a crashed Save:
// no process holds its flock and it has not been written to for staleTemp.
func staleTempFile(p string) (bool, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < staleTemp {
		return false, nil
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // a Save is still writing it
		}
		return false, err
	}
	return true, nil
}
