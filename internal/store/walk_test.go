package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestWalk(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	root, err := s.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	err = s.Walk(context.Background(), root, func(p string, e Entry, f *FileObject) error {
		paths = append(paths, p)
		if (e.Kind == KindFile) != (f != nil) {
			t.Errorf("%s: kind %c with file object %v", p, e.Kind, f != nil)
		}
		if p == "sub" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"abs-link", "big.bin", "copy.bin", "dangling", "empty", "emptydir", "hello.txt", "link",
		"script.sh", "setgid", "setuid", "sticky", "sub", "text.md", "unicodé ☃.txt"}
	if !slices.Equal(paths, want) {
		t.Errorf("walked %q\nwant %q", paths, want)
	}
	// A missing object stops the walk, named.
	deeper := treeEntry(t, s, treeEntry(t, s, root, "sub").ID, "deeper").ID
	_ = os.Remove(s.ObjectPath(deeper))
	err = s.Walk(context.Background(), root, func(string, Entry, *FileObject) error { return nil })
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "sub/deeper") || !strings.Contains(err.Error(), deeper.String()) {
		t.Errorf("Walk with a missing object: %v", err)
	}
	// A file is not a tree.
	if err := s.Walk(context.Background(), treeEntry(t, s, root, "big.bin").ID, nil); err == nil {
		t.Error("walked a file")
	}
}

// TestMissing takes a complete store, removes parts of it, and checks that Missing lists
// exactly what a transfer must fetch next; then "fetches" it and repeats until nothing is
// missing.
func TestMissing(t *testing.T) {
	t.Parallel()
	full := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	root, err := full.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh store lacks the root, and knows nothing more.
	s := newStore(t)
	objects, chunks, err := s.Missing(context.Background(), root)
	if err != nil || !slices.Equal(objects, []ID{root}) || len(chunks) != 0 {
		t.Fatalf("empty store: %v %v %v", objects, chunks, err)
	}
	// Fetch level by level, as a transfer would: objects first, then the chunks found.
	rounds := 0
	var fetchedChunks int
	for ; len(objects)+len(chunks) > 0; rounds++ {
		for _, id := range objects {
			obj, err := full.Object(id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutObject(obj.Encode()); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range chunks {
			z, err := full.ChunkCompressed(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutChunkCompressed(id, z); err != nil {
				t.Fatal(err)
			}
			fetchedChunks++
		}
		seen := map[ID]bool{}
		for _, id := range chunks {
			if seen[id] {
				t.Errorf("chunk %s listed twice", id)
			}
			seen[id] = true
		}
		if objects, chunks, err = s.Missing(context.Background(), root); err != nil {
			t.Fatal(err)
		}
	}
	if rounds != 5 { // root; its entries; sub's; sub/deeper's; their chunks
		t.Errorf("%d rounds", rounds)
	}
	if fetchedChunks != len(chunkFiles(t, full)) {
		t.Errorf("fetched %d chunks, the store has %d", fetchedChunks, len(chunkFiles(t, full)))
	}
	diffStates(t, storeState(t, s, root), diskState(t, dir))

	// Partially present: a chunk of big.bin, and the tree of sub/deeper, removed; a file
	// object corrupt.
	big, _ := s.File(treeEntry(t, s, root, "big.bin").ID)
	sub := treeEntry(t, s, root, "sub").ID
	deeper := treeEntry(t, s, sub, "deeper").ID
	text := treeEntry(t, s, root, "text.md").ID
	_ = os.Remove(s.ChunkPath(big.Chunks[1].ID))
	_ = os.Remove(s.ObjectPath(deeper))
	flip(t, s.ObjectPath(text), 7)
	objects, chunks, err = s.Missing(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(objects, func(a, b ID) int { return strings.Compare(a.String(), b.String()) })
	wantObjects := []ID{deeper, text}
	slices.SortFunc(wantObjects, func(a, b ID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(objects, wantObjects) || !slices.Equal(chunks, []ID{big.Chunks[1].ID}) {
		t.Errorf("missing objects %v, chunks %v; want %v and %v", objects, chunks, wantObjects, big.Chunks[1].ID)
	}
	// A file root works too.
	objects, chunks, err = s.Missing(context.Background(), treeEntry(t, s, root, "copy.bin").ID)
	if err != nil || len(objects) != 0 || !slices.Equal(chunks, []ID{big.Chunks[1].ID}) {
		t.Errorf("file root: %v %v %v", objects, chunks, err)
	}
}
