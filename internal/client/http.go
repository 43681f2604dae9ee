package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/api"
)

// conn sends JSON requests to a server.
type conn struct {
	base   string // the server's URL, without a trailing slash
	http   *http.Client
	bearer string // the admin token, for admin calls
}

func newConn(server string, tlsConfig *tls.Config, bearer string) (*conn, error) {
	if !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("server %q: want an https:// URL", server)
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsConfig,
		Proxy:               http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 30 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 8,
		ForceAttemptHTTP2:   true,
	}
	return &conn{base: strings.TrimSuffix(server, "/"), http: &http.Client{Transport: tr}, bearer: bearer}, nil
}

// do sends a request with in (if not nil) as its JSON body, and decodes the answer into
// out (if not nil). It returns the status; a status of 400 or more is an *api.Error.
func (c *conn) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = data
	}
	return c.send(ctx, method, path, body, out)
}

// compressFrom is the size from which a request body is sent gzipped: reports of a
// thousand resources shrink ten to twenty times, which a node on a slow link notices.
const compressFrom = 1 << 10

// send sends body (nil: none) as JSON, gzipped when it is large.
func (c *conn) send(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	var r io.Reader
	gzipped := false
	if len(body) >= compressFrom {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body) // a bytes.Buffer does not fail
		if err := zw.Close(); err != nil {
			return 0, err
		}
		r, gzipped = &buf, true
	} else if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	if resp.StatusCode >= 400 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e = api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		e.Body = data
		return resp.StatusCode, &e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: the answer: %w", method, c.base+path, err)
		}
	}
	return resp.StatusCode, nil
}

// Code is the api error code of err, or "".
func Code(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
