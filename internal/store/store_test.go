package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1})
	_, _ = r.Read(b)
	return b
}

// textBytes returns n deterministic bytes of compressible text.
func textBytes(seed uint64, n int) []byte {
	words := []string{"satchel", "chunk", "store", "tree", "school", "library", "content", "the", "a", "of", "mirror", "link\n"}
	r := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// storeFiles lists the chunk and object files in the store, relative to it.
func storeFiles(t testing.TB, s *Store) []string {
	t.Helper()
	var files []string
	for _, kind := range []string{chunksDir, objectsDir} {
		err := filepath.WalkDir(filepath.Join(s.Dir(), kind), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(s.Dir(), p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// content reads a file back from the store, checking its size and hash.
func content(t testing.TB, s *Store, id ID) []byte {
	t.Helper()
	f, err := s.File(id)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range f.Chunks {
		data, err := s.Chunk(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != int(c.Length) {
			t.Fatalf("chunk %s: %d bytes, the file object says %d", c.ID, len(data), c.Length)
		}
		b = append(b, data...)
	}
	if int64(len(b)) != f.Size || Sum(b) != f.SHA256 {
		t.Fatalf("file %s: content does not match its object", id)
	}
	return b
}

func TestChunkRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for i, data := range [][]byte{[]byte("x"), textBytes(1, 100_000), randomBytes(2, 300_000)} {
		id, err := s.PutChunk(data)
		if err != nil {
			t.Fatal(err)
		}
		if id != Sum(data) || !s.HasChunk(id) {
			t.Fatalf("chunk %d: id %s, present %v", i, id, s.HasChunk(id))
		}
		got, err := s.Chunk(id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunk %d: read back %d bytes, %v", i, len(got), err)
		}
		info, err := os.Stat(s.ChunkPath(id))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o644 {
			t.Errorf("chunk file mode %v, want 0644 (served by any static server)", info.Mode())
		}
		wantPath := filepath.Join(s.Dir(), "chunks", id.String()[:2], id.String()+".zst")
		if s.ChunkPath(id) != wantPath {
			t.Errorf("ChunkPath = %s, want %s", s.ChunkPath(id), wantPath)
		}
	}
	if _, err := s.PutChunk(nil); err == nil {
		t.Error("an empty chunk was stored")
	}
	for _, d := range []string{"", "chunks", "objects", "chunks/" + Sum([]byte("x")).String()[:2]} {
		info, err := os.Stat(filepath.Join(s.Dir(), d))
		if err != nil || info.Mode().Perm() != 0o755 {
			t.Errorf("%s/%s: %v %v, want a 0755 directory", s.Dir(), d, info.Mode(), err)
		}
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	// Two handles stand for two processes.
	var stores [2]*Store
	for i := range stores {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	data := textBytes(3, 200_000)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if _, err := stores[i%2].PutChunk(data); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if files := storeFiles(t, stores[0]); len(files) != 1 {
		t.Errorf("store holds %v, want one chunk and no temporary file", files)
	}
	if got, err := stores[1].Chunk(Sum(data)); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back: %v", err)
	}
}

func TestPutChunkCompressed(t *testing.T) {
	t.Parallel()
	src, dst := newStore(t), newStore(t)
	data := textBytes(4, 50_000)
	id, err := src.PutChunk(data)
	if err != nil {
		t.Fatal(err)
	}
	z, err := src.ChunkCompressed(id)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(src.ChunkPath(id)); !bytes.Equal(raw, z) {
		t.Error("ChunkCompressed is not the stored file")
	}
	// Tampered bytes, or bytes of another chunk, are refused and not stored.
	bad := bytes.Clone(z)
	bad[len(bad)/2] ^= 1
	if err := dst.PutChunkCompressed(id, bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tampered: %v, want ErrCorrupt", err)
	}
	other := Sum([]byte("other"))
	if err := dst.PutChunkCompressed(other, z); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), other.String()) {
		t.Errorf("mislabelled: %v, want ErrCorrupt naming %s", err, other)
	}
	if err := dst.PutChunkCompressed(id, data); !errors.Is(err, ErrCorrupt) {
		t.Errorf("not compressed: %v, want ErrCorrupt", err)
	}
	if files := storeFiles(t, dst); len(files) != 0 {
		t.Fatalf("refused chunks were stored: %v", files)
	}
	if err := dst.PutChunkCompressed(id, z); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.Chunk(id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back: %v", err)
	}
}

func TestObjects(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	fenc := vectorFile(t).Encode()
	fid, err := s.PutObject(fenc)
	if err != nil || fid.String() != vecFileID {
		t.Fatalf("PutObject(file) = %s, %v", fid, err)
	}
	tid, err := s.PutObject(vectorTree(t).Encode())
	if err != nil || tid.String() != vecTreeID {
		t.Fatalf("PutObject(tree) = %s, %v", tid, err)
	}
	if f, err := s.File(fid); err != nil || !bytes.Equal(f.Encode(), fenc) {
		t.Errorf("File: %v", err)
	}
	if tr, err := s.Tree(tid); err != nil || len(tr.Entries) != 4 {
		t.Errorf("Tree: %v", err)
	}
	if _, err := s.Tree(fid); err == nil || !strings.Contains(err.Error(), "is a file, not a tree") {
		t.Errorf("Tree(file) = %v", err)
	}
	if _, err := s.File(tid); err == nil || !strings.Contains(err.Error(), "is a tree, not a file") {
		t.Errorf("File(tree) = %v", err)
	}
	// Invalid objects are never stored.
	for _, bad := range [][]byte{nil, []byte("hello"), append(bytes.Clone(fenc), 0), unhex(t, "5354010201610a0000")} {
		if id, err := s.PutObject(bad); err == nil || !errors.Is(err, ErrMalformed) || s.HasObject(id) {
			t.Errorf("PutObject(%x) = %v", bad, err)
		}
	}
	if files := storeFiles(t, s); len(files) != 2 {
		t.Errorf("store holds %v", files)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := Sum([]byte("never stored"))
	for name, get := range map[string]func(ID) error{
		"Chunk":            func(id ID) error { _, err := s.Chunk(id); return err },
		"ChunkCompressed":  func(id ID) error { _, err := s.ChunkCompressed(id); return err },
		"File":             func(id ID) error { _, err := s.File(id); return err },
		"Tree":             func(id ID) error { _, err := s.Tree(id); return err },
		"ObjectCompressed": func(id ID) error { _, err := s.ObjectCompressed(id); return err },
	} {
		if err := get(id); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), id.String()) {
			t.Errorf("%s: %v, want ErrNotFound naming %s", name, err, id)
		}
	}
}

// corruptions of a stored file, applied one at a time to a fresh copy.
type corruption struct {
	name  string
	apply func([]byte) []byte
}

func corruptions(orig []byte, everyByte bool) []corruption {
	var cs []corruption
	positions := []int{0, 1, 2, 3, 4, 5, 6, len(orig) / 3, len(orig) / 2, len(orig) - 2, len(orig) - 1}
	if everyByte {
		positions = positions[:0]
		for i := range orig {
			positions = append(positions, i)
		}
	}
	for _, i := range positions {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			cs = append(cs, corruption{fmt.Sprintf("byte %d ^ %#x", i, mask), func(b []byte) []byte { b[i] ^= mask; return b }})
		}
	}
	for _, n := range []int{0, 1, len(orig) / 2, len(orig) - 1} {
		cs = append(cs, corruption{fmt.Sprintf("truncated to %d", n), func(b []byte) []byte { return b[:n] }})
	}
	cs = append(cs, corruption{"a byte appended", func(b []byte) []byte { return append(b, 0) }})
	return cs
}

// TestCorruptionDetected flips bytes in stored chunk and object files (every byte of small
// ones, a few positions of a large one), truncates them, and checks that every reader
// detects it, names the ID and the file, moves the file to quarantine, and that the content
// can then be stored again.
func TestCorruptionDetected(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	small := textBytes(5, 3000)
	large := append(textBytes(6, 100_000), randomBytes(7, 100_000)...)
	smallID, _ := s.PutChunk(small)
	largeID, _ := s.PutChunk(large)
	fileID, _ := s.PutObject(vectorFile(t).Encode())
	treeID, _ := s.PutObject(vectorTree(t).Encode())

	type target struct {
		name      string
		path      string
		id        ID
		everyByte bool
		read      func() error
		restore   func() error
	}
	readChunk := func(id ID) func() error { return func() error { _, err := s.Chunk(id); return err } }
	targets := []target{
		{"small chunk", s.ChunkPath(smallID), smallID, true, readChunk(smallID), func() error { _, err := s.PutChunk(small); return err }},
		{"large chunk", s.ChunkPath(largeID), largeID, false, readChunk(largeID), func() error { _, err := s.PutChunk(large); return err }},
		{"large chunk, served", s.ChunkPath(largeID), largeID, false,
			func() error { _, err := s.ChunkCompressed(largeID); return err }, func() error { _, err := s.PutChunk(large); return err }},
		{"file object", s.ObjectPath(fileID), fileID, true,
			func() error { _, err := s.File(fileID); return err }, func() error { _, err := s.PutObject(vectorFile(t).Encode()); return err }},
		{"tree object", s.ObjectPath(treeID), treeID, true,
			func() error { _, err := s.Tree(treeID); return err }, func() error { _, err := s.PutObject(vectorTree(t).Encode()); return err }},
	}
	for _, tg := range targets {
		orig, err := os.ReadFile(tg.path)
		if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(tg.path, s.Dir()+"/")
		kind := strings.TrimSuffix(strings.SplitN(rel, "/", 2)[0], "s")
		quarantined := filepath.Join(s.Dir(), "quarantine", kind+"s", filepath.Base(tg.path))
		for _, c := range corruptions(orig, tg.everyByte) {
			if err := os.WriteFile(tg.path, c.apply(bytes.Clone(orig)), 0o644); err != nil {
				t.Fatal(err)
			}
			err := tg.read()
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tg.id.String()) || !strings.Contains(err.Error(), tg.path) ||
				!strings.Contains(err.Error(), kind) {
				t.Fatalf("%s, %s: %v; want ErrCorrupt naming the %s %s and %s", tg.name, c.name, err, kind, tg.id, tg.path)
			}
			if !strings.Contains(err.Error(), "moved to "+quarantined) {
				t.Fatalf("%s, %s: %v; want it moved to %s", tg.name, c.name, err, quarantined)
			}
			if _, err := os.Stat(tg.path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s, %s: the corrupt file is still in place", tg.name, c.name)
			}
			if _, err := os.Stat(quarantined); err != nil {
				t.Fatalf("%s, %s: not in quarantine: %v", tg.name, c.name, err)
			}
			if err := tg.read(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s, %s: after quarantine: %v, want ErrNotFound", tg.name, c.name, err)
			}
			if err := tg.restore(); err != nil {
				t.Fatal(err)
			}
			if err := tg.read(); err != nil {
				t.Fatalf("%s, %s: stored again: %v", tg.name, c.name, err)
			}
		}
	}
}

// TestQuarantineKeepsNewCopy: a reader that found a corrupt file does not move away a good
// copy written meanwhile.
func TestQuarantineKeepsNewCopy(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	data := textBytes(8, 10_000)
	id, _ := s.PutChunk(data)
	p := s.ChunkPath(id)
	read, _ := os.Lstat(p)
	// The good copy replaces the file that was read.
	good, _ := os.ReadFile(p)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	err := s.corrupt(chunksDir, id, p, read, errors.New("test"))
	if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "moved to") {
		t.Errorf("corrupt() = %v", err)
	}
	if got, err := s.Chunk(id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("the good copy is gone: %v", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	root, err := s.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	rep, err := s.Verify(context.Background(), func(p Progress) { last = p })
	if err != nil || len(rep.Corrupt) != 0 {
		t.Fatalf("clean store: %+v, %v", rep, err)
	}
	files := storeFiles(t, s)
	if rep.Chunks+rep.Objects != len(files) || last.Files != int64(len(files)) || last.TotalFiles != last.Files || last.Bytes != rep.Bytes {
		t.Errorf("report %+v, progress %+v, for %d files", rep, last, len(files))
	}

	// Corrupt one chunk and one object; leave a temporary file and a stray file.
	tree, _ := s.Tree(root)
	var chunk, object ID
	for _, e := range tree.Entries {
		if e.Kind == KindFile && chunk.IsZero() {
			f, _ := s.File(e.ID)
			if len(f.Chunks) > 0 {
				chunk, object = f.Chunks[0].ID, e.ID
			}
		}
	}
	flip(t, s.ChunkPath(chunk), 10)
	flip(t, s.ObjectPath(object), 3)
	_ = os.WriteFile(filepath.Join(s.Dir(), "chunks", "00", ".tmp-123"), []byte("partial"), 0o644)
	_ = os.WriteFile(filepath.Join(s.Dir(), "chunks", "README"), []byte("stray"), 0o644)
	rep, err = s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range rep.Corrupt {
		got[d.Kind+" "+d.ID.String()] = d.Path
		if !errors.Is(d.Err, ErrCorrupt) || !strings.Contains(d.Err.Error(), d.Path) {
			t.Errorf("damage %+v", d)
		}
	}
	want := map[string]string{"chunk " + chunk.String(): s.ChunkPath(chunk), "object " + object.String(): s.ObjectPath(object)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("corrupt = %v, want %v", got, want)
	}
	// Moved aside: the store now lacks them, and says so.
	objects, chunks, err := s.Missing(context.Background(), root)
	if err != nil || !slices.Contains(objects, object) {
		t.Errorf("Missing = %v, %v, %v", objects, chunks, err)
	}
	if rep, err := s.Verify(context.Background(), nil); err != nil || len(rep.Corrupt) != 0 {
		t.Errorf("second verify: %+v, %v", rep, err)
	}
	// Adding the tree again repairs the store.
	if _, err := s.AddTree(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if objects, chunks, err := s.Missing(context.Background(), root); err != nil || len(objects)+len(chunks) != 0 {
		t.Errorf("after re-adding: missing %v %v, %v", objects, chunks, err)
	}
}

func flip(t testing.TB, p string, at int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// digest is a short name for test output.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum[:6])
}

// TestStoredFileIsPlainZstd: a stored file is a zstd file any decoder reads (the seal is a
// skippable frame), so a node can fetch it from a static server and check it by hand.
func TestStoredFileIsPlainZstd(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	data := textBytes(40, 100_000)
	id, _ := s.PutChunk(data)
	raw, err := os.ReadFile(s.ChunkPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.chunkDec.DecodeAll(raw, nil); err != nil || !bytes.Equal(got, data) {
		t.Errorf("DecodeAll of the whole file: %v", err)
	}
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("no zstd command")
	}
	out, err := exec.Command(zstd, "-dc", s.ChunkPath(id)).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Errorf("zstd -dc: %d bytes, %v", len(out), err)
	}
}
