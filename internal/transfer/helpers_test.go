package transfer

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/store"
)

// Test content: generated trees, deterministic.

var words = strings.Fields(`the a of to and in is it that for on with as was by at be this from or an are
have not but had his they which one you were her all she there would their we him been has when who will
more no if out so said what up its about into than them can only other new some could time these two may
then do first any my now such like our over man me even most made after also did many before must through
store chunk delta tree node server link pack index range stream fetch apply config release version file`)

// text returns n bytes of prose-like text (compressible, about 3:1 with zstd).
func text(r *rand.Rand, n int) []byte {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return []byte(b.String()[:n])
}

// random returns n incompressible bytes.
func random(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genV1 writes the first version of the test tree (about 1.6 MiB: random and text files,
// large and small, in nested directories).
func genV1(t *testing.T, dir string) {
	r := rand.New(rand.NewPCG(1, 2))
	writeFile(t, filepath.Join(dir, "video", "big.bin"), random(r, 600<<10))
	writeFile(t, filepath.Join(dir, "docs", "a.txt"), text(r, 300<<10))
	writeFile(t, filepath.Join(dir, "docs", "b.txt"), text(r, 200<<10))
	writeFile(t, filepath.Join(dir, "data", "records.dat"), random(r, 256<<10))
	for i := range 12 {
		writeFile(t, filepath.Join(dir, "small", "s"+string(rune('a'+i))+".txt"), text(r, 2<<10+r.IntN(6<<10)))
	}
}

// genV2 writes v1 changed: bytes rewritten in place, an insertion, a new file, a deleted
// file.
func genV2(t *testing.T, v1, dir string) {
	genV1(t, dir)
	r := rand.New(rand.NewPCG(3, 4))
	big := readFile(t, filepath.Join(v1, "video", "big.bin"))
	copy(big[100<<10:], random(r, 4<<10))
	copy(big[400<<10+123:], random(r, 4<<10))
	writeFile(t, filepath.Join(dir, "video", "big.bin"), big)
	a := readFile(t, filepath.Join(v1, "docs", "a.txt"))
	a = append(a[:50<<10:50<<10], append(text(r, 2<<10), a[50<<10:]...)...)
	writeFile(t, filepath.Join(dir, "docs", "a.txt"), a)
	writeFile(t, filepath.Join(dir, "docs", "new.txt"), text(r, 40<<10))
	if err := os.Remove(filepath.Join(dir, "small", "sc.txt")); err != nil {
		t.Fatal(err)
	}
}

// fixture is a server's store holding v1 and v2, with the deltas 0→v1, v1→v2 and 0→v2.
type fixture struct {
	dir    string // the server store's directory
	srv    *store.Store
	v1, v2 store.ID
	v1Dir  string // the trees, as files
	v2Dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	f := &fixture{dir: filepath.Join(tmp, "server"), v1Dir: filepath.Join(tmp, "v1"), v2Dir: filepath.Join(tmp, "v2")}
	genV1(t, f.v1Dir)
	genV2(t, f.v1Dir, f.v2Dir)
	var err error
	if f.srv, err = store.Open(f.dir); err != nil {
		t.Fatal(err)
	}
	if f.v1, err = f.srv.Add(ctx, f.v1Dir, nil); err != nil {
		t.Fatal(err)
	}
	if f.v2, err = f.srv.Add(ctx, f.v2Dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]store.ID{{{}, f.v1}, {f.v1, f.v2}, {{}, f.v2}} {
		if _, err := f.srv.BuildDelta(ctx, pair[0], pair[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// index reads a delta's index from the server's store.
func (f *fixture) index(t *testing.T, from, to store.ID) *store.DeltaIndex {
	t.Helper()
	x, err := f.srv.DeltaIndex(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// fileSize returns the size of a file of the server's store.
func (f *fixture) fileSize(t *testing.T, rel string) int64 {
	t.Helper()
	info, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// removeDeltas removes the server's deltas (one pair, or all when from and to are zero).
func (f *fixture) removeDeltas(t *testing.T, pairs ...[2]store.ID) {
	t.Helper()
	if len(pairs) == 0 {
		if err := os.RemoveAll(filepath.Join(f.dir, "deltas")); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, p := range pairs {
		for _, rel := range []string{store.DeltaIndexPath(p[0], p[1]), store.DeltaPackPath(p[0], p[1])} {
			if err := os.Remove(filepath.Join(f.dir, filepath.FromSlash(rel))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// flipByte changes one byte of a file of the server's store.
func (f *fixture) flipByte(t *testing.T, rel string, at int64) {
	t.Helper()
	p := filepath.Join(f.dir, filepath.FromSlash(rel))
	b := readFile(t, p)
	b[at] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serve serves h on 127.0.0.1 for the test.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// serveStore serves the fixture's store with Handler.
func (f *fixture) serve(t *testing.T) string {
	t.Helper()
	h, err := NewHandler(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return serve(t, h)
}

// warnings collects a client's warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.msgs, "\n")
}

// testClient returns a client of url with tiny back-offs, its warnings logged and kept.
func testClient(t *testing.T, url string) (*Client, *warnings) {
	t.Helper()
	c, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	c.MinBackoff, c.MaxBackoff = time.Millisecond, 10*time.Millisecond
	w := &warnings{}
	c.Warn = func(msg string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msgs = append(w.msgs, msg)
		t.Log("warning:", msg)
	}
	return c, w
}

// newStore opens an empty store in a temporary directory.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeWith opens a store holding the tree in dir (as a node that has that version).
func storeWith(t *testing.T, dir string) *store.Store {
	t.Helper()
	s := newStore(t)
	if _, err := s.Add(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkComplete fails unless s holds all of root, every file intact.
func checkComplete(t *testing.T, s *store.Store, root store.ID) {
	t.Helper()
	ctx := context.Background()
	objects, chunks, err := s.Missing(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(objects)+len(chunks) > 0 {
		t.Fatalf("after the pull, %d objects and %d chunks missing", len(objects), len(chunks))
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) > 0 {
		t.Fatalf("after the pull, corrupt: %v", rep.Corrupt[0].Err)
	}
}

// mustPull runs c.Pull and fails the test on an error.
func mustPull(t *testing.T, c *Client, s *store.Store, to store.ID, have ...store.ID) Stats {
	t.Helper()
	st, err := c.Pull(context.Background(), s, to, have)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull: %+v", st)
	return st
}

// missingPayloads returns how many entries of x the store lacks, and their pack bytes.
func missingPayloads(s *store.Store, x *store.DeltaIndex) (n int, bytes int64) {
	for _, e := range x.Entries {
		switch {
		case e.Kind == store.DeltaDict:
		case e.Kind == store.DeltaChunk && !s.HasChunk(e.Target), e.Kind != store.DeltaChunk && !s.HasObject(e.Target):
			n++
			bytes += e.Length
		}
	}
	return n, bytes
}

// maxEntry returns the largest payload of x.
func maxEntry(x *store.DeltaIndex) int64 {
	var m int64
	for _, e := range x.Entries {
		m = max(m, e.Length)
	}
	return m
}
