package agent

import (
	"context"
	"math/rand/v2"
	"runtime/debug"
	"time"
)

// Run runs cycles until ctx is done: the first after a random part of the splay (so that
// a fleet that boots at once does not call at once), then each after Delay — the interval
// plus a random splay, or a shorter exponential back-off after failures. A cycle whose
// release waits for a transfer window is followed by one when the window opens, if that
// comes sooner. When ctx is cancelled (SIGTERM), the cycle under way finishes the
// resource in flight, records its report and state, and Run returns nil.
func (a *Agent) Run(ctx context.Context) error {
	rnd := rand.Float64
	first := time.Duration(rnd() * float64(a.opts.Splay))
	if err := a.waitWatching(ctx, first); err != nil {
		return nil
	}
	for {
		rep, err := a.Cycle(ctx)
		if err != nil {
			// The state could not be saved (a full disk?): keep converging, log it.
			a.logf("error: %v", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		st, err := ReadState(a.state)
		if err != nil {
			a.logf("error: %v", err)
			st = &State{}
		}
		delay := Delay(a.opts.Interval, a.opts.Splay, st.Failures, rnd)
		if rep != nil && rep.Deferred != "" {
			now := a.opts.Now()
			if open := NextWindowStart(a.opts.Windows, now).Sub(now); open < delay {
				delay = open + time.Duration(rnd()*float64(a.opts.Splay))
			}
		}
		st.NextRun = a.opts.Now().Add(delay).UTC()
		if err := writeState(a.state, st); err != nil {
			a.logf("error: %v", err)
		}
		a.logf("next cycle at %s", st.NextRun.Local().Format("2006-01-02 15:04:05"))
		// Waiting is most of an agent's life: give the cycle's garbage back to the system.
		debug.FreeOSMemory()
		if err := a.waitWatching(ctx, delay); err != nil {
			return nil
		}
	}
}

// wait sleeps for d, or until ctx is done (then returning its error).
func (a *Agent) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
