package resource_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/resource"
)

// The user and group tests run the real shadow tools (useradd --root and friends) against a
// small Debian account database in a temporary root: nothing is mocked, and the host's own
// accounts are never touched.

// Fixed account files, so that ids are predictable: root, daemon, nobody; groups root,
// daemon, users (100), nogroup.
const (
	basePasswd  = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	baseGroup   = "root:x:0:\ndaemon:x:1:\nusers:x:100:\nnogroup:x:65534:\n"
	baseShadow  = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
	baseGshadow = "root:*::\ndaemon:*::\nusers:*::\nnogroup:*::\n"
	// The settings of Debian 12's /etc/login.defs that useradd reads.
	baseLoginDefs = "MAIL_DIR /var/mail\nUMASK 022\nPASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nPASS_WARN_AGE 7\n" +
		"UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\nGID_MIN 1000\nGID_MAX 60000\n" +
		"SYS_GID_MIN 100\nSYS_GID_MAX 999\nUSERGROUPS_ENAB yes\nENCRYPT_METHOD SHA512\n"
)

// A password hash as chpasswd --encrypted takes it (yescrypt, as mkpasswd makes them).
const (
	hashA = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
	hashB = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
	keyA  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1Y2tldHMgb2YgcmFpbiBvbiB0aGUgcm9vZg alice@laptop"
	keyB  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN1bW1lciBpbiB0aGUgY2l0eSBpcyBob3Q alice@phone"
	keyC  = `from="10.0.0.0/8" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup@office`
)

// accts is a fixture whose root holds an account database, with the tools' log captured.
type accts struct {
	*fixture
	log *syncBuffer
}

func newAccounts(t *testing.T) *accts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the user and group resources run useradd --root and chown, which need root")
	}
	for _, tool := range []string{"useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "chpasswd"} {
		if !toolInstalled(tool) {
			t.Skipf("%s is not installed (Debian package passwd)", tool)
		}
	}
	a := &accts{fixture: newFixture(t), log: &syncBuffer{}}
	a.write("/etc/passwd", basePasswd, 0o644)
	a.write("/etc/group", baseGroup, 0o644)
	a.write("/etc/shadow", baseShadow, 0o640)
	a.write("/etc/gshadow", baseGshadow, 0o640)
	a.write("/etc/login.defs", baseLoginDefs, 0o644)
	a.write("/etc/default/useradd", "SHELL=/bin/sh\n", 0o644)
	a.write("/etc/skel/.profile", "# ~/.profile\n", 0o644)
	a.write("/etc/skel/.bashrc", "# ~/.bashrc\n", 0o644)
	a.write("/etc/skel/.config/app/settings", "colour=green\n", 0o600)
	a.symlink(".profile", "/etc/skel/.bash_profile")
	a.mkdir("/home", 0o755)
	a.env.Log = slog.New(slog.NewTextHandler(a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return a
}

func toolInstalled(name string) bool {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err == nil && info.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// entry returns the line of the colon-separated file p (inside the root) for name, or "".
func (a *accts) entry(p, name string) string {
	a.t.Helper()
	for _, line := range strings.Split(a.read(p), "\n") {
		if strings.HasPrefix(line, name+":") {
			return line
		}
	}
	return ""
}

// shadowField returns the password field of name in /etc/shadow.
func (a *accts) shadowField(name string) string {
	a.t.Helper()
	f := strings.Split(a.entry("/etc/shadow", name), ":")
	if len(f) < 2 {
		a.t.Fatalf("no %s in /etc/shadow", name)
	}
	return f[1]
}

// user builds a user resource the way the language does: password always sensitive.
func user(name string, attrs map[string]any) *catalog.Resource {
	if _, ok := attrs["password"]; ok {
		return cat("user", name, attrs, "password")
	}
	return cat("user", name, attrs)
}

func group(name string, attrs map[string]any) *catalog.Resource {
	return cat("group", name, attrs)
}

// apply runs cr with apply=true and fails the test on an error.
func (a *accts) apply(cr *catalog.Resource) *resource.Result {
	a.t.Helper()
	return a.run(cr, true)
}

// assertOwner checks the type bits, permission bits and ids of p inside the root.
func (a *accts) assertOwner(p string, kind uint32, perm uint32, uid, gid int) {
	a.t.Helper()
	st := a.lstat(p)
	if st.Mode&syscall.S_IFMT != kind || st.Mode&0o7777 != perm || int(st.Uid) != uid || int(st.Gid) != gid {
		a.t.Errorf("%s: type %#o mode %#o owner %d:%d; want type %#o mode %#o owner %d:%d",
			p, st.Mode&syscall.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, kind, perm, uid, gid)
	}
}

// assertNoSecret checks that a secret appears nowhere: not in a result, not in an error, not
// in the log (which records the argv of every tool run).
func (a *accts) assertNoSecret(secret string, results []*resource.Result, errs ...error) {
	a.t.Helper()
	for _, res := range results {
		if strings.Contains(strings.Join(changes(res), "\n")+res.Diff, secret) {
			a.t.Errorf("the secret appears in a result: %q %q", changes(res), res.Diff)
		}
	}
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), secret) {
			a.t.Errorf("the secret appears in an error: %v", err)
		}
	}
	if strings.Contains(a.log.String(), secret) {
		a.t.Errorf("the secret appears in the log (argv of a tool?):\n%s", a.log.String())
	}
}

func TestUserCreate(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(group("teachers", map[string]any{"gid": 2000}))
	a.apply(group("staff", map[string]any{"gid": 2001}))
	cr := user("alice", map[string]any{
		"uid": 1500, "group": "teachers", "groups": []string{"staff", "users"}, "shell": "/bin/bash",
		"comment": "Alice Liddell", "ssh_authorized_keys": []string{keyA, keyB},
	})
	noop, _ := a.contract(cr,
		"ensure: absent -> present",
		"home_directory: absent -> /home/alice, owned by alice:teachers (from /etc/skel)",
		"ssh_authorized_keys: absent -> 2 keys (alice@laptop, alice@phone)")
	if !strings.Contains(noop.Diff, "+"+keyA+"\n") || !strings.Contains(noop.Diff, "/home/alice/.ssh/authorized_keys") {
		t.Errorf("diff of the keys:\n%s", noop.Diff)
	}
	if got, want := a.entry("/etc/passwd", "alice"), "alice:x:1500:2000:Alice Liddell:/home/alice:/bin/bash"; got != want {
		t.Errorf("/etc/passwd: %q, want %q", got, want)
	}
	if got := a.entry("/etc/group", "staff"); got != "staff:x:2001:alice" {
		t.Errorf("/etc/group: %q", got)
	}
	if got := a.entry("/etc/group", "users"); got != "users:x:100:alice" {
		t.Errorf("/etc/group: %q", got)
	}
	if got := a.entry("/etc/group", "alice"); got != "" {
		t.Errorf("a group alice was created: %q", got)
	}
	if got := a.shadowField("alice"); got != "!" {
		t.Errorf("password field %q, want ! (locked until one is given)", got)
	}
	// The home: useradd's mode (0777 without UMASK 022), skel copied, everything the user's.
	a.assertOwner("/home/alice", syscall.S_IFDIR, 0o755, 1500, 2000)
	a.assertFile("/home/alice/.profile", "# ~/.profile\n", 0o644, 1500, 2000)
	a.assertFile("/home/alice/.bashrc", "# ~/.bashrc\n", 0o644, 1500, 2000)
	a.assertFile("/home/alice/.config/app/settings", "colour=green\n", 0o600, 1500, 2000)
	a.assertOwner("/home/alice/.config", syscall.S_IFDIR, 0o755, 1500, 2000)
	a.assertOwner("/home/alice/.bash_profile", syscall.S_IFLNK, 0o777, 1500, 2000)
	if target, err := os.Readlink(a.host("/home/alice/.bash_profile")); err != nil || target != ".profile" {
		t.Errorf("skel symlink: %q, %v", target, err)
	}
	a.assertOwner("/home/alice/.ssh", syscall.S_IFDIR, 0o700, 1500, 2000)
	a.assertFile("/home/alice/.ssh/authorized_keys", keyA+"\n"+keyB+"\n", 0o600, 1500, 2000)
	a.assertNoTemp("/home/alice/.ssh")

	// Later resources resolve the new names.
	if uid, err := a.env.Accounts.UID("alice"); err != nil || uid != 1500 {
		t.Errorf("Accounts.UID(alice) = %d, %v", uid, err)
	}
}

func TestUserCreateDefaults(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	// Nothing but a name: useradd picks the uid, makes the user's own group, and its default
	// shell; the home is /home/NAME (HOME of /etc/default/useradd unset).
	a.contract(user("bob", map[string]any{}),
		"ensure: absent -> present",
		"home_directory: absent -> /home/bob, owned by bob:bob (from /etc/skel)")
	if got, want := a.entry("/etc/passwd", "bob"), "bob:x:1000:1000::/home/bob:/bin/sh"; got != want {
		t.Errorf("/etc/passwd: %q, want %q", got, want)
	}
	if got := a.entry("/etc/group", "bob"); got != "bob:x:1000:" {
		t.Errorf("/etc/group: %q", got)
	}
	a.assertOwner("/home/bob", syscall.S_IFDIR, 0o755, 1000, 1000)

	// A group named after the user that exists already becomes its primary group (useradd
	// alone would refuse to create the account).
	a.apply(group("carol", map[string]any{"gid": 3000}))
	a.contract(user("carol", map[string]any{"manage_home": false}), "ensure: absent -> present")
	if got := a.entry("/etc/passwd", "carol"); got != "carol:x:1001:3000::/home/carol:/bin/sh" {
		t.Errorf("/etc/passwd: %q", got)
	}
	if a.exists("/home/carol") {
		t.Error("manage_home = false created the home")
	}

	// HOME_MODE and HOME of the root's own settings, and missing parents of the home.
	a.write("/etc/login.defs", baseLoginDefs+"HOME_MODE 0750\n", 0o644)
	a.write("/etc/default/useradd", "SHELL=/bin/sh\nHOME=/srv/homes\n", 0o644)
	a.contract(user("dave", map[string]any{}),
		"ensure: absent -> present",
		"home_directory: absent -> /srv/homes/dave, owned by dave:dave (from /etc/skel)",
		"parents: absent -> /srv, /srv/homes")
	a.assertOwner("/srv/homes", syscall.S_IFDIR, 0o755, 0, 0)
	a.assertOwner("/srv/homes/dave", syscall.S_IFDIR, 0o750, 1002, 1002)
}

func TestUserModify(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(group("teachers", map[string]any{"gid": 2000}))
	a.apply(group("staff", map[string]any{"gid": 2001}))
	a.apply(user("alice", map[string]any{"uid": 1500, "groups": []string{"staff"}, "shell": "/bin/sh",
		"ssh_authorized_keys": []string{keyA}}))
	a.assertOwner("/home/alice", syscall.S_IFDIR, 0o755, 1500, 1500)

	// Everything at once: one usermod. It re-owns the home's files that had the old uid and
	// gid, so the home needs nothing more and is not reported.
	cr := user("alice", map[string]any{"uid": 1505, "group": "teachers", "groups": []string{"staff", "teachers"},
		"shell": "/bin/bash", "comment": "Alice", "ssh_authorized_keys": []string{keyA, keyB}})
	a.contract(cr,
		"uid: 1500 -> 1505",
		"group: alice -> teachers",
		"groups: staff -> staff,teachers",
		"shell: /bin/sh -> /bin/bash",
		"comment:  -> Alice",
		"ssh_authorized_keys: 1 key (alice@laptop) -> 2 keys (alice@laptop, alice@phone)")
	if got, want := a.entry("/etc/passwd", "alice"), "alice:x:1505:2000:Alice:/home/alice:/bin/bash"; got != want {
		t.Errorf("/etc/passwd: %q, want %q", got, want)
	}
	a.assertOwner("/home/alice", syscall.S_IFDIR, 0o755, 1505, 2000)
	a.assertFile("/home/alice/.profile", "# ~/.profile\n", 0o644, 1505, 2000)
	a.assertOwner("/home/alice/.ssh", syscall.S_IFDIR, 0o700, 1505, 2000)
	a.assertFile("/home/alice/.ssh/authorized_keys", keyA+"\n"+keyB+"\n", 0o600, 1505, 2000)
	a.assertBackup("/home/alice/.ssh/authorized_keys", keyA+"\n", 0o600, 1505, 2000, "replaced by user.alice") // re-owned by usermod

	// Fewer groups, then none; the keys emptied.
	a.contract(user("alice", map[string]any{"groups": []string{"teachers"}}), "groups: staff,teachers -> teachers")
	a.contract(user("alice", map[string]any{"groups": []string{}, "ssh_authorized_keys": []string{}}),
		"groups: teachers -> (none)",
		"ssh_authorized_keys: 2 keys (alice@laptop, alice@phone) -> no keys")
	if got := a.entry("/etc/group", "teachers"); got != "teachers:x:2000:" {
		t.Errorf("/etc/group: %q", got)
	}
	a.assertFile("/home/alice/.ssh/authorized_keys", "", 0o600, 1505, 2000)

	// Unset attributes are not managed.
	a.contract(user("alice", map[string]any{}))
}

func TestUserHome(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(user("alice", map[string]any{"uid": 1500}))

	// A home that lost its owner is given back; only the directory itself.
	a.chown("/home/alice", 0, 0)
	a.contract(user("alice", map[string]any{}), "home_directory: owned by root:root -> owned by alice:alice")
	a.assertOwner("/home/alice", syscall.S_IFDIR, 0o755, 1500, 1500)

	// A missing home is created from skel.
	if err := os.RemoveAll(a.host("/home/alice")); err != nil {
		t.Fatal(err)
	}
	a.contract(user("alice", map[string]any{}), "home_directory: absent -> /home/alice, owned by alice:alice (from /etc/skel)")
	a.assertFile("/home/alice/.bashrc", "# ~/.bashrc\n", 0o644, 1500, 1500)

	// A new home path moves the content, as usermod --move-home does.
	a.mkdir("/srv", 0o755)
	a.write("/home/alice/notes.txt", "mine\n", 0o600)
	a.chown("/home/alice/notes.txt", 1500, 1500)
	a.contract(user("alice", map[string]any{"home": "/srv/alice"}),
		"home: /home/alice -> /srv/alice (content moved from /home/alice)")
	if a.exists("/home/alice") {
		t.Error("the old home is still there")
	}
	a.assertFile("/srv/alice/notes.txt", "mine\n", 0o600, 1500, 1500)
	if got := a.entry("/etc/passwd", "alice"); got != "alice:x:1500:1500::/srv/alice:/bin/sh" {
		t.Errorf("/etc/passwd: %q", got)
	}

	// Something else at the home path, or a home of "/", is an error that changes nothing.
	a.write("/srv/bob", "a file\n", 0o644)
	a.apply(user("bob", map[string]any{"home": "/srv/bob", "manage_home": false}))
	a.wantErr(user("bob", map[string]any{"home": "/srv/bob"}),
		a.host("/srv/bob")+", the home of user bob, is a file, not a directory; remove it, or set manage_home = false")
	a.wantErr(user("root", map[string]any{"home": "/"}),
		"the home of user root is /, which cannot be given to one user; set manage_home = false (and remove_home = false)")
}

func TestUserAuthorizedKeysSymlinks(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(user("mallory", map[string]any{"uid": 1600}))
	a.write("/root/.ssh/authorized_keys", "root's key\n", 0o600)

	// The user points .ssh at root's: refused, and root's keys are untouched.
	a.symlink("/root/.ssh", "/home/mallory/.ssh")
	a.wantErr(user("mallory", map[string]any{"ssh_authorized_keys": []string{keyC}}),
		a.host("/home/mallory/.ssh")+" is not a directory (a symbolic link is never followed there); remove it, or stop managing ssh_authorized_keys")
	a.assertFile("/root/.ssh/authorized_keys", "root's key\n", 0o600, 0, 0)

	// A symlinked authorized_keys is replaced by a file; its target is left alone.
	if err := os.Remove(a.host("/home/mallory/.ssh")); err != nil {
		t.Fatal(err)
	}
	a.mkdir("/home/mallory/.ssh", 0o755)
	a.chown("/home/mallory/.ssh", 1600, 1600)
	a.symlink("/root/.ssh/authorized_keys", "/home/mallory/.ssh/authorized_keys")
	a.contract(user("mallory", map[string]any{"ssh_authorized_keys": []string{keyC}}),
		"ssh_authorized_keys: a symbolic link -> 1 key (backup@office)",
		"ssh_authorized_keys: .ssh 0755 mallory:mallory -> .ssh 0700 mallory:mallory")
	a.assertFile("/home/mallory/.ssh/authorized_keys", keyC+"\n", 0o600, 1600, 1600)
	a.assertFile("/root/.ssh/authorized_keys", "root's key\n", 0o600, 0, 0)

	// Wrong owner and mode of an otherwise right file.
	a.chown("/home/mallory/.ssh/authorized_keys", 0, 0)
	chmodHost(t, a.host("/home/mallory/.ssh/authorized_keys"), 0o644)
	a.contract(user("mallory", map[string]any{"ssh_authorized_keys": []string{keyC}}),
		"ssh_authorized_keys: authorized_keys 0644 root:root -> authorized_keys 0600 mallory:mallory")
	a.assertFile("/home/mallory/.ssh/authorized_keys", keyC+"\n", 0o600, 1600, 1600)

	// Keys need a home.
	a.apply(user("svc", map[string]any{"manage_home": false, "home": "/nonexistent"}))
	a.wantErr(user("svc", map[string]any{"manage_home": false, "ssh_authorized_keys": []string{keyC}}),
		a.host("/nonexistent")+", the home of user svc, does not exist, so its authorized keys cannot be written; create it first, or let manage_home create it (for a system account, give home as well)")
}

func TestUserPassword(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	var results []*resource.Result
	keep := func(res *resource.Result) { results = append(results, res) }

	// Created with a hash: set through chpasswd's standard input.
	cr := user("alice", map[string]any{"password": hashA})
	noop, real := a.contract(cr, "ensure: absent -> present",
		"home_directory: absent -> /home/alice, owned by alice:alice (from /etc/skel)")
	keep(noop)
	keep(real)
	if got := a.shadowField("alice"); got != hashA {
		t.Errorf("password field %q, want the hash", got)
	}
	// Locked, then another hash, then "*": reported without the values.
	for _, pw := range []string{"!", hashB, "*"} {
		noop, real := a.contract(user("alice", map[string]any{"password": pw}), "password: (sensitive) -> (sensitive)")
		keep(noop)
		keep(real)
		if got := a.shadowField("alice"); got != pw {
			t.Errorf("password field %q, want %q", got, pw)
		}
	}
	// The value is secret even when the catalog does not say so (the schema does).
	a.apply(user("alice", map[string]any{"password": hashA}))
	res := a.run(cat("user", "alice", map[string]any{"password": hashB}), false)
	keep(res)
	assertChanges(t, "unmarked password", res, "password: (sensitive) -> (sensitive)")
	if s := resource.Lookup("user").Schema.Attribute("password"); !s.Sensitive {
		t.Error("the password attribute is not sensitive in the schema")
	}
	// A failure of chpasswd does not quote the hash either.
	_, err := a.runErr(user("alice", map[string]any{"password": hashB, "shell": "/bin/sh", "uid": 1000, "groups": []string{"nosuchgroup"}}), true)
	a.assertNoSecret(hashA, results, err)
	a.assertNoSecret(hashB, results, err)
	// The log shows what ran, so the check above covers every argv.
	if log := a.log.String(); !strings.Contains(log, "chpasswd") || !strings.Contains(log, "useradd") {
		t.Errorf("the log does not record the tools run:\n%s", log)
	}
}

func TestUserAbsent(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(user("alice", map[string]any{"uid": 1500}))
	a.apply(user("bob", map[string]any{"uid": 1501}))

	// Without remove_home the home stays; userdel also removes the user's own group.
	a.contract(user("alice", map[string]any{"ensure": "absent"}), "ensure: present -> absent")
	if a.entry("/etc/passwd", "alice") != "" || a.entry("/etc/shadow", "alice") != "" || a.entry("/etc/group", "alice") != "" {
		t.Error("alice is still in the account files")
	}
	a.assertOwner("/home/alice", syscall.S_IFDIR, 0o755, 1500, 1500)

	// With remove_home it goes too.
	a.contract(user("bob", map[string]any{"ensure": "absent", "remove_home": true}),
		"ensure: present -> absent", "home_directory: /home/bob -> absent (removed with its content)")
	if a.exists("/home/bob") || a.entry("/etc/passwd", "bob") != "" {
		t.Error("bob or his home is still there")
	}
	if _, err := a.env.Accounts.UID("bob"); err == nil {
		t.Error("Accounts still resolves bob")
	}

	// A home that is not the user's own is not removed: userdel would refuse half-way.
	a.apply(user("carol", map[string]any{"uid": 1502}))
	a.chown("/home/carol", 0, 0)
	a.wantErr(user("carol", map[string]any{"ensure": "absent", "remove_home": true}),
		"cannot remove the home "+a.host("/home/carol")+" of user carol: it is owned by root, not by the user, and userdel refuses; fix its owner or set remove_home = false")

	// Absent and already gone: nothing to do.
	a.contract(user("zed", map[string]any{"ensure": "absent", "remove_home": true}))
}

func TestUserUnknownGroup(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	cr := user("bob", map[string]any{"group": "teachers"})
	// A plan cannot know whether an earlier resource creates the group: it says so.
	before := a.snapshot()
	res := a.run(cr, false)
	assertChanges(t, "plan", res,
		"ensure: absent -> present (group teachers does not exist now: applying fails unless a resource this one requires changes that first)",
		"home_directory: absent -> /home/bob, owned by bob:teachers (from /etc/skel)")
	a.assertUnchanged(before, "plan")
	// Applying fails with useradd's own message, and creates nothing.
	_, err := a.runErr(cr, true)
	if want := "create user bob: useradd: group 'teachers' does not exist (exit status 6)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	if a.entry("/etc/passwd", "bob") != "" || a.exists("/home/bob") {
		t.Error("bob was created")
	}
	// The same for a supplementary group of an existing account.
	a.apply(user("bob", map[string]any{}))
	_, err = a.runErr(user("bob", map[string]any{"groups": []string{"users", "nosuch"}}), true)
	if want := "change user bob: usermod: group 'nosuch' does not exist (exit status 6)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	// A uid another account has.
	res = a.run(user("bob", map[string]any{"uid": 65534}), false)
	assertChanges(t, "plan", res, "uid: 1000 -> 65534 (uid 65534 is taken by user nobody now: applying fails unless a resource this one requires changes that first)")
	_, err = a.runErr(user("bob", map[string]any{"uid": 65534}), true)
	if want := "change user bob: usermod: UID '65534' already exists (exit status 4)"; err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
}

func TestUserSystem(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.apply(group("squid", map[string]any{"system": true}))
	a.contract(user("squid", map[string]any{"system": true, "group": "squid", "home": "/var/spool/squid",
		"shell": "/usr/sbin/nologin", "manage_home": false, "password": "*"}),
		"ensure: absent -> present")
	f := strings.Split(a.entry("/etc/passwd", "squid"), ":")
	g := strings.Split(a.entry("/etc/group", "squid"), ":")
	if len(f) != 7 || len(g) != 4 {
		t.Fatalf("passwd %q, group %q", f, g)
	}
	var uid, gid int
	fmt.Sscan(f[2], &uid)
	fmt.Sscan(g[2], &gid)
	if uid < 100 || uid > 999 || gid < 100 || gid > 999 || f[3] != g[2] || f[5] != "/var/spool/squid" || f[6] != "/usr/sbin/nologin" {
		t.Errorf("system account %q in group %q, want ids from the system range (100-999)", f, g)
	}
	if a.exists("/var/spool/squid") {
		t.Error("the home of a manage_home = false account was created")
	}
	// A system account gets no home unless one is given, as with useradd --system; an
	// existing one's home (daemon's is /usr/sbin) is not given to it.
	a.contract(user("cache", map[string]any{"system": true}), "ensure: absent -> present")
	if a.exists("/home/cache") {
		t.Error("a home was created for a system account")
	}
	a.mkdir("/usr/sbin", 0o755)
	a.contract(user("daemon", map[string]any{"groups": []string{"users"}}), "groups: (none) -> users")
	a.assertOwner("/usr/sbin", syscall.S_IFDIR, 0o755, 0, 0)
	// Given a home of its own, a system account gets one; its old home is not moved.
	a.mkdir("/var/lib", 0o755)
	a.contract(user("daemon", map[string]any{"home": "/var/lib/daemon"}),
		"home: /usr/sbin -> /var/lib/daemon",
		"home_directory: absent -> /var/lib/daemon, owned by daemon:daemon (from /etc/skel)")
	a.assertOwner("/usr/sbin", syscall.S_IFDIR, 0o755, 0, 0)
	a.assertOwner("/var/lib/daemon", syscall.S_IFDIR, 0o755, 1, 1)

	// An account whose home is /nonexistent has none: manage_home never creates it.
	a.contract(user("nobody", map[string]any{"shell": "/usr/sbin/nologin"}))
	if a.exists("/nonexistent") {
		t.Error("/nonexistent was created")
	}
	// No password ageing for system accounts, and the password field as given.
	if got := a.entry("/etc/shadow", "squid"); !strings.HasPrefix(got, "squid:*:") || strings.Contains(got, ":99999:") {
		t.Errorf("/etc/shadow: %q", got)
	}
}

func TestUserDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"name": "9"}, `name: Invalid user name: "9" is a number; names must not be (the tools would read it as an id).`},
		{map[string]any{"name": "-x"}, `name: Invalid user name: "-x" is not a valid name: letters, digits, _ . and -, at most 32 characters, not starting with - or . (an optional final $ for machine accounts).`},
		{map[string]any{"uid": -1}, "uid: Invalid uid: a uid is a whole number from 0 to 4294967294."},
		{map[string]any{"uid": 1.5}, "attribute uid: json: cannot unmarshal number 1.5 into Go value of type int"},
		{map[string]any{"groups": []string{"a b"}}, `groups: Invalid group: "a b" is neither a group name nor a gid.`},
		{map[string]any{"comment": "a:b"}, `comment: Invalid comment: comment must not contain ":" or a newline (they separate the fields of /etc/passwd).`},
		{map[string]any{"shell": "bash"}, `shell: Invalid path: "bash" is not an absolute path`},
		{map[string]any{"password": ""}, `password: Empty password: an empty password field lets anyone log in without a password; give a crypt(3) hash, or "!" to lock the account.`},
		{map[string]any{"password": "$6$x:y"}, `password: Invalid password: the value (not shown: it is secret) contains ":" or a newline, so it is not a crypt(3) hash.`},
		{map[string]any{"ssh_authorized_keys": []string{keyA + "\n" + keyB}}, "ssh_authorized_keys: Invalid key: element 0 is empty or spans several lines; give one key per element."},
		{map[string]any{"ensure": "locked"}, `ensure: Invalid value: "locked" is not one of "present", "absent".`},
	} {
		_, err := resource.New(cat("user", "x", tc.attrs))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error\n  %v\nwant\n  %s", tc.attrs, err, tc.want)
		}
	}
	u := build(t, cat("user", "alice", map[string]any{})).(*resource.User)
	if u.Name != "alice" || u.Ensure != "present" || !u.ManageHome || u.RemoveHome || u.System || u.UID != nil ||
		u.Groups != nil || u.SSHAuthorizedKeys != nil || u.Password != nil || u.Home != nil {
		t.Errorf("user decoded as %+v", u)
	}
	u = build(t, cat("user", "x", map[string]any{"name": "bob", "groups": []string{}, "uid": 1001})).(*resource.User)
	if u.Name != "bob" || u.Groups == nil || len(u.Groups) != 0 || *u.UID != 1001 {
		t.Errorf("user decoded as %+v", u)
	}
	s := resource.Lookup("user").Schema
	if s.UniqueAttr != "name" || !s.Attribute("name").NameVar || !s.Attribute("password").Sensitive {
		t.Errorf("user schema: unique %q, name namevar %v, password sensitive %v", s.UniqueAttr,
			s.Attribute("name").NameVar, s.Attribute("password").Sensitive)
	}
	want := []string{"name", "ensure", "uid", "group", "groups", "home", "manage_home", "shell", "system",
		"comment", "password", "ssh_authorized_keys", "remove_home"}
	if got := s.AttributeNames(); !slices.Equal(got, want) {
		t.Errorf("user attributes %q, want %q", got, want)
	}
}

// TestUserNeedsItsGroupFirst checks that a plan of a fresh config, where a group resource
// creates the group a user needs, does not fail, and that the run then converges in one go.
func TestUserNeedsItsGroupFirst(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	g := group("teachers", map[string]any{"gid": 2000})
	u := user("alice", map[string]any{"group": "teachers"})
	ctx := context.Background()
	for _, apply := range []bool{false, true} {
		for _, cr := range []*catalog.Resource{g, u} {
			if _, err := build(t, cr).CheckApply(ctx, a.env, apply); err != nil {
				t.Fatalf("%s apply=%v: %v", cr.Address, apply, err)
			}
		}
	}
	if got := a.entry("/etc/passwd", "alice"); got != "alice:x:1000:2000::/home/alice:/bin/sh" {
		t.Errorf("/etc/passwd: %q", got)
	}
}

// manage_home never hands an existing directory that is not the user's standard home, such
// as /etc, to the user.
func TestUserHomeNeverTakesOverASystemDirectory(t *testing.T) {
	t.Parallel()
	a := newAccounts(t)
	a.mkdir("/srv/www", 0o755)
	_, err := a.runErr(user("bob", map[string]any{"uid": 1700, "home": "/srv/www"}), true)
	if err == nil || !strings.Contains(err.Error(), "exists and belongs to root:root: Satchel gives a home to its user only when it creates it or the user owns it already") {
		t.Fatalf("home = /srv/www: %v", err)
	}
	a.assertOwner("/srv/www", syscall.S_IFDIR, 0o755, 0, 0)
}
