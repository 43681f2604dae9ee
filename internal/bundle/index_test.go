package bundle_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/satchelcm/satchel/internal/bundle"
)

// setPartSize splits files into parts of n bytes for the rest of the test. A test that
// calls it must not be parallel: PartSize is the package's.
func setPartSize(t *testing.T, n int64) {
	t.Helper()
	old := bundle.PartSize
	bundle.PartSize = n
	t.Cleanup(func() { bundle.PartSize = old })
}

// content is n bytes that differ from those of any other seed, and from one part to the
// next (so that a swapped part does not go unseen).
func content(seed string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s:%d;", seed, i)
	}
	return b.Bytes()[:n]
}

// split is data's entry in an index, its parts of partSize bytes, worked out here rather
// than by Describe (so that tests using it need not change PartSize and can run in
// parallel; TestDescribeMatchesSplit checks that the two agree).
func split(path string, data []byte, partSize int) bundle.File {
	f := bundle.File{Path: path, Size: int64(len(data)), SHA256: hashOf(data)}
	if len(data) <= partSize {
		return f
	}
	for off := 0; off < len(data); off += partSize {
		part := data[off:min(off+partSize, len(data))]
		f.Parts = append(f.Parts, bundle.Part{Size: int64(len(part)), SHA256: hashOf(part)})
	}
	return f
}

func TestIndexCheckAccepts(t *testing.T) {
	t.Parallel()
	hash := hashOf([]byte("x"))
	parts := func(sizes ...int64) []bundle.Part {
		var out []bundle.Part
		for _, s := range sizes {
			out = append(out, bundle.Part{Size: s, SHA256: hash})
		}
		return out
	}
	many := make([]int64, 999)
	for i := range many {
		many[i] = 1
	}
	tests := []struct {
		name  string
		files []bundle.File
	}{
		{"one file", goodIndex().Files},
		{"no files", nil},
		{"every top directory", []bundle.File{
			{Path: "metadata/root.json", SHA256: hash},
			{Path: "targets/releases/7.json", SHA256: hash},
			{Path: "store/deltas/a-b.delta", SHA256: hash},
			{Path: "secrets/7/index", SHA256: hash},
		}},
		{"an empty file", []bundle.File{{Path: "store/empty", Size: 0, SHA256: hashOf(nil)}}},
		{"names with dots inside", []bundle.File{{Path: "store/deltas/a..b.delta", SHA256: hash}, {Path: "store/x.", SHA256: hash}}},
		{"parts, the last shorter", []bundle.File{{Path: "store/big", Size: 25, SHA256: hash, Parts: parts(10, 10, 5)}}},
		{"parts of equal size", []bundle.File{{Path: "store/big", Size: 30, SHA256: hash, Parts: parts(10, 10, 10)}}},
		{"999 parts", []bundle.File{{Path: "store/big", Size: 999, SHA256: hash, Parts: parts(many...)}}},
		{"same name in two directories", []bundle.File{{Path: "store/a", SHA256: hash}, {Path: "secrets/a", SHA256: hash}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ix := goodIndex()
			ix.Files = tt.files
			if err := ix.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

func TestIndexCheckRefuses(t *testing.T) {
	t.Parallel()
	hash := hashOf([]byte("x"))
	file := func(path string) bundle.File { return bundle.File{Path: path, Size: 1, SHA256: hash} }
	parts := func(sizes ...int64) []bundle.Part {
		var out []bundle.Part
		for _, s := range sizes {
			out = append(out, bundle.Part{Size: s, SHA256: hash})
		}
		return out
	}
	thousand := make([]int64, 1000)
	for i := range thousand {
		thousand[i] = 1
	}
	withFiles := func(files ...bundle.File) func(*bundle.Index) {
		return func(ix *bundle.Index) { ix.Files = files }
	}

	tests := []struct {
		name   string
		change func(*bundle.Index)
		want   string // in the error
	}{
		{"no format", func(ix *bundle.Index) { ix.Format = "" }, "format"},
		{"a newer format", func(ix *bundle.Index) { ix.Format = "satchel.bundle/v2" }, "format"},
		{"the returns' format", func(ix *bundle.Index) { ix.Format = bundle.ReturnsFormat }, "format"},
		{"no ID", func(ix *bundle.Index) { ix.ID = "" }, "ID"},
		{"ID with a slash", func(ix *bundle.Index) { ix.ID = "a/b" }, "ID"},
		{"ID ..", func(ix *bundle.Index) { ix.ID = ".." }, "ID"},
		{"ID ../x", func(ix *bundle.Index) { ix.ID = "../x" }, "ID"},
		{"ID absolute", func(ix *bundle.Index) { ix.ID = "/x" }, "ID"},
		{"release 0", func(ix *bundle.Index) { ix.Release = 0 }, "release"},

		{"path with ..", withFiles(file("store/../secrets/x")), "store/../secrets/x"},
		{"path ../", withFiles(file("../store/x")), "../store/x"},
		{"path ending in ..", withFiles(file("store/..")), "store/.."},
		{"absolute path", withFiles(file("/store/x")), "/store/x"},
		{"backslash", withFiles(file(`store\x`)), `store\\x`},
		{"backslash inside", withFiles(file(`store/a\..\..\x`)), `store/a\\..`},
		{"path .", withFiles(file(".")), `"."`},
		{"path ./store/x", withFiles(file("./store/x")), "./store/x"},
		{"empty path", withFiles(file("")), `""`},
		{"double slash", withFiles(file("store//x")), "store//x"},
		{"trailing slash", withFiles(file("store/x/")), "store/x/"},
		{"in returns/", withFiles(file("returns/x")), "returns/x"},
		{"the index itself", withFiles(file(bundle.IndexFile)), bundle.IndexFile},
		{"etc/passwd", withFiles(file("etc/passwd")), "etc/passwd"},
		{"a top directory in another case", withFiles(file("Store/x")), "Store/x"},
		{"a top directory itself", withFiles(file("store")), `"store"`},
		{"hidden at the top", withFiles(file(".x")), ".x"},
		{"hidden in store", withFiles(file("store/.hidden")), "store/.hidden"},
		{"hidden directory", withFiles(file("store/.git/config")), "store/.git/config"},
		{"hidden top", withFiles(file(".store/x")), ".store/x"},

		{"listed twice", withFiles(file("store/a"), file("metadata/m"), file("store/a")), "store/a listed twice"},
		{"listed twice, in another case", withFiles(file("store/A"), file("store/a")), "store/a listed twice"},
		{"listed twice, directories in another case", withFiles(file("secrets/7/Index"), file("secrets/7/index")), "listed twice"},
		// A split file's parts are files on the stick: another file of the same name
		// would be written over one of them.
		{"a file named as another's part", withFiles(
			bundle.File{Path: "store/big", Size: 20, SHA256: hash, Parts: parts(10, 10)},
			file("store/big.001")), "store/big.001"},
		{"a file named as another's part, another case", withFiles(
			file("store/BIG.000"),
			bundle.File{Path: "store/big", Size: 20, SHA256: hash, Parts: parts(10, 10)}), "store/big"},

		{"negative size", withFiles(bundle.File{Path: "store/a", Size: -1, SHA256: hash}), "store/a"},
		{"no hash", withFiles(bundle.File{Path: "store/a", Size: 1}), "store/a"},
		{"a short hash", withFiles(bundle.File{Path: "store/a", Size: 1, SHA256: hash[:63]}), "store/a"},
		{"a long hash", withFiles(bundle.File{Path: "store/a", Size: 1, SHA256: hash + "0"}), "store/a"},
		{"an uppercase hash", withFiles(bundle.File{Path: "store/a", Size: 1, SHA256: strings.ToUpper(hash)}), "store/a"},
		{"a hash not hex", withFiles(bundle.File{Path: "store/a", Size: 1, SHA256: strings.Repeat("g", 64)}), "store/a"},

		{"a part of size 0", withFiles(bundle.File{Path: "store/big", Size: 10, SHA256: hash, Parts: parts(10, 0)}), "part 1"},
		{"a part of negative size", withFiles(bundle.File{Path: "store/big", Size: 10, SHA256: hash, Parts: parts(15, -5)}), "part 1"},
		{"a part without hash", withFiles(bundle.File{Path: "store/big", Size: 20, SHA256: hash,
			Parts: []bundle.Part{{Size: 10, SHA256: hash}, {Size: 10}}}), "part 1"},
		{"parts short of the size", withFiles(bundle.File{Path: "store/big", Size: 26, SHA256: hash, Parts: parts(10, 10, 5)}), "for a file of 26"},
		{"parts over the size", withFiles(bundle.File{Path: "store/big", Size: 24, SHA256: hash, Parts: parts(10, 10, 5)}), "for a file of 24"},
		{"parts of unequal size", withFiles(bundle.File{Path: "store/big", Size: 25, SHA256: hash, Parts: parts(10, 5, 10)}), "part 1"},
		{"1000 parts", withFiles(bundle.File{Path: "store/big", Size: 1000, SHA256: hash, Parts: parts(thousand...)}), "1000 parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ix := goodIndex()
			tt.change(ix)
			err := ix.Check()
			if err == nil {
				t.Fatal("Check accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check: %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestIndexAccessors(t *testing.T) {
	t.Parallel()
	if got := bundle.PartPath("store/deltas/a-b", 7); got != "store/deltas/a-b.007" {
		t.Errorf("PartPath = %q", got)
	}
	if got := bundle.PartPath("store/x", 998); got != "store/x.998" {
		t.Errorf("PartPath = %q", got)
	}
	ix := goodIndex()
	ix.Files = []bundle.File{
		split("metadata/root.json", content("root", 7), 10),
		split("store/big", content("big", 25), 10),
		split("secrets/7/index", nil, 10),
	}
	if err := ix.Check(); err != nil {
		t.Fatal(err)
	}
	if got := ix.Size(); got != 32 {
		t.Errorf("Size = %d, want 32", got)
	}
	want := []string{"metadata/root.json", "store/big.000", "store/big.001", "store/big.002", "secrets/7/index"}
	if got := ix.Pieces(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Pieces = %q, want %q", got, want)
	}
	if !ix.For("school-a") || !ix.For("school-b") || ix.For("school-c") || ix.For("") {
		t.Errorf("For: wrong for the nodes %q", ix.Nodes)
	}
}

func TestDescribe(t *testing.T) {
	setPartSize(t, 10)
	tests := []struct {
		size      int
		wantParts []int64 // nil: the file is one piece
	}{
		{0, nil},
		{1, nil},
		{9, nil},
		{10, nil}, // exactly PartSize: not larger, so not split
		{11, []int64{10, 1}},
		{20, []int64{10, 10}},
		{21, []int64{10, 10, 1}},
		{30, []int64{10, 10, 10}},
		{35, []int64{10, 10, 10, 5}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			data := content("describe", tt.size)
			path := "store/deltas/f"
			// A reader giving a byte at a time: Describe must not rely on full reads.
			f, err := bundle.Describe(path, iotest.OneByteReader(bytes.NewReader(data)))
			if err != nil {
				t.Fatal(err)
			}
			if f.Path != path || f.Size != int64(tt.size) || f.SHA256 != hashOf(data) {
				t.Errorf("Describe = %s %d %s, want %s %d %s", f.Path, f.Size, f.SHA256, path, tt.size, hashOf(data))
			}
			if len(f.Parts) != len(tt.wantParts) {
				t.Fatalf("%d parts, want %d", len(f.Parts), len(tt.wantParts))
			}
			var off int64
			for i, p := range f.Parts {
				if p.Size != tt.wantParts[i] {
					t.Errorf("part %d: %d bytes, want %d", i, p.Size, tt.wantParts[i])
				}
				if want := hashOf(data[off : off+p.Size]); p.SHA256 != want {
					t.Errorf("part %d: SHA-256 %s, want %s", i, p.SHA256, want)
				}
				off += p.Size
			}
			ix := goodIndex()
			ix.Files = []bundle.File{f}
			if err := ix.Check(); err != nil {
				t.Errorf("the file described does not check: %v", err)
			}
		})
	}
}

// TestDescribeMatchesSplit checks the helper split, which parallel tests use instead of
// Describe, against Describe.
func TestDescribeMatchesSplit(t *testing.T) {
	setPartSize(t, 10)
	for _, n := range []int{0, 3, 10, 11, 19, 20, 21, 35, 100} {
		data := content("match", n)
		got, err := bundle.Describe("store/x", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if want := split("store/x", data, 10); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%d bytes: Describe = %+v, split = %+v", n, got, want)
		}
	}
}

// A file needing more parts than a name's three digits allow is described, and the index
// refuses it: PartSize is too small for it.
func TestDescribeTooManyParts(t *testing.T) {
	setPartSize(t, 1)
	for _, tt := range []struct {
		size int
		ok   bool
	}{{999, true}, {1000, false}} {
		f, err := bundle.Describe("store/big", bytes.NewReader(content("many", tt.size)))
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Parts) != tt.size {
			t.Fatalf("%d parts, want %d", len(f.Parts), tt.size)
		}
		ix := goodIndex()
		ix.Files = []bundle.File{f}
		if err := ix.Check(); (err == nil) != tt.ok {
			t.Errorf("%d parts: Check = %v", tt.size, err)
		}
	}
}

func TestDescribeReadError(t *testing.T) {
	setPartSize(t, 10)
	cut := errors.New("device gone")
	r := io.MultiReader(bytes.NewReader(content("x", 15)), iotest.ErrReader(cut))
	_, err := bundle.Describe("store/deltas/f", r)
	if !errors.Is(err, cut) || !strings.Contains(err.Error(), "store/deltas/f") {
		t.Errorf("Describe = %v, want the read error, naming the file", err)
	}
}
