package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/lang"
)

// Per-node secrets.
//
// A config reads a node's secret with secret("NAME"). At release time each secret a node
// reads is encrypted with age to that node's recipient alone and written to
//
//	secrets/N/NODE/HASH.age       HASH: the SHA-256 of NAME (the name stays private)
//
// Since anyone who knows a node's recipient can encrypt to it, the SHA-256 of every
// ciphertext is listed in index files the signed manifest names by hash:
//
//	secrets/N/index-B.json        {"NODE/HASH": "SHA-256 of the ciphertext", …}
//
// one per bucket B of nodes (bucket = first 4 bytes of SHA-256(NODE), big-endian, modulo
// the number of buckets), so that a node fetches the few kilobytes of its bucket, not the
// fleet's whole index, and the manifest grows by one hash per 64 entries at most. A node
// checks its bucket's index against the manifest and the ciphertext against the index: a
// forged, swapped or replayed ciphertext is refused. A node reads only its own directory
// through satchel server; another node's ciphertext would be of no use to it anyway.

// SecretsDir is the repository's directory of encrypted secrets.
const SecretsDir = "secrets"

// Limits of the secret index.
const (
	secretsPerBucket = 64
	maxSecretBuckets = 4096
	// MaxSecretIndexSize bounds an index file a node accepts.
	MaxSecretIndexSize = 4 << 20
	// MaxSecretSize bounds a secret's plaintext.
	MaxSecretSize = 1 << 20
)

// SecretsOptions are what Publish needs to encrypt the nodes' secrets.
type SecretsOptions struct {
	// Dir holds the secrets in plain text, each at its name ("activation/school-1.sig").
	// It is the office's, never part of the config repository.
	Dir string
	// Recipients are the nodes' age recipients, by node name.
	Recipients map[string]string
}

// SecretNameHash is the hex SHA-256 of a secret's name: its file name in a release.
func SecretNameHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// SecretPath is the path, in a repository (slash-separated), of node's secret named name
// in release version.
func SecretPath(version uint64, node, name string) string {
	return path.Join(SecretsDir, strconv.FormatUint(version, 10), node, SecretNameHash(name)+".age")
}

// SecretIndexPath is the path of index file bucket of release version.
func SecretIndexPath(version uint64, bucket int) string {
	return path.Join(SecretsDir, strconv.FormatUint(version, 10), fmt.Sprintf("index-%d.json", bucket))
}

// SecretBucket is node's bucket among n.
func SecretBucket(node string, n int) int {
	sum := sha256.Sum256([]byte(node))
	return int(binary.BigEndian.Uint32(sum[:4]) % uint32(n))
}

// SecretIndex is one bucket's index: "NODE/HASH" → SHA-256 of the ciphertext.
type SecretIndex map[string]string

// VerifySecretIndex checks the index file of node's bucket against hashes, the signed
// manifest's Secrets of release version, and decodes it.
func VerifySecretIndex(version uint64, hashes []string, node string, data []byte) (SecretIndex, error) {
	if err := checkSecretBuckets(hashes); err != nil || len(hashes) == 0 {
		return nil, fmt.Errorf("release %d carries no valid secret index", version)
	}
	b := SecretBucket(node, len(hashes))
	if got := sha256Hex(data); got != hashes[b] {
		return nil, fmt.Errorf("release %d: secret index %d has SHA-256 %s, not the signed %s: refused", version, b, got, hashes[b])
	}
	var idx SecretIndex
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("release %d: secret index %d: %w", version, b, err)
	}
	return idx, nil
}

// Lookup returns the SHA-256 the index lists for node's secret name.
func (idx SecretIndex) Lookup(node, name string) (string, bool) {
	h, ok := idx[node+"/"+SecretNameHash(name)]
	return h, ok
}

var hexHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkSecretBuckets checks a manifest's index hashes: a power of two of them, at most
// maxSecretBuckets, each a SHA-256.
func checkSecretBuckets(hashes []string) error {
	n := len(hashes)
	if n == 0 {
		return nil
	}
	if n > maxSecretBuckets || n&(n-1) != 0 {
		return fmt.Errorf("%d secret index buckets: want a power of two up to %d", n, maxSecretBuckets)
	}
	for _, h := range hashes {
		if !hexHashRE.MatchString(h) {
			return fmt.Errorf("secret index hash %q is not a SHA-256", h)
		}
	}
	return nil
}

// nodeSecrets are the names of the secrets each node reads (lang.Config.SecretNames), for
// the nodes that read any.
type nodeSecrets map[string][]string

// writeSecrets encrypts each node's secrets for release version into the repository and
// writes the index files; it returns their hashes (Manifest.Secrets) and warnings for nodes
// that read secrets but have no recipient (not enrolled yet: they get them in the first
// release after they enroll).
func writeSecrets(repo string, version uint64, needs nodeSecrets, opts *SecretsOptions) ([]string, []string, error) {
	if len(needs) == 0 {
		return nil, nil, nil
	}
	if opts == nil || opts.Dir == "" {
		var first string
		for n := range needs {
			first = n
			break
		}
		return nil, nil, fmt.Errorf("the config reads secrets (node %s reads %s): give the directory that holds them (--secrets DIR) and the nodes' recipients (--recipients FILE)", first, needs[first][0])
	}
	src, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("secrets: %w", err)
	}
	defer src.Close()
	var warnings []string
	entries := map[string]string{}
	nodes := make([]string, 0, len(needs))
	for n := range needs {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, node := range nodes {
		rcpt, ok := opts.Recipients[node]
		if !ok {
			warnings = append(warnings, fmt.Sprintf("node %s reads secrets but has no recipient (not enrolled yet?): it gets them in the first release after it enrolls", node))
			continue
		}
		r, err := age.ParseX25519Recipient(rcpt)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s's recipient: %w", node, err)
		}
		for _, name := range needs[node] {
			plain, err := readSecret(src, name)
			if err != nil {
				return nil, nil, fmt.Errorf("secret %s for node %s: %w", name, node, err)
			}
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, r)
			if err != nil {
				return nil, nil, err
			}
			if _, err := w.Write(plain); err != nil {
				return nil, nil, err
			}
			if err := w.Close(); err != nil {
				return nil, nil, err
			}
			p := filepath.Join(repo, filepath.FromSlash(SecretPath(version, node, name)))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, nil, err
			}
			if err := writeAtomic(p, buf.Bytes()); err != nil {
				return nil, nil, err
			}
			entries[node+"/"+SecretNameHash(name)] = sha256Hex(buf.Bytes())
		}
	}
	if len(entries) == 0 {
		return nil, warnings, nil
	}
	n := 1
	for n*secretsPerBucket < len(entries) && n < maxSecretBuckets {
		n *= 2
	}
	buckets := make([]SecretIndex, n)
	for i := range buckets {
		buckets[i] = SecretIndex{}
	}
	for key, h := range entries {
		node := key[:strings.LastIndexByte(key, '/')]
		buckets[SecretBucket(node, n)][key] = h
	}
	hashes := make([]string, n)
	for b, idx := range buckets {
		data, err := json.Marshal(idx) // keys sorted: the same index, the same bytes
		if err != nil {
			return nil, nil, err
		}
		if err := writeAtomic(filepath.Join(repo, filepath.FromSlash(SecretIndexPath(version, b))), data); err != nil {
			return nil, nil, err
		}
		hashes[b] = sha256Hex(data)
	}
	return hashes, warnings, nil
}

// readSecret reads a secret's plain text from the secrets directory (no path leads out of
// it: the name is checked, and the directory is an os.Root).
func readSecret(src *os.Root, name string) ([]byte, error) {
	if err := lang.CheckSecretName(name); err != nil {
		return nil, err
	}
	f, err := src.Open(filepath.FromSlash(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no such file in the secrets directory %s", src.Name())
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() > MaxSecretSize {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d", info.Size(), MaxSecretSize)
	}
	data := make([]byte, info.Size())
	if _, err := f.ReadAt(data, 0); err != nil && info.Size() > 0 {
		return nil, err
	}
	return data, nil
}
