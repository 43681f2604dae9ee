package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/release"
)

const activationHCL = `  file "activation" {
    path    = "/etc/activation"
    content = secret("activation/school-1.sig")
  }
`

// withSecretRelease publishes release 1 with a secret for school-1, encrypted to a node
// identity made in the fleet's state directory, and returns the identity and the path of
// the ciphertext in the repository.
func withSecretRelease(t *testing.T, f *fleet) (*client.Identity, string) {
	t.Helper()
	id, err := client.NewIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	secrets := filepath.Join(f.base, "secrets")
	must(t, os.MkdirAll(filepath.Join(secrets, "activation"), 0o700))
	must(t, os.WriteFile(filepath.Join(secrets, "activation", "school-1.sig"), []byte("KEY-7f3a"), 0o600))
	f.writeConfig("1", "a\n")
	f.addResources("activation", activationHCL)
	m := f.publish(release.Options{Secrets: &release.SecretsOptions{Dir: secrets, Recipients: map[string]string{"school-1": id.Recipient()}}})
	if len(m.Secrets) != 1 {
		t.Fatalf("manifest lists %d secret index files, want 1", len(m.Secrets))
	}
	return id, filepath.Join(f.repo, filepath.FromSlash(release.SecretPath(1, "school-1", "activation/school-1.sig")))
}

// A node gets its secret from a repository directory, decrypts it with its own key, and
// re-applies it from its own copy when no repository answers. The secret is in no report
// or log.
func TestSecretAppliedAndReappliedOffline(t *testing.T) {
	f := newFleet(t)
	withSecretRelease(t, f)
	opts := f.options(f.repo)
	rep := f.cycle(opts)
	if rep.Outcome != Applied {
		t.Fatalf("release 1: %s %q", rep.Outcome, rep.Error)
	}
	if got := f.read("etc/activation"); got != "KEY-7f3a" {
		t.Errorf("/etc/activation = %q", got)
	}
	must(t, os.Remove(filepath.Join(f.root, "etc", "activation")))
	offline := f.options(filepath.Join(f.base, "nowhere"))
	if rep := f.cycle(offline); rep.Outcome != Reapplied {
		t.Fatalf("offline: %s %q", rep.Outcome, rep.Error)
	}
	if got := f.read("etc/activation"); got != "KEY-7f3a" {
		t.Errorf("/etc/activation after an offline cycle = %q", got)
	}
	if strings.Contains(f.log.String(), "KEY-7f3a") {
		t.Error("the log shows the secret")
	}
	a, err := Open(opts)
	must(t, err)
	defer a.Close()
	entries, err := a.spool.List()
	must(t, err)
	for _, e := range entries {
		data, err := a.spool.Read(e.Name)
		must(t, err)
		if bytes.Contains(data, []byte("KEY-7f3a")) {
			t.Errorf("report %s holds the secret", e.Name)
		}
	}
}

// Whoever can write to the repository (a mirror, a USB stick) and knows the node's
// recipient can encrypt a secret of their own to it, or put back an older release's: the
// node refuses any ciphertext the signed release does not list, and applies nothing.
func TestSecretForgedIsRefused(t *testing.T) {
	for name, forge := range map[string]func(t *testing.T, id *client.Identity, path string){
		"encrypted to the node by another": func(t *testing.T, id *client.Identity, path string) {
			r, err := age.ParseX25519Recipient(id.Recipient())
			must(t, err)
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, r)
			must(t, err)
			_, _ = w.Write([]byte("EVIL"))
			must(t, w.Close())
			must(t, os.WriteFile(path, buf.Bytes(), 0o644))
		},
		"truncated": func(t *testing.T, _ *client.Identity, path string) {
			data, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, data[:len(data)/2], 0o644))
		},
		"index replaced": func(t *testing.T, _ *client.Identity, path string) {
			index := filepath.Join(filepath.Dir(filepath.Dir(path)), "index-0.json")
			must(t, os.WriteFile(index, []byte(`{}`), 0o644))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFleet(t)
			id, path := withSecretRelease(t, f)
			forge(t, id, path)
			rep := f.cycle(f.options(f.repo))
			if rep.Outcome == Applied || !strings.Contains(rep.Error, "refused") && !strings.Contains(rep.Error, "decrypt") {
				t.Errorf("forged secret: outcome %s, error %q; want it refused", rep.Outcome, rep.Error)
			}
			if got := f.read("etc/activation"); got != "" {
				t.Errorf("/etc/activation = %q, want nothing written", got)
			}
			if got := f.read("etc/motd"); got != "" {
				t.Errorf("/etc/motd = %q: the release was applied", got)
			}
		})
	}
}
