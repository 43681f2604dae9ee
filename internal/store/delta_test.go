package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The edits between the two releases of the delta tests, from which the size bounds are
// derived.
const (
	dBigSize    = 2 << 20  // big.bin: pseudo-random
	dRegion     = 4 << 10  // bytes rewritten in place per region of big.bin
	dTextSize   = 1 << 20  // text.txt: text-like
	dInsert     = 64 << 10 // bytes inserted into text.txt
	dInsertAt   = 40_000
	dEditOffset = 1000 // etc/a.conf: bytes overwritten in place
)

// dRegions are where big.bin is rewritten: far enough apart to fall in different chunks.
var dRegions = []int{150_000, 450_000, 800_000, 1_100_000, 1_500_000, 1_900_000}

var dEdit = []byte("EDITED LINE\n")

func deltaV1() map[string]node {
	return map[string]node{
		"big.bin":      {content: randomBytes(101, dBigSize), mode: 0o644},
		"text.txt":     {content: logText(102, dTextSize), mode: 0o644},
		"etc":          {dir: true, mode: 0o755},
		"etc/a.conf":   {content: textBytes(103, 3000), mode: 0o644},
		"etc/b.conf":   {content: textBytes(104, 5000), mode: 0o600},
		"etc/c.conf":   {content: textBytes(105, 2000), mode: 0o644},
		"gone.txt":     {content: textBytes(106, 1000), mode: 0o644},
		"old-name.bin": {content: randomBytes(107, 150_000), mode: 0o644},
		"empty":        {content: []byte{}, mode: 0o644},
		"link":         {target: "etc/a.conf"},
	}
}

// deltaInserted is what v2 inserts into text.txt.
func deltaInserted() []byte { return logText(110, dInsert) }

// logText returns n deterministic bytes of text like a log: every line differs (a counter),
// words repeat.
func logText(seed uint64, n int) []byte {
	words := []string{"satchel", "chunk", "store", "tree", "school", "library", "content", "the", "a", "of",
		"mirror", "link", "fetched", "served", "request", "GET", "/index.html", "200", "304", "404"}
	r := rand.New(rand.NewPCG(seed, 9))
	var b bytes.Buffer
	for line := 0; b.Len() < n; line++ {
		fmt.Fprintf(&b, "%08d host%02d satchel[%d]:", line, r.IntN(40), 1000+r.IntN(9000))
		for range 3 + r.IntN(8) {
			b.WriteByte(' ')
			b.WriteString(words[r.IntN(len(words))])
		}
		fmt.Fprintf(&b, " %x\n", r.Uint32())
	}
	return b.Bytes()[:n]
}

func deltaV2() map[string]node {
	n := deltaV1()
	big := slices.Clone(n["big.bin"].content)
	for i, off := range dRegions {
		copy(big[off:], randomBytes(200+uint64(i), dRegion))
	}
	n["big.bin"] = node{content: big, mode: 0o644}
	text := n["text.txt"].content
	n["text.txt"] = node{content: slices.Concat(text[:dInsertAt], deltaInserted(), text[dInsertAt:]), mode: 0o644}
	a := slices.Clone(n["etc/a.conf"].content)
	copy(a[dEditOffset:], dEdit)
	n["etc/a.conf"] = node{content: a, mode: 0o644}
	n["etc/b.conf"] = node{content: append(slices.Clone(n["etc/b.conf"].content), "appended = yes\n"...), mode: 0o600}
	delete(n, "gone.txt")
	n["added.txt"] = node{content: textBytes(111, 4000), mode: 0o644}
	n["new-name.bin"] = n["old-name.bin"]
	delete(n, "old-name.bin")
	n["newdir"] = node{dir: true, mode: 0o755}
	n["newdir/sub"] = node{dir: true, mode: 0o700}
	n["newdir/sub/deep.txt"] = node{content: textBytes(112, 500), mode: 0o644}
	n["link"] = node{target: "text.txt"}
	n["link2"] = node{target: "newdir/sub"}
	return n
}

// writeNodes writes nodes into a fresh directory and returns it.
func writeNodes(t testing.TB, nodes map[string]node) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, nodes)
	return dir
}

func addDir(t testing.TB, s *Store, dir string) ID {
	t.Helper()
	id, err := s.Add(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func buildDelta(t testing.TB, s *Store, from, to ID) DeltaStats {
	t.Helper()
	var last DeltaProgress
	calls := 0
	st, err := s.BuildDelta(context.Background(), from, to, func(p DeltaProgress) { last = p; calls++ })
	if err != nil {
		t.Fatalf("BuildDelta %s: %v", deltaName(from, to), err)
	}
	// Progress counts every entry of the pack, and its bytes.
	x, err := s.DeltaIndex(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.Entries); calls != n || last.Entries != n || last.TotalEntries != n || last.PackBytes != x.PackSize() {
		t.Errorf("BuildDelta %s: progress called %d times, last %+v; the pack has %d entries, %d bytes",
			deltaName(from, to), calls, last, n, x.PackSize())
	}
	return st
}

func applyDelta(t testing.TB, s *Store, dir string, from, to ID) int {
	t.Helper()
	n, err := s.ApplyDelta(context.Background(), dir, from, to)
	if err != nil {
		t.Fatalf("ApplyDelta %s: %v", deltaName(from, to), err)
	}
	return n
}

func deltaIndex(t testing.TB, s *Store, from, to ID) *DeltaIndex {
	t.Helper()
	x, err := s.DeltaIndex(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertComplete checks that the store holds all of root, and that every stored file is
// sound.
func assertComplete(t testing.TB, s *Store, root ID) {
	t.Helper()
	objs, chunks, err := s.Missing(context.Background(), root)
	if err != nil || len(objs)+len(chunks) > 0 {
		t.Errorf("missing of %s: %d objects, %d chunks, %v", root, len(objs), len(chunks), err)
	}
	assertSound(t, s)
}

// assertSound checks that every file in the store is what its name says.
func assertSound(t testing.TB, s *Store) {
	t.Helper()
	rep, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Corrupt {
		t.Errorf("corrupt: %v", d.Err)
	}
}

// chunkSet returns the IDs of the chunks of f.
func chunkSet(f *FileObject) map[ID]bool {
	m := map[ID]bool{}
	for _, c := range f.Chunks {
		m[c.ID] = true
	}
	return m
}

// packBytesOf sums the payloads of the entries whose targets are in ids.
func packBytesOf(x *DeltaIndex, ids map[ID]bool) (n int64, entries int) {
	for _, e := range x.Entries {
		if ids[e.Target] {
			n += e.Length
			entries++
		}
	}
	return n, entries
}

func zstdBest(t testing.TB, b []byte) int {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return len(enc.EncodeAll(b, nil))
}

// TestDeltaRoundTrip: deltas from nothing and between two releases take a client store to
// the new release, byte for byte, and the update delta carries about the changed bytes.
func TestDeltaRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newStore(t)
	v1Dir, v2Dir := writeNodes(t, deltaV1()), writeNodes(t, deltaV2())
	v1, v2 := addDir(t, srv, v1Dir), addDir(t, srv, v2Dir)
	var zero ID
	full1 := buildDelta(t, srv, zero, v1)
	full2 := buildDelta(t, srv, zero, v2)
	upd := buildDelta(t, srv, v1, v2)
	t.Logf("zero→v1 %+v", full1)
	t.Logf("zero→v2 %+v", full2)
	t.Logf("v1→v2   %+v", upd)

	// A client: nothing, then v1, then v2.
	cli := newStore(t)
	n1 := applyDelta(t, cli, srv.Dir(), zero, v1)
	assertComplete(t, cli, v1)
	if x := deltaIndex(t, srv, zero, v1); n1 != len(x.Entries) {
		t.Errorf("zero→v1: applied %d of %d entries", n1, len(x.Entries))
	}
	n2 := applyDelta(t, cli, srv.Dir(), v1, v2)
	assertComplete(t, cli, v2)
	x := deltaIndex(t, srv, v1, v2)
	if n2 != len(x.Entries) {
		t.Errorf("v1→v2: applied %d of %d entries", n2, len(x.Entries))
	}
	// Again: everything is there, nothing is applied.
	if n := applyDelta(t, cli, srv.Dir(), v1, v2); n != 0 {
		t.Errorf("v1→v2 again: applied %d entries", n)
	}
	// The client reproduces v2 byte for byte.
	out := t.TempDir()
	_, r := matRootAt(t, out)
	if _, err := cli.MaterializeTree(ctx, r, "/v2", v2, TreeOptions{}); err != nil {
		t.Fatal(err)
	}
	assertState(t, "v2 from the client", diskState(t, filepath.Join(out, "v2")), diskState(t, v2Dir))

	// The full delta to v2 alone makes a store complete too.
	other := newStore(t)
	applyDelta(t, other, srv.Dir(), zero, v2)
	assertComplete(t, other, v2)

	// Kinds and encodings: every object and chunk of v2 that v1 lacks, once (the renamed
	// file is not sent again); whatever has an old version is a delta against it. New:
	// the trees ., etc, newdir, newdir/sub; the files big.bin, text.txt, a.conf, b.conf,
	// added.txt, deep.txt. Without an old version: newdir, newdir/sub, added.txt and
	// deep.txt (objects and their one chunk each).
	if upd.Trees != 4 || upd.Files != 6 || upd.Stored != 6 || upd.Delta != upd.Trees+upd.Files+upd.Chunks-6 || upd.Dict != 0 {
		t.Errorf("v1→v2: %+v", upd)
	}
	if full1.Delta != 0 || full1.Stored != full1.Trees+full1.Files+full1.Chunks {
		t.Errorf("zero→v1: %+v", full1)
	}
	for i, e := range x.Entries {
		if i > 0 && e.Kind.rank() < x.Entries[i-1].Kind.rank() {
			t.Errorf("entry %d: %s after %s", i, e.Kind, x.Entries[i-1].Kind)
		}
	}

	// Sizes. big.bin: each rewritten region costs about its bytes (random: incompressible),
	// however long the chunks it changed.
	f1 := fileObjects(t, srv, v1)
	f2 := fileObjects(t, srv, v2)
	newBig := chunkSet(f2["big.bin"])
	for id := range chunkSet(f1["big.bin"]) {
		delete(newBig, id)
	}
	bigPack, bigEntries := packBytesOf(x, newBig)
	bigRaw := newChunkBytes(f2["big.bin"], f1["big.bin"])
	t.Logf("big.bin: %d new chunks, %d bytes; pack %d bytes", bigEntries, bigRaw, bigPack)
	if bigEntries != len(newBig) || bigEntries < len(dRegions) {
		t.Errorf("big.bin: %d entries for %d new chunks, %d regions rewritten", bigEntries, len(newBig), len(dRegions))
	}
	if limit := int64(len(dRegions)*dRegion + bigEntries*256); bigPack > limit {
		t.Errorf("big.bin: the pack carries %d bytes for %d rewritten, want at most %d", bigPack, len(dRegions)*dRegion, limit)
	}
	if bigPack*4 > bigRaw {
		t.Errorf("big.bin: the pack carries %d bytes, the new chunks have %d: want a quarter at most", bigPack, bigRaw)
	}
	// text.txt: the insertion costs about its compressed size.
	newText := chunkSet(f2["text.txt"])
	for id := range chunkSet(f1["text.txt"]) {
		delete(newText, id)
	}
	textPack, textEntries := packBytesOf(x, newText)
	textRaw := newChunkBytes(f2["text.txt"], f1["text.txt"])
	insertZ := zstdBest(t, deltaInserted())
	t.Logf("text.txt: %d new chunks, %d bytes; pack %d bytes; the insertion compressed alone %d", textEntries, textRaw, textPack, insertZ)
	if limit := int64(insertZ + textEntries*256); textPack > limit {
		t.Errorf("text.txt: the pack carries %d bytes, want at most %d (the %d inserted bytes compress to %d)", textPack, limit, dInsert, insertZ)
	}
	// The small edited files: a few bytes more than the edit each.
	for name, edit := range map[string]int{"etc/a.conf": len(dEdit), "etc/b.conf": len("appended = yes\n")} {
		if n, _ := packBytesOf(x, chunkSet(f2[name])); n > int64(edit)+64 {
			t.Errorf("%s: the pack carries %d bytes for an edit of %d", name, n, edit)
		}
	}
	// The whole pack: those, the new files (compressed), and the ten objects (512 bytes at
	// most each, most of them deltas).
	var newFiles int64
	for _, name := range []string{"added.txt", "newdir/sub/deep.txt"} {
		newFiles += int64(zstdBest(t, deltaV2()[name].content)) + 64
	}
	if limit := bigPack + textPack + newFiles + 2*(int64(len(dEdit))+64) + 10*512; upd.PackBytes > limit {
		t.Errorf("v1→v2: a pack of %d bytes, want at most %d", upd.PackBytes, limit)
	}
	if upd.PackBytes*5 > upd.TargetBytes {
		t.Errorf("v1→v2: a pack of %d bytes for %d of content: want a fifth at most", upd.PackBytes, upd.TargetBytes)
	}
	if upd.PackBytes*20 > full2.PackBytes {
		t.Errorf("v1→v2: %d bytes, zero→v2: %d: want a twentieth at most", upd.PackBytes, full2.PackBytes)
	}
}

// TestDeltaFileRoots: a delta between two file objects.
func TestDeltaFileRoots(t *testing.T) {
	t.Parallel()
	srv := newStore(t)
	v1, f1 := addBytes(t, srv, deltaV1()["big.bin"].content)
	v2, f2 := addBytes(t, srv, deltaV2()["big.bin"].content)
	buildDelta(t, srv, ID{}, v1)
	st := buildDelta(t, srv, v1, v2)
	if st.Trees != 0 || st.Files != 1 || st.Chunks != newChunkCount(f2, f1) || st.Delta != 1+st.Chunks {
		t.Errorf("v1→v2: %+v", st)
	}
	if limit := int64(len(dRegions)*dRegion + (st.Chunks+1)*256); st.PackBytes > limit {
		t.Errorf("v1→v2: a pack of %d bytes for %d rewritten, want at most %d", st.PackBytes, len(dRegions)*dRegion, limit)
	}
	cli := newStore(t)
	applyDelta(t, cli, srv.Dir(), ID{}, v1)
	applyDelta(t, cli, srv.Dir(), v1, v2)
	assertComplete(t, cli, v2)
	if got := content(t, cli, v2); !bytes.Equal(got, deltaV2()["big.bin"].content) {
		t.Error("the client's v2 differs")
	}
	// A file from a tree, and a tree from a file: no old version, nothing is a delta.
	tree := addDir(t, srv, writeNodes(t, deltaV1()))
	if st := buildDelta(t, srv, v2, tree); st.Delta != 0 {
		t.Errorf("file→tree: %+v", st)
	}
	if st := buildDelta(t, srv, tree, v2); st.Delta != 0 || st.Files != 1 {
		t.Errorf("tree→file: %+v", st)
	}
	// Missing roots.
	if _, err := srv.BuildDelta(context.Background(), v1, Sum([]byte("nothing")), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown target: %v", err)
	}
	if _, err := srv.BuildDelta(context.Background(), Sum([]byte("nothing")), v2, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown base: %v", err)
	}
	if _, err := cli.ApplyDelta(context.Background(), srv.Dir(), v2, v1); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such delta: %v", err)
	}
}

// newChunkCount counts the distinct chunks of f that old lacks.
func newChunkCount(f, old *FileObject) int {
	have := chunkSet(old)
	n := 0
	for id := range chunkSet(f) {
		if !have[id] {
			n++
		}
	}
	return n
}

// TestDeltaRepeatedChunks: a file whose old version repeats one chunk (a run of zeros)
// around an insertion. The insertion's bases were that chunk twice, which the index format
// forbids: every client refused the delta.
func TestDeltaRepeatedChunks(t *testing.T) {
	t.Parallel()
	srv := newStore(t)
	c1 := slices.Concat(randomBytes(1, 100_000), make([]byte, 1<<20), randomBytes(2, 100_000))
	c2 := slices.Concat(c1[:600_000], randomBytes(3, 20_000), c1[600_000:])
	v1, _ := addBytes(t, srv, c1)
	v2, _ := addBytes(t, srv, c2)
	buildDelta(t, srv, ID{}, v1)
	st := buildDelta(t, srv, v1, v2)
	if st.PackBytes > 20_000+4096 {
		t.Errorf("a pack of %d bytes for 20,000 inserted", st.PackBytes)
	}
	cli := newStore(t)
	applyDelta(t, cli, srv.Dir(), ID{}, v1)
	applyDelta(t, cli, srv.Dir(), v1, v2)
	assertComplete(t, cli, v2)

	// chunkBases itself: old A Z Z B, new A Z N Z B.
	a, z, n, b := Sum([]byte("a")), Sum([]byte("z")), Sum([]byte("n")), Sum([]byte("b"))
	ref := func(ids ...ID) *FileObject {
		f := &FileObject{}
		for _, id := range ids {
			f.Chunks = append(f.Chunks, ChunkRef{ID: id, Length: 1000})
		}
		return f
	}
	bases := chunkBases(ref(a, z, n, z, b), ref(a, z, z, b), deltaMaxBases, deltaMaxDictBytes)
	if !slices.Equal(bases[2], []ID{z}) {
		t.Errorf("bases of the insertion: %v, want the repeated chunk once", bases[2])
	}
}

// TestDeltaDeterministic: two stores build byte-identical deltas from the same trees.
func TestDeltaDeterministic(t *testing.T) {
	t.Parallel()
	v1Dir, v2Dir := writeNodes(t, deltaV1()), writeNodes(t, deltaV2())
	var files [2][][]byte
	var v1, v2 ID
	for i := range files {
		s := newStore(t)
		v1, v2 = addDir(t, s, v1Dir), addDir(t, s, v2Dir)
		for _, pair := range [][2]ID{{{}, v1}, {v1, v2}} {
			buildDelta(t, s, pair[0], pair[1])
			for _, p := range []string{DeltaIndexPath(pair[0], pair[1]), DeltaPackPath(pair[0], pair[1])} {
				files[i] = append(files[i], readFile(t, filepath.Join(s.Dir(), p)))
			}
		}
	}
	for j := range files[0] {
		if !bytes.Equal(files[0][j], files[1][j]) {
			t.Errorf("file %d differs: %d and %d bytes", j, len(files[0][j]), len(files[1][j]))
		}
	}
}

// smallDelta builds, in a fresh server store, the delta between two small releases (and
// the delta from nothing to the first), and returns a client store holding the first.
func smallDelta(t testing.TB) (srv, cli *Store, v1, v2 ID) {
	t.Helper()
	n1 := map[string]node{
		"a.txt":   {content: logText(1, 3000), mode: 0o644},
		"b.bin":   {content: randomBytes(2, 100_000), mode: 0o644},
		"c.txt":   {content: logText(3, 60_000), mode: 0o644},
		"sub":     {dir: true, mode: 0o755},
		"sub/d":   {content: []byte("d\n"), mode: 0o644},
		"sub/lnk": {target: "../a.txt"},
	}
	n2 := map[string]node{
		"a.txt":   {content: slices.Concat(logText(1, 3000)[:1000], dEdit, logText(1, 3000)[1000+len(dEdit):]), mode: 0o644},
		"b.bin":   {content: slices.Concat(randomBytes(2, 100_000)[:50_000], randomBytes(4, 300), randomBytes(2, 100_000)[50_300:]), mode: 0o644},
		"c.txt":   {content: slices.Concat(logText(3, 60_000)[:20_000], logText(5, 2000), logText(3, 60_000)[20_000:]), mode: 0o644},
		"sub":     {dir: true, mode: 0o755},
		"sub/lnk": {target: "../c.txt"},
		"new.txt": {content: logText(6, 500), mode: 0o644},
	}
	srv = newStore(t)
	v1, v2 = addDir(t, srv, writeNodes(t, n1)), addDir(t, srv, writeNodes(t, n2))
	buildDelta(t, srv, ID{}, v1)
	buildDelta(t, srv, v1, v2)
	cli = newStore(t)
	applyDelta(t, cli, srv.Dir(), ID{}, v1)
	return srv, cli, v1, v2
}

// forget removes the targets of x from the store, taking it back to before x was applied.
func forget(t testing.TB, s *Store, x *DeltaIndex) {
	t.Helper()
	for _, e := range x.Entries {
		p := s.ObjectPath(e.Target)
		if e.Kind == DeltaChunk {
			p = s.ChunkPath(e.Target)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// entryAt returns the index of the entry whose payload holds pack byte off.
func entryAt(x *DeltaIndex, off int64) int {
	i, _ := slices.BinarySearchFunc(x.Entries, off, func(e DeltaEntry, off int64) int {
		switch {
		case e.End() <= off:
			return -1
		case e.Offset > off:
			return 1
		}
		return 0
	})
	return i
}

// mirror copies the delta from → to of store s into a fresh directory laid out as a store,
// with change applied to the pack's bytes and the index's (either may be nil).
func mirror(t testing.TB, s *Store, from, to ID, pack, idx func([]byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, deltasDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		p      string
		change func([]byte) []byte
	}{{DeltaPackPath(from, to), pack}, {DeltaIndexPath(from, to), idx}} {
		b := readFile(t, filepath.Join(s.Dir(), f.p))
		if f.change != nil {
			b = f.change(slices.Clone(b))
		}
		if err := os.WriteFile(filepath.Join(dir, f.p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func flipAt(at int) func([]byte) []byte {
	return func(b []byte) []byte { b[at] ^= 0x10; return b }
}

// TestDeltaPackFlippedBytes: any byte of a pack flipped is refused, with an error that
// names the entry, or (in a delta payload, where a flip can leave what it decodes to
// unchanged) decodes to the right content; nothing wrong is ever stored.
func TestDeltaPackFlippedBytes(t *testing.T) {
	t.Parallel()
	srv, cli, v1, v2 := smallDelta(t)
	x := deltaIndex(t, srv, v1, v2)
	pack := readFile(t, filepath.Join(srv.Dir(), DeltaPackPath(v1, v2)))
	if int64(len(pack)) != x.PackSize() || len(pack) > 64<<10 {
		t.Fatalf("a pack of %d bytes, the index says %d", len(pack), x.PackSize())
	}
	// Every byte, through the applier.
	a := cli.NewDeltaApplier(x)
	defer a.Close()
	harmless := map[string]int{}
	mask := rand.New(rand.NewPCG(3, 4))
	for off := range int64(len(pack)) {
		i := entryAt(x, off)
		e := &x.Entries[i]
		payload := slices.Clone(pack[e.Offset:e.End()])
		payload[off-e.Offset] ^= byte(1 + mask.IntN(255))
		forget(t, cli, x)
		if !a.BasesPresent(i) {
			t.Fatalf("entry %d: bases missing", i)
		}
		err := a.Apply(i, payload)
		if err == nil {
			if e.Encoding == EncStored {
				t.Errorf("byte %d (entry %s, stored form) flipped: accepted", off, e)
			}
			// A zstd frame has bits that change nothing it decodes to (the header's unused
			// bit, its window size): the right content, stored anew.
			harmless[string(rune(e.Encoding))]++
			if err := readTarget(cli, e); err != nil {
				t.Errorf("byte %d flipped: accepted, then %v", off, err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), e.Target.String()) {
			t.Errorf("byte %d flipped: %v; want ErrCorrupt naming %s", off, err, e.Target)
		}
		if a.Have(i) {
			t.Errorf("byte %d flipped: refused, yet %s is stored", off, e)
		}
	}
	t.Logf("%d bytes flipped; accepted (decoding to the right content), by encoding: %v", len(pack), harmless)
	assertSound(t, cli)

	// A seeded sample, through ApplyDelta from a copy of the files.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := r.IntN(len(pack))
		forget(t, cli, x)
		dir := mirror(t, srv, v1, v2, flipAt(off), nil)
		n, err := cli.ApplyDelta(context.Background(), dir, v1, v2)
		e := &x.Entries[entryAt(x, int64(off))]
		switch {
		case err == nil:
			if e.Encoding == EncStored || n != len(x.Entries) {
				t.Errorf("byte %d (%s) flipped: accepted, %d of %d entries applied", off, e, n, len(x.Entries))
			}
			assertComplete(t, cli, v2)
		case !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), e.Target.String()):
			t.Errorf("byte %d flipped: %v; want ErrCorrupt naming %s", off, err, e.Target)
		case a.Have(entryAt(x, int64(off))):
			t.Errorf("byte %d flipped: refused, yet %s is stored", off, e)
		}
		assertSound(t, cli) // what was applied before the damaged entry
		if t.Failed() {
			break
		}
	}
	assertSound(t, cli)
	// A client that has the damaged entry's target skips it, and completes.
	forget(t, cli, x)
	last := &x.Entries[len(x.Entries)-1]
	if err := cli.PutChunkCompressed(last.Target, mustChunkCompressed(t, srv, last.Target)); err != nil {
		t.Fatal(err)
	}
	dir := mirror(t, srv, v1, v2, flipAt(int(last.Offset)), nil)
	if n, err := cli.ApplyDelta(context.Background(), dir, v1, v2); err != nil || n != len(x.Entries)-1 {
		t.Errorf("with the damaged entry's target present: %d of %d applied, %v", n, len(x.Entries), err)
	}
	assertComplete(t, cli, v2)
}

// readTarget reads (and so verifies) e's target from the store.
func readTarget(s *Store, e *DeltaEntry) error {
	if e.Kind == DeltaChunk {
		_, err := s.Chunk(e.Target)
		return err
	}
	_, err := s.Object(e.Target)
	return err
}

func mustChunkCompressed(t testing.TB, s *Store, id ID) []byte {
	t.Helper()
	z, err := s.ChunkCompressed(id)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestDeltaIndexFlippedBytes: any byte of an index file flipped is refused.
func TestDeltaIndexFlippedBytes(t *testing.T) {
	t.Parallel()
	srv, cli, v1, v2 := smallDelta(t)
	z := readFile(t, filepath.Join(srv.Dir(), DeltaIndexPath(v1, v2)))
	before := storeFiles(t, cli)
	mask := rand.New(rand.NewPCG(5, 6))
	for off := range z {
		b := slices.Clone(z)
		b[off] ^= byte(1 + mask.IntN(255))
		if x, err := ReadDeltaIndex(b); err == nil {
			t.Errorf("byte %d of %d flipped: read, %d entries", off, len(z), len(x.Entries))
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("byte %d flipped: %v, want ErrMalformed", off, err)
		}
	}
	for _, off := range []int{0, 4, len(z) / 2, len(z) - 1} {
		dir := mirror(t, srv, v1, v2, nil, flipAt(off))
		if _, err := cli.ApplyDelta(context.Background(), dir, v1, v2); !errors.Is(err, ErrMalformed) ||
			!strings.Contains(err.Error(), DeltaIndexPath(v1, v2)) {
			t.Errorf("byte %d flipped: %v; want ErrMalformed naming the index file", off, err)
		}
	}
	if after := storeFiles(t, cli); !slices.Equal(before, after) {
		t.Errorf("a refused index stored %d files", len(after)-len(before))
	}
	// Truncated, or with a byte more: refused too.
	for _, b := range [][]byte{z[:len(z)-1], z[:len(z)/2], z[:4], nil, append(slices.Clone(z), 0)} {
		if _, err := ReadDeltaIndex(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d of %d bytes: %v", len(b), len(z), err)
		}
	}
}

// TestDeltaTruncatedPack: a pack shorter (or longer) than its index says is an error,
// before anything is applied.
func TestDeltaTruncatedPack(t *testing.T) {
	t.Parallel()
	srv, cli, v1, v2 := smallDelta(t)
	x := deltaIndex(t, srv, v1, v2)
	size := int(x.PackSize())
	before := storeFiles(t, cli)
	for _, n := range []int{0, 1, int(x.Entries[1].Offset), size / 2, size - 1, size + 1} {
		dir := mirror(t, srv, v1, v2, func(b []byte) []byte {
			if n > len(b) {
				return append(b, 0)
			}
			return b[:n]
		}, nil)
		got, err := cli.ApplyDelta(context.Background(), dir, v1, v2)
		if !errors.Is(err, ErrCorrupt) || got != 0 {
			t.Errorf("a pack of %d of %d bytes: %d applied, %v", n, size, got, err)
		}
	}
	if after := storeFiles(t, cli); !slices.Equal(before, after) {
		t.Errorf("a truncated pack stored %d files", len(after)-len(before))
	}
	// Missing altogether.
	dir := mirror(t, srv, v1, v2, nil, nil)
	if err := os.Remove(filepath.Join(dir, DeltaPackPath(v1, v2))); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ApplyDelta(context.Background(), dir, v1, v2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no pack: %v", err)
	}
}

// TestDeltaMissingBases: an entry whose base the client lacks is skipped, and what it
// would have given is then missing, to fetch singly.
func TestDeltaMissingBases(t *testing.T) {
	t.Parallel()
	srv, cli, v1, v2 := smallDelta(t)
	x := deltaIndex(t, srv, v1, v2)
	var base ID
	want := map[ID]bool{}
	for _, e := range x.Entries {
		if e.Kind == DeltaChunk && e.Encoding == EncDelta && base.IsZero() {
			base = e.Bases[0]
		}
	}
	if base.IsZero() {
		t.Fatal("no chunk delta")
	}
	removeChunks(t, cli, []ID{base})
	a := cli.NewDeltaApplier(x)
	defer a.Close()
	for i, e := range x.Entries {
		if slices.Contains(e.Bases, base) {
			want[e.Target] = true
			if a.BasesPresent(i) {
				t.Errorf("entry %s: bases present", &e)
			}
		}
	}
	n, err := cli.ApplyDelta(context.Background(), srv.Dir(), v1, v2)
	if err != nil || n != len(x.Entries)-len(want) {
		t.Fatalf("applied %d of %d entries (%d lack a base): %v", n, len(x.Entries), len(want), err)
	}
	objs, chunks, err := cli.Missing(context.Background(), v2)
	if err != nil || len(objs) != 0 || len(chunks) != len(want) {
		t.Fatalf("missing %v, %v, %v; want the chunks %v", objs, chunks, err, want)
	}
	for _, id := range chunks {
		if !want[id] {
			t.Errorf("missing %s, which has all its bases", id)
		}
		if err := cli.PutChunkCompressed(id, mustChunkCompressed(t, srv, id)); err != nil {
			t.Fatal(err)
		}
	}
	assertComplete(t, cli, v2)
}

// hostileIndex is a valid index with every kind of entry, to break in TestDeltaIndexHostile.
func hostileIndex() *DeltaIndex {
	id := func(s string) ID { return Sum([]byte(s)) }
	return &DeltaIndex{From: id("from"), To: id("to"), Entries: []DeltaEntry{
		{Kind: DeltaDict, Target: id("dict"), Encoding: EncStored, Offset: 0, Length: 100},
		{Kind: DeltaTree, Target: id("to"), Encoding: EncDelta, Bases: []ID{id("from")}, Offset: 100, Length: 10},
		{Kind: DeltaTree, Target: id("subtree"), Encoding: EncStored, Offset: 110, Length: 20},
		{Kind: DeltaFile, Target: id("file"), Encoding: EncDelta, Bases: []ID{id("old file")}, Offset: 130, Length: 5},
		{Kind: DeltaChunk, Target: id("c1"), Encoding: EncDelta, Bases: []ID{id("o1"), id("o2")}, Offset: 135, Length: 7},
		{Kind: DeltaChunk, Target: id("c2"), Encoding: EncDict, Bases: []ID{id("dict")}, Offset: 142, Length: 1000},
		{Kind: DeltaChunk, Target: id("c3"), Encoding: EncStored, Offset: 1142, Length: 1},
	}}
}

// TestDeltaIndexHostile: DecodeDeltaIndex refuses every index but a valid one, in its one
// canonical encoding.
func TestDeltaIndexHostile(t *testing.T) {
	t.Parallel()
	good := hostileIndex()
	enc := good.Encode()
	if x, err := DecodeDeltaIndex(enc); err != nil || !bytes.Equal(x.Encode(), enc) || x.PackSize() != 1143 {
		t.Fatalf("the valid index: %v", err)
	}
	id := func(s string) ID { return Sum([]byte(s)) }
	nine := make([]ID, 9)
	for i := range nine {
		nine[i] = id(fmt.Sprint("base", i))
	}
	for _, tc := range []struct {
		name   string
		change func(x *DeltaIndex)
		want   string
	}{
		{"zero target root", func(x *DeltaIndex) { x.To = ID{} }, "no target root"},
		{"length over the limit", func(x *DeltaIndex) { x.Entries[6].Length = maxPayload(DeltaChunk) + 1 }, "length"},
		{"dictionary over the limit", func(x *DeltaIndex) { x.Entries[0].Length = maxPayload(DeltaDict) + 1 }, "length"},
		{"length overflowing", func(x *DeltaIndex) { x.Entries[6].Length = -1 }, "length"},
		{"offset overflowing", func(x *DeltaIndex) { x.Entries[6].Offset = -1 }, "offset"},
		{"offset past the previous end", func(x *DeltaIndex) { x.Entries[3].Offset++ }, "contiguous"},
		{"offset before the previous end", func(x *DeltaIndex) { x.Entries[3].Offset-- }, "contiguous"},
		{"first offset not 0", func(x *DeltaIndex) { x.Entries[0].Offset = 1 }, "contiguous"},
		{"empty payload", func(x *DeltaIndex) { x.Entries[6].Length = 0 }, "empty"},
		{"duplicate target", func(x *DeltaIndex) { x.Entries[6].Target = x.Entries[4].Target }, "twice"},
		{"duplicate target, another kind", func(x *DeltaIndex) { x.Entries[3].Target = x.Entries[2].Target }, "twice"},
		{"zero target", func(x *DeltaIndex) { x.Entries[6].Target = ID{} }, "no target"},
		{"delta against a target", func(x *DeltaIndex) { x.Entries[4].Bases[1] = x.Entries[6].Target }, "target of the same delta"},
		{"delta against the dictionary", func(x *DeltaIndex) { x.Entries[4].Bases[0] = x.Entries[0].Target }, "target of the same delta"},
		{"delta against a later tree", func(x *DeltaIndex) { x.Entries[1].Bases[0] = x.Entries[2].Target }, "target of the same delta"},
		{"delta against itself", func(x *DeltaIndex) { x.Entries[4].Bases[0] = x.Entries[4].Target }, "bad base"},
		{"duplicate base", func(x *DeltaIndex) { x.Entries[4].Bases[1] = x.Entries[4].Bases[0] }, "bad base"},
		{"zero base", func(x *DeltaIndex) { x.Entries[4].Bases[1] = ID{} }, "bad base"},
		{"nine bases", func(x *DeltaIndex) { x.Entries[4].Bases = nine }, "base count"},
		{"object delta with two bases", func(x *DeltaIndex) { x.Entries[3].Bases = nine[:2] }, "one base"},
		{"delta without a base", func(x *DeltaIndex) { x.Entries[4].Bases = nil }, "bases"},
		{"stored with a base", func(x *DeltaIndex) { x.Entries[6].Bases = nine[:1] }, "bases"},
		{"delta from nothing", func(x *DeltaIndex) { x.From = ID{} }, "bases"},
		{"dictionary as a delta", func(x *DeltaIndex) { x.Entries[0].Encoding, x.Entries[0].Bases = EncDelta, nine[:1] }, "bases"},
		{"dictionary not first", func(x *DeltaIndex) {
			x.Entries[0], x.Entries[1] = x.Entries[1], x.Entries[0]
			x.Entries[0].Offset, x.Entries[1].Offset = 0, x.Entries[0].Length
		}, "a dictionary after a tree"},
		{"two dictionaries", func(x *DeltaIndex) {
			x.Entries[1] = DeltaEntry{Kind: DeltaDict, Target: id("dict2"), Encoding: EncStored, Offset: 100, Length: 10}
		}, "second dictionary"},
		{"chunk before a file", func(x *DeltaIndex) {
			x.Entries[3], x.Entries[4] = x.Entries[4], x.Entries[3]
			x.Entries[3].Offset, x.Entries[4].Offset = 130, 130+x.Entries[3].Length
		}, "a file object after a chunk"},
		{"pack dictionary missing", func(x *DeltaIndex) {
			x.Entries = x.Entries[1:]
			for i := range x.Entries {
				x.Entries[i].Offset -= 100
			}
		}, "not the pack's"},
		{"another dictionary", func(x *DeltaIndex) { x.Entries[5].Bases[0] = id("other dict") }, "not the pack's"},
		{"unknown kind", func(x *DeltaIndex) { x.Entries[6].Kind = 'x' }, "unknown kind"},
		{"unknown encoding", func(x *DeltaIndex) { x.Entries[6].Encoding = 'x' }, "encoding"},
	} {
		x := hostileIndex()
		tc.change(x)
		if _, err := DecodeDeltaIndex(x.Encode()); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrMalformed mentioning %q", tc.name, err, tc.want)
		}
	}

	// Raw bytes.
	head := slices.Concat(deltaMagic, good.From[:], good.To[:])
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"huge count", binary.AppendUvarint(slices.Clone(head), 1<<40), "entry count"},
		{"count beyond the data", append(binary.AppendUvarint(slices.Clone(head), 100), enc[len(head)+1:]...), "entry count"},
		{"count short of the data", append(binary.AppendUvarint(slices.Clone(head), 6), enc[len(head)+1:]...), "after the end"},
		{"over-long count", append(append(slices.Clone(head), 0x87, 0x00), enc[len(head)+1:]...), "minimally"},
		{"trailing byte", append(slices.Clone(enc), 0), "after the end"},
		{"wrong magic", append([]byte("SD\x02"), enc[3:]...), "not a delta index"},
		{"an object", unhex(t, vecFile), "not a delta index"},
		{"nothing", nil, "not a delta index"},
	} {
		if _, err := DecodeDeltaIndex(tc.b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrMalformed mentioning %q", tc.name, err, tc.want)
		}
	}
	// Every proper prefix.
	for n := range len(enc) {
		if _, err := DecodeDeltaIndex(enc[:n]); err == nil {
			t.Errorf("a prefix of %d of %d bytes decoded", n, len(enc))
		}
	}
	// An over-long varint anywhere: the offsets and lengths.
	x := hostileIndex()
	x.Entries[6].Length = 0x80 // two bytes
	long := x.Encode()
	if _, err := DecodeDeltaIndex(long); err != nil {
		t.Fatal(err)
	}
	padded := slices.Concat(long[:len(long)-2], []byte{0x80, 0x81, 0x00})
	if _, err := DecodeDeltaIndex(padded); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "minimally") {
		t.Errorf("over-long length: %v", err)
	}
}

// TestDeltaDictionary: a pack of many compressible chunks without bases trains a
// dictionary, its first entry, which its 'p' payloads need; a client applies it, and any
// byte of it flipped is refused.
func TestDeltaDictionary(t *testing.T) {
	if testing.Short() || raceEnabled {
		// The other delta tests cover the builder's concurrency, in a fraction of the time.
		t.Skip("builds a pack of 17 MiB at the best level: minutes under the race detector")
	}
	t.Parallel()
	nodes := map[string]node{}
	for i := range 20 {
		nodes[fmt.Sprintf("log%02d.txt", i)] = node{content: logText(uint64(300+i), dictMinInput/19), mode: 0o644}
	}
	dir := writeNodes(t, nodes)
	srv := newStore(t)
	v := addDir(t, srv, dir)
	st := buildDelta(t, srv, ID{}, v)
	t.Logf("%+v", st)
	x := deltaIndex(t, srv, ID{}, v)
	if st.DictBytes == 0 || st.Dict == 0 || x.Entries[0].Kind != DeltaDict || st.Dict+st.Stored != len(x.Entries) {
		t.Fatalf("no dictionary: %+v", st)
	}
	// The text compresses better with the dictionary than chunk by chunk without.
	var stored int64
	for _, e := range x.Entries {
		if e.Kind == DeltaChunk {
			info, err := os.Stat(srv.ChunkPath(e.Target))
			if err != nil {
				t.Fatal(err)
			}
			stored += info.Size()
		}
	}
	if st.PackBytes > stored || st.PackBytes-int64(st.DictBytes) > stored*9/10 {
		t.Errorf("a pack of %d bytes (a dictionary of %d), the chunks stored take %d", st.PackBytes, st.DictBytes, stored)
	}
	// Reproducible, the dictionary included.
	again := newStore(t)
	if addDir(t, again, dir) != v {
		t.Fatal("another ID")
	}
	buildDelta(t, again, ID{}, v)
	for _, p := range []string{DeltaIndexPath(ID{}, v), DeltaPackPath(ID{}, v)} {
		if !bytes.Equal(readFile(t, filepath.Join(srv.Dir(), p)), readFile(t, filepath.Join(again.Dir(), p))) {
			t.Errorf("%s differs from one build to the next", p)
		}
	}
	cli := newStore(t)
	if n := applyDelta(t, cli, srv.Dir(), ID{}, v); n != len(x.Entries) {
		t.Errorf("applied %d of %d entries", n, len(x.Entries))
	}
	assertComplete(t, cli, v)

	// Flipped bytes: in the dictionary, and in a 'p' payload.
	pack := readFile(t, filepath.Join(srv.Dir(), DeltaPackPath(ID{}, v)))
	var p int
	for i, e := range x.Entries {
		if e.Encoding == EncDict {
			p = i
			break
		}
	}
	forget(t, cli, x)
	a := cli.NewDeltaApplier(x)
	defer a.Close()
	if err := a.Apply(p, pack[x.Entries[p].Offset:x.Entries[p].End()]); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("a 'p' payload before the dictionary: %v", err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		off := r.Int64N(x.Entries[0].Length)
		d := slices.Clone(pack[:x.Entries[0].Length])
		d[off] ^= byte(1 + r.IntN(255))
		if err := a.Apply(0, d); !errors.Is(err, ErrCorrupt) || a.Have(0) {
			t.Fatalf("dictionary byte %d flipped: %v", off, err)
		}
	}
	if err := a.Apply(0, pack[:x.Entries[0].Length]); err != nil {
		t.Fatal(err)
	}
	e := &x.Entries[p]
	accepted := 0
	for range 100 {
		off := r.Int64N(e.Length)
		d := slices.Clone(pack[e.Offset:e.End()])
		d[off] ^= byte(1 + r.IntN(255))
		err := a.Apply(p, d)
		switch {
		case err == nil:
			accepted++ // decodes to the right content
			if err := readTarget(cli, e); err != nil {
				t.Fatal(err)
			}
			forget(t, cli, x)
		case !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), e.Target.String()):
			t.Fatalf("byte %d of %s flipped: %v", off, e, err)
		}
	}
	t.Logf("'p' payload: %d of 100 flips decode to the right content", accepted)
	if err := a.Apply(p, pack[e.Offset:e.End()]); err != nil {
		t.Fatal(err)
	}
	assertSound(t, cli)
}

// FuzzDecodeDeltaIndex: DecodeDeltaIndex never panics, refuses with ErrMalformed, and
// accepts only the canonical encoding of what it returns.
func FuzzDecodeDeltaIndex(f *testing.F) {
	srv, _, v1, v2 := smallDelta(f)
	f.Add(deltaIndex(f, srv, v1, v2).Encode())
	f.Add(deltaIndex(f, srv, ID{}, v1).Encode())
	f.Add(hostileIndex().Encode())
	f.Add((&DeltaIndex{To: v1}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeDeltaIndex(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if enc := x.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("decoded and re-encoded differently:\n in %x\nout %x", b, enc)
		}
		if x.PackSize() < 0 {
			t.Fatalf("pack size %d", x.PackSize())
		}
	})
}

// FuzzLoadIndex: the stat cache's decoder (behind its checksum, which the fuzzer cannot
// forge: the harness appends it) never panics, and what it accepts saves and loads back
// the same.
func FuzzLoadIndex(f *testing.F) {
	const target = "/srv/lib"
	ix := NewIndex(target)
	ix.Root = Sum([]byte("root"))
	ix.entries["a"] = &indexEntry{size: 5, mtime: 1 << 60, ctime: -2, ino: 3, dev: 1<<64 - 1, sha: Sum([]byte("a")), object: Sum([]byte("o"))}
	ix.entries["sub/ü b"] = &indexEntry{size: 0, mtime: -1, ctime: 0, ino: 0, dev: 0}
	ix.dirty = true
	file := filepath.Join(f.TempDir(), "index")
	if err := ix.Save(file); err != nil {
		f.Fatal(err)
	}
	data := readFile(f, file)
	f.Add(data[len(indexMagic) : len(data)-sha256.Size])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := slices.Concat(indexMagic, body)
		sum := sha256.Sum256(data)
		data = append(data, sum[:]...)
		ix := NewIndex(target)
		if err := ix.decode(data); err != nil {
			return
		}
		if len(ix.entries) > len(body) {
			t.Fatalf("%d entries from %d bytes", len(ix.entries), len(body))
		}
		ix.dirty = true
		file := filepath.Join(t.TempDir(), "index")
		if err := ix.Save(file); err != nil {
			t.Fatal(err)
		}
		again, err := LoadIndex(file, target)
		if err != nil || again.Root != ix.Root || !reflect.DeepEqual(again.entries, ix.entries) {
			t.Fatalf("saved and loaded back differently: %v", err)
		}
	})
}

// TestDeltaApplierConcurrent: the payloads of a pack applied at once, in any order.
func TestDeltaApplierConcurrent(t *testing.T) {
	t.Parallel()
	srv, cli, v1, v2 := smallDelta(t)
	pack := readFile(t, filepath.Join(srv.Dir(), DeltaPackPath(v1, v2)))
	x := deltaIndex(t, srv, v1, v2)
	a := cli.NewDeltaApplier(x)
	defer a.Close()
	errs := make(chan error, 2*len(x.Entries))
	for range 2 { // each entry twice: one write, and the other finds it written
		for i := range x.Entries {
			go func() {
				e := &x.Entries[len(x.Entries)-1-i]
				errs <- a.Apply(len(x.Entries)-1-i, pack[e.Offset:e.End()])
			}()
		}
	}
	for range 2 * len(x.Entries) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	assertComplete(t, cli, v2)
}

// TestDeltaBuildCancelled: a cancelled build leaves no delta behind.
func TestDeltaBuildCancelled(t *testing.T) {
	t.Parallel()
	srv, _, v1, v2 := smallDelta(t)
	for _, p := range []string{DeltaIndexPath(v1, v2), DeltaPackPath(v1, v2)} {
		if err := os.Remove(filepath.Join(srv.Dir(), p)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := srv.BuildDelta(ctx, v1, v2, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(srv.Dir(), deltasDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries { // only the delta from nothing to v1
		if from, to, ok := ParseDeltaName(e.Name()); !ok || !from.IsZero() || to != v1 {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestParseDeltaName(t *testing.T) {
	t.Parallel()
	from, to := Sum([]byte("from")), Sum([]byte("to"))
	for _, p := range []string{DeltaIndexPath(from, to), DeltaPackPath(from, to)} {
		if f, tt, ok := ParseDeltaName(path.Base(p)); !ok || f != from || tt != to {
			t.Errorf("%s: %s %s %v", p, f, tt, ok)
		}
	}
	if f, tt, ok := ParseDeltaName(path.Base(DeltaPackPath(ID{}, to))); !ok || !f.IsZero() || tt != to {
		t.Errorf("from nothing: %s %s %v", f, tt, ok)
	}
	for _, bad := range []string{
		path.Base(DeltaPackPath(from, ID{})),
		from.String() + "_" + to.String() + ".pack",
		from.String() + "-" + to.String() + ".idx",
		from.String() + "-" + to.String() + ".pack.tmp",
		strings.ToUpper(from.String()) + "-" + to.String() + ".pack",
		"x" + from.String()[1:] + "-" + to.String() + ".pack",
		"", ".pack",
	} {
		if _, _, ok := ParseDeltaName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
