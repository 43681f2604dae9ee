package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/store"
)

// RelayOptions are the options of Relay.
type RelayOptions struct {
	// Nodes are the neighbours the bundle is for (by name, as enrolled).
	Nodes []string
	// Progress is told the bytes written so far and the total; may be nil.
	Progress func(done, total int64)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Relay writes into dir a bundle of the release this node runs, from its own state, for
// neighbouring nodes of the same fleet that have no link: a connected school carries the
// office's release one hop further. The bundle has the same format as the office's and
// is checked the same way at the destination: the release by the fleet's release keys,
// every byte by its hash, and the index by a certificate of the fleet's CA (this node's).
//
// What a relay cannot carry: the neighbours' secrets (this node has only its own), content
// trees its own catalog does not use, and roots older than its own (a neighbour that has
// not followed a key rotation). Everything goes from nothing, as this node does not know
// what its neighbours hold. The newest release this node knows must be the one it runs.
func Relay(ctx context.Context, stateDir, dir string, opts RelayOptions) (*bundle.Index, error) {
	if len(opts.Nodes) == 0 {
		return nil, errors.New("relay: name the nodes the bundle is for")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	id, err := client.LoadIdentity(filepath.Join(stateDir, IdentityDirName))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	chain, err := id.Chain()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	st, err := ReadState(stateDir)
	if err != nil {
		return nil, err
	}
	if st.Good == nil {
		return nil, errors.New("relay: this node has applied no release yet: nothing to relay")
	}
	files, err := release.TrustedReleaseFiles(filepath.Join(stateDir, trustDirName), st.Good.Version)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	s, err := store.Open(filepath.Join(stateDir, storeDirName))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	cfg, err := st.Good.configID()
	if err != nil {
		return nil, err
	}
	roots := append([]store.ID{cfg}, st.Good.contentIDs()...)
	ix := &bundle.Index{Format: bundle.Format, ID: relayID(now()), Created: now().UTC().Truncate(time.Second),
		Release: st.Good.Version, Nodes: slices.Clone(opts.Nodes)}
	var built []string // deltas built here, removed after
	defer func() {
		for _, p := range built {
			_ = os.Remove(p)
		}
	}()
	for _, root := range roots {
		ix.Roots = append(ix.Roots, root.String())
		for _, p := range []string{store.DeltaIndexPath(store.ID{}, root), store.DeltaPackPath(store.ID{}, root)} {
			files[path.Join(release.StoreDir, p)] = filepath.Join(s.Dir(), filepath.FromSlash(p))
		}
		if _, err := s.DeltaIndex(store.ID{}, root); err == nil {
			continue
		}
		if _, err := s.BuildDelta(ctx, store.ID{}, root, nil); err != nil {
			return nil, fmt.Errorf("relay: tree %s: %w", root, err)
		}
		built = append(built, filepath.Join(s.Dir(), filepath.FromSlash(store.DeltaIndexPath(store.ID{}, root))),
			filepath.Join(s.Dir(), filepath.FromSlash(store.DeltaPackPath(store.ID{}, root))))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f, err := os.Open(files[name])
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		d, err := bundle.Describe(name, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		ix.Files = append(ix.Files, d)
	}
	signed, err := bundle.SignIndex(ix, id.Signer(), chain)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if err := bundle.Write(ctx, dir, ix, signed, localSource(files), bundle.WriteOptions{Progress: opts.Progress}); err != nil {
		return nil, fmt.Errorf("relay: write the bundle into %s: %w", dir, err)
	}
	return ix, nil
}

// relayID names a relayed bundle.
func relayID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return now.UTC().Format("20060102T150405Z") + "-relay-" + hex.EncodeToString(b[:])
}

// localSource reads a bundle's files from this node's state: bundle path → file.
type localSource map[string]string

func (l localSource) Open(_ context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	local, ok := l[p]
	if !ok {
		return nil, fmt.Errorf("%s: not one of the bundle's files: %w", p, fs.ErrNotExist)
	}
	return bundle.OpenRange(local, offset, length)
}
