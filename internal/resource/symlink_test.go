package resource_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// assertLink checks that p is a symbolic link whose stored target is exactly target.
func (fx *fixture) assertLink(p, target string) {
	fx.t.Helper()
	got, err := os.Readlink(fx.host(p))
	if err != nil {
		fx.t.Fatalf("%s: %v, want a symlink to %s", p, err, target)
	}
	if got != target {
		fx.t.Errorf("%s -> %s, want -> %s", p, got, target)
	}
}

func TestSymlinkCreate(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc/nginx/sites-available", 0o755)
	fx.write("/etc/nginx/sites-available/site", "server {}\n", 0o644)
	fx.contract(cat("symlink", "site", map[string]any{"path": "/etc/nginx/sites-enabled/site", "target": "../sites-available/site"}),
		"ensure: absent -> present", "parents: absent -> /etc/nginx/sites-enabled")
	fx.assertLink("/etc/nginx/sites-enabled/site", "../sites-available/site")
	fx.assertNoTemp("/etc/nginx/sites-enabled")
	fx.assertFile("/etc/nginx/sites-available/site", "server {}\n", 0o644, 0, 0)
}

func TestSymlinkDanglingTargetStoredAsWritten(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.contract(cat("symlink", "run", map[string]any{"path": "/var/run", "target": "/run"}),
		"ensure: absent -> present", "parents: absent -> /var")
	fx.assertLink("/var/run", "/run")
}

func TestSymlinkRetarget(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.symlink("/opt/app-1.0", "/opt/app")
	fx.contract(cat("symlink", "app", map[string]any{"path": "/opt/app", "target": "/opt/app-2.0"}),
		"target: /opt/app-1.0 -> /opt/app-2.0")
	fx.assertLink("/opt/app", "/opt/app-2.0")
	fx.assertNoTemp("/opt")
	fx.assertNoBackups()
}

func TestSymlinkRetargetIsAtomic(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.symlink("old", "/l")
	before := fx.lstat("/l").Ino
	fx.run(cat("symlink", "l", map[string]any{"path": "/l", "target": "new"}), true)
	fx.assertLink("/l", "new")
	if fx.lstat("/l").Ino == before {
		t.Error("the link has its old inode: it was not replaced by a new link renamed over it")
	}
	fx.assertNoTemp("/")
}

func TestSymlinkReplacesFile(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/resolv.conf", "nameserver 10.0.0.1\n", 0o644)
	fx.contract(cat("symlink", "resolv", map[string]any{"path": "/etc/resolv.conf", "target": "/run/systemd/resolve/stub-resolv.conf"}),
		"type: file -> symlink")
	fx.assertLink("/etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf")
	fx.assertBackup("/etc/resolv.conf", "nameserver 10.0.0.1\n", 0o644, 0, 0, "replaced by symlink.resolv")
	fx.assertNoTemp("/etc")
}

func TestSymlinkDirectoryAtPath(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/opt/app/bin/tool", "#!/bin/sh\n", 0o755)
	fx.write("/opt/app/README", "read me\n", 0o644)
	fx.wantErr(cat("symlink", "app", map[string]any{"path": "/opt/app", "target": "/opt/app-2.0"}),
		fx.host("/opt/app")+" is a directory; set force = true to replace it with a symlink")

	fx.contract(cat("symlink", "app", map[string]any{"path": "/opt/app", "target": "/opt/app-2.0", "force": true}),
		"type: directory -> symlink")
	fx.assertLink("/opt/app", "/opt/app-2.0")
	fx.assertBackup("/opt/app/bin/tool", "#!/bin/sh\n", 0o755, 0, 0, "removed by symlink.app (force)")
	fx.assertBackup("/opt/app/README", "read me\n", 0o644, 0, 0, "removed by symlink.app (force)")
}

func TestSymlinkAbsent(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/real", "real\n", 0o644)
	fx.symlink("real", "/etc/link")
	fx.contract(cat("symlink", "link", map[string]any{"path": "/etc/link", "ensure": "absent"}), "ensure: present -> absent")
	if fx.exists("/etc/link") {
		t.Error("the link is still there")
	}
	fx.assertFile("/etc/real", "real\n", 0o644, 0, 0)
	fx.assertNoBackups()
}

func TestSymlinkAbsentMissing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.contract(cat("symlink", "link", map[string]any{"path": "/etc/link", "ensure": "absent"}))
}

func TestSymlinkAbsentOnOtherKindIsError(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/file", "x", 0o644)
	fx.mkdir("/etc/dir", 0o755)
	fx.wantErr(cat("symlink", "f", map[string]any{"path": "/etc/file", "ensure": "absent"}),
		fx.host("/etc/file")+" is a file, not a symlink; manage it with a file resource")
	fx.wantErr(cat("symlink", "d", map[string]any{"path": "/etc/dir", "ensure": "absent", "force": true}),
		fx.host("/etc/dir")+" is a directory, not a symlink; manage it with a directory resource")
}

func TestSymlinkNeverFollowsExistingLink(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// The link at the path points out of the root; retargeting it must not touch what it
	// points to, and must not create anything there.
	writeHost(t, filepath.Join(fx.outside, "f"), "sentinel\n", 0o644)
	outsideBefore := snapshotDirs(t, fx.outside)
	fx.symlink(filepath.Join(fx.outside, "f"), "/etc/l")
	fx.symlink(fx.outside, "/etc/d")
	fx.contract(cat("symlink", "l", map[string]any{"path": "/etc/l", "target": "/elsewhere"}),
		"target: "+filepath.Join(fx.outside, "f")+" -> /elsewhere")
	fx.contract(cat("symlink", "d", map[string]any{"path": "/etc/d", "target": "/elsewhere"}),
		"target: "+fx.outside+" -> /elsewhere")
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "retargeting links that point outside")
}

func TestSymlinkConfinedToRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	outsideBefore := snapshotDirs(t, fx.outside)
	fx.symlink(fx.outside, "/etc")
	fx.mkdir(fx.outside, 0o755)
	fx.contract(cat("symlink", "l", map[string]any{"path": "/etc/alternatives/editor", "target": "/usr/bin/vi"}),
		"ensure: absent -> present", "parents: absent -> /etc/alternatives")
	fx.assertLink(fx.outside+"/alternatives/editor", "/usr/bin/vi")
	if st := fx.lstat(fx.outside + "/alternatives"); st.Mode != syscall.S_IFDIR|0o755 {
		t.Errorf("parent mode %#o", st.Mode)
	}
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "a symlink created under the root")
}
