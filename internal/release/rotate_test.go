package release

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// newOfflineRepo makes a repository with one release and moves its root key to a
// directory of its own, as an operator keeps it offline. It returns the directories.
func newOfflineRepo(t *testing.T) (repo, keys, offline string) {
	t.Helper()
	repo, keys = newRepo(t)
	offline = filepath.Join(t.TempDir(), "offline")
	must(t, os.Mkdir(offline, 0o700))
	must(t, os.Rename(KeyFile(keys, metadata.ROOT), KeyFile(offline, metadata.ROOT)))
	_, err := Publish(context.Background(), repo, keys, writeConfig(t, "8080"), Options{Notes: "first"})
	must(t, err)
	return repo, keys, offline
}

// keyDirOf is the directory of role's key in newOfflineRepo's layout.
func keyDirOf(role, keys, offline string) string {
	if role == metadata.ROOT {
		return offline
	}
	return keys
}

func refresh(t *testing.T, remote, trust string, want uint64) {
	t.Helper()
	m, err := Refresh(context.Background(), remote, trust, RefreshOptions{})
	must(t, err)
	if m.Version != want {
		t.Fatalf("refresh from %s: release %d, want %d", remote, m.Version, want)
	}
}

// copyDir copies the tree src to dst, keeping the permissions (os.CopyFS does not).
func copyDir(t *testing.T, dst, src string) {
	t.Helper()
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm())
	}))
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}

// TestRotateEachRole rotates each key of a repository with a release and checks that the
// repository stays valid, that the key files are where they are said to be, and that
// nodes that trusted the original root — one that had refreshed before, over a directory
// and over HTTP, and one that never had — follow the chain to the next release, published
// with the new keys.
func TestRotateEachRole(t *testing.T) {
	t.Parallel()
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			repo, keys, offline := newOfflineRepo(t)
			original := readFile(t, filepath.Join(repo, MetadataDir, "root.json"))
			remotes := remotes(t, repo)
			seen := map[string]string{}
			for kind, remote := range remotes {
				seen[kind] = newTrust(t, repo)
				refresh(t, remote, seen[kind], 1)
			}
			fresh := filepath.Join(t.TempDir(), "fresh")
			must(t, TrustInit(fresh, original))
			dir := keyDirOf(role, keys, offline)
			oldKey := readFile(t, KeyFile(dir, role))

			rot, err := RotateKey(repo, keys, offline, role)
			must(t, err)
			verifyClean(t, repo)
			wantVersion := int64(3)
			if role == metadata.ROOT {
				wantVersion = 2
			}
			if rot.Role != role || rot.RootVersion != wantVersion || rot.Resumed || rot.Resigned != (role != metadata.ROOT) ||
				rot.KeyFile != KeyFile(dir, role) || rot.OldKeyFile != KeyFile(dir, role)+".old-1" {
				t.Fatalf("rotation: %+v", rot)
			}
			if !bytes.Equal(readFile(t, rot.OldKeyFile), oldKey) {
				t.Fatal("the old key file does not hold the old key")
			}
			if bytes.Equal(readFile(t, rot.KeyFile), oldKey) {
				t.Fatal("the key was not replaced")
			}
			for _, p := range []string{rot.KeyFile, rot.OldKeyFile} {
				if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v, %v", p, info, err)
				}
			}
			if exists(PendingKeyFile(dir, role)) {
				t.Fatal("the pending key file is left")
			}
			current := readFile(t, filepath.Join(repo, MetadataDir, "root.json"))
			if newest := fmt.Sprintf("%d.root.json", rot.RootVersion); !bytes.Equal(current, readFile(t, filepath.Join(repo, MetadataDir, newest))) {
				t.Fatalf("root.json is not %s", newest)
			}
			// The old key is no longer in the root; the new one is, alone.
			root, err := metadata.Root().FromBytes(current)
			must(t, err)
			newKey, err := readKey(rot.KeyFile, role, "")
			must(t, err)
			newID, err := keyID(newKey.Public())
			must(t, err)
			if ids := root.Signed.Roles[role].KeyIDs; len(ids) != 1 || ids[0] != newID {
				t.Fatalf("root lists %q for %s, want only %s", ids, role, newID)
			}

			// Nodes follow the chain before the next release and after it.
			for kind, remote := range remotes {
				refresh(t, remote, seen[kind], 1)
			}
			cfg := writeConfig(t, "8080")
			must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
			p2, err := Publish(ctx, repo, keys, cfg, Options{Notes: "second"})
			must(t, err)
			verifyClean(t, repo)
			for kind, remote := range remotes {
				refresh(t, remote, seen[kind], 2)
			}
			m, err := Refresh(ctx, repo, fresh, RefreshOptions{})
			must(t, err)
			if m.Version != 2 || m.Config != p2.Manifest.Config {
				t.Fatalf("a node trusting the original root: %+v", m)
			}
			trusted, err := metadata.Root().FromFile(filepath.Join(fresh, TrustMetadataDir, "root.json"))
			must(t, err)
			if trusted.Signed.Version != root.Signed.Version {
				t.Fatalf("the node trusts root version %d, want %d", trusted.Signed.Version, root.Signed.Version)
			}

			// A second rotation of the same role keeps the first old key and numbers the next.
			rot2, err := RotateKey(repo, keys, offline, role)
			must(t, err)
			if rot2.OldKeyFile != KeyFile(dir, role)+".old-2" || !bytes.Equal(readFile(t, rot.OldKeyFile), oldKey) {
				t.Fatalf("second rotation: %+v", rot2)
			}
			verifyClean(t, repo)
			refresh(t, remotes["http"], seen["http"], 2)
		})
	}
}

// TestRotateRefusesOldTargetsKey publishes with the targets key rotated out: refused,
// naming the file, and nothing written.
func TestRotateRefusesOldTargetsKey(t *testing.T) {
	t.Parallel()
	repo, keys, offline := newOfflineRepo(t)
	rot, err := RotateKey(repo, keys, offline, metadata.TARGETS)
	must(t, err)
	stale := filepath.Join(t.TempDir(), "stale")
	must(t, os.Mkdir(stale, 0o700))
	for _, role := range onlineRoles {
		src := KeyFile(keys, role)
		if role == metadata.TARGETS {
			src = rot.OldKeyFile
		}
		must(t, os.WriteFile(KeyFile(stale, role), readFile(t, src), 0o600))
	}
	before := snapshotDir(t, repo)
	_, err = Publish(context.Background(), repo, stale, writeConfig(t, "8080"), Options{})
	if err == nil || !strings.Contains(err.Error(), "the targets key "+KeyFile(stale, metadata.TARGETS)+" is not a targets key of this repository") ||
		!strings.Contains(err.Error(), "replaced by 'satchel repo rotate-key'") {
		t.Fatalf("Publish with the old targets key: %v", err)
	}
	t.Log(err)
	if snapshotDir(t, repo) != before {
		t.Fatal("the repository changed")
	}
}

// TestRotateRefusesOldTimestampKey checks that, once a node has followed the chain past a
// timestamp key rotation, timestamp metadata signed by the old key is refused, however new
// its version.
func TestRotateRefusesOldTimestampKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, keys, offline := newOfflineRepo(t)
	trust := newTrust(t, repo)
	refresh(t, repo, trust, 1)
	rot, err := RotateKey(repo, keys, offline, metadata.TIMESTAMP)
	must(t, err)
	refresh(t, repo, trust, 1)
	httpRemote := serve(t, repo)
	httpTrust := newTrust(t, repo)
	refresh(t, httpRemote, httpTrust, 1)

	// The old timestamp key signs a newer timestamp: a key thief's replay or freeze.
	oldKey, err := readKey(rot.OldKeyFile, metadata.TIMESTAMP, "")
	must(t, err)
	oldSigner, err := signature.LoadSigner(oldKey, crypto.Hash(0))
	must(t, err)
	ts, err := metadata.Timestamp().FromFile(filepath.Join(repo, MetadataDir, "timestamp.json"))
	must(t, err)
	ts.Signed.Version += 10
	forged, err := signEncode(ts, oldSigner)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(repo, MetadataDir, "timestamp.json"), forged, 0o644))
	for remote, trust := range map[string]string{repo: trust, httpRemote: httpTrust} {
		before := snapshotDir(t, trust)
		m, err := Refresh(ctx, remote, trust, RefreshOptions{})
		if m != nil || !errors.Is(err, &metadata.ErrUnsignedMetadata{}) || !strings.Contains(err.Error(), "timestamp") {
			t.Fatalf("%s: Refresh of a timestamp signed by the old key: %v, %v", remote, m, err)
		}
		t.Log(err)
		if snapshotDir(t, trust) != before {
			t.Fatalf("%s: the node's trust changed", remote)
		}
	}
	rep, err := Verify(ctx, repo, nil)
	must(t, err)
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "timestamp.json") {
		t.Fatalf("Verify: %q", rep.Problems)
	}
}

// TestRotateNeedsRootKey rotates without the root key: refused, saying where it looked,
// and nothing changes, neither in the repository nor among the keys.
func TestRotateNeedsRootKey(t *testing.T) {
	t.Parallel()
	repo, keys, offline := newOfflineRepo(t)
	for _, role := range roles {
		for _, rootKeys := range []string{"", keys} { // the default is the keys directory
			beforeRepo, beforeKeys, beforeOffline := snapshotDir(t, repo), snapshotDir(t, keys), snapshotDir(t, offline)
			rot, err := RotateKey(repo, keys, rootKeys, role)
			if rot != nil || err == nil || !strings.Contains(err.Error(), "the root key "+KeyFile(keys, metadata.ROOT)+" is missing: changing keys needs the root key") ||
				!strings.Contains(err.Error(), "--root-keys") {
				t.Fatalf("%s: rotation without the root key: %v, %v", role, rot, err)
			}
			if snapshotDir(t, repo) != beforeRepo || snapshotDir(t, keys) != beforeKeys || snapshotDir(t, offline) != beforeOffline {
				t.Fatalf("%s: something changed", role)
			}
		}
	}
	// Another repository's root key is refused as well.
	_, otherKeys := newRepo(t)
	before := snapshotDir(t, repo)
	if _, err := RotateKey(repo, keys, otherKeys, metadata.TARGETS); err == nil || !strings.Contains(err.Error(), "is not a root key of this repository") {
		t.Fatalf("rotation with another repository's root key: %v", err)
	}
	if snapshotDir(t, repo) != before || exists(PendingKeyFile(keys, metadata.TARGETS)) {
		t.Fatal("something changed")
	}
	// So is a missing online key, which the re-signing needs.
	must(t, os.Rename(KeyFile(keys, metadata.SNAPSHOT), filepath.Join(t.TempDir(), "snapshot.key")))
	if _, err := RotateKey(repo, keys, offline, metadata.TARGETS); err == nil || !strings.Contains(err.Error(), "the snapshot key "+KeyFile(keys, metadata.SNAPSHOT)+" is missing") {
		t.Fatalf("rotation without the snapshot key: %v", err)
	}
	if snapshotDir(t, repo) != before || exists(PendingKeyFile(keys, metadata.TARGETS)) {
		t.Fatal("something changed")
	}
}

// TestRotateLostKey rotates a key whose file is lost: the rotation does not need it.
func TestRotateLostKey(t *testing.T) {
	t.Parallel()
	repo, keys, offline := newOfflineRepo(t)
	trust := newTrust(t, repo)
	refresh(t, repo, trust, 1)
	must(t, os.Remove(KeyFile(keys, metadata.TARGETS)))
	rot, err := RotateKey(repo, keys, offline, metadata.TARGETS)
	must(t, err)
	if rot.OldKeyFile != "" {
		t.Fatalf("rotation: %+v", rot)
	}
	verifyClean(t, repo)
	cfg := writeConfig(t, "8080")
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
	_, err = Publish(context.Background(), repo, keys, cfg, Options{})
	must(t, err)
	refresh(t, repo, trust, 2)
}

// TestRotateResumes rebuilds every state a crash during a rotation can leave, from the
// files of a finished one, and checks in each that a node which refreshed before the
// rotation still refreshes (the repository is valid for nodes at every step), and that
// running the rotation again finishes it with the same new key.
func TestRotateResumes(t *testing.T) {
	t.Parallel()
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			repo0, keys0, offline0 := newOfflineRepo(t)
			dir0 := keyDirOf(role, keys0, offline0)
			oldKey := readFile(t, KeyFile(dir0, role))
			// The finished rotation, on a copy.
			done := filepath.Join(base, "done")
			copyDir(t, filepath.Join(done, "repo"), repo0)
			copyDir(t, filepath.Join(done, "keys"), keys0)
			copyDir(t, filepath.Join(done, "offline"), offline0)
			rot, err := RotateKey(filepath.Join(done, "repo"), filepath.Join(done, "keys"), filepath.Join(done, "offline"), role)
			must(t, err)
			newKey := readFile(t, rot.KeyFile)
			doneMeta := func(name string) []byte { return readFile(t, filepath.Join(done, "repo", MetadataDir, name)) }

			// Before the rotation: root 1, targets and snapshot 2 (release 1). A rotation of
			// the root key writes 2.root.json; of another key, 2.root.json (both keys),
			// 3.targets.json, 3.snapshot.json, timestamp.json, then 3.root.json.
			type step struct {
				name  string
				files []string // copied from the finished rotation, in order
				root  string   // root.json's content: this file of the finished rotation
				keys  func(dir string)
			}
			pendingOnly := func(dir string) {
				must(t, os.WriteFile(PendingKeyFile(dir, role), newKey, 0o600))
			}
			halfSwapped := func(dir string) {
				pendingOnly(dir)
				must(t, os.WriteFile(KeyFile(dir, role)+".old-1", oldKey, 0o600))
			}
			steps := []step{
				{"new key written", nil, "", pendingOnly},
				{"first root written, root.json not", []string{"2.root.json"}, "", pendingOnly},
				{"first root written", []string{"2.root.json"}, "2.root.json", pendingOnly},
			}
			if role == metadata.ROOT {
				steps = append(steps, step{"old key kept, new not in place", []string{"2.root.json"}, "2.root.json", halfSwapped})
			} else {
				resigned := []string{"2.root.json", "3.targets.json", "3.snapshot.json", "timestamp.json"}
				all := append(resigned, "3.root.json")
				steps = append(steps,
					step{"re-signed", resigned, "2.root.json", pendingOnly},
					step{"second root written, root.json not", all, "2.root.json", pendingOnly},
					step{"second root written", all, "3.root.json", pendingOnly},
					step{"old key kept, new not in place", all, "3.root.json", halfSwapped},
				)
			}
			for i, st := range steps {
				t.Run(st.name, func(t *testing.T) {
					at := filepath.Join(base, "step", string(rune('a'+i)))
					repo, keys, offline := filepath.Join(at, "repo"), filepath.Join(at, "keys"), filepath.Join(at, "offline")
					copyDir(t, repo, repo0)
					copyDir(t, keys, keys0)
					copyDir(t, offline, offline0)
					trust := newTrust(t, repo)
					refresh(t, repo, trust, 1)
					for _, f := range st.files {
						must(t, os.WriteFile(filepath.Join(repo, MetadataDir, f), doneMeta(f), 0o644))
					}
					if st.root != "" {
						must(t, os.WriteFile(filepath.Join(repo, MetadataDir, "root.json"), doneMeta(st.root), 0o644))
					}
					dir := keyDirOf(role, keys, offline)
					st.keys(dir)

					refresh(t, repo, trust, 1) // the crash left a repository that nodes follow

					rot, err := RotateKey(repo, keys, offline, role)
					must(t, err)
					if !rot.Resumed || !bytes.Equal(readFile(t, KeyFile(dir, role)), newKey) ||
						!bytes.Equal(readFile(t, KeyFile(dir, role)+".old-1"), oldKey) || exists(KeyFile(dir, role)+".old-2") ||
						exists(PendingKeyFile(dir, role)) {
						t.Fatalf("resumed rotation: %+v", rot)
					}
					verifyClean(t, repo)
					refresh(t, repo, trust, 1)
					cfg := writeConfig(t, "8080")
					must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
					_, err = Publish(context.Background(), repo, keys, cfg, Options{})
					must(t, err)
					refresh(t, repo, trust, 2)
				})
			}
		})
	}
}

// TestRotateRefuses checks the rotations refused before anything is done.
func TestRotateRefuses(t *testing.T) {
	t.Parallel()
	repo, keys, offline := newOfflineRepo(t)
	if _, err := RotateKey(repo, keys, offline, "targetz"); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := RotateKey(filepath.Join(t.TempDir(), "nowhere"), keys, offline, metadata.TARGETS); err == nil ||
		!strings.Contains(err.Error(), "is not a release repository") {
		t.Fatalf("no repository: %v", err)
	}
	if _, err := RotateKey(repo, filepath.Join(repo, "keys"), offline, metadata.TARGETS); err == nil ||
		!strings.Contains(err.Error(), "is inside the repository") {
		t.Fatalf("keys inside the repository: %v", err)
	}
	// An unfinished rotation of another key is to be finished first.
	must(t, os.WriteFile(PendingKeyFile(keys, metadata.SNAPSHOT), readFile(t, KeyFile(keys, metadata.SNAPSHOT)), 0o600))
	before := snapshotDir(t, repo)
	if _, err := RotateKey(repo, keys, offline, metadata.TARGETS); err == nil ||
		!strings.Contains(err.Error(), "a rotation of the snapshot key was interrupted") ||
		!strings.Contains(err.Error(), "satchel repo rotate-key snapshot") {
		t.Fatalf("with another rotation unfinished: %v", err)
	}
	if snapshotDir(t, repo) != before {
		t.Fatal("the repository changed")
	}
	// A publish holding the lock.
	must(t, os.Remove(PendingKeyFile(keys, metadata.SNAPSHOT)))
	unlock, err := lockRepo(repo)
	must(t, err)
	defer unlock()
	if _, err := RotateKey(repo, keys, offline, metadata.TARGETS); err == nil || !strings.Contains(err.Error(), "another release is being published") {
		t.Fatalf("locked: %v", err)
	}
}
