package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// errNotFound: the server answered 404 (the file is not on the server).
var errNotFound = errors.New("not on the server")

// errStalled: a response delivered nothing for StallTimeout.
var errStalled = errors.New("stalled")

// statusError is a response with a status the client did not ask for.
type statusError struct {
	url        string
	code       int
	status     string        // "403 Forbidden"
	retryAfter time.Duration // from a Retry-After header (seconds), if any
}

func (e *statusError) Error() string { return "GET " + e.url + ": " + e.status }

// Is makes a 404 match errNotFound.
func (e *statusError) Is(target error) bool {
	return target == errNotFound && e.code == http.StatusNotFound
}

// temporary reports whether the same request may succeed later.
func (e *statusError) temporary() bool {
	return e.code >= 500 || e.code == http.StatusRequestTimeout || e.code == http.StatusTooManyRequests
}

// byteRange is the pack bytes [start, end) of a range request.
type byteRange struct{ start, end int64 }

// response is a response whose body counts the bytes read into the pull's stats, honours
// the bandwidth limit and fails when it stalls.
type response struct {
	*http.Response
	url string
}

// get sends one GET for path (relative to the base URL, with slashes). rng, if not nil,
// asks for one byte range; fresh asks caches on the way to revalidate with the server (a
// file that arrived corrupt may come from a damaged cache). The response is 200 or 206:
// any other status is a *statusError (a 404 matches errNotFound). The caller closes the
// body.
func (p *pull) get(ctx context.Context, path string, rng *byteRange, fresh bool) (*response, error) {
	full := p.base.JoinPath(path)
	u := full.Redacted() // how messages name it: without a password
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, full.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, permanent(fmt.Errorf("GET %s: %w", u, err))
	}
	// The files are compressed already; identity also keeps the transport from decoding a
	// gzip that a server would add, so that body bytes are the bytes on the wire.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "satchel-transfer")
	if rng != nil {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rng.start, rng.end-1))
	}
	if fresh {
		req.Header.Set("Cache-Control", "no-cache")
		req.Header.Set("Pragma", "no-cache")
	}
	stall := time.AfterFunc(p.c.StallTimeout, func() { cancel(errStalled) })
	p.requests.Add(1)
	resp, err := p.http.Do(req)
	if err != nil {
		stall.Stop()
		cancel(nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(context.Cause(rctx), errStalled) {
			return nil, fmt.Errorf("GET %s: no response in %s", u, p.c.StallTimeout)
		}
		return nil, fmt.Errorf("GET %s: %w", u, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // keeps the connection for the next request
		resp.Body.Close()
		stall.Stop()
		cancel(nil)
		e := &statusError{url: u, code: resp.StatusCode, status: printable(resp.Status)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			e.retryAfter = time.Duration(s) * time.Second
		}
		if !e.temporary() {
			return nil, permanent(e)
		}
		return nil, e
	}
	stall.Stop() // until the body is read
	resp.Body = &body{r: resp.Body, p: p, ctx: ctx, rctx: rctx, cancel: cancel, stall: stall, url: u}
	return &response{Response: resp, url: u}, nil
}

// printable returns s with its control characters (C0, DEL, C1) replaced by '?': a status
// line comes from the server, and warnings and errors that quote it go to a terminal, which
// an escape sequence would drive (clear it, forge lines).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// unwrapURLError drops the *url.Error around a transport error: get names the request
// itself ("GET URL: cause", as it names a bad status).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxRead bounds one read of a body, so that the limiter's burst covers it.
const maxRead = 32 << 10

// body is a response body that counts what it reads, waits for the bandwidth limiter, and
// fails the request when a read waits StallTimeout for nothing.
type body struct {
	r      io.ReadCloser
	p      *pull
	ctx    context.Context // the pull's
	rctx   context.Context // the request's: cancelled with errStalled by stall
	cancel context.CancelCauseFunc
	stall  *time.Timer
	url    string
}

func (b *body) Read(buf []byte) (int, error) {
	if len(buf) > maxRead {
		buf = buf[:maxRead]
	}
	// The stall timer runs while the read waits for the network, not while the caller
	// applies what it read, nor while it waits for the limiter.
	b.stall.Reset(b.p.c.StallTimeout)
	n, err := b.r.Read(buf)
	b.stall.Stop()
	if n > 0 {
		b.p.bodyBytes.Add(int64(n))
		if b.p.limiter != nil {
			if werr := b.p.limiter.WaitN(b.ctx, n); werr != nil {
				if b.ctx.Err() != nil {
					return n, b.ctx.Err()
				}
				return n, fmt.Errorf("bandwidth limit: %w", werr)
			}
		}
	}
	if err != nil && err != io.EOF {
		switch {
		case b.ctx.Err() != nil:
			err = b.ctx.Err()
		case errors.Is(context.Cause(b.rctx), errStalled):
			err = fmt.Errorf("GET %s: nothing received for %s", b.url, b.p.c.StallTimeout)
		default:
			err = fmt.Errorf("GET %s: %w", b.url, err)
		}
	}
	return n, err
}

func (b *body) Close() error {
	b.stall.Stop()
	err := b.r.Close()
	b.cancel(nil)
	return err
}

// readBody reads a whole body of at most limit bytes (more is an error), growing its
// buffer as bytes arrive: a Content-Length is never trusted to allocate.
func readBody(r *response, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, permanent(fmt.Errorf("GET %s: %d bytes, more than the %d expected at most", r.url, r.ContentLength, limit))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, permanent(fmt.Errorf("GET %s: more than the %d bytes expected at most", r.url, limit))
	}
	if r.ContentLength >= 0 && int64(len(b)) != r.ContentLength {
		return nil, fmt.Errorf("GET %s: %d bytes of %d: %w", r.url, len(b), r.ContentLength, io.ErrUnexpectedEOF)
	}
	return b, nil
}

// readFull reads exactly n bytes into buf (reused), growing it as the bytes arrive, so that
// a length from an index is never allocated before its bytes are there.
func readFull(r io.Reader, buf []byte, n int64) ([]byte, error) {
	buf = buf[:0]
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(n-int64(len(buf)), max(int64(len(buf)), 64<<10))))
		}
		m, err := io.ReadFull(r, buf[len(buf):min(int64(cap(buf)), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// parseContentRange parses a 206's "bytes START-END/SIZE" (SIZE may be "*": -1).
func parseContentRange(s string) (start, end, size int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, false
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, false
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	size = -1
	if total != "*" {
		size, err3 = strconv.ParseInt(total, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || total != "*" && (size < 0 || end >= size) {
		return 0, 0, 0, false
	}
	return start, end + 1, size, true
}
