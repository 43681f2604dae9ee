package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Compression is the zstd level of every chunk and object written. It is not part of the
// format: IDs are hashes of the plain bytes, and a reader decodes any level.
const Compression = zstd.SpeedBetterCompression

// compressionWindow bounds the encoders' memory. One frame holds one chunk, so a window
// larger than the largest chunk buys nothing.
const compressionWindow = 1 << 20

// maxObjectSize bounds an object's encoding: a file object of 1 GiB lists some 29 million
// chunks (about 1.8 TiB of content at 64 KiB per chunk).
const maxObjectSize = 1 << 30

// Errors wrapped by the store's operations.
var (
	// ErrNotFound: the chunk or object is not in the store.
	ErrNotFound = errors.New("not in the store")
	// ErrCorrupt: the stored bytes do not decompress or do not hash to their name. The file
	// has been moved to quarantine/ and is never used; fetch or add it again.
	ErrCorrupt = errors.New("corrupt")
)

// The store's subdirectories.
const (
	chunksDir     = "chunks"
	objectsDir    = "objects"
	quarantineDir = "quarantine"
	lockFile      = "lock"
	fileSuffix    = ".zst"
	tempPrefix    = ".tmp-"
)

// Store is a content store in a local directory (see the package documentation). Its
// methods are safe for concurrent use, also by several processes on one directory.
type Store struct {
	dir string

	enc      *zstd.Encoder // shared: EncodeAll is safe for concurrent use
	chunkDec *zstd.Decoder // limited to MaxChunkSize of output
	objDec   *zstd.Decoder // limited to maxObjectSize

	mu       sync.Mutex
	inflight map[flightKey]*flight // Puts under way, so one content is written once

	lock *storeLock
}

// flightKey names a chunk or an object being written.
type flightKey struct {
	kind string // chunksDir or objectsDir
	id   ID
}

// flight is one write under way; done is closed when it ends.
type flight struct {
	done chan struct{}
}

// Open opens the store in dir, creating its layout if needed. Directories are 0755 and files
// 0644: a store is meant to be served read-only by any static HTTP server.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, chunksDir), filepath.Join(abs, objectsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(Compression),
		zstd.WithEncoderCRC(false), // every read re-hashes with SHA-256
		zstd.WithWindowSize(compressionWindow),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("open store %s: zstd: %w", abs, err)
	}
	newDec := func(limit uint64) (*zstd.Decoder, error) {
		return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(limit))
	}
	chunkDec, err := newDec(MaxChunkSize)
	if err != nil {
		return nil, fmt.Errorf("open store %s: zstd: %w", abs, err)
	}
	objDec, err := newDec(maxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("open store %s: zstd: %w", abs, err)
	}
	lock, err := openLock(filepath.Join(abs, lockFile))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return &Store{
		dir:      abs,
		enc:      enc,
		chunkDec: chunkDec,
		objDec:   objDec,
		inflight: make(map[flightKey]*flight),
		lock:     lock,
	}, nil
}

// Dir returns the store's directory (absolute).
func (s *Store) Dir() string { return s.dir }

// path returns the file of a chunk or object: kind/ab/abcdef….zst.
func (s *Store) path(kind string, id ID) string {
	hex := id.String()
	return filepath.Join(s.dir, kind, hex[:2], hex+fileSuffix)
}

// ChunkPath returns the file a chunk is (or would be) stored in; its path relative to the
// store's directory is also its URL path below the store's base URL.
func (s *Store) ChunkPath(id ID) string { return s.path(chunksDir, id) }

// ObjectPath returns the file an object is (or would be) stored in.
func (s *Store) ObjectPath(id ID) string { return s.path(objectsDir, id) }

// has reports whether a chunk or object file is present. It does not read it: a corrupt
// file is found when it is read (and then moved out of the way).
func (s *Store) has(kind string, id ID) bool {
	_, err := os.Lstat(s.path(kind, id))
	return err == nil
}

// HasChunk reports whether the chunk is in the store.
func (s *Store) HasChunk(id ID) bool { return s.has(chunksDir, id) }

// HasObject reports whether the object is in the store.
func (s *Store) HasObject(id ID) bool { return s.has(objectsDir, id) }

// PutChunk stores data as a chunk and returns its ID. Storing a chunk that is present
// does nothing. The chunk is durable when PutChunk returns.
func (s *Store) PutChunk(data []byte) (ID, error) {
	id := Sum(data)
	if err := s.checkChunkSize(id, len(data)); err != nil {
		return id, err
	}
	release, err := s.lock.shared()
	if err != nil {
		return id, err
	}
	defer release()
	_, _, err = s.put(chunksDir, id, data, nil, nil, syncNow)
	return id, err
}

func (s *Store) checkChunkSize(id ID, n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("chunk %s: empty", id)
	case n > MaxChunkSize:
		return fmt.Errorf("chunk %s: %d bytes, over the limit of %d", id, n, MaxChunkSize)
	}
	return nil
}

// PutChunkCompressed stores zdata, a chunk exactly as a store keeps it (as ChunkCompressed
// returns it, or a static server serves its file: frame and seal), once it has checked the
// seal and that zdata decompresses to bytes whose ID is id. Otherwise nothing is stored and
// the error wraps ErrCorrupt.
func (s *Store) PutChunkCompressed(id ID, zdata []byte) error {
	return s.putReceived(chunksDir, id, zdata, func(plain []byte) error { return s.checkChunkSize(id, len(plain)) })
}

// putReceived stores zdata, a chunk or object file as received, once it has checked its
// seal, that it decompresses to content whose ID is id, that it is no larger than that
// content needs, and what check says of the content. Otherwise nothing is stored.
func (s *Store) putReceived(kind string, id ID, zdata []byte, check func(plain []byte) error) error {
	plain, err := s.verify(kind, id, zdata, nil)
	if err == nil {
		err = checkStoredSize(len(zdata), len(plain))
	}
	if err != nil {
		return fmt.Errorf("%s %s as received: %w: %w", kindName(kind), id, ErrCorrupt, err)
	}
	if err := check(plain); err != nil {
		return err
	}
	release, err := s.lock.shared()
	if err != nil {
		return err
	}
	defer release()
	_, _, err = s.put(kind, id, nil, zdata, nil, syncNow)
	return err
}

// checkStoredSize refuses a received file of z bytes holding n bytes of content that is
// larger than any encoder makes it: zstd's worst case adds a frame header and a few bytes
// per 128 KiB block, the seal 12. A larger file carries more than its content (skippable
// frames, or frames that decode to nothing: zstd skips them, the hash cannot see them),
// which would waste the disk of this store and of every store it is copied to.
func checkStoredSize(z, n int) error {
	if limit := n + n/64 + 1024; z > limit {
		return fmt.Errorf("%d bytes for %d bytes of content, more than any encoding needs", z, n)
	}
	return nil
}

// Chunk returns the chunk's content, verified. A chunk whose file is damaged (its seal does
// not match, it does not decompress, or its content does not hash to its ID) is moved to
// quarantine/ and reported with an error wrapping ErrCorrupt that names the chunk and its
// file; a missing chunk gives an error wrapping ErrNotFound.
func (s *Store) Chunk(id ID) ([]byte, error) {
	_, plain, err := s.read(chunksDir, id, nil)
	return plain, err
}

// ChunkCompressed returns the chunk's stored bytes as they are (to serve them), once
// verified as Chunk does.
func (s *Store) ChunkCompressed(id ID) ([]byte, error) {
	z, _, err := s.read(chunksDir, id, nil)
	return z, err
}

// PutObject stores an object's encoding and returns its ID, once it has checked that the
// encoding is a valid, canonical file or tree object (DecodeFile, DecodeTree): an invalid
// object is never stored. The object is durable when PutObject returns.
//
// An object may be stored before the chunks and objects it refers to (a transfer fetches
// from the root down); Missing tells what is still lacking.
func (s *Store) PutObject(encoded []byte) (ID, error) {
	id := Sum(encoded)
	if err := checkObject(id, encoded); err != nil {
		return id, err
	}
	release, err := s.lock.shared()
	if err != nil {
		return id, err
	}
	defer release()
	_, _, err = s.putObject(id, encoded, nil, syncNow)
	return id, err
}

// checkObject validates an object's encoding.
func checkObject(id ID, encoded []byte) error {
	if len(encoded) > maxObjectSize {
		return fmt.Errorf("object %s: %d bytes, over the limit of %d", id, len(encoded), maxObjectSize)
	}
	_, err := decodeObject(encoded)
	if err != nil {
		return fmt.Errorf("object %s: %w", id, err)
	}
	return nil
}

func (s *Store) putObject(id ID, encoded []byte, dirs *dirSet, sync syncMode) (bool, int64, error) {
	return s.put(objectsDir, id, encoded, nil, dirs, sync)
}

// ObjectCompressed returns the object's stored bytes as they are (to serve them), once
// verified.
func (s *Store) ObjectCompressed(id ID) ([]byte, error) {
	z, _, err := s.read(objectsDir, id, nil)
	return z, err
}

// Object is a decoded file or tree object: *FileObject or *TreeObject.
type Object interface {
	Encode() []byte
}

// Object reads, verifies and decodes an object, whichever its kind.
func (s *Store) Object(id ID) (Object, error) {
	_, plain, err := s.read(objectsDir, id, nil)
	if err != nil {
		return nil, err
	}
	obj, err := decodeObject(plain)
	if err != nil {
		// The bytes hash to their name, yet are not an object: written by something else
		// than PutObject. Never use it.
		return nil, s.corrupt(objectsDir, id, s.path(objectsDir, id), nil, err)
	}
	return obj, nil
}

// File reads, verifies and decodes a file object.
func (s *Store) File(id ID) (*FileObject, error) {
	obj, err := s.Object(id)
	if err != nil {
		return nil, err
	}
	f, ok := obj.(*FileObject)
	if !ok {
		return nil, fmt.Errorf("object %s is a tree, not a file", id)
	}
	return f, nil
}

// Tree reads, verifies and decodes a tree object.
func (s *Store) Tree(id ID) (*TreeObject, error) {
	obj, err := s.Object(id)
	if err != nil {
		return nil, err
	}
	t, ok := obj.(*TreeObject)
	if !ok {
		return nil, fmt.Errorf("object %s is a file, not a tree", id)
	}
	return t, nil
}

// decodeObject decodes a file or a tree object.
func decodeObject(b []byte) (Object, error) {
	kind, err := objectKind(b)
	if err != nil {
		return nil, err
	}
	if kind == "file" {
		return DecodeFile(b)
	}
	return DecodeTree(b)
}

// kindName is how errors name a kind of stored file.
func kindName(kind string) string {
	if kind == chunksDir {
		return "chunk"
	}
	return "object"
}

// read returns a chunk's or object's stored bytes and their decompressed content, verified.
// buf, if not nil, is reused for the content.
func (s *Store) read(kind string, id ID, buf []byte) (z, plain []byte, err error) {
	p := s.path(kind, id)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s %s: %w", kindName(kind), id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", kindName(kind), id, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", kindName(kind), id, err)
	}
	limit := int64(maxObjectSize)
	if kind == chunksDir {
		limit = MaxChunkSize
	}
	if info.Size() > limit+limit/64+1024 { // zstd's worst case is a few bytes per 128 KiB
		return nil, nil, s.corrupt(kind, id, p, info, fmt.Errorf("%d bytes, more than any %s", info.Size(), kindName(kind)))
	}
	z = make([]byte, info.Size())
	if _, err := io.ReadFull(f, z); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", kindName(kind), id, err)
	}
	plain, err = s.verify(kind, id, z, buf)
	if err != nil {
		return nil, nil, s.corrupt(kind, id, p, info, err)
	}
	return z, plain, nil
}

// verify checks a stored file's seal, decompresses it and checks that the content hashes
// to id.
func (s *Store) verify(kind string, id ID, z, buf []byte) ([]byte, error) {
	frame, err := unseal(z)
	if err != nil {
		return nil, err
	}
	dec := s.objDec
	if kind == chunksDir {
		dec = s.chunkDec
	}
	plain, err := dec.DecodeAll(frame, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("does not decompress: %w", err)
	}
	if got := Sum(plain); got != id {
		return nil, fmt.Errorf("content hashes to %s", got)
	}
	if kind == chunksDir && len(plain) == 0 {
		return nil, errors.New("empty")
	}
	return plain, nil
}

// corrupt moves a corrupt file to quarantine/ (if it is still the file that was read: a
// good copy written meanwhile stays) and returns the error that names it.
func (s *Store) corrupt(kind string, id ID, p string, read fs.FileInfo, cause error) error {
	moved := ""
	if q, err := s.quarantine(kind, id, p, read); err == nil {
		moved = "; moved to " + q
	}
	return fmt.Errorf("%s %s (%s): %w: %w%s", kindName(kind), id, p, ErrCorrupt, cause, moved)
}

func (s *Store) quarantine(kind string, id ID, p string, read fs.FileInfo) (string, error) {
	if read != nil {
		now, err := os.Lstat(p)
		if err != nil || !os.SameFile(now, read) {
			return "", errors.New("replaced meanwhile")
		}
	}
	qdir := filepath.Join(s.dir, quarantineDir, kind)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return "", err
	}
	q := filepath.Join(qdir, filepath.Base(p))
	if err := os.Rename(p, q); err != nil {
		return "", err
	}
	return q, nil
}

// syncMode says when a write's directory is flushed.
type syncMode int

const (
	syncNow   syncMode = iota // before put returns
	syncLater                 // by the caller, through the dirSet
)

// put stores a chunk or object unless it is present, and reports whether it wrote it and
// how many bytes: plain, compressed here, or z, already compressed. Two puts of one ID at
// once write it once: the second waits for the first.
func (s *Store) put(kind string, id ID, plain, z []byte, dirs *dirSet, sync syncMode) (written bool, n int64, err error) {
	return s.putBuf(kind, id, plain, z, nil, dirs, sync)
}

// putBuf is put compressing into *scratch, if not nil (a worker's own buffer), or else
// into a pooled buffer.
func (s *Store) putBuf(kind string, id ID, plain, z []byte, scratch *[]byte, dirs *dirSet, sync syncMode) (written bool, n int64, err error) {
	key := flightKey{kind, id}
	for {
		if s.has(kind, id) {
			return false, 0, nil
		}
		s.mu.Lock()
		f, busy := s.inflight[key]
		if !busy {
			f = &flight{done: make(chan struct{})}
			s.inflight[key] = f
		}
		s.mu.Unlock()
		if !busy {
			break
		}
		<-f.done // then look again: the other writer may have failed
	}
	defer func() {
		s.mu.Lock()
		f := s.inflight[key]
		delete(s.inflight, key)
		s.mu.Unlock()
		close(f.done)
	}()
	if s.has(kind, id) { // written between the check and the claim
		return false, 0, nil
	}
	if z == nil {
		buf := scratch
		if buf == nil {
			buf = getBuffer()
			defer putBuffer(buf)
		}
		z = seal(s.enc.EncodeAll(plain, (*buf)[:0]))
		*buf = z[:0]
	}
	p := s.path(kind, id)
	if err := s.writeFile(p, z, dirs, sync); err != nil {
		return false, 0, fmt.Errorf("%s %s: %w", kindName(kind), id, err)
	}
	return true, int64(len(z)), nil
}

// compressed buffers, reused.
var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= 4<<20 { // keep chunk-sized buffers, not those of huge objects
		bufferPool.Put(b)
	}
}

// writeFile writes data to p atomically: a temporary file in the same directory, flushed
// to disk, then renamed to p. A crash leaves either no file or the whole file (and
// perhaps a temporary file, which GC removes). The directory entry is flushed now or, with
// syncLater, added to dirs for the caller to flush once for many files.
func (s *Store) writeFile(p string, data []byte, dirs *dirSet, sync syncMode) (err error) {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = s.mkShard(dir); err == nil {
			f, err = os.CreateTemp(dir, tempPrefix+"*")
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return err
	}
	if sync == syncLater {
		dirs.add(dir)
		return nil
	}
	return syncDir(dir)
}

// mkShard creates a shard directory (chunks/ab) durably.
func (s *Store) mkShard(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir flushes a directory, making the entries created or renamed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", dir, err)
	}
	return nil
}

// dirSet collects directories to flush once, after many writes.
type dirSet struct {
	mu   sync.Mutex
	dirs map[string]struct{}
}

func (d *dirSet) add(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirs == nil {
		d.dirs = make(map[string]struct{})
	}
	d.dirs[dir] = struct{}{}
}

// sync flushes every directory collected so far.
func (d *dirSet) sync() error {
	d.mu.Lock()
	dirs := d.dirs
	d.dirs = nil
	d.mu.Unlock()
	var errs []error
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseStoreName parses a stored file's name, "<64 hex digits>.zst".
func parseStoreName(name string) (ID, bool) {
	hex, ok := strings.CutSuffix(name, fileSuffix)
	if !ok {
		return ID{}, false
	}
	id, err := ParseID(hex)
	return id, err == nil
}
