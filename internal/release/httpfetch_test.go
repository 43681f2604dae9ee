package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requestLog serves dir and records each request's path, conditional headers and status.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *requestLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.lines, "\n")
	l.lines = nil
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) { r.code = code; r.ResponseWriter.WriteHeader(code) }

// serveLogged serves dir; with etags, every file gets a strong ETag (its SHA-256), as
// nginx and CDNs give.
func serveLogged(t *testing.T, dir string, etags bool) (string, *requestLog) {
	t.Helper()
	log := &requestLog{}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		if etags {
			if data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.URL.Path))); err == nil {
				sum := sha256.Sum256(data)
				w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
			}
		}
		files.ServeHTTP(rec, r)
		cond := ""
		if r.Header.Get("If-None-Match") != "" {
			cond += " if-none-match"
		}
		if r.Header.Get("If-Modified-Since") != "" {
			cond += " if-modified-since"
		}
		log.add(r.URL.Path + " " + http.StatusText(rec.code) + cond)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

// makeOld makes the repository's timestamp.json look an hour old, as it is on a mirror between
// releases (a Last-Modified within a second or two of the response is not relied on).
func makeOld(t *testing.T, repo string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(filepath.Join(repo, MetadataDir, "timestamp.json"), old, old))
}

// When nothing is new, the timestamp comes back as 304 Not Modified (by Last-Modified or
// by ETag) and the refresh returns the same release from the node's own verified copy; a
// new release is fetched in full.
func TestRefreshConditionalTimestamp(t *testing.T) {
	t.Parallel()
	for _, etags := range []bool{false, true} {
		name := "last-modified"
		if etags {
			name = "etag"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			repo, keys := newRepo(t)
			cfg := writeConfig(t, "8080")
			_, err := Publish(ctx, repo, keys, cfg, Options{})
			must(t, err)
			makeOld(t, repo)
			url, log := serveLogged(t, repo, etags)
			trust := newTrust(t, repo)
			client := NewHTTPClient()
			opts := RefreshOptions{HTTPClient: client}
			m, err := Refresh(ctx, url, trust, opts)
			must(t, err)
			if got := log.take(); !strings.Contains(got, "/metadata/timestamp.json OK") || strings.Contains(got, "if-") {
				t.Errorf("first refresh: %s", got)
			}
			m2, err := Refresh(ctx, url, trust, opts)
			must(t, err)
			if m2.Version != m.Version {
				t.Fatalf("second refresh: release %d, want %d", m2.Version, m.Version)
			}
			want := "/metadata/timestamp.json Not Modified if-modified-since"
			if etags {
				want = "/metadata/timestamp.json Not Modified if-none-match if-modified-since"
			}
			got := log.take()
			if !strings.Contains(got, want) || strings.Count(got, "\n") != 1 {
				t.Errorf("second refresh requests:\n%s\nwant the root probe and %q only", got, want)
			}

			// A new release: the conditional request gets the new timestamp in full.
			must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("2"), 0o644))
			_, err = Publish(ctx, repo, keys, cfg, Options{})
			must(t, err)
			if !etags {
				makeOld(t, repo) // newer than the last one, but not within a second of the answer
				later := time.Now().Add(-30 * time.Minute)
				must(t, os.Chtimes(filepath.Join(repo, MetadataDir, "timestamp.json"), later, later))
			}
			m3, err := Refresh(ctx, url, trust, opts)
			must(t, err)
			if m3.Version != 2 {
				t.Fatalf("after a new release: release %d, want 2", m3.Version)
			}
			if got := log.take(); !strings.Contains(got, "/metadata/timestamp.json OK if-") {
				t.Errorf("third refresh requests:\n%s", got)
			}

			// The node's copy lost: the validators are not used for it.
			must(t, os.Remove(filepath.Join(trust, TrustMetadataDir, "timestamp.json")))
			_, err = Refresh(ctx, url, trust, opts)
			must(t, err)
			if got := log.take(); !strings.Contains(got, "/metadata/timestamp.json OK") || strings.Contains(got, "timestamp.json OK if-") {
				t.Errorf("refresh without the local timestamp:\n%s", got)
			}
		})
	}
}

// A timestamp.json modified within a second or two of the answer is not relied on by its
// Last-Modified: a publish in the same second would go unseen.
func TestRefreshFreshLastModifiedNotKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, keys := newRepo(t)
	_, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	// Modified "now" however slow the test runs: a time ahead of the server's Date.
	soon := time.Now().Add(time.Hour)
	must(t, os.Chtimes(filepath.Join(repo, MetadataDir, "timestamp.json"), soon, soon))
	url, log := serveLogged(t, repo, false)
	trust := newTrust(t, repo)
	for range 2 {
		_, err := Refresh(ctx, url, trust, RefreshOptions{})
		must(t, err)
	}
	if got := log.take(); strings.Contains(got, "if-modified-since") {
		t.Errorf("requests:\n%s\nwant no conditional request", got)
	}
	// Nor by an ETag that comes with it (nginx's are made of the time and size).
	url, log = serveLogged(t, repo, true)
	for range 2 {
		_, err := Refresh(ctx, url, trust, RefreshOptions{})
		must(t, err)
	}
	if got := log.take(); strings.Contains(got, "if-") {
		t.Errorf("requests:\n%s\nwant no conditional request", got)
	}
}

// A timestamp replaced by an older-dated one (a publisher's clock behind, a mirror copied
// with its times) goes unseen by If-Modified-Since; the validators are used for
// validatorMaxAge only, after which the timestamp is fetched in full and the release seen.
func TestRefreshValidatorsExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, keys := newRepo(t)
	cfg := writeConfig(t, "8080")
	_, err := Publish(ctx, repo, keys, cfg, Options{})
	must(t, err)
	makeOld(t, repo)
	url, log := serveLogged(t, repo, false)
	trust := newTrust(t, repo)
	_, err = Refresh(ctx, url, trust, RefreshOptions{})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("2"), 0o644))
	_, err = Publish(ctx, repo, keys, cfg, Options{})
	must(t, err)
	older := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(filepath.Join(repo, MetadataDir, "timestamp.json"), older, older))
	log.take()
	m, err := Refresh(ctx, url, trust, RefreshOptions{})
	must(t, err)
	if m.Version != 1 || !strings.Contains(log.take(), "Not Modified") {
		t.Fatalf("an older-dated timestamp within the validators' age: release %d; want 1, by a 304", m.Version)
	}
	// validatorMaxAge later.
	p := filepath.Join(trust, httpCacheName)
	data, err := os.ReadFile(p)
	must(t, err)
	var v validators
	must(t, json.Unmarshal(data, &v))
	v.Fetched = v.Fetched.Add(-validatorMaxAge - time.Minute)
	data, err = json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(p, data, 0o600))
	m, err = Refresh(ctx, url, trust, RefreshOptions{})
	must(t, err)
	if got := log.take(); m.Version != 2 || strings.Contains(got, "if-") {
		t.Fatalf("after validatorMaxAge: release %d, requests\n%s\nwant release 2 by an unconditional request", m.Version, got)
	}
}

// A tampered response's oversized ETag is not kept (every later request would be too
// large for the server); a failed refresh drops whatever validators were kept.
func TestRefreshValidatorsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, keys := newRepo(t)
	_, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	makeOld(t, repo)
	files := http.FileServer(http.Dir(repo))
	var broken atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() && strings.HasSuffix(r.URL.Path, "timestamp.json") {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		if len(r.Header.Get("If-None-Match")) > maxValidator {
			http.Error(w, "header too large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		w.Header().Set("ETag", `"`+strings.Repeat("x", 64<<10)+`"`)
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	trust := newTrust(t, repo)
	for i := range 3 {
		if _, err := Refresh(ctx, srv.URL, trust, RefreshOptions{}); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(trust, httpCacheName))
	must(t, err)
	if len(data) > 1024 || strings.Contains(string(data), "xxxx") {
		t.Errorf("kept validators: %s", data)
	}
	broken.Store(true)
	if _, err := Refresh(ctx, srv.URL, trust, RefreshOptions{}); err == nil {
		t.Fatal("refresh with the timestamp unavailable succeeded")
	}
	if _, err := os.Stat(filepath.Join(trust, httpCacheName)); !os.IsNotExist(err) {
		t.Errorf("validators kept after a failed refresh: %v", err)
	}
}
