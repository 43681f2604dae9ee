package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
)

// stateFile is the staging directory's state, as Stage names it.
const stateFile = ".staged.json"

// progress records what Stage (or Write) reports.
type progress struct{ reports [][2]int64 }

func (p *progress) record(done, total int64) { p.reports = append(p.reports, [2]int64{done, total}) }

func (p *progress) first() int64 {
	if len(p.reports) == 0 {
		return -1
	}
	return p.reports[0][0]
}

func (p *progress) last() int64 {
	if len(p.reports) == 0 {
		return -1
	}
	return p.reports[len(p.reports)-1][0]
}

// checkStaged checks that stageDir holds the files, whole and joined, byte for byte, and
// nothing else but the staging state.
func checkStaged(t *testing.T, stageDir string, files []srcFile) {
	t.Helper()
	want := []string{stateFile}
	for _, f := range files {
		want = append(want, f.path)
		got, err := os.ReadFile(filepath.Join(stageDir, filepath.FromSlash(f.path)))
		if err != nil {
			t.Errorf("staged: %v", err)
			continue
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s staged: %q, want %q", f.path, got, f.data)
		}
	}
	if got := listFiles(t, stageDir); !slices.Equal(got, sorted(want)) {
		t.Errorf("the staging directory holds %q, want %q", got, sorted(want))
	}
}

// The office writes a bundle (its files described with Describe, split), a node reads its
// index and stages it: the node has the office's files, byte for byte.
func TestWriteStageRoundTrip(t *testing.T) {
	setPartSize(t, 10)
	files := []srcFile{
		{"metadata/root.json", content("root", 5)},
		{"metadata/timestamp.json", content("timestamp", 10)},
		{"targets/releases/7.json", content("manifest", 11)},
		{"store/deltas/0000-1111.delta", content("delta 1", 30)},
		{"store/deltas/1111-2222.delta", content("delta 2", 35)},
		{"secrets/7/index", nil},
		{"secrets/7/school-a.age", content("ciphertext", 21)},
	}
	repo := writeRepo(t, files)
	ix := goodIndex()
	ix.ID = "roundtrip"
	ix.Files = nil
	for _, f := range files {
		r, err := os.Open(filepath.Join(repo, filepath.FromSlash(f.path)))
		if err != nil {
			t.Fatal(err)
		}
		e, err := bundle.Describe(f.path, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		ix.Files = append(ix.Files, e)
	}
	if n := len(fileEntry(t, ix, "store/deltas/1111-2222.delta").Parts); n != 4 {
		t.Fatalf("the 35-byte delta is in %d parts, want 4", n)
	}
	f := testFleet(t)
	signed := signedIndex(t, f, ix)
	stick := t.TempDir()
	if err := bundle.Write(context.Background(), stick, ix, signed, &dirSource{dir: repo}, bundle.WriteOptions{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkStick(t, stick, ix, files)

	// Files the index does not list are not copied: another node's returns, a note, a
	// file slipped into store/, a part beyond a split file's last.
	for name, data := range map[string][]byte{
		"returns/school-a/returns.json":    []byte("{}"),
		"notes.txt":                        []byte("hello"),
		"store/deltas/9999-0000.delta":     []byte("not listed"),
		"store/deltas/1111-2222.delta.004": []byte("not a part"),
		"metadata/root.json.000":           []byte("not a part either"),
		"secrets/7/school-z.age":           []byte("not listed"),
		"store/deltas/._1111-2222.delta":   []byte("a Mac's AppleDouble file"),
		".Trashes/501/x":                   []byte("a Mac's trash"),
	} {
		writeFile(t, filepath.Join(stick, filepath.FromSlash(name)), data)
	}

	got, signer, err := bundle.ReadIndex(stick, f.ca.fingerprint())
	if err != nil {
		t.Fatalf("ReadIndex: %v", err)
	}
	if !signer.Equal(f.signer.cert) || got.ID != "roundtrip" || len(got.Files) != len(files) {
		t.Fatalf("ReadIndex: %+v by %s", got, signer.Subject.CommonName)
	}
	stageDir := filepath.Join(t.TempDir(), "staging")
	var p progress
	if err := bundle.Stage(context.Background(), stick, got, stageDir, bundle.StageOptions{Progress: p.record}); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	checkStaged(t, stageDir, files)
	if p.first() != 0 || p.last() != ix.Size() {
		t.Errorf("progress %v, want from 0 to %d", p.reports, ix.Size())
	}
	for i, r := range p.reports {
		if r[1] != ix.Size() || (i > 0 && r[0] < p.reports[i-1][0]) {
			t.Errorf("progress %v: want the total %d, never going back", p.reports, ix.Size())
			break
		}
	}
	// Staged again: nothing to do, the same files.
	var again progress
	if err := bundle.Stage(context.Background(), stick, got, stageDir, bundle.StageOptions{Progress: again.record}); err != nil {
		t.Fatalf("Stage again: %v", err)
	}
	checkStaged(t, stageDir, files)
	if len(again.reports) != 1 || again.first() != ix.Size() {
		t.Errorf("staging a staged bundle again reported %v, want all done at once", again.reports)
	}
}

func TestStageRefuses(t *testing.T) {
	t.Parallel()
	flip := func(name string, at int) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) {
			data := readFile(t, s.path(name))
			data[at] ^= 0x01
			writeFile(t, s.path(name), data)
		}
	}
	truncate := func(name string, size int64) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) {
			if err := os.Truncate(s.path(name), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) {
			if err := os.Remove(s.path(name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// linkOut replaces name by a link to a file outside the bundle with the same content:
	// only the link is wrong.
	linkOut := func(name string) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) {
			outside := filepath.Join(t.TempDir(), "file")
			writeFile(t, outside, readFile(t, s.path(name)))
			remove(name)(t, s)
			if err := os.Symlink(outside, s.path(name)); err != nil {
				t.Fatal(err)
			}
		}
	}

	tests := []struct {
		name     string
		change   func(t *testing.T, s *testStick)
		file     string // the file the error must name
		notExist bool   // the error also wraps fs.ErrNotExist
	}{
		{"a flipped byte in a file", flip("targets/releases/7.json", 4), "targets/releases/7.json", false},
		{"a flipped byte in a part", flip(deltaPath+".001", 9), deltaPath + ".001", false},
		{"a flipped byte in the last part", flip(deltaPath+".003", 0), deltaPath + ".003", false},
		{"a truncated file", truncate("metadata/root.json", 6), "metadata/root.json", false},
		{"a truncated part", truncate(deltaPath+".002", 9), deltaPath + ".002", false},
		{"an emptied file", truncate("targets/releases/7.json", 0), "targets/releases/7.json", false},
		{"a grown file", func(t *testing.T, s *testStick) {
			writeFile(t, s.path("metadata/root.json"), append(readFile(t, s.path("metadata/root.json")), 'x'))
		}, "metadata/root.json", false},
		{"a grown empty file", func(t *testing.T, s *testStick) {
			writeFile(t, s.path("secrets/7/index"), []byte("x"))
		}, "secrets/7/index", false},
		{"a file missing", remove("targets/releases/7.json"), "targets/releases/7.json", true},
		{"a part missing", remove(deltaPath + ".002"), deltaPath + ".002", true},
		{"the split file whole instead of its parts", func(t *testing.T, s *testStick) {
			for i := range 4 {
				remove(bundle.PartPath(deltaPath, i))(t, s)
			}
			writeFile(t, s.path(deltaPath), s.files[2].data)
		}, deltaPath + ".000", true},
		{"a directory missing", func(t *testing.T, s *testStick) {
			if err := os.RemoveAll(s.path("secrets")); err != nil {
				t.Fatal(err)
			}
		}, "secrets/7/index", true},
		// Each part is checked against its own hash, so parts swapped on the stick are
		// refused at the first.
		{"parts swapped", func(t *testing.T, s *testStick) {
			p0, p1 := s.path(deltaPath+".000"), s.path(deltaPath+".001")
			d0, d1 := readFile(t, p0), readFile(t, p1)
			writeFile(t, p0, d1)
			writeFile(t, p1, d0)
		}, deltaPath + ".000", false},
		{"a file linked out of the bundle", linkOut("targets/releases/7.json"), "targets/releases/7.json", false},
		{"a part linked out of the bundle", linkOut(deltaPath + ".001"), deltaPath + ".001", false},
		{"a file linked to another inside the bundle", func(t *testing.T, s *testStick) {
			writeFile(t, s.path("copy.json"), readFile(t, s.path("targets/releases/7.json")))
			remove("targets/releases/7.json")(t, s)
			if err := os.Symlink(filepath.Join("..", "..", "copy.json"), s.path("targets/releases/7.json")); err != nil {
				t.Fatal(err)
			}
		}, "targets/releases/7.json", false},
		{"a directory linked out of the bundle", func(t *testing.T, s *testStick) {
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "root.json"), readFile(t, s.path("metadata/root.json")))
			if err := os.RemoveAll(s.path("metadata")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, s.path("metadata")); err != nil {
				t.Fatal(err)
			}
		}, "metadata", false},
		{"a directory in place of a file", func(t *testing.T, s *testStick) {
			remove("targets/releases/7.json")(t, s)
			if err := os.Mkdir(s.path("targets/releases/7.json"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "targets/releases/7.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStick(t)
			tt.change(t, s)
			stageDir := filepath.Join(t.TempDir(), "staging")
			err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{})
			if !errors.Is(err, bundle.ErrDamaged) {
				t.Fatalf("Stage: %v, want ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("Stage: %v, want it to name %s", err, tt.file)
			}
			if tt.notExist != errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stage: %v, ErrNotExist: %v, want %v", err, !tt.notExist, tt.notExist)
			}
			if errors.Is(err, bundle.ErrForeign) {
				t.Errorf("Stage: %v: not a foreign bundle", err)
			}
		})
	}
}

// A FIFO in place of a file, or anywhere in the repository's directories, is refused at
// once: opening it to read would wait for a writer that never comes.
func TestStageFIFO(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"targets/releases/7.json", deltaPath + ".001", "store/deltas/not-listed"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStick(t)
			if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(s.path(name), 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			done := make(chan error, 1)
			go func() {
				done <- bundle.Stage(context.Background(), s.dir, s.ix, filepath.Join(t.TempDir(), "staging"), bundle.StageOptions{})
			}()
			select {
			case err := <-done:
				if !errors.Is(err, bundle.ErrDamaged) || !strings.Contains(err.Error(), name) {
					t.Errorf("Stage: %v, want ErrDamaged naming %s", err, name)
				}
			case <-time.After(10 * time.Second):
				// Unblock the reader so that the test binary can end.
				if f, err := os.OpenFile(s.path(name), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatal("Stage hung on a FIFO")
			}
		})
	}
}

// What no export writes and a FAT stick cannot hold, a symbolic link or a name beginning
// with "..", is refused anywhere in the repository's directories, listed or not; other
// files the index does not list are left alone, as is everything outside those
// directories.
func TestStageScan(t *testing.T) {
	t.Parallel()
	link := func(target, name string) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) {
			if !filepath.IsAbs(target) && !strings.HasPrefix(target, ".") {
				target = s.path(target)
			}
			if err := os.MkdirAll(filepath.Dir(s.path(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, s.path(name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := func(name string) func(t *testing.T, s *testStick) {
		return func(t *testing.T, s *testStick) { writeFile(t, s.path(name), []byte("x")) }
	}
	tests := []struct {
		name   string
		change func(t *testing.T, s *testStick)
		refuse string // the name the error must give; "": Stage succeeds
	}{
		{"a link out, not listed", link("/etc/passwd", "store/passwd"), "store/passwd"},
		{"a link inside, not listed", link("metadata/root.json", "metadata/1.root.json"), "metadata/1.root.json"},
		{"a dangling link", link("/nonexistent", "secrets/7/x"), "secrets/7/x"},
		{"a directory link, not listed", link("/etc", "targets/etc"), "targets/etc"},
		{"a name beginning with ..", file("store/..x"), "store/..x"},
		{"a directory beginning with ..", file("secrets/..data/x"), "secrets/..data"},
		{"a top directory that is a link", func(t *testing.T, s *testStick) {
			copyDir := t.TempDir()
			writeFile(t, filepath.Join(copyDir, "7", "index"), nil)
			if err := os.RemoveAll(s.path("secrets")); err != nil {
				t.Fatal(err)
			}
			link(copyDir, "secrets")(t, s)
		}, "secrets"},
		{"an operating system's file", file("store/deltas/._a-b.delta"), ""},
		{"a hidden directory", file("metadata/.Trashes/501/x"), ""},
		{"a link under returns/", link("/etc/passwd", "returns/school-a/passwd"), ""},
		{"a link at the top of the stick", link("/etc", "etc"), ""},
		{"a name beginning with .. outside the repository's directories", file("..x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStick(t)
			tt.change(t, s)
			stageDir := filepath.Join(t.TempDir(), "staging")
			err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{})
			if tt.refuse == "" {
				if err != nil {
					t.Fatalf("Stage: %v", err)
				}
				checkStaged(t, stageDir, s.files)
				return
			}
			if !errors.Is(err, bundle.ErrDamaged) || !strings.Contains(err.Error(), tt.refuse) {
				t.Fatalf("Stage: %v, want ErrDamaged naming %s", err, tt.refuse)
			}
			// Refused before anything is copied.
			if _, err := os.Lstat(filepath.Join(stageDir, "metadata")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("something was staged from a refused stick: %v", err)
			}
		})
	}
}

// An index whose parts are listed in the wrong order (each part's hash right, the whole
// file's wrong) is caught by the whole file's check, and stays refused when staged again.
func TestStageChecksJoinedFile(t *testing.T) {
	t.Parallel()
	s := newStick(t)
	ix := *s.ix
	ix.Files = slices.Clone(s.ix.Files)
	delta := ix.Files[2]
	if delta.Path != deltaPath || len(delta.Parts) != 4 {
		t.Fatalf("file 2 is %s in %d parts", delta.Path, len(delta.Parts))
	}
	delta.Parts = slices.Clone(delta.Parts)
	delta.Parts[0], delta.Parts[1] = delta.Parts[1], delta.Parts[0]
	ix.Files[2] = delta
	if err := ix.Check(); err != nil {
		t.Fatal(err)
	}
	p0, p1 := s.path(deltaPath+".000"), s.path(deltaPath+".001")
	d0, d1 := readFile(t, p0), readFile(t, p1)
	writeFile(t, p0, d1)
	writeFile(t, p1, d0)

	stageDir := filepath.Join(t.TempDir(), "staging")
	for _, attempt := range []string{"first", "second"} {
		err := bundle.Stage(context.Background(), s.dir, &ix, stageDir, bundle.StageOptions{})
		if !errors.Is(err, bundle.ErrDamaged) {
			t.Fatalf("%s Stage: %v, want ErrDamaged", attempt, err)
		}
		if !strings.Contains(err.Error(), deltaPath+": its parts, joined, do not match") {
			t.Errorf("%s Stage: %v, want the joined file named", attempt, err)
		}
	}
}

// A stick without one of its parts is staged up to that part; with the part back, the
// next Stage goes on from there, without copying again what it had.
func TestStageResumesAfterMissingPart(t *testing.T) {
	t.Parallel()
	s := newStick(t)
	missing := s.path(deltaPath + ".002")
	part := readFile(t, missing)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	stageDir := filepath.Join(t.TempDir(), "staging")
	var p1 progress
	err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{Progress: p1.record})
	if !errors.Is(err, bundle.ErrDamaged) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), deltaPath+".002") {
		t.Fatalf("Stage without a part: %v", err)
	}
	if want := int64(7 + 10 + 10 + 10); p1.last() != want {
		t.Fatalf("the first Stage reported %v, want it to end at %d", p1.reports, want)
	}
	if _, err := os.Stat(filepath.Join(stageDir, stateFile)); err != nil {
		t.Errorf("no staging state: %v", err)
	}
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"metadata/root.json", "targets/releases/7.json"} {
		if err := os.Chtimes(filepath.Join(stageDir, filepath.FromSlash(name)), past, past); err != nil {
			t.Fatal(err)
		}
	}

	writeFile(t, missing, part)
	var p2 progress
	if err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{Progress: p2.record}); err != nil {
		t.Fatalf("the second Stage: %v", err)
	}
	if p2.first() != p1.last() {
		t.Errorf("the second Stage started at %d, want %d (what the first had done)", p2.first(), p1.last())
	}
	if p2.last() != s.ix.Size() {
		t.Errorf("the second Stage ended at %d, want %d", p2.last(), s.ix.Size())
	}
	checkStaged(t, stageDir, s.files)
	for _, name := range []string{"metadata/root.json", "targets/releases/7.json"} {
		info, err := os.Stat(filepath.Join(stageDir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(past) {
			t.Errorf("%s was copied again", name)
		}
	}
}

// A Stage stopped (the node shut down, the stick pulled out) at any point is resumed by
// the next.
func TestStageResumesAfterCancel(t *testing.T) {
	t.Parallel()
	// Stage reports 0, then 7 (root.json), 17 (7.json), 27, 37, 47, 52 (the delta's
	// parts), 52 (the empty secrets/7/index).
	for _, tt := range []struct {
		name   string
		cancel int64 // when Stage reports this much done
	}{
		{"after a whole file", 7},
		{"after two whole files", 17},
		{"after a split file's first part", 27},
		{"after a split file's third part", 47},
		{"after a split file", 52},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStick(t)
			stageDir := filepath.Join(t.TempDir(), "staging")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var p1 progress
			err := bundle.Stage(ctx, s.dir, s.ix, stageDir, bundle.StageOptions{Progress: func(done, total int64) {
				p1.record(done, total)
				if done == tt.cancel {
					cancel()
				}
			}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("the canceled Stage: %v, want context.Canceled", err)
			}
			if errors.Is(err, bundle.ErrDamaged) {
				t.Errorf("the canceled Stage: %v: the stick is not damaged", err)
			}
			if p1.last() != tt.cancel {
				t.Fatalf("the canceled Stage reported %v, want it to stop at %d", p1.reports, tt.cancel)
			}

			var p2 progress
			if err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{Progress: p2.record}); err != nil {
				t.Fatalf("the second Stage: %v", err)
			}
			if p2.first() != tt.cancel || p2.last() != s.ix.Size() {
				t.Errorf("the second Stage reported %v, want from %d to %d", p2.reports, tt.cancel, s.ix.Size())
			}
			checkStaged(t, stageDir, s.files)
		})
	}
}

// A staging directory holding what is not this bundle's staging is emptied first.
func TestStageEmptiesOtherStaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		state string // "": none
	}{
		{"another bundle's", `{"bundle":"older","done":{"metadata/root.json":1,"targets/releases/7.json":1,"store/deltas/a-b.delta":2}}`},
		{"a damaged state", `{"bundle":"other",`},
		{"this bundle's, without files", `{"bundle":"` + stickID + `"}`},
		{"no state", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStick(t)
			stageDir := filepath.Join(t.TempDir(), "staging")
			if tt.state != "" {
				writeFile(t, filepath.Join(stageDir, stateFile), []byte(tt.state))
			}
			writeFile(t, filepath.Join(stageDir, "metadata/root.json"), []byte("stale"))
			writeFile(t, filepath.Join(stageDir, "targets/releases/7.json"), []byte("stale"))
			writeFile(t, filepath.Join(stageDir, deltaPath), []byte("stale content, longer than two parts"))
			writeFile(t, filepath.Join(stageDir, "store/leftover"), []byte("x"))
			var p progress
			if err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{Progress: p.record}); err != nil {
				t.Fatalf("Stage: %v", err)
			}
			if p.first() != 0 {
				t.Errorf("Stage started at %d done, want 0", p.first())
			}
			checkStaged(t, stageDir, s.files)
		})
	}
}

// A listed file whose name is another's followed by the suffix Stage gives its temporary
// files must not be written over by that other file's temporary.
func TestStageTemporaryNameIsNotAListedFile(t *testing.T) {
	t.Parallel()
	files := []srcFile{
		{"store/deltas/a-b.delta.tmp", content("listed", 9)},
		{"store/deltas/a-b.delta", content("delta", 8)},
	}
	s := writeStick(t, "tmp-names", files)
	stageDir := filepath.Join(t.TempDir(), "staging")
	if err := bundle.Stage(context.Background(), s.dir, s.ix, stageDir, bundle.StageOptions{}); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	checkStaged(t, stageDir, files)
}

// Stage given an index that was not checked (not from ReadIndex or OpenIndex) writes
// nothing outside the staging directory.
func TestStageUncheckedIndex(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	writeFile(t, victim, []byte("a file outside the staging directory"))
	data := content("evil", 20)
	ix := goodIndex()
	ix.Files = []bundle.File{split("store/../../victim", data, testPartSize)}
	stick := t.TempDir()

	err := bundle.Stage(context.Background(), stick, ix, filepath.Join(base, "staging"), bundle.StageOptions{})
	if err == nil {
		t.Error("Stage took an index with a path out of the bundle")
	}
	if got := readFile(t, victim); string(got) != "a file outside the staging directory" {
		t.Errorf("a file outside the staging directory was changed: %q", got)
	}
}

func TestReadIndex(t *testing.T) {
	t.Parallel()
	f := testFleet(t)

	t.Run("a bundle", func(t *testing.T) {
		t.Parallel()
		s := newStick(t)
		ix, signer, err := bundle.ReadIndex(s.dir, f.ca.fingerprint())
		if err != nil {
			t.Fatal(err)
		}
		if ix.ID != stickID || len(ix.Files) != 4 || !signer.Equal(f.signer.cert) {
			t.Errorf("ReadIndex = %+v, %s", ix, signer.Subject.CommonName)
		}
	})
	t.Run("no index", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "metadata/root.json"), []byte("{}"))
		_, _, err := bundle.ReadIndex(dir, f.ca.fingerprint())
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "did not finish") {
			t.Errorf("ReadIndex of a stick without index: %v, want ErrNotExist and a hint that the export did not finish", err)
		}
		if errors.Is(err, bundle.ErrDamaged) {
			t.Errorf("a stick without index is not damaged: %v", err)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		t.Parallel()
		if _, _, err := bundle.ReadIndex(filepath.Join(t.TempDir(), "missing"), f.ca.fingerprint()); err == nil {
			t.Error("ReadIndex of a missing directory: no error")
		}
	})
	t.Run("another fleet's", func(t *testing.T) {
		t.Parallel()
		s := newStick(t)
		_, _, err := bundle.ReadIndex(s.dir, newCA(t, "other").fingerprint())
		if !errors.Is(err, bundle.ErrForeign) || !strings.Contains(err.Error(), s.dir) {
			t.Errorf("ReadIndex: %v, want ErrForeign naming the directory", err)
		}
	})
	t.Run("edited", func(t *testing.T) {
		t.Parallel()
		s := newStick(t)
		p := s.path(bundle.IndexFile)
		env := parseEnvelope(t, readFile(t, p))
		env.Signed = bytes.Replace(env.Signed, []byte(`"release":7`), []byte(`"release":9`), 1)
		writeFile(t, p, env.marshal(t))
		if _, _, err := bundle.ReadIndex(s.dir, f.ca.fingerprint()); !errors.Is(err, bundle.ErrDamaged) {
			t.Errorf("ReadIndex of an edited index: %v, want ErrDamaged", err)
		}
	})
	t.Run("a link", func(t *testing.T) {
		t.Parallel()
		s := newStick(t)
		outside := filepath.Join(t.TempDir(), bundle.IndexFile)
		writeFile(t, outside, s.signed)
		if err := os.Remove(s.path(bundle.IndexFile)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, s.path(bundle.IndexFile)); err != nil {
			t.Fatal(err)
		}
		_, _, err := bundle.ReadIndex(s.dir, f.ca.fingerprint())
		if !errors.Is(err, bundle.ErrDamaged) || !strings.Contains(err.Error(), bundle.IndexFile) {
			t.Errorf("ReadIndex of a linked index: %v, want ErrDamaged", err)
		}
	})
	t.Run("a FIFO", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(dir, bundle.IndexFile), 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		if _, _, err := bundle.ReadIndex(dir, f.ca.fingerprint()); !errors.Is(err, bundle.ErrDamaged) {
			t.Errorf("ReadIndex of a FIFO: %v, want ErrDamaged", err)
		}
	})
}
