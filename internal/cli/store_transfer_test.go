package cli

import (
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/store"
	"github.com/satchelcm/satchel/internal/transfer"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0": 0, "500": 500, "256k": 256 << 10, "2M": 2 << 20, "1.5m": 3 << 19, "1G": 1 << 30} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1", "2MB", "1e6", "0.5", "k", "1 M"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %d, want an error", in, got)
		}
	}
}

func TestPullSummary(t *testing.T) {
	t.Parallel()
	id := store.Sum([]byte("root"))
	from := store.Sum([]byte("from"))
	for _, tc := range []struct {
		st   transfer.Stats
		want string
	}{
		{transfer.Stats{}, "nothing to pull: " + id.String() + " is complete in the store"},
		{transfer.Stats{Requests: 9, BodyBytes: 4300000, Payloads: 1234, Objects: 12, Chunks: 3, Delta: true, From: from, Duration: 2300 * time.Millisecond},
			"pulled " + id.String() + " from http://h/: 1,234 payloads via the delta from " + from.String()[:12] +
				", 12 objects and 3 chunks singly; 4.1 MiB in 9 requests, 2.3s"},
		{transfer.Stats{Requests: 3, BodyBytes: 100, Payloads: 1, Delta: true, Retries: 1, Refused: 2},
			"pulled " + id.String() + " from http://h/: 1 payload via the full delta; 100 B in 3 requests (1 retry), 2 files refused as corrupt, 0.0s"},
		{transfer.Stats{Requests: 10, BodyBytes: 606, Objects: 6, Chunks: 1},
			"pulled " + id.String() + " from http://h/: 6 objects and 1 chunk singly; 606 B in 10 requests, 0.0s"},
	} {
		if got := pullSummary(id, "http://h/", tc.st); got != tc.want {
			t.Errorf("pullSummary(%+v)\n got %s\nwant %s", tc.st, got, tc.want)
		}
	}
}
