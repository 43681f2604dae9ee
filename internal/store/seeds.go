package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Seeds index chunks found in local files, so that materializing does not need them in the
// store (casync's seeds): the previous version of a file holds most of the new one's
// chunks, and a node need fetch only the others.
//
// A seed is known either by a file object that describes it (the version that was
// materialized there: its chunk IDs and offsets, at no cost) or by chunking the file
// (AddLocal, which reads it). Either way the file may have changed since, so every chunk
// read from a seed is hashed and used only if it still matches its ID; otherwise it is
// forgotten and the chunk is taken from the store.
//
// Seeds read files through an fsroot.Root: a seed's path is inside the root and a final
// symlink is never followed. The zero of a *Seeds, nil, holds nothing. Seeds are safe for
// concurrent use.
type Seeds struct {
	root *fsroot.Root

	mu     sync.Mutex
	files  []string // seed paths, by number
	byPath map[string]int32
	chunks map[ID]seedLoc
	open   map[int32]*os.File // at most maxOpenSeeds
	order  []int32            // open files, oldest first
	bytes  int64              // indexed chunk bytes
}

// seedLoc is where a chunk lies in a seed.
type seedLoc struct {
	file   int32
	length uint32
	offset int64
}

// maxOpenSeeds bounds the seed files kept open between reads.
const maxOpenSeeds = 8

// NewSeeds returns an empty index of seeds inside root.
func NewSeeds(root *fsroot.Root) *Seeds {
	return &Seeds{root: root, byPath: map[string]int32{}, chunks: map[ID]seedLoc{}, open: map[int32]*os.File{}}
}

func (s *Seeds) fileNum(p string) int32 {
	n, ok := s.byPath[p]
	if !ok {
		n = int32(len(s.files))
		s.files = append(s.files, p)
		s.byPath[p] = n
	}
	return n
}

// AddFile records that the file at p (inside the root) holds the chunks of f, at their
// offsets. A chunk already known elsewhere keeps its first location.
func (s *Seeds) AddFile(p string, f *FileObject) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.fileNum(p)
	var off int64
	for _, c := range f.Chunks {
		if _, ok := s.chunks[c.ID]; !ok {
			s.chunks[c.ID] = seedLoc{file: n, length: c.Length, offset: off}
			s.bytes += int64(c.Length)
		}
		off += int64(c.Length)
	}
}

// AddLocal chunks the regular file at p (inside the root) as the store does and records its
// chunks. It reads the whole file, streaming.
func (s *Seeds) AddLocal(ctx context.Context, p string) error {
	f, err := s.root.Open(p)
	if err != nil {
		return fmt.Errorf("seed %s: %w", s.root.HostPath(p), err)
	}
	defer f.Close()
	ch, err := NewChunker(&ctxReader{ctx: ctx, r: f}, DefaultParams)
	if err != nil {
		return err
	}
	var refs []ChunkRef
	for {
		data, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("seed %s: %w", s.root.HostPath(p), err)
		}
		refs = append(refs, ChunkRef{ID: Sum(data), Length: uint32(len(data))})
	}
	s.AddFile(p, &FileObject{Chunks: refs})
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Has reports whether a seed is known to hold the chunk (it is verified only when read).
func (s *Seeds) Has(id ID) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.chunks[id]
	return ok
}

// Len returns the number of chunks indexed and their total length.
func (s *Seeds) Len() (chunks int, bytes int64) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.chunks), s.bytes
}

// Close closes the seed files left open.
func (s *Seeds) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, f := range s.open {
		_ = f.Close()
		delete(s.open, n)
	}
	s.order = nil
	return nil
}

// read returns chunk c from a seed, verified, using *buf for the bytes; ok is false if no
// seed holds it or the seed no longer does (then it is forgotten).
func (s *Seeds) read(c ChunkRef, buf *[]byte) (data []byte, ok bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	loc, found := s.chunks[c.ID]
	if !found || loc.length != c.Length {
		return nil, false
	}
	f, err := s.openLocked(loc.file)
	if err == nil {
		if cap(*buf) < int(c.Length) {
			*buf = make([]byte, max(int(c.Length), DefaultParams.Max))
		}
		data = (*buf)[:c.Length]
		_, err = f.ReadAt(data, loc.offset)
	}
	if err != nil || Sum(data) != c.ID {
		delete(s.chunks, c.ID) // changed since it was indexed: use the store
		s.bytes -= int64(loc.length)
		return nil, false
	}
	return data, true
}

// openLocked returns seed file n, open for reading.
func (s *Seeds) openLocked(n int32) (*os.File, error) {
	if f, ok := s.open[n]; ok {
		return f, nil
	}
	f, err := s.root.Open(s.files[n])
	if err != nil {
		return nil, err
	}
	if len(s.order) >= maxOpenSeeds {
		old := s.order[0]
		s.order = s.order[1:]
		_ = s.open[old].Close()
		delete(s.open, old)
	}
	s.open[n] = f
	s.order = append(s.order, n)
	return f, nil
}
