package agent_test

import (
	"math"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/agent"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	const m = time.Minute
	fixed := func(r float64) func() float64 { return func() float64 { return r } }
	for _, tc := range []struct {
		name     string
		interval time.Duration
		splay    time.Duration
		failures int
		rnd      float64
		want     time.Duration
	}{
		{"success, no splay drawn", 30 * m, 5 * m, 0, 0, 30 * m},
		{"success, half the splay", 30 * m, 5 * m, 0, 0.5, 30*m + 150*time.Second},
		{"success, almost all the splay", 30 * m, 5 * m, 0, 0.999999, 30*m + 5*m - 300*time.Microsecond},
		{"success, no splay", 30 * m, 0, 0, 0.5, 30 * m},
		{"first failure", 30 * m, 0, 1, 0, m},
		{"second failure", 30 * m, 0, 2, 0, 2 * m},
		{"third failure", 30 * m, 0, 3, 0, 4 * m},
		{"fifth failure", 30 * m, 0, 5, 0, 16 * m},
		{"sixth failure: capped at the interval", 30 * m, 0, 6, 0, 30 * m},
		{"many failures", 30 * m, 0, 1000, 0, 30 * m},
		{"most failures", 30 * m, 0, math.MaxInt, 0, 30 * m},
		{"failure plus splay", 30 * m, 5 * m, 2, 0.5, 2*m + 150*time.Second},
		{"capped failure plus splay", 30 * m, 5 * m, 9, 0.5, 30*m + 150*time.Second},
		{"exact power of two", 8 * m, 0, 4, 0, 8 * m},
		{"interval below MinBackoff", 30 * time.Second, 0, 1, 0, 30 * time.Second},
		{"huge interval", math.MaxInt64, 0, 100, 0, math.MaxInt64},
		{"huge interval and splay do not overflow", math.MaxInt64, math.MaxInt64, 0, 0.9, math.MaxInt64},
		{"huge splay", 30 * m, math.MaxInt64, 0, 0.999999999, math.MaxInt64},
		{"negative failures count as success", 30 * m, 0, -3, 0, 30 * m},
		{"negative interval", -m, 0, 0, 0, 0},
		{"negative splay", 30 * m, -m, 0, 0.5, 30 * m},
		{"rnd of 1 stays below the splay", 30 * m, 5 * m, 0, 1, 35*m - time.Nanosecond},
		{"rnd above 1", 30 * m, 5 * m, 0, 7, 35*m - time.Nanosecond},
		{"negative rnd", 30 * m, 5 * m, 0, -1, 30 * m},
		{"NaN rnd", 30 * m, 5 * m, 0, math.NaN(), 30 * m},
	} {
		if got := agent.Delay(tc.interval, tc.splay, tc.failures, fixed(tc.rnd)); got != tc.want {
			t.Errorf("%s: Delay(%v, %v, %d, %v) = %v, want %v", tc.name, tc.interval, tc.splay, tc.failures, tc.rnd, got, tc.want)
		}
	}
}

// With the real random source, delays stay in [base, base+splay) and the back-off grows
// without ever passing the interval.
func TestDelayBounds(t *testing.T) {
	t.Parallel()
	interval, splay := 30*time.Minute, 5*time.Minute
	prev := time.Duration(0)
	for failures := range 70 {
		base := interval
		if failures > 0 && failures < 20 {
			base = min(interval, agent.MinBackoff<<(failures-1))
		}
		for range 50 {
			d := agent.Delay(interval, splay, failures, nil)
			if d < base || d >= base+splay {
				t.Fatalf("Delay(%v, %v, %d) = %v, want in [%v, %v)", interval, splay, failures, d, base, base+splay)
			}
		}
		if failures > 1 && agent.Delay(interval, 0, failures, nil) < prev {
			t.Fatalf("back-off shrank at %d failures", failures)
		}
		if failures > 0 {
			prev = agent.Delay(interval, 0, failures, nil)
		}
	}
}
