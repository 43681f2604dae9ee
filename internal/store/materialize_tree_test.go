package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// addNodes stores a tree made of nodes and returns its ID.
func addNodes(t testing.TB, s *Store, nodes map[string]node) ID {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, nodes)
	id, err := s.AddTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// v1Nodes and v2Nodes are two releases of a content library: v2 edits some files in place,
// adds, removes, renames and retypes others.
func v1Nodes() map[string]node {
	n := sampleTree()
	n["video.bin"] = node{content: randomBytes(20, 2_000_000), mode: 0o644}
	n["old-name.bin"] = node{content: randomBytes(21, 300_000), mode: 0o644}
	n["willbefile"] = node{dir: true, mode: 0o755}
	n["willbefile/y"] = node{content: []byte("y"), mode: 0o644}
	n["filewillbedir"] = node{content: []byte("a file"), mode: 0o644}
	return n
}

func v2Nodes() map[string]node {
	n := v1Nodes()
	n["video.bin"] = node{content: edited(n["video.bin"].content, 1_000_000, 200), mode: 0o644}
	n["text.md"] = node{content: append(slices.Clone(n["text.md"].content), "appended\n"...), mode: 0o644}
	n["sub/deeper/note.md"] = node{content: textBytes(99, 5000), mode: 0o640}
	delete(n, "hello.txt")
	n["new.txt"] = node{content: []byte("new\n"), mode: 0o644}
	n["script.sh"] = node{content: n["script.sh"].content, mode: 0o700}
	n["link"] = node{target: "text.md"}
	n["new-name.bin"] = n["old-name.bin"]
	delete(n, "old-name.bin")
	delete(n, "willbefile/y")
	n["willbefile"] = node{content: []byte("now a file"), mode: 0o644}
	n["filewillbedir"] = node{dir: true, mode: 0o755}
	n["filewillbedir/child"] = node{content: []byte("child"), mode: 0o644}
	n["newdir"] = node{dir: true, mode: 0o755}
	n["newdir/a"] = node{content: []byte("a"), mode: 0o644}
	n["newdir/b"] = node{dir: true, mode: 0o755}
	n["newdir/b/c"] = node{content: randomBytes(22, 100_000), mode: 0o644}
	return n
}

// fileObjects maps the paths of a tree's files to their objects.
func fileObjects(t testing.TB, s *Store, root ID) map[string]*FileObject {
	t.Helper()
	m := map[string]*FileObject{}
	if err := s.Walk(context.Background(), root, func(p string, e Entry, f *FileObject) error {
		if f != nil {
			m[p] = f
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// fullState describes the tree below dir as diskState does, with each entry's inode, owner
// and (but for directories) times: what "untouched" means.
func fullState(t testing.TB, dir string) map[string]string {
	t.Helper()
	st := diskState(t, dir)
	for p, line := range st {
		var s syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, p), &s); err != nil {
			t.Fatal(err)
		}
		if s.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			// A directory's times move when a temporary file is made and removed in it.
			st[p] = fmt.Sprintf("%s ino=%d uid=%d gid=%d", line, s.Ino, s.Uid, s.Gid)
			continue
		}
		st[p] = fmt.Sprintf("%s ino=%d mtime=%d ctime=%d uid=%d gid=%d", line, s.Ino, s.Mtim.Nano(), s.Ctim.Nano(), s.Uid, s.Gid)
	}
	return st
}

func assertState(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	var diffs []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if got[p] != want[p] {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", p, got[p], want[p]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want nothing", p, got[p]))
		}
	}
	t.Errorf("%s:\n  %s", what, strings.Join(diffs, "\n  "))
}

func materialize(t testing.TB, s *Store, root ID, opts TreeOptions, target string) TreeStats {
	t.Helper()
	_, r := matRootAt(t, target)
	st, err := s.MaterializeTree(context.Background(), r, "/lib", root, opts)
	if err != nil {
		t.Fatalf("MaterializeTree: %v", err)
	}
	return st
}

// matRootAt opens dir as a root.
func matRootAt(t testing.TB, dir string) (string, *fsroot.Root) {
	t.Helper()
	r, err := fsroot.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return dir, r
}

func counts(st TreeStats) string {
	return fmt.Sprintf("files +%d ~%d -%d, dirs +%d -%d, links +%d ~%d -%d, attrs %d, temp %d",
		st.FilesAdded, st.FilesUpdated, st.FilesRemoved, st.DirsAdded, st.DirsRemoved,
		st.LinksAdded, st.LinksUpdated, st.LinksRemoved, st.AttrsChanged, st.TempRemoved)
}

func TestMaterializeTreeNew(t *testing.T) {
	s := newStore(t)
	id := addNodes(t, s, sampleTree())
	want := storeState(t, s, id)
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			dir := t.TempDir()
			if existing {
				if err := os.Mkdir(filepath.Join(dir, "lib"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ix := NewIndex(dir + "/lib")
			var last TreeProgress
			calls := 0
			st := materialize(t, s, id, TreeOptions{Index: ix, Progress: func(p TreeProgress) { last = p; calls++ }}, dir)
			assertState(t, "materialized", diskState(t, filepath.Join(dir, "lib")), want)
			if calls != 10 || last.Files != 10 || last.TotalFiles != 10 || last.Bytes != last.TotalBytes || last.Bytes != st.Bytes {
				t.Errorf("progress: %d calls, last %+v; wrote %d bytes", calls, last, st.Bytes)
			}
			if st.Created == existing || st.FilesAdded != 10 || st.DirsAdded != 5 || st.LinksAdded != 4 || st.Hashed != 0 {
				t.Errorf("created %v, %s, hashed %d", st.Created, counts(st), st.Hashed)
			}
			if st.StoreChunks == 0 || st.FromSeeds != 0 || st.Bytes != st.FromStore {
				t.Errorf("stats %+v", st.Stats)
			}
			if existing {
				if len(st.Paths) != 15 || st.MorePaths != 0 || st.Paths[0].String() != "+ abs-link (-> \"/etc/passwd\")" ||
					st.Paths[12].String() != "+ sub/ (2 files, 1 directory, 1 symlink, 5.0 kB)" {
					t.Errorf("paths %v, %d more", st.Paths, st.MorePaths)
				}
			} else if len(st.Paths) != 1 || st.Paths[0].String() != "+ ./ (10 files, 5 directories, 4 symlinks, 1.7 MB)" {
				t.Errorf("paths %v", st.Paths)
			}
			if tf := tempFiles(t, dir); len(tf) > 0 {
				t.Errorf("temporary files left: %v", tf)
			}
			// Again: nothing to do, and the index spares the hashing.
			before := fullState(t, filepath.Join(dir, "lib"))
			if err := ix.Save(filepath.Join(t.TempDir(), "index")); err != nil {
				t.Fatal(err)
			}
			ix.stamp = 1 << 62 // nothing racy
			st = materialize(t, s, id, TreeOptions{Index: ix}, dir)
			if st.Changed() || st.Hashed != 0 || st.FilesUnchanged != 10 {
				t.Errorf("second run: %s, hashed %d, unchanged %d: %v", counts(st), st.Hashed, st.FilesUnchanged, st.Paths)
			}
			assertState(t, "second run", fullState(t, filepath.Join(dir, "lib")), before)
			// Without the index, every file of the right size is hashed, and found right.
			st = materialize(t, s, id, TreeOptions{}, dir)
			if st.Changed() || st.Hashed != 10 {
				t.Errorf("third run: %s, hashed %d", counts(st), st.Hashed)
			}
		})
	}
}

// An old version becomes the new one: only the changed chunks come from the store, the
// rest from the files in place; then, with the store lacking every chunk of the old
// version, the seeds still make it.
func TestMaterializeTreeUpdate(t *testing.T) {
	for _, lacking := range []bool{false, true} {
		t.Run(fmt.Sprintf("store-lacks-v1=%v", lacking), func(t *testing.T) {
			s := newStore(t)
			v1 := addNodes(t, s, v1Nodes())
			v2 := addNodes(t, s, v2Nodes())
			dir := t.TempDir()
			ix := NewIndex(dir + "/lib")
			materialize(t, s, v1, TreeOptions{Index: ix}, dir)
			ix.stamp = 1 << 62

			f1, f2 := fileObjects(t, s, v1), fileObjects(t, s, v2)
			wantState := storeState(t, s, v2)
			var wantStore int64
			if lacking {
				var ids []ID
				for _, f := range f1 {
					ids = append(ids, chunkIDs(f)...)
				}
				removeChunks(t, s, ids)
				// Everything v1 has comes from the files in place, wherever it is.
				all := &FileObject{}
				for _, f := range f1 {
					all.Chunks = append(all.Chunks, f.Chunks...)
				}
				for _, p := range slices.Sorted(maps.Keys(f2)) {
					wantStore += newChunkBytes(f2[p], all)
					all.Chunks = append(all.Chunks, f2[p].Chunks...)
				}
			} else {
				// Seeds are the previous versions at the same paths; the rest is in the store.
				for p, f := range f2 {
					if old, ok := f1[p]; ok && old.SHA256 != f.SHA256 {
						wantStore += newChunkBytes(f, old)
					} else if !ok {
						wantStore += f.Size
					}
				}
			}
			opts := TreeOptions{Index: ix, Previous: v1, Purge: true}
			dry := opts
			dry.DryRun = true
			before := fullState(t, filepath.Join(dir, "lib"))
			plan := materialize(t, s, v2, dry, dir)
			assertState(t, "dry run", fullState(t, filepath.Join(dir, "lib")), before)

			st := materialize(t, s, v2, opts, dir)
			assertState(t, "v2", diskState(t, filepath.Join(dir, "lib")), wantState)
			want := "files +6 ~3 -4, dirs +3 -1, links +0 ~1 -0, attrs 1, temp 0"
			if got := counts(st); got != want {
				t.Errorf("counts %s, want %s", got, want)
			}
			if counts(plan) != counts(st) || !reflect.DeepEqual(plan.Paths, st.Paths) {
				t.Errorf("the dry run planned %s %v, the run did %s %v", counts(plan), plan.Paths, counts(st), st.Paths)
			}
			if st.FromStore != wantStore || st.FromSeeds != st.Bytes-wantStore {
				t.Errorf("%d bytes from the store, %d from seeds (of %d); want %d from the store", st.FromStore, st.FromSeeds, st.Bytes, wantStore)
			}
			if st.FromStore > 500_000 {
				t.Errorf("%d bytes from the store for a small update", st.FromStore)
			}
			if st.Hashed != 0 {
				t.Errorf("%d files hashed, with a fresh index", st.Hashed)
			}
			paths := []string{}
			for _, p := range st.Paths {
				paths = append(paths, p.String())
			}
			wantPaths := []string{
				"~ filewillbedir/ (file -> directory, 1 file, 5 bytes)",
				"- hello.txt",
				"~ link (-> \"text.md\", was \"hello.txt\")",
				"+ new-name.bin (300.0 kB)",
				"+ new.txt (4 bytes)",
				"+ newdir/ (2 files, 1 directory, 100.0 kB)",
				"- old-name.bin",
				"~ script.sh (mode 0755 -> 0700)",
				"~ sub/deeper/note.md (5.0 kB -> 5.0 kB)",
				"~ text.md (300.0 kB -> 300.0 kB)",
				"~ video.bin (2.0 MB -> 2.0 MB)",
				"~ willbefile (directory -> file)",
			}
			if !slices.Equal(paths, wantPaths) {
				t.Errorf("paths\n  %s\nwant\n  %s", strings.Join(paths, "\n  "), strings.Join(wantPaths, "\n  "))
			}
			if ix.Root != v2 {
				t.Errorf("index root %s, want v2", ix.Root)
			}
			// A second run changes nothing and hashes nothing.
			ix.stamp = 1 << 62
			again := materialize(t, s, v2, opts, dir)
			if again.Changed() || again.Hashed != 0 {
				t.Errorf("second run: %s, hashed %d", counts(again), again.Hashed)
			}
		})
	}
}

// Without the previous tree, a moved file's chunks that the store lacks are missing, and
// the error lists them before anything is written.
func TestMaterializeTreeMissing(t *testing.T) {
	s := newStore(t)
	v1 := addNodes(t, s, v1Nodes())
	v2 := addNodes(t, s, v2Nodes())
	dir := t.TempDir()
	materialize(t, s, v1, TreeOptions{}, dir)
	f1 := fileObjects(t, s, v1)
	wantState := storeState(t, s, v2)
	removeChunks(t, s, chunkIDs(f1["old-name.bin"]))
	before := fullState(t, filepath.Join(dir, "lib"))
	_, r := matRootAt(t, dir)
	st, err := s.MaterializeTree(context.Background(), r, "/lib", v2, TreeOptions{Purge: true})
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("error %v, want a MissingError", err)
	}
	if !slices.Equal(me.Chunks, chunkIDs(f1["old-name.bin"])) || !slices.Equal(st.Missing, me.Chunks) || me.Bytes != 300_000 {
		t.Errorf("missing %v (%d bytes), want the chunks of old-name.bin", me.Chunks, me.Bytes)
	}
	if !strings.Contains(err.Error(), "300.0 kB") {
		t.Errorf("error %q does not say how much is missing", err)
	}
	assertState(t, "after a failure", fullState(t, filepath.Join(dir, "lib")), before)
	// With the previous tree, the chunks are found in old-name.bin.
	if _, err := s.MaterializeTree(context.Background(), r, "/lib", v2, TreeOptions{Purge: true, Previous: v1}); err != nil {
		t.Fatal(err)
	}
	assertState(t, "v2", diskState(t, filepath.Join(dir, "lib")), wantState)
}

func TestMaterializeTreePurge(t *testing.T) {
	s := newStore(t)
	v1 := addNodes(t, s, v1Nodes())
	v2 := addNodes(t, s, v2Nodes())
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	materialize(t, s, v1, TreeOptions{}, dir)
	writeTree(t, lib, map[string]node{
		"local.txt":           {content: []byte("a teacher's file"), mode: 0o644},
		"localdir":            {dir: true, mode: 0o755},
		"localdir/x":          {content: []byte("x"), mode: 0o644},
		"sub/local-link":      {target: "nowhere"},
		"kept":                {dir: true, mode: 0o755},
		"kept/managed":        {content: []byte("managed elsewhere"), mode: 0o644},
		"kept/not-managed":    {content: []byte("not"), mode: 0o644},
		"managed-elsewhere":   {content: []byte("m"), mode: 0o644},
		".x.satchel-999999-1": {content: []byte("leftover"), mode: 0o600},
	})

	// Without purge: the tree's entries converge, the rest stays (hello.txt included: the
	// tree no longer has it, but nothing says it is not someone's).
	st := materialize(t, s, v2, TreeOptions{}, dir)
	got := diskState(t, lib)
	for _, p := range []string{"local.txt", "localdir/x", "sub/local-link", "kept/not-managed", "hello.txt", "old-name.bin"} {
		if got[p] == "" {
			t.Errorf("%s removed without purge", p)
		}
	}
	if _, ok := got[".x.satchel-999999-1"]; ok || st.TempRemoved != 1 {
		t.Errorf("leftover temporary file: removed %d", st.TempRemoved)
	}
	if st.FilesRemoved != 2 || st.DirsRemoved != 1 { // the entries retyped: willbefile/y, filewillbedir; willbefile/
		t.Errorf("without purge: %s", counts(st))
	}

	// With purge, except what Keep claims.
	keep := func(p string) (bool, bool) {
		return p == "/lib/kept/managed" || p == "/lib/managed-elsewhere", p == "/lib/kept"
	}
	st = materialize(t, s, v2, TreeOptions{Purge: true, Keep: keep}, dir)
	want := storeState(t, s, v2)
	want["kept"] = "d 0755"
	want["kept/managed"] = got["kept/managed"]
	want["managed-elsewhere"] = got["managed-elsewhere"]
	assertState(t, "purged", diskState(t, lib), want)
	if st.FilesRemoved != 5 || st.DirsRemoved != 1 || st.LinksRemoved != 1 {
		t.Errorf("purge: %s", counts(st))
	}
}

// Modes (setuid, setgid, sticky) and symlinks are as the tree says; an owner, when given,
// is every entry's, symlinks' and the directory's own included.
func TestMaterializeTreeOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	s := newStore(t)
	id := addNodes(t, s, sampleTree())
	dir := t.TempDir()
	uid, gid := 1234, 2345
	materialize(t, s, id, TreeOptions{UID: &uid, GID: &gid}, dir)
	lib := filepath.Join(dir, "lib")
	assertState(t, "materialized", diskState(t, lib), storeState(t, s, id))
	check := func() {
		t.Helper()
		_ = filepath.WalkDir(lib, func(p string, d fs.DirEntry, err error) error {
			var st syscall.Stat_t
			if err == nil && syscall.Lstat(p, &st) == nil && (int(st.Uid) != uid || int(st.Gid) != gid) {
				t.Errorf("%s: owner %d:%d", p, st.Uid, st.Gid)
			}
			return nil
		})
	}
	check()
	// The setuid bit survives the chown (which clears it).
	if info, _ := os.Lstat(filepath.Join(lib, "setuid")); info.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("setuid: mode %v", info.Mode())
	}
	if err := os.Lchown(filepath.Join(lib, "setuid"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(lib, "link"), 0, 0); err != nil {
		t.Fatal(err)
	}
	st := materialize(t, s, id, TreeOptions{UID: &uid, GID: &gid}, dir)
	if st.AttrsChanged != 2 || st.FilesUpdated != 0 {
		t.Errorf("after chown: %s", counts(st))
	}
	check()
	assertState(t, "fixed", diskState(t, lib), storeState(t, s, id))
}

// Entries of the wrong kind are replaced, and a symlink in the tree's way is never
// followed, whatever it points to.
func TestMaterializeTreeSymlinksNotFollowed(t *testing.T) {
	s := newStore(t)
	id := addNodes(t, s, map[string]node{
		"x":   {dir: true, mode: 0o755},
		"x/f": {content: []byte("in x"), mode: 0o644},
		"y":   {content: []byte("a file"), mode: 0o644},
		"z":   {dir: true, mode: 0o755},
	})
	dir := t.TempDir()
	writeTree(t, dir, map[string]node{
		"outside":       {dir: true, mode: 0o755},
		"outside/f":     {content: []byte("sentinel"), mode: 0o644},
		"outside/y":     {content: []byte("sentinel"), mode: 0o644},
		"lib":           {dir: true, mode: 0o755},
		"lib/x":         {target: "/outside"},
		"lib/y":         {target: "../outside/y"},
		"lib/z":         {target: "../outside"},
		"linkedlib":     {target: "outside"},
		"lib-as-a-file": {content: []byte("f"), mode: 0o644},
	})
	before := fullState(t, filepath.Join(dir, "outside"))
	materialize(t, s, id, TreeOptions{}, dir)
	assertState(t, "materialized", diskState(t, filepath.Join(dir, "lib")), storeState(t, s, id))
	assertState(t, "outside", fullState(t, filepath.Join(dir, "outside")), before)

	_, r := matRootAt(t, dir)
	for _, p := range []string{"/linkedlib", "/lib-as-a-file"} {
		_, err := s.MaterializeTree(context.Background(), r, p, id, TreeOptions{})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("%s: error %v, want 'not a directory'", p, err)
		}
	}
	assertState(t, "outside", fullState(t, filepath.Join(dir, "outside")), before)
}

// writeRawObject stores encoded as an object without PutObject's checks, as a hostile
// mirror could serve it.
func writeRawObject(t testing.TB, s *Store, encoded []byte) ID {
	t.Helper()
	id := Sum(encoded)
	p := s.ObjectPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, seal(s.enc.EncodeAll(encoded, nil)), 0o644); err != nil {
		t.Fatal(err)
	}
	return id
}

// A crafted tree object with a name that would leave the directory is refused, and
// nothing is written anywhere.
func TestMaterializeTreeHostile(t *testing.T) {
	s := newStore(t)
	_, file := addBytes(t, s, []byte("payload"))
	fileID := Sum(file.Encode())
	sub := addNodes(t, s, map[string]node{"passwd": {content: []byte("root::0:0::/:/bin/sh\n"), mode: 0o644}})
	for _, name := range []string{"..", ".", "a/b", "../../etc", "x\x00y", "", "line\nbreak"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			for _, e := range []Entry{
				{Name: name, Kind: KindDir, Mode: 0o755, ID: sub},
				{Name: name, Kind: KindFile, Mode: 0o644, ID: fileID},
				{Name: name, Kind: KindSymlink, Target: "/etc/passwd"},
			} {
				id := writeRawObject(t, s, (&TreeObject{Entries: []Entry{e}}).Encode())
				dir := t.TempDir()
				writeTree(t, dir, map[string]node{"lib": {dir: true, mode: 0o755}, "etc": {dir: true, mode: 0o755}})
				before := fullState(t, dir)
				_, r := matRootAt(t, dir)
				_, err := s.MaterializeTree(context.Background(), r, "/lib/inner", id, TreeOptions{Purge: true})
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Errorf("kind %c: error %v, want ErrMalformed", e.Kind, err)
				}
				assertState(t, "after a hostile tree", fullState(t, dir), before)
			}
		})
	}
}

// A corrupt chunk anywhere in the tree fails the run before anything in the tree changes.
func TestMaterializeTreeCorruptChunk(t *testing.T) {
	s := newStore(t)
	v1 := addNodes(t, s, v1Nodes())
	v2 := addNodes(t, s, v2Nodes())
	dir := t.TempDir()
	materialize(t, s, v1, TreeOptions{}, dir)
	f2 := fileObjects(t, s, v2)
	bad := f2["newdir/b/c"].Chunks[0].ID // written late: others are staged before it fails
	flip(t, s.ChunkPath(bad), 30)
	before := fullState(t, filepath.Join(dir, "lib"))
	_, r := matRootAt(t, dir)
	_, err := s.MaterializeTree(context.Background(), r, "/lib", v2, TreeOptions{Purge: true, Previous: v1})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bad.String()) || !strings.Contains(err.Error(), "newdir/b/c") {
		t.Fatalf("error %v, want ErrCorrupt naming the chunk and the file", err)
	}
	assertState(t, "after a corrupt chunk", fullState(t, filepath.Join(dir, "lib")), before)
	if tf := tempFiles(t, dir); len(tf) > 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}

func TestMaterializeTreeNoSpace(t *testing.T) {
	dir := smallFS(t, "8m")
	s := newStore(t)
	nodes := map[string]node{}
	for i := range 5 {
		nodes[fmt.Sprintf("d/f%d", i)] = node{content: randomBytes(uint64(30+i), 2<<20), mode: 0o644}
	}
	nodes["d"] = node{dir: true, mode: 0o755}
	id := addNodes(t, s, nodes)
	_, r := matRootAt(t, dir)
	_, err := s.MaterializeTree(context.Background(), r, "/lib", id, TreeOptions{})
	want := fmt.Sprintf("need 10.5 MB free in %s, have 8.4 MB", dir)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want ErrNoSpace saying %q", err, want)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("%d entries written", len(names))
	}
	// Many small files need inodes too.
	small := map[string]node{}
	for i := range 3000 {
		small[fmt.Sprintf("f%04d", i)] = node{content: []byte("same"), mode: 0o644} // one chunk, one object
	}
	id = addNodes(t, s, small)
	dir2 := smallFS(t, "64m,nr_inodes=1000")
	_, r2 := matRootAt(t, dir2)
	_, err = s.MaterializeTree(context.Background(), r2, "/lib", id, TreeOptions{})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "need 3001 free inodes") {
		t.Errorf("error %v, want one about inodes", err)
	}
}

// countdown is a context that is cancelled at the n-th look at Err: a run interrupted at
// a precise point.
type countdown struct {
	context.Context
	n atomic.Int64
}

func (c *countdown) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// An interrupted run leaves the tree as it was (everything new is staged beside it until
// the whole is ready), and the next run completes it.
func TestMaterializeTreeInterrupted(t *testing.T) {
	s := newStore(t)
	v1 := addNodes(t, s, v1Nodes())
	v2 := addNodes(t, s, v2Nodes())
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	materialize(t, s, v1, TreeOptions{}, dir)
	before := fullState(t, lib)
	_, r := matRootAt(t, dir)
	// Count the checks of a whole run, then interrupt at every one of them.
	probe := &countdown{Context: context.Background()}
	probe.n.Store(1 << 40)
	dry := TreeOptions{Purge: true, Previous: v1, DryRun: true}
	if _, err := s.MaterializeTree(probe, r, "/lib", v2, dry); err != nil {
		t.Fatal(err)
	}
	planChecks := 1<<40 - probe.n.Load()
	total := planChecks + 300 // the staging checks more: once per entry and per chunk
	interrupted := 0
	for n := int64(0); n < total; n++ {
		if n > planChecks+10 {
			n += 2 // every third point of the staging is enough
		}
		ctx := &countdown{Context: context.Background()}
		ctx.n.Store(n)
		_, err := s.MaterializeTree(ctx, r, "/lib", v2, TreeOptions{Purge: true, Previous: v1})
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("at %d: %v", n, err)
		}
		interrupted++
		assertState(t, fmt.Sprintf("interrupted at %d", n), fullState(t, lib), before)
		if tf := tempFiles(t, dir); len(tf) > 0 {
			t.Fatalf("interrupted at %d: temporary files left: %v", n, tf)
		}
	}
	if interrupted <= int(planChecks) {
		t.Errorf("only %d interruptions, %d in the plan", interrupted, planChecks)
	}
	materialize(t, s, v2, TreeOptions{Purge: true, Previous: v1}, dir)
	assertState(t, "v2", diskState(t, lib), storeState(t, s, v2))
}

// The index trusts a file only while its stat is unchanged and not racy; a damaged index
// is ignored.
func TestMaterializeTreeIndex(t *testing.T) {
	s := newStore(t)
	id := addNodes(t, s, sampleTree())
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	ixFile := filepath.Join(t.TempDir(), "index")
	ix, err := LoadIndex(ixFile, lib)
	if err != nil || ix.Len() != 0 {
		t.Fatalf("new index: %v, %d entries", err, ix.Len())
	}
	materialize(t, s, id, TreeOptions{Index: ix}, dir)
	if err := ix.Save(ixFile); err != nil {
		t.Fatal(err)
	}
	load := func() *Index {
		t.Helper()
		ix, err := LoadIndex(ixFile, lib)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	ix = load()
	if ix.Len() != 10 || ix.Root != id {
		t.Fatalf("index: %d entries, root %s", ix.Len(), ix.Root)
	}
	// Files written just before the index are racy: hashed once more, then settled.
	st := materialize(t, s, id, TreeOptions{Index: ix}, dir)
	if st.Changed() {
		t.Fatalf("changes: %v", st.Paths)
	}
	if st.Hashed > 0 {
		if err := ix.Save(ixFile); err != nil {
			t.Fatal(err)
		}
	}
	ix = load()
	if st = materialize(t, s, id, TreeOptions{Index: ix}, dir); st.Hashed != 0 || st.Changed() {
		t.Fatalf("settled index: hashed %d, %v", st.Hashed, st.Paths)
	}

	// Same size, same mtime, different content: the ctime gives it away.
	p := filepath.Join(lib, "text.md")
	info, _ := os.Stat(p)
	orig, _ := os.ReadFile(p)
	if err := os.WriteFile(p, edited(orig, 10, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	st = materialize(t, s, id, TreeOptions{Index: ix, DryRun: true}, dir)
	if st.FilesUpdated != 1 || st.Hashed != 1 {
		t.Errorf("an edited file: %s, hashed %d", counts(st), st.Hashed)
	}
	// verify = content hashes everything.
	st = materialize(t, s, id, TreeOptions{Index: ix, DryRun: true, VerifyContent: true}, dir)
	if st.FilesUpdated != 1 || st.Hashed != 10 {
		t.Errorf("verify content: %s, hashed %d", counts(st), st.Hashed)
	}
	materialize(t, s, id, TreeOptions{Index: ix}, dir)
	assertState(t, "repaired", diskState(t, lib), storeState(t, s, id))

	// A damaged or foreign index is a warning, and an empty index.
	if err := ix.Save(ixFile); err != nil {
		t.Fatal(err)
	}
	flip(t, ixFile, 40)
	if ix, err := LoadIndex(ixFile, lib); err == nil || ix.Len() != 0 || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged index: %v, %d entries", err, ix.Len())
	}
	ix.dirty = true
	if err := ix.Save(ixFile); err != nil {
		t.Fatal(err)
	}
	if ix, err := LoadIndex(ixFile, "/elsewhere"); err == nil || ix.Len() != 0 || !strings.Contains(err.Error(), "written for") {
		t.Errorf("foreign index: %v, %d entries", err, ix.Len())
	}
}
