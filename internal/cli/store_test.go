package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/store"
)

func TestLineProgress(t *testing.T) {
	t.Parallel()
	var out, pipe lockedBuffer
	p := startLineProgress(&out, true, 50*time.Millisecond)
	p.set("adding: 3 of 10 files")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "\r\033[Kadding: 3 of 10 files") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after the delay; got %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.done()
	if got := out.String(); !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("the progress line is not cleared at the end: %q", got)
	}
	q := startLineProgress(&pipe, false, 0)
	q.set("adding")
	time.Sleep(250 * time.Millisecond)
	q.done()
	if pipe.String() != "" {
		t.Errorf("progress written to a non-terminal: %q", pipe.String())
	}
}

func TestLsMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    store.Entry
		want string
	}{
		{store.Entry{Kind: store.KindFile, Mode: 0o644}, "-rw-r--r--"},
		{store.Entry{Kind: store.KindFile, Mode: 0o4755}, "-rwsr-xr-x"},
		{store.Entry{Kind: store.KindFile, Mode: 0o2644}, "-rw-r-Sr--"},
		{store.Entry{Kind: store.KindDir, Mode: 0o1777}, "drwxrwxrwt"},
		{store.Entry{Kind: store.KindDir, Mode: 0o1770}, "drwxrwx--T"},
		{store.Entry{Kind: store.KindDir, Mode: 0o2750}, "drwxr-s---"},
		{store.Entry{Kind: store.KindSymlink}, "lrwxrwxrwx"},
	} {
		if got := lsMode(tc.e); got != tc.want {
			t.Errorf("lsMode(%c %04o) = %s, want %s", tc.e.Kind, tc.e.Mode, got, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 626_299_699: "597.3 MiB", 1 << 40: "1.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %s, want %s", n, got, want)
		}
	}
}
