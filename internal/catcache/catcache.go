package catcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
)

// Cache is a directory of entries, one per repository and node.
type Cache struct {
	dir   string
	quiet time.Duration // how long the repository must have been left alone to be cached
}

// Open returns the cache kept in dir (created when first written).
func Open(dir string) *Cache { return &Cache{dir: dir, quiet: quiet} }

// Inputs identify what a catalog was compiled from.
type Inputs struct {
	Dir         string // the repository, absolute
	Node        string
	Fingerprint string
	Facts       map[string]any
	Vars        map[string]string // set from outside (--var)
}

type entry struct {
	Format      string            `json:"format"`
	Program     string            `json:"program"`
	Dir         string            `json:"dir"`
	Node        string            `json:"node"`
	Fingerprint string            `json:"fingerprint"`
	FactPaths   [][]string        `json:"fact_paths"`
	FactsHash   string            `json:"facts_hash"`
	Vars        map[string]string `json:"vars"`
	// TextFiles are the SHA-256 of the files the language read as text, by relative path:
	// checked on every lookup, so a change the metadata fingerprint cannot see (a read-only
	// image rebuilt with the same times and inodes) still invalidates the entry.
	TextFiles map[string]string `json:"text_files"`
}

const entryFormat = "satchel.catcache/v1"

// quiet is how long a repository must have been left alone before its catalog is cached.
const quiet = 2 * time.Second

// NewInputs gathers the inputs of a compilation of dir for node with facts, and the newest
// change in the repository.
func NewInputs(dir, node string, facts map[string]any) (*Inputs, time.Time, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, time.Time{}, err
	}
	fp, newest, err := Fingerprint(abs)
	if err != nil {
		return nil, time.Time{}, err
	}
	return &Inputs{Dir: abs, Node: node, Fingerprint: fp, Facts: facts}, newest, nil
}

func (c *Cache) path(in *Inputs) string {
	sum := sha256.Sum256([]byte(in.Dir + "\x00" + in.Node))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:12])+".json")
}

// Lookup returns the cached catalog for these inputs, or nil.
func (c *Cache) Lookup(in *Inputs) *catalog.Catalog {
	data, err := os.ReadFile(c.path(in))
	if err != nil {
		return nil
	}
	head, body, ok := bytes.Cut(data, []byte("\n"))
	var e entry
	if !ok || json.Unmarshal(head, &e) != nil || e.Format != entryFormat || e.Program != program() ||
		e.Dir != in.Dir || e.Node != in.Node || e.Fingerprint != in.Fingerprint || !maps.Equal(e.Vars, in.Vars) {
		return nil
	}
	if h, err := factsHash(e.FactPaths, in.Facts); err != nil || h != e.FactsHash {
		return nil
	}
	if !sameContent(in.Dir, e.TextFiles) {
		return nil
	}
	cat, err := catalog.Unmarshal(body)
	if err != nil || cat.Node != in.Node {
		return nil
	}
	return cat
}

// Store records cat as compiled from these inputs, with the facts at factPaths and the text
// files whose hashes are given (lang.Config.TextFiles). It does nothing when the repository
// changed (newest) less than two seconds ago.
func (c *Cache) Store(in *Inputs, newest time.Time, factPaths [][]string, textFiles map[string]string, cat *catalog.Catalog) error {
	if time.Since(newest) < c.quiet {
		return nil
	}
	fh, err := factsHash(factPaths, in.Facts)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(cat) // not canonical: only this package reads it
	if err != nil {
		return err
	}
	head, err := json.Marshal(entry{Format: entryFormat, Program: program(), Dir: in.Dir, Node: in.Node,
		Fingerprint: in.Fingerprint, FactPaths: factPaths, FactsHash: fh, TextFiles: textFiles, Vars: in.Vars})
	if err != nil {
		return err
	}
	// One line of metadata, then the catalog: a lookup that misses reads only the first line's
	// worth of JSON, and a hit parses the catalog once.
	data := append(append(head, '\n'), raw...)
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("catalog cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.dir, ".entry-*")
	if err != nil {
		return fmt.Errorf("catalog cache: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("catalog cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path(in)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("catalog cache: %w", err)
	}
	return nil
}

// Fingerprint hashes the metadata of every entry under dir (symlinks not followed) and
// returns the newest modification or change time among them.
func Fingerprint(dir string) (string, time.Time, error) {
	h := sha256.New()
	var newest time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, _ := info.Sys().(*syscall.Stat_t)
		var ino uint64
		var ctime time.Time
		if st != nil {
			ino = st.Ino
			ctime = time.Unix(st.Ctim.Unix())
		}
		fmt.Fprintf(h, "%q %o %d %d %d %d\n", rel, info.Mode(), info.Size(), info.ModTime().UnixNano(), ctime.UnixNano(), ino)
		for _, t := range []time.Time{info.ModTime(), ctime} {
			if t.After(newest) {
				newest = t
			}
		}
		return nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("fingerprint %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), newest, nil
}

// sameContent reports whether every file still has the recorded hash. Files are read through
// os.Root, so a symlink out of the repository is a miss, never a read.
func sameContent(dir string, files map[string]string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	for rel, want := range files {
		data, err := root.ReadFile(filepath.FromSlash(rel))
		if err != nil {
			return false
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != want {
			return false
		}
	}
	return true
}

// factsHash hashes the values of the facts at paths (an absent fact hashes as absent).
func factsHash(paths [][]string, facts map[string]any) (string, error) {
	type item struct {
		Path  []string `json:"path"`
		Found bool     `json:"found"`
		Value any      `json:"value,omitempty"`
	}
	items := make([]item, 0, len(paths))
	for _, p := range paths {
		v, ok := lookup(facts, p)
		items = append(items, item{Path: p, Found: ok, Value: v})
	}
	data, err := json.Marshal(items) // maps marshal with sorted keys: the hash is stable
	if err != nil {
		return "", fmt.Errorf("hash facts: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func lookup(v any, path []string) (any, bool) {
	for _, step := range path {
		switch m := v.(type) {
		case map[string]any:
			next, ok := m[step]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			var i int
			if _, err := fmt.Sscanf(step, "%d", &i); err != nil || i < 0 || i >= len(m) {
				return nil, false
			}
			v = m[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// program identifies the running satchel binary, so a new build never reuses a catalog an
// older one compiled.
func program() string {
	exe, err := os.Executable()
	if err != nil {
		return catalog.Format
	}
	info, err := os.Stat(exe)
	if err != nil {
		return catalog.Format
	}
	var ino uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%s %s %d %d %d", catalog.Format, exe, info.Size(), info.ModTime().UnixNano(), ino)
}
