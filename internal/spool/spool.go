package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// tempPrefix starts the name of an entry being written; Open removes such leftovers.
const tempPrefix = atomicfile.TempPrefix

// timeLayout is the time in an entry's name: UTC, fixed width, so names sort by time.
const timeLayout = "20060102T150405.000000000Z"

// nameRE matches an entry's name: time, kind, 8 random hex digits.
var nameRE = regexp.MustCompile(`^([0-9]{8}T[0-9]{6}\.[0-9]{9}Z)-([a-z0-9_]{1,32})-[0-9a-f]{8}\.json$`)

// kindRE matches a kind: lower-case letters, digits and underscores.
var kindRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// ErrBadName is wrapped by the error for a name that is not an entry's name.
var ErrBadName = errors.New("not a spool entry name")

// Spool is a directory of entries waiting to be carried away, pruned by size. Its methods
// are safe for concurrent use; one process at a time should write to a spool directory
// (the agent holds its run lock), though other processes may read and remove entries.
type Spool struct {
	dir      string
	maxBytes int64
	now      func() time.Time // time.Now; tests replace it

	mu   sync.Mutex
	last time.Time // the time in the newest name Put has used
}

// Entry is one spooled item.
type Entry struct {
	Name string    // the file's name in the spool directory
	Kind string    // what Put was given, such as "report"
	Size int64     // bytes
	Time time.Time // from the name: when it was spooled (UTC), see the package doc
}

// Open opens the spool in dir, creating the directory (mode 0700) if needed, and removes
// temporary files a crash left behind. maxBytes caps the total size of the entries; it
// must be positive.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("open spool %s: size cap %d must be positive", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tempPrefix) && de.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open spool: remove leftover: %w", err)
			}
		}
	}
	return &Spool{dir: dir, maxBytes: maxBytes, now: time.Now}, nil
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Put stores data as a new entry of the given kind (lower-case letters, digits and
// underscores, such as "report") and returns its name, such as
// "20261126T163000.123456789Z-report-1a2b3c4d.json". The entry is complete and on disk
// when Put returns: a crash leaves it whole or absent. Then Put prunes the spool; if only
// that fails, the entry is stored, name is returned and err says what went wrong.
func (s *Spool) Put(kind string, data []byte) (name string, err error) {
	if !kindRE.MatchString(kind) {
		return "", fmt.Errorf("spool put: kind %q: want lower-case letters, digits and underscores", kind)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("spool put: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := s.list()
	if err != nil {
		return "", fmt.Errorf("spool put: %w", err)
	}
	// Names are in the order of Put even when the clock steps back (a node whose clock was
	// wrong and then fixed): otherwise the newest report could sort first and be pruned.
	t := s.now().UTC()
	newest := s.last
	if n := len(entries); n > 0 && entries[n-1].Time.After(newest) {
		newest = entries[n-1].Time
	}
	if !t.After(newest) {
		t = newest.Add(time.Nanosecond)
	}
	name = t.Format(timeLayout) + "-" + kind + "-" + hex.EncodeToString(rnd[:]) + ".json"
	if err := s.write(name, data); err != nil {
		return "", fmt.Errorf("spool put %s: %w", name, err)
	}
	s.last = t
	entries = append(entries, Entry{Name: name, Kind: kind, Size: int64(len(data)), Time: t})
	if _, err := s.prune(entries); err != nil {
		return name, fmt.Errorf("spool put %s: stored, but pruning failed: %w", name, err)
	}
	return name, nil
}

// write stores data under name, atomically and durably (package atomicfile).
func (s *Spool) write(name string, data []byte) error {
	return atomicfile.WriteBytes(filepath.Join(s.dir, name), 0o600, data)
}

func (s *Spool) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// List returns the entries, oldest first. Temporary files and files that are not entries
// are left out.
func (s *Spool) List() ([]Entry, error) {
	entries, err := s.list()
	if err != nil {
		return nil, fmt.Errorf("spool list: %w", err)
	}
	return entries, nil
}

func (s *Spool) list() ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, de := range des {
		m := nameRE.FindStringSubmatch(de.Name())
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(timeLayout, m[1])
		if err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		entries = append(entries, Entry{Name: de.Name(), Kind: m[2], Size: info.Size(), Time: t})
	}
	// os.ReadDir sorts by name, which is by time; sort anyway, the order is the contract.
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// path validates name and returns its path.
func (s *Spool) path(name string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("%q: %w", name, ErrBadName)
	}
	return filepath.Join(s.dir, name), nil
}

// Read returns an entry's content. A name that is not an entry's name (a path, "..") is
// refused with an error wrapping ErrBadName; an entry that is gone gives an error wrapping
// fs.ErrNotExist.
func (s *Spool) Read(name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, fmt.Errorf("spool read: %w", err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("spool read: %w", err)
	}
	return data, nil
}

// Remove deletes an entry, once it has been carried away. Names are checked as Read checks
// them; removing an entry that is already gone is not an error.
func (s *Spool) Remove(name string) error {
	p, err := s.path(name)
	if err != nil {
		return fmt.Errorf("spool remove: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool remove: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("spool remove: %w", err)
	}
	return nil
}

// Prune removes entries, oldest first, until their total size is at most the cap. The
// newest entry is never removed, even when it alone is over the cap. It returns how many
// entries it removed.
func (s *Spool) Prune() (removed int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := s.list()
	if err == nil {
		removed, err = s.prune(entries)
	}
	if err != nil {
		return removed, fmt.Errorf("spool prune: %w", err)
	}
	return removed, nil
}

// prune does Prune's work on entries, listed oldest first.
func (s *Spool) prune(entries []Entry) (removed int, err error) {
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	for _, e := range entries[:max(len(entries)-1, 0)] {
		if total <= s.maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		total -= e.Size
		removed++
	}
	if removed > 0 {
		if err := s.syncDir(); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
