package release

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age/armor"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// encryptFile encrypts the key file p in place with pass, at a low work factor: the
// files made by satchel take a second each to open, many under the race detector.
func encryptFile(t *testing.T, p, pass string) {
	t.Helper()
	data, err := encryptKey(readFile(t, p), pass, 10)
	must(t, err)
	must(t, os.WriteFile(p, data, 0o600))
}

func TestEncryptedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain, enc := filepath.Join(dir, "plain.key"), filepath.Join(dir, "enc.key")
	want, err := writeNewKey(plain, "")
	must(t, err)
	if KeysEncrypted(dir) {
		t.Fatal("KeysEncrypted is true with no encrypted key")
	}
	must(t, os.WriteFile(enc, readFile(t, plain), 0o600))
	encryptFile(t, enc, "correct horse")
	if !bytes.HasPrefix(readFile(t, enc), []byte(armor.Header)) {
		t.Fatal("not an armored age file")
	}
	got, err := readKey(enc, metadata.TARGETS, "correct horse")
	must(t, err)
	if !got.Equal(want) {
		t.Fatal("the decrypted key is not the key")
	}
	for pass, msg := range map[string]string{
		"":            "the targets key " + enc + " is encrypted with a passphrase: give it in SATCHEL_KEY_PASSPHRASE",
		"wrong horse": "the targets key " + enc + " is encrypted with another passphrase than the one given (SATCHEL_KEY_PASSPHRASE): wrong passphrase",
	} {
		if _, err := readKey(enc, metadata.TARGETS, pass); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("passphrase %q: %v", pass, err)
		}
	}
	data := readFile(t, enc)
	must(t, os.WriteFile(enc, data[:len(data)/2], 0o600))
	if _, err := readKey(enc, metadata.TARGETS, "correct horse"); err == nil || !strings.Contains(err.Error(), "is not a readable encrypted key") {
		t.Errorf("a truncated encrypted key: %v", err)
	}
	// The permissions are checked before anything else, encrypted or not.
	must(t, os.WriteFile(enc, data, 0o600))
	must(t, os.Chmod(enc, 0o644))
	if _, err := readKey(enc, metadata.TARGETS, "correct horse"); err == nil || !strings.Contains(err.Error(), "wider than 0600") {
		t.Errorf("an encrypted key readable by others: %v", err)
	}
	must(t, os.WriteFile(KeyFile(dir, metadata.SNAPSHOT), data, 0o600))
	if !KeysEncrypted(t.TempDir(), dir) {
		t.Fatal("KeysEncrypted is false with an encrypted key")
	}
}

// TestNewKeyEncrypted checks the work factor of the keys satchel encrypts, from the file's
// header (opening it would take a second, many under the race detector).
func TestNewKeyEncrypted(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "k.key")
	_, err := writeNewKey(p, "correct horse")
	must(t, err)
	if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%v, %v", info, err)
	}
	sc := bufio.NewScanner(armor.NewReader(bytes.NewReader(readFile(t, p))))
	var header []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "---") {
		header = append(header, sc.Text())
	}
	if len(header) < 2 || header[0] != "age-encryption.org/v1" || !strings.HasPrefix(header[1], "-> scrypt ") ||
		!strings.HasSuffix(header[1], " 18") {
		t.Fatalf("header %q", header)
	}
}

// TestPublishEncryptedKeys publishes with encrypted keys and the passphrase in the
// environment (so it cannot run in parallel), then with a wrong one and none.
func TestPublishEncryptedKeys(t *testing.T) {
	repo, keys := newRepo(t)
	for _, role := range roles {
		encryptFile(t, KeyFile(keys, role), "correct horse")
	}
	ctx := context.Background()
	cfg := writeConfig(t, "8080")
	t.Setenv(PassphraseEnv, "correct horse")
	_, err := Publish(ctx, repo, keys, cfg, Options{})
	must(t, err)
	verifyClean(t, repo)
	before := snapshotDir(t, repo)
	for pass, msg := range map[string]string{
		"wrong horse": "wrong passphrase",
		"":            "is encrypted with a passphrase: give it in SATCHEL_KEY_PASSPHRASE",
	} {
		t.Setenv(PassphraseEnv, pass)
		_, err := Publish(ctx, repo, keys, cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), KeyFile(keys, metadata.TARGETS)) || !strings.Contains(err.Error(), msg) {
			t.Fatalf("passphrase %q: %v", pass, err)
		}
		if _, err := RotateKey(repo, keys, "", metadata.TIMESTAMP); err == nil || !strings.Contains(err.Error(), KeyFile(keys, metadata.ROOT)) ||
			!strings.Contains(err.Error(), msg) {
			t.Fatalf("rotation, passphrase %q: %v", pass, err)
		}
		if snapshotDir(t, repo) != before {
			t.Fatal("the repository changed")
		}
	}
}
