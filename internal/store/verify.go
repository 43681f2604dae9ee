package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Report is the result of Verify.
type Report struct {
	Chunks, Objects int   // stored files read and verified
	Bytes           int64 // stored (compressed) bytes read
	Corrupt         []Damage
}

// Damage is a stored file found corrupt by Verify.
type Damage struct {
	Kind string // "chunk" or "object"
	ID   ID
	Path string // where it was; it is now in quarantine/
	Err  error  // wraps ErrCorrupt; its message names the file and where it was moved
}

// storedFile is a chunk or object file found in the store's directory.
type storedFile struct {
	kind string
	id   ID
	path string
	size int64
}

// list returns the chunk or object files in the store, skipping temporary files. A file
// named otherwise is left alone.
func (s *Store) list(kind string) ([]storedFile, error) {
	base := filepath.Join(s.dir, kind)
	shards, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", base, err)
	}
	var files []storedFile
	for _, shard := range shards {
		if !shard.IsDir() || len(shard.Name()) != 2 {
			continue
		}
		dir := filepath.Join(base, shard.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range entries {
			id, ok := parseStoreName(e.Name())
			if !ok || !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), shard.Name()) {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", dir, err)
			}
			files = append(files, storedFile{kind: kind, id: id, path: filepath.Join(dir, e.Name()), size: info.Size()})
		}
	}
	return files, nil
}

// Verify reads every chunk and object in the store, decompresses and re-hashes it, and
// decodes every object. A corrupt file is moved to quarantine/ (so that it is fetched or
// added again, never used) and listed in the report with its ID and path; that is not an
// error. progress, if not nil, is called as Add's is, counting stored files and bytes.
func (s *Store) Verify(ctx context.Context, progress func(Progress)) (Report, error) {
	var all []storedFile
	var total Progress
	for _, kind := range []string{objectsDir, chunksDir} {
		files, err := s.list(kind)
		if err != nil {
			return Report{}, err
		}
		all = append(all, files...)
		for _, f := range files {
			total.TotalFiles++
			total.TotalBytes += f.size
		}
	}

	var (
		mu         sync.Mutex
		report     Report
		files      atomic.Int64
		bytes      atomic.Int64
		firstErr   error
		jobs       = make(chan storedFile)
		wg         sync.WaitGroup
		stop       = make(chan struct{})
		reportDone = make(chan struct{})
	)
	snapshot := func() Progress {
		p := total
		p.Files, p.Bytes = files.Load(), bytes.Load()
		return p
	}
	if progress != nil {
		go func() {
			defer close(reportDone)
			tick := time.NewTicker(progressInterval)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					progress(snapshot())
				}
			}
		}()
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for f := range jobs {
				damage, n, err := s.verifyFile(f, buf)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
				case damage != nil:
					report.Corrupt = append(report.Corrupt, *damage)
				}
				if err == nil {
					if f.kind == chunksDir {
						report.Chunks++
					} else {
						report.Objects++
					}
					report.Bytes += f.size
				}
				mu.Unlock()
				files.Add(1)
				bytes.Add(f.size)
				buf = n
			}
		}()
	}
	for _, f := range all {
		if ctx.Err() != nil {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	if progress != nil {
		close(stop)
		<-reportDone
		progress(snapshot())
	}
	if err := ctx.Err(); err != nil {
		return report, err
	}
	if firstErr != nil {
		return report, firstErr
	}
	return report, nil
}

// verifyFile verifies one stored file, reusing buf for its content; it returns the damage
// if the file is corrupt, the buffer to reuse, and an error only if the file could not be
// read at all.
func (s *Store) verifyFile(f storedFile, buf []byte) (*Damage, []byte, error) {
	var plain []byte
	var err error
	if f.kind == chunksDir {
		_, plain, err = s.read(chunksDir, f.id, buf)
	} else {
		_, err = s.Object(f.id)
	}
	switch {
	case err == nil:
		if plain != nil {
			buf = plain
		}
		return nil, buf, nil
	case errors.Is(err, ErrCorrupt):
		return &Damage{Kind: kindName(f.kind), ID: f.id, Path: f.path, Err: err}, buf, nil
	case errors.Is(err, ErrNotFound):
		return nil, buf, nil // removed since listed (by a GC, or a reader that found it corrupt)
	}
	return nil, buf, err
}
