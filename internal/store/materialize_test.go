package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// matRoot returns a fresh directory opened as a root.
func matRoot(t testing.TB) (string, *fsroot.Root) {
	t.Helper()
	dir := t.TempDir()
	root, err := fsroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// addBytes stores data as a file and returns its object.
func addBytes(t testing.TB, s *Store, data []byte) (ID, *FileObject) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id, f, err := s.AddFile(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id, f
}

// edited returns a copy of data with n bytes changed at off.
func edited(data []byte, off, n int) []byte {
	out := slices.Clone(data)
	for i := off; i < off+n && i < len(out); i++ {
		out[i] ^= 0x5a
	}
	return out
}

// removeChunks deletes the chunk files of ids from the store, as a node that never fetched
// them would lack them.
func removeChunks(t testing.TB, s *Store, ids []ID) {
	t.Helper()
	for _, id := range ids {
		if err := os.Remove(s.ChunkPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// chunkIDs returns the IDs of f's chunks.
func chunkIDs(f *FileObject) []ID {
	var ids []ID
	for _, c := range f.Chunks {
		ids = append(ids, c.ID)
	}
	return ids
}

// newChunkBytes returns the bytes of the chunks of f that old does not have.
func newChunkBytes(f, old *FileObject) int64 {
	have := map[ID]bool{}
	for _, c := range old.Chunks {
		have[c.ID] = true
	}
	var n int64
	for _, c := range f.Chunks {
		if !have[c.ID] {
			n += int64(c.Length)
			have[c.ID] = true
		}
	}
	return n
}

// tempFiles lists the temporary files (".NAME.satchel-…") below dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".satchel-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestMaterializeFile(t *testing.T) {
	s := newStore(t)
	dir, root := matRoot(t)
	data := randomBytes(1, 900_000)
	_, f := addBytes(t, s, data)
	ctx := context.Background()

	st, err := s.MaterializeFile(ctx, root, "/out.bin", f, 0o640, -1, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if info, _ := os.Stat(filepath.Join(dir, "out.bin")); info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", info.Mode())
	}
	if st.Bytes != int64(len(data)) || st.FromStore != int64(len(data)) || st.FromSeeds != 0 || st.StoreChunks != len(f.Chunks) {
		t.Errorf("stats %+v", st)
	}

	// A new version over the old, with the old as a seed: only the changed chunks come
	// from the store.
	data2 := edited(data, 400_000, 100)
	_, f2 := addBytes(t, s, data2)
	seeds := NewSeeds(root)
	defer seeds.Close()
	seeds.AddFile("/out.bin", f)
	st, err = s.MaterializeFile(ctx, root, "/out.bin", f2, 0o644, -1, -1, seeds)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "out.bin"))
	if !bytes.Equal(got, data2) {
		t.Fatal("content differs")
	}
	want := newChunkBytes(f2, f)
	if st.FromStore != want || st.FromSeeds != int64(len(data2))-want {
		t.Errorf("from store %d, from seeds %d; want %d and %d", st.FromStore, st.FromSeeds, want, int64(len(data2))-want)
	}
	if want == 0 || want > 300_000 {
		t.Errorf("a 100-byte edit changed %d bytes of chunks", want)
	}
	if tf := tempFiles(t, dir); len(tf) > 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}

// The chunks the store lacks but the old version holds need not be fetched; without the
// seed they are reported, before anything is written.
func TestMaterializeFileMissingChunks(t *testing.T) {
	s := newStore(t)
	dir, root := matRoot(t)
	ctx := context.Background()
	data := randomBytes(2, 800_000)
	_, f := addBytes(t, s, data)
	if _, err := s.MaterializeFile(ctx, root, "/old.bin", f, 0o644, -1, -1, nil); err != nil {
		t.Fatal(err)
	}
	data2 := edited(data, 10, 50)
	_, f2 := addBytes(t, s, data2)
	removeChunks(t, s, chunkIDs(f)) // the node fetched only what v2 adds

	_, err := s.MaterializeFile(ctx, root, "/new.bin", f2, 0o644, -1, -1, nil)
	var me *MissingError
	if !errors.As(err, &me) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want a MissingError", err)
	}
	if len(me.Chunks) != len(f2.Chunks)-1 || !strings.Contains(err.Error(), "neither in the store nor in local files") {
		t.Errorf("missing %d chunks (%v), want %d", len(me.Chunks), err, len(f2.Chunks)-1)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new.bin")); !errors.Is(err, fs.ErrNotExist) || len(tempFiles(t, dir)) > 0 {
		t.Error("something was written")
	}

	seeds := NewSeeds(root)
	defer seeds.Close()
	if err := seeds.AddLocal(ctx, "/old.bin"); err != nil { // no file object: chunk it
		t.Fatal(err)
	}
	st, err := s.MaterializeFile(ctx, root, "/new.bin", f2, 0o644, -1, -1, seeds)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "new.bin")); !bytes.Equal(got, data2) {
		t.Fatal("content differs")
	}
	if st.StoreChunks != 1 {
		t.Errorf("%d chunks from the store, want 1", st.StoreChunks)
	}
}

// A seed that changed since it was indexed is not used: the chunk comes from the store, or
// the materialization fails and leaves the target as it was.
func TestMaterializeFileSeedChanged(t *testing.T) {
	s := newStore(t)
	dir, root := matRoot(t)
	ctx := context.Background()
	data := randomBytes(3, 500_000)
	_, f := addBytes(t, s, data)
	if err := os.WriteFile(filepath.Join(dir, "seed"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds := NewSeeds(root)
	defer seeds.Close()
	seeds.AddFile("/seed", f)
	// The seed changes after it was indexed.
	if err := os.WriteFile(filepath.Join(dir, "seed"), edited(data, 0, len(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := s.MaterializeFile(ctx, root, "/target", f, 0o644, -1, -1, seeds)
	if err != nil {
		t.Fatal(err)
	}
	if st.FromSeeds != 0 || st.FromStore != int64(len(data)) {
		t.Errorf("stats %+v: a changed seed was used", st)
	}
	if n, _ := seeds.Len(); n != 0 {
		t.Errorf("%d chunks still indexed in a changed seed", n)
	}

	// Again, with the store lacking the chunks: a clear failure, target untouched.
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds2 := NewSeeds(root)
	defer seeds2.Close()
	seeds2.AddFile("/seed", f)
	removeChunks(t, s, chunkIDs(f))
	_, err = s.MaterializeFile(ctx, root, "/target", f, 0o644, -1, -1, seeds2)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "target")); string(got) != "old" {
		t.Errorf("target is %q, want it untouched", got[:min(len(got), 20)])
	}
	if tf := tempFiles(t, dir); len(tf) > 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}

// A corrupt chunk in the store is detected and named; the target keeps serving its old
// content and no temporary file is left.
func TestMaterializeFileCorruptChunk(t *testing.T) {
	s := newStore(t)
	dir, root := matRoot(t)
	data := randomBytes(4, 600_000)
	_, f := addBytes(t, s, data)
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte("old version"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := f.Chunks[len(f.Chunks)/2].ID
	flip(t, s.ChunkPath(bad), 20)
	_, err := s.MaterializeFile(context.Background(), root, "/target", f, 0o644, -1, -1, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("error %v, want ErrCorrupt naming %s", err, bad)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "target")); string(got) != "old version" {
		t.Error("target changed")
	}
	if tf := tempFiles(t, dir); len(tf) > 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}

// smallFS mounts a tmpfs of size bytes for the test (root only).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// A file that does not fit is refused before anything is written, with the figures.
func TestMaterializeFileNoSpace(t *testing.T) {
	dir := smallFS(t, "8m")
	root, err := fsroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s := newStore(t)
	_, f := addBytes(t, s, randomBytes(5, 10<<20))
	_, err = s.MaterializeFile(context.Background(), root, "/big", f, 0o644, -1, -1, nil)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("error %v, want ErrNoSpace", err)
	}
	want := fmt.Sprintf("need 10.5 MB free in %s, have 8.4 MB", dir)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("%d entries written", len(names))
	}
	// What fits, fits.
	_, small := addBytes(t, s, randomBytes(6, 3<<20))
	if _, err := s.MaterializeFile(context.Background(), root, "/small", small, 0o644, -1, -1, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 999: "999 bytes", 1000: "1.0 kB",
		4_200_000: "4.2 MB", 1_200_000_000: "1.2 GB", 999_960: "1.0 MB", 5_000_000_000_000_000: "5000.0 TB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTempName(t *testing.T) {
	for name, want := range map[string]int{".a.satchel-12-3": 12, ".a.b.satchel-7-t9": 7, "a.satchel-1-1": 0,
		".a.satchel-x-1": 0, ".a.satchel-1": 0, ".satchel-1-2": 0, ".x.satchel-1-2x": 0} {
		pid, ok := tempName(name)
		if (want > 0) != ok || pid != want && ok {
			t.Errorf("tempName(%q) = %d, %v; want %d", name, pid, ok, want)
		}
	}
}
