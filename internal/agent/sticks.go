package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
)

// findSticks lists the directories matching patterns that hold a bundle's index.
func findSticks(patterns []string) []string {
	var dirs []string
	for _, p := range patterns {
		matches, _ := filepath.Glob(p) // patterns are checked in the configuration
		for _, m := range matches {
			if info, err := os.Stat(filepath.Join(m, bundle.IndexFile)); err == nil && info.Mode().IsRegular() && !slices.Contains(dirs, m) {
				dirs = append(dirs, m)
			}
		}
	}
	return dirs
}

// stickKey tells a stick's bundle from another in the same place without reading it.
func stickKey(dir string) string {
	info, err := os.Stat(filepath.Join(dir, bundle.IndexFile))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", info.Size(), info.ModTime().UnixNano())
}

// importSticks imports the bundles of the sticks mounted where BundlePaths say, each once:
// a stick left in is not imported again, a refused one is not tried again until another
// bundle is written onto it, and one pulled out during its copy is resumed when it is
// inserted again.
func (a *Agent) importSticks(ctx context.Context) {
	for _, dir := range findSticks(a.opts.BundlePaths) {
		key := stickKey(dir)
		if a.sticks[dir] == key || ctx.Err() != nil {
			continue
		}
		st, err := ReadState(a.state)
		if err != nil {
			a.logf("error: %v", err)
			return
		}
		if ix, _, err := bundle.ReadIndex(dir, a.caFingerprint()); err == nil && ix.ID == st.Bundle {
			a.sticks[dir] = key // imported already (before a restart)
			continue
		}
		a.logf("a USB stick with a bundle is in %s", dir)
		res, err := a.ImportBundle(ctx, dir, ImportOptions{})
		switch {
		case err == nil:
			a.sticks[dir] = key
		case errors.Is(err, bundle.ErrDamaged) || errors.Is(err, bundle.ErrForeign) || errors.Is(err, ErrOlderBundle) || res == nil:
			a.sticks[dir] = key // refused: the same stick is not tried again
			a.logf("the stick in %s was refused: %v", dir, err)
		default:
			// Pulled out, or the node stopped: what was copied is kept for the next time.
			a.logf("the stick in %s: %v", dir, err)
		}
	}
}

// caFingerprint is the CA the node enrolled with ("" if none).
func (a *Agent) caFingerprint() string {
	if a.identity == nil {
		return ""
	}
	return a.identity.Server().CAFingerprint
}

// waitWatching waits for d, or until ctx is done (then returning its error), importing the
// bundles of sticks inserted meanwhile.
func (a *Agent) waitWatching(ctx context.Context, d time.Duration) error {
	if len(a.opts.BundlePaths) == 0 || a.caFingerprint() == "" {
		return a.wait(ctx, d)
	}
	end := time.Now().Add(d)
	poll := time.NewTicker(a.opts.BundlePoll)
	defer poll.Stop()
	for {
		a.importSticks(ctx)
		left := time.Until(end)
		if left <= 0 || ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			return nil
		case <-poll.C:
			t.Stop()
		}
	}
}
