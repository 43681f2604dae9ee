package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// An Index is the stat cache of one materialized tree, as git's index is of a work tree:
// for each regular file below the tree's directory, the stat(2) fields that change when
// the file is written (size, mtime, ctime, inode, device) and the SHA-256 of the content it
// had then, with the file object known to hold that content. When a file's stat still
// matches its entry, its content is taken as known without reading it, so that checking a
// tree of 100,000 unchanged files costs 100,000 fstatat calls and no hashing. A file whose
// stat differs is hashed again.
//
// As in git, an entry whose mtime or ctime is not older than the index file itself is
// "racy": the file may have changed within the timestamp's granularity after the entry was
// taken, so it is hashed again (and the index rewritten, which settles it).
//
// An index is a cache: a missing, damaged or foreign one is ignored (everything is hashed
// once), and it holds nothing the tree does not already say.
type Index struct {
	target string // the tree's directory, on the host, as given to LoadIndex
	// Root is the tree last materialized completely into the directory (zero: none). The
	// next materialization uses it as its previous version (seeds).
	Root ID

	stamp   int64 // the index file's mtime (Unix ns) when loaded; 0: new
	entries map[string]*indexEntry
	gen     uint32 // this run's mark, for dropping entries not seen
	dirty   bool
}

type indexEntry struct {
	size         int64
	mtime, ctime int64 // Unix ns
	ino, dev     uint64
	sha          ID // of the content when the stat was taken
	object       ID // a file object whose content that is (zero: not known)
	gen          uint32
}

// statKey is what an entry compares of a stat.
func (e *indexEntry) matches(st *unix.Stat_t) bool {
	return e.size == st.Size && e.mtime == st.Mtim.Nano() && e.ctime == st.Ctim.Nano() &&
		e.ino == st.Ino && e.dev == uint64(st.Dev)
}

func (e *indexEntry) setStat(st *unix.Stat_t) {
	e.size, e.mtime, e.ctime, e.ino, e.dev = st.Size, st.Mtim.Nano(), st.Ctim.Nano(), st.Ino, uint64(st.Dev)
}

var indexMagic = []byte("SATCHEL-INDEX\x01")

// NewIndex returns an empty index for the tree directory target.
func NewIndex(target string) *Index {
	return &Index{target: target, entries: map[string]*indexEntry{}}
}

// IndexPath returns where the stat cache of the tree at target (a directory on the host)
// is kept: index/ in the store's directory, named after target's hash. The index/
// directory is not part of the store's format: a static server need not serve it.
func (s *Store) IndexPath(target string) string {
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(s.dir, "index", hex.EncodeToString(sum[:16]))
}

// LoadIndex reads the index of the tree at target from file. A missing file gives an empty
// index and no error; a damaged one, or one written for another target, gives an empty
// index and an error saying why (a warning: the index is only a cache).
func LoadIndex(file, target string) (*Index, error) {
	ix := NewIndex(target)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return ix, fmt.Errorf("stat cache %s: %w", file, err)
	}
	info, err := os.Stat(file)
	if err != nil {
		return ix, fmt.Errorf("stat cache %s: %w", file, err)
	}
	if err := ix.decode(data); err != nil {
		return NewIndex(target), fmt.Errorf("stat cache %s: %w; it is rebuilt", file, err)
	}
	ix.stamp = info.ModTime().UnixNano()
	return ix, nil
}

// Len returns the number of entries.
func (ix *Index) Len() int { return len(ix.entries) }

func (ix *Index) decode(data []byte) error {
	if len(data) < len(indexMagic)+sha256.Size || !bytes.HasPrefix(data, indexMagic) {
		return errors.New("not an index")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if ID(sha256.Sum256(body)) != ID(sum) {
		return errors.New("damaged (checksum)")
	}
	d := &decoder{b: body[len(indexMagic):]}
	target := string(d.bytes("target", int(d.uvarint("target length", 1<<16))))
	if d.err == nil && target != ix.target {
		return fmt.Errorf("written for %s", target)
	}
	ix.Root = d.id("root")
	n := d.uvarint("entry count", uint64(len(d.b)))
	entries := make(map[string]*indexEntry, n)
	for range n {
		if d.err != nil {
			break
		}
		name := string(d.bytes("path", int(d.uvarint("path length", 1<<16))))
		e := &indexEntry{}
		e.size = int64(d.uvarint("size", 1<<62))
		e.mtime = d.varint("mtime")
		e.ctime = d.varint("ctime")
		e.ino = d.uvarint("inode", 1<<64-1)
		e.dev = d.uvarint("device", 1<<64-1)
		e.sha = d.id("content hash")
		e.object = d.id("object")
		entries[name] = e
	}
	d.end()
	if d.err != nil {
		return d.err
	}
	ix.entries = entries
	return nil
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Save writes the index to file atomically, if it changed since it was loaded.
func (ix *Index) Save(file string) error {
	if !ix.dirty {
		return nil
	}
	names := make([]string, 0, len(ix.entries))
	for name := range ix.entries {
		names = append(names, name)
	}
	slices.Sort(names)
	b := make([]byte, 0, 64+len(ix.entries)*(100+32))
	b = append(b, indexMagic...)
	b = binary.AppendUvarint(b, uint64(len(ix.target)))
	b = append(b, ix.target...)
	b = append(b, ix.Root[:]...)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		e := ix.entries[name]
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(e.size))
		b = binary.AppendVarint(b, e.mtime)
		b = binary.AppendVarint(b, e.ctime)
		b = binary.AppendUvarint(b, e.ino)
		b = binary.AppendUvarint(b, e.dev)
		b = append(b, e.sha[:]...)
		b = append(b, e.object[:]...)
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	if err := atomicfile.WriteBytes(file, 0o600, b); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	ix.dirty = false
	if info, err := os.Stat(file); err == nil {
		ix.stamp = info.ModTime().UnixNano()
	}
	return nil
}

// lookup returns the entry of rel whose stat matches st and is not racy, or nil.
func (ix *Index) lookup(rel string, st *unix.Stat_t) *indexEntry {
	if ix == nil {
		return nil
	}
	e := ix.entries[rel]
	if e == nil || !e.matches(st) {
		return nil
	}
	if ix.stamp == 0 || e.mtime >= ix.stamp || e.ctime >= ix.stamp {
		return nil // racy: hash it again
	}
	return e
}

// seen marks rel as part of this run's tree.
func (ix *Index) seen(rel string) {
	if ix == nil {
		return
	}
	if e := ix.entries[rel]; e != nil {
		e.gen = ix.gen
	}
}

// record sets rel's entry: the file with stat st holds content sha, which is object's
// (zero if not known).
func (ix *Index) record(rel string, st *unix.Stat_t, sha, object ID) {
	if ix == nil {
		return
	}
	e := ix.entries[rel]
	if e == nil {
		e = &indexEntry{}
		ix.entries[rel] = e
	}
	e.gen = ix.gen
	if e.matches(st) && e.sha == sha && e.object == object {
		return
	}
	e.setStat(st)
	e.sha, e.object = sha, object
	ix.dirty = true
}

// touch marks the index as worth saving: a racy entry was hashed again and found right, and
// a newer index file will make it settled.
func (ix *Index) touch() {
	if ix != nil {
		ix.dirty = true
	}
}

// restat updates the stat of rel's entry, if any, after a change of mode or owner.
func (ix *Index) restat(rel string, st *unix.Stat_t) {
	if ix == nil {
		return
	}
	if e := ix.entries[rel]; e != nil && !e.matches(st) {
		e.setStat(st)
		e.gen = ix.gen
		ix.dirty = true
	}
}

// begin starts a run: entries not marked seen before finish are dropped.
func (ix *Index) begin() {
	if ix != nil {
		ix.gen++
	}
}

// finish drops the entries of paths this run did not see and records root as the tree now
// in place.
func (ix *Index) finish(root ID) {
	if ix == nil {
		return
	}
	for name, e := range ix.entries {
		if e.gen != ix.gen {
			delete(ix.entries, name)
			ix.dirty = true
		}
	}
	if ix.Root != root {
		ix.Root = root
		ix.dirty = true
	}
}
