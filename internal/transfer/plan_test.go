package transfer

import (
	"reflect"
	"testing"

	"github.com/satchelcm/satchel/internal/store"
)

// entries returns index entries of the given lengths, contiguous from 0.
func entries(lengths ...int64) []store.DeltaEntry {
	var out []store.DeltaEntry
	var off int64
	for _, n := range lengths {
		out = append(out, store.DeltaEntry{Kind: store.DeltaChunk, Offset: off, Length: n})
		off += n
	}
	return out
}

func needs(n int, idx ...int) []bool {
	b := make([]bool, n)
	for _, i := range idx {
		b[i] = true
	}
	return b
}

func TestPlanSpans(t *testing.T) {
	t.Parallel()
	const k = 1 << 10
	for _, tc := range []struct {
		name    string
		lengths []int64
		need    []int
		streams int
		want    []span
	}{
		{"nothing", []int64{10, 10}, nil, 4, nil},
		{"all, small: one request", []int64{10, 20, 30}, []int{0, 1, 2}, 4, []span{{0, 2, 0, 60}}},
		{"a small gap is read", []int64{10, 64 * k, 10}, []int{0, 2}, 4, []span{{0, 2, 0, 64*k + 20}}},
		{"a large gap is skipped", []int64{10, 64*k + 1, 10}, []int{0, 2}, 4, []span{{0, 0, 0, 10}, {2, 2, 64*k + 11, 64*k + 21}}},
		{"unneeded edges are not read", []int64{5, 10, 10, 5}, []int{1, 2}, 4, []span{{1, 2, 5, 25}}},
		{"split for the streams, at entry boundaries", []int64{100 * k, 100 * k, 100 * k, 100 * k, 100 * k, 100 * k, 100 * k, 100 * k},
			[]int{0, 1, 2, 3, 4, 5, 6, 7}, 4,
			[]span{{0, 1, 0, 200 * k}, {2, 3, 200 * k, 400 * k}, {4, 5, 400 * k, 600 * k}, {6, 7, 600 * k, 800 * k}}},
		{"pieces start and end with needed entries", []int64{200 * k, 1 * k, 200 * k, 1 * k, 200 * k}, []int{0, 2, 4}, 2,
			[]span{{0, 2, 0, 401 * k}, {4, 4, 402 * k, 602 * k}}},
		{"no piece under minPiece", []int64{50 * k, 50 * k, 50 * k, 50 * k}, []int{0, 1, 2, 3}, 4,
			[]span{{0, 3, 0, 200 * k}}},
		{"one stream: one range", []int64{100 * k, 100 * k, 100 * k}, []int{0, 1, 2}, 1, []span{{0, 2, 0, 300 * k}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := entries(tc.lengths...)
			got := planSpans(e, needs(len(e), tc.need...), tc.streams, mergeGap, minPiece)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("planSpans = %v, want %v", got, tc.want)
			}
			// Every needed entry in exactly one span; spans in order, each starting and
			// ending with a needed entry.
			seen := map[int]int{}
			var end int64
			for _, s := range got {
				if s.start < end || !contains(tc.need, s.first) || !contains(tc.need, s.last) ||
					s.start != e[s.first].Offset || s.end != e[s.last].End() {
					t.Errorf("bad span %v", s)
				}
				end = s.end
				for i := s.first; i <= s.last; i++ {
					seen[i]++
				}
			}
			for _, i := range tc.need {
				if seen[i] != 1 {
					t.Errorf("entry %d in %d spans", i, seen[i])
				}
			}
		})
	}
}

func contains(list []int, x int) bool {
	for _, y := range list {
		if x == y {
			return true
		}
	}
	return false
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][3]int64{
		"bytes 0-9/100":   {0, 10, 100},
		"bytes 5-5/*":     {5, 6, -1},
		"bytes 90-99/100": {90, 100, 100},
	} {
		start, end, size, ok := parseContentRange(in)
		if !ok || [3]int64{start, end, size} != want {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %v", in, start, end, size, ok, want)
		}
	}
	for _, in := range []string{"", "bytes */100", "bytes 9-0/100", "bytes 0-100/100", "items 0-9/100", "bytes 0-9", "bytes -1-9/100", "bytes 0-x/100"} {
		if _, _, _, ok := parseContentRange(in); ok {
			t.Errorf("parseContentRange(%q) accepted", in)
		}
	}
}
