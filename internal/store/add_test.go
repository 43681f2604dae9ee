package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// node is an entry of a test tree: a file (content), a directory (dir), or a symlink
// (target).
type node struct {
	dir     bool
	content []byte
	target  string
	mode    fs.FileMode
}

func sampleTree() map[string]node {
	big := randomBytes(10, 700_000) // several chunks
	return map[string]node{
		"empty":                 {content: []byte{}, mode: 0o644},
		"hello.txt":             {content: []byte(vecContent), mode: 0o644},
		"big.bin":               {content: big, mode: 0o600},
		"copy.bin":              {content: big, mode: 0o644},
		"text.md":               {content: textBytes(11, 300_000), mode: 0o644},
		"script.sh":             {content: []byte("#!/bin/sh\necho hi\n"), mode: 0o755},
		"setuid":                {content: []byte("pretend binary"), mode: 0o4755 | fs.ModeSetuid},
		"unicodé ☃.txt":         {content: []byte("snow"), mode: 0o644},
		"sub":                   {dir: true, mode: 0o750},
		"sub/deeper":            {dir: true, mode: 0o700},
		"sub/deeper/note.md":    {content: textBytes(12, 5000), mode: 0o640},
		"sub/deeper/empty-file": {content: []byte{}, mode: 0o600},
		"sub/up":                {target: "../hello.txt"},
		"emptydir":              {dir: true, mode: 0o755},
		"sticky":                {dir: true, mode: 0o1777 | fs.ModeSticky},
		"setgid":                {dir: true, mode: 0o2755 | fs.ModeSetgid},
		"link":                  {target: "hello.txt"},
		"abs-link":              {target: "/etc/passwd"},
		"dangling":              {target: "nowhere/x"},
	}
}

// writeTree creates the nodes below dir with their exact modes.
func writeTree(t testing.TB, dir string, nodes map[string]node) {
	t.Helper()
	paths := slices.Sorted(maps.Keys(nodes))
	for _, p := range paths {
		n, full := nodes[p], filepath.Join(dir, p)
		var err error
		switch {
		case n.dir:
			err = os.MkdirAll(full, 0o755)
		case n.target != "":
			err = os.Symlink(n.target, full)
		default:
			err = os.WriteFile(full, n.content, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(paths) // children before their directory
	for _, p := range paths {
		if n := nodes[p]; n.target == "" {
			if err := os.Chmod(filepath.Join(dir, p), n.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// diskState describes the tree below dir, one line per entry.
func diskState(t testing.TB, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			state[rel] = "l 0000 -> " + target
		case d.IsDir():
			state[rel] = fmt.Sprintf("d %04o", ModeBits(info.Mode()))
		default:
			b, _ := os.ReadFile(p)
			state[rel] = fmt.Sprintf("f %04o %d %s", ModeBits(info.Mode()), len(b), digest(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// storeState describes the tree root in the store as diskState does, reading every file.
func storeState(t testing.TB, s *Store, root ID) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := s.Walk(context.Background(), root, func(p string, e Entry, f *FileObject) error {
		switch e.Kind {
		case KindSymlink:
			state[p] = fmt.Sprintf("l %04o -> %s", e.Mode, e.Target)
		case KindDir:
			state[p] = fmt.Sprintf("d %04o", e.Mode)
		case KindFile:
			if f == nil {
				return fmt.Errorf("%s: no file object", p)
			}
			b := content(t, s, e.ID)
			state[p] = fmt.Sprintf("f %04o %d %s", e.Mode, len(b), digest(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func diffStates(t testing.TB, got, want map[string]string) {
	t.Helper()
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if got[p] != want[p] {
			t.Errorf("%s: store has %q, disk %q", p, got[p], want[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the store only: %q", p, got[p])
		}
	}
}

func TestAddTreeRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	var calls []Progress
	root, err := s.AddTree(context.Background(), dir, func(p Progress) { calls = append(calls, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := diskState(t, dir)
	diffStates(t, storeState(t, s, root), want)
	if want["setuid"] != "f 4755 14 "+digest([]byte("pretend binary")) || want["sticky"] != "d 1777" {
		t.Errorf("the test tree lost its special modes: %q %q", want["setuid"], want["sticky"])
	}

	// Progress ends with the totals; the two copies of big.bin share their chunks.
	last := calls[len(calls)-1]
	var files, bytes int64
	for _, n := range sampleTree() {
		if !n.dir && n.target == "" {
			files++
			bytes += int64(len(n.content))
		}
	}
	if last.Files != files || last.TotalFiles != files || last.Bytes != bytes || last.TotalBytes != bytes {
		t.Errorf("last progress %+v, want %d files, %d bytes", last, files, bytes)
	}
	big, _ := s.File(treeEntry(t, s, root, "big.bin").ID)
	cp, _ := s.File(treeEntry(t, s, root, "copy.bin").ID)
	if len(big.Chunks) < 2 || treeEntry(t, s, root, "big.bin").ID != treeEntry(t, s, root, "copy.bin").ID || !slices.Equal(big.Chunks, cp.Chunks) {
		t.Errorf("big.bin has %d chunks; copy.bin should share its file object", len(big.Chunks))
	}
	if last.ReusedChunks < int64(len(big.Chunks)) {
		t.Errorf("reused %d chunks, want at least the %d of the copy", last.ReusedChunks, len(big.Chunks))
	}
	if last.NewChunks != int64(len(chunkFiles(t, s))) || last.NewObjects != int64(len(storeFiles(t, s))-len(chunkFiles(t, s))) {
		t.Errorf("progress counts %+v, store has %d files", last, len(storeFiles(t, s)))
	}

	// Adding again stores nothing new and gives the same ID.
	before := storeFiles(t, s)
	calls = nil
	again, err := s.AddTree(context.Background(), dir, func(p Progress) { calls = append(calls, p) })
	if err != nil || again != root {
		t.Fatalf("second add: %s, %v; want %s", again, err, root)
	}
	if last := calls[len(calls)-1]; last.NewChunks != 0 || last.NewObjects != 0 || last.StoredBytes != 0 {
		t.Errorf("second add stored %+v", last)
	}
	if after := storeFiles(t, s); !slices.Equal(before, after) {
		t.Errorf("second add changed the store: %d files, then %d", len(before), len(after))
	}
	// The same tree elsewhere has the same ID.
	other := t.TempDir()
	writeTree(t, other, sampleTree())
	if id, err := s.AddTree(context.Background(), other, nil); err != nil || id != root {
		t.Errorf("same tree elsewhere: %s, %v; want %s", id, err, root)
	}
}

func treeEntry(t testing.TB, s *Store, root ID, name string) Entry {
	t.Helper()
	tree, err := s.Tree(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tree.Entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no %s in %s", name, root)
	return Entry{}
}

func chunkFiles(t testing.TB, s *Store) []string {
	var out []string
	for _, f := range storeFiles(t, s) {
		if strings.HasPrefix(f, "chunks/") {
			out = append(out, f)
		}
	}
	return out
}

func TestAddFile(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	data := append(randomBytes(20, 1_000_000), textBytes(21, 1_000_000)...)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var last int64
	id, obj, err := s.AddFile(context.Background(), p, func(b int64) { last = b })
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) || obj.Size != int64(len(data)) || obj.SHA256 != Sum(data) {
		t.Errorf("progress %d, object %d bytes %s", last, obj.Size, obj.SHA256)
	}
	if got := content(t, s, id); !bytes.Equal(got, data) {
		t.Error("content differs")
	}
	// Every chunk within the parameters, the last excepted.
	for i, c := range obj.Chunks {
		if int(c.Length) > DefaultParams.Max || (i < len(obj.Chunks)-1 && int(c.Length) < DefaultParams.Min) {
			t.Errorf("chunk %d: %d bytes, outside %+v", i, c.Length, DefaultParams)
		}
	}
	// An insertion near the start moves only the chunks around it: most are shared.
	edited := append(append(bytes.Clone(data[:5000]), "an insertion"...), data[5000:]...)
	p2 := filepath.Join(dir, "g")
	_ = os.WriteFile(p2, edited, 0o644)
	before := len(chunkFiles(t, s))
	_, obj2, err := s.AddFile(context.Background(), p2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if added := len(chunkFiles(t, s)) - before; added > 3 || added == 0 {
		t.Errorf("an insertion added %d chunks of %d", added, len(obj2.Chunks))
	}
	// Empty file; not a regular file.
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o644)
	if _, obj, err := s.AddFile(context.Background(), empty, nil); err != nil || obj.Size != 0 || len(obj.Chunks) != 0 || obj.SHA256 != Sum(nil) {
		t.Errorf("empty file: %+v, %v", obj, err)
	}
	if _, _, err := s.AddFile(context.Background(), dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("AddFile(dir) = %v", err)
	}
}

func TestAddTreeRefuses(t *testing.T) {
	t.Parallel()
	for name, setup := range map[string]func(dir string) error{
		"fifo": func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "sub", "pipe"), 0o644) },
		"newline in a name": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "sub", "evil\nname"), []byte("x"), 0o644)
		},
		"escape in a name": func(dir string) error {
			return os.Mkdir(filepath.Join(dir, "\x1b[31mred"), 0o755)
		},
		"not UTF-8": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "latin1-\xe9t\xe9"), []byte("x"), 0o644)
		},
		"device": func(dir string) error {
			return syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, 1<<8|3)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "device" && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			s := newStore(t)
			dir := t.TempDir()
			writeTree(t, dir, sampleTree())
			if err := setup(dir); err != nil {
				t.Fatal(err)
			}
			_, err := s.AddTree(context.Background(), dir, nil)
			if err == nil {
				t.Fatal("added")
			}
			for _, want := range []string{"cannot be stored", dir} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			t.Log(err)
			if files := storeFiles(t, s); len(files) != 0 {
				t.Errorf("%d files written before refusing", len(files))
			}
		})
	}
}

func TestAddTreeNotADirectory(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	p := filepath.Join(t.TempDir(), "f")
	_ = os.WriteFile(p, []byte("x"), 0o644)
	if _, err := s.AddTree(context.Background(), p, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("AddTree(file) = %v", err)
	}
	if _, err := s.AddTree(context.Background(), p+"-missing", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddTree(missing) = %v", err)
	}
}

// TestAddTreeSymlinkedDirNotFollowed: a symlink to a directory outside is stored as a link.
func TestAddTreeSymlinkedDirNotFollowed(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	outside := t.TempDir()
	_ = os.WriteFile(filepath.Join(outside, "secret"), []byte("do not read"), 0o600)
	dir := t.TempDir()
	_ = os.Symlink(outside, filepath.Join(dir, "out"))
	root, err := s.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	diffStates(t, storeState(t, s, root), map[string]string{"out": "l 0000 -> " + outside})
	if n := len(chunkFiles(t, s)); n != 0 {
		t.Errorf("%d chunks stored", n)
	}
}

func TestAddCancelled(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AddTree(ctx, dir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("AddTree = %v", err)
	}
	if _, _, err := s.AddFile(ctx, filepath.Join(dir, "big.bin"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("AddFile = %v", err)
	}
	// The lock was released: GC can run.
	if _, err := s.GC(context.Background(), nil); err != nil {
		t.Error(err)
	}
}

// TestAddLargeFileBoundedMemory adds a 256 MiB file (32 MiB under the race detector) and checks that the add allocates a
// small fraction of it, and that the live heap stays small. It does not call t.Parallel:
// runtime.MemStats counts the whole process, and sequential tests run while parallel ones
// are paused, so the measurement sees this test only.
func TestAddLargeFileBoundedMemory(t *testing.T) {
	size := 256 << 20
	if raceEnabled {
		size = 32 << 20 // the race detector slows the add down tenfold
	}
	const allocBudget = 32 << 20
	const heapBudget = 64 << 20
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	s := newStore(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range size / (4 << 20) { // half random, half text, in 4 MiB pieces
		var piece []byte
		if i%2 == 0 {
			piece = randomBytes(uint64(100+i), 4<<20)
		} else {
			piece = textBytes(uint64(100+i), 4<<20)
		}
		if _, err := f.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.Close()
	// Warm up: the encoders allocate their state on first use.
	warm := filepath.Join(dir, "warm")
	_ = os.WriteFile(warm, randomBytes(1, 8<<20), 0o644)
	if _, _, err := s.AddFile(context.Background(), warm, nil); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	peak := m0.HeapAlloc
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample the heap while adding
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
		}
	}()
	start := time.Now()
	id, obj, err := s.AddFile(context.Background(), p, nil)
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(size) {
		t.Fatalf("stored %d bytes", obj.Size)
	}
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("AddFile of %d MiB: %d chunks, %.0f MB/s; allocated %d KiB, peak heap %d KiB (%d KiB before)",
		size>>20, len(obj.Chunks), float64(size)/elapsed.Seconds()/1e6, alloc>>10, peak>>10, m0.HeapAlloc>>10)
	if alloc > allocBudget {
		t.Errorf("AddFile of %d MiB allocated %d MiB, over the %d MiB budget", size>>20, alloc>>20, allocBudget>>20)
	}
	if peak-m0.HeapAlloc > heapBudget {
		t.Errorf("AddFile of %d MiB grew the heap by %d MiB, over the %d MiB budget", size>>20, (peak-m0.HeapAlloc)>>20, heapBudget>>20)
	}
	// Spot-check the content: first and last chunks.
	first, _ := s.Chunk(obj.Chunks[0].ID)
	last, _ := s.Chunk(obj.Chunks[len(obj.Chunks)-1].ID)
	want, _ := os.ReadFile(p)
	if !bytes.Equal(first, want[:len(first)]) || !bytes.Equal(last, want[len(want)-len(last):]) || Sum(want) != obj.SHA256 {
		t.Errorf("file %s: content differs", id)
	}
}

// TestConcurrentAdds: adds of overlapping trees at once, into one store through two
// handles, give the same IDs as adding them alone, and leave a clean store.
func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir)
	tree := t.TempDir()
	writeTree(t, tree, sampleTree())
	alone := newStore(t)
	want, err := alone.AddTree(context.Background(), tree, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]ID, 6)
	errs := make([]error, 6)
	done := make(chan struct{})
	for i := range ids {
		go func() {
			defer func() { done <- struct{}{} }()
			s := s1
			if i%2 == 1 {
				s = s2
			}
			ids[i], errs[i] = s.AddTree(context.Background(), tree, nil)
		}()
	}
	for range ids {
		<-done
	}
	for i := range ids {
		if errs[i] != nil || ids[i] != want {
			t.Errorf("add %d: %s, %v; want %s", i, ids[i], errs[i], want)
		}
	}
	if got, want := storeFiles(t, s1), storeFiles(t, alone); len(got) != len(want) {
		t.Errorf("store holds %d files, want %d (no temporary files, no duplicates)", len(got), len(want))
	}
	if rep, err := s1.Verify(context.Background(), nil); err != nil || len(rep.Corrupt) != 0 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}
