package resource_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

// assertDir checks that p is a directory with exactly these permission bits and ids.
func (fx *fixture) assertDir(p string, perm uint32, uid, gid int) {
	fx.t.Helper()
	st := fx.lstat(p)
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		fx.t.Fatalf("%s: type %#o, want a directory", p, st.Mode&syscall.S_IFMT)
	}
	if st.Mode&0o7777 != perm {
		fx.t.Errorf("%s: mode %#o, want %#o", p, st.Mode&0o7777, perm)
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		fx.t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

func TestDirectoryCreate(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.contract(cat("directory", "www", map[string]any{"path": "/srv/www", "mode": "2750", "owner": "alice", "group": "web"}),
		"ensure: absent -> present", "parents: absent -> /srv")
	fx.assertDir("/srv/www", 0o2750, 1234, 2346)
	fx.assertDir("/srv", 0o755, 0, 0)
}

func TestDirectoryCreateDefaultMode(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.contract(cat("directory", "d", map[string]any{"path": "/d"}), "ensure: absent -> present")
	fx.assertDir("/d", 0o755, 0, 0)
}

func TestDirectoryMetadataChange(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.mkdir("/srv/www", 0o777)
	fx.write("/srv/www/index.html", "hi\n", 0o644)
	before := fx.lstat("/srv/www")
	fx.contract(cat("directory", "www", map[string]any{"path": "/srv/www", "mode": "0750", "owner": "bob", "group": "staff"}),
		"mode: 0777 -> 0750", "owner: root -> bob", "group: root -> staff")
	fx.assertDir("/srv/www", 0o750, 1235, 2345)
	if fx.lstat("/srv/www").Ino != before.Ino {
		t.Error("the directory was recreated for a metadata change")
	}
	fx.assertFile("/srv/www/index.html", "hi\n", 0o644, 0, 0)
}

func TestDirectoryExistingUnmanagedModeKept(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/d", 0o1777)
	fx.contract(cat("directory", "d", map[string]any{"path": "/d"}))
	fx.assertDir("/d", 0o1777, 0, 0)
}

func TestDirectoryPurge(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	target := filepath.Join(fx.outside, "target")
	writeHost(t, target, "outside\n", 0o644)
	writeHost(t, filepath.Join(fx.outside, "dir", "f"), "outside dir\n", 0o644)
	outsideBefore := snapshotDirs(t, fx.outside)

	fx.write("/etc/app/managed.conf", "keep\n", 0o644)
	fx.write("/etc/app/junk.conf", "junk\n", 0o600)
	fx.write("/etc/app/old/a", "A\n", 0o644)
	fx.write("/etc/app/old/deeper/b", "B\n", 0o640)
	fx.write("/etc/app/sub/managed", "keep too\n", 0o644) // sub is kept: something below it is managed
	fx.write("/etc/app/sub/stray", "stray\n", 0o644)
	fx.write("/etc/app/conf.d/x.conf", "x\n", 0o644) // conf.d is managed itself: purged inside too
	fx.write("/etc/app/conf.d/y.conf", "y\n", 0o644)
	fx.symlink(target, "/etc/app/link-file")
	fx.symlink(filepath.Join(fx.outside, "dir"), "/etc/app/link-dir")
	fx.write("/etc/app/run/creates-marker", "", 0o644) // an exec's creates
	fx.write("/etc/other/untouched", "other\n", 0o644)
	fx.env.Managed = resource.NewPathSet([]string{"/etc/app", "/etc/app/managed.conf", "/etc/app/sub/managed",
		"/etc/app/conf.d", "/etc/app/conf.d/x.conf", "/etc/app/run/creates-marker"})

	fx.contract(cat("directory", "app", map[string]any{"path": "/etc/app", "purge": true}),
		"purge: /etc/app/conf.d/y.conf, /etc/app/junk.conf, /etc/app/link-dir, /etc/app/link-file, /etc/app/old, /etc/app/sub/stray -> (removed)")

	for _, p := range []string{"/etc/app/conf.d/y.conf", "/etc/app/junk.conf", "/etc/app/link-dir", "/etc/app/link-file", "/etc/app/old", "/etc/app/sub/stray"} {
		if fx.exists(p) {
			t.Errorf("%s was not purged", p)
		}
	}
	fx.assertFile("/etc/app/managed.conf", "keep\n", 0o644, 0, 0)
	fx.assertFile("/etc/app/sub/managed", "keep too\n", 0o644, 0, 0)
	fx.assertFile("/etc/app/conf.d/x.conf", "x\n", 0o644, 0, 0)
	fx.assertFile("/etc/app/run/creates-marker", "", 0o644, 0, 0)
	fx.assertFile("/etc/other/untouched", "other\n", 0o644, 0, 0)
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "purging links to outside")

	fx.assertBackup("/etc/app/junk.conf", "junk\n", 0o600, 0, 0, "purged by directory.app")
	fx.assertBackup("/etc/app/old/a", "A\n", 0o644, 0, 0, "purged by directory.app")
	fx.assertBackup("/etc/app/old/deeper/b", "B\n", 0o640, 0, 0, "purged by directory.app")
	fx.assertBackup("/etc/app/sub/stray", "stray\n", 0o644, 0, 0, "purged by directory.app")
	fx.assertBackup("/etc/app/conf.d/y.conf", "y\n", 0o644, 0, 0, "purged by directory.app")
	if n := len(fx.backups("")); n != 5 {
		t.Errorf("%d backups, want 5 (links have no content of their own)", n)
	}
}

func TestDirectoryPurgeWithModeChange(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/d", 0o700)
	fx.write("/d/x", "x", 0o644)
	fx.env.Managed = resource.NewPathSet([]string{"/d"})
	fx.contract(cat("directory", "d", map[string]any{"path": "/d", "purge": true, "mode": "0755"}),
		"mode: 0700 -> 0755", "purge: /d/x -> (removed)")
	fx.assertDir("/d", 0o755, 0, 0)
	if fx.exists("/d/x") {
		t.Error("/d/x was not purged")
	}
}

func TestDirectoryPurgeNothingToDo(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/d/keep", "k", 0o644)
	fx.env.Managed = resource.NewPathSet([]string{"/d", "/d/keep"})
	fx.contract(cat("directory", "d", map[string]any{"path": "/d", "purge": true}))
}

func TestDirectoryWithoutPurgeKeepsUnmanaged(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/d/stray", "s", 0o644)
	fx.contract(cat("directory", "d", map[string]any{"path": "/d"}))
	fx.assertFile("/d/stray", "s", 0o644, 0, 0)
}

func TestDirectoryAbsentEmpty(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/var/cache/app", 0o755)
	fx.contract(cat("directory", "cache", map[string]any{"path": "/var/cache/app", "ensure": "absent"}), "ensure: present -> absent")
	if fx.exists("/var/cache/app") {
		t.Error("the directory is still there")
	}
	fx.assertDir("/var/cache", 0o755, 0, 0)
}

func TestDirectoryAbsentMissing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.contract(cat("directory", "cache", map[string]any{"path": "/var/cache/app", "ensure": "absent"}))
}

func TestDirectoryAbsentNonEmpty(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/var/cache/app/a", "A\n", 0o644)
	fx.write("/var/cache/app/sub/b", "B\n", 0o600)
	target := filepath.Join(fx.outside, "t")
	writeHost(t, target, "outside\n", 0o644)
	fx.symlink(target, "/var/cache/app/link")
	fx.wantErr(cat("directory", "cache", map[string]any{"path": "/var/cache/app", "ensure": "absent"}),
		fx.host("/var/cache/app")+" is not empty (3 entries); set force = true to remove it with its content")

	fx.contract(cat("directory", "cache", map[string]any{"path": "/var/cache/app", "ensure": "absent", "force": true}), "ensure: present -> absent")
	if fx.exists("/var/cache/app") {
		t.Error("the directory is still there")
	}
	if got := readHost(t, target); got != "outside\n" {
		t.Errorf("a link's target was changed: %q", got)
	}
	fx.assertBackup("/var/cache/app/a", "A\n", 0o644, 0, 0, "removed by directory.cache")
	fx.assertBackup("/var/cache/app/sub/b", "B\n", 0o600, 0, 0, "removed by directory.cache")
}

func TestDirectoryAbsentOnFileIsError(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/f", "x", 0o644)
	fx.symlink("/f", "/l")
	fx.wantErr(cat("directory", "f", map[string]any{"path": "/f", "ensure": "absent", "force": true}),
		fx.host("/f")+" is a file, not a directory; manage it with a file resource")
	fx.wantErr(cat("directory", "l", map[string]any{"path": "/l", "ensure": "absent"}),
		fx.host("/l")+" is a symlink, not a directory; manage it with a symlink resource")
}

func TestDirectoryFileAtPath(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/srv/data", "was a file\n", 0o640)
	fx.wantErr(cat("directory", "data", map[string]any{"path": "/srv/data"}),
		fx.host("/srv/data")+" is a file, not a directory; set force = true to replace it")

	fx.contract(cat("directory", "data", map[string]any{"path": "/srv/data", "force": true, "mode": "0700"}), "type: file -> directory")
	fx.assertDir("/srv/data", 0o700, 0, 0)
	fx.assertBackup("/srv/data", "was a file\n", 0o640, 0, 0, "replaced by directory.data")
}

func TestDirectorySymlinkAtPath(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	writeHost(t, filepath.Join(fx.outside, "f"), "outside\n", 0o644)
	outsideBefore := snapshotDirs(t, fx.outside)
	fx.symlink(fx.outside, "/srv/data")
	fx.wantErr(cat("directory", "data", map[string]any{"path": "/srv/data"}),
		fx.host("/srv/data")+" is a symlink, not a directory; set force = true to replace it")

	fx.contract(cat("directory", "data", map[string]any{"path": "/srv/data", "force": true}), "type: symlink -> directory")
	fx.assertDir("/srv/data", 0o755, 0, 0)
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "replacing a link to an outside directory")
	fx.assertNoBackups()
}

func TestDirectoryUnknownOwner(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.wantErr(cat("directory", "d", map[string]any{"path": "/d", "owner": "mallory"}),
		`user "mallory" does not exist in `+fx.host("/etc/passwd")+`; create it first (and require that resource)`)
}

func TestDirectoryConfinedToRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	outsideBefore := snapshotDirs(t, fx.outside)
	fx.symlink(fx.outside, "/var")
	fx.mkdir(fx.outside, 0o755)
	fx.contract(cat("directory", "d", map[string]any{"path": "/var/lib/app", "mode": "0700"}),
		"ensure: absent -> present", "parents: absent -> /var/lib")
	fx.assertDir(fx.outside+"/lib/app", 0o700, 0, 0)
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "a directory created under the root")
}

func TestPathSet(t *testing.T) {
	t.Parallel()
	s := resource.NewPathSet([]string{"/etc/app/conf.d/x", "/srv"})
	for p, want := range map[string][2]bool{ // Has, HasBelow
		"/":                 {false, true},
		"/etc":              {false, true},
		"/etc/app":          {false, true},
		"/etc/app/conf.d":   {false, true},
		"/etc/app/conf.d/x": {true, false},
		"/etc/ap":           {false, false},
		"/srv":              {true, false},
		"/srv/www":          {false, false},
		"/var":              {false, false},
	} {
		if got := [2]bool{s.Has(p), s.HasBelow(p)}; got != want {
			t.Errorf("Has, HasBelow(%q) = %v, want %v", p, got, want)
		}
	}
	var none *resource.PathSet
	if none.Has("/") || none.HasBelow("/") {
		t.Error("a nil PathSet has members")
	}
	if empty := resource.NewPathSet(nil); empty.HasBelow("/") {
		t.Error("an empty PathSet has something below /")
	}
}
