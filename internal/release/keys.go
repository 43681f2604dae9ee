package release

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The four top-level TUF roles, each with its own key file KEYS/ROLE.key.
var roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// onlineRoles are the roles whose keys Publish needs; the root key is needed only by Init
// (and, in a later slice, by key rotation), so it can be kept offline.
var onlineRoles = []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// KeyFile returns the path of role's private key in keysDir.
func KeyFile(keysDir, role string) string { return filepath.Join(keysDir, role+".key") }

// generateKeys creates an ed25519 key for every role and writes it to keysDir, 0600, never
// over an existing file. On error, the files it wrote are removed.
func generateKeys(keysDir string) (map[string]ed25519.PrivateKey, error) {
	keys := map[string]ed25519.PrivateKey{}
	var written []string
	for _, role := range roles {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		p := KeyFile(keysDir, role)
		if err := writeExclusive(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			for _, w := range written {
				_ = os.Remove(w)
			}
			return nil, fmt.Errorf("write %s key: %w", role, err)
		}
		written = append(written, p)
		keys[role] = priv
	}
	return keys, nil
}

// writeExclusive creates p with data, failing if p exists.
func writeExclusive(p string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(p)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(p)
		return err
	}
	return f.Close()
}

// loadKey reads role's key from keysDir and checks it: a regular file no one but its owner
// can read (0600 or narrower), holding an ed25519 key that root lists for role.
func loadKey(keysDir, role string, root *metadata.RootType) (signature.Signer, error) {
	p := KeyFile(keysDir, role)
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the %s key %s is missing: publishing needs the targets, snapshot and timestamp keys that 'satchel repo init' made (pass their directory with --keys)", role, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", role, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("the %s key %s is not a regular file", role, p)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("the %s key %s has permissions %04o, wider than 0600: others may have read it; if they cannot have, run chmod 600 %s", role, p, perm, p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", role, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("the %s key %s is not a PEM \"PRIVATE KEY\" file", role, p)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the %s key %s: %w", role, p, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the %s key %s is not an ed25519 key", role, p)
	}
	id, err := keyID(priv.Public())
	if err != nil {
		return nil, err
	}
	if r := root.Roles[role]; r == nil || !slices.Contains(r.KeyIDs, id) {
		return nil, fmt.Errorf("the %s key %s is not a %s key of this repository (key ID %s is not in its root metadata)", role, p, role, id)
	}
	return signature.LoadSigner(priv, crypto.Hash(0))
}

func keyID(pub crypto.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}
