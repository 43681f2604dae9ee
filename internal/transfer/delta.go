package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/satchelcm/satchel/internal/store"
)

// maxIndexSize bounds a delta index download (compressed; store.ReadDeltaIndex bounds its
// decoded size).
const maxIndexSize = store.MaxDeltaIndexFile

// errBadDelta: a delta that cannot be used (an index that does not decode or is not the one
// asked for, a pack that does not match its index). The pull goes on without it.
var errBadDelta = errors.New("delta refused")

// viaDelta fetches what the store lacks through the first delta found, trying the roots in
// have, then the delta from nothing. A server without deltas, or with unusable ones, is not
// an error: the single phase does the rest.
func (p *pull) viaDelta(ctx context.Context, have []store.ID) error {
	for _, from := range p.candidates(have) {
		x, err := p.fetchIndex(ctx, from)
		switch {
		case absent(err):
			continue
		case errors.Is(err, errBadDelta):
			p.warn(fmt.Sprintf("%v; not using it", err))
			continue
		case err != nil:
			return err
		}
		p.from = from
		p.delta.Store(true)
		err = p.applyDelta(ctx, x)
		if errors.Is(err, errBadDelta) {
			p.warn(fmt.Sprintf("%v; fetching the rest file by file", err))
			return nil
		}
		return err
	}
	return nil
}

// absent reports whether a request for an optional file (a delta's index) failed because
// the file is not there: 404, or 403 as object stores (S3, GCS) answer for a missing key
// when listing is not allowed. A server that forbids everything says so again on the
// objects, which are not optional.
func absent(err error) bool {
	var se *statusError
	return errors.Is(err, errNotFound) || errors.As(err, &se) && se.code == http.StatusForbidden
}

// fetchIndex downloads and decodes the index of the delta from → p.to. An index that is
// not there is errNotFound; one that is refused wraps errBadDelta.
func (p *pull) fetchIndex(ctx context.Context, from store.ID) (*store.DeltaIndex, error) {
	path := store.DeltaIndexPath(from, p.to)
	var z []byte
	var u string
	err := p.retry(ctx, "delta index", func() error {
		resp, err := p.get(ctx, path, nil, false)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		u = resp.url
		if resp.StatusCode != http.StatusOK {
			return permanent(fmt.Errorf("%w: GET %s: %s to a request without Range", errBadDelta, u, printable(resp.Status)))
		}
		z, err = readBody(resp, maxIndexSize)
		if isPermanent(err) {
			return permanent(fmt.Errorf("%w: %w", errBadDelta, err))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	x, err := store.ReadDeltaIndex(z)
	if err != nil {
		return nil, fmt.Errorf("%w: index %s: %w", errBadDelta, u, err)
	}
	if x.From != from || x.To != p.to {
		return nil, fmt.Errorf("%w: index %s: it is the index of %s → %s", errBadDelta, u, x.From, x.To)
	}
	return x, nil
}

// packRun is the application of one delta: which entries are needed, which are done.
type packRun struct {
	p    *pull
	x    *store.DeltaIndex
	a    *store.DeltaApplier
	path string // the pack's, relative to the base URL
	need []bool
	done []atomic.Bool // applied, or refused (then left to the single phase)

	lastNeeded int         // the last needed entry: where reading a whole pack may stop
	noRanges   atomic.Bool // the server answered a range request with the whole pack
	probed     chan struct{}
	probeOnce  sync.Once
}

// applyDelta applies what the store lacks of the delta x: the pack's dictionary first if
// needed, then the needed entries, in ranges, Streams at a time.
func (p *pull) applyDelta(ctx context.Context, x *store.DeltaIndex) error {
	a := p.s.NewDeltaApplier(x)
	defer a.Close()
	r := &packRun{p: p, x: x, a: a, path: store.DeltaPackPath(x.From, x.To), need: make([]bool, len(x.Entries)),
		done: make([]atomic.Bool, len(x.Entries)), lastNeeded: -1, probed: make(chan struct{})}
	dict := -1
	for i := range x.Entries {
		e := &x.Entries[i]
		if e.Kind == store.DeltaDict {
			dict = i
			continue
		}
		if !a.Have(i) && a.BasesPresent(i) {
			r.need[i] = true
			r.lastNeeded = i
			if e.Encoding == store.EncDict && dict >= 0 {
				r.need[dict] = true
			}
		}
	}
	if r.lastNeeded < 0 {
		return nil
	}
	if dict >= 0 && r.need[dict] {
		// Alone and first: every 'p' payload needs it. It also finds out whether the
		// server serves ranges before the streams start.
		e := &x.Entries[dict]
		p.planned.Add(e.Length)
		if err := r.fetch(ctx, span{first: dict, last: dict, start: e.Offset, end: e.End()}); err != nil {
			return err
		}
		if !a.Have(dict) {
			for i := range x.Entries {
				if x.Entries[i].Encoding == store.EncDict {
					r.need[i] = false // to be fetched singly
				}
			}
		}
	}
	todo := make([]bool, len(r.need))
	for i := range r.need {
		todo[i] = r.need[i] && !r.done[i].Load()
	}
	spans := planSpans(x.Entries, todo, p.c.Streams, mergeGap, minPiece)
	for _, s := range spans {
		p.planned.Add(s.size())
	}
	return r.run(ctx, spans)
}

// run fetches spans with up to Streams requests at a time, in order. Until a first response
// has said whether the server serves ranges, one request runs alone: a server that does not
// would send the whole pack to each of them.
func (r *packRun) run(ctx context.Context, spans []span) error {
	if len(spans) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := range min(r.p.c.Streams, len(spans)) {
		wg.Go(func() {
			if w > 0 {
				select {
				case <-r.probed:
				case <-ctx.Done():
					return
				}
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(spans) || r.noRanges.Load() || ctx.Err() != nil {
					return
				}
				if err := r.fetch(ctx, spans[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// nextUndone returns the first entry of s still to apply, or -1.
func (r *packRun) nextUndone(s span) int {
	for i := s.first; i <= s.last; i++ {
		if r.need[i] && !r.done[i].Load() {
			return i
		}
	}
	return -1
}

// fetch applies the entries of s, with one range request and, when it is cut, more
// requests for the entries still to apply.
func (r *packRun) fetch(ctx context.Context, s span) error {
	defer r.probeOnce.Do(func() { close(r.probed) })
	what := fmt.Sprintf("delta pack bytes %d-%d", s.start, s.end-1)
	var buf []byte
	return r.p.retry(ctx, what, func() error {
		whole := r.noRanges.Load() // then this stream reads what every span still needs
		if whole {
			s = span{first: 0, last: r.lastNeeded}
		}
		first := r.nextUndone(s)
		if first < 0 {
			return nil
		}
		rng := &byteRange{start: r.x.Entries[first].Offset, end: r.x.Entries[s.last].End()}
		if whole {
			rng = nil
		}
		resp, err := r.p.get(ctx, r.path, rng, false)
		r.probeOnce.Do(func() {
			if err == nil && resp.StatusCode == http.StatusOK {
				r.noRanges.Store(true)
			}
			close(r.probed)
		})
		if errors.Is(err, errNotFound) {
			return permanent(fmt.Errorf("%w: %w", errBadDelta, err))
		}
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		size := r.x.PackSize()
		if resp.StatusCode == http.StatusOK {
			// No ranges: the whole pack. Read it once, applying everything needed on the
			// way; the other streams stop taking ranges.
			r.noRanges.Store(true)
			s = span{first: 0, last: r.lastNeeded}
			if resp.ContentLength >= 0 && resp.ContentLength != size {
				return permanent(fmt.Errorf("%w: GET %s: %d bytes, the index says %d", errBadDelta, resp.url, resp.ContentLength, size))
			}
			buf, err = r.stream(ctx, resp, 0, s.last, buf)
			return err
		}
		start, end, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case !ok:
			return fmt.Errorf("GET %s: 206 with Content-Range %q", resp.url, resp.Header.Get("Content-Range"))
		case total >= 0 && total != size:
			return permanent(fmt.Errorf("%w: GET %s: the pack has %d bytes, the index says %d", errBadDelta, resp.url, total, size))
		case rng == nil:
			return fmt.Errorf("GET %s: 206 to a request without Range", resp.url)
		case start != rng.start || end != rng.end:
			return fmt.Errorf("GET %s: asked for bytes %d-%d, got %d-%d", resp.url, rng.start, rng.end-1, start, end-1)
		}
		buf, err = r.stream(ctx, resp, first, s.last, buf)
		return err
	})
}

// stream reads the entries first to last from a body that starts at the first one's
// offset, applying those needed and not done, discarding the others.
func (r *packRun) stream(ctx context.Context, resp *response, first, last int, buf []byte) ([]byte, error) {
	for i := first; i <= last; i++ {
		if err := ctx.Err(); err != nil { // the body may hold more than the cancel stopped
			return buf, err
		}
		e := &r.x.Entries[i]
		if r.need[i] && !r.done[i].Load() && e.Encoding == store.EncDict && !r.dictReady() {
			r.done[i].Store(true) // no dictionary: left to the single phase
		}
		if !r.need[i] || r.done[i].Load() {
			if _, err := io.CopyN(io.Discard, resp.Body, e.Length); err != nil {
				return buf, noEOF(err)
			}
			continue
		}
		var err error
		if buf, err = readFull(resp.Body, buf, e.Length); err != nil {
			return buf, err
		}
		if err := r.a.Apply(i, buf); err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				return buf, permanent(err)
			}
			r.done[i].Store(true)
			r.p.refused.Add(1)
			r.p.warn(fmt.Sprintf("%v; will fetch it singly", err))
			continue
		}
		r.done[i].Store(true)
		if e.Kind == store.DeltaDict {
			r.p.epoch.Add(1) // progress, though nothing is stored
		} else {
			r.p.stored(&r.p.payloads)
		}
	}
	return buf, nil
}

// dictReady reports whether the pack's dictionary (its first entry, if any) is applied.
func (r *packRun) dictReady() bool {
	return len(r.x.Entries) > 0 && r.x.Entries[0].Kind == store.DeltaDict && r.a.Have(0)
}

// noEOF turns the end of a body before the bytes expected into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
