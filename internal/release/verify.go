package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/satchelcm/satchel/internal/store"
)

// Report is the result of Verify.
type Report struct {
	Releases []*Manifest // the valid releases, oldest first
	Problems []string    // each names the file at fault
	Store    store.Report
}

// Verify checks a whole repository: the signed metadata (root chain from trustedRoot, or
// from metadata/1.root.json when it is nil, then timestamp, snapshot and targets, with
// signatures, versions, hashes and expiry), every release manifest against its target
// entry (length, hash) and its decoder, each release's config tree complete in the store,
// and every chunk and object of the store (a corrupt one is moved to the store's
// quarantine/, as store verify does). Problems are listed in the report; the error is for
// what prevented checking at all.
func Verify(ctx context.Context, repoDir string, trustedRoot []byte) (*Report, error) {
	repo, err := filepath.Abs(repoDir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{MetadataDir, TargetsDir, StoreDir} {
		if info, err := os.Stat(filepath.Join(repo, d)); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("%s is not a release repository: no %s/ directory", repoDir, d)
		}
	}
	rep := &Report{}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	tm, err := load(repo, trustedRoot, true)
	if err != nil {
		problem("%v", err)
	}
	s, err := store.Open(filepath.Join(repo, StoreDir))
	if err != nil {
		return nil, err
	}
	if tm != nil {
		targets, err := os.OpenRoot(filepath.Join(repo, TargetsDir))
		if err != nil {
			return nil, err
		}
		defer targets.Close()
		tgts := tm.Targets[metadata.TARGETS].Signed.Targets
		paths := make([]string, 0, len(tgts))
		for p := range tgts {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			m, err := verifyTarget(ctx, targets, s, p, tgts[p])
			if err != nil {
				problem("%s/%s: %v", TargetsDir, p, err)
				continue
			}
			rep.Releases = append(rep.Releases, m)
		}
		slices.SortFunc(rep.Releases, func(a, b *Manifest) int {
			switch {
			case a.Version < b.Version:
				return -1
			case a.Version > b.Version:
				return 1
			}
			return 0
		})
	}
	if rep.Store, err = s.Verify(ctx, nil); err != nil {
		return nil, err
	}
	for _, d := range rep.Store.Corrupt {
		problem("%s: corrupt %s %s: %v", StoreDir, d.Kind, d.ID, d.Err)
	}
	return rep, nil
}

// verifyTarget checks one release: its path, length, hash, manifest and config tree.
func verifyTarget(ctx context.Context, targets *os.Root, s *store.Store, p string, tf *metadata.TargetFiles) (*Manifest, error) {
	v, ok := releaseVersion(p)
	if !ok {
		return nil, errors.New("not a release target (releases/N.json)")
	}
	if tf.Length > MaxManifestSize {
		return nil, fmt.Errorf("signed length %d is over the manifest limit of %d bytes", tf.Length, MaxManifestSize)
	}
	f, err := targets.Open(p)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("does not match its signed length and hash (changed after signing?): %w", err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, err
	}
	if m.Version != v {
		return nil, fmt.Errorf("holds version %d", m.Version)
	}
	objects, chunks, err := s.Missing(ctx, m.Config)
	if err != nil {
		return nil, fmt.Errorf("config tree %s: %w", m.Config, err)
	}
	if len(objects)+len(chunks) > 0 {
		return nil, fmt.Errorf("config tree %s is incomplete in the store: %d objects and %d chunks missing", m.Config, len(objects), len(chunks))
	}
	return m, nil
}
