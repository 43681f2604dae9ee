package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// Static deltas: everything a node holding one root lacks of another, precomputed once per
// release pair into two immutable files that any static HTTP server, cache or USB stick can
// carry (OSTree's static deltas are the prior art):
//
//	deltas/FROM-TO.idx.zst   the index, zstd-compressed (with the frame's content checksum),
//	                         then sealed as stored files are (seal.go)
//	deltas/FROM-TO.pack      the payloads, one after the other, as the index lists them
//
// FROM is 64 zeros for a delta "from nothing": a full transfer of TO in one file.
//
// The pack holds one payload for every object and chunk reachable from TO and not from FROM:
// trees first (pre-order: a tree before what it contains), then file objects, then chunks
// grouped by file in walk order, so that a client can apply a whole pack streaming it once,
// and fetch any subset with byte ranges. A payload is the smallest of:
//
//	'z'  the stored form: one zstd frame and the seal (seal.go), as chunks/ and objects/
//	     keep it; a chunk arrives as its file would, and is stored as it is
//	'd'  a delta: a zstd frame compressed with a raw dictionary, the plain bytes of the
//	     entry's bases (1 to 8 chunks or one object that FROM has) concatenated; as
//	     `zstd --patch-from`, with dictionary ID 0
//	'p'  a zstd frame compressed with the pack's dictionary (a zstd dictionary trained on
//	     the pack's compressible payloads, itself the pack's first entry, of kind 'D'):
//	     independent chunks of text compress about as well as one long stream would
//
// Bases. An object's base is the object at the same path in FROM (a tree for a tree, a file
// object for a file object). A chunk's bases come from the old version of its file (the
// file at the same path in FROM), by anchor alignment: the chunks that both versions share,
// in order, are anchors; between two anchors the new chunks replace the old chunks between
// the same anchors, so a changed chunk is sent as a delta against the chunk(s) it replaces.
// This covers bytes rewritten in place (one old chunk for one new one, two when the rewrite
// moved a boundary) and inserted data (the old chunk that the insertion split). When the
// old run between anchors is long, each new chunk takes the old chunks at the same
// distance from the preceding anchor (or, in the second half, from the following one).
//
// The index (strict binary, varints canonical, like the objects in codec.go):
//
//	"SD" 0x01, FROM (32 bytes), TO (32 bytes), count,
//	count × (kind, target ID, encoding, base count, base IDs, offset, length)
//
// kind is 'D' (the pack's dictionary: at most one, first), 't' (tree), 'f' (file object)
// or 'c' (chunk), in that order; encoding 'z', 'd' or 'p' as above ('z': no base; 'd': 1-8
// bases, none of them a target of this delta, and FROM not zero; 'p': one base, the 'D'
// entry). Entries are sorted by offset, contiguous from 0, and cover the pack exactly;
// targets are unique. A target's ID is its content's SHA-256 as everywhere in the store:
// every payload is decoded and hashed before anything is stored, so a damaged pack, a
// stale index or a hostile server can waste bytes but never store a wrong one.

// The delta file names, relative to a store's directory (slash-separated: also URL paths).
const (
	deltasDir        = "deltas"
	deltaIndexSuffix = ".idx.zst"
	deltaPackSuffix  = ".pack"
)

// DeltaIndexPath returns the index file of the delta from → to, relative to a store's
// directory, with slashes: "deltas/FROM-TO.idx.zst".
func DeltaIndexPath(from, to ID) string {
	return deltasDir + "/" + from.String() + "-" + to.String() + deltaIndexSuffix
}

// DeltaPackPath returns the pack file of the delta from → to: "deltas/FROM-TO.pack".
func DeltaPackPath(from, to ID) string {
	return deltasDir + "/" + from.String() + "-" + to.String() + deltaPackSuffix
}

// ParseDeltaName parses the base name of a delta file, "FROM-TO.idx.zst" or "FROM-TO.pack".
func ParseDeltaName(name string) (from, to ID, ok bool) {
	var rest string
	switch {
	case len(name) == 129+len(deltaIndexSuffix) && name[129:] == deltaIndexSuffix:
		rest = name[:129]
	case len(name) == 129+len(deltaPackSuffix) && name[129:] == deltaPackSuffix:
		rest = name[:129]
	default:
		return from, to, false
	}
	if rest[64] != '-' {
		return from, to, false
	}
	var err1, err2 error
	from, err1 = ParseID(rest[:64])
	to, err2 = ParseID(rest[65:])
	return from, to, err1 == nil && err2 == nil && !to.IsZero()
}

// DeltaKind is the kind of a delta entry's target.
type DeltaKind byte

// The kinds of delta entries, in the order a pack holds them.
const (
	DeltaDict  DeltaKind = 'D' // the pack's zstd dictionary (not stored: kept while applying)
	DeltaTree  DeltaKind = 't'
	DeltaFile  DeltaKind = 'f'
	DeltaChunk DeltaKind = 'c'
)

func (k DeltaKind) rank() int {
	switch k {
	case DeltaDict:
		return 0
	case DeltaTree:
		return 1
	case DeltaFile:
		return 2
	case DeltaChunk:
		return 3
	}
	return -1
}

func (k DeltaKind) String() string {
	switch k {
	case DeltaDict:
		return "dictionary"
	case DeltaTree:
		return "tree"
	case DeltaFile:
		return "file object"
	case DeltaChunk:
		return "chunk"
	}
	return fmt.Sprintf("kind %q", byte(k))
}

// DeltaEncoding is how a payload encodes its target.
type DeltaEncoding byte

// The payload encodings (see above).
const (
	EncStored DeltaEncoding = 'z'
	EncDelta  DeltaEncoding = 'd'
	EncDict   DeltaEncoding = 'p'
)

// DeltaEntry is one payload of a pack.
type DeltaEntry struct {
	Kind     DeltaKind
	Target   ID
	Encoding DeltaEncoding
	Bases    []ID
	Offset   int64 // in the pack
	Length   int64
}

// End returns the offset just past the payload.
func (e *DeltaEntry) End() int64 { return e.Offset + e.Length }

func (e *DeltaEntry) String() string {
	return fmt.Sprintf("%s %s (pack bytes %d-%d)", e.Kind, e.Target, e.Offset, e.End()-1)
}

// DeltaIndex is a delta's index: what its pack holds, where.
type DeltaIndex struct {
	From, To ID
	Entries  []DeltaEntry
}

// PackSize returns the size of the pack the index describes.
func (x *DeltaIndex) PackSize() int64 {
	if len(x.Entries) == 0 {
		return 0
	}
	return x.Entries[len(x.Entries)-1].End()
}

// Limits of the delta format.
const (
	maxDeltaBases   = 8
	maxDictSize     = 1 << 20
	maxDeltaIndex   = 1 << 30 // decoded
	minEntryEncoded = 1 + 32 + 1 + 1 + 1 + 1
)

var deltaMagic = []byte{'S', 'D', 1}

// maxPayload bounds a payload of each kind: the stored form of the largest target (zstd's
// worst case adds a few bytes per 128 KiB block, the seal 12).
func maxPayload(k DeltaKind) int64 {
	var n int64 = maxObjectSize
	switch k {
	case DeltaChunk:
		n = MaxChunkSize
	case DeltaDict:
		n = maxDictSize
	}
	return n + n/64 + 1024
}

// Encode returns the index's canonical encoding (not compressed).
func (x *DeltaIndex) Encode() []byte {
	b := append([]byte(nil), deltaMagic...)
	b = append(b, x.From[:]...)
	b = append(b, x.To[:]...)
	b = binary.AppendUvarint(b, uint64(len(x.Entries)))
	for _, e := range x.Entries {
		b = append(b, byte(e.Kind))
		b = append(b, e.Target[:]...)
		b = append(b, byte(e.Encoding))
		b = binary.AppendUvarint(b, uint64(len(e.Bases)))
		for _, base := range e.Bases {
			b = append(b, base[:]...)
		}
		b = binary.AppendUvarint(b, uint64(e.Offset))
		b = binary.AppendUvarint(b, uint64(e.Length))
	}
	return b
}

// DecodeDeltaIndex decodes an index, refusing anything but the canonical encoding of a valid
// index (see above). Errors wrap ErrMalformed.
func DecodeDeltaIndex(b []byte) (*DeltaIndex, error) {
	d := &decoder{b: b}
	if !hasPrefix(d.b, deltaMagic) {
		d.fail("not a delta index")
		return nil, d.err
	}
	d.b = d.b[len(deltaMagic):]
	x := &DeltaIndex{}
	x.From = d.id("from")
	x.To = d.id("to")
	if d.err == nil && x.To.IsZero() {
		d.fail("no target root")
	}
	n := d.uvarint("entry count", uint64(len(d.b)/minEntryEncoded))
	targets := make(map[ID]DeltaKind, n)
	var offset int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e DeltaEntry
		kind := d.bytes("kind", 1)
		e.Target = d.id("target")
		enc := d.bytes("encoding", 1)
		if d.err != nil {
			break
		}
		e.Kind, e.Encoding = DeltaKind(kind[0]), DeltaEncoding(enc[0])
		if e.Kind.rank() < 0 {
			d.fail("entry %d: unknown kind %q", i, kind[0])
			break
		}
		if i > 0 && e.Kind.rank() < x.Entries[i-1].Kind.rank() {
			d.fail("entry %d: a %s after a %s", i, e.Kind, x.Entries[i-1].Kind)
			break
		}
		if e.Kind == DeltaDict && i > 0 {
			d.fail("entry %d: a second dictionary", i)
			break
		}
		if e.Target.IsZero() {
			d.fail("entry %d: no target", i)
			break
		}
		if _, dup := targets[e.Target]; dup {
			d.fail("entry %d: %s %s twice", i, e.Kind, e.Target)
			break
		}
		targets[e.Target] = e.Kind
		nb := d.uvarint("base count", maxDeltaBases)
		for j := uint64(0); j < nb && d.err == nil; j++ {
			base := d.id("base")
			if d.err == nil && (base.IsZero() || base == e.Target || slices.Contains(e.Bases, base)) {
				d.fail("entry %d: bad base %s", i, base)
			}
			e.Bases = append(e.Bases, base)
		}
		if d.err != nil {
			break
		}
		switch {
		case e.Encoding == EncStored && nb == 0:
		case e.Encoding == EncDelta && nb >= 1 && e.Kind != DeltaDict && !x.From.IsZero():
			if e.Kind != DeltaChunk && nb != 1 {
				d.fail("entry %d: an object delta has one base", i)
			}
		case e.Encoding == EncDict && nb == 1 && e.Kind != DeltaDict:
			if len(x.Entries) == 0 || x.Entries[0].Kind != DeltaDict || x.Entries[0].Target != e.Bases[0] {
				d.fail("entry %d: its dictionary %s is not the pack's", i, e.Bases[0])
			}
		default:
			d.fail("entry %d: %s with encoding %q and %d bases", i, e.Kind, enc[0], nb)
		}
		off := d.uvarint("offset", 1<<62)
		if d.err == nil && int64(off) != offset {
			d.fail("entry %d at offset %d, want %d: entries must be contiguous", i, off, offset)
		}
		e.Offset = int64(off)
		e.Length = int64(d.uvarint("length", uint64(maxPayload(e.Kind))))
		if d.err == nil && e.Length == 0 {
			d.fail("entry %d: empty payload", i)
		}
		offset += e.Length
		x.Entries = append(x.Entries, e)
	}
	d.end()
	if d.err == nil {
		for i, e := range x.Entries {
			if e.Encoding != EncDelta {
				continue
			}
			for _, base := range e.Bases {
				if _, ok := targets[base]; ok {
					d.fail("entry %d: base %s is a target of the same delta", i, base)
					break
				}
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return x, nil
}

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == string(p) }

// ReadDeltaIndex checks the seal of the content of an index file (.idx.zst), decompresses
// and decodes it. Errors wrap ErrMalformed.
func ReadDeltaIndex(z []byte) (*DeltaIndex, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDeltaIndex))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	// The seal catches any changed byte, also one that zstd ignores (a frame header's unused
	// bit, its window size), so that a damaged copy is always told.
	frame, err := unseal(z)
	if err != nil {
		return nil, fmt.Errorf("%w: delta index: %v", ErrMalformed, err)
	}
	b, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: delta index does not decompress: %v", ErrMalformed, err)
	}
	return DecodeDeltaIndex(b)
}

// DeltaIndex reads the index of the delta from → to from the store's deltas/ directory.
func (s *Store) DeltaIndex(from, to ID) (*DeltaIndex, error) {
	return readDeltaIndexFile(filepath.Join(s.dir, filepath.FromSlash(DeltaIndexPath(from, to))), from, to)
}

// MaxDeltaIndexFile bounds an index file (compressed), read from a directory or fetched.
const MaxDeltaIndexFile = 256 << 20

func readDeltaIndexFile(p string, from, to ID) (*DeltaIndex, error) {
	f, err := openRegular(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("delta %s: %w", deltaName(from, to), ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := io.ReadAll(io.LimitReader(f, MaxDeltaIndexFile+1))
	if err != nil {
		return nil, err
	}
	if len(z) > MaxDeltaIndexFile {
		return nil, fmt.Errorf("%s: %w: larger than any delta index (%d bytes)", p, ErrMalformed, MaxDeltaIndexFile)
	}
	x, err := ReadDeltaIndex(z)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if x.From != from || x.To != to {
		return nil, fmt.Errorf("%s: %w: it is the index of %s", p, ErrMalformed, deltaName(x.From, x.To))
	}
	return x, nil
}

func deltaName(from, to ID) string {
	if from.IsZero() {
		return "from nothing to " + to.String()
	}
	return from.String() + " to " + to.String()
}

// DeltaProgress is how far BuildDelta has got: entries written to the pack so far, of all.
type DeltaProgress struct {
	Entries, TotalEntries int
	PackBytes             int64
}

// DeltaStats describes a delta built.
type DeltaStats struct {
	Trees, Files, Chunks int   // entries
	Stored, Delta, Dict  int   // payloads by encoding: 'z', 'd', 'p'
	TargetBytes          int64 // plain bytes of everything in the pack (objects' encodings, chunks)
	DictBytes            int   // the pack's dictionary (0: none)
	PackBytes            int64
	IndexBytes           int64 // compressed
	Duration             time.Duration
}

// Delta building parameters. None is part of the format: a reader decodes any choice.
const (
	// deltaLevel compresses every delta and dictionary payload: a pack is built once and
	// fetched many times over slow links.
	deltaLevel = zstd.SpeedBestCompression
	// deltaMaxBases and deltaMaxDictBytes bound a chunk's bases.
	deltaMaxBases     = 4
	deltaMaxDictBytes = 1 << 20
	// A pack trains a dictionary when its compressible payloads without bases add up to
	// dictMinInput bytes at least, from about dictSampleSize bytes of them.
	dictMinInput   = 16 << 20
	dictSize       = 512 << 10
	dictSampleSize = 8 << 20
	dictID         = 0x53415443 // "SATC": any fixed ID, so that a pack is reproducible
	// compressibleRatio: a chunk whose stored form is smaller than this share of its plain
	// size is compressible, worth recompressing with the pack's dictionary.
	compressibleRatio = 0.97
)

// plannedEntry is an entry of a delta being built, before its payload is computed.
type plannedEntry struct {
	kind   DeltaKind
	target ID
	bases  []ID  // candidate bases for a delta; empty: none
	size   int64 // plain size, if known (chunks)
}

// deltaPlanner finds what a delta holds, and each entry's candidate bases.
type deltaPlanner struct {
	s                   *Store
	ctx                 context.Context
	fromObjs, fromChunk map[ID]bool
	seenObj, seenChunk  map[ID]bool
	trees, files        []plannedEntry
	fileJobs            []fileJob
}

type fileJob struct {
	new, old *FileObject
}

// BuildDelta writes the delta from → to into the store's deltas/ directory: its pack, then
// its index, each atomically (an existing delta of the same pair is replaced). from may be
// the zero ID: the delta then holds all of to. Both roots (tree or file objects) and
// everything they reach must be in the store. progress, if not nil, is called after each
// entry written to the pack.
func (s *Store) BuildDelta(ctx context.Context, from, to ID, progress func(DeltaProgress)) (DeltaStats, error) {
	start := time.Now()
	var stats DeltaStats
	release, err := s.lock.shared() // keeps a GC from removing bases meanwhile
	if err != nil {
		return stats, err
	}
	defer release()
	name := deltaName(from, to)
	fail := func(err error) (DeltaStats, error) { return stats, fmt.Errorf("delta %s: %w", name, err) }

	p := &deltaPlanner{s: s, ctx: ctx, fromObjs: map[ID]bool{}, fromChunk: map[ID]bool{}, seenObj: map[ID]bool{}, seenChunk: map[ID]bool{}}
	var fromObj Object
	if !from.IsZero() {
		if fromObj, err = s.Object(from); err != nil {
			return fail(err)
		}
		if err := s.reach(ctx, from, p.fromObjs, p.fromChunk); err != nil {
			return fail(err)
		}
	}
	toObj, err := s.Object(to)
	if err != nil {
		return fail(err)
	}
	switch o := toObj.(type) {
	case *TreeObject:
		old, _ := fromObj.(*TreeObject)
		oldID := ID{}
		if old != nil {
			oldID = from
		}
		err = p.tree(to, o, oldID, old)
	case *FileObject:
		old, _ := fromObj.(*FileObject)
		oldID := ID{}
		if old != nil {
			oldID = from
		}
		err = p.file(to, o, oldID, old)
	}
	if err != nil {
		return fail(err)
	}
	entries := slices.Concat(p.trees, p.files)
	for _, j := range p.fileJobs {
		bases := chunkBases(j.new, j.old, deltaMaxBases, deltaMaxDictBytes)
		for i, c := range j.new.Chunks {
			if p.fromChunk[c.ID] || p.seenChunk[c.ID] {
				continue
			}
			p.seenChunk[c.ID] = true
			entries = append(entries, plannedEntry{kind: DeltaChunk, target: c.ID, bases: bases[i], size: int64(c.Length)})
		}
	}

	zdict, err := s.trainDict(ctx, entries)
	if err != nil {
		return fail(err)
	}
	b := &deltaBuilder{s: s, zdict: zdict}
	if zdict != nil {
		entries = slices.Insert(entries, 0, plannedEntry{kind: DeltaDict, target: Sum(zdict), size: int64(len(zdict))})
		stats.DictBytes = len(zdict)
	}

	dir := filepath.Join(s.dir, deltasDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	x := &DeltaIndex{From: from, To: to}
	packPath := filepath.Join(s.dir, filepath.FromSlash(DeltaPackPath(from, to)))
	err = atomicfile.Write(packPath, 0o644, func(w *bufio.Writer) error {
		var offset int64
		return b.payloads(ctx, entries, func(pe *plannedEntry, r payloadResult) error {
			if _, err := w.Write(r.payload); err != nil {
				return err
			}
			x.Entries = append(x.Entries, DeltaEntry{Kind: pe.kind, Target: pe.target, Encoding: r.enc,
				Bases: r.bases, Offset: offset, Length: int64(len(r.payload))})
			offset += int64(len(r.payload))
			stats.TargetBytes += r.plainSize
			if progress != nil {
				progress(DeltaProgress{Entries: len(x.Entries), TotalEntries: len(entries), PackBytes: offset})
			}
			switch pe.kind {
			case DeltaTree:
				stats.Trees++
			case DeltaFile:
				stats.Files++
			case DeltaChunk:
				stats.Chunks++
			}
			switch r.enc {
			case EncStored:
				stats.Stored++
			case EncDelta:
				stats.Delta++
			case EncDict:
				stats.Dict++
			}
			return nil
		})
	})
	if err != nil {
		return fail(err)
	}
	stats.PackBytes = x.PackSize()
	// A delta no client could read is not published: the index must decode.
	plainIdx := x.Encode()
	if _, err := DecodeDeltaIndex(plainIdx); err != nil {
		_ = os.Remove(packPath)
		return fail(fmt.Errorf("the index built does not decode: %w", err))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		return fail(err)
	}
	zidx := seal(enc.EncodeAll(plainIdx, nil))
	stats.IndexBytes = int64(len(zidx))
	idxPath := filepath.Join(s.dir, filepath.FromSlash(DeltaIndexPath(from, to)))
	if err := atomicfile.WriteBytes(idxPath, 0o644, zidx); err != nil {
		return fail(err)
	}
	stats.Duration = time.Since(start)
	return stats, nil
}

// reach adds every object and chunk reachable from root to objs and chunks.
func (s *Store) reach(ctx context.Context, root ID, objs, chunks map[ID]bool) error {
	if objs[root] {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	obj, err := s.Object(root)
	if err != nil {
		return err
	}
	objs[root] = true
	switch o := obj.(type) {
	case *FileObject:
		for _, c := range o.Chunks {
			chunks[c.ID] = true
		}
	case *TreeObject:
		for _, e := range o.Entries {
			if e.Kind == KindFile || e.Kind == KindDir {
				if err := s.reach(ctx, e.ID, objs, chunks); err != nil {
					return fmt.Errorf("%s: %w", e.Name, err)
				}
			}
		}
	}
	return nil
}

// tree plans the tree id (decoded: t), whose old version (the tree at the same path in
// from) is oldID (decoded: old), or none.
func (p *deltaPlanner) tree(id ID, t *TreeObject, oldID ID, old *TreeObject) error {
	if p.fromObjs[id] || p.seenObj[id] {
		return nil
	}
	if err := p.ctx.Err(); err != nil {
		return err
	}
	p.seenObj[id] = true
	p.trees = append(p.trees, plannedEntry{kind: DeltaTree, target: id, bases: oneBase(oldID)})
	for _, e := range t.Entries {
		var oe *Entry
		if old != nil {
			if i, ok := slices.BinarySearchFunc(old.Entries, e.Name, func(x Entry, n string) int {
				return cmpString(x.Name, n)
			}); ok {
				oe = &old.Entries[i]
			}
		}
		switch e.Kind {
		case KindDir:
			if p.fromObjs[e.ID] || p.seenObj[e.ID] {
				continue
			}
			sub, err := p.s.Tree(e.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			var oldSubID ID
			var oldSub *TreeObject
			if oe != nil && oe.Kind == KindDir {
				if oldSub, err = p.s.Tree(oe.ID); err != nil {
					return fmt.Errorf("%s (old): %w", e.Name, err)
				}
				oldSubID = oe.ID
			}
			if err := p.tree(e.ID, sub, oldSubID, oldSub); err != nil {
				return fmt.Errorf("%s/%w", e.Name, err)
			}
		case KindFile:
			if p.fromObjs[e.ID] || p.seenObj[e.ID] {
				continue
			}
			f, err := p.s.File(e.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			var oldFileID ID
			var oldFile *FileObject
			if oe != nil && oe.Kind == KindFile {
				if oldFile, err = p.s.File(oe.ID); err != nil {
					return fmt.Errorf("%s (old): %w", e.Name, err)
				}
				oldFileID = oe.ID
			}
			if err := p.file(e.ID, f, oldFileID, oldFile); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *deltaPlanner) file(id ID, f *FileObject, oldID ID, old *FileObject) error {
	if p.fromObjs[id] || p.seenObj[id] {
		return nil
	}
	p.seenObj[id] = true
	p.files = append(p.files, plannedEntry{kind: DeltaFile, target: id, bases: oneBase(oldID)})
	p.fileJobs = append(p.fileJobs, fileJob{new: f, old: old})
	return nil
}

func oneBase(id ID) []ID {
	if id.IsZero() {
		return nil
	}
	return []ID{id}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// chunkBases returns, for every chunk of nf, the chunks of of (the old version of the same
// file, or nil) that a delta of it would use as bases (nil: none), by anchor alignment (see
// the comment at the top of this file). At most maxBases chunks, of maxBytes at most, per
// chunk.
func chunkBases(nf, of *FileObject, maxBases int, maxBytes int64) [][]ID {
	bases := make([][]ID, len(nf.Chunks))
	if of == nil || len(of.Chunks) == 0 {
		return bases
	}
	pos := make(map[ID][]int, len(of.Chunks))
	for k, c := range of.Chunks {
		pos[c.ID] = append(pos[c.ID], k)
	}
	// Anchors: chunks both have, matched in order (greedily: each new chunk to the first
	// occurrence after the previous anchor), with sentinels before and after both files.
	type anchor struct{ j, k int }
	anchors := []anchor{{-1, -1}}
	for j, c := range nf.Chunks {
		ks := pos[c.ID]
		last := anchors[len(anchors)-1].k
		if i := sort.SearchInts(ks, last+1); i < len(ks) {
			anchors = append(anchors, anchor{j, ks[i]})
		}
	}
	anchors = append(anchors, anchor{len(nf.Chunks), len(of.Chunks)})
	for a := 0; a+1 < len(anchors); a++ {
		lo, hi := anchors[a], anchors[a+1]
		newGap := nf.Chunks[lo.j+1 : hi.j]
		if len(newGap) == 0 {
			continue
		}
		oldGap := of.Chunks[lo.k+1 : hi.k]
		if len(oldGap) == 0 {
			// Pure insertion: the neighbouring old chunks are the likeliest to look alike.
			var near []ID
			if lo.k >= 0 {
				near = append(near, of.Chunks[lo.k].ID)
			}
			// (Both may be one chunk, repeated: a run of zeros. Bases are unique.)
			if hi.k < len(of.Chunks) && len(near) < maxBases && !slices.Contains(near, of.Chunks[hi.k].ID) {
				near = append(near, of.Chunks[hi.k].ID)
			}
			for j := range newGap {
				bases[lo.j+1+j] = near
			}
			continue
		}
		var oldBytes, newBytes int64
		for _, c := range oldGap {
			oldBytes += int64(c.Length)
		}
		for _, c := range newGap {
			newBytes += int64(c.Length)
		}
		if len(oldGap) <= maxBases && oldBytes <= maxBytes {
			all := make([]ID, 0, len(oldGap))
			for _, c := range oldGap {
				if !slices.Contains(all, c.ID) {
					all = append(all, c.ID)
				}
			}
			for j := range newGap {
				bases[lo.j+1+j] = all
			}
			continue
		}
		// A long run: align each new chunk with the old bytes at the same distance from
		// the preceding anchor (first half) or from the following anchor (second half).
		var off int64
		for j, c := range newGap {
			start := off
			if off+int64(c.Length)/2 > newBytes/2 {
				start = off + oldBytes - newBytes
			}
			end := start + int64(c.Length)
			var picked []ID
			var pickedBytes, at int64
			for _, oc := range oldGap {
				ocEnd := at + int64(oc.Length)
				if ocEnd > start && at < end && len(picked) < maxBases && pickedBytes+int64(oc.Length) <= maxBytes &&
					!slices.Contains(picked, oc.ID) {
					picked = append(picked, oc.ID)
					pickedBytes += int64(oc.Length)
				}
				at = ocEnd
			}
			bases[lo.j+1+j] = picked
			off += int64(c.Length)
		}
	}
	return bases
}

// trainDict trains the pack's dictionary on its compressible chunks without bases, if they
// are many enough to repay it; nil otherwise.
func (s *Store) trainDict(ctx context.Context, entries []plannedEntry) ([]byte, error) {
	var candidates []*plannedEntry
	var total int64
	for i := range entries {
		e := &entries[i]
		if e.kind != DeltaChunk || len(e.bases) > 0 || !s.compressible(e.target, e.size) {
			continue
		}
		candidates = append(candidates, e)
		total += e.size
	}
	if total < dictMinInput {
		return nil, nil
	}
	// Evenly spread samples, about dictSampleSize bytes of them.
	step := max(1, int(total/dictSampleSize))
	var samples [][]byte
	for i := 0; i < len(candidates); i += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := s.Chunk(candidates[i].target)
		if err != nil {
			return nil, err
		}
		samples = append(samples, data)
	}
	// The dictionary's content is the start of every sample in turn, dictSize bytes in all,
	// with entropy tables fitted to the samples. Not dict.BuildZstdDict: its choice of
	// content depends on map order, so that a pack would not be reproducible (two builds of
	// one delta, two different files of one name: a cache or a resumed download would mix
	// them). This does better, and many times faster: the compressible chunks of the shared
	// transfer data set's v1 take 0.71 of their stored size against 0.77 (Go's sources: 0.79
	// both; /usr/share/doc: 0.75 against 0.77).
	per := dictSize/len(samples) + 1
	var history []byte
	for _, sample := range samples {
		history = append(history, sample[:min(len(sample), per)]...)
	}
	history = history[:min(len(history), dictSize)]
	zdict, err := zstd.BuildDict(zstd.BuildDictOptions{ID: dictID, Contents: samples, History: history,
		Offsets: [3]int{1, 4, 8}, Level: deltaLevel})
	if err != nil {
		return nil, nil // not fatal: the pack is just larger
	}
	if len(zdict) > maxDictSize {
		return nil, nil
	}
	return zdict, nil
}

// compressible reports whether a chunk's stored form is markedly smaller than its content.
func (s *Store) compressible(id ID, size int64) bool {
	info, err := os.Stat(s.ChunkPath(id))
	return err == nil && float64(info.Size()) < compressibleRatio*float64(size)
}

// deltaBuilder computes payloads.
type deltaBuilder struct {
	s     *Store
	zdict []byte
}

type payloadResult struct {
	payload   []byte
	enc       DeltaEncoding
	bases     []ID
	plainSize int64
	err       error
}

// payloads computes the payloads of entries in parallel and calls emit with each, in order.
func (b *deltaBuilder) payloads(ctx context.Context, entries []plannedEntry, emit func(*plannedEntry, payloadResult) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := runtime.GOMAXPROCS(0)
	results := make([]chan payloadResult, len(entries))
	for i := range results {
		results[i] = make(chan payloadResult, 1)
	}
	jobs := make(chan int)
	window := make(chan struct{}, 8*workers) // results computed ahead of the writer
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newPayloadWorker(b)
			defer w.close()
			for i := range jobs {
				results[i] <- w.compute(&entries[i])
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range entries {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	for i := range entries {
		var r payloadResult
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		<-window
		if r.err != nil {
			err = fmt.Errorf("%s %s: %w", entries[i].kind, entries[i].target, r.err)
			break
		}
		if err = emit(&entries[i], r); err != nil {
			break
		}
	}
	cancel() // the feeder stops, closing jobs; the workers finish their job and exit
	wg.Wait()
	return err
}

// payloadWorker holds one worker's encoders.
type payloadWorker struct {
	b       *deltaBuilder
	raw     map[int]*zstd.Encoder // by window size, for raw-dictionary deltas
	dictEnc map[int]*zstd.Encoder // by window size, with the pack's dictionary
	plain   *zstd.Encoder
}

func newPayloadWorker(b *deltaBuilder) *payloadWorker {
	return &payloadWorker{b: b, raw: map[int]*zstd.Encoder{}, dictEnc: map[int]*zstd.Encoder{}}
}

func (w *payloadWorker) close() {
	for _, e := range w.raw {
		_ = e.Close()
	}
	for _, e := range w.dictEnc {
		_ = e.Close()
	}
	if w.plain != nil {
		_ = w.plain.Close()
	}
}

// windowFor returns a zstd window that lets a frame refer to all of its dictionary.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return max(w, 1<<20)
}

// encoder returns the cached encoder for window, made with opts, or with opts applied if
// reset (the options differ from those it was made with: a raw dictionary). The pack's
// dictionary is the same for every payload: applying it again would parse it and index
// it anew for each one (most of the time of building a pack with a dictionary).
func (w *payloadWorker) encoder(cache map[int]*zstd.Encoder, window int, reset bool, opts ...zstd.EOption) (*zstd.Encoder, error) {
	if e := cache[window]; e != nil {
		if !reset {
			return e, nil
		}
		return e, e.ResetWithOptions(nil, opts...)
	}
	e, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderLevel(deltaLevel), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window)}, opts...)...)
	if err != nil {
		return nil, err
	}
	cache[window] = e
	return e, nil
}

func (w *payloadWorker) compute(pe *plannedEntry) (r payloadResult) {
	s := w.b.s
	kind := chunksDir
	if pe.kind != DeltaChunk {
		kind = objectsDir
	}
	if pe.kind == DeltaDict {
		if w.plain == nil {
			var err error
			if w.plain, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(deltaLevel), zstd.WithEncoderCRC(false),
				zstd.WithEncoderConcurrency(1)); err != nil {
				return payloadResult{err: err}
			}
		}
		return payloadResult{payload: seal(w.plain.EncodeAll(w.b.zdict, nil)), enc: EncStored, plainSize: int64(len(w.b.zdict))}
	}
	stored, plain, err := s.read(kind, pe.target, nil)
	if err != nil {
		return payloadResult{err: err}
	}
	best := payloadResult{payload: stored, enc: EncStored, plainSize: int64(len(plain))}
	if len(pe.bases) > 0 {
		var base []byte
		ok := true
		for _, id := range pe.bases {
			_, bp, err := s.read(kind, id, nil)
			if err != nil {
				ok = false // an unreadable base: no delta, the stored form will do
				break
			}
			base = append(base, bp...)
		}
		if ok && len(base) > 0 {
			e, err := w.encoder(w.raw, windowFor(len(base)+len(plain)), true, zstd.WithEncoderDictRaw(0, base))
			if err != nil {
				return payloadResult{err: err}
			}
			if d := e.EncodeAll(plain, nil); len(d) < len(best.payload) {
				best = payloadResult{payload: d, enc: EncDelta, bases: pe.bases, plainSize: int64(len(plain))}
			}
		}
	}
	if w.b.zdict != nil && pe.kind == DeltaChunk && float64(len(stored)) < compressibleRatio*float64(len(plain)) {
		e, err := w.encoder(w.dictEnc, windowFor(len(w.b.zdict)+len(plain)), false, zstd.WithEncoderDict(w.b.zdict))
		if err != nil {
			return payloadResult{err: err}
		}
		if d := e.EncodeAll(plain, nil); len(d) < len(best.payload) {
			best = payloadResult{payload: d, enc: EncDict, bases: []ID{Sum(w.b.zdict)}, plainSize: int64(len(plain))}
		}
	}
	return best
}

// PutObjectCompressed stores zdata, an object exactly as a store keeps it (frame and seal),
// once it has checked the seal, that zdata decompresses to bytes whose ID is id, and that
// those are a valid object. Otherwise nothing is stored and the error wraps ErrCorrupt.
func (s *Store) PutObjectCompressed(id ID, zdata []byte) error {
	return s.putReceived(objectsDir, id, zdata, func(plain []byte) error {
		if err := checkObject(id, plain); err != nil {
			return fmt.Errorf("object %s as received: %w: %w", id, ErrCorrupt, err)
		}
		return nil
	})
}

// DeltaApplier decodes and stores the payloads of one delta. Its methods are safe for
// concurrent use; payloads can be applied in any order, but a 'p' payload only once the
// pack's dictionary has been applied.
type DeltaApplier struct {
	s   *Store
	idx *DeltaIndex

	mu      sync.Mutex
	dicts   map[ID][]byte        // the pack's dictionary, once applied
	dictDec map[ID]*zstd.Decoder // decoders with it
	raw     sync.Pool            // *zstd.Decoder for raw-dictionary deltas
}

// NewDeltaApplier returns an applier for the delta that idx describes.
func (s *Store) NewDeltaApplier(idx *DeltaIndex) *DeltaApplier {
	return &DeltaApplier{s: s, idx: idx, dicts: map[ID][]byte{}, dictDec: map[ID]*zstd.Decoder{}}
}

// Close releases the applier's decoders.
func (a *DeltaApplier) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.dictDec {
		d.Close()
	}
	a.dictDec = map[ID]*zstd.Decoder{}
}

// Have reports whether entry i's target is already present: in the store, or (the pack's
// dictionary) in the applier.
func (a *DeltaApplier) Have(i int) bool {
	e := &a.idx.Entries[i]
	switch e.Kind {
	case DeltaDict:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.dicts[e.Target] != nil
	case DeltaChunk:
		return a.s.HasChunk(e.Target)
	}
	return a.s.HasObject(e.Target)
}

// BasesPresent reports whether the store holds entry i's delta bases (true for an entry
// without any; a 'p' payload needs the pack's dictionary, which is not a base in the store).
func (a *DeltaApplier) BasesPresent(i int) bool {
	e := &a.idx.Entries[i]
	if e.Encoding != EncDelta {
		return true
	}
	for _, b := range e.Bases {
		if e.Kind == DeltaChunk && !a.s.HasChunk(b) || e.Kind != DeltaChunk && !a.s.HasObject(b) {
			return false
		}
	}
	return true
}

// Apply decodes entry i's payload, checks that it hashes to the entry's target and stores
// it. A payload that does not decode or hashes to something else is refused: nothing is
// stored, and the error, which names the entry, wraps ErrCorrupt.
func (a *DeltaApplier) Apply(i int, payload []byte) error {
	e := &a.idx.Entries[i]
	bad := func(err error) error {
		return fmt.Errorf("delta %s: %s: %w: %w", deltaName(a.idx.From, a.idx.To), e, ErrCorrupt, err)
	}
	if int64(len(payload)) != e.Length {
		return bad(fmt.Errorf("%d bytes, the index says %d", len(payload), e.Length))
	}
	kind := chunksDir
	if e.Kind != DeltaChunk {
		kind = objectsDir
	}
	switch e.Encoding {
	case EncStored:
		switch e.Kind {
		case DeltaChunk:
			if err := a.s.PutChunkCompressed(e.Target, payload); err != nil {
				if errors.Is(err, ErrCorrupt) {
					return bad(err)
				}
				return err
			}
			return nil
		case DeltaTree, DeltaFile:
			if err := a.s.PutObjectCompressed(e.Target, payload); err != nil {
				if errors.Is(err, ErrCorrupt) {
					return bad(err)
				}
				return err
			}
			return nil
		case DeltaDict:
			plain, err := a.s.verify(chunksDir, e.Target, payload, nil)
			if err != nil {
				return bad(err)
			}
			if len(plain) > maxDictSize {
				return bad(fmt.Errorf("a dictionary of %d bytes", len(plain)))
			}
			return a.loadDict(e.Target, plain)
		}
	case EncDelta:
		var base []byte
		for _, id := range e.Bases {
			_, bp, err := a.s.read(kind, id, nil)
			if err != nil {
				return fmt.Errorf("delta %s: %s: base %s: %w", deltaName(a.idx.From, a.idx.To), e, id, err)
			}
			base = append(base, bp...)
		}
		dec, _ := a.raw.Get().(*zstd.Decoder)
		if dec == nil {
			var err error
			if dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limitFor(e.Kind)))); err != nil {
				return err
			}
		}
		defer a.raw.Put(dec)
		if err := dec.ResetWithOptions(nil, zstd.WithDecoderDictRaw(0, base), zstd.WithDecoderMaxMemory(uint64(limitFor(e.Kind)))); err != nil {
			return err
		}
		plain, err := dec.DecodeAll(payload, nil)
		if err != nil {
			return bad(fmt.Errorf("does not decompress: %w", err))
		}
		return a.store(e, plain, bad)
	case EncDict:
		a.mu.Lock()
		dec := a.dictDec[e.Bases[0]]
		a.mu.Unlock()
		if dec == nil {
			return fmt.Errorf("delta %s: %s: the pack's dictionary has not been applied", deltaName(a.idx.From, a.idx.To), e)
		}
		plain, err := dec.DecodeAll(payload, nil)
		if err != nil {
			return bad(fmt.Errorf("does not decompress: %w", err))
		}
		if int64(len(plain)) > limitFor(e.Kind) {
			return bad(fmt.Errorf("%d bytes decoded, over the limit", len(plain)))
		}
		return a.store(e, plain, bad)
	}
	return bad(fmt.Errorf("encoding %q", byte(e.Encoding)))
}

func limitFor(k DeltaKind) int64 {
	switch k {
	case DeltaChunk:
		return MaxChunkSize
	case DeltaDict:
		return maxDictSize
	}
	return maxObjectSize
}

// store checks plain against e's target and stores it.
func (a *DeltaApplier) store(e *DeltaEntry, plain []byte, bad func(error) error) error {
	if got := Sum(plain); got != e.Target {
		return bad(fmt.Errorf("decodes to content that hashes to %s", got))
	}
	var err error
	if e.Kind == DeltaChunk {
		_, err = a.s.PutChunk(plain)
	} else {
		_, err = a.s.PutObject(plain)
	}
	if errors.Is(err, ErrMalformed) {
		return bad(err)
	}
	return err
}

func (a *DeltaApplier) loadDict(id ID, zdict []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dicts[id] != nil {
		return nil
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(MaxChunkSize), zstd.WithDecoderDicts(zdict))
	if err != nil {
		return fmt.Errorf("delta %s: dictionary %s: %w: %w", deltaName(a.idx.From, a.idx.To), id, ErrCorrupt, err)
	}
	a.dicts[id] = zdict
	a.dictDec[id] = dec
	return nil
}

// openRegular opens p for reading, refusing anything but a regular file (a directory from
// a USB stick or a copy may hold a FIFO, which would block, or a device, which never ends).
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", p)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// ApplyDelta applies the delta from → to found in dir, a directory laid out as a store
// (deltas/FROM-TO.idx.zst and .pack; a copy of a store, a USB stick), streaming its pack
// once and storing what the store lacks. It returns the number of payloads applied.
func (s *Store) ApplyDelta(ctx context.Context, dir string, from, to ID) (int, error) {
	x, err := readDeltaIndexFile(filepath.Join(dir, filepath.FromSlash(DeltaIndexPath(from, to))), from, to)
	if err != nil {
		return 0, err
	}
	f, err := openRegular(filepath.Join(dir, filepath.FromSlash(DeltaPackPath(from, to))))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// A truncated (or stale) pack is refused before anything is applied.
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if info.Size() != x.PackSize() {
		return 0, fmt.Errorf("delta %s: pack %s: %w: %d bytes, the index says %d", deltaName(from, to), f.Name(), ErrCorrupt,
			info.Size(), x.PackSize())
	}
	a := s.NewDeltaApplier(x)
	defer a.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	n := 0
	var buf []byte
	for i := range x.Entries {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		e := &x.Entries[i]
		if a.Have(i) || !a.BasesPresent(i) {
			if _, err := r.Discard(int(e.Length)); err != nil {
				return n, fmt.Errorf("delta %s: pack: %w", deltaName(from, to), err)
			}
			continue
		}
		buf = slices.Grow(buf[:0], int(e.Length))[:e.Length]
		if _, err := io.ReadFull(r, buf); err != nil {
			return n, fmt.Errorf("delta %s: pack: %w", deltaName(from, to), err)
		}
		if err := a.Apply(i, buf); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
