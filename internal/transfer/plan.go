package transfer

import (
	"github.com/satchelcm/satchel/internal/store"
)

// Fetch plan: which byte ranges of a pack to request for the entries a store needs.
//
// Coalescing. Two needed entries go in one range when the pack bytes between them (entries
// the store has, or cannot decode) are at most mergeGap; those bytes are read and thrown
// away. A gap costs its bytes; a separate request costs its headers (about 0.5-1 KiB both
// ways) and a round trip in which that stream moves nothing. On the links Satchel is made
// for (about 1 Mbit/s, round trips up to half a second) a round trip is worth about 64 KiB
// of transfer, the bandwidth-delay product, so a gap up to that is cheaper to read than to
// skip. On an update the gaps are rare anyway: a delta's pack holds only what FROM lacks, so
// a node holding FROM needs all of it, and gaps appear only where it already has entries
// (a resumed pull, or a full pack into a store that holds part of the tree).
//
// Splitting. The ranges are then cut, at entry boundaries, into pieces of about an equal
// share of the total for each of the Streams parallel requests, so the streams finish
// together; a range is not cut into pieces under minPiece (a small transfer is one request),
// and every piece starts and ends with a needed entry. The pieces are fetched in pack order
// by whichever stream is free, one range per request.
const (
	mergeGap = 64 << 10
	minPiece = 128 << 10
)

// span is a range of a pack read in one request: its entries first to last (inclusive,
// both needed), the pack bytes [start, end).
type span struct {
	first, last int
	start, end  int64
}

func (s span) size() int64 { return s.end - s.start }

// planSpans returns the ranges that cover the entries marked in need, coalesced across gaps
// up to gap bytes and split for streams parallel requests into pieces of at least minSize.
func planSpans(entries []store.DeltaEntry, need []bool, streams int, gap, minSize int64) []span {
	var merged []span
	var total int64
	for i := range entries {
		if !need[i] {
			continue
		}
		e := &entries[i]
		if n := len(merged); n > 0 && e.Offset-merged[n-1].end <= gap {
			merged[n-1].last, merged[n-1].end = i, e.End()
			continue
		}
		merged = append(merged, span{first: i, last: i, start: e.Offset, end: e.End()})
	}
	for _, s := range merged {
		total += s.size()
	}
	target := max(minSize, (total+int64(streams)-1)/int64(max(streams, 1)))
	var out []span
	for _, s := range merged {
		out = append(out, split(entries, need, s, target, minSize)...)
	}
	return out
}

// split cuts s into about size/target pieces of about equal size (none under minSize), at
// entry boundaries.
func split(entries []store.DeltaEntry, need []bool, s span, target, minSize int64) []span {
	k := min((s.size()+target/2)/target, s.size()/minSize) // pieces: rounded, none under minSize
	if k <= 1 {
		return []span{s}
	}
	piece := s.size() / k
	var out []span
	cur := span{first: s.first, start: s.start}
	for i := s.first; i <= s.last; i++ {
		if !need[i] {
			continue
		}
		e := &entries[i]
		cur.last, cur.end = i, e.End()
		if int64(len(out)) < k-1 && cur.size() >= piece && i < s.last {
			out = append(out, cur)
			next := i + 1
			for !need[next] { // s.last is needed, so this stops
				next++
			}
			cur = span{first: next, start: entries[next].Offset}
		}
	}
	return append(out, cur)
}
