package release

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A repository whose (validly signed) targets name paths with "..", absolute paths or
// look-alikes of release names: a node takes only releases/N.json as releases, never
// requests or writes anything else, and still gets the real newest release.
func TestRefreshIgnoresHostileTargetPaths(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "81"), Options{})
	must(t, err)
	hostile := []string{
		"releases/../../../../etc/passwd",
		"../../outside.json",
		"/etc/passwd",
		"releases/2.json/../../x",
		"releases/02.json",
		"releases/3.json.bak",
		"releases/..json",
	}
	// Sign them in, as a compromised targets key (or a careless tool) would.
	tm, err := load(repo, nil, false)
	must(t, err)
	signers := map[string]signature.Signer{}
	for _, role := range onlineRoles {
		s, err := loadKey(keys, role, &tm.Root.Signed)
		must(t, err)
		signers[role] = s
	}
	st := &state{root: tm.Root, targets: tm.Targets[metadata.TARGETS], snapshot: tm.Snapshot, timestamp: tm.Timestamp}
	for _, p := range hostile {
		tf, err := metadata.TargetFile().FromBytes(p, []byte("root:x:0:0::/root:/bin/sh\n"), "sha256")
		must(t, err)
		st.targets.Signed.Targets[p] = tf
	}
	st.targets.Signed.Version++
	st.snapshot.Signed.Version++
	st.timestamp.Signed.Version++
	must(t, st.commit(repo, signers, st.targets.Signed.Expires.AddDate(-1, 0, 0)))

	var mu sync.Mutex
	var requested []string
	files := http.FileServer(http.Dir(repo))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requested = append(requested, r.URL.Path)
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	for name, remote := range map[string]string{"dir": repo, "http": srv.URL} {
		trust := newTrust(t, repo)
		m, err := Refresh(context.Background(), remote, trust, RefreshOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Version != 1 {
			t.Errorf("%s: newest release %d, want 1", name, m.Version)
		}
		// Nothing but the manifest of release 1 was cached as a target.
		var cached []string
		must(t, filepath.WalkDir(filepath.Dir(trust), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+TrustTargetsDir+string(filepath.Separator)) {
				cached = append(cached, p)
			}
			return err
		}))
		if len(cached) != 1 || !strings.HasSuffix(cached[0], "1.json") {
			t.Errorf("%s: targets cached: %q, want only release 1's manifest", name, cached)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range requested {
		if strings.Contains(p, "..") || strings.Contains(p, "passwd") || strings.Contains(p, "outside") || strings.Contains(p, ".bak") {
			t.Errorf("the node requested %s", p)
		}
	}
}
