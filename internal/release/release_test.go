package release

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const goodHCL = `inventory {
  source = "inventory.csv"
}
variable "port" {
  type = number
}
node "web*" {
  file "conf" {
    path    = "/etc/web.conf"
    content = "port = ${var.port}\n"
  }
}
`

// writeConfig writes a config with an inventory of two nodes; port2 is web2's port.
func writeConfig(t *testing.T, port2 string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(goodHCL), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "inventory.csv"), []byte("hostname,port\nweb1,80\nweb2,"+port2+"\n"), 0o644))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newRepo makes a repository and its keys in a fresh directory.
func newRepo(t *testing.T) (repo, keys string) {
	t.Helper()
	base := t.TempDir()
	repo, keys = filepath.Join(base, "repo"), filepath.Join(base, "keys")
	must(t, Init(repo, keys))
	return repo, keys
}

func verifyClean(t *testing.T, repo string) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), repo, nil)
	must(t, err)
	if len(rep.Problems) > 0 {
		t.Fatalf("Verify found problems: %q", rep.Problems)
	}
	return rep
}

func TestInitAndTwoReleases(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	if rep := verifyClean(t, repo); len(rep.Releases) != 0 {
		t.Fatalf("a new repository has %d releases", len(rep.Releases))
	}
	for _, role := range roles {
		info, err := os.Stat(KeyFile(keys, role))
		must(t, err)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s key: mode %v, want 0600", role, info.Mode().Perm())
		}
	}
	if info, err := os.Stat(keys); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("keys directory: %v %v, want 0700", info.Mode().Perm(), err)
	}
	ctx := context.Background()
	cfg := writeConfig(t, "8080")
	p1, err := Publish(ctx, repo, keys, cfg, Options{Notes: "first"})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
	p2, err := Publish(ctx, repo, keys, cfg, Options{Notes: "second",
		HealthChecks: []HealthCheck{{Name: "web", Command: []string{"true"}, Timeout: 5e9}}})
	must(t, err)
	if p1.Manifest.Version != 1 || p2.Manifest.Version != 2 || p1.Manifest.Config == p2.Manifest.Config {
		t.Fatalf("versions %d, %d; configs %s, %s", p1.Manifest.Version, p2.Manifest.Version, p1.Manifest.Config, p2.Manifest.Config)
	}
	if strings.Join(p2.Nodes, ",") != "web1,web2" {
		t.Errorf("checked nodes %q", p2.Nodes)
	}
	rep := verifyClean(t, repo)
	if len(rep.Releases) != 2 || rep.Releases[0].Version != 1 || rep.Releases[1].Version != 2 ||
		rep.Releases[1].Notes != "second" || len(rep.Releases[1].HealthChecks) != 1 {
		t.Fatalf("releases: %+v", rep.Releases)
	}
	for _, name := range []string{"1.root.json", "root.json", "3.targets.json", "3.snapshot.json", "timestamp.json"} {
		if _, err := os.Stat(filepath.Join(repo, MetadataDir, name)); err != nil {
			t.Error(err)
		}
	}
	// The repository holds no key.
	must(t, filepath.Walk(repo, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".key") {
			t.Errorf("key file in the repository: %s", p)
		}
		return err
	}))
}

func TestVerifyNamesModifiedManifest(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	cfg := writeConfig(t, "8080")
	_, err := Publish(context.Background(), repo, keys, cfg, Options{})
	must(t, err)
	p := filepath.Join(repo, TargetsDir, "releases", "1.json")
	data, err := os.ReadFile(p)
	must(t, err)
	must(t, os.WriteFile(p, bytes.Replace(data, []byte(`"notes": ""`), []byte(`"notes": "x"`), 1), 0o644))
	rep, err := Verify(context.Background(), repo, nil)
	must(t, err)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "targets/releases/1.json: does not match its signed length and hash") {
		t.Fatalf("problems: %q", rep.Problems)
	}
	if len(rep.Releases) != 0 {
		t.Errorf("a modified release is listed as valid")
	}
}

func TestVerifyRefusesUnknownKey(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	// Re-sign timestamp.json with a key the root does not list.
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
	rep, err := Verify(context.Background(), repo, nil)
	must(t, err)
	if len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0], "metadata/timestamp.json: ") {
		t.Fatalf("problems: %q", rep.Problems)
	}
	t.Log(rep.Problems[0])
	// Publishing over it is refused too.
	if _, err := Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{}); err == nil ||
		!strings.Contains(err.Error(), "metadata/timestamp.json") {
		t.Fatalf("Publish over a forged timestamp: %v", err)
	}
}

func TestPublishRefusesLooseKeys(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	before := snapshotDir(t, filepath.Join(repo, MetadataDir))
	must(t, os.Chmod(KeyFile(keys, metadata.SNAPSHOT), 0o644))
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{})
	if err == nil || !strings.Contains(err.Error(), KeyFile(keys, metadata.SNAPSHOT)+" has permissions 0644, wider than 0600") {
		t.Fatalf("Publish with a 0644 key: %v", err)
	}
	must(t, os.Chmod(KeyFile(keys, metadata.SNAPSHOT), 0o600))
	must(t, os.Remove(KeyFile(keys, metadata.TIMESTAMP)))
	_, err = Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{})
	if err == nil || !strings.Contains(err.Error(), "the timestamp key "+KeyFile(keys, metadata.TIMESTAMP)+" is missing") {
		t.Fatalf("Publish without the timestamp key: %v", err)
	}
	if after := snapshotDir(t, filepath.Join(repo, MetadataDir)); after != before {
		t.Fatal("metadata changed")
	}
}

func TestPublishRefusesAnotherRepositorysKey(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	_, otherKeys := newRepo(t)
	data, err := os.ReadFile(KeyFile(otherKeys, metadata.TARGETS))
	must(t, err)
	must(t, os.WriteFile(KeyFile(keys, metadata.TARGETS), data, 0o600))
	_, err = Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{})
	if err == nil || !strings.Contains(err.Error(), "is not a targets key of this repository") {
		t.Fatalf("Publish with a foreign key: %v", err)
	}
}

func TestInitRefusesTwice(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	before := snapshotDir(t, keys)
	err := Init(repo, keys)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second Init: %v", err)
	}
	// Into a new repository, with the same keys: the keys are never overwritten.
	err = Init(filepath.Join(t.TempDir(), "repo2"), keys)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "keys are never overwritten") {
		t.Fatalf("Init over existing keys: %v", err)
	}
	if snapshotDir(t, keys) != before {
		t.Fatal("keys changed")
	}
	// Keys inside the repository are refused.
	r3 := filepath.Join(t.TempDir(), "repo3")
	if err := Init(r3, filepath.Join(r3, "keys")); err == nil || !strings.Contains(err.Error(), "inside the repository") {
		t.Fatalf("Init with keys inside: %v", err)
	}
}

func TestPublishRefusesConfigFailingForOneNode(t *testing.T) {
	t.Parallel()
	repo, keys := newRepo(t)
	before := snapshotDir(t, repo)
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "eighty"), Options{})
	var ce *CheckError
	if !errors.As(err, &ce) || strings.Join(ce.Failed, ",") != "web2" || len(ce.Nodes) != 2 || len(ce.Diags) == 0 {
		t.Fatalf("Publish of a failing config: %v", err)
	}
	if !strings.Contains(err.Error(), "does not pass check for 1 of 2 nodes (web2): nothing published") {
		t.Errorf("message: %v", err)
	}
	if after := snapshotDir(t, repo); after != before {
		t.Fatalf("repository changed:\n%s\nthen\n%s", before, after)
	}
}

// snapshotDir renders every file below dir with its content, to compare before and after.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	must(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || filepath.Base(p) == lockName {
			return err
		}
		data, err := os.ReadFile(p)
		b.WriteString(p + "\n" + string(data) + "\n")
		return err
	}))
	return b.String()
}
