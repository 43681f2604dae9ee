package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// httpCacheName is the file of a trust directory that keeps the HTTP validators (ETag,
// Last-Modified) of the timestamp metadata last fetched and trusted.
const httpCacheName = "http-cache.json"

// maxErrorBody is how much of an error response is read (and dropped) so that its
// connection can carry the next request.
const maxErrorBody = 4 << 10

// validatorMaxAge is how long validators are used after the copy they describe was fetched
// in full: then the timestamp is fetched in full again. A Last-Modified answers "modified
// since?", which a file replaced by an older-dated one (a publisher's clock behind, a
// mirror copied with its times) says no to: this bounds how long such a file can go
// unseen.
const validatorMaxAge = 6 * time.Hour

// maxValidator bounds the length of an ETag or Last-Modified kept: a tampered response must
// not make every later request too large for the server to take.
const maxValidator = 128

// NewHTTPClient returns an HTTP client for refreshes: TLS sessions are resumed (an
// abbreviated handshake instead of a full one with the server's certificates), and
// connections are kept between requests. Give the same client to every refresh of a
// long-running agent (RefreshOptions.HTTPClient).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	return &http.Client{Timeout: HTTPTimeout, Transport: t}
}

// httpFetcher is go-tuf's fetcher over HTTP, made for links where every byte counts:
//
//   - timestamp.json, the one file fetched at every refresh, is asked for conditionally,
//     with the validators of the copy this node fetched and trusted last (If-None-Match,
//     If-Modified-Since). A 304 answer is given to go-tuf as that copy, read from the trust
//     directory, which go-tuf verifies again as it would a download: a 304 saves bytes,
//     never a check.
//   - An error response (the 404 that tells go-tuf no newer root exists, at every refresh)
//     is read to the end, so that its connection carries the next request rather than a
//     new one, with a new TLS handshake, being opened.
//   - Every request carries the refresh's context, and reads at most maxLength+1 bytes
//     whatever the headers say.
type httpFetcher struct {
	ctx      context.Context
	client   *http.Client
	trustDir string

	mu      sync.Mutex
	fetched *validators // of the timestamp.json fetched by this refresh (200)
}

var _ fetcher.Fetcher = (*httpFetcher)(nil)

// validators are the HTTP validators of one response, as kept in httpCacheName: with the
// SHA-256 of the body, to match it with the copy go-tuf persisted.
type validators struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	SHA256       string    `json:"sha256"`
	Fetched      time.Time `json:"fetched"` // when the copy was fetched in full
	body         []byte
}

// isTimestamp reports whether url names the timestamp metadata.
func isTimestamp(url string) bool {
	return strings.HasSuffix(url, "/"+metadata.TIMESTAMP+".json")
}

// DownloadFile fetches url (see httpFetcher). The timeout argument is unused, as go-tuf
// deprecated it; the client's timeout and the context bound the request.
func (f *httpFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "satchel")
	var cached []byte
	if isTimestamp(url) {
		if v, local := f.conditional(url, time.Now()); v != nil {
			cached = local
			if v.ETag != "" {
				req.Header.Set("If-None-Match", v.ETag)
			}
			if v.LastModified != "" {
				req.Header.Set("If-Modified-Since", v.LastModified)
			}
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		return cached, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		if cached != nil {
			f.forget() // the next request goes without them
		}
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	tooLong := func(n int64) error {
		return &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("download failed for %s, length %d is larger than expected %d", url, n, maxLength)}
	}
	if resp.ContentLength > maxLength {
		return nil, tooLong(resp.ContentLength)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(data)) > maxLength {
		return nil, tooLong(int64(len(data)))
	}
	if isTimestamp(url) {
		f.remember(url, resp, data)
	}
	return data, nil
}

// conditional returns the validators kept for url and the local copy they describe, or
// nil when there are none or the copy is not the one they were kept for.
func (f *httpFetcher) conditional(url string, now time.Time) (*validators, []byte) {
	data, err := os.ReadFile(filepath.Join(f.trustDir, httpCacheName))
	if err != nil {
		return nil, nil
	}
	var kept validators
	if json.Unmarshal(data, &kept) != nil || kept.URL != url || !validValidator(kept.ETag) || !validValidator(kept.LastModified) {
		return nil, nil
	}
	if age := now.Sub(kept.Fetched); age < 0 || age > validatorMaxAge {
		return nil, nil
	}
	local, err := os.ReadFile(filepath.Join(f.trustDir, TrustMetadataDir, metadata.TIMESTAMP+".json"))
	if err != nil || sha256Hex(local) != kept.SHA256 {
		return nil, nil
	}
	return &kept, local
}

// remember notes the validators of a timestamp.json just fetched. A file modified less
// than two seconds before the response's Date may change again within the same second,
// which a Last-Modified cannot tell (RFC 9110, weak validators), nor an ETag made of the
// modification time and size, as nginx's is: then neither is kept.
func (f *httpFetcher) remember(url string, resp *http.Response, body []byte) {
	v := &validators{URL: url, ETag: resp.Header.Get("ETag"), body: body}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		mod, err1 := http.ParseTime(lm)
		date, err2 := http.ParseTime(resp.Header.Get("Date"))
		if err1 != nil || err2 != nil || date.Sub(mod) < 2*time.Second {
			v.ETag = ""
		} else {
			v.LastModified = lm
		}
	}
	if strings.HasPrefix(v.ETag, "W/") || !validValidator(v.ETag) {
		v.ETag = "" // weak (not for a byte-exact copy), or not one a server would make
	}
	if !validValidator(v.LastModified) {
		v.LastModified = ""
	}
	v.Fetched = time.Now().UTC()
	f.mu.Lock()
	f.fetched = v
	f.mu.Unlock()
}

// persist keeps the validators of the timestamp fetched by this refresh, once go-tuf has
// trusted it: only if the timestamp it persisted is that very copy. Otherwise the old
// validators are dropped, so a later 304 cannot stand for a copy the node does not have.
func (f *httpFetcher) persist() error {
	f.mu.Lock()
	v := f.fetched
	f.mu.Unlock()
	if v == nil {
		return nil // a 304, or no timestamp fetched: what is kept still holds
	}
	p := filepath.Join(f.trustDir, httpCacheName)
	local, err := os.ReadFile(filepath.Join(f.trustDir, TrustMetadataDir, metadata.TIMESTAMP+".json"))
	if err != nil || !bytes.Equal(local, v.body) || v.ETag == "" && v.LastModified == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	v.SHA256 = sha256Hex(local)
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(p, 0o600, data)
}

// forget drops the kept validators: the next request for the timestamp is unconditional.
func (f *httpFetcher) forget() {
	f.mu.Lock()
	f.fetched = nil
	f.mu.Unlock()
	_ = os.Remove(filepath.Join(f.trustDir, httpCacheName))
}

// validValidator reports whether an ETag or Last-Modified value is one to send back: short,
// printable ASCII.
func validValidator(v string) bool {
	if len(v) > maxValidator {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
