package release

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The four top-level TUF roles, each with its own key file KEYS/ROLE.key.
var roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// onlineRoles are the roles whose keys Publish needs; the root key is needed only by Init
// and RotateKey, so it can be kept offline.
var onlineRoles = []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// PassphraseEnv names the environment variable holding the passphrase of the keys: keys
// are made encrypted with it when it is set (Init, RotateKey), and an encrypted key is
// opened with it. The command sets it from a terminal prompt when it is not set.
const PassphraseEnv = "SATCHEL_KEY_PASSPHRASE"

// An encrypted key file is the PEM file encrypted with age to a passphrase (scrypt),
// ASCII-armored; a binary age file is read as well.
var (
	ageArmorHeader  = []byte(armor.Header)
	ageBinaryHeader = []byte("age-encryption.org/")
)

// maxKeyFile bounds what is read of a decrypted key file.
const maxKeyFile = 64 << 10

// keyWorkFactor is the scrypt work factor (log2 N) of encrypted keys: age's default, about
// a second and 256 MiB to try one passphrase.
const keyWorkFactor = 18

// KeyFile returns the path of role's private key in keysDir.
func KeyFile(keysDir, role string) string { return filepath.Join(keysDir, role+".key") }

// generateKeys creates an ed25519 key for every role and writes it to keysDir, 0600, never
// over an existing file. On error, the files it wrote are removed.
func generateKeys(keysDir, pass string) (map[string]ed25519.PrivateKey, error) {
	keys := map[string]ed25519.PrivateKey{}
	var written []string
	for _, role := range roles {
		p := KeyFile(keysDir, role)
		priv, err := writeNewKey(p, pass)
		if err != nil {
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

// writeNewKey generates an ed25519 key and writes it to p as a PEM PKCS#8 file, mode 0600,
// flushed to disk, failing if p exists. The file is encrypted with the passphrase pass
// unless it is empty.
func writeNewKey(p, pass string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if pass != "" {
		if data, err = encryptKey(data, pass, keyWorkFactor); err != nil {
			return nil, err
		}
	}
	if err := writeExclusive(p, data, 0o600); err != nil {
		return nil, err
	}
	return priv, nil
}

// encryptKey encrypts data with age to the passphrase pass (scrypt, work factor logN),
// ASCII-armored.
func encryptKey(data []byte, pass string, logN int) ([]byte, error) {
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(logN)
	var b bytes.Buffer
	aw := armor.NewWriter(&b)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decryptKey opens the encrypted key file p of role, holding data, with the passphrase
// pass (from PassphraseEnv).
func decryptKey(p, role string, data []byte, pass string) ([]byte, error) {
	if pass == "" {
		return nil, fmt.Errorf("the %s key %s is encrypted with a passphrase: give it in %s (satchel asks for it when run from a terminal)", role, p, PassphraseEnv)
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, ageArmorHeader) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, id)
	if errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, fmt.Errorf("the %s key %s is encrypted with another passphrase than the one given (%s): wrong passphrase", role, p, PassphraseEnv)
	}
	if err != nil {
		return nil, fmt.Errorf("the %s key %s is not a readable encrypted key: %w", role, p, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("the %s key %s is not a readable encrypted key: %w", role, p, err)
	}
	return out, nil
}

// encryptedKey reports whether data is an encrypted key file.
func encryptedKey(data []byte) bool {
	return bytes.HasPrefix(data, ageArmorHeader) || bytes.HasPrefix(data, ageBinaryHeader)
}

// KeysEncrypted reports whether any key file in the directories (ROLE.key, or the new key
// of an interrupted rotation, ROLE.key.new) is encrypted with a passphrase, so that the
// command knows to ask for it. Files that cannot be read count as not encrypted: reading
// the key reports the problem.
func KeysEncrypted(dirs ...string) bool {
	for _, dir := range dirs {
		for _, role := range roles {
			for _, p := range []string{KeyFile(dir, role), PendingKeyFile(dir, role)} {
				f, err := os.Open(p)
				if err != nil {
					continue
				}
				head := make([]byte, len(ageArmorHeader))
				n, _ := io.ReadFull(f, head)
				_ = f.Close()
				if encryptedKey(head[:n]) {
					return true
				}
			}
		}
	}
	return false
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
	priv, err := readKey(p, role, os.Getenv(PassphraseEnv))
	if errors.Is(err, fs.ErrNotExist) {
		if role == metadata.ROOT {
			return nil, fmt.Errorf("the root key %s is missing: changing keys needs the root key (if it is kept offline, pass its directory with --root-keys)", p)
		}
		return nil, fmt.Errorf("the %s key %s is missing: publishing, and re-signing after a key rotation, need the targets, snapshot and timestamp keys that 'satchel repo init' made (pass their directory with --keys)", role, p)
	}
	if err != nil {
		return nil, err
	}
	id, err := keyID(priv.Public())
	if err != nil {
		return nil, err
	}
	if r := root.Roles[role]; r == nil || !slices.Contains(r.KeyIDs, id) {
		return nil, fmt.Errorf("the %s key %s is not a %s key of this repository (key ID %s is not in its root metadata: a key of another repository, or one replaced by 'satchel repo rotate-key')", role, p, role, id)
	}
	return signature.LoadSigner(priv, crypto.Hash(0))
}

// readKey reads the ed25519 key of role from the file p: a regular file no one but its
// owner can read (0600 or narrower) holding a PEM PKCS#8 key, in clear or encrypted with
// the passphrase pass. A missing file is an error wrapping fs.ErrNotExist.
func readKey(p, role, pass string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the %s key %s is missing: %w", role, p, err)
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
	if encryptedKey(data) {
		if data, err = decryptKey(p, role, data, pass); err != nil {
			return nil, err
		}
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
	return priv, nil
}

func keyID(pub crypto.PublicKey) (string, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}
