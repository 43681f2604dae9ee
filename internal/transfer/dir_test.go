package transfer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dirClient returns a client of the store directory dir with tiny back-offs.
func dirClient(t *testing.T, dir string) *Client {
	t.Helper()
	c, closeDir, err := NewDirClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeDir() })
	c.MinBackoff, c.MaxBackoff, c.MaxAttempts = time.Millisecond, time.Millisecond, 2
	return c
}

// A directory is pulled from as a server is: through the delta, with ranges of its pack.
func TestPullFromDirectory(t *testing.T) {
	f := newFixture(t)
	c := dirClient(t, f.dir)
	s := storeWith(t, f.v1Dir)
	st := mustPull(t, c, s, f.v2, f.v1)
	if !st.Delta || st.From != f.v1 {
		t.Errorf("pull from a directory: delta %v from %s, want the delta from v1", st.Delta, st.From)
	}
	checkComplete(t, s, f.v2)
}

// What a stick's directory holds besides regular files is refused: a FIFO (which would
// block the pull) and a symbolic link leading out of it are as good as missing, and the
// pull fails naming what is missing rather than hanging or reading elsewhere.
func TestPullFromDirectoryRefusesFIFOAndLinks(t *testing.T) {
	f := newFixture(t)
	f.removeDeltas(t) // so that the root object must come from objects/
	rootObj := filepath.Join(f.dir, "objects", f.v1.String()[:2], f.v1.String()+".zst")
	data, err := os.ReadFile(rootObj)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		make       func(p string) error
	}{
		{"fifo", "404 Not Found", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"symlink out", "403 Forbidden", func(p string) error {
			outside := filepath.Join(t.TempDir(), "copy.zst")
			if err := os.WriteFile(outside, data, 0o644); err != nil {
				return err
			}
			return os.Symlink(outside, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Remove(rootObj); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if err := tc.make(rootObj); err != nil {
				t.Fatal(err)
			}
			c := dirClient(t, f.dir)
			_, err := c.Pull(context.Background(), newStore(t), f.v1, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "file://"+f.dir+"/objects/") {
				t.Fatalf("pull with the root object a %s: %v, want %s naming the file", tc.name, err, tc.want)
			}
		})
	}
}
