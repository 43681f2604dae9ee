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
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// ErrUnknownRole is returned by RotateKey for a role that is not root, targets, snapshot
// or timestamp.
var ErrUnknownRole = errors.New("unknown role")

// Rotation describes a key rotation that RotateKey made.
type Rotation struct {
	Role        string
	KeyFile     string // the new key: ROLE.key
	OldKeyFile  string // where the replaced key is kept, ROLE.key.old-N; "" if there was none
	RootVersion int64  // the new root's version, which lists the new key and not the old
	Resigned    bool   // targets, snapshot and timestamp were signed anew (all roles but root)
	Resumed     bool   // an interrupted rotation was finished (ROLE.key.new was there)
}

// PendingKeyFile is where RotateKey keeps role's new key until the repository's root
// lists it: ROLE.key.new, next to ROLE.key.
func PendingKeyFile(keysDir, role string) string { return KeyFile(keysDir, role) + ".new" }

// RotateKey replaces role's key (root, targets, snapshot or timestamp) by a new ed25519 key
// and writes new root metadata listing it instead of the old one, signed by the root key.
// The root key is read from rootKeysDir (keysDir when empty), so that it can stay on
// offline media; the other keys from keysDir, where the new key is written as ROLE.key
// once the repository's root lists it, the old one kept as ROLE.key.old-N (N the first
// number free). Nothing is changed if a key it needs is missing or wrong. The new key is
// encrypted with the passphrase in PassphraseEnv if it is set (as the keys it reads must
// then be opened with it).
//
// Nodes follow the change through the chain of root versions, each signed by the keys of
// the one before and its own. For the root key, that is one new root, signed by the old and
// the new root key. For the others, it is two new roots around a re-signing: root N+1 lists
// the old and the new key; targets, snapshot and timestamp are signed anew (state.commit),
// with the new key for role; root N+2 lists the new key only. So the repository is valid
// for every node at every step, and a rotation needs the old key of role only to keep it.
//
// An interrupted rotation is finished by running RotateKey again: the new key waits in
// ROLE.key.new (PendingKeyFile) until the repository no longer needs the old one, and a
// root.json left behind the newest N.root.json is rewritten. Rotations and publishes are
// serialized by the repository's lock file.
func RotateKey(repoDir, keysDir, rootKeysDir, role string) (*Rotation, error) {
	if !slices.Contains(roles, role) {
		return nil, fmt.Errorf("rotate-key: %w %q: want root, targets, snapshot or timestamp", ErrUnknownRole, role)
	}
	if rootKeysDir == "" {
		rootKeysDir = keysDir
	}
	repo, keys, err := absDirs(repoDir, keysDir)
	if err != nil {
		return nil, fmt.Errorf("rotate-key: %w", err)
	}
	_, rootKeys, err := absDirs(repoDir, rootKeysDir)
	if err != nil {
		return nil, fmt.Errorf("rotate-key: %w", err)
	}
	if _, err := os.Stat(filepath.Join(repo, MetadataDir)); err != nil {
		return nil, fmt.Errorf("rotate-key: %s is not a release repository (no %s/ directory): make one with 'satchel repo init'", repoDir, MetadataDir)
	}
	unlock, err := lockRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("rotate-key: %w", err)
	}
	defer unlock()
	dirOf := func(r string) string {
		if r == metadata.ROOT {
			return rootKeys
		}
		return keys
	}
	for _, r := range roles {
		if p := PendingKeyFile(dirOf(r), r); r != role && exists(p) {
			return nil, fmt.Errorf("rotate-key: a rotation of the %s key was interrupted (%s is there): finish it first with 'satchel repo rotate-key %s'", r, p, r)
		}
	}
	tm, err := loadRepairing(repo)
	if err != nil {
		return nil, fmt.Errorf("rotate-key: %s is not a valid repository: %w", repoDir, err)
	}
	dir := dirOf(role)
	rot := &Rotation{Role: role, KeyFile: KeyFile(dir, role)}
	pendingPath := PendingKeyFile(dir, role)
	pass := os.Getenv(PassphraseEnv)
	pending, err := readKey(pendingPath, role, pass)
	switch {
	case err == nil:
		rot.Resumed = true
	case errors.Is(err, fs.ErrNotExist):
		pending = nil
	default:
		return nil, fmt.Errorf("rotate-key: the new key of an interrupted rotation: %w", err)
	}
	var pendingID string
	if pending != nil {
		if pendingID, err = keyID(pending.Public()); err != nil {
			return nil, fmt.Errorf("rotate-key: %w", err)
		}
	}
	root := tm.Root
	if r := root.Signed.Roles[role]; pending == nil || r == nil || !slices.Equal(r.KeyIDs, []string{pendingID}) {
		if root, err = rotate(repo, keys, rootKeys, role, tm, pendingPath, pending, pass); err != nil {
			return nil, fmt.Errorf("rotate-key: %w", err)
		}
		rot.Resigned = role != metadata.ROOT
	}
	rot.RootVersion = root.Signed.Version
	// The repository no longer needs the old key: keep it aside, then put the new one in
	// its place.
	if rot.OldKeyFile, err = retireKey(dir, role); err != nil {
		return nil, fmt.Errorf("rotate-key: keep the old %s key: %w", role, err)
	}
	if err := os.Rename(pendingPath, rot.KeyFile); err != nil {
		return nil, fmt.Errorf("rotate-key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("rotate-key: %w", err)
	}
	return rot, nil
}

// rotate writes the new roots (and, for every role but root, re-signs targets, snapshot
// and timestamp) for a rotation of role to the new key pending, generated into pendingPath
// (encrypted with pass unless empty) if nil, and returns the newest root. Every key it needs is loaded before anything is
// written.
func rotate(repo, keys, rootKeys, role string, tm *trustedmetadata.TrustedMetadata, pendingPath string, pending ed25519.PrivateKey, pass string) (*metadata.Metadata[metadata.RootType], error) {
	rootSigner, err := loadKey(rootKeys, metadata.ROOT, &tm.Root.Signed)
	if err != nil {
		return nil, err
	}
	signers := map[string]signature.Signer{}
	if role != metadata.ROOT {
		for _, r := range onlineRoles {
			if r == role {
				continue
			}
			if signers[r], err = loadKey(keys, r, &tm.Root.Signed); err != nil {
				return nil, err
			}
		}
	}
	if pending == nil {
		if pending, err = writeNewKey(pendingPath, pass); err != nil {
			return nil, fmt.Errorf("write the new %s key: %w", role, err)
		}
		if err := syncDir(filepath.Dir(pendingPath)); err != nil {
			return nil, err
		}
	}
	newSigner, err := signature.LoadSigner(pending, crypto.Hash(0))
	if err != nil {
		return nil, err
	}
	newKey, err := metadata.KeyFromPublicKey(pending.Public())
	if err != nil {
		return nil, err
	}
	newID, err := newKey.ID()
	if err != nil {
		return nil, err
	}
	only := func(r *metadata.RootType) error {
		for _, id := range slices.Clone(r.Roles[role].KeyIDs) {
			if id != newID {
				if err := r.RevokeKey(id, role); err != nil {
					return err
				}
			}
		}
		return r.AddKey(newKey, role)
	}
	now := time.Now().UTC().Truncate(time.Second)
	root := tm.Root
	if role == metadata.ROOT {
		// Signed by the old root key, as the root before requires, and by the new one, as
		// the new root itself requires.
		return nextRoot(repo, root, now, only, rootSigner, newSigner)
	}
	if !slices.Contains(root.Signed.Roles[role].KeyIDs, newID) {
		add := func(r *metadata.RootType) error { return r.AddKey(newKey, role) }
		if root, err = nextRoot(repo, root, now, add, rootSigner); err != nil {
			return nil, err
		}
	}
	signers[role] = newSigner
	st := &state{root: root, targets: tm.Targets[metadata.TARGETS], snapshot: tm.Snapshot, timestamp: tm.Timestamp}
	st.targets.Signed.Version++
	st.snapshot.Signed.Version++
	st.timestamp.Signed.Version++
	if err := st.commit(repo, signers, now); err != nil {
		return nil, err
	}
	return nextRoot(repo, root, now, only, rootSigner)
}

// nextRoot writes the root after cur, changed by change, expiring RootExpiry after now and
// signed by signers, as metadata/N.root.json and then metadata/root.json. It checks first,
// as a node will, that the new root follows cur (signed by cur's root threshold and its
// own), so that a root that would break the chain is never written.
func nextRoot(repo string, cur *metadata.Metadata[metadata.RootType], now time.Time, change func(*metadata.RootType) error, signers ...signature.Signer) (*metadata.Metadata[metadata.RootType], error) {
	curData, err := os.ReadFile(filepath.Join(repo, MetadataDir, fmt.Sprintf("%d.root.json", cur.Signed.Version)))
	if err != nil {
		return nil, err
	}
	next, err := metadata.Root().FromBytes(curData)
	if err != nil {
		return nil, err
	}
	if err := change(&next.Signed); err != nil {
		return nil, err
	}
	next.Signed.Version++
	next.Signed.Expires = now.Add(RootExpiry)
	next.ClearSignatures()
	for _, s := range signers {
		if _, err := next.Sign(s); err != nil {
			return nil, err
		}
	}
	data, err := next.ToBytes(true)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	check, err := trustedmetadata.New(curData)
	if err != nil {
		return nil, err
	}
	if _, err := check.UpdateRoot(data); err != nil {
		return nil, fmt.Errorf("root version %d would not follow version %d (are the root keys as this repository's root requires?): %w", next.Signed.Version, cur.Signed.Version, err)
	}
	if err := writeMeta(repo, fmt.Sprintf("%d.root.json", next.Signed.Version), data); err != nil {
		return nil, err
	}
	if err := writeMeta(repo, "root.json", data); err != nil {
		return nil, err
	}
	return next, nil
}

// loadRepairing loads the repository as load does, expiry unchecked; if metadata/root.json
// is behind the newest root of the chain (a rotation interrupted between writing the two),
// it rewrites root.json first.
func loadRepairing(repo string) (*trustedmetadata.TrustedMetadata, error) {
	tm, err := load(repo, nil, false)
	var stale *staleRootError
	if !errors.As(err, &stale) {
		return tm, err
	}
	if err := writeMeta(repo, "root.json", stale.newest); err != nil {
		return nil, err
	}
	return load(repo, nil, false)
}

// retireKey keeps role's key file in dir, if there is one, as ROLE.key.old-N, N the first
// number free (or the one already holding it, after an interrupted rotation), and returns
// that path. It copies rather than links, as offline media are often FAT file systems.
func retireKey(dir, role string) (string, error) {
	cur := KeyFile(dir, role)
	data, err := os.ReadFile(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for n := 1; ; n++ {
		p := fmt.Sprintf("%s.old-%d", cur, n)
		kept, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := writeExclusive(p, data, 0o600); err != nil {
				return "", err
			}
			return p, syncDir(dir)
		}
		if err != nil {
			return "", err
		}
		if bytes.Equal(kept, data) {
			return p, nil
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// syncDir flushes dir, so that the files created or renamed in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
