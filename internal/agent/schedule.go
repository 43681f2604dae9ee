// When the agent runs its next cycle: the interval, a random splay, and back-off after
// failures.

package agent

import (
	"math"
	"math/rand/v2"
	"time"
)

// MinBackoff is the wait after the first failed cycle; each further consecutive failure
// doubles it, up to the interval.
const MinBackoff = time.Minute

// Delay returns how long to wait before the next cycle: after a successful cycle
// (failures == 0), interval plus a random splay in [0, splay); after failures consecutive
// failed cycles, min(interval, MinBackoff * 2^(failures-1)) plus the same splay.
//
// Back-off never exceeds the interval: a node that cannot reach any repository still
// wakes up every interval, re-applies its last good release (which needs no link) and
// tries the repositories again, so a dead link never stops it from converging.
//
// rnd returns a number in [0, 1), such as rand.Float64 (nil means math/rand/v2's); values
// outside that range are clamped into it. A negative interval or splay counts as zero.
func Delay(interval, splay time.Duration, failures int, rnd func() float64) time.Duration {
	interval = max(interval, 0)
	wait := interval
	if failures > 0 {
		b := MinBackoff
		// Stop doubling once the interval is reached: this bounds the loop (to about 40
		// rounds) and keeps b from overflowing, however large failures is.
		for i := 1; i < failures && b < interval; i++ {
			if b > interval/2 {
				b = interval
				break
			}
			b *= 2
		}
		wait = min(b, interval)
	}
	if splay <= 0 {
		return wait
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	switch {
	case !(r >= 0): // negative or NaN
		r = 0
	case r >= 1:
		r = math.Nextafter(1, 0)
	}
	extra := splay - 1
	if f := r * float64(splay); f < float64(splay) {
		extra = min(time.Duration(f), extra)
	}
	if wait > math.MaxInt64-extra {
		return math.MaxInt64
	}
	return wait + extra
}
