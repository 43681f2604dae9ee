package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The content store may lie below a tree's directory (a tree at /var/lib, the store in
// /var/lib/satchel/store): neither Purge nor a tree's entries may remove it, replace it, or
// what holds it, and a tree is never materialized into the store itself.
func TestMaterializeTreeNeverTouchesStore(t *testing.T) {
	nodes := map[string]node{"a.txt": {content: []byte("a"), mode: 0o644}}
	setup := func(t *testing.T) (dir string, s *Store, id ID) {
		dir = t.TempDir()
		var err error
		if s, err = Open(filepath.Join(dir, "lib", "state", "store")); err != nil {
			t.Fatal(err)
		}
		writeTree(t, filepath.Join(dir, "lib", "state"), map[string]node{"backup.db": {content: []byte("b"), mode: 0o600}})
		return dir, s, addNodes(t, s, nodes)
	}
	intact := func(t *testing.T, dir string, s *Store, id ID) {
		t.Helper()
		if _, err := s.Tree(id); err != nil {
			t.Errorf("the store lost the tree: %v", err)
		}
		if got, want := len(storeFiles(t, s)), 2; got < want {
			t.Errorf("store files left: %d", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "lib", "state", "backup.db")); err != nil {
			t.Errorf("the directory holding the store lost a file: %v", err)
		}
	}

	t.Run("purge", func(t *testing.T) {
		dir, s, id := setup(t)
		_, r := matRootAt(t, dir)
		if _, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{Purge: true}); err != nil {
			t.Fatal(err)
		}
		intact(t, dir, s, id)
		if b, err := os.ReadFile(filepath.Join(dir, "lib", "a.txt")); err != nil || string(b) != "a" {
			t.Errorf("a.txt: %q, %v", b, err)
		}
	})

	t.Run("replaced by an entry", func(t *testing.T) {
		for _, e := range []node{{content: []byte("x"), mode: 0o644}, {target: "/nowhere"}} {
			dir, s, _ := setup(t)
			hostile := addNodes(t, s, map[string]node{"state": e})
			_, r := matRootAt(t, dir)
			_, err := s.MaterializeTree(context.Background(), r, "/lib", hostile, TreeOptions{Purge: true})
			if err == nil || !strings.Contains(err.Error(), "content store") {
				t.Errorf("error %v, want one about the content store", err)
			}
			intact(t, dir, s, hostile)
		}
	})

	t.Run("into the store", func(t *testing.T) {
		for _, target := range []string{"/lib/state/store", "/lib/state/store/chunks", "/lib/state/store/new"} {
			dir, s, id := setup(t)
			_, r := matRootAt(t, dir)
			_, err := s.MaterializeTree(context.Background(), r, target, id, TreeOptions{Purge: true})
			if err == nil || !strings.Contains(err.Error(), "inside the content store") {
				t.Errorf("%s: error %v, want 'inside the content store'", target, err)
			}
			intact(t, dir, s, id)
		}
	})
}

// chainTree stores depth directories nested in one another, each holding width names for
// the next one down, and returns the top one.
func chainTree(t testing.TB, s *Store, depth, width int, name string) ID {
	t.Helper()
	id, err := s.PutObject((&TreeObject{}).Encode())
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		var tr TreeObject
		for i := range width {
			tr.Entries = append(tr.Entries, Entry{Name: name + string(rune('a'+i)), Kind: KindDir, Mode: 0o755, ID: id})
		}
		if id, err = s.PutObject(tr.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// A few crafted tree objects can name a path too long to write, or expand (one subtree
// under two names, level after level) to more paths than memory holds: the plan refuses
// them, a dry run included, before writing anything.
func TestMaterializeTreeBounds(t *testing.T) {
	s := newStore(t)
	t.Run("deep", func(t *testing.T) {
		id := chainTree(t, s, 100, 1, strings.Repeat("d", 50)) // 5 kB of path
		for _, dry := range []bool{true, false} {
			dir := t.TempDir()
			_, r := matRootAt(t, dir)
			_, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{DryRun: dry})
			if err == nil || !strings.Contains(err.Error(), "path longer than") {
				t.Errorf("dry run %v: error %v, want 'path longer than'", dry, err)
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("dry run %v: written: %v", dry, names)
			}
		}
	})
	t.Run("wide", func(t *testing.T) {
		defer func(n int) { maxPlanOps = n }(maxPlanOps)
		maxPlanOps = 1000
		id := chainTree(t, s, 12, 2, "w") // 8190 directories from 13 objects
		dir := t.TempDir()
		_, r := matRootAt(t, dir)
		_, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{DryRun: true})
		if err == nil || !strings.Contains(err.Error(), "more than 1000 entries") {
			t.Errorf("error %v, want 'more than 1000 entries'", err)
		}
	})
}

// setImmutable sets or clears the immutable flag of p (chattr +i), which makes unlink fail
// even for root.
func setImmutable(p string, on bool) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	const immutableFL = 0x10 // FS_IMMUTABLE_FL, linux/fs.h
	if on {
		flags |= immutableFL
	} else {
		flags &^= immutableFL
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
}

// A directory that a new file replaces is never left half-emptied: when it cannot be
// removed completely (here a file in it is immutable; a crash would do the same), the new
// file is in place and the old directory out of the tree under a temporary name, which a
// later run removes.
func TestMaterializeTreeReplacedDirNotHalfRemoved(t *testing.T) {
	s := newStore(t)
	id := addNodes(t, s, map[string]node{"x": {content: []byte("now a file"), mode: 0o644}})
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	writeTree(t, lib, map[string]node{
		"x":   {dir: true, mode: 0o755},
		"x/a": {content: []byte("a"), mode: 0o644},
		"x/z": {content: []byte("z"), mode: 0o644},
	})
	immutable := filepath.Join(lib, "x", "z")
	if err := setImmutable(immutable, true); err != nil {
		t.Skipf("cannot make a file immutable here: %v", err)
	}
	t.Cleanup(func() { // wherever it went
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				_ = setImmutable(p, false)
			}
			return nil
		})
	})

	_, r := matRootAt(t, dir)
	_, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{})
	if err == nil {
		t.Fatal("no error, though the old directory could not be removed")
	}
	got := diskState(t, lib)
	if got["x"] == "d 0755" {
		if got["x/a"] == "" || got["x/z"] == "" {
			t.Fatalf("the old directory is half removed: %v (%v)", got, err)
		}
		return // the old version, whole: fine too
	}
	if b, rerr := os.ReadFile(filepath.Join(lib, "x")); rerr != nil || string(b) != "now a file" {
		t.Fatalf("x: %q, %v", b, rerr)
	}
	aside := tempFiles(t, lib)
	if len(aside) != 1 || !strings.Contains(err.Error(), "replaced directory") {
		t.Fatalf("old directory aside: %v; error %v", aside, err)
	}
	// A later run (another process: the name says so) removes it once it can.
	if err := setImmutable(filepath.Join(aside[0], "z"), false); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside[0], filepath.Join(lib, ".x.satchel-999999-t1")); err != nil {
		t.Fatal(err)
	}
	st, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{})
	if err != nil || st.TempRemoved != 1 || len(tempFiles(t, lib)) != 0 {
		t.Errorf("next run: %v, %d temporary removed, left %v", err, st.TempRemoved, tempFiles(t, lib))
	}
}

// Names may be 255 bytes long: the temporary names made beside them must fit too.
func TestMaterializeLongNames(t *testing.T) {
	s := newStore(t)
	long := strings.Repeat("é", 127) + "x" // 255 bytes
	nodes := map[string]node{
		long:             {content: []byte("file"), mode: 0o644},
		long[:254] + "d": {dir: true, mode: 0o755},
		long[:254] + "l": {target: "somewhere"},
	}
	id := addNodes(t, s, nodes)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	materialize(t, s, id, TreeOptions{}, dir)
	assertState(t, "materialized", diskState(t, filepath.Join(dir, "lib")), storeState(t, s, id))

	_, r := matRootAt(t, dir)
	f, err := s.File(treeEntry(t, s, id, long).ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MaterializeFile(context.Background(), r, "/"+long, f, 0o644, -1, -1, nil); err != nil {
		t.Errorf("MaterializeFile: %v", err)
	}
}

// A directory carrying deltas (a USB stick, a copy) may hold anything under a delta's
// names: a huge index, a FIFO, a symlink to a device. ApplyDelta refuses them at once,
// without reading them whole, blocking, or reading forever.
func TestApplyDeltaHostileFiles(t *testing.T) {
	srv, cli, v1, v2 := smallDelta(t)
	idx, pack := DeltaIndexPath(v1, v2), DeltaPackPath(v1, v2)
	cases := map[string]func(dir string) error{
		"huge index": func(dir string) error {
			return os.Truncate(filepath.Join(dir, idx), MaxDeltaIndexFile+1) // sparse
		},
		"index is a FIFO": func(dir string) error {
			_ = os.Remove(filepath.Join(dir, idx))
			return unix.Mkfifo(filepath.Join(dir, idx), 0o644)
		},
		"index is a device": func(dir string) error {
			_ = os.Remove(filepath.Join(dir, idx))
			return os.Symlink("/dev/zero", filepath.Join(dir, idx))
		},
		"pack is a FIFO": func(dir string) error {
			_ = os.Remove(filepath.Join(dir, pack))
			return unix.Mkfifo(filepath.Join(dir, pack), 0o644)
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			dir := mirror(t, srv, v1, v2, nil, nil)
			if err := change(dir); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := cli.ApplyDelta(context.Background(), dir, v1, v2)
				done <- err
			}()
			select {
			case err := <-done:
				want := "not a regular file"
				if name == "huge index" {
					want = "larger than any delta index"
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v, want %q", err, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ApplyDelta still reading after 10s")
			}
		})
	}
}

// A received chunk or object whose stored form carries more than its content (skippable
// frames, empty frames: zstd skips them and the hash cannot see them) is refused: a hostile
// server could otherwise make every 64 KiB chunk take 64 MiB of this store's disk.
func TestPutCompressedPadded(t *testing.T) {
	s := newStore(t)
	skippable := binary.LittleEndian.AppendUint32(nil, 0x184D2A50)
	skippable = binary.LittleEndian.AppendUint32(skippable, 1<<20)
	skippable = append(skippable, make([]byte, 1<<20)...)
	var empties []byte
	for range 1000 {
		empties = append(empties, s.enc.EncodeAll(nil, nil)...)
	}
	plain := randomBytes(5, 1000)
	object := (&TreeObject{Entries: []Entry{{Name: "x", Kind: KindSymlink, Target: "y"}}}).Encode()
	for name, pad := range map[string][]byte{"skippable frame": skippable, "empty frames": empties} {
		t.Run(name, func(t *testing.T) {
			// The padding is valid: a plain decoder takes it.
			for _, before := range []bool{false, true} {
				pack := func(content []byte) []byte {
					frame := s.enc.EncodeAll(content, nil)
					if before {
						return seal(append(append([]byte(nil), pad...), frame...))
					}
					return seal(append(frame, pad...))
				}
				z := pack(plain)
				if got, err := s.chunkDec.DecodeAll(z[:len(z)-sealSize], nil); err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("padded chunk does not decode: %v", err)
				}
				if err := s.PutChunkCompressed(Sum(plain), z); !errors.Is(err, ErrCorrupt) || s.HasChunk(Sum(plain)) {
					t.Errorf("padding before=%v: chunk of %d bytes: %v", before, len(z), err)
				}
				if err := s.PutObjectCompressed(Sum(object), pack(object)); !errors.Is(err, ErrCorrupt) || s.HasObject(Sum(object)) {
					t.Errorf("padding before=%v: object: %v", before, err)
				}
			}
		})
	}
	// Unpadded, both are taken.
	if err := s.PutChunkCompressed(Sum(plain), seal(s.enc.EncodeAll(plain, nil))); err != nil {
		t.Error(err)
	}
	if err := s.PutObjectCompressed(Sum(object), seal(s.enc.EncodeAll(object, nil))); err != nil {
		t.Error(err)
	}
}
