package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
)

// srcFile is a file of the office's repository.
type srcFile struct {
	path string
	data []byte
}

// testPartSize is the part size of the bundles the parallel tests make (with split, not
// Describe, so that PartSize is left alone).
const testPartSize = 10

// stickFiles are a small release: whole files, an empty one, and one split into four
// parts (10, 10, 10 and 5 bytes).
func stickFiles() []srcFile {
	return []srcFile{
		{"metadata/root.json", content("root", 7)},
		{"targets/releases/7.json", content("manifest", 10)},
		{"store/deltas/a-b.delta", content("delta", 35)},
		{"secrets/7/index", nil},
	}
}

const deltaPath = "store/deltas/a-b.delta"

// writeRepo writes files into a new directory, as the office's repository holds them.
func writeRepo(t *testing.T, files []srcFile) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(f.path)), f.data)
	}
	return dir
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
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newIndex is the index of a bundle of files, in their order, split into parts of
// partSize bytes.
func newIndex(id string, files []srcFile, partSize int) *bundle.Index {
	ix := goodIndex()
	ix.ID = id
	ix.Files = nil
	for _, f := range files {
		ix.Files = append(ix.Files, split(f.path, f.data, partSize))
	}
	return ix
}

// dirSource is a bundle.Source reading the office's repository from a directory, as the
// office's own source does; it records what it is asked for.
type dirSource struct {
	dir   string
	mu    sync.Mutex
	opens []string // "path@offset+length"
}

func (s *dirSource) Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !fs.ValidPath(path) {
		return nil, fmt.Errorf("source: bad path %q", path)
	}
	s.mu.Lock()
	s.opens = append(s.opens, fmt.Sprintf("%s@%d+%d", path, offset, length))
	s.mu.Unlock()
	return bundle.OpenRange(filepath.Join(s.dir, filepath.FromSlash(path)), offset, length)
}

func (s *dirSource) opened() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opens)
}

var errCut = errors.New("the link to the repository was cut")

// cutSource is a Source whose readers fail once n bytes in all have been read: it stands
// for the repository's disk or the link to it cut in the middle of a copy.
type cutSource struct {
	src  bundle.Source
	left atomic.Int64
}

func newCutSource(src bundle.Source, n int64) *cutSource {
	s := &cutSource{src: src}
	s.left.Store(n)
	return s
}

func (s *cutSource) Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.src.Open(ctx, path, offset, length)
	if err != nil {
		return nil, err
	}
	return &cutReader{rc, s}, nil
}

type cutReader struct {
	io.ReadCloser
	s *cutSource
}

func (r *cutReader) Read(p []byte) (int, error) {
	left := r.s.left.Load()
	if left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.ReadCloser.Read(p)
	r.s.left.Add(-int64(n))
	return n, err
}

// testStick is a bundle written onto a "stick" (a directory) from a repository.
type testStick struct {
	repo, dir string
	files     []srcFile
	ix        *bundle.Index
	signed    []byte
}

// writeStick writes a bundle of files onto a new stick with Write, split into parts of
// testPartSize.
func writeStick(t *testing.T, id string, files []srcFile) *testStick {
	t.Helper()
	s := &testStick{repo: writeRepo(t, files), dir: t.TempDir(), files: files, ix: newIndex(id, files, testPartSize)}
	s.signed = signedIndex(t, testFleet(t), s.ix)
	if err := bundle.Write(context.Background(), s.dir, s.ix, s.signed, &dirSource{dir: s.repo}, bundle.WriteOptions{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return s
}

// scratch is a directory for what the tests share, removed when they end.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bundle-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var template struct {
	once      sync.Once
	repo, dir string
	signed    []byte
}

// stickID is the ID of the bundle newStick gives.
const stickID = "20250301-north"

// newStick is a stick holding a bundle of stickFiles: a copy of one written once with
// Write (Write flushes every piece to disk: writing a stick for every test would be slow).
// The repository it was written from is shared: the tests must not change it.
func newStick(t *testing.T) *testStick {
	t.Helper()
	template.once.Do(func() {
		repo, dir := filepath.Join(scratch, "repo"), filepath.Join(scratch, "stick")
		ix := newIndex(stickID, stickFiles(), testPartSize)
		signed := signedIndex(t, testFleet(t), ix)
		for _, f := range stickFiles() {
			writeFile(t, filepath.Join(repo, filepath.FromSlash(f.path)), f.data)
		}
		if err := bundle.Write(context.Background(), dir, ix, signed, &dirSource{dir: repo}, bundle.WriteOptions{}); err != nil {
			t.Fatalf("Write: %v", err)
		}
		template.repo, template.dir, template.signed = repo, dir, signed
	})
	if template.dir == "" {
		t.Fatal("the template stick could not be written")
	}
	s := &testStick{repo: template.repo, dir: t.TempDir(), files: stickFiles(), ix: newIndex(stickID, stickFiles(), testPartSize), signed: template.signed}
	for _, name := range listFiles(t, template.dir) {
		writeFile(t, s.path(name), readFile(t, filepath.Join(template.dir, filepath.FromSlash(name))))
	}
	return s
}

func (s *testStick) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// checkStick checks that every piece of ix is on the stick in dir with the content of the
// repository's file, and that the index is there.
func checkStick(t *testing.T, dir string, ix *bundle.Index, files []srcFile) {
	t.Helper()
	for _, f := range files {
		var joined []byte
		e := fileEntry(t, ix, f.path)
		if len(e.Parts) == 0 {
			joined = readFile(t, filepath.Join(dir, filepath.FromSlash(f.path)))
		}
		for i := range e.Parts {
			part := readFile(t, filepath.Join(dir, filepath.FromSlash(bundle.PartPath(f.path, i))))
			if int64(len(part)) != e.Parts[i].Size {
				t.Errorf("%s part %d: %d bytes, want %d", f.path, i, len(part), e.Parts[i].Size)
			}
			joined = append(joined, part...)
		}
		if !bytes.Equal(joined, f.data) {
			t.Errorf("%s on the stick: %q, want %q", f.path, joined, f.data)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, bundle.IndexFile)); err != nil {
		t.Errorf("the index: %v", err)
	}
	if n := ix.Missing(dir); n != 0 {
		t.Errorf("Missing = %d after Write", n)
	}
}

func fileEntry(t *testing.T, ix *bundle.Index, path string) bundle.File {
	t.Helper()
	for _, f := range ix.Files {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("%s is not in the index", path)
	return bundle.File{}
}

// listFiles lists the files (not directories) under dir, slash-separated.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestWrite(t *testing.T) {
	t.Parallel()
	files := stickFiles()
	repo, dir := writeRepo(t, files), filepath.Join(t.TempDir(), "stick", "bundle")
	ix := newIndex("b1", files, testPartSize)
	signed := signedIndex(t, testFleet(t), ix)
	if got := ix.Missing(dir); got != ix.Size() {
		t.Errorf("Missing before Write = %d, want %d", got, ix.Size())
	}

	var reports [][2]int64
	indexSeen := false
	src := &dirSource{dir: repo}
	err := bundle.Write(context.Background(), dir, ix, signed, src, bundle.WriteOptions{Progress: func(done, total int64) {
		reports = append(reports, [2]int64{done, total})
		// The index is written last: never there while pieces are being written.
		if _, err := os.Stat(filepath.Join(dir, bundle.IndexFile)); err == nil {
			indexSeen = true
		}
	}})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkStick(t, dir, ix, files)
	if indexSeen {
		t.Error("the index was on the stick before every piece was written")
	}
	if got := readFile(t, filepath.Join(dir, bundle.IndexFile)); !bytes.Equal(got, signed) {
		t.Error("the index on the stick is not the signed index given")
	}
	want := append([]string{bundle.IndexFile}, ix.Pieces()...)
	slices.Sort(want)
	if got := listFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("the stick holds %q, want %q (no temporary file left)", got, want)
	}
	if len(src.opened()) != len(ix.Pieces()) {
		t.Errorf("the source was read %d times for %d pieces: %q", len(src.opened()), len(ix.Pieces()), src.opened())
	}
	if len(reports) == 0 || reports[0] != [2]int64{0, ix.Size()} || reports[len(reports)-1] != [2]int64{ix.Size(), ix.Size()} {
		t.Errorf("progress %v, want from 0 to %d of %d", reports, ix.Size(), ix.Size())
	}
	for i := 1; i < len(reports); i++ {
		if reports[i][0] < reports[i-1][0] {
			t.Errorf("progress went back: %v", reports)
		}
	}
	// What is written is a bundle a node reads.
	got, _, err := bundle.ReadIndex(dir, testFleet(t).ca.fingerprint())
	if err != nil || got.ID != "b1" {
		t.Errorf("ReadIndex of what Write wrote: %v", err)
	}
}

// A Write cut in the middle leaves no index (an old one included), so that the stick is
// not taken for a bundle; the next Write resumes it, without writing again what was
// written whole.
func TestWriteResumes(t *testing.T) {
	t.Parallel()
	files := stickFiles()
	repo, dir := writeRepo(t, files), t.TempDir()
	ix := newIndex("b2", files, testPartSize)
	signed := signedIndex(t, testFleet(t), ix)
	writeFile(t, filepath.Join(dir, bundle.IndexFile), []byte("an older bundle's index"))

	// 7 + 10 + 10 bytes: root.json, 7.json and the delta's first part, then 5 bytes of the
	// second part.
	cut := newCutSource(&dirSource{dir: repo}, 32)
	err := bundle.Write(context.Background(), dir, ix, signed, cut, bundle.WriteOptions{})
	if !errors.Is(err, errCut) {
		t.Fatalf("Write from a cut source: %v, want the source's error", err)
	}
	if !strings.Contains(err.Error(), deltaPath+".001") {
		t.Errorf("the error does not name the piece being written: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, bundle.IndexFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an index is on the stick after a cut Write: %v", err)
	}
	if _, _, err := bundle.ReadIndex(dir, testFleet(t).ca.fingerprint()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadIndex of a cut stick: %v, want ErrNotExist", err)
	}
	written := []string{"metadata/root.json", "targets/releases/7.json", deltaPath + ".000"}
	if got := listFiles(t, dir); !slices.Equal(got, sorted(written)) {
		t.Errorf("after the cut, the stick holds %q, want %q (no partial piece)", got, sorted(written))
	}
	if got, want := ix.Missing(dir), ix.Size()-27; got != want {
		t.Errorf("Missing = %d, want %d", got, want)
	}
	// The pieces written are left as they are: dated in the past, they must stay so.
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range written {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(name)), past, past); err != nil {
			t.Fatal(err)
		}
	}

	src := &dirSource{dir: repo}
	var first int64 = -1
	err = bundle.Write(context.Background(), dir, ix, signed, src, bundle.WriteOptions{Progress: func(done, total int64) {
		if first < 0 {
			first = done
		}
	}})
	if err != nil {
		t.Fatalf("the second Write: %v", err)
	}
	checkStick(t, dir, ix, files)
	wantOpens := []string{deltaPath + "@10+10", deltaPath + "@20+10", deltaPath + "@30+5", "secrets/7/index@0+0"}
	if got := src.opened(); !slices.Equal(got, wantOpens) {
		t.Errorf("the second Write read %q, want only what was missing: %q", got, wantOpens)
	}
	for _, name := range written {
		info, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(past) {
			t.Errorf("%s was written again", name)
		}
	}
	if first != 0 {
		t.Errorf("the second Write's progress started at %d, want 0 (pieces kept are counted as they are checked)", first)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// A piece on the stick of the right size but the wrong content (a cheap stick losing
// writes) is written again; the others are not.
func TestWriteRewritesCorruptedPiece(t *testing.T) {
	t.Parallel()
	s := newStick(t)
	damaged := s.path(deltaPath + ".002")
	data := readFile(t, damaged)
	data[3] ^= 0xff
	writeFile(t, damaged, data)
	whole := s.path("targets/releases/7.json")
	data = readFile(t, whole)
	data[0] ^= 0xff
	writeFile(t, whole, data)
	// Missing counts by size only: those two look there.
	if got := s.ix.Missing(s.dir); got != 0 {
		t.Errorf("Missing = %d, want 0 (pieces of the right size are counted as there)", got)
	}

	src := &dirSource{dir: s.repo}
	if err := bundle.Write(context.Background(), s.dir, s.ix, s.signed, src, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkStick(t, s.dir, s.ix, s.files)
	want := []string{"targets/releases/7.json@0+10", deltaPath + "@20+10"}
	if got := src.opened(); !slices.Equal(got, want) {
		t.Errorf("Write read %q, want %q", got, want)
	}
}

// Write writes pieces missing, truncated, or replaced by something else.
func TestWriteReplacesWrongPieces(t *testing.T) {
	t.Parallel()
	s := newStick(t)
	if err := os.Remove(s.path(deltaPath + ".000")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.path(deltaPath+".003"), 2); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.path("metadata/root.json"), []byte("a longer file than the index says"))
	if got, want := s.ix.Missing(s.dir), int64(10+5+7); got != want {
		t.Errorf("Missing = %d, want %d", got, want)
	}
	if err := bundle.Write(context.Background(), s.dir, s.ix, s.signed, &dirSource{dir: s.repo}, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkStick(t, s.dir, s.ix, s.files)
}

// The files of an older bundle in the repository's directories are removed; returns/
// (the nodes' reports, not yet collected) and anything outside those directories stay.
func TestWriteRemovesStaleFiles(t *testing.T) {
	t.Parallel()
	old := writeStick(t, "older", []srcFile{
		{"metadata/root.json", content("old root", 7)},
		{"metadata/3.root.json", content("old root 3", 5)},
		{"store/deltas/x-y.delta", content("old delta", 25)},
		{"secrets/6/index", content("old secrets", 12)},
		{"targets/releases/6.json", content("old manifest", 9)},
	})
	kept := map[string][]byte{
		"returns/school-a/returns.json":          []byte(`{"signed":"..."}`),
		"returns/school-a/reports/r1.json":       []byte(`{"report":1}`),
		"README.txt":                             []byte("a note for the technician"),
		"store-notes/x":                          []byte("not a repository directory"),
		"returns/school-b/reports/store/x.delta": []byte("a name like a store file, under returns/"),
	}
	for name, data := range kept {
		writeFile(t, old.path(name), data)
	}
	writeFile(t, old.path(deltaPath+".001.partial"), []byte("left by a Write killed halfway"))
	writeFile(t, old.path("store/.hidden"), []byte("hidden"))

	files := stickFiles()
	ix := newIndex("newer", files, testPartSize)
	err := bundle.Write(context.Background(), old.dir, ix, signedIndex(t, testFleet(t), ix), &dirSource{dir: writeRepo(t, files)}, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkStick(t, old.dir, ix, files)
	want := append([]string{bundle.IndexFile}, ix.Pieces()...)
	for name, data := range kept {
		want = append(want, name)
		if got := readFile(t, old.path(name)); !bytes.Equal(got, data) {
			t.Errorf("%s changed", name)
		}
	}
	if got := listFiles(t, old.dir); !slices.Equal(got, sorted(want)) {
		t.Errorf("the stick holds %q, want %q", got, sorted(want))
	}
	got, _, err := bundle.ReadIndex(old.dir, testFleet(t).ca.fingerprint())
	if err != nil || got.ID != "newer" {
		t.Errorf("ReadIndex: %v", err)
	}
}

func TestWriteCanceled(t *testing.T) {
	t.Parallel()
	s := newStick(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ix := newIndex("b6", stickFiles(), testPartSize)
	err := bundle.Write(ctx, s.dir, ix, signedIndex(t, testFleet(t), ix), &dirSource{dir: s.repo}, bundle.WriteOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a canceled context: %v", err)
	}
	if _, err := os.Lstat(s.path(bundle.IndexFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old index is still there: %v", err)
	}
}

// A source that gives fewer bytes than the index says (the repository's file changed
// since it was described) fails the piece, and nothing of it is left.
func TestWriteShortSource(t *testing.T) {
	t.Parallel()
	files := stickFiles()
	repo := writeRepo(t, files)
	ix := newIndex("b7", files, testPartSize)
	writeFile(t, filepath.Join(repo, "targets/releases/7.json"), []byte("short"))
	dir := t.TempDir()
	err := bundle.Write(context.Background(), dir, ix, signedIndex(t, testFleet(t), ix), &dirSource{dir: repo}, bundle.WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "targets/releases/7.json") {
		t.Fatalf("Write from a short source: %v", err)
	}
	if got := listFiles(t, dir); !slices.Equal(got, []string{"metadata/root.json"}) {
		t.Errorf("the stick holds %q", got)
	}
	// Same size, other content: the read-back check refuses it.
	writeFile(t, filepath.Join(repo, "targets/releases/7.json"), content("other", 10))
	err = bundle.Write(context.Background(), dir, ix, signedIndex(t, testFleet(t), ix), &dirSource{dir: repo}, bundle.WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "targets/releases/7.json") {
		t.Fatalf("Write from a changed source: %v", err)
	}
	if got := listFiles(t, dir); !slices.Equal(got, []string{"metadata/root.json"}) {
		t.Errorf("the stick holds %q", got)
	}
}

// A listed file whose name is another's followed by the suffix Write gives its
// temporary files must not be written over by that other file's temporary.
func TestWriteTemporaryNameIsNotAListedFile(t *testing.T) {
	t.Parallel()
	files := []srcFile{
		{"store/deltas/a-b.delta.partial", content("listed", 9)},
		{"store/deltas/a-b.delta", content("delta", 8)},
	}
	dir := t.TempDir()
	ix := newIndex("b8", files, testPartSize)
	if err := ix.Check(); err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(context.Background(), dir, ix, signedIndex(t, testFleet(t), ix), &dirSource{dir: writeRepo(t, files)}, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkStick(t, dir, ix, files)
}

// WriteFile (the index, and a node's returns) replaces a file whole, leaving no temporary
// file, and on failure leaves nothing.
func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "returns.json")
	for _, data := range [][]byte{[]byte("the first returns"), []byte("second"), nil} {
		if err := bundle.WriteFile(p, data); err != nil {
			t.Fatalf("WriteFile: %v", err)
		}
		if got := readFile(t, p); !bytes.Equal(got, data) {
			t.Errorf("the file holds %q, want %q", got, data)
		}
		if got := listFiles(t, dir); !slices.Equal(got, []string{"returns.json"}) {
			t.Errorf("the directory holds %q", got)
		}
	}

	missing := filepath.Join(dir, "missing", "returns.json")
	if err := bundle.WriteFile(missing, []byte("x")); err == nil {
		t.Error("WriteFile into a missing directory: no error")
	}
	// A directory in the way: the rename fails, the temporary file is removed.
	busy := filepath.Join(dir, "busy")
	writeFile(t, filepath.Join(busy, "x"), []byte("x"))
	err := bundle.WriteFile(busy, []byte("data"))
	if err == nil || !strings.Contains(err.Error(), busy) {
		t.Errorf("WriteFile over a directory: %v, want an error naming it", err)
	}
	if got := listFiles(t, dir); !slices.Equal(got, []string{"busy/x", "returns.json"}) {
		t.Errorf("after the failures, the directory holds %q", got)
	}
}

func TestFreeSpace(t *testing.T) {
	t.Parallel()
	n, err := bundle.FreeSpace(t.TempDir())
	if err != nil || n <= 0 {
		t.Errorf("FreeSpace = %d, %v", n, err)
	}
	if _, err := bundle.FreeSpace(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("FreeSpace of a missing directory: no error")
	}
}
