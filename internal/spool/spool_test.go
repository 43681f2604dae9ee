package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, dir string, maxBytes int64) *Spool {
	t.Helper()
	s, err := Open(dir, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *Spool, kind, data string) string {
	t.Helper()
	name, err := s.Put(kind, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func names(t *testing.T, s *Spool) []string {
	t.Helper()
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

func TestPutListRead(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	s := open(t, dir, 1<<20)
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("spool directory: %v, %v; want mode 0700", info, err)
	}
	before := time.Now().UTC()
	var want []string
	for i, kind := range []string{"report", "facts", "report"} {
		want = append(want, put(t, s, kind, fmt.Sprintf("entry %d", i)))
	}
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v in the order of Put", got, want)
	}
	for i, e := range entries {
		if !nameRE.MatchString(e.Name) || !strings.Contains(e.Name, "-"+e.Kind+"-") {
			t.Errorf("entry %d: name %q, kind %q", i, e.Name, e.Kind)
		}
		if e.Size != int64(len("entry 0")) {
			t.Errorf("entry %d: size %d", i, e.Size)
		}
		if e.Time.Before(before.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) || e.Time.Location() != time.UTC {
			t.Errorf("entry %d: time %v, want about now, in UTC", i, e.Time)
		}
		data, err := s.Read(e.Name)
		if err != nil || string(data) != fmt.Sprintf("entry %d", i) {
			t.Errorf("Read(%s) = %q, %v", e.Name, data, err)
		}
	}
	if err := s.Remove(want[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(want[1]); err != nil {
		t.Errorf("removing an entry twice: %v", err)
	}
	if _, err := s.Read(want[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a removed entry: %v, want fs.ErrNotExist", err)
	}
	if got := names(t, s); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Errorf("after Remove, List = %v", got)
	}
}

func TestPutRefusesBadKinds(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 1<<20)
	for _, kind := range []string{"", "Report", "re-port", "../x", "a/b", strings.Repeat("k", 33)} {
		if name, err := s.Put(kind, nil); err == nil {
			t.Errorf("Put(%q) = %s, want an error", kind, name)
		}
	}
	if got := names(t, s); len(got) != 0 {
		t.Errorf("entries after refused Puts: %v", got)
	}
}

// Names stay in the order of Put when the clock stands still or steps back.
func TestNamesFollowPutOrderWhenTheClockStepsBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	clock := time.Date(2026, 11, 26, 16, 30, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	var want []string
	want = append(want, put(t, s, "report", "a"))
	want = append(want, put(t, s, "report", "b")) // same instant
	clock = clock.AddDate(-1, 0, 0)
	want = append(want, put(t, s, "report", "c")) // a year back
	if !strings.HasPrefix(want[0], "20261126T163000.000000000Z-report-") ||
		!strings.HasPrefix(want[1], "20261126T163000.000000001Z-report-") ||
		!strings.HasPrefix(want[2], "20261126T163000.000000002Z-report-") {
		t.Errorf("names %v", want)
	}
	// A new Spool on the same directory (after a reboot) continues from the entries.
	s2 := open(t, dir, 1<<20)
	s2.now = func() time.Time { return clock }
	want = append(want, put(t, s2, "report", "d"))
	if got := names(t, s2); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	clock = time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	if name := put(t, s2, "report", "e"); !strings.HasPrefix(name, "20261231T230000.000000000Z-") {
		t.Errorf("name %s: want the clock's time in UTC once it is past the newest entry", name)
	}
}

func TestPruneKeepsTheNewest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		max   int64
		sizes []int
		keep  int // how many of the newest entries remain
	}{
		{"under the cap", 100, []int{10, 20, 30}, 3},
		{"exactly the cap", 60, []int{10, 20, 30}, 3},
		{"one over", 59, []int{10, 20, 30}, 2},
		{"only the newest fits", 30, []int{10, 20, 30}, 1},
		{"the newest alone is over", 5, []int{10, 20, 30}, 1},
		{"empty entries", 1, []int{0, 0, 0}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t, t.TempDir(), 1<<30)
			var all []string
			for _, n := range tc.sizes {
				all = append(all, put(t, s, "report", strings.Repeat("x", n)))
			}
			s.maxBytes = tc.max
			removed, err := s.Prune()
			if err != nil {
				t.Fatal(err)
			}
			want := all[len(all)-tc.keep:]
			if got := names(t, s); !slices.Equal(got, want) || removed != len(all)-tc.keep {
				t.Errorf("Prune removed %d, left %v; want %v", removed, got, want)
			}
		})
	}
}

// Put prunes: the spool stays within its cap as entries arrive.
func TestPutPrunes(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 25)
	var all []string
	for range 5 {
		all = append(all, put(t, s, "report", "0123456789"))
	}
	if got := names(t, s); !slices.Equal(got, all[3:]) {
		t.Errorf("List = %v, want the two newest %v", got, all[3:])
	}
	big := put(t, s, "report", strings.Repeat("x", 100))
	if got := names(t, s); !slices.Equal(got, []string{big}) {
		t.Errorf("List = %v, want only the new entry over the cap", got)
	}
}

func TestOpenRemovesCrashLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	kept := put(t, s, "report", "kept")
	files := map[string]string{
		tempPrefix + "123456": "half a rep",
		"README":              "not ours",
		"20261126T163000.123Z-report-1a2b3c4d.json":           "wrong time width",
		"20261126T163000.123456789Z-report-1a2b3c4d.json.bak": "wrong suffix",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "20261126T163000.123456789Z-report-00000000.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); !slices.Equal(got, []string{kept}) {
		t.Errorf("List = %v, want only %s: temporary and foreign files are not entries", got, kept)
	}
	s2 := open(t, dir, 1<<20)
	if _, err := os.Stat(filepath.Join(dir, tempPrefix+"123456")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover temporary file after Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("Open removed a foreign file: %v", err)
	}
	if got := names(t, s2); !slices.Equal(got, []string{kept}) {
		t.Errorf("after reopening, List = %v, want %v", got, []string{kept})
	}
	if data, err := s2.Read(kept); err != nil || string(data) != "kept" {
		t.Errorf("after reopening, Read = %q, %v", data, err)
	}
}

func TestBadNamesRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "spool"), 1<<20)
	name := put(t, s, "report", "x")
	if err := os.WriteFile(filepath.Join(dir, "secret.json"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"", "x", ".", "..", "../secret.json", "/etc/passwd", "a/b",
		"../spool/" + name, "./" + name, name + "/", tempPrefix + "123456",
		strings.Replace(name, "-report-", "-../-", 1),
	} {
		if data, err := s.Read(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("Read(%q) = %q, %v; want ErrBadName", bad, data, err)
		}
		if err := s.Remove(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("Remove(%q) = %v; want ErrBadName", bad, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secret.json")); err != nil {
		t.Errorf("file outside the spool: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Open(dir, 0); err == nil {
		t.Error("Open with a cap of 0: no error")
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "spool"), 1); err == nil {
		t.Error("Open under a file: no error")
	}
}

func TestConcurrentPuts(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), 1<<20)
	var wg sync.WaitGroup
	const n = 16
	for i := range n {
		wg.Go(func() {
			if _, err := s.Put("report", []byte(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := names(t, s); len(got) != n {
		t.Errorf("%d entries after %d Puts", len(got), n)
	}
}
