package fsroot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// newRoot opens a fresh t.TempDir() as a Root and closes it when the test ends.
func newRoot(t testing.TB) (*Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, dir
}

// writeHost creates the file p (and its parents) on the host with content and mode perm.
func writeHost(t testing.TB, p, content string, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // exact, whatever the umask
		t.Fatal(err)
	}
}

func mkdirHost(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlinkHost(t testing.TB, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func readHost(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readlinkHost(t testing.TB, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostStat is os.Lstat's raw stat structure for p.
func hostStat(t testing.TB, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func hostExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func mustExist(t testing.TB, p string) {
	t.Helper()
	if !hostExists(p) {
		t.Fatalf("%s does not exist", p)
	}
}

func mustNotExist(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists (or cannot be checked: %v)", p, err)
	}
}

func hostNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// umask reads the process umask without changing it (syscall.Umask would race with
// parallel tests creating files).
func umask(t testing.TB) fs.FileMode {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read umask: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return fs.FileMode(n)
		}
	}
	t.Skip("no Umask line in /proc/self/status")
	return 0
}

// snapshot describes everything under dir (type, permissions, owner, inode, content, link
// target), so that a test can assert that nothing there changed.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st := hostStat(t, p)
		rel, _ := filepath.Rel(dir, p)
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d ino=%d", st.Mode, st.Uid, st.Gid, st.Ino)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			desc += fmt.Sprintf(" content=%q", readHost(t, p))
		case syscall.S_IFLNK:
			desc += " target=" + readlinkHost(t, p)
		}
		m[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertUnchanged(t testing.TB, dir string, before map[string]string) {
	t.Helper()
	after := snapshot(t, dir)
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if before[k] != after[k] {
			t.Errorf("outside the root, %s changed:\n  before: %s\n  after:  %s", filepath.Join(dir, k), before[k], after[k])
		}
	}
}

// newSentinel makes a directory outside any root, with content that a confinement failure
// would read or change, and returns it with its snapshot.
func newSentinel(t testing.TB) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	writeHost(t, filepath.Join(dir, "secret"), "host secret", 0o644)
	writeHost(t, filepath.Join(dir, "sub", "f"), "host sub", 0o644)
	symlinkHost(t, "host-link-target", filepath.Join(dir, "l"))
	return dir, snapshot(t, dir)
}

// populateMirror creates, inside root, the place where host path sentinel lands when it is
// resolved inside the root, with the same names as the sentinel but different content, and
// one more entry.
func populateMirror(t testing.TB, root, sentinel string) string {
	t.Helper()
	mirror := filepath.Join(root, sentinel)
	writeHost(t, filepath.Join(mirror, "secret"), "root secret", 0o644)
	writeHost(t, filepath.Join(mirror, "sub", "f"), "root sub", 0o644)
	writeHost(t, filepath.Join(mirror, "sub", "only-in-root"), "", 0o644)
	writeHost(t, filepath.Join(mirror, "only-in-root"), "", 0o644)
	symlinkHost(t, "root-link-target", filepath.Join(mirror, "l"))
	return mirror
}

// climb is a relative symlink target that, followed naively from anywhere in a temporary
// directory, climbs to the host's / and then goes down to host path p.
func climb(p string) string {
	return strings.Repeat("../", 40) + strings.TrimPrefix(p, "/")
}
