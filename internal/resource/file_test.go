package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

func TestFileCreate(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc", 0o755)
	noop, _ := fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "hello\nworld\n", "mode": "0640"}),
		"ensure: absent -> present")
	wantDiff := "--- /etc/motd (current)\n+++ /etc/motd (desired)\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
	fx.assertFile("/etc/motd", "hello\nworld\n", 0o640, 0, 0)
	fx.assertNoTemp("/etc")
	fx.assertNoBackups()
}

func TestFileCreateDefaultModeIgnoresUmask(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc", 0o755)
	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": ""}), "ensure: absent -> present")
	fx.assertFile("/etc/motd", "", 0o644, 0, 0)
}

func TestFileCreateSpecialModeBits(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.contract(cat("file", "tool", map[string]any{"path": "/usr/bin/tool", "content": "#!/bin/sh\n", "mode": "4750", "owner": "alice", "group": "staff"}),
		"ensure: absent -> present", "parents: absent -> /usr, /usr/bin")
	// chown clears setuid: the bits must survive because the mode is set after the owner.
	fx.assertFile("/usr/bin/tool", "#!/bin/sh\n", 0o4750, 1234, 2345)
}

func TestFileContentChange(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/app.conf", "a\nb\nc\n", 0o600)
	fx.chown("/etc/app.conf", 1234, 2345)
	oldIno := fx.lstat("/etc/app.conf").Ino
	noop, _ := fx.contract(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "content": "a\nB\nc\n"}),
		"content: "+describe("a\nb\nc\n")+" -> "+describe("a\nB\nc\n"))
	wantDiff := "--- /etc/app.conf (current)\n+++ /etc/app.conf (desired)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
	// Unmanaged mode and owner are kept from the file replaced.
	fx.assertFile("/etc/app.conf", "a\nB\nc\n", 0o600, 1234, 2345)
	if fx.lstat("/etc/app.conf").Ino == oldIno {
		t.Error("the content was rewritten in place; want a new file renamed over the old one")
	}
	fx.assertBackup("/etc/app.conf", "a\nb\nc\n", 0o600, 1234, 2345, "replaced by file.conf")
}

func TestFileContentAndModeChange(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.write("/etc/app.conf", "old\n", 0o644)
	fx.contract(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "content": "new\n", "mode": "0600", "owner": "bob", "group": "web"}),
		"content: "+describe("old\n")+" -> "+describe("new\n"), "mode: 0644 -> 0600", "owner: root -> bob", "group: root -> web")
	fx.assertFile("/etc/app.conf", "new\n", 0o600, 1235, 2346)
	fx.assertBackup("/etc/app.conf", "old\n", 0o644, 0, 0, "replaced by file.conf")
}

func TestFileModeOwnerGroupOnlyKeepsInode(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.write("/etc/app.conf", "same\n", 0o644)
	before := fx.lstat("/etc/app.conf")
	noop, _ := fx.contract(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "content": "same\n", "mode": "0600", "owner": "alice", "group": "staff"}),
		"mode: 0644 -> 0600", "owner: root -> alice", "group: root -> staff")
	if noop.Diff != "" {
		t.Errorf("diff %q for a metadata-only change", noop.Diff)
	}
	fx.assertFile("/etc/app.conf", "same\n", 0o600, 1234, 2345)
	after := fx.lstat("/etc/app.conf")
	if after.Ino != before.Ino || after.Mtim != before.Mtim {
		t.Errorf("inode %d -> %d, mtime %v -> %v: the file was rewritten for a metadata change", before.Ino, after.Ino, before.Mtim, after.Mtim)
	}
	fx.assertNoBackups()
}

func TestFileModeOnlyKeepsSetuidAfterChown(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.write("/bin/tool", "x", 0o4755)
	// Only the owner differs, but chown(2) clears setuid: the mode must be put back.
	fx.contract(cat("file", "tool", map[string]any{"path": "/bin/tool", "content": "x", "mode": "4755", "owner": "alice"}),
		"owner: root -> alice")
	fx.assertFile("/bin/tool", "x", 0o4755, 1234, 0)
}

func TestFileNumericOwnerWithoutPasswd(t *testing.T) {
	t.Parallel()
	fx := newFixture(t) // no /etc/passwd in the root: numbers still work, names are numbers
	fx.write("/f", "x", 0o644)
	fx.contract(cat("file", "f", map[string]any{"path": "/f", "content": "x", "owner": "4321", "group": "4322"}),
		"owner: 0 -> 4321", "group: 0 -> 4322")
	fx.assertFile("/f", "x", 0o644, 4321, 4322)
}

func TestFileOwnerResolvedInsideRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// The root's passwd gives "root" the id 777, unlike any host: the root's file is used.
	fx.write("/etc/passwd", "root:x:777:0::/root:/bin/sh\n", 0o644)
	fx.write("/etc/group", "root:x:778:\n", 0o644)
	fx.contract(cat("file", "f", map[string]any{"path": "/f", "content": "x", "owner": "root", "group": "root"}),
		"ensure: absent -> present")
	fx.assertFile("/f", "x", 0o644, 777, 778)
}

func TestFileUnknownOwnerOrGroup(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.write("/etc/app.conf", "old\n", 0o644)
	fx.wantErr(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "content": "new\n", "owner": "nosuch"}),
		`user "nosuch" does not exist in `+fx.host("/etc/passwd")+`; create it first (and require that resource)`)
	fx.wantErr(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "content": "new\n", "group": "nogroup"}),
		`group "nogroup" does not exist in `+fx.host("/etc/group")+`; create it first (and require that resource)`)
	fx.wantErr(cat("file", "new", map[string]any{"path": "/etc/new.conf", "content": "new\n", "owner": "nosuch"}),
		`user "nosuch" does not exist in `+fx.host("/etc/passwd")+`; create it first (and require that resource)`)
	if fx.exists("/etc/new.conf") {
		t.Error("a file was created despite the unknown owner")
	}
}

func TestFileUnchanged(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/motd", "hello\n", 0o644)
	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "hello\n", "mode": "0644", "owner": "0", "group": "0"}))
	fx.assertNoBackups()
}

func TestFileAbsent(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/old.conf", "bye\n", 0o640)
	fx.chown("/etc/old.conf", 1234, 2345)
	fx.contract(cat("file", "old", map[string]any{"path": "/etc/old.conf", "ensure": "absent"}), "ensure: present -> absent")
	if fx.exists("/etc/old.conf") {
		t.Error("the file is still there")
	}
	fx.assertBackup("/etc/old.conf", "bye\n", 0o640, 1234, 2345, "removed by file.old")
}

func TestFileAbsentWithoutBackup(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/old.conf", "bye\n", 0o640)
	fx.contract(cat("file", "old", map[string]any{"path": "/etc/old.conf", "ensure": "absent", "backup": false}), "ensure: present -> absent")
	if fx.exists("/etc/old.conf") {
		t.Error("the file is still there")
	}
	fx.assertNoBackups()
}

func TestFileAbsentMissing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.contract(cat("file", "old", map[string]any{"path": "/etc/old.conf", "ensure": "absent"}))
}

func TestFileAbsentRemovesSymlinkNotTarget(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	target := filepath.Join(fx.outside, "target")
	writeHost(t, target, "keep me\n", 0o644)
	fx.write("/etc/real", "inside\n", 0o644)
	fx.symlink(target, "/etc/link-out")
	fx.symlink("real", "/etc/link-in")
	fx.contract(cat("file", "out", map[string]any{"path": "/etc/link-out", "ensure": "absent"}), "ensure: present -> absent")
	fx.contract(cat("file", "in", map[string]any{"path": "/etc/link-in", "ensure": "absent"}), "ensure: present -> absent")
	if fx.exists("/etc/link-out") || fx.exists("/etc/link-in") {
		t.Error("a link is still there")
	}
	if got := readHost(t, target); got != "keep me\n" {
		t.Errorf("the outside target was changed: %q", got)
	}
	fx.assertFile("/etc/real", "inside\n", 0o644, 0, 0)
	fx.assertNoBackups() // a link has no content to keep
}

func TestFileAbsentDirectoryIsError(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc/conf.d", 0o755)
	fx.wantErr(cat("file", "d", map[string]any{"path": "/etc/conf.d", "ensure": "absent"}),
		fx.host("/etc/conf.d")+" is a directory, not a file; manage it with a directory resource")
	fx.wantErr(cat("file", "d", map[string]any{"path": "/etc/conf.d", "ensure": "absent", "force": true}),
		fx.host("/etc/conf.d")+" is a directory, not a file; manage it with a directory resource")
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	content := "line 1\nline 2\n"
	ref := fx.source("app/app.conf", content)
	noop, _ := fx.contract(cat("file", "conf", map[string]any{"path": "/etc/app.conf", "source": ref, "mode": "0600"}),
		"ensure: absent -> present", "parents: absent -> /etc")
	wantDiff := "--- /etc/app.conf (current)\n+++ /etc/app.conf (desired)\n@@ -0,0 +1,2 @@\n+line 1\n+line 2\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
	fx.assertFile("/etc/app.conf", content, 0o600, 0, 0)
	fx.assertNoTemp("/etc")
}

func TestFileSourceBinary(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	content := strings.Repeat("\x00\x01\xfe\xff binary", 1000)
	ref := fx.source("blob.bin", content)
	size := strconv.Itoa(len(content))
	fx.write("/srv/blob.bin", "old text\n", 0o644)
	noop, _ := fx.contract(cat("file", "blob", map[string]any{"path": "/srv/blob.bin", "source": ref}),
		"content: "+describe("old text\n")+" -> "+describe(content))
	want := "binary content differs: 9 bytes (sha256 " + sha256Hex("old text\n")[:12] + ") -> " + size + " bytes (sha256 " + sha256Hex(content)[:12] + ")\n"
	if noop.Diff != want {
		t.Errorf("diff %q, want %q", noop.Diff, want)
	}
	fx.assertFile("/srv/blob.bin", content, 0o644, 0, 0)
	fx.assertBackup("/srv/blob.bin", "old text\n", 0o644, 0, 0, "replaced by file.blob")
}

func TestFileSourceSameSizeDifferentContent(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ref := fx.source("motd", "bbbb\n")
	fx.write("/etc/motd", "aaaa\n", 0o644)
	noop, _ := fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "source": ref}),
		"content: "+describe("aaaa\n")+" -> "+describe("bbbb\n"))
	// The diff must be against the current content, not against an empty file.
	wantDiff := "--- /etc/motd (current)\n+++ /etc/motd (desired)\n@@ -1 +1 @@\n-aaaa\n+bbbb\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
	fx.assertFile("/etc/motd", "bbbb\n", 0o644, 0, 0)
}

func TestFileLargeCurrentFileDiffIsSummary(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	big := strings.Repeat("0123456789abcdef\n", 20000) // 340000 bytes, beyond the diff limit
	fx.write("/var/big", big, 0o644)
	noop, _ := fx.contract(cat("file", "big", map[string]any{"path": "/var/big", "content": "small\n"}),
		"content: "+describe(big)+" -> "+describe("small\n"))
	// Not a diff from an empty file (which would claim the file is new).
	want := "content differs: 340000 bytes -> 6 bytes (sha256 " + sha256Hex("small\n")[:12] + ")\n"
	if noop.Diff != want {
		t.Errorf("diff %q, want %q", noop.Diff, want)
	}
	fx.assertFile("/var/big", "small\n", 0o644, 0, 0)
}

func TestFileSourceChangedAfterCatalog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, now, wantErr string
	}{
		{"size", "tampered, longer\n", "source files/motd is 17 bytes, the catalog expects 6: it changed after the catalog was made"},
		{"hash", "HELLO\n", "source files/motd has sha256 " + sha256Hex("HELLO\n")[:12] + ", the catalog expects " + sha256Hex("hello\n")[:12] + ": it changed after the catalog was made"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			ref := fx.source("motd", "hello\n")
			fx.source("motd", tc.now) // the repository moved on after the catalog was made
			fx.write("/etc/motd", "old\n", 0o644)
			fx.write("/etc/new/.keep", "", 0o644)
			old := fx.lstat("/etc/motd")

			_, err := fx.runErr(cat("file", "motd", map[string]any{"path": "/etc/motd", "source": ref}), true)
			if want := "write " + fx.host("/etc/motd") + ": " + tc.wantErr; err.Error() != want {
				t.Errorf("error\n  %s\nwant\n  %s", err, want)
			}
			fx.assertFile("/etc/motd", "old\n", 0o644, 0, 0)
			if now := fx.lstat("/etc/motd"); now.Ino != old.Ino || now.Mtim != old.Mtim {
				t.Error("the target was replaced")
			}
			fx.assertNoTemp("/etc")

			// Created from a bad source: nothing is created.
			_, err = fx.runErr(cat("file", "new", map[string]any{"path": "/etc/new/motd", "source": ref}), true)
			if want := "write " + fx.host("/etc/new/motd") + ": " + tc.wantErr; err.Error() != want {
				t.Errorf("error\n  %s\nwant\n  %s", err, want)
			}
			if fx.exists("/etc/new/motd") {
				t.Error("a file was created from a source that does not verify")
			}
			fx.assertNoTemp("/etc/new")

			// A directory that force would replace stays as it was too.
			fx.write("/etc/dir/inner", "inner\n", 0o644)
			dirBefore := snapshotDirs(t, fx.host("/etc/dir"))
			_, err = fx.runErr(cat("file", "dir", map[string]any{"path": "/etc/dir", "source": ref, "force": true}), true)
			if want := "write " + fx.host("/etc/dir") + ": " + tc.wantErr; err.Error() != want {
				t.Errorf("error\n  %s\nwant\n  %s", err, want)
			}
			assertSameSnapshot(t, dirBefore, snapshotDirs(t, fx.host("/etc/dir")), "a forced replacement from a bad source")
			fx.assertNoTemp("/etc")
		})
	}
}

func TestFileSourceMissingFromRepository(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ref := sourceRef("nothere", "x\n")
	fx.write("/etc/motd", "old\n", 0o644)
	_, err := fx.runErr(cat("file", "motd", map[string]any{"path": "/etc/motd", "source": ref}), true)
	if !isNotExist(err) || !strings.Contains(err.Error(), "open source files/nothere") {
		t.Errorf("error %v, want one naming the missing source", err)
	}
	fx.assertFile("/etc/motd", "old\n", 0o644, 0, 0)
	fx.assertNoTemp("/etc")

	// A target that already has the pinned content needs no source at all.
	fx.write("/etc/motd", "x\n", 0o644)
	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "source": ref}))
}

func TestDirSourcesRefusesPathsOutsideRepository(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	writeHost(t, filepath.Join(filepath.Dir(fx.repo), "secret"), "s", 0o600)
	for _, p := range []string{"/etc/passwd", "files/../../secret", "files//x", "./files/x"} {
		_, err := fx.env.Sources.Open(&resource.SourceRef{Path: p, Size: 1, SHA256: sha256Hex("s")})
		if err == nil || !strings.Contains(err.Error(), "is not a clean relative path") {
			t.Errorf("Open(%q) = %v, want a refusal", p, err)
		}
	}
	if _, err := fx.env.Sources.Open(&resource.SourceRef{Path: "../secret", Size: 1, SHA256: sha256Hex("s")}); err == nil {
		t.Error(`Open("../secret") climbed out of the repository`)
	}
	// A symlink in the repository that climbs out is refused by os.Root.
	if err := os.Symlink("../../secret", filepath.Join(fx.repo, "files", "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.env.Sources.Open(&resource.SourceRef{Path: "files/escape", Size: 1, SHA256: sha256Hex("s")}); err == nil {
		t.Error("a symlink out of the repository was followed")
	}
}

func TestFileReplacesSymlinkNotItsTarget(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	target := filepath.Join(fx.outside, "passwd")
	writeHost(t, target, "sentinel\n", 0o600)
	targetBefore := snapshotDirs(t, fx.outside)
	fx.write("/etc/real.conf", "inside\n", 0o640)
	fx.symlink(target, "/etc/motd")      // absolute, pointing out of the root on the host
	fx.symlink("real.conf", "/etc/conf") // relative, inside the root

	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "new\n"}), "type: symlink -> file")
	fx.contract(cat("file", "conf", map[string]any{"path": "/etc/conf", "content": "new\n"}), "type: symlink -> file")

	// New files: the default mode, not whatever the link or its target had.
	fx.assertFile("/etc/motd", "new\n", 0o644, 0, 0)
	fx.assertFile("/etc/conf", "new\n", 0o644, 0, 0)
	assertSameSnapshot(t, targetBefore, snapshotDirs(t, fx.outside), "replacing a link to an outside file")
	fx.assertFile("/etc/real.conf", "inside\n", 0o640, 0, 0)
	fx.assertNoBackups()
}

func TestFileDirectoryAtPath(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/motd/a", "A\n", 0o600)
	fx.write("/etc/motd/sub/b", "B\n", 0o644)
	fx.wantErr(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "x\n"}),
		fx.host("/etc/motd")+" is a directory; set force = true to replace it with a file")

	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "x\n", "force": true}), "type: directory -> file")
	fx.assertFile("/etc/motd", "x\n", 0o644, 0, 0)
	fx.assertBackup("/etc/motd/a", "A\n", 0o600, 0, 0, "removed by file.motd (force)")
	fx.assertBackup("/etc/motd/sub/b", "B\n", 0o644, 0, 0, "removed by file.motd (force)")
}

func TestFileSensitiveContentNeverShown(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const oldSecret, newSecret = "password=0ld-s3cret\n", "password=n3w-s3cret\n"
	secrets := []string{oldSecret, newSecret, "0ld-s3cret", "n3w-s3cret",
		sha256Hex(oldSecret)[:12], sha256Hex(newSecret)[:12]}
	assertClean := func(what string, res *resource.Result) {
		t.Helper()
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s: result %s shows %q", what, b, s)
			}
		}
		if res.Diff != "" {
			t.Errorf("%s: diff %q for sensitive content", what, res.Diff)
		}
	}

	noop, real := fx.contract(cat("file", "db", map[string]any{"path": "/etc/db.conf", "content": oldSecret}, "content"),
		"ensure: absent -> present", "parents: absent -> /etc")
	assertClean("create, apply=false", noop)
	assertClean("create, apply=true", real)

	noop, real = fx.contract(cat("file", "db", map[string]any{"path": "/etc/db.conf", "content": newSecret, "mode": "0600"}, "content"),
		"content: (sensitive) -> (sensitive)", "mode: 0644 -> 0600")
	assertClean("change, apply=false", noop)
	assertClean("change, apply=true", real)
	fx.assertFile("/etc/db.conf", newSecret, 0o600, 0, 0)
	// The previous secret is kept for rollback, like any content.
	fx.assertBackup("/etc/db.conf", oldSecret, 0o644, 0, 0, "replaced by file.db")
}

func TestFileSensitiveSource(t *testing.T) {
	t.Parallel()
	// source = sensitive("key.pem") in the configuration marks the source attribute: its
	// content is as secret as sensitive inline content.
	for _, attr := range []string{"content", "source"} {
		t.Run(attr, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			ref := fx.source("key.pem", "-----BEGIN KEY-----\n")
			fx.write("/etc/key.pem", "old key\n", 0o600)
			noop, _ := fx.contract(cat("file", "key", map[string]any{"path": "/etc/key.pem", "source": ref}, attr),
				"content: (sensitive) -> (sensitive)")
			if noop.Diff != "" {
				t.Errorf("diff %q for sensitive content", noop.Diff)
			}
			fx.assertFile("/etc/key.pem", "-----BEGIN KEY-----\n", 0o600, 0, 0)
		})
	}
}

func TestFileBackupDisabled(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/motd", "old\n", 0o644)
	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "new\n", "backup": false}),
		"content: "+describe("old\n")+" -> "+describe("new\n"))
	fx.assertNoBackups()
}

func TestFileWithoutBackupStore(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.env.Backup = nil
	fx.write("/etc/motd", "old\n", 0o644)
	fx.contract(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "new\n"}),
		"content: "+describe("old\n")+" -> "+describe("new\n"))
	fx.assertFile("/etc/motd", "new\n", 0o644, 0, 0)
}

func TestFileParentsCreated(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/srv", 0o700)
	fx.contract(cat("file", "deep", map[string]any{"path": "/srv/a/b/c/file", "content": "x\n"}),
		"ensure: absent -> present", "parents: absent -> /srv/a, /srv/a/b, /srv/a/b/c")
	for _, d := range []string{"/srv/a", "/srv/a/b", "/srv/a/b/c"} {
		if st := fx.lstat(d); st.Mode != syscall.S_IFDIR|0o755 {
			t.Errorf("%s: mode %#o, want a 0755 directory", d, st.Mode)
		}
	}
	if st := fx.lstat("/srv"); st.Mode&0o7777 != 0o700 {
		t.Errorf("/srv: mode changed to %#o", st.Mode&0o7777)
	}
	fx.assertFile("/srv/a/b/c/file", "x\n", 0o644, 0, 0)
}

func TestFileParentsLeaveManagedDirectories(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.env.Managed = resource.NewPathSet([]string{"/a/b", "/a/b/c/file"})
	// A directory resource owns /a/b and creates it (and /a) first; the file reports only
	// the ancestors nobody manages.
	res := fx.run(cat("file", "f", map[string]any{"path": "/a/b/c/file", "content": "x"}), false)
	assertChanges(t, "before the directory exists", res, "ensure: absent -> present", "parents: absent -> /a, /a/b/c")
	fx.contract(cat("directory", "b", map[string]any{"path": "/a/b"}), "ensure: absent -> present", "parents: absent -> /a")
	fx.contract(cat("file", "f", map[string]any{"path": "/a/b/c/file", "content": "x"}), "ensure: absent -> present", "parents: absent -> /a/b/c")
	fx.assertFile("/a/b/c/file", "x", 0o644, 0, 0)
}

func TestFileParentIsAFile(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc", "not a directory\n", 0o644)
	fx.wantErr(cat("file", "motd", map[string]any{"path": "/etc/motd", "content": "x"}),
		fx.host("/etc/motd")+" cannot exist: "+fx.host("/etc")+" is a file, not a directory")
}

// observedSources reads the real repository and, when a reader of it has passed 4 KiB, calls
// fn: while the file resource writes, the moment the temporary file exists but the target
// is not yet replaced.
type observedSources struct {
	resource.Sources
	fn func()
}

func (s *observedSources) Open(ref *resource.SourceRef) (io.ReadCloser, error) {
	r, err := s.Sources.Open(ref)
	if err != nil {
		return nil, err
	}
	return &observedReader{ReadCloser: r, fn: s.fn}, nil
}

type observedReader struct {
	io.ReadCloser
	fn   func()
	once sync.Once
	n    int
}

func (r *observedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p[:min(len(p), 1024)])
	r.n += n
	if r.n >= 4096 {
		r.once.Do(r.fn)
	}
	return n, err
}

func TestFileAtomicReplace(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	oldContent := strings.Repeat("old line\n", 1000)
	newContent := strings.Repeat("new line\n", 1000)
	ref := fx.source("data", newContent)
	fx.write("/srv/data", oldContent, 0o640)
	fx.write("/srv/other", "other\n", 0o644)
	oldIno := fx.lstat("/srv/data").Ino

	// Keep the old file open, as a reader (a daemon) would.
	old, err := os.Open(fx.host("/srv/data"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	// While the content is being written, the target still holds the old bytes and the
	// new ones go to a temporary file next to it.
	var tempIno uint64
	var tempName string
	fx.env.Sources = &observedSources{Sources: fx.env.Sources, fn: func() {
		left := tempLeftovers(t, fx.host("/srv"))
		if len(left) == 0 {
			return // the source is also read to show the diff, before anything is written
		}
		if len(left) != 1 || !strings.HasPrefix(left[0], ".data.") {
			t.Errorf("while writing, temporary files in /srv: %q, want one named after data", left)
			return
		}
		tempName = left[0]
		tempIno = fx.lstat("/srv/" + tempName).Ino
		if got := fx.read("/srv/data"); got != oldContent {
			t.Error("the target changed before the new content was complete")
		}
		if st := fx.lstat("/srv/" + tempName); st.Mode&0o777 != 0o600 {
			t.Errorf("temporary file mode %#o, want 0600 while it is written", st.Mode&0o777)
		}
	}}
	fx.run(cat("file", "data", map[string]any{"path": "/srv/data", "source": ref}), true)
	if tempIno == 0 {
		t.Fatal("the observer never saw the temporary file")
	}

	fx.assertFile("/srv/data", newContent, 0o640, 0, 0)
	if ino := fx.lstat("/srv/data").Ino; ino != tempIno || ino == oldIno {
		t.Errorf("target inode %d; temporary file's %d, old file's %d: want the temporary file renamed into place", ino, tempIno, oldIno)
	}
	// The old inode was never truncated or rewritten.
	b, err := io.ReadAll(old)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != oldContent {
		t.Errorf("the old file, still open, now reads %d bytes %.20q...: it was modified in place", len(b), b)
	}
	fx.assertNoTemp("/srv")
	fx.assertFile("/srv/other", "other\n", 0o644, 0, 0)
}

func TestWriteAtomicExported(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/x", "old", 0o644)
	if err := resource.WriteAtomic(fx.root, "/etc/x", strings.NewReader("new"), 0o600, 1234, 2345); err != nil {
		t.Fatal(err)
	}
	fx.assertFile("/etc/x", "new", 0o600, 1234, 2345)
	fx.assertNoTemp("/etc")

	// A failing reader leaves the file as it was and no temporary file.
	err := resource.WriteAtomic(fx.root, "/etc/x", io.MultiReader(strings.NewReader("partial"), failingReader{}), 0o644, -1, -1)
	if err == nil || err.Error() != "write "+fx.host("/etc/x")+": disk on fire" {
		t.Errorf("error %v", err)
	}
	fx.assertFile("/etc/x", "new", 0o600, 1234, 2345)
	fx.assertNoTemp("/etc")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errDiskOnFire }

var errDiskOnFire = errors.New("disk on fire")

func TestBackupFileExported(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/x", "content", 0o640)
	fx.symlink("x", "/etc/link")
	for _, p := range []string{"/etc/x", "/etc/missing", "/etc/link"} {
		if err := resource.BackupFile(fx.env, p, "restore"); err != nil {
			t.Errorf("BackupFile(%s): %v", p, err)
		}
	}
	fx.assertBackup("/etc/x", "content", 0o640, 0, 0, "restore")
	if n := len(fx.backups("")); n != 1 {
		t.Errorf("%d backups, want 1 (a missing file and a link have no content)", n)
	}
}

// TestFileConfinedToRoot applies a file through an absolute symlink of the image (/etc ->
// somewhere, as images have): it resolves inside the root, never on the host.
func TestFileConfinedToRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	writeHost(t, filepath.Join(fx.outside, "x"), "sentinel\n", 0o644)
	outsideBefore := snapshotDirs(t, fx.outside)
	// root/etc -> <outside>, an absolute host path. Inside the root it means root/<outside>.
	fx.symlink(fx.outside, "/etc")
	fx.mkdir(fx.outside, 0o755)

	fx.contract(cat("file", "x", map[string]any{"path": "/etc/x", "content": "inside\n"}), "ensure: absent -> present")
	fx.assertFile(fx.outside+"/x", "inside\n", 0o644, 0, 0)
	fx.contract(cat("file", "y", map[string]any{"path": "/etc/y", "content": "y\n", "mode": "0600"}), "ensure: absent -> present")
	fx.contract(cat("file", "x", map[string]any{"path": "/etc/x", "ensure": "absent"}), "ensure: present -> absent")
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "resources applied under the root")

	// ".." cannot climb out either.
	fx.symlink("../../../../../../../../..", "/up")
	fx.contract(cat("file", "z", map[string]any{"path": "/up/z", "content": "z\n"}), "ensure: absent -> present")
	fx.assertFile("/z", "z\n", 0o644, 0, 0)
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "resources applied under the root")
}

func TestFileSelfReferentialSymlinkInRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// root/etc -> /etc points at itself inside the root (never at the host's /etc).
	fx.symlink("/etc", "/etc")
	name := "satchel-test-" + filepath.Base(fx.dir)
	res, err := build(t, cat("file", "x", map[string]any{"path": "/etc/" + name, "content": "x"})).CheckApply(context.Background(), fx.env, true)
	if err == nil {
		t.Errorf("applying through a self-referential link succeeded: %q", changes(res))
	}
	if _, err := os.Lstat("/etc/" + name); !isNotExist(err) {
		_ = os.Remove("/etc/" + name)
		t.Fatalf("the host's /etc/%s was written: %v", name, err)
	}
}

func TestFileConcurrentResourcesInOneDirectory(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc", 0o755)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := string(rune('a' + i))
			r, err := resource.New(cat("file", name, map[string]any{"path": "/etc/" + name, "content": name}))
			if err == nil {
				_, err = r.CheckApply(context.Background(), fx.env, true)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		name := string(rune('a' + i))
		fx.assertFile("/etc/"+name, name, 0o644, 0, 0)
	}
	fx.assertNoTemp("/etc")
}

func TestAccountsCachedUntilInvalidated(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	if uid, err := fx.env.Accounts.UID("alice"); err != nil || uid != 1234 {
		t.Fatalf("UID(alice) = %d, %v", uid, err)
	}
	// A user resource earlier in the run adds carol: seen only after Invalidate.
	fx.write("/etc/passwd", fx.read("/etc/passwd")+"carol:x:1300:2345::/home/carol:/bin/sh\n", 0o644)
	if _, err := fx.env.Accounts.UID("carol"); err == nil {
		t.Error("the accounts were re-read without Invalidate")
	}
	fx.env.Accounts.Invalidate()
	if uid, err := fx.env.Accounts.UID("carol"); err != nil || uid != 1300 {
		t.Errorf("after Invalidate, UID(carol) = %d, %v", uid, err)
	}
	if gid, err := fx.env.Accounts.GID("2345"); err != nil || gid != 2345 {
		t.Errorf("GID(\"2345\") = %d, %v", gid, err)
	}
	if n := fx.env.Accounts.UserName(1300); n != "carol" {
		t.Errorf("UserName(1300) = %q", n)
	}
	if n := fx.env.Accounts.GroupName(9999); n != "9999" {
		t.Errorf("GroupName(9999) = %q", n)
	}
}
