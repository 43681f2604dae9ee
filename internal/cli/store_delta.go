package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/store"
)

func newStoreDelta(s *streams, f *storeFlags) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "delta [--from ID] TO",
		Short: "Precompute the static delta that takes a node from one tree to another",
		Long: `Build the static delta from the tree (or file) --from to the tree (or file) TO: two files
in the store's deltas/ directory, an index and a pack holding everything of TO that --from
lacks, each changed file as a zstd delta against its old version. A node that has --from
fetches the pack (or the byte ranges of it that it needs) from any static HTTP server of
the store, instead of chunk after chunk. Without --from, the delta holds all of TO in one
file: a first transfer. Building a delta again replaces it with the same bytes.`,
		Args: wantArgs(1, "the target ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			var fromID store.ID
			if from != "" {
				if fromID, err = parseIDArg(from); err != nil {
					return err
				}
				if fromID == to {
					return &usageError{errors.New("--from and TO are the same root: the delta would be empty")}
				}
			}
			st, err := f.open()
			if err != nil {
				return err
			}
			if !fromID.IsZero() && !st.HasObject(fromID) {
				return fail("--from %s is not in the store %s: add or pull it first", fromID, st.Dir())
			}
			if !st.HasObject(to) {
				return fail("%s is not in the store %s: add or pull it first", to, st.Dir())
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			stats, err := st.BuildDelta(ctx, fromID, to, func(p store.DeltaProgress) {
				show.set(fmt.Sprintf("building the delta: %d of %d entries, %s of pack", p.Entries, p.TotalEntries, humanBytes(p.PackBytes)))
			})
			show.done()
			if err != nil {
				return fail("%v", err)
			}
			writeDeltaStats(s.stdout, st, fromID, to, &stats)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the `ID` of the tree (or file) that nodes have (default: nothing, a full transfer)")
	return cmd
}

// writeDeltaStats prints what BuildDelta built.
func writeDeltaStats(w io.Writer, st *store.Store, from, to store.ID, d *store.DeltaStats) {
	name := "from nothing to " + to.String()
	if !from.IsZero() {
		name = "from " + from.String() + " to " + to.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "built the delta %s in %.1fs\n", name, d.Duration.Seconds())
	fmt.Fprintf(&b, "  entries: %s, %s, %s", plural(d.Trees, "tree"), plural(d.Files, "file object"), plural(d.Chunks, "chunk"))
	if d.DictBytes > 0 {
		fmt.Fprintf(&b, ", and the pack's dictionary (%s)", humanBytes(int64(d.DictBytes)))
	}
	fmt.Fprintf(&b, "\n  encoded: %d stored, %d as deltas, %d with the pack's dictionary\n", d.Stored, d.Delta, d.Dict)
	share := ""
	if d.TargetBytes > 0 {
		share = fmt.Sprintf(" (%.1f%%)", 100*float64(d.PackBytes)/float64(d.TargetBytes))
	}
	fmt.Fprintf(&b, "  pack: %s for %s of content%s; index: %s\n", humanBytes(d.PackBytes), humanBytes(d.TargetBytes),
		share, humanBytes(d.IndexBytes))
	fmt.Fprintf(&b, "  %s\n  %s\n", filepath.Join(st.Dir(), filepath.FromSlash(store.DeltaIndexPath(from, to))),
		filepath.Join(st.Dir(), filepath.FromSlash(store.DeltaPackPath(from, to))))
	_, _ = io.WriteString(w, b.String())
}

func newStoreCheckout(s *streams, f *storeFlags) *cobra.Command {
	var opts checkoutOptions
	var previous string
	cmd := &cobra.Command{
		Use:   "checkout ID DIR",
		Short: "Write a tree from the store into a directory (or a file to a path)",
		Long: `Converge the directory DIR to the tree ID: create, replace and (with --purge) remove what
differs, leaving the rest alone. Every new or changed file is written beside its old
version and verified before anything is renamed into place, so DIR keeps its old content
until the new one is complete. Chunks are taken from the files already in DIR where they
are found (the previous version: the tree last checked out there, or --previous), else
from the store. A stat cache in the store's index/ directory spares reading unchanged
files the next time. DIR is created if missing; an existing DIR may be a symlink to a
directory. A store inside DIR is never purged.

If ID is a file rather than a tree, DIR is the path of the file to write (its mode kept if
it exists, else 0644).

Exit status 1 if the store lacks chunks or objects of ID (pull them first): nothing is
written then.`,
		Args: wantArgs(2, "an ID and a directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			if previous != "" {
				if opts.previous, err = parseIDArg(previous); err != nil {
					return err
				}
			}
			if args[1] == "" {
				return &usageError{errors.New("DIR is empty")}
			}
			if opts.dir, err = filepath.Abs(args[1]); err != nil {
				return fail("%v", err)
			}
			st, err := f.open()
			if err != nil {
				return err
			}
			obj, err := st.Object(id)
			if errors.Is(err, store.ErrNotFound) {
				return fail("%s is not in the store %s: add or pull it first", id, st.Dir())
			}
			if err != nil {
				return fail("%v", err)
			}
			ctx, stop := interruptible()
			defer stop()
			if file, ok := obj.(*store.FileObject); ok {
				if opts.purge {
					return &usageError{fmt.Errorf("%s is a file: --purge is for trees", id)}
				}
				return checkoutFile(ctx, s, st, id, file, &opts)
			}
			return checkoutTree(ctx, s, st, id, &opts)
		},
	}
	cmd.Flags().BoolVar(&opts.purge, "purge", false, "remove what DIR holds that the tree does not have")
	cmd.Flags().StringVar(&previous, "previous", "", "the `ID` of the tree (or file) checked out in DIR before, "+
		"whose files serve as seeds (default: the one the stat cache records)")
	cmd.Flags().BoolVar(&opts.dryRun, "dry-run", false, "report what would change, and check that the store has what it needs; write nothing")
	return cmd
}

type checkoutOptions struct {
	dir      string // absolute
	purge    bool
	dryRun   bool
	previous store.ID
}

// checkoutTree converges opts.dir to the tree id. An existing directory is opened as the
// root; a missing one is created by MaterializeTree as a whole, inside its parent opened
// as the root (or the nearest existing ancestor, for a dry run: nothing is created).
func checkoutTree(ctx context.Context, s *streams, st *store.Store, id store.ID, opts *checkoutOptions) error {
	if _, ok := below(st.Dir(), opts.dir); ok {
		return fail("%s is inside the store %s: check out elsewhere", opts.dir, st.Dir())
	}
	rootDir, dir := opts.dir, "/"
	info, err := os.Stat(opts.dir)
	switch {
	case err == nil && !info.IsDir():
		return fail("%s is a %s, not a directory; %s is a tree", opts.dir, fileKind(info), id)
	case errors.Is(err, fs.ErrNotExist):
		rootDir = filepath.Dir(opts.dir)
		if !opts.dryRun {
			if err := os.MkdirAll(rootDir, 0o755); err != nil {
				return fail("%v", err)
			}
		}
		for {
			if _, err := os.Stat(rootDir); err == nil || rootDir == "/" {
				break
			}
			rootDir = filepath.Dir(rootDir)
		}
		rel, err := filepath.Rel(rootDir, opts.dir)
		if err != nil {
			return fail("%v", err)
		}
		dir = "/" + filepath.ToSlash(rel)
	case err != nil:
		return fail("%v", err)
	}
	root, err := fsroot.Open(rootDir)
	if err != nil {
		return fail("%v", err)
	}
	defer root.Close()

	host := root.HostPath(dir)
	ixFile := st.IndexPath(host)
	ix, warn := store.LoadIndex(ixFile, host)
	if warn != nil {
		fmt.Fprintf(s.stderr, "satchel: warning: %v\n", warn)
	}
	tops := store.TreeOptions{
		Purge:    opts.purge,
		Keep:     keepStore(st.Dir(), rootDir),
		Previous: ix.Root,
		DryRun:   opts.dryRun,
		Index:    ix,
	}
	if !opts.previous.IsZero() {
		tops.Previous = opts.previous
	}
	show := newLineProgress(s.stderr)
	tops.Progress = func(p store.TreeProgress) {
		show.set(fmt.Sprintf("checking out: %d of %d files, %s of %s%s", p.Files, p.TotalFiles,
			humanBytes(p.Bytes), humanBytes(p.TotalBytes), percent(p.Bytes, p.TotalBytes)))
	}
	stats, err := st.MaterializeTree(ctx, root, dir, id, tops)
	show.done()
	if !opts.dryRun {
		if serr := ix.Save(ixFile); serr != nil {
			fmt.Fprintf(s.stderr, "satchel: warning: %v\n", serr)
		}
	}
	if err != nil {
		return checkoutError(st, id, err)
	}
	writeTreeStats(s.stdout, id, opts, &stats)
	return nil
}

// keepStore protects the store from --purge when it lies below the directory checked out:
// Keep takes paths inside the root, rootDir on the host.
func keepStore(storeDir, rootDir string) func(p string) (itself, below bool) {
	rel, ok := below(rootDir, storeDir)
	if !ok {
		return nil
	}
	inRoot := path.Join("/", filepath.ToSlash(rel))
	return func(p string) (bool, bool) {
		return p == inRoot, strings.HasPrefix(inRoot, p+"/")
	}
}

// below returns where p lies below dir (or is dir: "."), symlinks resolved, if it does.
func below(dir, p string) (string, bool) {
	real := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	rel, err := filepath.Rel(real(dir), real(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

func fileKind(info fs.FileInfo) string {
	switch {
	case info.Mode().IsRegular():
		return "file"
	case info.IsDir():
		return "directory"
	case info.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// checkoutError turns what the store lacks into a hint to pull it.
func checkoutError(st *store.Store, id store.ID, err error) error {
	var me *store.MissingError
	switch {
	case errors.As(err, &me):
		return fail("the store %s lacks %s (%s) of %s, in no file in place either; nothing was written: "+
			"pull them first (satchel store pull URL %s)", st.Dir(), plural(len(me.Chunks), "chunk"), humanBytes(me.Bytes), id, id)
	case errors.Is(err, store.ErrNotFound):
		return fail("%v; nothing was written: pull it first (satchel store pull URL %s)", err, id)
	}
	return fail("%v", err)
}

// writeTreeStats prints what MaterializeTree changed (or would change), and the first
// changed paths.
func writeTreeStats(w io.Writer, id store.ID, opts *checkoutOptions, st *store.TreeStats) {
	var b strings.Builder
	switch {
	case !st.Changed() && opts.dryRun:
		fmt.Fprintf(&b, "%s is %s already: nothing would change (%s unchanged, %s)\n", opts.dir, id,
			plural(st.FilesUnchanged, "file"), humanBytes(st.BytesUnchanged))
	case !st.Changed():
		fmt.Fprintf(&b, "%s is %s already (%s unchanged, %s", opts.dir, id, plural(st.FilesUnchanged, "file"),
			humanBytes(st.BytesUnchanged))
		if st.Hashed > 0 {
			fmt.Fprintf(&b, "; %d hashed to compare them, the others known by the stat cache", st.Hashed)
		}
		b.WriteString(")\n")
	default:
		verb, write := "checked out", "wrote"
		if opts.dryRun {
			verb, write = "would check out", "would write"
		}
		var parts []string
		add := func(what string, added, updated, removed int) {
			var c []string
			for _, n := range []struct {
				n    int
				verb string
			}{{added, "added"}, {updated, "updated"}, {removed, "removed"}} {
				if n.n > 0 {
					c = append(c, fmt.Sprintf("%d %s", n.n, n.verb))
				}
			}
			if len(c) > 0 {
				parts = append(parts, what+": "+strings.Join(c, ", "))
			}
		}
		add("files", st.FilesAdded, st.FilesUpdated, st.FilesRemoved)
		add("directories", st.DirsAdded, 0, st.DirsRemoved)
		add("symlinks", st.LinksAdded, st.LinksUpdated, st.LinksRemoved)
		if st.AttrsChanged > 0 {
			parts = append(parts, fmt.Sprintf("modes and owners: %d fixed", st.AttrsChanged))
		}
		if st.TempRemoved > 0 {
			parts = append(parts, fmt.Sprintf("temporary files of an interrupted run: %d removed", st.TempRemoved))
		}
		created := ""
		if st.Created {
			created = " (created)"
		}
		fmt.Fprintf(&b, "%s %s into %s%s: %s\n", verb, id, opts.dir, created, strings.Join(parts, "; "))
		var bytes []string
		if st.Bytes > 0 {
			bytes = append(bytes, fmt.Sprintf("%s %s (%s from files in place, %s from the store)", write,
				humanBytes(st.Bytes), humanBytes(st.FromSeeds), humanBytes(st.FromStore)))
		}
		bytes = append(bytes, fmt.Sprintf("%s unchanged (%s)", plural(st.FilesUnchanged, "file"), humanBytes(st.BytesUnchanged)))
		if st.Hashed > 0 {
			bytes = append(bytes, fmt.Sprintf("%s hashed to compare them (%s)", plural(st.Hashed, "file"), humanBytes(st.HashedBytes)))
		}
		b.WriteString(strings.Join(bytes, "; ") + "\n")
		for _, p := range st.Paths {
			b.WriteString(p.String())
			b.WriteByte('\n')
		}
		if st.MorePaths > 0 {
			fmt.Fprintf(&b, "… and %d more\n", st.MorePaths)
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// checkoutFile writes the file id to opts.dir, a file's path, reusing the chunks of the
// file there (or of --previous, which describes it).
func checkoutFile(ctx context.Context, s *streams, st *store.Store, id store.ID, file *store.FileObject, opts *checkoutOptions) error {
	parent, base := filepath.Dir(opts.dir), filepath.Base(opts.dir)
	if !opts.dryRun {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fail("%v", err)
		}
	}
	mode := fs.FileMode(0o644)
	exists := false
	info, err := os.Lstat(opts.dir)
	switch {
	case err == nil && !info.Mode().IsRegular():
		return fail("%s is a %s, and %s is a file: remove it first", opts.dir, fileKind(info), id)
	case err == nil:
		exists, mode = true, info.Mode().Perm()|info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	case !errors.Is(err, fs.ErrNotExist):
		return fail("%v", err)
	}
	verb := "wrote"
	if opts.dryRun {
		verb = "would write"
	}
	if !exists && opts.dryRun {
		if _, missing, err := st.Missing(ctx, id); err != nil {
			return fail("%v", err)
		} else if len(missing) > 0 {
			return fail("the store %s lacks %s of %s; nothing was written: pull them first (satchel store pull URL %s)",
				st.Dir(), plural(len(missing), "chunk"), id, id)
		}
		fmt.Fprintf(s.stdout, "%s %s: %s from the store\n", verb, opts.dir, humanBytes(file.Size))
		return nil
	}
	root, err := fsroot.Open(parent)
	if err != nil {
		return fail("%v", err)
	}
	defer root.Close()
	p := "/" + base
	seeds := store.NewSeeds(root)
	defer func() { _ = seeds.Close() }()
	if exists {
		if sum, err := hashFile(root, p); err != nil {
			return fail("%v", err)
		} else if sum == file.SHA256 && info.Size() == file.Size {
			fmt.Fprintf(s.stdout, "%s is %s already (%s)\n", opts.dir, id, humanBytes(file.Size))
			return nil
		}
		if prev, err := st.File(opts.previous); err == nil && prev.Size == info.Size() {
			seeds.AddFile(p, prev) // each chunk is verified when read
		} else if err := seeds.AddLocal(ctx, p); err != nil {
			return fail("%v", err)
		}
	}
	if opts.dryRun {
		var fromSeeds, missing int64
		n := 0
		for _, c := range file.Chunks {
			switch {
			case seeds.Has(c.ID):
				fromSeeds += int64(c.Length)
			case !st.HasChunk(c.ID):
				missing += int64(c.Length)
				n++
			}
		}
		if n > 0 {
			return fail("the store %s lacks %s (%s) of %s; nothing was written: pull them first (satchel store pull URL %s)",
				st.Dir(), plural(n, "chunk"), humanBytes(missing), id, id)
		}
		fmt.Fprintf(s.stdout, "%s %s: %s from the file in place, %s from the store\n", verb, opts.dir,
			humanBytes(fromSeeds), humanBytes(file.Size-fromSeeds))
		return nil
	}
	stats, err := st.MaterializeFile(ctx, root, p, file, mode, -1, -1, seeds)
	if err != nil {
		return checkoutError(st, id, err)
	}
	fmt.Fprintf(s.stdout, "%s %s: %s from the file in place, %s from the store\n", verb, opts.dir,
		humanBytes(stats.FromSeeds), humanBytes(stats.FromStore))
	return nil
}

// hashFile returns the SHA-256 of the file p inside root.
func hashFile(root *fsroot.Root, p string) (store.ID, error) {
	f, err := root.Open(p)
	if err != nil {
		return store.ID{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return store.ID{}, fmt.Errorf("read %s: %w", root.HostPath(p), err)
	}
	return store.ID(h.Sum(nil)), nil
}
