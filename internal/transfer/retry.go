package transfer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// permanentError is a failure that repeating the request will not mend: a 404, a 403, a
// file larger than any the store holds, a write to the local store that failed.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying.
func permanent(err error) error {
	if err == nil || isPermanent(err) {
		return err
	}
	return &permanentError{err}
}

func isPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// errGaveUp wraps the last error of a request given up after MaxAttempts failures.
var errGaveUp = errors.New("gave up")

// retry runs op until it succeeds, fails permanently, the context ends, or it has failed
// MaxAttempts times in a row with nothing stored by the pull meanwhile (a failure after
// progress, here or in another stream, starts the count again: a link that keeps
// delivering, however badly, is never given up). Between attempts it waits the back-off
// (exponential from MinBackoff to MaxBackoff, with jitter; longer if the server asked so
// with Retry-After). what names the request in warnings.
func (p *pull) retry(ctx context.Context, what string, op func() error) error {
	failures := 0
	epoch := p.epoch.Load()
	for {
		err := op()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case isPermanent(err):
			return err
		}
		if e := p.epoch.Load(); e != epoch {
			failures, epoch = 0, e
		}
		failures++
		if failures >= p.c.MaxAttempts {
			return fmt.Errorf("%w after %d attempts without progress: %w", errGaveUp, failures, err)
		}
		d := p.backoff(failures)
		var se *statusError
		if errors.As(err, &se) && se.retryAfter > d {
			d = min(se.retryAfter, p.c.MaxBackoff)
		}
		p.retries.Add(1)
		p.warn(fmt.Sprintf("%s: %v; trying again in %s", what, err, d.Round(time.Millisecond)))
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// backoff returns the wait before the next attempt after n failures in a row: MinBackoff
// doubled n-1 times, at most MaxBackoff, of which a random half ("equal jitter", so that
// streams cut at once do not come back at once).
func (p *pull) backoff(n int) time.Duration {
	d := p.c.MinBackoff
	for i := 1; i < n && d < p.c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.c.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
