package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "var", "lib", "satchel", "backups"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func save(t *testing.T, s *Store, path, content string, when time.Time) Entry {
	t.Helper()
	e, err := s.Save(Entry{Path: path, Mode: 0o644, Time: when, Reason: "replaced by test"}, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readContent(s *Store, e Entry) ([]byte, error) {
	rc, err := s.Open(e)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func sum(content string) string {
	h := sha256.Sum256([]byte(content))
	return hex.EncodeToString(h[:])
}

// objectFiles lists the files under objects/, relative to it.
func objectFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(s.objectsDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(s.objectsDir(), p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	des, err := os.ReadDir(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func indexLines(t *testing.T, s *Store) []string {
	t.Helper()
	b, err := os.ReadFile(s.indexPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("index does not end with a newline: %q", b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func ids(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.ID
	}
	return out
}

func sameIDs(t *testing.T, what string, got []Entry, want ...Entry) {
	t.Helper()
	g, w := ids(got), ids(want)
	if strings.Join(g, " ") != strings.Join(w, " ") {
		t.Fatalf("%s: got %v, want %v", what, g, w)
	}
}

var idRE = regexp.MustCompile(`^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$`)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	before := time.Now()
	in := Entry{Path: "/etc/motd", Mode: ModeBits(0o755 | fs.ModeSetuid), UID: 0, GID: 42, Reason: "replaced by file.motd"}
	e, err := s.Save(in, strings.NewReader("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !idRE.MatchString(e.ID) {
		t.Errorf("ID %q does not look like 20261126T105712.123456Z-1a2b3c4d", e.ID)
	}
	if e.Path != in.Path || e.Mode != 0o4755 || e.GID != 42 || e.Reason != in.Reason {
		t.Errorf("metadata not kept: %+v", e)
	}
	if e.SHA256 != sum("hello\n") || e.Size != 6 {
		t.Errorf("sha256/size = %s/%d", e.SHA256, e.Size)
	}
	if e.Time.Location() != time.UTC || e.Time.Before(before.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("time %v is not now in UTC", e.Time)
	}
	if !strings.HasPrefix(e.ID, e.Time.Format("20060102T150405.000000Z")) {
		t.Errorf("ID %s does not start with time %v", e.ID, e.Time)
	}

	// A second version, stamped in another time zone, an hour later.
	later := e.Time.Add(time.Hour).In(time.FixedZone("EAT", 3*3600))
	e2 := save(t, s, "/etc/motd", "hello again\n", later)
	if e2.Time.Location() != time.UTC || !e2.Time.Equal(later) {
		t.Errorf("time %v, want %v in UTC", e2.Time, later)
	}
	other := save(t, s, "/etc/hosts", "127.0.0.1 localhost\n", time.Time{})

	list, err := s.List("/etc/motd")
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "List(/etc/motd)", list, e2, e)
	if list[1] != e {
		t.Errorf("listed entry %+v differs from saved %+v", list[1], e)
	}
	all, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "List()", all, e2, other, e)
	if none, err := s.List("/etc/nothing"); err != nil || len(none) != 0 {
		t.Errorf("List(/etc/nothing) = %v, %v", none, err)
	}

	got, err := s.Get(e.ID)
	if err != nil || got != e {
		t.Fatalf("Get(%s) = %+v, %v", e.ID, got, err)
	}
	b, err := readContent(s, got)
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("content = %q, %v", b, err)
	}
	if got.FileMode() != 0o755|fs.ModeSetuid {
		t.Errorf("FileMode() = %v", got.FileMode())
	}

	// What is on disk.
	for p, want := range map[string]fs.FileMode{
		s.Dir():                fs.ModeDir | 0o700,
		s.objectsDir():         fs.ModeDir | 0o700,
		s.indexPath():          0o600,
		s.objectPath(e.SHA256): 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if lines := indexLines(t, s); len(lines) != 3 {
		t.Errorf("index has %d lines, want 3", len(lines))
	}
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	// Another handle on the same directory sees the same entries.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	all2, err := s2.List("")
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "reopened List()", all2, e2, other, e)
}

func TestModeBits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		m    fs.FileMode
		bits uint32
	}{
		{0o644, 0o644},
		{0o755 | fs.ModeSetuid, 0o4755},
		{0o775 | fs.ModeSetgid, 0o2775},
		{0o777 | fs.ModeSticky, 0o1777},
		{0o777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky, 0o7777},
	} {
		if got := ModeBits(c.m); got != c.bits {
			t.Errorf("ModeBits(%v) = %#o, want %#o", c.m, got, c.bits)
		}
		if got := (Entry{Mode: c.bits}).FileMode(); got != c.m {
			t.Errorf("FileMode(%#o) = %v, want %v", c.bits, got, c.m)
		}
	}
	if got := ModeBits(fs.ModeDir | 0o700); got != 0o700 {
		t.Errorf("type bits kept: %#o", got)
	}
}

func TestDedup(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	a := save(t, s, "/etc/a", "same bytes", time.Time{})
	b := save(t, s, "/etc/b", "same bytes", time.Time{})
	c := save(t, s, "/etc/a", "same bytes", time.Time{})
	if a.ID == b.ID || b.ID == c.ID || a.SHA256 != b.SHA256 || b.SHA256 != c.SHA256 {
		t.Fatalf("entries %+v %+v %+v", a, b, c)
	}
	files := objectFiles(t, s)
	want := filepath.Join(a.SHA256[:2], a.SHA256)
	if len(files) != 1 || files[0] != want {
		t.Fatalf("objects = %v, want [%s]", files, want)
	}
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	for _, e := range []Entry{a, b, c} {
		if got, err := readContent(s, e); err != nil || string(got) != "same bytes" {
			t.Errorf("content of %s = %q, %v", e.ID, got, err)
		}
	}
}

func TestCorruptContentDetected(t *testing.T) {
	t.Parallel()
	const content = "the quick brown fox jumps over the lazy dog\n"
	for _, c := range []struct {
		name   string
		damage func(p string) error
	}{
		{"flipped byte", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[10] ^= 0x01
			return os.WriteFile(p, b, 0o600)
		}},
		{"truncated", func(p string) error { return os.Truncate(p, int64(len(content)/2)) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"extended", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("trailing garbage")
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			e := save(t, s, "/etc/fox", content, time.Time{})
			if err := c.damage(s.objectPath(e.SHA256)); err != nil {
				t.Fatal(err)
			}
			rc, err := s.Open(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read %q, err %v; want ErrCorrupt", got, err)
			}
			if !strings.Contains(err.Error(), "/etc/fox") || !strings.Contains(err.Error(), e.ID) {
				t.Errorf("error %q does not name the path and the entry", err)
			}
			// Reading on keeps failing.
			if _, err2 := rc.Read(make([]byte, 10)); !errors.Is(err2, ErrCorrupt) {
				t.Errorf("second read: %v", err2)
			}

			// Saving the same content again repairs the damaged object.
			again := save(t, s, "/etc/fox", content, time.Time{})
			for _, e := range []Entry{e, again} {
				if got, err := readContent(s, e); err != nil || string(got) != content {
					t.Errorf("after repair, content of %s = %q, %v", e.ID, got, err)
				}
			}
		})
	}
}

func TestCorruptEntryDetected(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	e := save(t, s, "/etc/motd", "hello", time.Time{})

	wrongSize := e
	wrongSize.Size++
	if _, err := readContent(s, wrongSize); !errors.Is(err, ErrCorrupt) {
		t.Errorf("entry with the wrong size: %v", err)
	}
	bogus := e
	bogus.SHA256 = "../../../../etc/passwd"
	if _, err := s.Open(bogus); !errors.Is(err, ErrCorrupt) {
		t.Errorf("entry with a bogus hash: %v", err)
	}
	if err := os.Remove(s.objectPath(e.SHA256)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(e); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
}

func TestTornIndexLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		tail  string
		valid bool // the tail is a complete entry, merely unterminated
	}{
		{"partial json", `{"id":"20261126T105712.123456Z-0123abcd","path":"/etc/mo`, false},
		{"nul bytes", strings.Repeat("\x00", 300), false},
		{"garbage", "\xff\xfe not json at all", false},
		{"huge garbage", strings.Repeat("x", maxLine+100), false},
		{"unterminated entry", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			a := save(t, s, "/etc/a", "a", t0)
			b := save(t, s, "/etc/b", "b", t0.Add(time.Minute))
			tail := c.tail
			var hidden Entry
			if c.valid {
				// A complete line whose newline did not reach the disk.
				hidden = Entry{ID: newID(t0.Add(2 * time.Minute)), Path: "/etc/a", SHA256: a.SHA256, Size: a.Size, Time: t0.Add(2 * time.Minute)}
				j, _ := json.Marshal(hidden)
				tail = string(j)
			}
			f, err := os.OpenFile(s.indexPath(), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tail); err != nil {
				t.Fatal(err)
			}
			f.Close()

			want := []Entry{b, a}
			if c.valid {
				want = []Entry{hidden, b, a}
			}
			list, err := s.List("")
			if err != nil {
				t.Fatal(err)
			}
			sameIDs(t, "List() with torn tail", list, want...)

			d := save(t, s, "/etc/d", "d", t0.Add(3*time.Minute))
			list, err = s.List("")
			if err != nil {
				t.Fatal(err)
			}
			sameIDs(t, "List() after next Save", list, append([]Entry{d}, want...)...)
			if got, err := s.Get(d.ID); err != nil || got != d {
				t.Errorf("Get(%s) = %+v, %v", d.ID, got, err)
			}

			// The torn line stays on a line of its own; the new entry starts a fresh line.
			lines := indexLines(t, s)
			if len(lines) != 4 || lines[2] != tail {
				t.Fatalf("index lines = %d, third %.80q", len(lines), lines[2])
			}
			if e, ok := parseEntry([]byte(lines[3])); !ok || e != d {
				t.Errorf("last line %q is not the new entry", lines[3])
			}

			// Prune compacts the torn line away and keeps every entry.
			removed, err := s.Prune(0, 0)
			if err != nil || len(removed) != 0 {
				t.Fatalf("Prune = %v, %v", removed, err)
			}
			if lines := indexLines(t, s); len(lines) != len(want)+1 {
				t.Errorf("after Prune the index has %d lines, want %d", len(lines), len(want)+1)
			}
			list, err = s.List("")
			if err != nil {
				t.Fatal(err)
			}
			sameIDs(t, "List() after Prune", list, append([]Entry{d}, want...)...)
		})
	}
}

func TestPruneByAge(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	now := time.Now()
	oldA := save(t, s, "/etc/a", "shared", now.Add(-72*time.Hour))
	oldC := save(t, s, "/etc/c", "only old", now.Add(-48*time.Hour))
	newB := save(t, s, "/etc/b", "shared", now.Add(-time.Hour))
	newD := save(t, s, "/etc/d", "only new", now)

	removed, err := s.Prune(24*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "removed", removed, oldA, oldC)
	list, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "kept", list, newD, newB)
	if _, err := s.Get(oldA.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(removed) = %v", err)
	}
	// "shared" is still referenced by newB; "only old" is not.
	if _, err := os.Stat(s.objectPath(sum("shared"))); err != nil {
		t.Errorf("referenced object deleted: %v", err)
	}
	if _, err := os.Stat(s.objectPath(sum("only old"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unreferenced object kept: %v", err)
	}
	for _, e := range list {
		if _, err := readContent(s, e); err != nil {
			t.Errorf("kept entry %s: %v", e.ID, err)
		}
	}
	if lines := indexLines(t, s); len(lines) != 2 {
		t.Errorf("index has %d lines after prune, want 2", len(lines))
	}
	// Nothing more to do.
	if removed, err := s.Prune(24*time.Hour, 0); err != nil || len(removed) != 0 {
		t.Errorf("second Prune = %v, %v", removed, err)
	}
}

func TestPruneBySize(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	x, y, z := strings.Repeat("x", 100), strings.Repeat("y", 100), strings.Repeat("z", 50)
	now := time.Now()
	e1 := save(t, s, "/etc/1", x, now.Add(-4*time.Hour))
	e2 := save(t, s, "/etc/2", y, now.Add(-3*time.Hour))
	e3 := save(t, s, "/etc/3", x, now.Add(-1*time.Hour))
	e4 := save(t, s, "/etc/4", z, now.Add(-2*time.Hour))

	// Stored: x 100 + y 100 + z 50 = 250. Removing e1 frees nothing (e3 shares x), removing
	// e2 frees 100: 150 <= 160.
	removed, err := s.Prune(0, 160)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "removed", removed, e1, e2)
	list, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "kept", list, e3, e4)
	if files := objectFiles(t, s); len(files) != 2 {
		t.Errorf("objects = %v, want x and z", files)
	}
	for _, e := range list {
		if _, err := readContent(s, e); err != nil {
			t.Errorf("kept entry %s: %v", e.ID, err)
		}
	}

	// Exactly at the limit: nothing to do.
	if removed, err := s.Prune(0, 150); err != nil || len(removed) != 0 {
		t.Errorf("Prune(0, 150) = %v, %v", ids(removed), err)
	}
	// Age and size together: age first, then the oldest of the rest.
	e5 := save(t, s, "/etc/5", "five", now.Add(-30*time.Minute))
	removed, err = s.Prune(90*time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "removed", removed, e4, e3)
	list, _ = s.List("")
	sameIDs(t, "kept", list, e5)
	// A limit below the newest entry removes everything.
	removed, err = s.Prune(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "removed", removed, e5)
	if files := objectFiles(t, s); len(files) != 0 {
		t.Errorf("objects left: %v", files)
	}
	if _, err := s.Prune(-time.Hour, 0); err == nil {
		t.Error("negative max age accepted")
	}
}

func TestPruneCollectsGarbage(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	e := save(t, s, "/etc/motd", "kept", time.Time{})

	// An object whose entry never made it to the index (crash between rename and append).
	orphan := s.objectPath(sum("orphan"))
	if err := os.MkdirAll(filepath.Dir(orphan), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("orphan"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A temporary file from a crashed Save, one from a Save still running (recent), and one
	// from a crashed Prune.
	stale := filepath.Join(s.tmpDir(), "save-stale")
	fresh := filepath.Join(s.tmpDir(), "save-fresh")
	indexTmp := filepath.Join(s.Dir(), "index.jsonl.tmp-123")
	for _, p := range []string{stale, fresh, indexTmp} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	// An old temporary file that a running Save holds locked.
	locked := filepath.Join(s.tmpDir(), "save-locked")
	if err := os.WriteFile(locked, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Open(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := flock(lf, syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(locked, old, old); err != nil {
		t.Fatal(err)
	}

	removed, err := s.Prune(0, 0)
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	for p, want := range map[string]bool{
		orphan:                 false,
		s.objectPath(e.SHA256): true,
		stale:                  false,
		fresh:                  true,
		locked:                 true,
		indexTmp:               false,
	} {
		_, err := os.Stat(p)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists = %v, want %v (%v)", p, exists, want, err)
		}
	}
	if got, err := readContent(s, e); err != nil || string(got) != "kept" {
		t.Errorf("content = %q, %v", got, err)
	}
}

func TestGetByPrefix(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	jan1 := save(t, s, "/etc/a", "1", time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC))
	jan2 := save(t, s, "/etc/a", "2", time.Date(2024, 1, 2, 12, 0, 0, 0, time.UTC))
	mar := save(t, s, "/etc/b", "3", time.Date(2025, 3, 4, 5, 6, 7, 890123000, time.UTC))
	if mar.ID[:23] != "20250304T050607.890123Z" {
		t.Errorf("ID %s", mar.ID)
	}

	for _, c := range []struct {
		id   string
		want Entry
	}{
		{jan1.ID, jan1},
		{jan2.ID, jan2},
		{"20240102", jan2},
		{"202503", mar},
		{mar.ID[:len(mar.ID)-3], mar},
	} {
		got, err := s.Get(c.id)
		if err != nil || got != c.want {
			t.Errorf("Get(%q) = %v, %v; want %v", c.id, got.ID, err, c.want.ID)
		}
	}

	_, err := s.Get("202401")
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), jan1.ID) || !strings.Contains(err.Error(), jan2.ID) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := s.Get("2024"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short prefix: %v", err)
	}
	if _, err := s.Get(""); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("empty ID: %v", err)
	}
	if _, err := s.Get("209912"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown prefix: %v", err)
	}
	if _, err := s.Get(jan1.ID + "0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("longer than an ID: %v", err)
	}

	empty := newStore(t)
	if _, err := empty.Get("20240101"); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty store: %v", err)
	}
	if l, err := empty.List(""); err != nil || len(l) != 0 {
		t.Errorf("empty store List = %v, %v", l, err)
	}
}

func TestSaveRejects(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, c := range []struct {
		name string
		e    Entry
		r    io.Reader
		msg  string
	}{
		{"relative path", Entry{Path: "etc/motd"}, strings.NewReader("x"), "not absolute"},
		{"unclean path", Entry{Path: "/etc/../etc/motd"}, strings.NewReader("x"), "not absolute"},
		{"empty path", Entry{}, strings.NewReader("x"), "not absolute"},
		{"type bits", Entry{Path: "/etc/motd", Mode: uint32(fs.ModeDir | 0o755)}, strings.NewReader("x"), "mode"},
		{"unexpected hash", Entry{Path: "/etc/motd", SHA256: sum("y")}, strings.NewReader("x"), "expected " + sum("y")},
		{"unexpected size", Entry{Path: "/etc/motd", Size: 7}, strings.NewReader("x"), "expected 7"},
		{"read error", Entry{Path: "/etc/motd"}, io.MultiReader(strings.NewReader("x"), errReader{}), "disk on fire"},
	} {
		_, err := s.Save(c.e, c.r)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "save") {
			t.Errorf("%s: err = %v, want one mentioning %q", c.name, err, c.msg)
		}
	}
	if list, err := s.List(""); err != nil || len(list) != 0 {
		t.Errorf("rejected saves recorded: %v, %v", list, err)
	}
	if files := objectFiles(t, s); len(files) != 0 {
		t.Errorf("rejected saves stored objects: %v", files)
	}
	if tmp := tmpFiles(t, s); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	// The expected hash and size, when right, are accepted.
	if _, err := s.Save(Entry{Path: "/etc/motd", SHA256: sum("x"), Size: 1}, strings.NewReader("x")); err != nil {
		t.Error(err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestOpenStoreErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Open(file) = %v", err)
	}
	if _, err := Open(filepath.Join(file, "sub")); err == nil {
		t.Error("Open(file/sub) succeeded")
	}
}

// genReader produces size pseudo-random bytes without holding them: it cycles through a
// pattern whose length is prime, so no two buffers read in a row look alike.
type genReader struct {
	pattern   []byte
	off       int
	remaining int64
}

func newGen(size int64) *genReader {
	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 65521)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return &genReader{pattern: p, remaining: size}
}

func (g *genReader) Read(b []byte) (int, error) {
	if g.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > g.remaining {
		b = b[:g.remaining]
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], g.pattern[g.off:])
		n += c
		g.off = (g.off + c) % len(g.pattern)
	}
	g.remaining -= int64(n)
	return n, nil
}

// TestLargeSaveBoundedMemory saves 64 MiB from a generator and checks that Save and Open
// allocate a small fraction of that. It does not call t.Parallel: runtime.MemStats counts the
// allocations of the whole process, and sequential tests run while parallel ones are paused,
// so the measurement sees this test's allocations only.
func TestLargeSaveBoundedMemory(t *testing.T) {
	const size = 64 << 20
	const budget = 4 << 20
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	s := newStore(t)

	want := sha256.New()
	if _, err := io.Copy(want, newGen(size)); err != nil {
		t.Fatal(err)
	}
	wantSum := hex.EncodeToString(want.Sum(nil))

	gen := newGen(size)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	e, err := s.Save(Entry{Path: "/srv/library/big.iso", Mode: 0o644, Reason: "replaced by tree.library"}, gen)
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != size || e.SHA256 != wantSum {
		t.Fatalf("saved %d bytes, sha256 %s; want %d, %s", e.Size, e.SHA256, size, wantSum)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > budget {
		t.Errorf("Save of %d MiB allocated %d bytes, over the %d budget", size>>20, alloc, budget)
	} else {
		t.Logf("Save of %d MiB allocated %d KiB", size>>20, alloc>>10)
	}

	// Saving it again deduplicates (and verifies the stored copy), still in bounded memory.
	runtime.ReadMemStats(&m0)
	e2, err := s.Save(Entry{Path: "/srv/library/copy.iso", Mode: 0o644}, newGen(size))
	runtime.ReadMemStats(&m1)
	if err != nil || e2.SHA256 != wantSum {
		t.Fatalf("second save: %+v, %v", e2, err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > budget {
		t.Errorf("deduplicating Save allocated %d bytes", alloc)
	}
	if files := objectFiles(t, s); len(files) != 1 {
		t.Errorf("objects = %v", files)
	}

	// Reading it back verifies it, in bounded memory too.
	rc, err := s.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	runtime.ReadMemStats(&m0)
	n, err := io.Copy(got, rc)
	runtime.ReadMemStats(&m1)
	rc.Close()
	if err != nil || n != size || hex.EncodeToString(got.Sum(nil)) != wantSum {
		t.Fatalf("read back %d bytes, %v", n, err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > budget {
		t.Errorf("reading %d MiB allocated %d bytes", size>>20, alloc)
	}
}

func TestConcurrentSaves(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "backups")
	// Two handles on one directory stand for two processes: only the flock orders them.
	var stores [2]*Store
	for i := range stores {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	const workers, perWorker, variants = 8, 16, 5
	// Every third save shares its content with others; the rest are unique, so each Save's
	// object is new and unreferenced until its entry is recorded.
	content := func(k int) string {
		if k%3 == 0 {
			return strings.Repeat(fmt.Sprintf("variant %d\n", k%variants), 1000)
		}
		return strings.Repeat(fmt.Sprintf("unique %d\n", k), 1000)
	}
	sums := make(map[string]bool)
	for k := range workers * perWorker {
		sums[sum(content(k))] = true
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		saved = make(map[string]Entry)
		done  = make(chan struct{})
	)
	// A prune (with no limits, so it only collects garbage) races with the saves: it must
	// never delete an object whose entry is about to be recorded.
	pruned := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				pruned <- nil
				return
			default:
			}
			if removed, err := stores[1].Prune(0, 0); err != nil || len(removed) != 0 {
				pruned <- fmt.Errorf("Prune = %v, %v", removed, err)
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for i := range perWorker {
				e, err := s.Save(Entry{Path: fmt.Sprintf("/etc/w%d", w), Mode: 0o600, Reason: fmt.Sprint(i)}, strings.NewReader(content(w*perWorker+i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				saved[e.ID] = e
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}

	if len(saved) != workers*perWorker {
		t.Fatalf("%d distinct IDs, want %d", len(saved), workers*perWorker)
	}
	list, err := stores[0].List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(saved) {
		t.Fatalf("List has %d entries, want %d", len(list), len(saved))
	}
	for i, e := range list {
		if saved[e.ID] != e {
			t.Errorf("listed %+v, saved %+v", e, saved[e.ID])
		}
		if i > 0 && list[i-1].Time.Before(e.Time) {
			t.Errorf("List not newest first at %d", i)
		}
		if _, err := readContent(stores[0], e); err != nil {
			t.Error(err)
		}
	}
	lines := indexLines(t, stores[0])
	if len(lines) != len(saved) {
		t.Errorf("index has %d lines, want %d", len(lines), len(saved))
	}
	for _, l := range lines {
		if _, ok := parseEntry([]byte(l)); !ok {
			t.Errorf("bad index line %q", l)
		}
	}
	if files := objectFiles(t, stores[0]); len(files) != len(sums) {
		t.Errorf("%d objects, want %d", len(files), len(sums))
	}
	if tmp := tmpFiles(t, stores[0]); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	for w := range workers {
		l, err := stores[1].List(fmt.Sprintf("/etc/w%d", w))
		if err != nil || len(l) != perWorker {
			t.Errorf("List(/etc/w%d) has %d entries, %v", w, len(l), err)
		}
	}
}

func TestScanLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 100<<10) // longer than the reader's buffer, shorter than maxLine
	in := "a\n\nb\n" + long + "\n" + strings.Repeat("z", maxLine+1) + "\nlast"
	var got []string
	if err := scanLines(bytes.NewReader([]byte(in)), func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "", "b", long, "", "last"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %.20q (%d bytes), want %.20q", i, got[i], len(got[i]), want[i])
		}
	}
}

// Since returns what was saved after Mark in the order it was saved, whatever the
// entries' times say (a clock that jumped); a mark pruned away is an error.
func TestMarkSince(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	mark, err := s.Mark()
	if err != nil || mark != "" {
		t.Fatalf("Mark of an empty store = %q, %v", mark, err)
	}
	old := save(t, s, "/etc/a", "a\n", time.Now().Add(24*time.Hour)) // a clock that was ahead
	if got, err := s.Since(mark); err != nil {
		t.Fatal(err)
	} else {
		sameIDs(t, "since the empty mark", got, old)
	}
	mark, err = s.Mark()
	if err != nil || mark != old.ID {
		t.Fatalf("Mark = %q, %v; want %s", mark, err, old.ID)
	}
	e1 := save(t, s, "/etc/b", "b\n", time.Now().Add(-24*time.Hour)) // and one that went back
	e2 := save(t, s, "/etc/a", "a2\n", time.Time{})
	got, err := s.Since(mark)
	if err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "since the mark", got, e1, e2)
	if _, err := s.Prune(time.Hour, 1<<30); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Since(e1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Since a pruned mark: %v, want ErrNotFound", err)
	}
}
