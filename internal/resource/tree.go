package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/store"
)

// Tree mirrors a whole directory tree from the content store: a content library of
// thousands of files, or a web application.
//
// The tree is materialized by store.MaterializeTree: every new or changed file is staged
// beside its old version and verified, and only once all of them are ready are they
// renamed into place, so the old library keeps serving until the new one is complete. The
// chunks of a new file are taken from the files already in place (the previous version,
// whose layout the stat cache or the previous tree records) or else from the store, which
// must hold the rest (a missing chunk fails the run before anything is written).
//
// Checking is fast: a stat cache per tree (the store's index/ directory) records each
// file's stat and content hash, so a file whose stat has not changed is not read; one that
// changed is hashed and compared. verify = "content" hashes every file.
//
// Replaced and purged files are not backed up: a content library is too big for the backup
// store, and its old versions are in the content store as long as their releases are kept.
type Tree struct {
	base
	Path   string  `attr:"path" required:"true" format:"path" doc:"Absolute path of the directory that mirrors the tree (created if missing)."`
	Root   string  `attr:"root" required:"true" doc:"ID of the tree in the content store: 64 hex digits, as satchel store add prints them."`
	Purge  bool    `attr:"purge" default:"false" doc:"Remove whatever is below the path that the tree does not have (and no other resource manages), files of an earlier version of the tree included. Removed files are not backed up."`
	Owner  *string `attr:"owner" format:"account" refers:"user" doc:"Owning user of every entry, the directory included (name or uid). Unset: new entries belong to the user running satchel, replaced files keep theirs."`
	Group  *string `attr:"group" format:"account" refers:"group" doc:"Owning group of every entry (name or gid). Unset: as for owner."`
	Verify string  `attr:"verify" default:"stat" enum:"stat,content" doc:"How files are compared with the tree. stat: a file whose size, times and inode are those recorded when it was last checked is taken as unchanged without reading it (as git does); others are hashed. content: every file is hashed (slow for big trees)."`
}

var treeDef = definition{
	name:     "tree",
	doc:      "A directory mirrored from a tree of the content store (a content library), reporting counts and bytes rather than a line per file. Nothing it replaces or purges is backed up.",
	pathAttr: "path",
	ownsPath: true,
	proto:    (*Tree)(nil),
	check: func(v schema.Values) []*schema.AttrError {
		if s, ok := v["root"].(string); ok {
			if _, err := store.ParseID(s); err != nil {
				return []*schema.AttrError{{Attr: "root", Summary: "Invalid tree ID",
					Detail: "want the 64 lower-case hex digits of a tree in the content store, as satchel store add prints them."}}
			}
		}
		return nil
	},
}

// treeListed is how many changed paths the diff lists.
const treeListed = 20

// CheckApply implements Resource.
func (t *Tree) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	if env.Content == nil {
		return res, errors.New("no content store configured: tree resources need one (satchel apply --store DIR)")
	}
	id, err := store.ParseID(t.Root)
	if err != nil {
		return res, err
	}
	if !env.Content.HasObject(id) {
		return res, fmt.Errorf("tree %s is not in the content store %s: fetch it or add it first (satchel store add)", id, env.Content.Dir())
	}
	info, err := current(env, t.Path)
	if err != nil {
		return res, err
	}
	var parents []string
	switch {
	case info == nil:
		res.Add("ensure", "absent", "present")
		if parents, err = addParents(env, t.Path, res); err != nil {
			return res, err
		}
	case !info.IsDir():
		return res, fmt.Errorf("%s is a %s, not a directory; remove it or mirror the tree elsewhere", env.Root.HostPath(t.Path), kindOf(info))
	}
	opts := store.TreeOptions{
		Purge: t.Purge,
		Keep: func(p string) (bool, bool) {
			return env.Managed.Has(p), env.Managed.HasBelow(p)
		},
		DryRun:        !apply,
		VerifyContent: t.Verify == "content",
		MaxPaths:      treeListed,
	}
	if t.Owner != nil {
		uid, err := env.Accounts.UID(*t.Owner)
		if err != nil {
			return res, err
		}
		opts.UID = &uid
	}
	if t.Group != nil {
		gid, err := env.Accounts.GID(*t.Group)
		if err != nil {
			return res, err
		}
		opts.GID = &gid
	}
	host := env.Root.HostPath(t.Path)
	ixFile := env.Content.IndexPath(host)
	ix, warn := store.LoadIndex(ixFile, host)
	if warn != nil && env.Log != nil {
		env.Log.Warn("tree: stat cache ignored", "resource", t.address, "error", warn)
	}
	opts.Index, opts.Previous = ix, ix.Root
	if apply {
		if err := makeParents(env, parents); err != nil {
			return res, err
		}
	}
	st, err := env.Content.MaterializeTree(ctx, env.Root, t.Path, id, opts)
	t.report(res, &st)
	if apply {
		if serr := ix.Save(ixFile); serr != nil && env.Log != nil {
			env.Log.Warn("tree: stat cache not saved", "resource", t.address, "error", serr)
		}
	}
	if err != nil {
		return res, err
	}
	if env.Log != nil && st.Hashed > 0 {
		env.Log.Debug("tree: files hashed", "resource", t.address, "files", st.Hashed, "bytes", st.HashedBytes)
	}
	return res, nil
}

// report turns the counts into changes, and the first changed paths into the diff.
func (t *Tree) report(res *Result, st *store.TreeStats) {
	if s := countList(st.FilesAdded, st.FilesUpdated, st.FilesRemoved); s != "" {
		if st.Bytes > 0 {
			s += " (" + store.HumanBytes(st.Bytes) + " written"
			if st.FromSeeds > 0 {
				s += ", " + store.HumanBytes(st.FromSeeds) + " of it reused from files in place"
			}
			s += ")"
		}
		res.Add("files", "", s)
	}
	if s := countList(st.DirsAdded, 0, st.DirsRemoved); s != "" {
		res.Add("directories", "", s)
	}
	if s := countList(st.LinksAdded, st.LinksUpdated, st.LinksRemoved); s != "" {
		res.Add("symlinks", "", s)
	}
	if st.AttrsChanged > 0 {
		res.Add("modes and owners", "", fmt.Sprintf("%d fixed", st.AttrsChanged))
	}
	if st.TempRemoved > 0 {
		res.Add("temporary files", "", fmt.Sprintf("%d removed (left by an interrupted run)", st.TempRemoved))
	}
	if len(st.Paths) == 0 {
		return
	}
	var b strings.Builder
	for _, p := range st.Paths {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	if st.MorePaths > 0 {
		fmt.Fprintf(&b, "… and %d more\n", st.MorePaths)
	}
	res.Diff = b.String()
}

// countList renders "2 added, 3 updated, 1 removed", leaving out zeros.
func countList(added, updated, removed int) string {
	var parts []string
	if added > 0 {
		parts = append(parts, fmt.Sprintf("%d added", added))
	}
	if updated > 0 {
		parts = append(parts, fmt.Sprintf("%d updated", updated))
	}
	if removed > 0 {
		parts = append(parts, fmt.Sprintf("%d removed", removed))
	}
	return strings.Join(parts, ", ")
}

var _ Resource = (*Tree)(nil)

// TreeRoot is a content tree a catalog's tree resource mirrors.
type TreeRoot struct {
	Address string // the first tree resource that names it
	ID      store.ID
}

// TreeRoots lists the content trees a catalog's tree resources mirror, each once: what a
// node must hold in its store to apply the catalog.
func TreeRoots(cat *catalog.Catalog) ([]TreeRoot, error) {
	var roots []TreeRoot
	seen := map[store.ID]bool{}
	for _, r := range cat.Resources {
		if r.Type != "tree" {
			continue
		}
		var s string
		if err := json.Unmarshal(r.Attributes["root"], &s); err != nil {
			return nil, fmt.Errorf("%s: root: %w", r.Address, err)
		}
		id, err := store.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("%s: root: %w", r.Address, err)
		}
		if !seen[id] {
			seen[id] = true
			roots = append(roots, TreeRoot{r.Address, id})
		}
	}
	return roots, nil
}
