package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Materializing: writing a file or a tree from the store into place.
//
// A file is written to a temporary file in its directory, chunk by chunk (one chunk in
// memory at a time), each chunk taken from a seed (a local file known to hold it: see
// Seeds) or else from the store, every chunk verified against its ID and the whole content
// against the file object's SHA-256; then the temporary file gets its owner and mode, is
// flushed to disk and renamed over the old version, and the directory is flushed. The old
// version keeps serving until the new one is complete and verified, and nothing
// half-written is ever left at the path.
//
// Before anything is written, what is needed is checked: every chunk must be in the store
// or in a seed (else the error lists the missing ones), and the target's file system must
// have room for the new files beside the old ones (else the error says how much is needed
// and how much is free).

// Stats counts the bytes of a materialization by where they came from.
type Stats struct {
	Bytes       int64 // content bytes written
	FromSeeds   int64 // of which read from local files (seeds)
	FromStore   int64 // of which read from the store
	SeedChunks  int   // chunks read from seeds
	StoreChunks int   // chunks read from the store
	// Missing lists the chunks that were neither in the store nor in a seed, when that is
	// why the materialization failed (before writing anything).
	Missing []ID
}

func (st *Stats) add(o Stats) {
	st.Bytes += o.Bytes
	st.FromSeeds += o.FromSeeds
	st.FromStore += o.FromStore
	st.SeedChunks += o.SeedChunks
	st.StoreChunks += o.StoreChunks
}

// ErrNoSpace is wrapped by the error of a materialization that would not fit on its file
// system. Nothing has been written.
var ErrNoSpace = errors.New("not enough free space")

// MissingError reports the chunks that a materialization needs and that are neither in the
// store nor in a seed. Nothing has been written. It wraps ErrNotFound.
type MissingError struct {
	What   string // the file or tree, as the caller named it
	Chunks []ID
	Bytes  int64 // their total length
}

// maxListed is how many IDs or paths an error message lists.
const maxListed = 5

func (e *MissingError) Error() string {
	var ids []string
	for _, id := range e.Chunks[:min(len(e.Chunks), maxListed)] {
		ids = append(ids, id.String())
	}
	more := ""
	if len(e.Chunks) > maxListed {
		more = fmt.Sprintf(" and %d more", len(e.Chunks)-maxListed)
	}
	return fmt.Sprintf("%s: %d chunks (%s) are neither in the store nor in local files: %s%s; fetch them first",
		e.What, len(e.Chunks), HumanBytes(e.Bytes), strings.Join(ids, ", "), more)
}

func (e *MissingError) Unwrap() error { return ErrNotFound }

// MaterializeFile writes the content of f to p inside root, atomically, with the given mode
// and owner (uid or gid -1: the process's own), reading chunks from seeds (may be nil) or
// else from the store. It fails before writing anything if a chunk is missing (the error
// is a *MissingError, and Stats.Missing lists them) or if the file system lacks room for
// the new file beside the old one (ErrNoSpace). If a chunk turns out corrupt or ctx is
// cancelled, the temporary file is removed and p is left as it was.
func (s *Store) MaterializeFile(ctx context.Context, root *fsroot.Root, p string, f *FileObject, mode fs.FileMode, uid, gid int, seeds *Seeds) (Stats, error) {
	var st Stats
	release, err := s.Hold() // the chunks found present must stay until they are written
	if err != nil {
		return st, err
	}
	defer release()
	name := root.HostPath(p)
	if missing, bytes := s.missingChunks(f.Chunks, seeds.Has, nil); len(missing) > 0 {
		st.Missing = missing
		return st, &MissingError{What: name, Chunks: missing, Bytes: bytes}
	}
	dir := path.Dir(p)
	var need spaceNeed
	need.addFile(f.Size)
	if err := checkSpace(root, dir, need); err != nil {
		return st, err
	}
	tmp, tmpPath, err := root.CreateTemp(dir, tempBase(path.Base(p)))
	if err != nil {
		return st, fmt.Errorf("write %s: %w", name, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = root.Remove(tmpPath)
		}
	}()
	w := s.newWriter(seeds)
	if err := w.write(ctx, tmp, f, name); err != nil {
		return w.stats, err
	}
	if err := finishFile(tmp, mode, uid, gid, name); err != nil {
		return w.stats, err
	}
	if err := tmp.Sync(); err != nil {
		return w.stats, fmt.Errorf("write %s: flush: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return w.stats, fmt.Errorf("write %s: %w", name, err)
	}
	if err := root.Rename(tmpPath, p); err != nil {
		_ = root.Remove(tmpPath)
		done = true
		return w.stats, fmt.Errorf("write %s: %w", name, err)
	}
	done = true
	if err := root.SyncDir(dir); err != nil {
		return w.stats, fmt.Errorf("write %s: flush directory: %w", name, err)
	}
	return w.stats, nil
}

// finishFile sets a written file's owner (first: chown clears setuid bits) and mode.
func finishFile(f *os.File, mode fs.FileMode, uid, gid int, name string) error {
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("write %s: set owner: %w", name, err)
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: set mode: %w", name, err)
	}
	return nil
}

// missingChunks returns the chunks of list that are neither in the store nor in a seed
// (inSeeds), each once, and their total length. seen, if not nil, holds chunks already
// accounted for.
func (s *Store) missingChunks(list []ChunkRef, inSeeds func(ID) bool, seen map[ID]bool) ([]ID, int64) {
	var missing []ID
	var bytes int64
	if seen == nil {
		seen = make(map[ID]bool, len(list))
	}
	for _, c := range list {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		if !inSeeds(c.ID) && !s.HasChunk(c.ID) {
			missing = append(missing, c.ID)
			bytes += int64(c.Length)
		}
	}
	return missing, bytes
}

// writer writes files' content from seeds and the store, one chunk at a time.
type writer struct {
	s     *Store
	seeds []*Seeds // tried in order, before the store
	buf   []byte   // for seed reads
	hbuf  []byte   // for hashing existing files
	stats Stats
}

func (s *Store) newWriter(seeds ...*Seeds) *writer { return &writer{s: s, seeds: seeds} }

// fromSeeds returns chunk c from the first seed that still holds it.
func (wr *writer) fromSeeds(c ChunkRef) ([]byte, bool) {
	for _, sd := range wr.seeds {
		if data, ok := sd.read(c, &wr.buf); ok {
			return data, true
		}
	}
	return nil, false
}

// preallocateMin is the size from which a file's space is reserved before it is written,
// so that a full disk shows at once and the file is laid out in one piece.
const preallocateMin = 1 << 20

// write writes f's content to w, verifying each chunk and the whole.
func (wr *writer) write(ctx context.Context, w *os.File, f *FileObject, name string) error {
	if f.Size >= preallocateMin {
		if err := unix.Fallocate(int(w.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, f.Size); err != nil &&
			!errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("write %s: reserve %s: %w", name, HumanBytes(f.Size), err)
		}
	}
	h := sha256.New()
	var n int64
	for _, c := range f.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, ok := wr.fromSeeds(c)
		if ok {
			wr.stats.FromSeeds += int64(len(data))
			wr.stats.SeedChunks++
		} else {
			var err error
			if data, err = wr.s.Chunk(c.ID); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			if len(data) != int(c.Length) {
				return fmt.Errorf("write %s: chunk %s has %d bytes, the file object says %d", name, c.ID, len(data), c.Length)
			}
			wr.stats.FromStore += int64(len(data))
			wr.stats.StoreChunks++
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		h.Write(data)
		n += int64(len(data))
	}
	wr.stats.Bytes += n
	if n != f.Size {
		return fmt.Errorf("write %s: chunks add up to %d bytes, the file object says %d", name, n, f.Size)
	}
	if got := ID(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("write %s: content hashes to %s, the file object says %s", name, got, f.SHA256)
	}
	return nil
}

// hashFile returns the SHA-256 of what r yields, streaming.
func (wr *writer) hashFile(r io.Reader) (ID, int64, error) {
	if wr.hbuf == nil {
		wr.hbuf = make([]byte, 256<<10)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, wr.hbuf)
	if err != nil {
		return ID{}, n, err
	}
	return ID(h.Sum(nil)), n, nil
}

// spaceNeed is what new files will take on one file system.
type spaceNeed struct {
	bytes  int64 // rounded up to whole blocks of 4 KiB
	inodes int64
}

// blockSize is the allocation unit assumed when adding up sizes: a file of one byte takes a
// block. File systems with larger blocks are rare for data; smaller ones only help.
const blockSize = 4096

func (n *spaceNeed) addFile(size int64) {
	n.bytes += (size + blockSize - 1) / blockSize * blockSize
	n.inodes++
}

func (n *spaceNeed) addDir() {
	n.bytes += blockSize
	n.inodes++
}

func (n *spaceNeed) addLink(target string) {
	if len(target) >= 60 { // longer targets than fit in the inode take a block
		n.bytes += blockSize
	}
	n.inodes++
}

// checkSpace fails with ErrNoSpace unless the file system of dir (inside root) has room for
// need: free bytes and free inodes, as statfs(2) reports them to unprivileged users.
func checkSpace(root *fsroot.Root, dir string, need spaceNeed) error {
	if need.bytes == 0 && need.inodes == 0 {
		return nil
	}
	d, err := root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("check free space in %s: %w", root.HostPath(dir), err)
	}
	defer d.Close()
	var sf unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &sf); err != nil {
		return fmt.Errorf("check free space in %s: %w", root.HostPath(dir), err)
	}
	avail := int64(sf.Bavail) * sf.Bsize
	if avail < need.bytes {
		return fmt.Errorf("%w: need %s free in %s, have %s", ErrNoSpace, HumanBytes(need.bytes), root.HostPath(dir), HumanBytes(avail))
	}
	if sf.Files > 0 && int64(sf.Ffree) < need.inodes { // Files == 0: no inode limit (btrfs)
		return fmt.Errorf("%w: need %d free inodes in %s, have %d", ErrNoSpace, need.inodes, root.HostPath(dir), sf.Ffree)
	}
	return nil
}

// HumanBytes renders a byte count for people, in SI units: "812 bytes", "4.2 MB", "1.2 GB".
func HumanBytes(n int64) string {
	if n < 1000 && n > -1000 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1000
		if v < 999.95 && v > -999.95 || unit == "TB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	panic("unreachable")
}
