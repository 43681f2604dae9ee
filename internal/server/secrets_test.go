package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/satchelcm/satchel/internal/release"
)

// A node reads its own secrets and the release's index files; another node's ciphertext
// is not found for it, whatever path it tries.
func TestNodeGetsOnlyItsOwnSecrets(t *testing.T) {
	s := startServer(t)
	id1, n1 := s.enrolled(t, "school-1")
	_, n3 := s.enrolled(t, "school-3")

	dir := t.TempDir()
	config, secrets := filepath.Join(dir, "config"), filepath.Join(dir, "secrets")
	for p, content := range map[string]string{
		filepath.Join(config, "main.hcl"): `node "school-1" {
  file "activation" {
    path    = "/etc/activation"
    content = secret("activation.sig")
  }
}
`,
		filepath.Join(secrets, "activation.sig"): "KEY-7f3a",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := release.Publish(context.Background(), s.RepoDir(), s.KeysDir(), config, release.Options{
		Secrets: &release.SecretsOptions{Dir: secrets, Recipients: map[string]string{"school-1": id1.Recipient()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := pub.Manifest.Version
	own := release.SecretPath(v, "school-1", "activation.sig")
	for path, want := range map[string]int{
		release.SecretIndexPath(v, 0): http.StatusOK,
		own:                           http.StatusNotFound, // school-1's, asked by school-3
		"secrets/1/school-1/":         http.StatusNotFound,
		"secrets/1/school-3/../school-1/" + filepath.Base(own): http.StatusNotFound,
		"secrets/1/%2e%2e/1/school-1/" + filepath.Base(own):    http.StatusNotFound,
		"secrets/1": http.StatusNotFound,
	} {
		resp, err := n3.HTTPClient().Get(n3.RepoURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("school-3 GET %s: %d, want %d (%s)", path, resp.StatusCode, want, body)
		}
	}
	// school-1 gets it.
	resp, err := n1.HTTPClient().Get(n1.RepoURL() + own)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("school-1 GET its own secret: %d", resp.StatusCode)
	}
}
