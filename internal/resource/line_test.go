package resource_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestLineAddAtEnd(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.accounts()
	fx.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0o640)
	fx.chown("/etc/hosts", 1234, 2346)
	oldIno := fx.lstat("/etc/hosts").Ino
	noop, _ := fx.contract(cat("line", "srv", map[string]any{"path": "/etc/hosts", "line": "10.0.0.5 server"}),
		"line:  -> 10.0.0.5 server")
	wantDiff := "--- /etc/hosts (current)\n+++ /etc/hosts (desired)\n@@ -1,2 +1,3 @@\n 127.0.0.1 localhost\n ::1 localhost\n+10.0.0.5 server\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
	// The file's mode and owner are kept; its content is replaced atomically.
	fx.assertFile("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n10.0.0.5 server\n", 0o640, 1234, 2346)
	if fx.lstat("/etc/hosts").Ino == oldIno {
		t.Error("the file was edited in place")
	}
	fx.assertNoTemp("/etc")
	fx.assertBackup("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0o640, 1234, 2346, "edited by line.srv")
}

func TestLineAlreadyPresent(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/hosts", "a\n10.0.0.5 server\nb\n", 0o644)
	fx.contract(cat("line", "srv", map[string]any{"path": "/etc/hosts", "line": "10.0.0.5 server", "after": "^b$"}))
	fx.assertNoBackups()
}

func TestLineAfter(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/fstab", "# fstab\n/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 /home ext4 defaults 0 2\n", 0o644)
	noop, _ := fx.contract(cat("line", "tmp", map[string]any{"path": "/etc/fstab", "line": "tmpfs /tmp tmpfs defaults 0 0", "after": `^/dev/sda\d `}),
		"line:  -> tmpfs /tmp tmpfs defaults 0 0")
	fx.assertFile("/etc/fstab", "# fstab\n/dev/sda1 / ext4 defaults 0 1\ntmpfs /tmp tmpfs defaults 0 0\n/dev/sda2 /home ext4 defaults 0 2\n", 0o644, 0, 0)
	wantDiff := "--- /etc/fstab (current)\n+++ /etc/fstab (desired)\n@@ -1,3 +1,4 @@\n # fstab\n /dev/sda1 / ext4 defaults 0 1\n+tmpfs /tmp tmpfs defaults 0 0\n /dev/sda2 /home ext4 defaults 0 2\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
}

func TestLineAfterWithoutMatchGoesAtEnd(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/f", "a\nb\n", 0o644)
	fx.contract(cat("line", "x", map[string]any{"path": "/f", "line": "x", "after": "^zzz"}), "line:  -> x")
	fx.assertFile("/f", "a\nb\nx\n", 0o644, 0, 0)
}

func TestLineReplaceMatch(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\n", 0o600)
	noop, _ := fx.contract(cat("line", "root", map[string]any{"path": "/etc/ssh/sshd_config", "line": "PermitRootLogin no", "match": "^#?PermitRootLogin "}),
		"line:  -> PermitRootLogin no")
	fx.assertFile("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication yes\n", 0o600, 0, 0)
	wantDiff := "--- /etc/ssh/sshd_config (current)\n+++ /etc/ssh/sshd_config (desired)\n@@ -1,3 +1,3 @@\n Include /etc/ssh/sshd_config.d/*.conf\n-#PermitRootLogin prohibit-password\n+PermitRootLogin no\n PasswordAuthentication yes\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
}

func TestLineMatchNothingAdds(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/sysctl.conf", "# sysctl\nkernel.panic = 10\n", 0o644)
	fx.contract(cat("line", "fwd", map[string]any{"path": "/etc/sysctl.conf", "line": "net.ipv4.ip_forward = 1", "match": `^#?\s*net\.ipv4\.ip_forward\b`, "after": "^# sysctl"}),
		"line:  -> net.ipv4.ip_forward = 1")
	fx.assertFile("/etc/sysctl.conf", "# sysctl\nnet.ipv4.ip_forward = 1\nkernel.panic = 10\n", 0o644, 0, 0)
}

func TestLineMultipleMatches(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	content := "server a\n#server b\nother\nserver c\n"
	fx.write("/etc/ntp.conf", content, 0o644)
	fx.wantErr(cat("line", "ntp", map[string]any{"path": "/etc/ntp.conf", "line": "server time.example", "match": "^#?server "}),
		fx.host("/etc/ntp.conf")+`: 3 lines match "^#?server "; set multiple = true to replace them all`)

	fx.contract(cat("line", "ntp", map[string]any{"path": "/etc/ntp.conf", "line": "server time.example", "match": "^#?server ", "multiple": true}),
		"line:  -> server time.example")
	fx.assertFile("/etc/ntp.conf", "server time.example\nserver time.example\nother\nserver time.example\n", 0o644, 0, 0)
	fx.assertBackup("/etc/ntp.conf", content, 0o644, 0, 0, "edited by line.ntp")
}

func TestLineAbsentByLine(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/hosts", "a\n10.0.0.9 old\nb\n10.0.0.9 old\n10.0.0.9 older\n", 0o644)
	noop, _ := fx.contract(cat("line", "old", map[string]any{"path": "/etc/hosts", "line": "10.0.0.9 old", "ensure": "absent"}),
		"line: 10.0.0.9 old -> (removed)")
	fx.assertFile("/etc/hosts", "a\nb\n10.0.0.9 older\n", 0o644, 0, 0)
	wantDiff := "--- /etc/hosts (current)\n+++ /etc/hosts (desired)\n@@ -1,5 +1,3 @@\n a\n-10.0.0.9 old\n b\n-10.0.0.9 old\n 10.0.0.9 older\n"
	if noop.Diff != wantDiff {
		t.Errorf("diff\n%s\nwant\n%s", noop.Diff, wantDiff)
	}
}

func TestLineAbsentByMatch(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/environment", "PATH=/usr/bin\nhttp_proxy=http://old:3128\nHTTPS_PROXY=x\nhttps_proxy=http://old:3128\n", 0o644)
	fx.contract(cat("line", "proxy", map[string]any{"path": "/etc/environment", "match": "^https?_proxy=", "ensure": "absent"}),
		"line:  -> (removed)")
	fx.assertFile("/etc/environment", "PATH=/usr/bin\nHTTPS_PROXY=x\n", 0o644, 0, 0)
}

func TestLineAbsentAllLines(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/f", "x\nx\n", 0o644)
	fx.contract(cat("line", "x", map[string]any{"path": "/f", "line": "x", "ensure": "absent"}), "line: x -> (removed)")
	fx.assertFile("/f", "", 0o644, 0, 0)
}

func TestLineAbsentNotThere(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/f", "a\nb\n", 0o644)
	fx.contract(cat("line", "x", map[string]any{"path": "/f", "line": "x", "ensure": "absent"}))
}

func TestLineFileMissing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cr := cat("line", "x", map[string]any{"path": "/etc/app.conf", "line": "key = value"})
	// Under no-op, a resource earlier in the run may be about to create the file.
	before := fx.snapshot()
	assertChanges(t, "apply=false", fx.run(cr, false), "line:  -> key = value")
	fx.assertUnchanged(before, "apply=false")

	_, err := fx.runErr(cr, true)
	if want := fx.host("/etc/app.conf") + " does not exist; create it first (a file or package resource) and require that"; err.Error() != want {
		t.Errorf("error\n  %s\nwant\n  %s", err, want)
	}
	fx.assertUnchanged(before, "apply=true on a missing file")

	// Absent from a missing file: nothing to do.
	fx.contract(cat("line", "x", map[string]any{"path": "/etc/app.conf", "line": "key = value", "ensure": "absent"}))
}

func TestLineNotARegularFile(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	target := filepath.Join(fx.outside, "hosts")
	writeHost(t, target, "outside\n", 0o644)
	fx.symlink(target, "/etc/hosts")
	fx.mkdir("/etc/dir", 0o755)
	fx.wantErr(cat("line", "x", map[string]any{"path": "/etc/hosts", "line": "x"}), fx.host("/etc/hosts")+" is a symlink, not a regular file")
	fx.wantErr(cat("line", "x", map[string]any{"path": "/etc/dir", "line": "x"}), fx.host("/etc/dir")+" is a directory, not a regular file")
	if got := readHost(t, target); got != "outside\n" {
		t.Errorf("the link's target was edited: %q", got)
	}
}

func TestLineFinalNewline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, before string
		attrs        map[string]any
		after        string
	}{
		{"add to a file without final newline", "a\nb", map[string]any{"line": "c"}, "a\nb\nc\n"},
		{"add after, no final newline", "a\nb", map[string]any{"line": "c", "after": "^a$"}, "a\nc\nb\n"},
		{"add to an empty file", "", map[string]any{"line": "c"}, "c\n"},
		{"add to a file of one empty line", "\n", map[string]any{"line": "c"}, "\nc\n"},
		{"replace keeps a missing final newline", "a\nb", map[string]any{"line": "B", "match": "^b$"}, "a\nB"},
		{"replace keeps the final newline", "a\nb\n", map[string]any{"line": "B", "match": "^b$"}, "a\nB\n"},
		{"remove keeps a missing final newline", "a\nb\nc", map[string]any{"line": "b", "ensure": "absent"}, "a\nc"},
		{"remove the last line", "a\nb", map[string]any{"line": "b", "ensure": "absent"}, "a"},
		{"remove keeps blank lines", "a\n\nb\n\n", map[string]any{"line": "a", "ensure": "absent"}, "\nb\n\n"},
		{"a line with trailing blanks is another line", "a \n", map[string]any{"line": "a"}, "a \na\n"},
		{"CRLF lines are not the line", "a\r\n", map[string]any{"line": "a"}, "a\r\na\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.write("/f", tc.before, 0o600)
			attrs := map[string]any{"path": "/f"}
			for k, v := range tc.attrs {
				attrs[k] = v
			}
			res := fx.run(cat("line", "x", attrs), true)
			if !res.Changed() {
				t.Error("no change reported")
			}
			fx.assertFile("/f", tc.after, 0o600, 0, 0)
			assertChanges(t, "second run", fx.run(cat("line", "x", attrs), true))
		})
	}
}

func TestLineSensitive(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const secret = "password=pa55w0rd-xyz"
	fx.write("/etc/app.conf", "user=bob\n", 0o600)
	noop, real := fx.contract(cat("line", "pw", map[string]any{"path": "/etc/app.conf", "line": secret}, "line"),
		"line:  -> (sensitive)")
	for _, res := range []any{noop, real} {
		b, _ := json.Marshal(res)
		if strings.Contains(string(b), "pa55w0rd") {
			t.Errorf("result %s shows the secret", b)
		}
	}
	if noop.Diff != "" {
		t.Errorf("diff %q for a sensitive line", noop.Diff)
	}
	fx.assertFile("/etc/app.conf", "user=bob\n"+secret+"\n", 0o600, 0, 0)
}

func TestLineWithoutBackup(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/f", "a\n", 0o644)
	fx.contract(cat("line", "x", map[string]any{"path": "/f", "line": "b", "backup": false}), "line:  -> b")
	fx.assertNoBackups()
}

func TestLineConfinedToRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	writeHost(t, filepath.Join(fx.outside, "hosts"), "host's own\n", 0o644)
	outsideBefore := snapshotDirs(t, fx.outside)
	fx.symlink(fx.outside, "/etc")
	fx.write(fx.outside+"/hosts", "image's\n", 0o644)
	fx.contract(cat("line", "x", map[string]any{"path": "/etc/hosts", "line": "added"}), "line:  -> added")
	fx.assertFile(fx.outside+"/hosts", "image's\nadded\n", 0o644, 0, 0)
	assertSameSnapshot(t, outsideBefore, snapshotDirs(t, fx.outside), "a line edited under the root")
}
