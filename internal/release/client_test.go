package release

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"
)

// newTrust initializes a node's trust directory with the repository's root.json.
func newTrust(t *testing.T, repo string) string {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(repo, MetadataDir, "root.json"))
	must(t, err)
	dir := filepath.Join(t.TempDir(), "trust")
	must(t, TrustInit(dir, root))
	return dir
}

// serve serves dir over HTTP on 127.0.0.1 with net/http's file server.
func serve(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// remotes returns the repository as a directory remote and as an HTTP one.
func remotes(t *testing.T, repo string) map[string]string {
	return map[string]string{"dir": repo, "http": serve(t, repo)}
}

func highestFile(t *testing.T, trust string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(trust, highestReleaseName))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	must(t, err)
	return string(data)
}

func TestRefreshTwoReleases(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"dir", "http"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			repo, keys := newRepo(t)
			remote := remotes(t, repo)[kind]
			trust := newTrust(t, repo)
			ctx := context.Background()
			if _, err := Refresh(ctx, remote, trust, RefreshOptions{}); err == nil || !strings.Contains(err.Error(), "no release yet") {
				t.Fatalf("Refresh of an empty repository: %v", err)
			}
			cfg := writeConfig(t, "8080")
			p1, err := Publish(ctx, repo, keys, cfg, Options{Notes: "first"})
			must(t, err)
			m, err := Refresh(ctx, remote, trust, RefreshOptions{})
			must(t, err)
			if m.Version != 1 || m.Config != p1.Manifest.Config || m.Notes != "first" {
				t.Fatalf("after release 1: %+v", m)
			}
			must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
			p2, err := Publish(ctx, repo, keys, cfg, Options{Notes: "second"})
			must(t, err)
			for range 2 { // the second time, nothing is new: the same release, from the cache
				m, err = Refresh(ctx, remote, trust, RefreshOptions{})
				must(t, err)
				if m.Version != 2 || m.Config != p2.Manifest.Config || m.Config == p1.Manifest.Config {
					t.Fatalf("after release 2: %+v", m)
				}
			}
			if h := highestFile(t, trust); h != "2\n" {
				t.Errorf("highest release file: %q", h)
			}
			if tt := trustedTimeFile(t, trust); tt != p2.Manifest.Created.Format(time.RFC3339)+"\n" {
				t.Errorf("trusted time file: %q", tt)
			}
			for p, want := range map[string]os.FileMode{
				trust: 0o700, filepath.Join(trust, TrustMetadataDir): 0o700,
				filepath.Join(trust, highestReleaseName): 0o600,
				filepath.Join(trust, trustedTimeName):    0o600,
			} {
				if info, err := os.Stat(p); err != nil || info.Mode().Perm() != want {
					t.Errorf("%s: %v, %v, want %v", p, info.Mode().Perm(), err, want)
				}
			}
		})
	}
}

func TestRefreshRefusesReplay(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	ctx := context.Background()
	cfg := writeConfig(t, "8080")
	_, err := Publish(ctx, repo, keys, cfg, Options{})
	must(t, err)
	old := filepath.Join(t.TempDir(), "old")
	must(t, os.CopyFS(old, os.DirFS(repo)))
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
	_, err = Publish(ctx, repo, keys, cfg, Options{})
	must(t, err)
	trust := newTrust(t, repo)
	m, err := Refresh(ctx, repo, trust, RefreshOptions{})
	must(t, err)
	if m.Version != 2 {
		t.Fatalf("version %d", m.Version)
	}

	// Layer 1: go-tuf refuses the older, validly signed, unexpired metadata.
	before := snapshotDir(t, trust)
	for name, remote := range map[string]string{"dir": old, "http": serve(t, old)} {
		m, err := Refresh(ctx, remote, trust, RefreshOptions{})
		if m != nil || !errors.Is(err, ErrRollback) || !errors.Is(err, &metadata.ErrBadVersionNumber{}) ||
			!strings.Contains(err.Error(), "new timestamp version 2 must be >= 3") {
			t.Fatalf("%s: Refresh of the old repository: %v, %v", name, m, err)
		}
		t.Logf("%s: %v", name, err)
		if after := snapshotDir(t, trust); after != before {
			t.Fatalf("%s: trust state changed", name)
		}
	}

	// Layer 2: with go-tuf's metadata cache lost (only root kept), go-tuf accepts the old
	// repository; the persisted highest release version still refuses it.
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		must(t, os.Remove(filepath.Join(trust, TrustMetadataDir, role+".json")))
	}
	m, err = Refresh(ctx, old, trust, RefreshOptions{})
	if m != nil || !errors.Is(err, ErrRollback) || errors.Is(err, &metadata.ErrBadVersionNumber{}) ||
		!strings.Contains(err.Error(), "its newest release is 1, but this node has already seen release 2") {
		t.Fatalf("Refresh of the old repository without cached metadata: %v, %v", m, err)
	}
	t.Log(err)
	if h := highestFile(t, trust); h != "2\n" {
		t.Fatalf("highest release file: %q", h)
	}
	// The current repository is still accepted.
	m, err = Refresh(ctx, repo, trust, RefreshOptions{})
	must(t, err)
	if m.Version != 2 {
		t.Fatalf("version %d", m.Version)
	}
}

func TestRefreshRefusesTamperedManifest(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"dir", "http"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			repo, keys := newRepo(t)
			remote := remotes(t, repo)[kind]
			trust := newTrust(t, repo)
			ctx := context.Background()
			cfg := writeConfig(t, "8080")
			_, err := Publish(ctx, repo, keys, cfg, Options{Notes: "first"})
			must(t, err)
			_, err = Refresh(ctx, remote, trust, RefreshOptions{})
			must(t, err)
			must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
			_, err = Publish(ctx, repo, keys, cfg, Options{Notes: "second"})
			must(t, err)
			p := filepath.Join(repo, TargetsDir, "releases", "2.json")
			data, err := os.ReadFile(p)
			must(t, err)
			i := strings.Index(string(data), "second")
			if i < 0 {
				t.Fatal("no notes in the manifest")
			}
			data[i] = 'S' // one byte changed, same length
			must(t, os.WriteFile(p, data, 0o644))
			m, err := Refresh(ctx, remote, trust, RefreshOptions{})
			if m != nil || err == nil || !errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) ||
				!strings.Contains(err.Error(), "targets/releases/2.json") {
				t.Fatalf("Refresh with a modified manifest: %v, %v", m, err)
			}
			t.Log(err)
			if h := highestFile(t, trust); h != "1\n" {
				t.Fatalf("highest release file: %q", h)
			}
			if _, err := os.Stat(filepath.Join(trust, TrustTargetsDir, "releases%2F2.json")); err == nil {
				t.Fatal("the modified manifest was cached")
			}
		})
	}
}

func TestRefreshRefusesUnknownKey(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	ctx := context.Background()
	_, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	trust := newTrust(t, repo)
	before := snapshotDir(t, trust)
	p := filepath.Join(repo, MetadataDir, "timestamp.json")
	ts, err := metadata.Timestamp().FromFile(p)
	must(t, err)
	_, priv, err := ed25519.GenerateKey(nil)
	must(t, err)
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	must(t, err)
	ts.Signed.Version++
	data, err := signEncode(ts, signer)
	must(t, err)
	must(t, os.WriteFile(p, data, 0o644))
	for name, remote := range remotes(t, repo) {
		m, err := Refresh(ctx, remote, trust, RefreshOptions{})
		if m != nil || !errors.Is(err, &metadata.ErrUnsignedMetadata{}) || !strings.Contains(err.Error(), "timestamp") {
			t.Fatalf("%s: Refresh with a timestamp signed by an unknown key: %v, %v", name, m, err)
		}
		t.Logf("%s: %v", name, err)
	}
	if after := snapshotDir(t, trust); after != before {
		t.Fatal("trust state changed")
	}
}

func TestRefreshRefusesEndlessHTTPResponse(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	ctx := context.Background()
	_, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	trust := newTrust(t, repo)
	files := http.FileServer(http.Dir(repo))
	var sent int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata/timestamp.json" {
			files.ServeHTTP(w, r)
			return
		}
		buf := make([]byte, 32<<10)
		for n := int64(0); n < 1<<30; n += int64(len(buf)) { // 1 GiB unless the client hangs up
			if _, err := w.Write(buf); err != nil {
				break
			}
			sent = n
		}
	}))
	t.Cleanup(srv.Close)
	m, err := Refresh(ctx, srv.URL, trust, RefreshOptions{})
	var lm *metadata.ErrDownloadLengthMismatch
	if m != nil || !errors.As(err, &lm) {
		t.Fatalf("Refresh with an endless timestamp.json: %v, %v", m, err)
	}
	t.Log(err)
	srv.Close() // waits for the handler
	if sent >= 1<<30-64<<10 {
		t.Fatalf("the whole endless response was read (%d bytes)", sent)
	}
}

func TestDirFetcherRefuses(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	must(t, os.MkdirAll(filepath.Join(dir, "metadata"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "metadata", "ok.json"), []byte("{}"), 0o644))
	must(t, os.Symlink(filepath.Join(base, "secret"), filepath.Join(dir, "metadata", "link.json")))
	must(t, unix.Mkfifo(filepath.Join(dir, "metadata", "fifo.json"), 0o644))
	big, err := os.Create(filepath.Join(dir, "metadata", "big.json"))
	must(t, err)
	must(t, big.Truncate(10<<20))
	must(t, big.Close())
	f, err := NewDirFetcher(dir)
	must(t, err)
	defer f.Close()
	const limit = 1 << 20

	data, err := f.DownloadFile(dir+"/metadata/ok.json", limit, 0)
	if err != nil || string(data) != "{}" {
		t.Fatalf("a good file: %q, %v", data, err)
	}
	if _, err := f.DownloadFile(dir+"/metadata/ok.json", 1, 0); err == nil {
		t.Fatal("a 2-byte file with a limit of 1 was read")
	}
	var notFound *metadata.ErrDownloadHTTP
	if _, err := f.DownloadFile(dir+"/metadata/2.root.json", limit, 0); !errors.As(err, &notFound) || notFound.StatusCode != http.StatusNotFound {
		t.Fatalf("a missing file: %v", err)
	}
	for _, c := range []struct{ url, want string }{
		{dir + "/metadata/../../secret", `".." element`},
		{dir + "/../secret", `".." element`},
		{dir + "/metadata/../ok.json", `".." element`},
		{filepath.Join(base, "secret"), "outside the repository"},
		{"/etc/passwd", "outside the repository"},
		{dir + "//metadata/ok.json", "empty"},
		{dir + "/metadata/link.json", "path escapes"},
		{dir + "/metadata/fifo.json", "not a regular file"},
		{dir + "/metadata", "not a regular file"},
		{dir + "/metadata/big.json", "more than the limit of 1048576"},
	} {
		data, err := f.DownloadFile(c.url, limit, 0)
		if err == nil || data != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q, %v; want an error with %q", c.url, data, err, c.want)
		}
	}
	var lm *metadata.ErrDownloadLengthMismatch
	if _, err := f.DownloadFile(dir+"/metadata/big.json", limit, 0); !errors.As(err, &lm) {
		t.Errorf("a 10 MiB file: %v, want go-tuf's length mismatch", err)
	}
}

func TestTrustInit(t *testing.T) {
	t.Parallel()
	repo, _ := newRepo(t)
	root, err := os.ReadFile(filepath.Join(repo, MetadataDir, "root.json"))
	must(t, err)
	trust := filepath.Join(t.TempDir(), "trust")
	if err := TrustInit(trust, []byte(`{"signed":{}}`)); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("TrustInit with bad root: %v", err)
	}
	// A root whose signature does not verify is refused.
	bad := []byte(strings.Replace(string(root), `"version": 1`, `"version": 2`, 1))
	if err := TrustInit(trust, bad); err == nil {
		t.Fatal("TrustInit accepted a modified root")
	}
	must(t, TrustInit(trust, root))
	info, err := os.Stat(filepath.Join(trust, TrustMetadataDir, "root.json"))
	must(t, err)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("root.json mode %v", info.Mode().Perm())
	}
	if err := TrustInit(trust, root); !errors.Is(err, ErrExists) {
		t.Fatalf("second TrustInit: %v", err)
	}
	if _, err := Refresh(context.Background(), repo, filepath.Join(t.TempDir(), "none"), RefreshOptions{}); err == nil ||
		!strings.Contains(err.Error(), "not an initialized trust directory") {
		t.Fatalf("Refresh without trust: %v", err)
	}
	if _, err := Refresh(context.Background(), "ftp://example.com/repo", trust, RefreshOptions{}); err == nil ||
		!strings.Contains(err.Error(), "unsupported URL scheme") {
		t.Fatalf("Refresh of ftp: %v", err)
	}
}

func TestRefreshCanceledAndLocked(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	trust := newTrust(t, repo)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, remote := range remotes(t, repo) {
		if m, err := Refresh(ctx, remote, trust, RefreshOptions{}); m != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Refresh with a canceled context: %v, %v", name, m, err)
		}
	}
	unlock, err := lockTrust(trust)
	must(t, err)
	if _, err := Refresh(context.Background(), repo, trust, RefreshOptions{}); err == nil || !strings.Contains(err.Error(), "another refresh") {
		t.Errorf("Refresh while locked: %v", err)
	}
	unlock()
	m, err := Refresh(context.Background(), repo, trust, RefreshOptions{})
	must(t, err)
	if m.Version != 1 {
		t.Fatalf("version %d", m.Version)
	}
}
