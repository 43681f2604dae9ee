package transfer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/satchelcm/satchel/internal/store"
)

// Client pulls trees from a store served over HTTP (see the package documentation). Set
// BaseURL; every other field has a default. A Client may be used for several pulls, also
// at once.
type Client struct {
	// BaseURL is the URL of the store's directory: BaseURL + "chunks/ab/….zst" is a chunk.
	BaseURL *url.URL
	// HTTP sends the requests. Default: a client of its own per pull, keeping a connection
	// per stream; it should not have a Timeout (a large range takes long on a slow link:
	// StallTimeout catches a dead connection).
	HTTP *http.Client
	// Streams is how many requests run at once. Default 4.
	Streams int
	// Limit caps the bandwidth of all streams together, in bytes per second, with a burst of
	// 64 KiB. Zero: no cap.
	Limit int64
	// MinBackoff and MaxBackoff bound the wait before a failed request is repeated: it
	// doubles from MinBackoff up to MaxBackoff, with jitter. Default 1s and 60s.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how many times one request may fail in a row, with nothing stored by
	// the pull meanwhile, before the pull gives up. Default 8.
	MaxAttempts int
	// StallTimeout fails a request whose response brings nothing for this long (it is then
	// repeated as any failed request). Default 60s.
	StallTimeout time.Duration
	// Progress, if not nil, is called after every payload, object or chunk stored, with
	// the counts so far. Warn, if not nil, is told what went wrong and was worked around: a
	// request repeated, a payload refused, a delta index refused. The client never calls
	// them concurrently.
	Progress func(Progress)
	Warn     func(msg string)
}

// NewClient returns a client of the store at baseURL (http or https).
func NewClient(baseURL string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("store URL %q: want http://HOST/PATH or https://HOST/PATH", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	u.RawQuery, u.Fragment = "", ""
	return &Client{BaseURL: u}, nil
}

// Defaults.
const (
	defaultStreams      = 4
	defaultMinBackoff   = time.Second
	defaultMaxBackoff   = 60 * time.Second
	defaultMaxAttempts  = 8
	defaultStallTimeout = 60 * time.Second
	limitBurst          = 64 << 10
)

// Stats counts a pull's work.
type Stats struct {
	Requests  int      // HTTP requests sent, failed ones included
	BodyBytes int64    // response body bytes read (the transfer, headers aside)
	Payloads  int      // objects and chunks stored from a delta's pack
	Objects   int      // objects fetched one by one
	Chunks    int      // chunks fetched one by one
	Retries   int      // requests repeated after a failure
	Refused   int      // payloads and files refused as corrupt
	Delta     bool     // a delta was used
	From      store.ID // the delta's FROM (zero: the delta from nothing)
	Duration  time.Duration
}

// Progress is a pull's progress: its counts so far and, once a delta's ranges are
// planned, how many pack bytes they hold.
type Progress struct {
	Stats
	PlannedBytes int64
}

// pull is one Pull's state.
type pull struct {
	c       *Client // with defaults applied
	s       *store.Store
	to      store.ID
	base    *url.URL
	http    *http.Client
	limiter *rate.Limiter

	requests, retries, refused atomic.Int64
	bodyBytes, planned         atomic.Int64
	payloads, objects, chunks  atomic.Int64
	epoch                      atomic.Int64 // counts everything stored: progress
	delta                      atomic.Bool
	from                       store.ID // set before delta is
	start                      time.Time
	callbacks                  sync.Mutex // serializes Progress and Warn
}

// Pull brings into s everything reachable from the root to (a tree or a file object) that s
// lacks, using the first delta found on the server from one of the roots in have (which s
// holds), else the delta from nothing, then single files for the rest (see the package
// documentation). When no object is missing and no more chunks than Streams, they are
// fetched singly: a delta's index would cost more. Pull returns once s holds all of to, or
// with an error saying what is still missing and why. Everything stored stays: pulling
// again resumes.
func (c *Client) Pull(ctx context.Context, s *store.Store, to store.ID, have []store.ID) (Stats, error) {
	p, err := c.newPull(s, to)
	if err != nil {
		return Stats{}, err
	}
	defer p.close()
	fail := func(err error) (Stats, error) {
		return p.stats(), fmt.Errorf("pull %s from %s: %w", to, c.BaseURL.Redacted(), err)
	}
	// What is found present (the bases of deltas, objects already stored) must stay: no GC
	// until the pull is done.
	release, err := s.Hold()
	if err != nil {
		return fail(err)
	}
	defer release()
	objects, chunks, err := s.Missing(ctx, to)
	if err != nil {
		return fail(err)
	}
	if len(objects)+len(chunks) == 0 {
		return p.stats(), nil
	}
	// A few chunks and no object missing: a delta's index would cost more than they do.
	if len(objects) > 0 || len(chunks) > p.c.Streams {
		if err := p.viaDelta(ctx, have); err != nil {
			return fail(err)
		}
	}
	if err := p.singly(ctx); err != nil {
		return fail(err)
	}
	return p.stats(), nil
}

func (c *Client) newPull(s *store.Store, to store.ID) (*pull, error) {
	if c.BaseURL == nil {
		return nil, errors.New("pull: no store URL")
	}
	cc := *c
	if cc.Streams <= 0 {
		cc.Streams = defaultStreams
	}
	if cc.MinBackoff <= 0 {
		cc.MinBackoff = defaultMinBackoff
	}
	if cc.MaxBackoff <= 0 {
		cc.MaxBackoff = max(defaultMaxBackoff, cc.MinBackoff)
	}
	cc.MaxBackoff = max(cc.MaxBackoff, cc.MinBackoff)
	if cc.MaxAttempts <= 0 {
		cc.MaxAttempts = defaultMaxAttempts
	}
	if cc.StallTimeout <= 0 {
		cc.StallTimeout = defaultStallTimeout
	}
	base := *c.BaseURL
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	p := &pull{c: &cc, s: s, to: to, base: &base, http: cc.HTTP, start: time.Now()}
	if p.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cc.Streams
		p.http = &http.Client{Transport: t}
	}
	if cc.Limit > 0 {
		p.limiter = rate.NewLimiter(rate.Limit(cc.Limit), limitBurst)
	}
	return p, nil
}

// close releases the connections of a client made for this pull.
func (p *pull) close() {
	if p.c.HTTP == nil {
		p.http.CloseIdleConnections()
	}
}

func (p *pull) stats() Stats {
	st := Stats{
		Requests:  int(p.requests.Load()),
		BodyBytes: p.bodyBytes.Load(),
		Payloads:  int(p.payloads.Load()),
		Objects:   int(p.objects.Load()),
		Chunks:    int(p.chunks.Load()),
		Retries:   int(p.retries.Load()),
		Refused:   int(p.refused.Load()),
		Duration:  time.Since(p.start),
	}
	if p.delta.Load() {
		st.Delta, st.From = true, p.from
	}
	return st
}

// stored counts one payload, object or chunk stored: progress, which also resets every
// request's count of failures.
func (p *pull) stored(n *atomic.Int64) {
	n.Add(1)
	p.epoch.Add(1)
	if p.c.Progress == nil {
		return
	}
	st := Progress{Stats: p.stats(), PlannedBytes: p.planned.Load()}
	p.callbacks.Lock()
	defer p.callbacks.Unlock()
	p.c.Progress(st)
}

func (p *pull) warn(msg string) {
	if p.c.Warn == nil {
		return
	}
	p.callbacks.Lock()
	defer p.callbacks.Unlock()
	p.c.Warn(msg)
}

// candidates returns the FROMs to try, in order: the roots of have that s holds, then the
// zero ID.
func (p *pull) candidates(have []store.ID) []store.ID {
	var out []store.ID
	for _, h := range have {
		if !h.IsZero() && h != p.to && !slices.Contains(out, h) && p.s.HasObject(h) {
			out = append(out, h)
		}
	}
	return append(out, store.ID{})
}
