package server

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// CredentialFile is the admin credential's file in the data directory.
const CredentialFile = "admin.json"

// Credential is what the operator's commands need to reach a server: its URL, the
// fingerprint of its CA (pinned, as agents do) and the admin token.
type Credential struct {
	Server        string `json:"server"`
	CAFingerprint string `json:"ca_fingerprint"`
	Token         string `json:"token"`
}

// LoadCredential reads a credential file.
func LoadCredential(path string) (Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Credential{}, fmt.Errorf("admin credential: %w", err)
	}
	var c Credential
	if err := json.Unmarshal(data, &c); err != nil {
		return Credential{}, fmt.Errorf("admin credential %s: %w", path, err)
	}
	if c.Server == "" || c.CAFingerprint == "" || c.Token == "" {
		return Credential{}, fmt.Errorf("admin credential %s: want server, ca_fingerprint and token", path)
	}
	return c, nil
}

// loadOrCreateCredential reads the credential file, or makes one with a new token.
func loadOrCreateCredential(path, caFingerprint string) (Credential, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c := Credential{CAFingerprint: caFingerprint, Token: "satchel-admin-" + randomID(32)}
		return c, writeCredential(path, c)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("admin credential: %w", err)
	}
	var c Credential
	if err := json.Unmarshal(data, &c); err != nil || c.Token == "" {
		return Credential{}, fmt.Errorf("admin credential %s: damaged (remove it to make a new admin token): %v", path, err)
	}
	c.CAFingerprint = caFingerprint
	return c, nil
}

func writeCredential(path string, c Credential) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, 0o600, append(data, '\n')); err != nil {
		return fmt.Errorf("admin credential: %w", err)
	}
	return nil
}

// randomID returns n random bytes in lower-case base32, without padding.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
