package release

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/satchelcm/satchel/internal/atomicfile"
	"github.com/satchelcm/satchel/internal/store"
)

// The layout of a repository directory.
const (
	StoreDir    = "store"
	MetadataDir = "metadata"
	TargetsDir  = "targets"
	releasesDir = "releases" // under TargetsDir; also the prefix of target paths
	lockName    = ".lock"
)

// Expiry periods, counted from each signing. See the package documentation.
const (
	RootExpiry    = 10 * 365 * 24 * time.Hour
	TargetsExpiry = 365 * 24 * time.Hour
	// SnapshotExpiry and TimestampExpiry equal TargetsExpiry: a timestamp of days, as TUF
	// suggests for online repositories, would lock out a school reached by a stick every
	// few months (package documentation, Expiry).
	SnapshotExpiry  = TargetsExpiry
	TimestampExpiry = TargetsExpiry
)

// ErrExists is returned by Init when a repository or a key is already there.
var ErrExists = errors.New("already exists")

// DefaultKeysDir is where keys are kept when no directory is given: satchel/keys in the
// user's configuration directory ($XDG_CONFIG_HOME, else ~/.config), outside any repository.
func DefaultKeysDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no keys directory given and %w", err)
	}
	return filepath.Join(dir, "satchel", "keys"), nil
}

// Init creates a repository in repoDir (which must not exist or be empty) and its four
// keys in keysDir (created 0700 if needed; no key may exist there yet): root v1 listing the
// keys, empty targets, snapshot and timestamp, all signed. keysDir must not be inside
// repoDir, which is meant to be published as it is. The key files are encrypted with the
// passphrase in PassphraseEnv if it is set.
func Init(repoDir, keysDir string) error {
	repoAbs, keysAbs, err := absDirs(repoDir, keysDir)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(repoAbs); err == nil && len(entries) > 0 {
		return fmt.Errorf("init %s: the directory is not empty (a repository is made only once; to start over, remove it): %w", repoDir, ErrExists)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("init %s: %w", repoDir, err)
	}
	for _, role := range roles {
		if _, err := os.Lstat(KeyFile(keysAbs, role)); err == nil {
			return fmt.Errorf("init %s: the key %s %w: keys are never overwritten; give another directory with --keys", repoDir, KeyFile(keysAbs, role), ErrExists)
		}
	}
	if err := makeKeysDir(keysAbs); err != nil {
		return err
	}
	keys, err := generateKeys(keysAbs, os.Getenv(PassphraseEnv))
	if err != nil {
		return fmt.Errorf("init %s: %w", repoDir, err)
	}
	if err := initMetadata(repoAbs, keys); err != nil {
		for _, role := range roles {
			_ = os.Remove(KeyFile(keysAbs, role))
		}
		_ = os.RemoveAll(filepath.Join(repoAbs, MetadataDir))
		return fmt.Errorf("init %s: %w", repoDir, err)
	}
	return nil
}

// absDirs makes both directories absolute and refuses a keys directory inside the
// repository.
func absDirs(repoDir, keysDir string) (string, string, error) {
	repoAbs, err := filepath.Abs(repoDir)
	if err != nil {
		return "", "", err
	}
	keysAbs, err := filepath.Abs(keysDir)
	if err != nil {
		return "", "", err
	}
	if rel, err := filepath.Rel(repoAbs, keysAbs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "", "", fmt.Errorf("the keys directory %s is inside the repository %s, which is meant to be published: keep keys elsewhere", keysDir, repoDir)
	}
	return repoAbs, keysAbs, nil
}

func makeKeysDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys directory: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("keys directory: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("the keys directory %s has permissions %04o, wider than 0700: run chmod 700 %s", dir, perm, dir)
	}
	return nil
}

func initMetadata(repo string, keys map[string]ed25519.PrivateKey) error {
	now := time.Now().UTC().Truncate(time.Second)
	root := metadata.Root(now.Add(RootExpiry))
	for _, role := range roles {
		k, err := metadata.KeyFromPublicKey(keys[role].Public())
		if err != nil {
			return err
		}
		if err := root.Signed.AddKey(k, role); err != nil {
			return err
		}
	}
	targets := metadata.Targets(now.Add(TargetsExpiry))
	snapshot := metadata.Snapshot(now.Add(SnapshotExpiry))
	timestamp := metadata.Timestamp(now.Add(TimestampExpiry))
	for _, d := range []string{MetadataDir, filepath.Join(TargetsDir, releasesDir)} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			return err
		}
	}
	if _, err := store.Open(filepath.Join(repo, StoreDir)); err != nil {
		return err
	}
	signers := map[string]signature.Signer{}
	for _, role := range roles {
		s, err := signature.LoadSigner(keys[role], crypto.Hash(0))
		if err != nil {
			return err
		}
		signers[role] = s
	}
	rootData, err := signEncode(root, signers[metadata.ROOT])
	if err != nil {
		return err
	}
	if err := writeMeta(repo, "1.root.json", rootData); err != nil {
		return err
	}
	if err := writeMeta(repo, "root.json", rootData); err != nil {
		return err
	}
	st := &state{root: root, targets: targets, snapshot: snapshot, timestamp: timestamp}
	return st.commit(repo, signers, now)
}

// signEncode signs md (after dropping any old signature) and encodes it.
func signEncode[T metadata.Roles](md *metadata.Metadata[T], signer signature.Signer) ([]byte, error) {
	md.ClearSignatures()
	if _, err := md.Sign(signer); err != nil {
		return nil, err
	}
	b, err := md.ToBytes(true)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeMeta writes metadata/NAME atomically.
func writeMeta(repo, name string, data []byte) error {
	return writeAtomic(filepath.Join(repo, MetadataDir, name), data)
}

// writeAtomic writes p atomically (package atomicfile), mode 0644.
func writeAtomic(p string, data []byte) error { return atomicfile.WriteBytes(p, 0o644, data) }

// state is a repository's current top-level metadata.
type state struct {
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

// commit signs and writes targets, then snapshot, then timestamp, each naming the
// version of the one before: VERSION.targets.json and VERSION.snapshot.json are new files
// (consistent snapshots), and timestamp.json, replaced last, is the only file that moves.
// A crash at any point leaves timestamp.json naming a snapshot that exists.
func (st *state) commit(repo string, signers map[string]signature.Signer, now time.Time) error {
	st.targets.Signed.Expires = now.Add(TargetsExpiry)
	data, err := signEncode(st.targets, signers[metadata.TARGETS])
	if err != nil {
		return err
	}
	if err := writeMeta(repo, fmt.Sprintf("%d.targets.json", st.targets.Signed.Version), data); err != nil {
		return err
	}
	tm, err := metaFile(st.targets.Signed.Version, data)
	if err != nil {
		return err
	}
	st.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": tm}
	st.snapshot.Signed.Expires = now.Add(SnapshotExpiry)
	if data, err = signEncode(st.snapshot, signers[metadata.SNAPSHOT]); err != nil {
		return err
	}
	if err := writeMeta(repo, fmt.Sprintf("%d.snapshot.json", st.snapshot.Signed.Version), data); err != nil {
		return err
	}
	sm, err := metaFile(st.snapshot.Signed.Version, data)
	if err != nil {
		return err
	}
	st.timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": sm}
	st.timestamp.Signed.Expires = now.Add(TimestampExpiry)
	if data, err = signEncode(st.timestamp, signers[metadata.TIMESTAMP]); err != nil {
		return err
	}
	return writeMeta(repo, "timestamp.json", data)
}

// metaFile describes a metadata file by version, length and SHA-256.
func metaFile(version int64, data []byte) (*metadata.MetaFiles, error) {
	tf, err := metadata.TargetFile().FromBytes("", data, "sha256")
	if err != nil {
		return nil, err
	}
	m := metadata.MetaFile(version)
	m.Length, m.Hashes = tf.Length, tf.Hashes
	return m, nil
}

// staleRootError is load's error when metadata/root.json is not the newest root of the
// chain, as an interrupted key rotation can leave it (RotateKey repairs it).
type staleRootError struct {
	version int64  // of the newest root
	newest  []byte // its content, verified through the chain
}

func (e *staleRootError) Error() string {
	return fmt.Sprintf("%s/root.json is not %d.root.json, the newest root (if a 'satchel repo rotate-key' was interrupted, run it again to finish)", MetadataDir, e.version)
}

// load reads and checks the repository's metadata: the chain of roots from the trusted one
// (trustedRoot, else metadata/1.root.json) to the newest, root.json equal to the newest,
// then timestamp, snapshot and targets, each verified by signature, version, length and
// hash. With checkExpiry false, expired metadata is accepted (to publish over it).
func load(repo string, trustedRoot []byte, checkExpiry bool) (*trustedmetadata.TrustedMetadata, error) {
	metaPath := func(name string) string { return filepath.Join(repo, MetadataDir, name) }
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(metaPath(name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s/%s is missing", MetadataDir, name)
		}
		return b, err
	}
	if trustedRoot == nil {
		b, err := read("1.root.json")
		if err != nil {
			return nil, err
		}
		trustedRoot = b
	}
	tm, err := trustedmetadata.New(trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	if !checkExpiry {
		tm.RefTime = time.Time{}
	}
	var newest []byte
	for v := tm.Root.Signed.Version + 1; ; v++ {
		name := fmt.Sprintf("%d.root.json", v)
		b, err := os.ReadFile(metaPath(name))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateRoot(b); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", MetadataDir, name, err)
		}
		newest = b
	}
	if newest == nil {
		if newest, err = read(fmt.Sprintf("%d.root.json", tm.Root.Signed.Version)); err != nil {
			return nil, err
		}
	}
	current, err := read("root.json")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(current, newest) {
		return nil, &staleRootError{version: tm.Root.Signed.Version, newest: newest}
	}
	b, err := read("timestamp.json")
	if err != nil {
		return nil, err
	}
	if _, err := tm.UpdateTimestamp(b); err != nil {
		return nil, fmt.Errorf("%s/timestamp.json: %w", MetadataDir, err)
	}
	sm := tm.Timestamp.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, fmt.Errorf("%s/timestamp.json names no snapshot", MetadataDir)
	}
	name := fmt.Sprintf("%d.snapshot.json", sm.Version)
	if b, err = read(name); err != nil {
		return nil, err
	}
	if _, err := tm.UpdateSnapshot(b, false); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", MetadataDir, name, err)
	}
	tgm := tm.Snapshot.Signed.Meta["targets.json"]
	if tgm == nil {
		return nil, fmt.Errorf("%s/%s names no targets", MetadataDir, name)
	}
	name = fmt.Sprintf("%d.targets.json", tgm.Version)
	if b, err = read(name); err != nil {
		return nil, err
	}
	if _, err := tm.UpdateTargets(b); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", MetadataDir, name, err)
	}
	return tm, nil
}
