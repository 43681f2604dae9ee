// Command chunking measures content-defined chunking candidates for Satchel's content store
// (internal/store) on the shared transfer dataset (../shared/baselines/transfer: a 597 MiB
// content library v1 and a realistic update v2), and prints Markdown tables:
//
//   - chunking + SHA-256 throughput on one core over v1 (best of -reps passes, page cache warm);
//   - chunk counts, and the v2 chunks missing from v1's chunk set;
//   - the bytes a v1→v2 update costs when every missing chunk travels zstd-compressed alone or
//     as a zstd delta against a base chunk of v1 (raw dictionary), whichever is smaller, plus the
//     changed file and tree objects (each alone or as a delta against the old object);
//   - the bytes of a full v1 transfer (every chunk and object zstd-compressed);
//   - zstd levels for the chunks of one configuration: bytes and MB/s on one core.
//
// See README.md for the command that reproduces the tables and for the results.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/ultracdc"
	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"
	"github.com/restic/chunker"

	"github.com/satchelcm/satchel/internal/store"
)

// Figures from ../shared/baselines/transfer/README.md.
const (
	idealUpdate = 4231516   // genuinely new bytes in v2
	rsyncAZFull = 494822830 // rsync -az, first full copy of v1
	rsyncAZUpd  = 17652971  // rsync -az --delete, v1→v2
)

// rabinPol is the fixed irreducible polynomial for the Rabin candidate (restic/chunker's test
// polynomial; restic itself draws one per repository, which would defeat deduplication across
// stores).
const rabinPol = chunker.Pol(0x3DA3358B4DC173)

// config is one candidate: an algorithm and an average size (min = avg/4, max = 4×avg).
type config struct {
	algo string // fastcdc, ultracdc, rabin, or store (internal/store's DefaultParams and algorithm)
	avg  int
}

func (c config) min() int { return c.avg / 4 }
func (c config) max() int { return c.avg * 4 }

func (c config) String() string {
	if c.algo == "store" {
		return "store.DefaultParams"
	}
	return fmt.Sprintf("%s %dK", c.algo, c.avg>>10)
}

// splitter cuts one stream after another; reusing it across files keeps its buffers.
type splitter interface {
	split(r io.Reader, fn func(chunk []byte)) error
}

type cdcSplitter struct {
	name string
	opts chunkers.ChunkerOpts
	c    *chunkers.Chunker
}

func (s *cdcSplitter) split(r io.Reader, fn func([]byte)) error {
	if s.c == nil {
		opts := s.opts
		c, err := chunkers.NewChunker(s.name, r, &opts)
		if err != nil {
			return err
		}
		s.c = c
	} else {
		s.c.Reset(r)
	}
	for {
		b, err := s.c.Next()
		if len(b) > 0 {
			fn(b)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type rabinSplitter struct {
	cfg config
	c   *chunker.Chunker
	buf []byte
}

func (s *rabinSplitter) split(r io.Reader, fn func([]byte)) error {
	if s.c == nil {
		s.c = chunker.NewWithBoundaries(r, rabinPol, uint(s.cfg.min()), uint(s.cfg.max()))
		s.buf = make([]byte, s.cfg.max())
	} else {
		s.c.ResetWithBoundaries(r, rabinPol, uint(s.cfg.min()), uint(s.cfg.max()))
	}
	s.c.SetAverageBits(bits.Len(uint(s.cfg.avg)) - 1)
	for {
		ch, err := s.c.Next(s.buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fn(ch.Data)
		s.buf = ch.Data
	}
}

// storeSplitter goes through internal/store's API exactly as the store uses it: a new Chunker
// per file.
type storeSplitter struct{}

func (storeSplitter) split(r io.Reader, fn func([]byte)) error {
	c, err := store.NewChunker(r, store.DefaultParams)
	if err != nil {
		return err
	}
	for {
		b, err := c.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fn(b)
	}
}

func newSplitter(c config) splitter {
	switch c.algo {
	case "fastcdc":
		return &cdcSplitter{name: "fastcdc-v1.0.0", opts: chunkers.ChunkerOpts{MinSize: c.min(), NormalSize: c.avg, MaxSize: c.max()}}
	case "ultracdc":
		return &cdcSplitter{name: "ultracdc-v1.0.0", opts: chunkers.ChunkerOpts{MinSize: c.min(), NormalSize: c.avg, MaxSize: c.max()}}
	case "rabin":
		return &rabinSplitter{cfg: c}
	case "store":
		return storeSplitter{}
	}
	log.Fatalf("unknown algorithm %q", c.algo)
	return nil
}

// ---- the dataset ----

type chunkRef struct {
	id  store.ID
	off int64
	n   int
}

type file struct {
	rel    string // slash-separated, relative to the version's root
	size   int64
	mode   uint32
	chunks []chunkRef
	sum    store.ID
	obj    []byte // the encoded file object
	objID  store.ID
}

type dir struct {
	rel   string
	mode  uint32
	tree  []byte
	id    store.ID
	nodes []string // names of entries, for building
}

type version struct {
	root    string
	files   []*file
	byPath  map[string]*file
	dirs    map[string]*dir
	symlink map[string]string
}

func perm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

func scan(root string) *version {
	v := &version{root: root, byPath: map[string]*file{}, dirs: map[string]*dir{}, symlink: map[string]string{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rel != "" {
			parent := path.Dir(rel)
			if parent == "." {
				parent = ""
			}
			v.dirs[parent].nodes = append(v.dirs[parent].nodes, path.Base(rel))
		}
		switch {
		case d.IsDir():
			v.dirs[rel] = &dir{rel: rel, mode: perm(info.Mode())}
		case info.Mode().IsRegular():
			f := &file{rel: rel, size: info.Size(), mode: perm(info.Mode())}
			v.files = append(v.files, f)
			v.byPath[rel] = f
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v.symlink[rel] = t
		default:
			return fmt.Errorf("%s: unsupported file type", p)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	sort.Slice(v.files, func(i, j int) bool { return v.files[i].rel < v.files[j].rel })
	return v
}

func (v *version) totalBytes() int64 {
	var n int64
	for _, f := range v.files {
		n += f.size
	}
	return n
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(w, i)
			}
		}(w)
	}
	wg.Wait()
}

// index chunks every file of v with c, and builds the file and tree objects.
func index(v *version, c config, workers int) {
	sp := make([]splitter, workers)
	for i := range sp {
		sp[i] = newSplitter(c)
	}
	parallel(len(v.files), workers, func(w, i int) {
		f := v.files[i]
		fh, err := os.Open(filepath.Join(v.root, filepath.FromSlash(f.rel)))
		if err != nil {
			log.Fatal(err)
		}
		defer fh.Close()
		whole := sha256.New()
		f.chunks = f.chunks[:0]
		var off int64
		if err := sp[w].split(fh, func(b []byte) {
			f.chunks = append(f.chunks, chunkRef{id: store.Sum(b), off: off, n: len(b)})
			off += int64(len(b))
			whole.Write(b)
		}); err != nil {
			log.Fatalf("%s: %v", f.rel, err)
		}
		if off != f.size {
			log.Fatalf("%s: chunks add up to %d bytes, the file has %d", f.rel, off, f.size)
		}
		copy(f.sum[:], whole.Sum(nil))
		fo := store.FileObject{Size: f.size, SHA256: f.sum}
		for _, ch := range f.chunks {
			fo.Chunks = append(fo.Chunks, store.ChunkRef{ID: ch.id, Length: uint32(ch.n)})
		}
		f.obj = fo.Encode()
		f.objID = store.Sum(f.obj)
	})
	// Trees, deepest first.
	rels := make([]string, 0, len(v.dirs))
	for rel := range v.dirs {
		rels = append(rels, rel)
	}
	sort.Slice(rels, func(i, j int) bool {
		return strings.Count(rels[i], "/")+min(len(rels[i]), 1) > strings.Count(rels[j], "/")+min(len(rels[j]), 1)
	})
	for _, rel := range rels {
		d := v.dirs[rel]
		t := store.TreeObject{}
		names := slices.Clone(d.nodes)
		sort.Strings(names)
		for _, name := range names {
			p := path.Join(rel, name)
			switch {
			case v.byPath[p] != nil:
				f := v.byPath[p]
				t.Entries = append(t.Entries, store.Entry{Name: name, Kind: store.KindFile, Mode: f.mode, ID: f.objID})
			case v.dirs[p] != nil:
				t.Entries = append(t.Entries, store.Entry{Name: name, Kind: store.KindDir, Mode: v.dirs[p].mode, ID: v.dirs[p].id})
			default:
				t.Entries = append(t.Entries, store.Entry{Name: name, Kind: store.KindSymlink, Mode: 0o777, Target: v.symlink[p]})
			}
		}
		d.tree = t.Encode()
		d.id = store.Sum(d.tree)
	}
}

// ---- throughput ----

// throughputPass chunks and hashes every file of v once on one core (the SHA-256 of each
// chunk, and of each whole file if wholeFile), and returns the rate in MB/s (10^6 bytes per
// second) and the number of chunks.
func throughputPass(v *version, sp splitter, wholeFile bool) (rate float64, chunks int) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	runtime.GC()
	var whole hash.Hash = sha256.New()
	start := time.Now()
	for _, f := range v.files {
		fh, err := os.Open(filepath.Join(v.root, filepath.FromSlash(f.rel)))
		if err != nil {
			log.Fatal(err)
		}
		whole.Reset()
		if err := sp.split(fh, func(b []byte) {
			_ = store.Sum(b)
			if wholeFile {
				whole.Write(b)
			}
			chunks++
		}); err != nil {
			log.Fatal(err)
		}
		if wholeFile {
			_ = whole.Sum(nil)
		}
		fh.Close()
	}
	return float64(v.totalBytes()) / time.Since(start).Seconds() / 1e6, chunks
}

// throughputs measures every candidate reps times, round-robin so that a busy spell of a
// shared machine spreads over all of them, and keeps the best pass of each.
func throughputs(v *version, cs []config, whole []bool, reps int) (best []float64, chunks []int) {
	best, chunks = make([]float64, len(cs)), make([]int, len(cs))
	sps := make([]splitter, len(cs))
	for i, c := range cs {
		sps[i] = newSplitter(c)
	}
	for r := 0; r < reps; r++ {
		for i := range cs {
			rate, n := throughputPass(v, sps[i], whole[i])
			best[i], chunks[i] = max(best[i], rate), n
		}
		log.Printf("throughput pass %d of %d", r+1, reps)
	}
	return best, chunks
}

// ---- compression ----

var levels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

func newEncoder(level zstd.EncoderLevel, dict []byte) *zstd.Encoder {
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1)}
	if dict != nil {
		opts = append(opts, zstd.WithEncoderDictRaw(0, dict))
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		log.Fatal(err)
	}
	return e
}

// deltaSize returns the size of data zstd-compressed with base as a raw dictionary, after
// checking that it decodes.
func deltaSize(level zstd.EncoderLevel, data, base []byte) int {
	e := newEncoder(level, base)
	out := e.EncodeAll(data, nil)
	e.Close()
	d, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(0, base), zstd.WithDecoderConcurrency(1))
	if err != nil {
		log.Fatal(err)
	}
	back, err := d.DecodeAll(out, nil)
	d.Close()
	if err != nil || !bytes.Equal(back, data) {
		log.Fatalf("delta does not decode: %v", err)
	}
	return len(out)
}

// encoders holds one plain encoder per worker and level.
type encoders struct {
	mu sync.Mutex
	m  map[[2]int]*zstd.Encoder
}

func (es *encoders) get(worker int, level zstd.EncoderLevel) *zstd.Encoder {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.m == nil {
		es.m = map[[2]int]*zstd.Encoder{}
	}
	k := [2]int{worker, int(level)}
	if es.m[k] == nil {
		es.m[k] = newEncoder(level, nil)
	}
	return es.m[k]
}

var plainEnc encoders

func readChunk(root string, f *file, ch chunkRef) []byte {
	fh, err := os.Open(filepath.Join(root, filepath.FromSlash(f.rel)))
	if err != nil {
		log.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, ch.n)
	if _, err := fh.ReadAt(b, ch.off); err != nil {
		log.Fatal(err)
	}
	return b
}

// ---- the update ----

// Base strategies for a missing chunk of a changed file, given the old version of the same
// path. The anchor is the last chunk of the new file that is also in the old one (or the start
// of both files); cursor is the old chunk after it, advanced by one for each missing chunk.
var strategies = []struct{ name, doc string }{
	{"next", "the old chunk at the cursor (anchor alignment)"},
	{"next2", "the old chunk at the cursor and the one after it"},
	{"offset", "the old chunks overlapping the new chunk's byte range, mapped through the anchor (new offset − anchor's new end + anchor's old end)"},
	{"offset+", "offset, plus the old chunk right after the anchor"},
}

type update struct {
	missing      int     // unique v2 chunks not in v1
	missingRaw   int64   // their bytes
	withBase     int     // missing chunks that had a base
	plain        int64   // all of them zstd-compressed alone
	chunks       []int64 // per strategy: min(alone, delta)
	fileObjs     int     // changed or new file objects
	fileObjRaw   int64   // their encoded bytes
	fileObjPlain int64   // zstd alone
	fileObjDelta int64   // min(alone, delta against the old object at the same path)
	trees        int
	treeRaw      int64
	treePlain    int64
	treeDelta    int64   // min(alone, delta against the old tree at the same path)
	totals       []int64 // per strategy: chunks + file objects + trees, each at its best
	totalPlain   int64   // no deltas at all
	perFile      map[string][]int64
}

type missingJob struct {
	nf    *file
	ch    chunkRef
	of    *file        // the old file at the same path, or nil
	bases [][]chunkRef // per strategy, the old file's chunks to use as a base, in order
}

// overlapping returns the chunks of f that overlap [lo, hi).
func overlapping(f *file, lo, hi int64) []chunkRef {
	i := sort.Search(len(f.chunks), func(i int) bool { return f.chunks[i].off+int64(f.chunks[i].n) > lo })
	var r []chunkRef
	for ; i < len(f.chunks) && f.chunks[i].off < hi; i++ {
		r = append(r, f.chunks[i])
	}
	return r
}

func computeUpdate(v1, v2 *version, level zstd.EncoderLevel, workers int) update {
	u := update{chunks: make([]int64, len(strategies)), totals: make([]int64, len(strategies)), perFile: map[string][]int64{}}
	have := map[store.ID]bool{}
	for _, f := range v1.files {
		for _, ch := range f.chunks {
			have[ch.id] = true
		}
	}
	v1objs := map[store.ID]bool{}
	for _, f := range v1.files {
		v1objs[f.objID] = true
	}
	for _, d := range v1.dirs {
		v1objs[d.id] = true
	}

	// Walk the changed files, anchoring missing chunks on the old version of the same path.
	sent := map[store.ID]bool{}
	var jobs []missingJob
	var objJobs []*file
	for _, nf := range v2.files {
		if v1objs[nf.objID] {
			continue // unchanged, or renamed: its object is already there
		}
		objJobs = append(objJobs, nf)
		of := v1.byPath[nf.rel]
		oldPos := map[store.ID]int{}
		if of != nil {
			for i, ch := range of.chunks {
				if _, ok := oldPos[ch.id]; !ok {
					oldPos[ch.id] = i
				}
			}
		}
		cursor, afterAnchor := 0, 0 // old chunk indexes
		var ne, oe int64            // the anchor's end in the new and the old file
		for _, ch := range nf.chunks {
			if i, ok := oldPos[ch.id]; ok {
				cursor, afterAnchor = i+1, i+1
				ne, oe = ch.off+int64(ch.n), of.chunks[i].off+int64(of.chunks[i].n)
				continue
			}
			if have[ch.id] {
				continue
			}
			if !sent[ch.id] {
				sent[ch.id] = true
				j := missingJob{nf: nf, ch: ch, of: of, bases: make([][]chunkRef, len(strategies))}
				if of != nil && len(of.chunks) > 0 {
					if cursor < len(of.chunks) {
						j.bases[0] = of.chunks[cursor : cursor+1]
						j.bases[1] = of.chunks[cursor:min(cursor+2, len(of.chunks))]
					}
					off := overlapping(of, oe+(ch.off-ne), oe+(ch.off+int64(ch.n)-ne))
					j.bases[2] = off
					if afterAnchor < len(of.chunks) && !slices.Contains(off, of.chunks[afterAnchor]) {
						off = append([]chunkRef{of.chunks[afterAnchor]}, off...)
					}
					j.bases[3] = off
				}
				jobs = append(jobs, j)
			}
			cursor++
		}
	}

	type result struct {
		plain int
		d     []int
	}
	res := make([]result, len(jobs))
	parallel(len(jobs), workers, func(w, i int) {
		j := jobs[i]
		data := readChunk(v2.root, j.nf, j.ch)
		r := result{plain: len(plainEnc.get(w, level).EncodeAll(data, nil)), d: make([]int, len(strategies))}
		for s, bases := range j.bases {
			r.d[s] = r.plain
			if len(bases) > 0 {
				var base []byte
				for _, b := range bases {
					base = append(base, readChunk(v1.root, j.of, b)...)
				}
				r.d[s] = min(r.plain, deltaSize(level, data, base))
			}
		}
		res[i] = r
	})
	for i, j := range jobs {
		u.missing++
		u.missingRaw += int64(j.ch.n)
		u.plain += int64(res[i].plain)
		pf := u.perFile[j.nf.rel]
		if pf == nil {
			pf = make([]int64, len(strategies)+2)
			u.perFile[j.nf.rel] = pf
		}
		pf[0] += int64(j.ch.n)
		pf[1] += int64(res[i].plain)
		for s := range strategies {
			u.chunks[s] += int64(res[i].d[s])
			pf[2+s] += int64(res[i].d[s])
		}
		if len(j.bases[0]) > 0 {
			u.withBase++
		}
	}

	objSent := map[store.ID]bool{}
	enc := plainEnc.get(0, level)
	for _, nf := range objJobs {
		if objSent[nf.objID] {
			continue
		}
		objSent[nf.objID] = true
		u.fileObjs++
		u.fileObjRaw += int64(len(nf.obj))
		p := len(enc.EncodeAll(nf.obj, nil))
		u.fileObjPlain += int64(p)
		if of := v1.byPath[nf.rel]; of != nil {
			p = min(p, deltaSize(level, nf.obj, of.obj))
		}
		u.fileObjDelta += int64(p)
	}
	for rel, d := range v2.dirs {
		if v1objs[d.id] || objSent[d.id] {
			continue
		}
		objSent[d.id] = true
		u.trees++
		u.treeRaw += int64(len(d.tree))
		p := len(enc.EncodeAll(d.tree, nil))
		u.treePlain += int64(p)
		if od := v1.dirs[rel]; od != nil {
			p = min(p, deltaSize(level, d.tree, od.tree))
		}
		u.treeDelta += int64(p)
	}
	for s := range strategies {
		u.totals[s] = u.chunks[s] + u.fileObjDelta + u.treeDelta
	}
	u.totalPlain = u.plain + u.fileObjPlain + u.treePlain
	return u
}

// levelSpeeds compresses and decompresses a sample of v's chunks (every 8th) at each level on
// one core, reps times round-robin, and returns the best rates in MB/s.
func levelSpeeds(v *version, names []string, reps int) (comp, decomp []float64) {
	files, refs := uniqueChunks(v)
	var sample [][]byte
	var raw int64
	for i := 0; i < len(refs); i += 8 {
		b := readChunk(v.root, files[i], refs[i])
		sample = append(sample, b)
		raw += int64(len(b))
	}
	comp, decomp = make([]float64, len(names)), make([]float64, len(names))
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	defer dec.Close()
	for r := 0; r < reps; r++ {
		for i, name := range names {
			enc := newEncoder(levels[name], nil)
			frames := make([][]byte, len(sample))
			runtime.GC()
			t := time.Now()
			for k, b := range sample {
				frames[k] = enc.EncodeAll(b, nil)
			}
			comp[i] = max(comp[i], float64(raw)/time.Since(t).Seconds()/1e6)
			t = time.Now()
			var buf []byte
			for _, f := range frames {
				var err error
				if buf, err = dec.DecodeAll(f, buf[:0]); err != nil {
					log.Fatal(err)
				}
			}
			decomp[i] = max(decomp[i], float64(raw)/time.Since(t).Seconds()/1e6)
			enc.Close()
		}
	}
	return comp, decomp
}

// ---- the full transfer ----

type full struct {
	chunks     int
	chunkBytes int64 // compressed
	blocks     int64 // the chunks at rest, one file each, in 4 KiB blocks
	objs       int
	objBytes   int64 // compressed file and tree objects
	total      int64
	raw        int64
}

func uniqueChunks(v *version) (fs []*file, refs []chunkRef) {
	seen := map[store.ID]bool{}
	for _, f := range v.files {
		for _, ch := range f.chunks {
			if !seen[ch.id] {
				seen[ch.id] = true
				fs = append(fs, f)
				refs = append(refs, ch)
			}
		}
	}
	return fs, refs
}

func computeFull(v *version, level zstd.EncoderLevel, workers int) full {
	var r full
	files, refs := uniqueChunks(v)
	sizes := make([]int, len(refs))
	bufs := make([][]byte, workers)
	parallel(len(refs), workers, func(w, i int) {
		bufs[w] = plainEnc.get(w, level).EncodeAll(readChunk(v.root, files[i], refs[i]), bufs[w][:0])
		sizes[i] = len(bufs[w])
	})
	for i := range refs {
		r.chunks++
		r.chunkBytes += int64(sizes[i])
		r.blocks += int64(sizes[i]+4095) / 4096 * 4096
		r.raw += int64(refs[i].n)
	}
	enc := plainEnc.get(0, level)
	seen := map[store.ID]bool{}
	for _, f := range v.files {
		if !seen[f.objID] {
			seen[f.objID] = true
			r.objs++
			r.objBytes += int64(len(enc.EncodeAll(f.obj, nil)))
		}
	}
	for _, d := range v.dirs {
		if !seen[d.id] {
			seen[d.id] = true
			r.objs++
			r.objBytes += int64(len(enc.EncodeAll(d.tree, nil)))
		}
	}
	r.total = r.chunkBytes + r.objBytes
	return r
}

// ---- output ----

func comma(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func parseConfigs(algos, avgs string) []config {
	var cs []config
	for _, a := range strings.Split(algos, ",") {
		if a == "store" {
			cs = append(cs, config{algo: "store", avg: store.DefaultParams.Avg})
			continue
		}
		for _, s := range strings.Split(avgs, ",") {
			k, err := strconv.Atoi(strings.TrimSuffix(s, "K"))
			if err != nil {
				log.Fatalf("bad average size %q", s)
			}
			cs = append(cs, config{algo: a, avg: k << 10})
		}
	}
	return cs
}

func ratio(n int64, of float64) string {
	return fmt.Sprintf("%s (%.2f×)", comma(n), float64(n)/of)
}

func ratio4(n int64, of float64) string {
	return fmt.Sprintf("%s (%.4f×)", comma(n), float64(n)/of)
}

// fullVariants measures ways of carrying a full v1 beyond "every chunk its own zstd frame":
// frames compressed with a dictionary trained on the release's chunks, and packs (a zstd
// stream over the chunks in path order, cut every packSize raw bytes).
func fullVariants(v *version, level zstd.EncoderLevel, workers int, objBytes int64) {
	files, refs := uniqueChunks(v)
	fmt.Println("| full v1 transfer | chunk bytes | + objects | ×rsync -az full |")
	fmt.Println("|---|---:|---:|---:|")
	for _, dictSize := range []int{112 << 10, 1 << 20} {
		// Train on a sample of about 16 MiB: chunks spread evenly over the release.
		var sample [][]byte
		var raw int64
		for _, ch := range refs {
			raw += int64(ch.n)
		}
		step := max(1, int(int64(len(refs))*(16<<20)/raw))
		step = max(1, len(refs)/step)
		for i := 0; i < len(refs); i += step {
			sample = append(sample, readChunk(v.root, files[i], refs[i]))
		}
		t := time.Now()
		d, err := dict.BuildZstdDict(sample, dict.Options{MaxDictSize: dictSize, HashBytes: 6, ZstdDictID: 1, ZstdLevel: level})
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("dictionary of %d B from %d sample chunks in %.1fs", len(d), len(sample), time.Since(t).Seconds())
		encs := make([]*zstd.Encoder, workers)
		for w := range encs {
			encs[w], err = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderDict(d))
			if err != nil {
				log.Fatal(err)
			}
		}
		var total atomic.Int64
		parallel(len(refs), workers, func(w, i int) {
			total.Add(int64(len(encs[w].EncodeAll(readChunk(v.root, files[i], refs[i]), nil))))
		})
		n := total.Load() + int64(len(d))
		fmt.Printf("| each chunk a frame, with a %d KiB trained dictionary (dictionary included) | %s | %s | %.4f× |\n", dictSize>>10, comma(n), comma(n+objBytes), float64(n+objBytes)/rsyncAZFull)
	}
	for _, packSize := range []int{1 << 20, 4 << 20, 16 << 20, 64 << 20} {
		var packs [][]chunkRef
		var pf [][]*file
		size := 0
		for i := range refs {
			if len(packs) == 0 || size >= packSize {
				packs = append(packs, nil)
				pf = append(pf, nil)
				size = 0
			}
			packs[len(packs)-1] = append(packs[len(packs)-1], refs[i])
			pf[len(pf)-1] = append(pf[len(pf)-1], files[i])
			size += refs[i].n
		}
		var total atomic.Int64
		parallel(len(packs), workers, func(w, i int) {
			var buf []byte
			for k, ch := range packs[i] {
				buf = append(buf, readChunk(v.root, pf[i][k], ch)...)
			}
			total.Add(int64(len(plainEnc.get(w, level).EncodeAll(buf, nil))))
		})
		n := total.Load()
		fmt.Printf("| packs of %d MiB: one zstd frame over the chunks in path order | %s | %s | %.4f× |\n", packSize>>20, comma(n), comma(n+objBytes), float64(n+objBytes)/rsyncAZFull)
	}
}

func main() {
	log.SetFlags(0)
	v1dir := flag.String("v1", "/tmp/xferlab/v1", "the dataset's v1")
	v2dir := flag.String("v2", "/tmp/xferlab/v2", "the dataset's v2")
	algos := flag.String("algos", "fastcdc,ultracdc,rabin,store", "candidates: fastcdc, ultracdc, rabin, store (internal/store as configured)")
	avgs := flag.String("avgs", "16K,32K,64K,128K", "average chunk sizes")
	reps := flag.Int("reps", 5, "timed passes per candidate and per zstd level, round-robin (the best counts)")
	levelName := flag.String("level", "better", "zstd level for the update and full-transfer tables: fastest, default, better, best")
	detailFor := flag.String("detail", "store", `candidate for the detailed tables (zstd levels, full-transfer variants, costliest files): "store", "fastcdc 16K"…; "" to skip`)
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines for indexing and compression (timings always use one core)")
	flag.Parse()
	level, ok := levels[*levelName]
	if !ok {
		log.Fatalf("unknown level %q", *levelName)
	}

	v1, v2 := scan(*v1dir), scan(*v2dir)
	log.Printf("v1: %d files, %d bytes; v2: %d files, %d bytes", len(v1.files), v1.totalBytes(), len(v2.files), v2.totalBytes())
	// Warm the page cache.
	for _, v := range []*version{v1, v2} {
		for _, f := range v.files {
			if _, err := os.ReadFile(filepath.Join(v.root, filepath.FromSlash(f.rel))); err != nil {
				log.Fatal(err)
			}
		}
	}

	cs := parseConfigs(*algos, *avgs)
	var detail *config
	if *detailFor == "store" {
		detail = &parseConfigs("store", "")[0]
	} else if *detailFor != "" {
		parts := strings.Fields(*detailFor)
		if len(parts) != 2 {
			log.Fatalf("bad -detail %q", *detailFor)
		}
		detail = &parseConfigs(parts[0], parts[1])[0]
	}

	// Timings first, all candidates round-robin; the detailed candidate once more with the
	// whole-file hash.
	tcs, whole := slices.Clone(cs), make([]bool, len(cs))
	if detail != nil {
		tcs, whole = append(tcs, *detail), append(whole, true)
	}
	rates, counts := throughputs(v1, tcs, whole, *reps)

	fmt.Printf("Go %s, %s/%s, %d CPUs; v1 %s B in %d files, v2 %s B in %d files. MB/s: best of %d passes over v1 on one core (GOMAXPROCS=1, page cache warm), candidates round-robin. zstd level %q (klauspost/compress) in the update and full columns; ratios to the ideal update (%s B) and to rsync -az's full copy (%s B).\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		comma(v1.totalBytes()), len(v1.files), comma(v2.totalBytes()), len(v2.files), *reps, *levelName, comma(idealUpdate), comma(rsyncAZFull))

	fmt.Print("| candidate | MB/s, 1 core (chunk+SHA-256) | v1 chunks (unique) | mean chunk B | v2 chunks missing | missing raw B | update, no deltas B |")
	for _, s := range strategies {
		fmt.Printf(" update, delta %s B |", s.name)
	}
	fmt.Println(" full v1 B | v1 chunks at rest, 4 KiB blocks B |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|" + strings.Repeat("---:|", len(strategies)) + "---:|---:|")
	var details []string
	for ci, c := range cs {
		t0 := time.Now()
		index(v1, c, *workers)
		index(v2, c, *workers)
		u := computeUpdate(v1, v2, level, *workers)
		f := computeFull(v1, level, *workers)
		var v1chunks int
		for _, fl := range v1.files {
			v1chunks += len(fl.chunks)
		}
		if v1chunks != counts[ci] {
			log.Fatalf("%v: %d chunks in the throughput pass, %d when indexing", c, counts[ci], v1chunks)
		}
		fmt.Printf("| %v | %.0f | %s (%s) | %s | %s | %s | %s |", c, rates[ci], comma(int64(v1chunks)), comma(int64(f.chunks)),
			comma(v1.totalBytes()/int64(v1chunks)), comma(int64(u.missing)), comma(u.missingRaw), ratio(u.totalPlain, idealUpdate))
		for s := range strategies {
			fmt.Printf(" %s |", ratio(u.totals[s], idealUpdate))
		}
		fmt.Printf(" %s | %s (+%.1f%%) |\n", ratio4(f.total, rsyncAZFull), comma(f.blocks), 100*float64(f.blocks-f.chunkBytes)/float64(f.chunkBytes))
		d := fmt.Sprintf("| %v | %d / %d | %s |", c, u.withBase, u.missing, comma(u.plain))
		for s := range strategies {
			d += " " + comma(u.chunks[s]) + " |"
		}
		d += fmt.Sprintf(" %d: %s → %s / %s | %d: %s → %s / %s | %s | %d: %s | %d |",
			u.fileObjs, comma(u.fileObjRaw), comma(u.fileObjPlain), comma(u.fileObjDelta),
			u.trees, comma(u.treeRaw), comma(u.treePlain), comma(u.treeDelta),
			comma(f.chunkBytes), f.objs, comma(f.objBytes), u.missing+u.fileObjs+u.trees)
		details = append(details, d)
		log.Printf("%v done in %.0fs", c, time.Since(t0).Seconds())
	}
	fmt.Println()
	fmt.Println("Details (bytes; file objects and trees as count: raw → zstd alone / best of alone and delta):")
	fmt.Println()
	fmt.Print("| candidate | missing chunks with a base | chunks alone |")
	for _, s := range strategies {
		fmt.Printf(" chunks, delta %s |", s.name)
	}
	fmt.Println(" update: file objects | update: trees | full: chunks | full: objects | update: objects to fetch |")
	fmt.Println("|---|---:|---:|" + strings.Repeat("---:|", len(strategies)) + "---:|---:|---:|---:|---:|")
	for _, d := range details {
		fmt.Println(d)
	}
	fmt.Println()
	for _, s := range strategies {
		fmt.Printf("- delta %s: %s.\n", s.name, s.doc)
	}

	if detail == nil {
		return
	}
	c := *detail
	index(v1, c, *workers)
	index(v2, c, *workers)
	fmt.Printf("\n%v, chunking + SHA-256 of each chunk + SHA-256 of each whole file (what a file object records): %.0f MB/s on one core (best of %d, in the same round-robin).\n", c, rates[len(rates)-1], *reps)

	u := computeUpdate(v1, v2, level, *workers)
	fmt.Printf("\nThe costliest files of the update with %v (bytes; zstd level %q):\n\n", c, *levelName)
	fmt.Print("| file | missing raw | alone |")
	for _, s := range strategies {
		fmt.Printf(" delta %s |", s.name)
	}
	fmt.Println()
	fmt.Println("|---|---:|---:|" + strings.Repeat("---:|", len(strategies)))
	var paths []string
	for p := range u.perFile {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return u.perFile[paths[i]][1] > u.perFile[paths[j]][1] })
	var rest []int64
	for i, p := range paths {
		pf := u.perFile[p]
		if i >= 6 {
			if rest == nil {
				rest = make([]int64, len(pf))
			}
			for k := range pf {
				rest[k] += pf[k]
			}
			continue
		}
		fmt.Printf("| %s |", p)
		for _, n := range pf {
			fmt.Printf(" %s |", comma(n))
		}
		fmt.Println()
	}
	if rest != nil {
		fmt.Printf("| the other %d files |", len(paths)-6)
		for _, n := range rest {
			fmt.Printf(" %s |", comma(n))
		}
		fmt.Println()
	}

	names := []string{"fastest", "default", "better", "best"}
	comp, decomp := levelSpeeds(v1, names, *reps)
	fmt.Printf("\nzstd levels for the chunks of %v (bytes over all of v1; MB/s on one core over every 8th chunk, best of %d, levels round-robin):\n\n", c, *reps)
	fmt.Println("| level | full v1: chunks B | ×raw | compress MB/s | decompress MB/s | update, delta offset+ B | full v1 B |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	var objBytes int64
	for i, name := range names {
		l := levels[name]
		f := computeFull(v1, l, *workers)
		u := computeUpdate(v1, v2, l, *workers)
		fmt.Printf("| %s | %s | %.4f | %.0f | %.0f | %s | %s |\n", name, comma(f.chunkBytes),
			float64(f.chunkBytes)/float64(f.raw), comp[i], decomp[i],
			ratio(u.totals[3], idealUpdate), ratio4(f.total, rsyncAZFull))
		if l == level {
			objBytes = f.objBytes
		}
		log.Printf("level %s done", name)
	}
	fmt.Printf("\nThe full v1 transfer carried otherwise (zstd level %q; objects: the file and tree objects, %s B):\n\n", *levelName, comma(objBytes))
	fullVariants(v1, level, *workers, objBytes)
}
