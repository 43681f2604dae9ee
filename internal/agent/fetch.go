package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/store"
	"github.com/satchelcm/satchel/internal/transfer"
)

type storeID = store.ID

// pull brings the tree id from remote's content store into the node's store, within the
// cycle's download budget: outside the transfer windows a pull that goes over it is cut
// (errDeferred); what it stored stays, and the next pull resumes.
func (c *cycle) pull(ctx context.Context, remote string, id store.ID, have []store.ID) error {
	a := c.a
	if remote == "" {
		return errors.New("no repository answered")
	}
	objs, chunks, err := a.store.Missing(ctx, id)
	if err != nil {
		return err
	}
	if len(objs)+len(chunks) == 0 {
		return nil
	}
	if c.budget == 0 {
		return errDeferred
	}
	client, closeFn, err := a.storeClient(remote)
	if err != nil {
		return err
	}
	defer func() { _ = closeFn() }()
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if c.budget > 0 {
		budget := c.budget
		client.Progress = func(p transfer.Progress) {
			if p.BodyBytes > budget {
				cancel(errDeferred)
			}
		}
	}
	st, err := client.Pull(pctx, a.store, id, have)
	c.rep.Transfer.add(st)
	if c.budget > 0 {
		c.budget = max(0, c.budget-st.BodyBytes)
	}
	if errors.Is(context.Cause(pctx), errDeferred) && ctx.Err() == nil {
		return errDeferred
	}
	return err
}

// checkout writes release rel's config repository into its directory (releases/N), from
// the store, and returns the directory. A checkout already there is checked (size and
// times, as the tree resource does) and repaired.
func (a *Agent) checkout(ctx context.Context, rel *Release) (string, error) {
	id, err := rel.configID()
	if err != nil {
		return "", err
	}
	base := filepath.Join(a.state, releasesDirName)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("check out its config: %w", err)
	}
	root, err := fsroot.Open(base)
	if err != nil {
		return "", fmt.Errorf("check out its config: %w", err)
	}
	defer root.Close()
	name := strconv.FormatUint(rel.Version, 10)
	dir := filepath.Join(base, name)
	// The stat cache spares hashing every file at every cycle (as the tree resource does).
	ixFile := a.store.IndexPath(dir)
	ix, _ := store.LoadIndex(ixFile, dir) // a damaged cache is only slower: files are hashed
	if _, err := a.store.MaterializeTree(ctx, root, "/"+name, id, store.TreeOptions{Purge: true, Index: ix, Previous: ix.Root}); err != nil {
		return "", fmt.Errorf("check out its config: %w", err)
	}
	if err := ix.Save(ixFile); err != nil {
		a.logf("warning: %v", err)
	}
	return dir, nil
}

// formatSize writes a byte count for people.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
