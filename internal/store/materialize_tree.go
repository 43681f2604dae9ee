package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// MaterializeTree converges a directory to a tree of the store, in three steps.
//
// Plan: the directory is compared with the tree, entry by entry (one fstatat per entry).
// A regular file whose stat matches its entry in the index (the stat cache, see Index) is
// known without reading it; another one of the right size is hashed and compared with its
// file object. The plan lists the files, directories and symlinks to create or replace,
// the modes and owners to fix, and, with Purge, the entries the tree does not have. Then
// everything needed is checked before anything is written: every chunk must be in the
// store or in a seed (the previous version of the files being replaced, known from the
// index or from opts.Previous, or any seed given) or the error lists what is missing; the
// target's file systems must have room for every new file beside its old version, or the
// error says how much is needed and free.
//
// Stage: every new or changed file is written beside its old version under a temporary
// name, verified (each chunk, and the whole file against its SHA-256), with its owner and
// mode; a new directory is built complete under a temporary name, with everything below
// it. The data is flushed to disk (syncfs(2) once per file system rather than an fsync per
// file). Until here nothing in the tree has changed: an error, a missing or corrupt chunk,
// or a cancelled ctx removes what was staged and leaves the tree as it was.
//
// Commit: the staged entries are renamed into place (an entry of another kind in the way,
// such as an old directory, is swapped out in one step and removed last), modes and owners
// fixed, purged entries removed, and the directories flushed. Commit is not interrupted by ctx: it is renames, and a tree half old and half
// new would serve pages whose links point to what is not there yet. Even a crash in it
// leaves every file either its old or its new version.
//
// With DryRun the plan is made, checked and reported, and nothing is written.
type TreeOptions struct {
	// Purge removes the entries below the directory that the tree does not have (and that
	// Keep does not claim). Without it they are left alone. The store's own directory, and
	// any directory holding it, is never removed (nor replaced by a tree's entry).
	Purge bool
	// Keep, if set, reports for a path (inside the root) not in the tree whether something
	// else manages it (itself: leave it) or something below it (below: leave those).
	Keep func(p string) (itself, below bool)
	// Previous is the tree materialized here before (zero: not known). Its file objects
	// describe the files now in place, which are then seeds for the new ones.
	Previous ID
	// Seeds are more local files to take chunks from (may be nil).
	Seeds *Seeds
	// UID and GID, if set, are the owner and group of every entry; otherwise new entries
	// get the process's and replaced files keep their old ones.
	UID, GID *int
	// DryRun makes the plan and reports it, writing nothing.
	DryRun bool
	// VerifyContent hashes every file, whatever the index says.
	VerifyContent bool
	// Index is the directory's stat cache (may be nil). It is updated; the caller saves it.
	Index *Index
	// MaxPaths is how many changed paths TreeStats.Paths lists (0: 20).
	MaxPaths int
	// Progress, if not nil, is called after each file written, with the files and bytes
	// written so far and in all.
	Progress func(TreeProgress)
}

// TreeProgress is how far MaterializeTree has got writing files.
type TreeProgress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
}

// TreeStats counts what MaterializeTree changed (or, with DryRun, would change).
type TreeStats struct {
	Created bool // the directory itself did not exist

	FilesAdded, FilesUpdated, FilesRemoved int
	DirsAdded, DirsRemoved                 int
	LinksAdded, LinksUpdated, LinksRemoved int
	AttrsChanged                           int // entries whose mode or owner only were fixed
	TempRemoved                            int // temporary files left by an interrupted run

	FilesUnchanged int
	BytesUnchanged int64 // in the files left as they were
	// Bytes written, with where they came from (Stats.FromSeeds and FromStore). With DryRun,
	// FromSeeds and FromStore are estimates: a seed is verified only when read.
	Stats

	Hashed      int   // files hashed to compare them (not found in the index)
	HashedBytes int64 // their bytes

	Paths     []PathChange // the first MaxPaths changes, in path order
	MorePaths int          // changes not listed
}

// Changed reports whether anything differs.
func (t *TreeStats) Changed() bool {
	return t.Created || t.FilesAdded+t.FilesUpdated+t.FilesRemoved+t.DirsAdded+t.DirsRemoved+
		t.LinksAdded+t.LinksUpdated+t.LinksRemoved+t.AttrsChanged+t.TempRemoved > 0
}

// PathChange is one changed path: Op is '+' (added), '~' (changed) or '-' (removed); Path
// is relative to the tree's directory ("." for itself), with a trailing / for a directory.
type PathChange struct {
	Op     byte
	Path   string
	Detail string // "(12 kB -> 14 kB)", "(mode 0644 -> 0755)", "(12 files, 3 directories)"…
}

func (c PathChange) String() string {
	if c.Detail == "" {
		return string(c.Op) + " " + c.Path
	}
	return string(c.Op) + " " + c.Path + " " + c.Detail
}

type opKind uint8

const (
	opMkdir  opKind = iota // a directory to create
	opFile                 // a file to write
	opLink                 // a symlink to make
	opAttrs                // an entry whose mode or owner to fix
	opRemove               // an entry to remove (with what is below it)
)

// entryKind is the kind of what is on disk.
type entryKind uint8

const (
	kindNone entryKind = iota
	kindFile
	kindDir
	kindLink
	kindOther
)

func statKind(st *unix.Stat_t) entryKind {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return kindFile
	case unix.S_IFDIR:
		return kindDir
	case unix.S_IFLNK:
		return kindLink
	}
	return kindOther
}

func (k entryKind) String() string {
	return [...]string{"nothing", "file", "directory", "symlink", "special file"}[k]
}

// op is one step of a plan.
type op struct {
	kind   opKind
	rel    string      // relative to the tree's directory; "" is the directory itself
	mode   fs.FileMode // files and directories
	target string      // symlinks
	file   *FileObject // files
	fileID ID

	old      entryKind // what is there now
	oldSize  int64
	oldUID   int
	oldGID   int
	seed     ID     // a file object describing the old file (zero: not known)
	top      int    // the staged directory this entry is built in (an op index), or -1
	at       string // opRemove: the path inside the root, when not below the tree's directory
	setOwner bool   // opAttrs: owner or group differ
	hasMode  bool   // opAttrs: mode is the wanted mode (not for symlinks)
	detail   string
	temp     string // where it is staged, inside the root
	staged   bool   // the staged entry exists (to clean up or commit)

	// For a staged directory: what is below it, for the listing.
	subFiles, subDirs, subLinks int
	subBytes                    int64
}

// treeRun is one MaterializeTree.
type treeRun struct {
	s    *Store
	ctx  context.Context
	root *fsroot.Root
	dir  string // the tree's directory, inside the root
	id   ID
	opts *TreeOptions
	st   TreeStats
	ops  []*op
	need map[uint64]*devNeed
	wr   *writer

	// guard holds the store's directory (true) and its ancestors (false), which no run
	// may remove or replace, whatever the tree or Purge say; nor is a tree ever
	// materialized into the store.
	guard map[devIno]bool
	aside []string // old entries the commit swapped out of the tree, to remove last

	below *fsroot.Root // the tree's directory as a root, once planned (materialize_below.go)
}

// devIno identifies a directory.
type devIno struct{ dev, ino uint64 }

func statID(st *unix.Stat_t) devIno { return devIno{uint64(st.Dev), st.Ino} }

// Bounds of a plan. A tree object names subtrees by ID, so a few crafted objects can name
// the same subtree under many names, level after level: a tree of 30 objects can expand to
// a billion paths. The plan refuses to hold more than maxPlanOps changes (about 400 bytes
// of memory each), or a path longer than maxTreePath (PATH_MAX, with room for a temporary
// name): such a path could not be written anyway.
var maxPlanOps = 1 << 22

const maxTreePath = unix.PathMax - 64

// storeGuard returns the store's directory and each of its ancestors, by device and inode,
// both as named and with symlinks resolved.
func (s *Store) storeGuard() map[devIno]bool {
	g := map[devIno]bool{}
	add := func(p string) {
		for first := true; ; first = false {
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil {
				if id := statID(&st); !g[id] {
					g[id] = first
				}
			}
			parent := filepath.Dir(p)
			if parent == p {
				return
			}
			p = parent
		}
	}
	add(s.dir)
	if real, err := filepath.EvalSymlinks(s.dir); err == nil && real != s.dir {
		add(real)
	}
	return g
}

// guarded reports whether st is the store's directory (itself) or one of its ancestors
// (below).
func (r *treeRun) guarded(st *unix.Stat_t) (itself, below bool) {
	if statKind(st) != kindDir {
		return false, false
	}
	store, ok := r.guard[statID(st)]
	if !ok {
		return false, false
	}
	return store, !store
}

// insideStore reports whether the directory d is the store's directory or below it.
func (r *treeRun) insideStore(d *os.File) (bool, error) {
	var storeID devIno
	found := false
	for id, itself := range r.guard {
		if itself {
			storeID, found = id, true
		}
	}
	if !found {
		return false, nil
	}
	fd, err := unix.Dup(int(d.Fd()))
	if err != nil {
		return false, err
	}
	for range 4096 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			_ = unix.Close(fd)
			return false, err
		}
		if statID(&st) == storeID {
			_ = unix.Close(fd)
			return true, nil
		}
		up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return false, err
		}
		var pst unix.Stat_t
		if err := unix.Fstat(up, &pst); err != nil {
			_ = unix.Close(up)
			return false, err
		}
		if statID(&pst) == statID(&st) { // the file system's root
			_ = unix.Close(up)
			return false, nil
		}
		fd = up
	}
	_ = unix.Close(fd)
	return false, nil
}

// devNeed is the space new entries need on one file system.
type devNeed struct {
	dir  string // a directory on it, inside the root
	need spaceNeed
}

// MaterializeTree converges the directory dir (inside root) to the tree treeID: see
// TreeOptions for how. It returns what it changed (or would change, with DryRun); after an
// error the counts say what was planned, and the tree is as it was unless the error came
// during the commit (then every entry is either old or new).
func (s *Store) MaterializeTree(ctx context.Context, root *fsroot.Root, dir string, treeID ID, opts TreeOptions) (TreeStats, error) {
	if opts.MaxPaths == 0 {
		opts.MaxPaths = 20
	}
	release, err := s.Hold() // the chunks planned from must stay until they are written
	if err != nil {
		return TreeStats{}, err
	}
	defer release()
	r := &treeRun{s: s, ctx: ctx, root: root, dir: dir, id: treeID, opts: &opts, need: map[uint64]*devNeed{},
		guard: s.storeGuard()}
	seeds := NewSeeds(root)
	defer func() { _ = seeds.Close() }() // read-only files: nothing to lose
	r.wr = s.newWriter(opts.Seeds, seeds)
	opts.Index.begin()
	if err := r.plan(); err != nil {
		return r.st, err
	}
	if err := r.prepareSeeds(seeds); err != nil {
		return r.st, err
	}
	if err := r.checkSpace(); err != nil {
		return r.st, err
	}
	r.list()
	if opts.DryRun {
		return r.st, nil
	}
	r.st.Stats = Stats{}
	if err := r.containBelow(); err != nil {
		return r.st, err
	}
	if r.below != nil {
		defer r.below.Close()
	}
	if err := r.stage(); err != nil {
		r.cleanup()
		return r.st, err
	}
	if err := r.commit(); err != nil {
		r.cleanup()
		return r.st, err
	}
	opts.Index.finish(treeID)
	return r.st, nil
}

// abs returns where rel lies inside the root.
func (r *treeRun) abs(rel string) string {
	if rel == "" {
		return r.dir
	}
	return path.Join(r.dir, rel)
}

// host names rel for messages.
func (r *treeRun) host(rel string) string { return r.root.HostPath(r.abs(rel)) }

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (r *treeRun) add(o *op) int {
	r.ops = append(r.ops, o)
	return len(r.ops) - 1
}

// addNeed counts a new entry's space on device dev, whose directory dir (inside the root)
// can be asked.
func (r *treeRun) addNeed(dev uint64, dir string, f func(*spaceNeed)) {
	n := r.need[dev]
	if n == nil {
		n = &devNeed{dir: dir}
		r.need[dev] = n
	}
	f(&n.need)
}

// plan compares the directory with the tree and fills r.ops and r.st.
func (r *treeRun) plan() error {
	t, err := r.s.Tree(r.id)
	if err != nil {
		return fmt.Errorf("tree %s for %s: %w", r.id, r.root.HostPath(r.dir), err)
	}
	var prev *TreeObject
	if !r.opts.Previous.IsZero() && r.opts.Previous != r.id {
		prev, _ = r.s.Tree(r.opts.Previous) // only for seeds: gone is fine
	}
	var st unix.Stat_t
	err = r.lstat(r.dir, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		r.st.Created = true
		// The space is checked on the nearest directory that exists: with DryRun, the
		// parents may be missing too (the caller creates them before a real run).
		parent := path.Dir(r.dir)
		var pst unix.Stat_t
		for {
			err := r.statDir(parent, &pst)
			if err == nil {
				break
			}
			if !r.opts.DryRun || !errors.Is(err, fs.ErrNotExist) || parent == "/" {
				return err
			}
			parent = path.Dir(parent)
		}
		if pd, err := r.openFile(parent, os.O_RDONLY|unix.O_DIRECTORY, 0); err == nil {
			in, err := r.insideStore(pd)
			_ = pd.Close()
			if err != nil || in {
				if err == nil {
					err = fmt.Errorf("it is inside the content store %s", r.s.dir)
				}
				return fmt.Errorf("materialize into %s: %w", r.root.HostPath(r.dir), err)
			}
		}
		if parent == path.Dir(r.dir) {
			r.leftovers(parent, path.Base(r.dir))
		}
		top := r.add(&op{kind: opMkdir, rel: "", mode: 0o755, top: -1})
		r.addNeed(uint64(pst.Dev), parent, (*spaceNeed).addDir)
		return r.planDir("", t, prev, nil, top, uint64(pst.Dev), parent)
	case err != nil:
		return fmt.Errorf("inspect %s: %w", r.root.HostPath(r.dir), err)
	case statKind(&st) != kindDir:
		return fmt.Errorf("%s is a %s, not a directory", r.root.HostPath(r.dir), statKind(&st))
	}
	r.attrs("", &st, nil)
	d, err := r.openFile(r.dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", r.root.HostPath(r.dir), err)
	}
	defer d.Close()
	if in, err := r.insideStore(d); err != nil || in {
		if err == nil {
			err = fmt.Errorf("it is inside the content store %s", r.s.dir)
		}
		return fmt.Errorf("materialize into %s: %w", r.root.HostPath(r.dir), err)
	}
	return r.planDir("", t, prev, d, -1, uint64(st.Dev), r.dir)
}

// leftovers plans removing, from dir (inside the root), what an interrupted run left of a
// directory base it was creating.
func (r *treeRun) leftovers(dir, base string) {
	names, err := r.root.ReadDir(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if pid, ok := tempName(n); ok && pid != os.Getpid() && strings.HasPrefix(n, "."+tempBase(base)+".satchel-") {
			r.add(&op{kind: opRemove, at: path.Join(dir, n), old: kindOther, top: -1,
				detail: "(temporary file of an interrupted run)"})
			r.st.TempRemoved++
		}
	}
}

// opPath is where o's entry is, inside the root.
func (r *treeRun) opPath(o *op) string {
	if o.at != "" {
		return o.at
	}
	return r.abs(o.rel)
}

// lstat describes p (inside the root) without following a final symlink, ctime included.
func (r *treeRun) lstat(p string, st *unix.Stat_t) error {
	if p == "/" {
		return r.statDir(p, st)
	}
	d, err := r.openFile(path.Dir(p), os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	defer d.Close()
	return unix.Fstatat(int(d.Fd()), path.Base(p), st, unix.AT_SYMLINK_NOFOLLOW)
}

// statDir describes the directory p (inside the root).
func (r *treeRun) statDir(p string, st *unix.Stat_t) error {
	d, err := r.openFile(p, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", r.root.HostPath(p), err)
	}
	defer d.Close()
	return unix.Fstat(int(d.Fd()), st)
}

// openAt opens name in the directory d, never following a symlink.
func openAt(d *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(d.Fd()), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(d.Name(), name)), nil
}

// maxTempBase is how much of an entry's name its temporary names keep: ".NAME.satchel-PID-
// SEQ" must fit in NAME_MAX (255 bytes) whatever the name, which may be 255 bytes itself.
const maxTempBase = 200

// tempBase returns the part of name that its temporary names keep: at most maxTempBase
// bytes, cut at a UTF-8 character boundary.
func tempBase(name string) string {
	if len(name) <= maxTempBase {
		return name
	}
	n := maxTempBase
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return name[:n]
}

// tempName matches the temporary names that fsroot.CreateTemp and this file give:
// ".NAME.satchel-PID-SEQ". It returns the PID.
func tempName(name string) (pid int, ok bool) {
	if !strings.HasPrefix(name, ".") {
		return 0, false
	}
	i := strings.LastIndex(name, ".satchel-")
	if i <= 0 {
		return 0, false
	}
	p, seq, ok := strings.Cut(name[i+len(".satchel-"):], "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		return 0, false
	}
	if _, err := strconv.ParseUint(strings.TrimPrefix(seq, "t"), 10, 64); err != nil {
		return 0, false
	}
	return n, true
}

// planDir plans the directory rel for tree t (prev: its previous version, or nil). d is
// the directory, open, or nil if it is new (then top is the staged directory it is built
// in). dev is the device it is (or will be) on, and devDir a directory there.
func (r *treeRun) planDir(rel string, t, prev *TreeObject, d *os.File, top int, dev uint64, devDir string) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	var onDisk []string
	if d != nil {
		names, err := d.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.host(rel), err)
		}
		slices.Sort(names)
		onDisk = names
		devDir = r.abs(rel)
	}
	// The tree's entries and what is on disk, merged in name order.
	i, j := 0, 0
	for i < len(t.Entries) || j < len(onDisk) {
		if i < len(t.Entries) && (j >= len(onDisk) || t.Entries[i].Name <= onDisk[j]) {
			if j < len(onDisk) && t.Entries[i].Name == onDisk[j] {
				j++
			}
			if err := r.planEntry(rel, t.Entries[i], prev, d, top, dev, devDir); err != nil {
				return err
			}
			i++
			continue
		}
		// On disk, not in the tree.
		name := onDisk[j]
		j++
		erel := joinRel(rel, name)
		if pid, ok := tempName(name); ok && pid != os.Getpid() {
			r.add(&op{kind: opRemove, rel: erel, old: kindFile, top: -1, detail: "(temporary file of an interrupted run)"})
			r.st.TempRemoved++
			continue
		}
		if r.opts.Purge {
			if err := r.planPurge(erel, name, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// planEntry plans the tree's entry e of the directory rel.
func (r *treeRun) planEntry(rel string, e Entry, prev *TreeObject, d *os.File, top int, dev uint64, devDir string) error {
	erel := joinRel(rel, e.Name)
	if err := CheckName(e.Name); err != nil { // DecodeTree refused it already; twice is cheap
		return fmt.Errorf("tree %s: %s: %w", r.id, r.host(rel), err)
	}
	if len(r.abs(erel)) > maxTreePath {
		return fmt.Errorf("tree %s: %s/%s…: path longer than %d bytes", r.id, r.host(rel)[:min(len(r.host(rel)), 64)], e.Name, maxTreePath)
	}
	if len(r.ops) >= maxPlanOps {
		return fmt.Errorf("tree %s: more than %d entries to create or change in %s; refusing a tree that large", r.id, maxPlanOps, r.root.HostPath(r.dir))
	}
	var st unix.Stat_t
	old := kindNone
	if d != nil {
		err := unix.Fstatat(int(d.Fd()), e.Name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil:
			old = statKind(&st)
		case !errors.Is(err, unix.ENOENT):
			return fmt.Errorf("inspect %s: %w", r.host(erel), err)
		}
	}
	if itself, below := r.guarded(&st); itself || below && e.Kind != KindDir {
		return fmt.Errorf("tree %s: %s is the content store %s or holds it: a tree may not replace it or write into it",
			r.id, r.host(erel), r.s.dir)
	}
	var pe *Entry
	if prev != nil {
		if k, ok := slices.BinarySearchFunc(prev.Entries, e.Name, func(x Entry, n string) int { return strings.Compare(x.Name, n) }); ok {
			pe = &prev.Entries[k]
		}
	}
	switch e.Kind {
	case KindFile:
		return r.planFile(erel, e, &st, old, d, top, dev, devDir, pe)
	case KindDir:
		return r.planSubdir(erel, e, &st, old, d, top, dev, devDir, pe)
	case KindSymlink:
		return r.planLink(erel, e, &st, old, d, top, dev, devDir)
	}
	return fmt.Errorf("tree %s: %s: unknown kind %q", r.id, r.host(erel), byte(e.Kind))
}

// planPurge plans the removal of name (rel) in the directory d, which the tree lacks,
// unless Keep claims it.
func (r *treeRun) planPurge(rel, name string, d *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("inspect %s: %w", r.host(rel), err)
	}
	kind := statKind(&st)
	if store, holds := r.guarded(&st); store || holds {
		return nil // the content store, and what holds it (its state directory), stay whole
	}
	if r.opts.Keep != nil {
		itself, below := r.opts.Keep(r.abs(rel))
		if itself {
			return nil
		}
		if below && kind == kindDir {
			sub, err := openAt(d, name, os.O_RDONLY|unix.O_DIRECTORY)
			if err != nil {
				return fmt.Errorf("open %s: %w", r.host(rel), err)
			}
			defer sub.Close()
			names, err := sub.Readdirnames(-1)
			if err != nil {
				return fmt.Errorf("read %s: %w", r.host(rel), err)
			}
			slices.Sort(names)
			for _, n := range names {
				if err := r.planPurge(joinRel(rel, n), n, sub); err != nil {
					return err
				}
			}
			return nil
		}
	}
	o := &op{kind: opRemove, rel: rel, old: kind, top: -1}
	switch kind {
	case kindDir:
		files, dirs, links, err := countBelow(d, name)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", r.host(rel), err)
		}
		r.st.FilesRemoved += files
		r.st.DirsRemoved += dirs + 1
		r.st.LinksRemoved += links
		o.subFiles, o.subDirs, o.subLinks = files, dirs, links
	case kindLink:
		r.st.LinksRemoved++
	default:
		r.st.FilesRemoved++
	}
	r.add(o)
	return nil
}

// countBelow counts the entries below the directory name in d.
func countBelow(d *os.File, name string) (files, dirs, links int, err error) {
	sub, err := openAt(d, name, os.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return 0, 0, 0, err
	}
	defer sub.Close()
	names, err := sub.Readdirnames(-1)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(int(sub.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		switch statKind(&st) {
		case kindDir:
			f, dd, l, err := countBelow(sub, n)
			if err != nil {
				return 0, 0, 0, err
			}
			files, dirs, links = files+f, dirs+dd+1, links+l
		case kindLink:
			links++
		default:
			files++
		}
	}
	return files, dirs, links, nil
}

// attrs plans fixing the mode (want, if not nil) and owner of an existing entry.
func (r *treeRun) attrs(rel string, st *unix.Stat_t, want *fs.FileMode) {
	o := &op{kind: opAttrs, rel: rel, old: statKind(st), top: -1}
	var details []string
	if want != nil {
		o.hasMode, o.mode = true, *want
		if fs.FileMode(st.Mode&0o7777) != modeBits(*want) {
			details = append(details, fmt.Sprintf("mode %04o -> %04o", st.Mode&0o7777, uint32(modeBits(*want))))
		}
	}
	if (r.opts.UID != nil && int(st.Uid) != *r.opts.UID) || (r.opts.GID != nil && int(st.Gid) != *r.opts.GID) {
		o.setOwner = true
		details = append(details, fmt.Sprintf("owner %d:%d -> %s", st.Uid, st.Gid, r.ownerString()))
	}
	if len(details) > 0 {
		o.detail = "(" + strings.Join(details, ", ") + ")"
		r.add(o)
		r.st.AttrsChanged++
	}
}

// modeBits returns the mode as st_mode's low 12 bits, in an fs.FileMode for comparison.
func modeBits(m fs.FileMode) fs.FileMode { return fs.FileMode(ModeBits(m)) }

func (r *treeRun) ownerString() string {
	u, g := "-", "-"
	if r.opts.UID != nil {
		u = strconv.Itoa(*r.opts.UID)
	}
	if r.opts.GID != nil {
		g = strconv.Itoa(*r.opts.GID)
	}
	return u + ":" + g
}

// countNew adds a new entry to the staged directory top's counts.
func (r *treeRun) countNew(top int, files, dirs, links int, bytes int64) {
	if top < 0 {
		return
	}
	t := r.ops[top]
	t.subFiles += files
	t.subDirs += dirs
	t.subLinks += links
	t.subBytes += bytes
}

// removedOld counts what a replaced entry removes.
func (r *treeRun) removedOld(old entryKind, d *os.File, name string) error {
	switch old {
	case kindDir:
		files, dirs, links, err := countBelow(d, name)
		if err != nil {
			return err
		}
		r.st.FilesRemoved += files
		r.st.DirsRemoved += dirs + 1
		r.st.LinksRemoved += links
	case kindLink:
		r.st.LinksRemoved++
	case kindFile, kindOther:
		r.st.FilesRemoved++
	}
	return nil
}

func (r *treeRun) planFile(rel string, e Entry, st *unix.Stat_t, old entryKind, d *os.File, top int, dev uint64, devDir string, pe *Entry) error {
	mode := FileMode(e.Mode)
	if old == kindFile {
		same, f, seed, err := r.compare(rel, e, st, d)
		if err != nil {
			return err
		}
		if same {
			r.st.FilesUnchanged++
			r.st.BytesUnchanged += st.Size
			r.attrs(rel, st, &mode)
			return nil
		}
		if seed.IsZero() && pe != nil && pe.Kind == KindFile {
			seed = pe.ID
		}
		r.st.FilesUpdated++
		r.addNeed(dev, devDir, func(n *spaceNeed) { n.addFile(f.Size) })
		r.add(&op{kind: opFile, rel: rel, mode: mode, file: f, fileID: e.ID, old: kindFile, oldSize: st.Size,
			oldUID: int(st.Uid), oldGID: int(st.Gid), seed: seed, top: top,
			detail: fmt.Sprintf("(%s -> %s)", HumanBytes(st.Size), HumanBytes(f.Size))})
		return nil
	}
	f, err := r.s.File(e.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", r.host(rel), err)
	}
	o := &op{kind: opFile, rel: rel, mode: mode, file: f, fileID: e.ID, old: old, top: top, oldUID: -1, oldGID: -1}
	if old != kindNone {
		if err := r.removedOld(old, d, path.Base(rel)); err != nil {
			return fmt.Errorf("inspect %s: %w", r.host(rel), err)
		}
		o.detail = fmt.Sprintf("(%s -> file)", old)
	} else {
		o.detail = "(" + HumanBytes(f.Size) + ")"
	}
	r.st.FilesAdded++
	r.countNew(top, 1, 0, 0, f.Size)
	r.addNeed(dev, devDir, func(n *spaceNeed) { n.addFile(f.Size) })
	r.add(o)
	return nil
}

// compare tells whether the regular file rel (stat st, in the directory d) has the content
// of the tree's entry e. When it has not, it returns the entry's file object, and the ID of
// a file object describing the file's current content, if known.
func (r *treeRun) compare(rel string, e Entry, st *unix.Stat_t, d *os.File) (same bool, f *FileObject, seed ID, err error) {
	ix := r.opts.Index
	if !r.opts.VerifyContent {
		if ent := ix.lookup(rel, st); ent != nil {
			ix.seen(rel)
			if ent.object == e.ID {
				return true, nil, ID{}, nil
			}
			if f, err = r.s.File(e.ID); err != nil {
				return false, nil, ID{}, fmt.Errorf("%s: %w", r.host(rel), err)
			}
			if ent.sha == f.SHA256 && st.Size == f.Size {
				ix.record(rel, st, ent.sha, e.ID)
				return true, f, ID{}, nil
			}
			return false, f, ent.object, nil
		}
	}
	if f, err = r.s.File(e.ID); err != nil {
		return false, nil, ID{}, fmt.Errorf("%s: %w", r.host(rel), err)
	}
	if st.Size != f.Size {
		return false, f, ID{}, nil
	}
	file, err := openAt(d, path.Base(rel), os.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return false, nil, ID{}, fmt.Errorf("read %s: %w", r.host(rel), err)
	}
	defer file.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(file.Fd()), &fst); err != nil {
		return false, nil, ID{}, fmt.Errorf("read %s: %w", r.host(rel), err)
	}
	if statKind(&fst) != kindFile || fst.Ino != st.Ino {
		return false, nil, ID{}, fmt.Errorf("read %s: it changed while being compared; try again", r.host(rel))
	}
	sum, n, err := r.wr.hashFile(&ctxReader{ctx: r.ctx, r: file})
	if err != nil {
		return false, nil, ID{}, fmt.Errorf("read %s: %w", r.host(rel), err)
	}
	r.st.Hashed++
	r.st.HashedBytes += n
	ix.touch()
	if sum == f.SHA256 {
		ix.record(rel, &fst, sum, e.ID)
		return true, f, ID{}, nil
	}
	ix.record(rel, &fst, sum, ID{})
	return false, f, ID{}, nil
}

func (r *treeRun) planSubdir(rel string, e Entry, st *unix.Stat_t, old entryKind, d *os.File, top int, dev uint64, devDir string, pe *Entry) error {
	sub, err := r.s.Tree(e.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", r.host(rel), err)
	}
	mode := FileMode(e.Mode)
	if old == kindDir && top < 0 {
		var prevSub *TreeObject
		if pe != nil && pe.Kind == KindDir && pe.ID != e.ID {
			prevSub, _ = r.s.Tree(pe.ID) // only for seeds
		}
		r.attrs(rel, st, &mode)
		sd, err := openAt(d, e.Name, os.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("open %s: %w", r.host(rel), err)
		}
		defer sd.Close()
		return r.planDir(rel, sub, prevSub, sd, -1, uint64(st.Dev), devDir)
	}
	o := &op{kind: opMkdir, rel: rel, mode: mode, old: old, top: top}
	if old != kindNone {
		if err := r.removedOld(old, d, e.Name); err != nil {
			return fmt.Errorf("inspect %s: %w", r.host(rel), err)
		}
		o.detail = fmt.Sprintf("(%s -> directory)", old)
	}
	r.st.DirsAdded++
	r.countNew(top, 0, 1, 0, 0)
	r.addNeed(dev, devDir, (*spaceNeed).addDir)
	i := r.add(o)
	if top < 0 {
		top = i
	}
	return r.planDir(rel, sub, nil, nil, top, dev, devDir)
}

func (r *treeRun) planLink(rel string, e Entry, st *unix.Stat_t, old entryKind, d *os.File, top int, dev uint64, devDir string) error {
	if old == kindLink {
		target, err := readlinkAt(d, e.Name)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.host(rel), err)
		}
		if target == e.Target {
			r.attrs(rel, st, nil)
			return nil
		}
		r.st.LinksUpdated++
		r.addNeed(dev, devDir, func(n *spaceNeed) { n.addLink(e.Target) })
		r.add(&op{kind: opLink, rel: rel, target: e.Target, old: old, top: top,
			detail: fmt.Sprintf("(-> %q, was %q)", e.Target, target)})
		return nil
	}
	o := &op{kind: opLink, rel: rel, target: e.Target, old: old, top: top, detail: fmt.Sprintf("(-> %q)", e.Target)}
	if old != kindNone {
		if err := r.removedOld(old, d, e.Name); err != nil {
			return fmt.Errorf("inspect %s: %w", r.host(rel), err)
		}
		o.detail = fmt.Sprintf("(%s -> symlink to %q)", old, e.Target)
	}
	r.st.LinksAdded++
	r.countNew(top, 0, 0, 1, 0)
	r.addNeed(dev, devDir, func(n *spaceNeed) { n.addLink(e.Target) })
	r.add(o)
	return nil
}

func readlinkAt(d *os.File, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(int(d.Fd()), name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// prepareSeeds indexes the seeds the files to write can use, and fails if a chunk is in
// neither the store nor a seed.
func (r *treeRun) prepareSeeds(seeds *Seeds) error {
	var files []*op
	for _, o := range r.ops {
		if o.kind == opFile {
			files = append(files, o)
		}
	}
	if len(files) == 0 {
		return nil
	}
	// The previous version of each file being replaced, when a file object describes it.
	for _, o := range files {
		if o.old == kindFile && !o.seed.IsZero() {
			if f, err := r.s.File(o.seed); err == nil && f.Size == o.oldSize {
				seeds.AddFile(r.abs(o.rel), f)
			}
		}
	}
	inSeeds := func(id ID) bool { return r.opts.Seeds.Has(id) || seeds.Has(id) }
	missing := func() ([]ID, int64) {
		seen := map[ID]bool{}
		var all []ID
		var bytes int64
		for _, o := range files {
			m, b := r.s.missingChunks(o.file.Chunks, inSeeds, seen)
			all, bytes = append(all, m...), bytes+b
		}
		return all, bytes
	}
	miss, bytes := missing()
	if len(miss) > 0 {
		// The old versions no file object describes: chunk them.
		lacking := make(map[ID]bool, len(miss))
		for _, id := range miss {
			lacking[id] = true
		}
		for _, o := range files {
			if o.old != kindFile || !o.seed.IsZero() || !slices.ContainsFunc(o.file.Chunks, func(c ChunkRef) bool { return lacking[c.ID] }) {
				continue
			}
			if err := seeds.AddLocal(r.ctx, r.abs(o.rel)); err != nil && r.ctx.Err() != nil {
				return r.ctx.Err()
			}
		}
		miss, bytes = missing()
	}
	if len(miss) > 0 && !r.opts.Previous.IsZero() {
		// Files moved or copied: any file of the previous tree still in place.
		err := r.s.Walk(r.ctx, r.opts.Previous, func(p string, e Entry, f *FileObject) error {
			if f == nil {
				return nil
			}
			var st unix.Stat_t
			if r.lstat(r.abs(p), &st) == nil && statKind(&st) == kindFile && st.Size == f.Size {
				seeds.AddFile(r.abs(p), f)
			}
			return nil
		})
		if err != nil && r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		miss, bytes = missing()
	}
	// Where the bytes will come from (checked for real as they are read).
	for _, o := range files {
		for _, c := range o.file.Chunks {
			if inSeeds(c.ID) {
				r.st.FromSeeds += int64(c.Length)
				r.st.SeedChunks++
			} else {
				r.st.FromStore += int64(c.Length)
				r.st.StoreChunks++
			}
		}
		r.st.Bytes += o.file.Size
	}
	if len(miss) > 0 {
		r.st.Missing = miss
		return &MissingError{What: r.root.HostPath(r.dir), Chunks: miss, Bytes: bytes}
	}
	return nil
}

// checkSpace fails if a file system lacks room for what will be written to it.
func (r *treeRun) checkSpace() error {
	for _, n := range r.need {
		if err := checkSpace(r.root, n.dir, n.need); err != nil {
			return err
		}
	}
	return nil
}

// list fills the listing of changed paths.
func (r *treeRun) list() {
	for _, o := range r.ops {
		if o.top >= 0 {
			continue // inside a new directory, listed with it
		}
		c := PathChange{Path: o.rel, Detail: o.detail}
		switch {
		case o.at != "":
			c.Path = r.root.HostPath(o.at)
		case c.Path == "":
			c.Path = "."
		}
		switch o.kind {
		case opRemove:
			c.Op = '-'
			if o.old == kindDir {
				c.Path += "/"
				if c.Detail == "" {
					c.Detail = describeCounts(o.subFiles, o.subDirs, o.subLinks, -1)
				}
			}
		case opMkdir:
			c.Op = '+'
			if o.old != kindNone {
				c.Op = '~'
			}
			c.Path = strings.TrimSuffix(c.Path, "/") + "/"
			counts := describeCounts(o.subFiles, o.subDirs, o.subLinks, o.subBytes)
			if c.Detail == "" {
				c.Detail = counts
			} else if counts != "" {
				c.Detail = strings.TrimSuffix(c.Detail, ")") + ", " + strings.TrimPrefix(counts, "(")
			}
		case opAttrs:
			c.Op = '~'
			if o.old == kindDir {
				c.Path += "/"
			}
		default:
			c.Op = '+'
			if o.old != kindNone {
				c.Op = '~'
			}
		}
		if len(r.st.Paths) < r.opts.MaxPaths {
			r.st.Paths = append(r.st.Paths, c)
		} else {
			r.st.MorePaths++
		}
	}
}

// describeCounts renders "(12 files, 3 directories, 1 symlink, 4.2 MB)"; bytes < 0 is left
// out.
func describeCounts(files, dirs, links int, bytes int64) string {
	var parts []string
	plural := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, strconv.Itoa(n)+" "+many)
		}
	}
	plural(files, "file", "files")
	plural(dirs, "directory", "directories")
	plural(links, "symlink", "symlinks")
	if bytes > 0 {
		parts = append(parts, HumanBytes(bytes))
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// tempSeq numbers the temporary names made here (fsroot.CreateTemp numbers its own).
var tempSeq atomic.Uint64

// makeTemp creates a directory or symlink under a fresh temporary name beside p.
func (r *treeRun) makeTemp(p string, create func(tmp string) error) (string, error) {
	dir, base := path.Dir(p), tempBase(path.Base(p))
	for range 100 {
		tmp := path.Join(dir, fmt.Sprintf(".%s.satchel-%d-t%d", base, os.Getpid(), tempSeq.Add(1)))
		err := create(tmp)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, err
	}
	return "", fmt.Errorf("create a temporary name beside %s: too many collisions", r.root.HostPath(p))
}

// stagedPath is where o is built: in its staged directory, or beside its final place.
func (r *treeRun) stagedPath(o *op) string {
	t := r.ops[o.top]
	return path.Join(t.temp, strings.TrimPrefix(strings.TrimPrefix(o.rel, t.rel), "/"))
}

// owner returns the ids a new entry gets: the options', else those of the file it replaces
// (oldUID, oldGID), else -1 (the process's).
func (r *treeRun) owner(o *op) (uid, gid int) {
	uid, gid = -1, -1
	if o.kind == opFile && o.old == kindFile {
		uid, gid = o.oldUID, o.oldGID
	}
	if r.opts.UID != nil {
		uid = *r.opts.UID
	}
	if r.opts.GID != nil {
		gid = *r.opts.GID
	}
	return uid, gid
}

// stage writes every new entry under a temporary name, then flushes the data to disk.
func (r *treeRun) stage() error {
	var pr TreeProgress
	if r.opts.Progress != nil {
		for _, o := range r.ops {
			if o.kind == opFile {
				pr.TotalFiles++
				pr.TotalBytes += o.file.Size
			}
		}
	}
	for _, o := range r.ops {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.stageOne(o); err != nil {
			return err
		}
		if o.kind == opFile && r.opts.Progress != nil {
			pr.Files++
			pr.Bytes += o.file.Size
			r.opts.Progress(pr)
		}
	}
	// Directories get their final mode (and owner) once filled, deepest first.
	for i := len(r.ops) - 1; i >= 0; i-- {
		o := r.ops[i]
		if o.kind != opMkdir {
			continue
		}
		p := o.temp
		if o.top >= 0 {
			p = r.stagedPath(o)
		}
		uid, gid := r.owner(o)
		if uid >= 0 || gid >= 0 {
			if err := r.lchown(p, uid, gid); err != nil {
				return fmt.Errorf("create %s: %w", r.host(o.rel), err)
			}
		}
		if err := r.chmod(p, o.mode); err != nil {
			return fmt.Errorf("create %s: %w", r.host(o.rel), err)
		}
	}
	return r.sync()
}

func (r *treeRun) stageOne(o *op) error {
	final := r.abs(o.rel)
	name := r.root.HostPath(final)
	uid, gid := r.owner(o)
	switch o.kind {
	case opFile:
		var f *os.File
		var err error
		if o.top >= 0 {
			o2 := r.stagedPath(o)
			f, err = r.openFile(o2, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		} else {
			f, o.temp, err = r.createTemp(path.Dir(final), tempBase(path.Base(final)))
			o.staged = err == nil
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		err = r.wr.write(r.ctx, f, o.file, name)
		if err == nil {
			err = finishFile(f, o.mode, uid, gid, name)
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", name, cerr)
		}
		r.st.Stats.add(r.wr.stats)
		r.wr.stats = Stats{}
		return err
	case opMkdir:
		if o.top >= 0 {
			return r.mkdir(r.stagedPath(o), 0o700)
		}
		tmp, err := r.makeTemp(final, func(tmp string) error { return r.mkdir(tmp, 0o700) })
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		o.temp, o.staged = tmp, true
		return nil
	case opLink:
		p := ""
		if o.top >= 0 {
			p = r.stagedPath(o)
			if err := r.symlink(o.target, p); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		} else {
			tmp, err := r.makeTemp(final, func(tmp string) error { return r.symlink(o.target, tmp) })
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			o.temp, o.staged, p = tmp, true, tmp
		}
		if uid >= 0 || gid >= 0 {
			if err := r.lchown(p, uid, gid); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		}
	}
	return nil
}

// sync flushes what was staged: syncfs(2) on each file system written to, which is one
// call however many files, where an fsync per file costs a journal commit each.
func (r *treeRun) sync() error {
	for _, n := range r.need {
		d, err := r.openFile(n.dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("flush %s: %w", r.root.HostPath(n.dir), err)
		}
		err = unix.Syncfs(int(d.Fd()))
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("flush %s: %w", r.root.HostPath(n.dir), err)
		}
	}
	return nil
}

// cleanup removes what was staged and not committed.
func (r *treeRun) cleanup() {
	for _, o := range r.ops {
		if o.staged && o.temp != "" {
			_ = r.removeAll(o.temp)
			o.staged = false
		}
	}
}

// commit puts the staged entries in place, fixes modes and owners and removes what goes;
// last, the old directories that new entries replaced (also after an error: they are out
// of the tree already).
func (r *treeRun) commit() error {
	err := r.commitEntries()
	var errs []error
	for _, a := range r.aside {
		if rerr := r.removeAll(a); rerr != nil {
			errs = append(errs, fmt.Errorf("remove the replaced directory %s (the next run tries again): %w", r.root.HostPath(a), rerr))
		}
	}
	r.aside = nil
	return errors.Join(append([]error{err}, errs...)...)
}

func (r *treeRun) commitEntries() error {
	dirs := map[string]bool{}
	var written []*op
	for _, o := range r.ops {
		if o.top >= 0 {
			if o.kind == opFile {
				written = append(written, o)
			}
			continue
		}
		final := r.opPath(o)
		name := r.root.HostPath(final)
		dirs[path.Dir(final)] = true
		switch o.kind {
		case opFile, opMkdir, opLink:
			if o.old == kindDir || o.old != kindNone && o.kind == opMkdir {
				// rename(2) cannot put a file over a directory or a directory over a
				// file: the two are swapped, the old one removed once all is in place.
				old, err := r.swap(o.temp, final)
				if err != nil {
					return fmt.Errorf("put %s in place: %w", name, err)
				}
				if old != "" {
					r.aside = append(r.aside, old)
				}
			} else if err := r.rename(o.temp, final); err != nil {
				return fmt.Errorf("put %s in place: %w", name, err)
			}
			o.staged = false
			if o.kind == opFile {
				written = append(written, o)
			}
		case opAttrs:
			if err := r.fixAttrs(o, final); err != nil {
				return err
			}
		case opRemove:
			if err := r.removeAll(final); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
		}
	}
	for d := range dirs {
		if err := r.syncDir(d); err != nil {
			return fmt.Errorf("flush %s: %w", r.root.HostPath(d), err)
		}
	}
	r.recordWritten(written)
	return nil
}

// swap puts the staged entry tmp (beside final, in the same directory) in place of final,
// an entry of another kind, and returns where the old entry now is, to remove. Where the
// file system can, the two are exchanged in one step (renameat2 RENAME_EXCHANGE): a crash
// leaves one or the other in place, never nothing, and a removal that fails half-way
// leaves the old one whole. Elsewhere the old one is renamed aside first.
func (r *treeRun) swap(tmp, final string) (string, error) {
	d, err := r.openFile(path.Dir(final), os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", err
	}
	err = unix.Renameat2(int(d.Fd()), path.Base(tmp), int(d.Fd()), path.Base(final), unix.RENAME_EXCHANGE)
	_ = d.Close()
	switch {
	case err == nil:
		return tmp, nil
	case errors.Is(err, unix.ENOENT): // gone meanwhile: nothing to swap with
		return "", r.rename(tmp, final)
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP):
		return "", &os.LinkError{Op: "exchange", Old: tmp, New: final, Err: err}
	}
	aside, err := r.makeTemp(final, func(aside string) error {
		if _, err := r.lstatAt(aside); err == nil {
			return fs.ErrExist
		}
		return r.rename(final, aside)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return "", r.rename(tmp, final)
	}
	if err != nil {
		return "", err
	}
	if err := r.rename(tmp, final); err != nil {
		_ = r.rename(aside, final) // the old one back
		return "", err
	}
	return aside, nil
}

func (r *treeRun) fixAttrs(o *op, p string) error {
	name := r.root.HostPath(p)
	if o.setOwner {
		uid, gid := r.owner(o)
		if err := r.lchown(p, uid, gid); err != nil {
			return fmt.Errorf("set owner of %s: %w", name, err)
		}
	}
	if o.hasMode { // after chown, which may have cleared setuid bits
		if err := r.chmod(p, o.mode); err != nil {
			return fmt.Errorf("set mode of %s: %w", name, err)
		}
	}
	if o.old == kindFile {
		// The change moved the ctime: keep the index entry, with the new stat.
		var st unix.Stat_t
		if r.lstat(p, &st) == nil {
			r.opts.Index.restat(o.rel, &st)
		}
	}
	return nil
}

// recordWritten enters the files written in the index, with their stat as they are now.
func (r *treeRun) recordWritten(ops []*op) {
	if r.opts.Index == nil {
		return
	}
	var d *os.File
	dirName := ""
	defer func() {
		if d != nil {
			_ = d.Close()
		}
	}()
	for _, o := range ops {
		p := r.abs(o.rel)
		if dn := path.Dir(p); dn != dirName || d == nil {
			if d != nil {
				_ = d.Close()
				d = nil
			}
			dirName = dn
			var err error
			if d, err = r.openFile(dn, os.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
				continue
			}
		}
		var st unix.Stat_t
		if unix.Fstatat(int(d.Fd()), path.Base(p), &st, unix.AT_SYMLINK_NOFOLLOW) == nil && statKind(&st) == kindFile {
			r.opts.Index.record(o.rel, &st, o.file.SHA256, o.fileID)
		}
	}
}
