package bundle_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
)

// A stick back from the field with links where a bundle goes is written through nowhere:
// an export onto it is refused, or the link itself is replaced; nothing outside changes.
func TestWriteDoesNotFollowLinks(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeFile(t, victim, []byte("outside"))
	files := stickFiles()
	repo := writeRepo(t, files)
	ix := newIndex("links", files, testPartSize)
	signed := signedIndex(t, testFleet(t), ix)

	// A top directory that is a link out: refused before anything is written.
	stick := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(stick, "metadata")); err != nil {
		t.Fatal(err)
	}
	err := bundle.Write(context.Background(), stick, ix, signed, &dirSource{dir: repo}, bundle.WriteOptions{})
	if !errors.Is(err, bundle.ErrDamaged) || !strings.Contains(err.Error(), "empty it first") {
		t.Errorf("Write onto a stick whose metadata/ links out: %v", err)
	}
	// A FIFO where a piece goes: refused, not waited on.
	fifoStick := t.TempDir()
	writeFile(t, filepath.Join(fifoStick, "targets", "x"), nil)
	if err := os.Remove(filepath.Join(fifoStick, "targets", "x")); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(fifoStick, "targets", "releases")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- bundle.Write(context.Background(), fifoStick, ix, signed, &dirSource{dir: repo}, bundle.WriteOptions{})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, bundle.ErrDamaged) {
			t.Errorf("Write onto a stick with a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write waited on a FIFO")
	}
	// The index's temporary name as a link out (outside the repository directories, so
	// scan does not see it): replaced, not written through.
	stick2 := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(stick2, "."+bundle.IndexFile+".partial")); err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(context.Background(), stick2, ix, signed, &dirSource{dir: repo}, bundle.WriteOptions{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := string(readFile(t, victim)); got != "outside" {
		t.Errorf("the file outside the stick now holds %q", got)
	}
}

// A node writing its returns onto a stick whose returns/ holds links or FIFOs writes
// nothing through them: a directory that is a link is refused, a file that is a link is
// replaced, and nothing outside the stick is written or removed.
func TestWriteReturnsDoesNotFollowLinks(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ret := &bundle.Returns{Format: bundle.ReturnsFormat, Node: "school-1", Seq: 1, Written: time.Now(), Bundle: "b",
		Reports: []bundle.ReturnedReport{}}
	signed, err := bundle.SignReturns(ret, key)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "shadow")
	writeFile(t, victim, []byte("outside"))

	for _, tc := range []struct {
		name  string
		setup func(stick string)
		ok    bool
	}{
		{"reports/ a link out", func(stick string) {
			mkdirs(t, filepath.Join(stick, "returns", "school-1"))
			if err := os.Symlink(outside, filepath.Join(stick, "returns", "school-1", "reports")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"returns/ a link out", func(stick string) {
			if err := os.Symlink(outside, filepath.Join(stick, "returns")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the returns file's temporary name a link out", func(stick string) {
			mkdirs(t, filepath.Join(stick, "returns", "school-1", "reports"))
			if err := os.Symlink(victim, filepath.Join(stick, "returns", "school-1", "."+bundle.ReturnsFile+".partial")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a report file a link out", func(stick string) {
			mkdirs(t, filepath.Join(stick, "returns", "school-1", "reports"))
			if err := os.Symlink(victim, filepath.Join(stick, "returns", "school-1", "reports", "r1")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a report file a FIFO", func(stick string) {
			mkdirs(t, filepath.Join(stick, "returns", "school-1", "reports"))
			if err := mkfifo(filepath.Join(stick, "returns", "school-1", "reports", "r1")); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stick := t.TempDir()
			tc.setup(stick)
			done := make(chan error, 1)
			go func() {
				done <- bundle.WriteReturns(stick, "school-1", signed, map[string][]byte{"r1": []byte(`{"run":1}`)})
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("WriteReturns waited on a FIFO")
			}
			if tc.ok != (err == nil) {
				t.Errorf("WriteReturns: %v, want success %v", err, tc.ok)
			}
			if got := string(readFile(t, victim)); got != "outside" {
				t.Errorf("the file outside the stick now holds %q", got)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("the directory outside the stick holds %d entries, want its 1", len(entries))
			}
			if tc.ok {
				if got := string(readFile(t, filepath.Join(stick, "returns", "school-1", "reports", "r1"))); got != `{"run":1}` {
					t.Errorf("report r1 on the stick: %q", got)
				}
			}
		})
	}
}

func mkdirs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
