package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/store"
)

// Options are the optional parts of a release.
type Options struct {
	Notes        string
	HealthChecks []HealthCheck
	Progress     func(store.Progress) // called while the config is added to the store
	Now          func() time.Time     // the clock (tests); time.Now when nil
	// Secrets, if the config reads any (secret()), are where their plain text is and whom
	// to encrypt them to.
	Secrets *SecretsOptions
}

// Published describes a release that Publish wrote.
type Published struct {
	Manifest       *Manifest
	Target         string   // the target path, releases/N.json
	Nodes          []string // the nodes the config was checked for
	TargetsVersion int64
	// Warnings say what went wrong without stopping the release (the delta from the
	// previous release's config could not be built: nodes then fetch file by file).
	Warnings []string
}

// Publish checks the config in configDir for every node it names (see Check), adds it to
// the repository's store, and writes and signs release N+1: the manifest as the target
// releases/N+1.json, then new targets, snapshot and timestamp metadata (see state.commit
// for the order). It needs the targets, snapshot and timestamp keys from keysDir, each a
// 0600 file that the root metadata lists for its role. If the check fails, it returns a
// *CheckError and the repository is unchanged. Publishers are serialized by a lock file.
func Publish(ctx context.Context, repoDir, keysDir, configDir string, opts Options) (*Published, error) {
	repo, keys, err := absDirs(repoDir, keysDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(repo, MetadataDir)); err != nil {
		return nil, fmt.Errorf("release: %s is not a release repository (no %s/ directory): make one with 'satchel repo init'", repoDir, MetadataDir)
	}
	unlock, err := lockRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer unlock()
	// Expiry is not checked here: publishing is how expired metadata is renewed.
	tm, err := load(repo, nil, false)
	if err != nil {
		return nil, fmt.Errorf("release: %s is not a valid repository: %w", repoDir, err)
	}
	signers := map[string]signature.Signer{}
	for _, role := range onlineRoles {
		s, err := loadKey(keys, role, &tm.Root.Signed)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		signers[role] = s
	}
	nodes, needs, err := checkConfig(configDir)
	if err != nil {
		return nil, err
	}
	st := &state{root: tm.Root, targets: tm.Targets[metadata.TARGETS], snapshot: tm.Snapshot, timestamp: tm.Timestamp}
	var latest uint64
	for p := range st.targets.Signed.Targets {
		if v, ok := releaseVersion(p); ok {
			latest = max(latest, v)
		}
	}
	s, err := store.Open(filepath.Join(repo, StoreDir))
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	id, err := s.AddTree(ctx, configDir, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	var warnings []string
	if err := configDelta(ctx, repo, s, latest, id); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		warnings = append(warnings, err.Error()+" (nodes will fetch the config file by file)")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now().UTC().Truncate(time.Second)
	m := &Manifest{Version: latest + 1, Config: id, Created: t, Notes: opts.Notes, HealthChecks: opts.HealthChecks}
	secretHashes, secretWarnings, err := writeSecrets(repo, m.Version, needs, opts.Secrets)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	m.Secrets, warnings = secretHashes, append(warnings, secretWarnings...)
	data, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	target := TargetPath(m.Version)
	// A file of this name left by a publish that crashed before its metadata was written was
	// never signed for: replacing it is safe.
	if err := writeAtomic(filepath.Join(repo, TargetsDir, filepath.FromSlash(target)), data); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	tf, err := metadata.TargetFile().FromBytes(target, data, "sha256")
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	st.targets.Signed.Targets[target] = tf
	st.targets.Signed.Version++
	st.snapshot.Signed.Version++
	st.timestamp.Signed.Version++
	if err := st.commit(repo, signers, t); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return &Published{Manifest: m, Target: target, Nodes: nodes, TargetsVersion: st.targets.Signed.Version, Warnings: warnings}, nil
}

// configDelta builds the static delta from the config of release latest (if any) to the
// config tree id, so that a node holding the last release fetches the next one as one
// small index and a range or two of its pack (package transfer) rather than file by file.
func configDelta(ctx context.Context, repo string, s *store.Store, latest uint64, id store.ID) error {
	if latest == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(repo, TargetsDir, filepath.FromSlash(TargetPath(latest))))
	if err != nil {
		return fmt.Errorf("the manifest of release %d: %w", latest, err)
	}
	prev, err := DecodeManifest(data)
	if err != nil {
		return fmt.Errorf("the manifest of release %d: %w", latest, err)
	}
	if prev.Config == id || !s.HasObject(prev.Config) {
		return nil
	}
	if _, err := s.BuildDelta(ctx, prev.Config, id, nil); err != nil {
		return fmt.Errorf("delta from release %d's config: %w", latest, err)
	}
	return nil
}

// TargetPath is the TUF target path of release version v.
func TargetPath(v uint64) string { return fmt.Sprintf("%s/%d.json", releasesDir, v) }

// releaseVersion parses a target path made by TargetPath, and nothing else.
// TargetVersion parses a release's target path (TargetPath): the release version.
func TargetVersion(p string) (uint64, bool) { return releaseVersion(p) }

func releaseVersion(p string) (uint64, bool) {
	rest, ok := strings.CutPrefix(p, releasesDir+"/")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, ".json")
	if !ok || num == "" || num[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || strconv.FormatUint(v, 10) != num {
		return 0, false
	}
	return v, true
}

// lockRepo takes the repository's publish lock, failing at once if another publish holds it.
func lockRepo(repo string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(repo, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another release is being published to %s", repo)
		}
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

// Latest returns the newest release of the repository in repoDir, as its publisher keeps
// it (read from the repository's own files, not verified as a node verifies them), or nil
// if it has none.
func Latest(repoDir string) (*Manifest, error) {
	versions, err := Versions(repoDir)
	if err != nil || len(versions) == 0 {
		return nil, err
	}
	return ReadManifest(repoDir, versions[len(versions)-1])
}

// Versions lists the versions of the repository's releases, oldest first.
func Versions(repoDir string) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Join(repoDir, TargetsDir, releasesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("releases: %w", err)
	}
	var versions []uint64
	for _, e := range entries {
		if v, ok := releaseVersion(releasesDir + "/" + e.Name()); ok {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	return versions, nil
}

// ReadManifest reads release version's manifest from the repository's own files (as
// Latest does, not verified).
func ReadManifest(repoDir string, version uint64) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(repoDir, TargetsDir, filepath.FromSlash(TargetPath(version))))
	if err != nil {
		return nil, fmt.Errorf("release %d: %w", version, err)
	}
	return DecodeManifest(data)
}

// CheckoutConfig writes release m's config tree from the repository's store into dir, a
// new directory.
func CheckoutConfig(ctx context.Context, repoDir string, m *Manifest, dir string) error {
	s, err := store.Open(filepath.Join(repoDir, StoreDir))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	root, err := fsroot.Open(filepath.Dir(dir))
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := s.MaterializeTree(ctx, root, "/"+filepath.Base(dir), m.Config, store.TreeOptions{}); err != nil {
		return fmt.Errorf("check out release %d's config: %w", m.Version, err)
	}
	return nil
}
