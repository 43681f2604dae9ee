package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Whoever may write in a tree's directory (the user a library belongs to) replaces a
// subdirectory with a symlink out of it while the run writes files: the writes meant for
// that subdirectory must not follow it out (the run fails, or writes inside the tree's
// directory), and nothing outside changes.
func TestMaterializeTreeSymlinkSwappedDuringRun(t *testing.T) {
	s := newStore(t)
	v1 := addNodes(t, s, map[string]node{
		"a": {dir: true, mode: 0o755}, "a/f.txt": {content: []byte("a1"), mode: 0o644},
		"b": {dir: true, mode: 0o755}, "b/g.txt": {content: []byte("b1"), mode: 0o644},
	})
	v2 := addNodes(t, s, map[string]node{
		"a": {dir: true, mode: 0o755}, "a/f.txt": {content: []byte("a2"), mode: 0o644},
		"b": {dir: true, mode: 0o755}, "b/g.txt": {content: []byte("b2"), mode: 0o644},
		"b/new.txt": {content: []byte("new"), mode: 0o644},
	})
	target := t.TempDir()
	materialize(t, s, v1, TreeOptions{}, target)
	outside := filepath.Join(target, "outside") // inside the caller's root, outside the tree
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "g.txt"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(target, "lib")
	swapped := false
	opts := TreeOptions{Progress: func(TreeProgress) {
		if swapped { // after the first file written, before b's
			return
		}
		swapped = true
		if err := os.Rename(filepath.Join(lib, "b"), filepath.Join(lib, "b.moved")); err != nil {
			t.Error(err)
		}
		if err := os.Symlink("/outside", filepath.Join(lib, "b")); err != nil {
			t.Error(err)
		}
	}}
	_, r := matRootAt(t, target)
	_, err := s.MaterializeTree(context.Background(), r, "/lib", v2, opts)
	if !swapped {
		t.Fatal("the swap did not happen: the test proves nothing")
	}
	t.Logf("run: %v", err)
	names, rerr := os.ReadDir(outside)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(names) != 1 || names[0].Name() != "g.txt" {
		var got []string
		for _, n := range names {
			got = append(got, n.Name())
		}
		t.Errorf("outside the tree: %v, want g.txt alone", got)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "g.txt")); string(b) != "precious" {
		t.Errorf("a file outside the tree was written: %q", b)
	}
}
