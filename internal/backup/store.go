package backup

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrCorrupt is wrapped by errors reporting content that does not match its entry.
	ErrCorrupt = errors.New("backup content is corrupt")
	// ErrNotFound is wrapped by errors reporting that no entry (or no content) exists.
	ErrNotFound = errors.New("backup not found")
	// ErrAmbiguous is wrapped by Get's error when an ID prefix matches several entries.
	ErrAmbiguous = errors.New("backup ID prefix is ambiguous")
)

// MinPrefix is the shortest ID prefix Get accepts.
const MinPrefix = 6

// Entry describes one saved version of a file.
type Entry struct {
	ID     string `json:"id"`     // unique, sortable by time: "20261126T105712.123456Z-<8 hex>"
	Path   string `json:"path"`   // the managed path, as in the catalog ("/etc/motd")
	SHA256 string `json:"sha256"` // of the content, lower-case hex
	Size   int64  `json:"size"`   // of the content, in bytes
	// Mode is the permission bits in st_mode encoding: 0o777 plus 0o4000 setuid, 0o2000 setgid,
	// 0o1000 sticky (see ModeBits and Entry.FileMode; not os.FileMode's encoding).
	Mode   uint32    `json:"mode"`
	UID    int       `json:"uid"`
	GID    int       `json:"gid"`
	Time   time.Time `json:"time"`   // when the backup was taken, UTC
	Reason string    `json:"reason"` // e.g. "replaced by file.motd", "removed by directory.x purge"
}

// ModeBits converts an os.FileMode to the Entry.Mode encoding: the permission bits plus 0o4000
// for setuid, 0o2000 for setgid and 0o1000 for sticky. The file type bits are dropped.
func ModeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// FileMode converts e.Mode back to an os.FileMode (permission and special bits, no type bits),
// as os.Chmod expects it.
func (e Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Store is a backup store rooted at one directory. Its methods may be called from several
// goroutines, and several processes may use the same directory at once.
type Store struct {
	dir string
	// mu serialises this process's writers before they contend for the flock on dir/lock,
	// which serialises writers across processes.
	mu sync.Mutex
}

// Open opens (creating with 0700 if needed) a store rooted at dir.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: open store %s: %w", dir, err)
	}
	s := &Store{dir: abs}
	for _, d := range []string{abs, s.objectsDir(), s.tmpDir()} {
		if err := mkdirDurable(d); err != nil {
			return nil, fmt.Errorf("backup: open store %s: %w", abs, err)
		}
	}
	return s, nil
}

// Dir returns the (absolute) directory the store is rooted at.
func (s *Store) Dir() string { return s.dir }

func (s *Store) objectsDir() string { return filepath.Join(s.dir, "objects") }
func (s *Store) tmpDir() string     { return filepath.Join(s.dir, "tmp") }
func (s *Store) indexPath() string  { return filepath.Join(s.dir, "index.jsonl") }
func (s *Store) lockPath() string   { return filepath.Join(s.dir, "lock") }

// objectPath returns where the content with that (valid) hash lives.
func (s *Store) objectPath(sum string) string {
	return filepath.Join(s.objectsDir(), sum[:2], sum)
}

// Save streams r into the store and records an Entry for it.
//
// The caller fills in Path (absolute and clean, as in the catalog), Mode (see ModeBits), UID,
// GID and Reason, and may set Time (the current time is used if it is zero; it is stored in UTC).
// Save assigns ID, SHA256 and Size. If the caller sets SHA256, or a non-zero Size, the content
// read from r must match them, otherwise nothing is recorded and an error is returned: this lets
// a caller check that the file it backs up is still the one it inspected.
//
// The content is hashed while it is copied to a temporary file, never held in memory. It is
// deduplicated: if an intact object with the same SHA-256 is already stored, the copy is dropped.
// Save returns the entry as recorded.
func (s *Store) Save(e Entry, r io.Reader) (Entry, error) {
	fail := func(err error) (Entry, error) {
		return Entry{}, fmt.Errorf("backup: save %s: %w", e.Path, err)
	}
	if err := checkPath(e.Path); err != nil {
		return fail(err)
	}
	if e.Mode&^0o7777 != 0 {
		return fail(fmt.Errorf("mode %#o has bits other than permission and setuid/setgid/sticky (use ModeBits)", e.Mode))
	}
	if e.Size < 0 {
		return fail(fmt.Errorf("negative expected size %d", e.Size))
	}
	wantSum, wantSize := strings.ToLower(e.SHA256), e.Size
	if wantSum != "" && !validSum(wantSum) {
		return fail(fmt.Errorf("expected sha256 %q is not 64 hex digits", e.SHA256))
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.ID = newID(e.Time)

	tmp, sum, size, err := s.writeTemp(r)
	if err != nil {
		return fail(err)
	}
	defer tmp.discard()

	if wantSum != "" && sum != wantSum {
		return fail(fmt.Errorf("content has sha256 %s, expected %s (did the file change while it was read?)", sum, wantSum))
	}
	if wantSize != 0 && size != wantSize {
		return fail(fmt.Errorf("content has %d bytes, expected %d (did the file change while it was read?)", size, wantSize))
	}
	e.SHA256, e.Size = sum, size

	unlock, err := s.lock()
	if err != nil {
		return fail(err)
	}
	defer unlock()
	if err := s.commitObject(tmp, sum, size); err != nil {
		return fail(err)
	}
	if err := s.appendIndex(e); err != nil {
		return fail(err)
	}
	return e, nil
}

// tempObject is content being saved: an open, flocked file in dir/tmp. The flock tells Prune
// that the file is in use; it is released when the file is closed.
type tempObject struct {
	f    *os.File
	name string
	done bool // renamed or removed
}

func (t *tempObject) discard() {
	t.f.Close()
	if !t.done {
		_ = os.Remove(t.name)
	}
}

// writeTemp copies r into a new temporary file, hashing it on the way, and fsyncs it.
func (s *Store) writeTemp(r io.Reader) (*tempObject, string, int64, error) {
	f, err := os.CreateTemp(s.tmpDir(), "save-*")
	if err != nil {
		return nil, "", 0, err
	}
	t := &tempObject{f: f, name: f.Name()}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.discard()
		return nil, "", 0, err
	}
	h := sha256.New()
	buf := make([]byte, 128<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), r, buf)
	if err != nil {
		t.discard()
		return nil, "", 0, fmt.Errorf("copy content to %s: %w", t.name, err)
	}
	if err := f.Sync(); err != nil {
		t.discard()
		return nil, "", 0, err
	}
	return t, hex.EncodeToString(h.Sum(nil)), n, nil
}

// commitObject moves the temporary file into objects/, unless an intact copy is already there.
// The caller holds the lock, so Prune cannot delete the object before its entry is appended.
func (s *Store) commitObject(t *tempObject, sum string, size int64) error {
	dst := s.objectPath(sum)
	if err := mkdirDurable(filepath.Dir(dst)); err != nil {
		return err
	}
	if objectIntact(dst, sum, size) {
		return nil // deduplicated; the deferred discard removes the temporary file
	}
	// Missing, or present but damaged: the fresh copy takes its place.
	if err := os.Rename(t.name, dst); err != nil {
		return err
	}
	t.done = true
	return syncDir(filepath.Dir(dst))
}

// objectIntact reports whether the file at p exists with that size and hash.
func objectIntact(p, sum string, size int64) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
		return false
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 128<<10)); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == sum
}

// List returns the entries for path (all paths if path == ""), newest first. Entries with the
// same time are listed in reverse order of saving.
func (s *Store) List(p string) ([]Entry, error) {
	entries, _, err := s.readIndex()
	if err != nil {
		if p == "" {
			return nil, fmt.Errorf("backup: list: %w", err)
		}
		return nil, fmt.Errorf("backup: list %s: %w", p, err)
	}
	if p != "" {
		p = path.Clean(p)
		entries = slices.DeleteFunc(entries, func(e Entry) bool { return e.Path != p })
	}
	sortNewestFirst(entries)
	return entries, nil
}

func sortNewestFirst(entries []Entry) {
	slices.Reverse(entries)
	slices.SortStableFunc(entries, func(a, b Entry) int { return b.Time.Compare(a.Time) })
}

// Get returns the entry with that ID, or with that unique ID prefix of at least MinPrefix
// characters. An unknown ID gives an error wrapping ErrNotFound, a prefix matching several
// entries one wrapping ErrAmbiguous.
func (s *Store) Get(id string) (Entry, error) {
	if len(id) < MinPrefix {
		return Entry{}, fmt.Errorf("backup: get %q: ID prefix too short (at least %d characters)", id, MinPrefix)
	}
	entries, _, err := s.readIndex()
	if err != nil {
		return Entry{}, fmt.Errorf("backup: get %s: %w", id, err)
	}
	var matches []Entry
	for _, e := range entries {
		if e.ID == id {
			return e, nil
		}
		if strings.HasPrefix(e.ID, id) {
			matches = append(matches, e)
		}
	}
	switch len(matches) {
	case 0:
		return Entry{}, fmt.Errorf("backup: get %s: %w", id, ErrNotFound)
	case 1:
		return matches[0], nil
	}
	sortNewestFirst(matches)
	ids := make([]string, 0, 3)
	for _, m := range matches[:min(3, len(matches))] {
		ids = append(ids, m.ID)
	}
	more := ""
	if len(matches) > 3 {
		more = ", ..."
	}
	return Entry{}, fmt.Errorf("backup: get %s: %w: %d entries match (%s%s)", id, ErrAmbiguous, len(matches), strings.Join(ids, ", "), more)
}

// Open returns the content of an entry. The reader verifies the content against the entry's
// SHA-256 and size as it goes: if they do not match, Read returns an error wrapping ErrCorrupt
// (at EOF, or as soon as the content runs past the recorded size) instead of io.EOF. Callers
// must read to EOF and discard what they read if any error occurs. Content missing from the
// store gives an error wrapping ErrNotFound.
func (s *Store) Open(e Entry) (io.ReadCloser, error) {
	if !validSum(e.SHA256) {
		return nil, fmt.Errorf("backup: open %s (%s): %w: sha256 %q is not 64 lower-case hex digits", e.Path, e.ID, ErrCorrupt, e.SHA256)
	}
	if e.Size < 0 {
		return nil, fmt.Errorf("backup: open %s (%s): %w: negative size %d", e.Path, e.ID, ErrCorrupt, e.Size)
	}
	p := s.objectPath(e.SHA256)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup: open %s (%s): content %s is missing: %w", e.Path, e.ID, p, ErrNotFound)
		}
		return nil, fmt.Errorf("backup: open %s (%s): %w", e.Path, e.ID, err)
	}
	return &verifyingReader{f: f, h: sha256.New(), e: e, p: p}, nil
}

// verifyingReader reads an object and checks it against its entry.
type verifyingReader struct {
	f   *os.File
	h   hashWriter
	e   Entry
	p   string
	n   int64
	err error // sticky: io.EOF or the error returned
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func (v *verifyingReader) Read(b []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.f.Read(b)
	_, _ = v.h.Write(b[:n]) // hashes never fail
	v.n += int64(n)
	if v.n > v.e.Size {
		v.err = v.corrupt()
		return n, v.err
	}
	switch {
	case err == io.EOF:
		if v.n != v.e.Size || hex.EncodeToString(v.h.Sum(nil)) != v.e.SHA256 {
			v.err = v.corrupt()
		} else {
			v.err = io.EOF
		}
		return n, v.err
	case err != nil:
		v.err = fmt.Errorf("backup: read %s (%s): %w", v.e.Path, v.e.ID, err)
		return n, v.err
	}
	return n, nil
}

func (v *verifyingReader) corrupt() error {
	if v.n != v.e.Size {
		more := ""
		if v.n > v.e.Size {
			more = " or more"
		}
		return fmt.Errorf("backup: read %s (%s): %w: %s has %d bytes%s, expected %d", v.e.Path, v.e.ID, ErrCorrupt, v.p, v.n, more, v.e.Size)
	}
	return fmt.Errorf("backup: read %s (%s): %w: %s has sha256 %x, expected %s", v.e.Path, v.e.ID, ErrCorrupt, v.p, v.h.Sum(nil), v.e.SHA256)
}

func (v *verifyingReader) Close() error { return v.f.Close() }

// newID returns an ID for an entry taken at t (UTC).
func newID(t time.Time) string {
	var r [4]byte
	rand.Read(r[:])
	return t.UTC().Format("20060102T150405.000000") + "Z-" + hex.EncodeToString(r[:])
}

// checkPath accepts absolute, clean paths, as a catalog has them.
func checkPath(p string) error {
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q is not absolute and clean", p)
	}
	return nil
}

// validSum reports whether s is a lower-case hex SHA-256.
func validSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Mark returns a mark of the store as it is now: Since(mark) then returns the entries
// saved after this call, in the order they were saved, whatever the clock said when they
// were. The mark is the ID of the last entry ("" for an empty store); Prune may remove it,
// so call Since before pruning.
func (s *Store) Mark() (string, error) {
	entries, _, err := s.readIndex()
	if err != nil {
		return "", fmt.Errorf("backup: mark: %w", err)
	}
	if len(entries) == 0 {
		return "", nil
	}
	return entries[len(entries)-1].ID, nil
}

// Since returns the entries saved after mark (from Mark), oldest first. A mark that is no
// longer in the store (pruned since) is an error: what came after it cannot be told.
func (s *Store) Since(mark string) ([]Entry, error) {
	entries, _, err := s.readIndex()
	if err != nil {
		return nil, fmt.Errorf("backup: since %s: %w", mark, err)
	}
	if mark == "" {
		return entries, nil
	}
	for i, e := range entries {
		if e.ID == mark {
			return entries[i+1:], nil
		}
	}
	return nil, fmt.Errorf("backup: since %s: %w: the mark is no longer in the store", mark, ErrNotFound)
}
