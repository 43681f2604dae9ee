package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// GCStats counts what GC removed and kept.
type GCStats struct {
	Chunks, Objects         int   // removed
	Bytes                   int64 // removed (stored, compressed)
	KeptChunks, KeptObjects int
	TempFiles               int // left by interrupted writes
	Quarantined             int // corrupt files moved aside earlier
}

// GC deletes every chunk and object that is not reachable from the kept roots (tree or file
// objects), the temporary files of interrupted writes, and the quarantine. It holds the
// store's lock exclusively and fails with ErrBusy at once if an add or a transfer is
// writing to the store.
//
// GC refuses (and deletes nothing) if a kept root is not in the store, or if an object
// reachable from one is missing or corrupt: what lies below an unreadable object is
// unknown, and deleting it could throw away chunks a release still needs. Fetch the
// release completely, or leave it out of keep.
func (s *Store) GC(ctx context.Context, keep []ID) (GCStats, error) {
	var stats GCStats
	release, err := s.lock.exclusive()
	if err != nil {
		return stats, fmt.Errorf("gc %s: %w", s.dir, err)
	}
	defer release()

	// Mark.
	objects := make(map[ID]bool)
	chunks := make(map[ID]bool)
	var mark func(id ID, from string) error
	mark = func(id ID, from string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if objects[id] {
			return nil
		}
		obj, err := s.Object(id)
		if err != nil {
			return fmt.Errorf("gc: %s: %w", from, err)
		}
		objects[id] = true
		switch o := obj.(type) {
		case *FileObject:
			for _, c := range o.Chunks {
				chunks[c.ID] = true
			}
		case *TreeObject:
			for _, e := range o.Entries {
				if e.Kind == KindFile || e.Kind == KindDir {
					if err := mark(e.ID, from+"/"+e.Name); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	for _, id := range keep {
		if !s.HasObject(id) {
			return stats, fmt.Errorf("gc: kept root %s: %w", id, ErrNotFound)
		}
		if err := mark(id, id.String()); err != nil {
			return stats, err
		}
	}

	// Sweep: objects first, so that no object left refers to a chunk removed.
	dirs := &dirSet{}
	for _, kind := range []string{objectsDir, chunksDir} {
		reachable := objects
		if kind == chunksDir {
			reachable = chunks
		}
		files, err := s.list(kind)
		if err != nil {
			return stats, fmt.Errorf("gc: %w", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return stats, errors.Join(err, dirs.sync())
			}
			if reachable[f.id] {
				if kind == chunksDir {
					stats.KeptChunks++
				} else {
					stats.KeptObjects++
				}
				continue
			}
			if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return stats, errors.Join(fmt.Errorf("gc: %w", err), dirs.sync())
			}
			dirs.add(filepath.Dir(f.path))
			stats.Bytes += f.size
			if kind == chunksDir {
				stats.Chunks++
			} else {
				stats.Objects++
			}
		}
		// Temporary files: with the lock held exclusively, no write is under way.
		temps, _ := filepath.Glob(filepath.Join(s.dir, kind, "??", tempPrefix+"*"))
		for _, t := range temps {
			if err := os.Remove(t); err == nil {
				stats.TempFiles++
				dirs.add(filepath.Dir(t))
			}
		}
	}
	qdir := filepath.Join(s.dir, quarantineDir)
	_ = filepath.WalkDir(qdir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, fileSuffix) {
			if os.Remove(p) == nil {
				stats.Quarantined++
			}
		}
		return nil
	})
	if err := dirs.sync(); err != nil {
		return stats, fmt.Errorf("gc: %w", err)
	}
	return stats, nil
}
