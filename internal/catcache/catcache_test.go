package catcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/catalog"
)

// fixture is a repository, a cache that stores at once, and a catalog to store.
type fixture struct {
	t     *testing.T
	repo  string
	cache *Cache
	cat   *catalog.Catalog
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, repo: t.TempDir(), cache: &Cache{dir: filepath.Join(t.TempDir(), "catalogs")}}
	f.write("main.hcl", "node \"n\" {}\n")
	f.write("files/a.txt", "a\n")
	f.cat = catalog.New("n")
	f.cat.Resources = append(f.cat.Resources, &catalog.Resource{Address: "file.a", Type: "file", Name: "a",
		Attributes: map[string]json.RawMessage{"path": json.RawMessage(`"/a"`)}})
	return f
}

func (f *fixture) write(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.repo, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

var paths = [][]string{{"os", "id"}, {"hostname"}}

func (f *fixture) store(node string, facts map[string]any) {
	f.t.Helper()
	in, newest, err := NewInputs(f.repo, node, facts)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.cache.Store(in, newest, paths, map[string]string{"main.hcl": sha("node \"n\" {}\n")}, f.cat); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) hit(node string, facts map[string]any) bool {
	f.t.Helper()
	in, _, err := NewInputs(f.repo, node, facts)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.cache.Lookup(in) != nil
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func facts(osID, free string) map[string]any {
	return map[string]any{"hostname": "n", "os": map[string]any{"id": osID}, "free": free}
}

func TestHitWhenNothingChanged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store("n", facts("debian", "1"))
	in, _, _ := NewInputs(f.repo, "n", facts("debian", "1"))
	got := f.cache.Lookup(in)
	if got == nil || len(got.Resources) != 1 || got.Resources[0].Address != "file.a" {
		t.Fatalf("lookup = %+v, want the stored catalog", got)
	}
	if !f.hit("n", facts("debian", "999")) {
		t.Error("a fact the configuration does not read invalidated the entry")
	}
}

func TestMissWhenAnInputChanged(t *testing.T) {
	t.Parallel()
	cases := map[string]func(f *fixture) (node string, fs map[string]any){
		"other node":        func(f *fixture) (string, map[string]any) { return "m", facts("debian", "1") },
		"read fact changed": func(f *fixture) (string, map[string]any) { return "n", facts("ubuntu", "1") },
		"read fact removed": func(f *fixture) (string, map[string]any) {
			return "n", map[string]any{"hostname": "n", "os": map[string]any{}}
		},
		"file rewritten, same size": func(f *fixture) (string, map[string]any) {
			f.write("files/a.txt", "b\n")
			return "n", facts("debian", "1")
		},
		"file added": func(f *fixture) (string, map[string]any) {
			f.write("roles/new.hcl", "")
			return "n", facts("debian", "1")
		},
		"file replaced by rename": func(f *fixture) (string, map[string]any) {
			f.write("files/tmp", "a\n")
			if err := os.Rename(filepath.Join(f.repo, "files/tmp"), filepath.Join(f.repo, "files/a.txt")); err != nil {
				f.t.Fatal(err)
			}
			return "n", facts("debian", "1")
		},
		"mode changed": func(f *fixture) (string, map[string]any) {
			if err := os.Chmod(filepath.Join(f.repo, "main.hcl"), 0o600); err != nil {
				f.t.Fatal(err)
			}
			return "n", facts("debian", "1")
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.store("n", facts("debian", "1"))
			time.Sleep(10 * time.Millisecond) // let the clock move past the stored times
			node, fs := change(f)
			if f.hit(node, fs) {
				t.Errorf("stale catalog returned after: %s", name)
			}
		})
	}
}

// Content the metadata cannot see: a file rewritten with its old size, times and inode
// restored (as a rebuilt read-only image would have them) still invalidates the entry.
func TestMissWhenReadContentChangedBehindTheFingerprint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store("n", facts("debian", "1"))
	in, _, err := NewInputs(f.repo, "n", facts("debian", "1"))
	if err != nil {
		t.Fatal(err)
	}
	in.Fingerprint = "forged to match" // as if the metadata had not changed
	f.write("main.hcl", "node \"m\" {}\n")
	e := entryFile(t, f)
	fixFingerprint(t, e, in.Fingerprint)
	if f.cache.Lookup(in) != nil {
		t.Error("a changed .hcl file was not noticed because its metadata matched")
	}
}

func entryFile(t *testing.T, f *fixture) string {
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(f.cache.dir, "*.json"))
	if len(entries) != 1 {
		t.Fatalf("entries = %v", entries)
	}
	return entries[0]
}

// fixFingerprint rewrites an entry's fingerprint, standing in for metadata that did not change.
func fixFingerprint(t *testing.T, path, fp string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(data, []byte("\n"))
	var e map[string]any
	if err := json.Unmarshal(head, &e); err != nil {
		t.Fatal(err)
	}
	e["fingerprint"] = fp
	head, _ = json.Marshal(e)
	if err := os.WriteFile(path, append(append(head, '\n'), body...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptEntryIsAMiss(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.store("n", facts("debian", "1"))
	entries, _ := filepath.Glob(filepath.Join(f.cache.dir, "*.json"))
	if len(entries) != 1 {
		t.Fatalf("entries = %v", entries)
	}
	data, _ := os.ReadFile(entries[0])
	for _, bad := range [][]byte{data[:len(data)/2], []byte("garbage"), {}} {
		if err := os.WriteFile(entries[0], bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if f.hit("n", facts("debian", "1")) {
			t.Errorf("a corrupt entry (%d bytes) was used", len(bad))
		}
	}
}

// A repository changed in the last moments is not cached: a further change within the same
// clock tick could leave every time stamp as it was.
func TestRecentlyChangedRepositoryIsNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.cache.quiet = time.Hour
	f.store("n", facts("debian", "1"))
	if f.hit("n", facts("debian", "1")) {
		t.Error("a repository changed within the quiet period was cached")
	}
}

func TestFactPathsIntoListsAndMissingKeys(t *testing.T) {
	t.Parallel()
	fs := map[string]any{"nets": []any{map[string]any{"ip": "10.0.0.1"}}}
	a, _ := factsHash([][]string{{"nets", "0", "ip"}, {"nope"}}, fs)
	fs["nets"] = []any{map[string]any{"ip": "10.0.0.2"}}
	b, _ := factsHash([][]string{{"nets", "0", "ip"}, {"nope"}}, fs)
	if a == b {
		t.Error("a change inside a list did not change the facts hash")
	}
	c, _ := factsHash([][]string{{"nope"}}, map[string]any{"nope": nil})
	d, _ := factsHash([][]string{{"nope"}}, map[string]any{})
	if c == d {
		t.Error("a fact that is null and one that is absent hash alike")
	}
}
