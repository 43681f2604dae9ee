// A release's secrets for this node (secret() in the config): fetched from the
// repository the release came from, checked against the release's signed index, kept in
// the state directory, and decrypted with the node's age identity when the config is
// compiled.

package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/atomicfile"
	"github.com/satchelcm/satchel/internal/release"
)

// secretsDirName keeps the verified ciphertexts of the releases' secrets: secrets/N/HASH.age.
const secretsDirName = "secrets"

// releaseSecrets is the lang.SecretSource of one release for this node.
type releaseSecrets struct {
	ctx    context.Context
	a      *Agent
	rel    *Release
	remote string // where the release came from; "": the local copies only (offline)
	index  release.SecretIndex
}

func (a *Agent) secretsOf(ctx context.Context, rel *Release, remote string) *releaseSecrets {
	return &releaseSecrets{ctx: ctx, a: a, rel: rel, remote: remote}
}

// Secret returns the node's secret name in the release, decrypted.
func (s *releaseSecrets) Secret(node, name string) (string, error) {
	a := s.a
	if a.identity == nil {
		return "", errors.New("this node has no key to decrypt secrets with: enroll it (satchel enroll)")
	}
	local := filepath.Join(a.state, secretsDirName, strconv.FormatUint(s.rel.Version, 10), release.SecretNameHash(name)+".age")
	ciphertext, err := os.ReadFile(local)
	if errors.Is(err, fs.ErrNotExist) {
		if ciphertext, err = s.fetch(node, name); err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			return "", err
		}
		if err := atomicfile.WriteBytes(local, 0o600, ciphertext); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	r, err := age.Decrypt(bytes.NewReader(ciphertext), a.identity.AgeIdentity())
	if err != nil {
		return "", fmt.Errorf("decrypt: %w (was it encrypted for another key?)", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, release.MaxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("decrypt: %w", err)
	}
	return string(plain), nil
}

// fetch brings the ciphertext from the release's repository and checks it against the
// signed index.
func (s *releaseSecrets) fetch(node, name string) ([]byte, error) {
	if s.remote == "" {
		return nil, errors.New("not fetched before, and no repository answered")
	}
	if len(s.rel.Secrets) == 0 {
		return nil, fmt.Errorf("release %d carries no secrets", s.rel.Version)
	}
	if s.index == nil {
		b := release.SecretBucket(node, len(s.rel.Secrets))
		data, err := s.a.fetchFile(s.ctx, s.remote, release.SecretIndexPath(s.rel.Version, b), release.MaxSecretIndexSize)
		if err != nil {
			return nil, err
		}
		if s.index, err = release.VerifySecretIndex(s.rel.Version, s.rel.Secrets, node, data); err != nil {
			return nil, err
		}
	}
	want, ok := s.index.Lookup(node, name)
	if !ok {
		return nil, fmt.Errorf("release %d carries none for node %s (was the node enrolled when it was published?)", s.rel.Version, node)
	}
	data, err := s.a.fetchFile(s.ctx, s.remote, release.SecretPath(s.rel.Version, node, name), release.MaxSecretSize+4096)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("the ciphertext has SHA-256 %s, not the %s release %d signed for: refused", got, want, s.rel.Version)
	}
	return data, nil
}

// fetchFile reads a file of a repository (a URL or a directory) by its slash-separated
// path, up to limit bytes.
func (a *Agent) fetchFile(ctx context.Context, remote, rel string, limit int64) ([]byte, error) {
	if !isURL(remote) {
		root, err := os.OpenRoot(remote)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		f, err := root.Open(filepath.FromSlash(rel))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, limit, rel)
	}
	u := strings.TrimSuffix(remote, "/") + "/" + rel
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.httpFor(remote).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return readLimited(resp.Body, limit, u)
}

func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", what, limit)
	}
	return data, nil
}

// pruneSecrets removes the secrets of releases other than keep.
func (a *Agent) pruneSecrets(keep ...uint64) {
	dir := filepath.Join(a.state, secretsDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		v, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || slices.Contains(keep, v) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			a.logf("warning: remove old secrets: %v", err)
		}
	}
}
