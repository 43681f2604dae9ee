package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// reachable lists the store files a root needs, relative to the store.
func reachable(t testing.TB, s *Store, root ID) []string {
	t.Helper()
	var files []string
	rel := func(p string) string { r, _ := filepath.Rel(s.Dir(), p); return r }
	files = append(files, rel(s.ObjectPath(root)))
	err := s.Walk(context.Background(), root, func(_ string, e Entry, f *FileObject) error {
		if e.Kind != KindSymlink {
			files = append(files, rel(s.ObjectPath(e.ID)))
		}
		if f != nil {
			for _, c := range f.Chunks {
				files = append(files, rel(s.ChunkPath(c.ID)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

func TestGC(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	v1, v2, v3 := t.TempDir(), t.TempDir(), t.TempDir()
	writeTree(t, v1, sampleTree())
	writeTree(t, v2, sampleTree())
	_ = os.WriteFile(filepath.Join(v2, "sub", "deeper", "note.md"), textBytes(30, 7000), 0o640)
	_ = os.WriteFile(filepath.Join(v2, "new.bin"), randomBytes(31, 400_000), 0o644)
	_ = os.Remove(filepath.Join(v2, "text.md"))
	_ = os.WriteFile(filepath.Join(v3, "only-in-v3"), randomBytes(32, 100_000), 0o644)
	ids := map[string]ID{}
	for name, dir := range map[string]string{"v1": v1, "v2": v2, "v3": v3} {
		id, err := s.AddTree(context.Background(), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	// A loose file, a temporary file and a quarantined file are garbage too.
	loose := filepath.Join(t.TempDir(), "loose")
	_ = os.WriteFile(loose, []byte("loose"), 0o644)
	looseID, _, _ := s.AddFile(context.Background(), loose, nil)
	tmp := filepath.Join(s.Dir(), "chunks", "ab", ".tmp-42")
	_ = os.MkdirAll(filepath.Dir(tmp), 0o755)
	_ = os.WriteFile(tmp, []byte("interrupted"), 0o644)
	_ = os.MkdirAll(filepath.Join(s.Dir(), "quarantine", "chunks"), 0o755)
	_ = os.WriteFile(filepath.Join(s.Dir(), "quarantine", "chunks", looseID.String()+".zst"), []byte("bad"), 0o644)

	want := append(reachable(t, s, ids["v1"]), reachable(t, s, ids["v2"])...)
	slices.Sort(want)
	want = slices.Compact(want)
	all := storeFiles(t, s)

	// Refusals delete nothing.
	unknown := Sum([]byte("no such root"))
	if _, err := s.GC(context.Background(), []ID{ids["v1"], unknown}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), unknown.String()) {
		t.Errorf("GC with an unknown root: %v", err)
	}
	sub := treeEntry(t, s, ids["v2"], "sub").ID
	subPath := s.ObjectPath(sub)
	subBytes, _ := os.ReadFile(subPath)
	_ = os.Remove(subPath)
	if _, err := s.GC(context.Background(), []ID{ids["v1"], ids["v2"]}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), sub.String()) {
		t.Errorf("GC with an incomplete root: %v", err)
	}
	_ = os.WriteFile(subPath, subBytes, 0o644)
	if got := storeFiles(t, s); !slices.Equal(got, all) {
		t.Fatalf("a refused GC changed the store")
	}

	stats, err := s.GC(context.Background(), []ID{ids["v1"], ids["v2"]})
	if err != nil {
		t.Fatal(err)
	}
	if got := storeFiles(t, s); !slices.Equal(got, want) {
		t.Errorf("after GC the store holds %d files, want the %d reachable from v1 and v2", len(got), len(want))
	}
	if stats.KeptChunks+stats.KeptObjects != len(want) || stats.Chunks+stats.Objects != len(all)-len(want)-1 || // and the temporary file
		stats.TempFiles != 1 || stats.Quarantined != 1 || stats.Bytes == 0 {
		t.Errorf("stats %+v; kept %d of %d", stats, len(want), len(all))
	}
	for _, v := range []string{"v1", "v2"} {
		if objects, chunks, err := s.Missing(context.Background(), ids[v]); err != nil || len(objects)+len(chunks) != 0 {
			t.Errorf("%s after GC: missing %v %v, %v", v, objects, chunks, err)
		}
	}
	diffStates(t, storeState(t, s, ids["v1"]), diskState(t, v1))
	if s.HasObject(ids["v3"]) || s.HasObject(looseID) {
		t.Error("unreachable roots kept")
	}
	if rep, err := s.Verify(context.Background(), nil); err != nil || len(rep.Corrupt) != 0 {
		t.Errorf("verify after GC: %+v %v", rep, err)
	}

	// Keeping nothing empties the store.
	if _, err := s.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := storeFiles(t, s); len(got) != 0 {
		t.Errorf("GC keeping nothing left %v", got)
	}
}

func TestGCRefusesCorruptReachable(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	root, _ := s.AddTree(context.Background(), dir, nil)
	all := storeFiles(t, s)
	sub := treeEntry(t, s, root, "sub").ID
	flip(t, s.ObjectPath(sub), 5)
	_, err := s.GC(context.Background(), []ID{root})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), sub.String()) || !strings.Contains(err.Error(), "/sub") {
		t.Errorf("GC = %v, want ErrCorrupt naming %s and its path", err, sub)
	}
	if got := storeFiles(t, s); len(got) != len(all)-1 { // the corrupt object went to quarantine
		t.Errorf("store holds %d files, had %d", len(got), len(all))
	}
}

func TestGCBusy(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir) // stands for another process
	if err != nil {
		t.Fatal(err)
	}
	release, err := s2.lock.shared()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.GC(context.Background(), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("GC while another process writes: %v", err)
	}
	release()
	release, _ = s1.lock.shared()
	if _, err := s1.GC(context.Background(), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("GC while this process writes: %v", err)
	}
	release()
	// A hold (a pull, a checkout), nested with a writer's lock.
	hold, err := s1.Hold()
	if err != nil {
		t.Fatal(err)
	}
	release, _ = s1.lock.shared()
	release()
	if _, err := s1.GC(context.Background(), nil); !errors.Is(err, ErrBusy) {
		t.Errorf("GC while held: %v", err)
	}
	hold()
	if _, err := s1.GC(context.Background(), nil); err != nil {
		t.Errorf("GC once writes ended: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); errors.Is(err, fs.ErrNotExist) {
		t.Error("no lock file")
	}
}
