package agent

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// randomText returns n bytes that do not compress, as printable text.
func randomText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return string(b)
}

// flakyMirror serves a directory over HTTP and can go down: after cutAfter body bytes it
// cuts every response in the middle and answers 503 until brought up again.
type flakyMirror struct {
	dir      string
	cutAfter int64
	sent     atomic.Int64
	mu       sync.Mutex
	down     bool
	chunks   map[string]int // chunk paths served in full, and how often
}

func (m *flakyMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	down := m.down
	m.mu.Unlock()
	if down {
		http.Error(w, "mirror down", http.StatusServiceUnavailable)
		return
	}
	rec := httptest.NewRecorder()
	http.FileServer(http.Dir(m.dir)).ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	if m.cutAfter > 0 && m.sent.Add(int64(len(body))) > m.cutAfter {
		// Half the body, then the connection is cut and the mirror is down.
		_, _ = w.Write(body[:len(body)/2])
		m.mu.Lock()
		m.down = true
		m.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body)
	if strings.Contains(r.URL.Path, "/chunks/") && rec.Code == http.StatusOK {
		m.mu.Lock()
		m.chunks[r.URL.Path]++
		m.mu.Unlock()
	}
}

// A mirror that goes down in the middle of a release's transfer costs nothing that was
// stored: the node keeps its release, and once the mirror is up again it fetches only
// what it lacks — no chunk twice — and applies the release.
func TestMirrorDownMidTransferResumes(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	mirror := &flakyMirror{dir: f.repo, chunks: map[string]int{}}
	srv := httptest.NewServer(mirror)
	t.Cleanup(srv.Close)
	opts := f.options(srv.URL)
	opts.PullBackoff, opts.PullAttempts = time.Millisecond, 2
	f.release("1", "a\n")
	f.cycle(opts)

	big := randomText(1, 3<<20)
	f.release("2", big)
	mirror.cutAfter = mirror.sent.Load() + 1<<20 // about a third of release 2
	rep := f.cycle(opts)
	if rep.Outcome != Reapplied || rep.Release != 1 || !strings.Contains(rep.Error, "release 2") {
		t.Fatalf("mirror down: %s release %d error %q; want release 1 re-applied and release 2's fetch failing", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("1", "a\n")
	first := rep.Transfer.Bytes

	mirror.mu.Lock()
	mirror.down, mirror.cutAfter = false, 0
	mirror.mu.Unlock()
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 2 {
		t.Fatalf("mirror up: %s release %d error %q; want release 2 applied", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("2", big)
	for p, n := range mirror.chunks {
		if n > 1 {
			t.Errorf("chunk %s sent %d times", p, n)
		}
	}
	if first == 0 || rep.Transfer.Bytes >= int64(len(big)) {
		t.Errorf("transfers: %d bytes before the cut, %d after; want the second to fetch only what is missing of %d", first, rep.Transfer.Bytes, len(big))
	}
	t.Logf("before the cut %d bytes, after %d bytes, content %d bytes", first, rep.Transfer.Bytes, len(big))
}

// Outside the transfer windows a release needing more than small_transfer waits for the
// window; the last good release is applied meanwhile. A small change goes through at once.
func TestTransferWindowDefersLargeContent(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	opts := f.options(f.repo)
	now := time.Now()
	minute := now.Hour()*60 + now.Minute()
	// A window that opens in two hours and lasts one.
	opts.Windows = []Window{{Start: (minute + 120) % 1440, End: (minute + 180) % 1440}}
	opts.SmallTransfer = 64 << 10
	f.release("1", "small\n")
	rep := f.cycle(opts)
	if rep.Outcome != Applied {
		t.Fatalf("a small release outside the window: %s %q; want applied", rep.Outcome, rep.Error)
	}
	big := randomText(2, 1<<20)
	f.release("2", big)
	rep = f.cycle(opts)
	if rep.Outcome != Reapplied || rep.Release != 1 || !strings.Contains(rep.Deferred, "release 2 needs more than 64.0 KiB outside the transfer windows") {
		t.Fatalf("a large release outside the window: %s release %d deferred %q error %q", rep.Outcome, rep.Release, rep.Deferred, rep.Error)
	}
	if rep.Transfer.Bytes > 64<<10+256<<10 {
		t.Errorf("downloaded %d bytes outside the window", rep.Transfer.Bytes)
	}
	f.wantFiles("1", "small\n")
	if st := f.readState(); st.Failures != 0 {
		t.Errorf("a deferral counted as a failure: %+v", st)
	}
	// Inside the window (no windows: always), it is fetched, resuming.
	opts.Windows = nil
	rep = f.cycle(opts)
	if rep.Outcome != Applied || rep.Release != 2 {
		t.Fatalf("in the window: %s release %d error %q", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("2", big)
}

// Run cycles until stopped; the stop (SIGTERM's context) ends it cleanly, with the state
// saved and the next run recorded.
func TestRunStopsCleanly(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	opts := f.options(f.repo)
	opts.Interval, opts.Splay = time.Minute, 0
	a, err := Open(opts)
	must(t, err)
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(f.log.String(), "next cycle at") {
		if time.Now().After(deadline) {
			t.Fatalf("no cycle within a minute; log:\n%s", f.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	st := f.readState()
	if st.Good == nil || st.Good.Version != 1 || st.NextRun.IsZero() || st.NextRun.Before(time.Now().Add(30*time.Second)) {
		t.Errorf("state after Run: %+v; want release 1 good and the next run about a minute ahead", st)
	}
	f.wantFiles("1", "a\n")
	// A second agent on the same state directory is refused while one runs.
	b, err := Open(opts)
	if err == nil {
		b.Close()
		t.Error("a second agent opened the state directory of a running one")
	} else if !strings.Contains(err.Error(), "another agent is running") {
		t.Errorf("second agent: %v", err)
	}
}

// A node whose clock is wrong — 1970 after a dead RTC battery, or 2040 — still accepts a
// valid newer release and still refuses an old one.
func TestWrongClock(t *testing.T) {
	t.Parallel()
	for name, clock := range map[string]time.Time{
		"1970": time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		"2040": time.Date(2040, 6, 1, 0, 0, 0, 0, time.UTC),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t)
			opts := f.options(f.repo)
			f.release("1", "a\n")
			f.cycle(opts) // the clock was right then
			old := f.snapshot()
			f.release("2", "b\n")
			opts.Now = func() time.Time { return clock }
			rep := f.cycle(opts)
			if rep.Outcome != Applied || rep.Release != 2 {
				t.Fatalf("clock %s: %s release %d error %q refresh %q; want release 2 applied", name, rep.Outcome, rep.Release, rep.Error, rep.RefreshErrors)
			}
			f.wantFiles("2", "b\n")
			opts.Config.Repositories = []string{old}
			rep = f.cycle(opts)
			if len(rep.RefreshErrors) != 1 || !strings.Contains(rep.RefreshErrors[0], "REFUSED") || rep.Release != 2 {
				t.Fatalf("clock %s, old repository: release %d refresh %q; want it refused", name, rep.Release, rep.RefreshErrors)
			}
			f.wantFiles("2", "b\n")
		})
	}
}

// The state directory's files are private to root, even when the directory was made
// before, open to others.
func TestStateDirPrivate(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	must(t, os.Mkdir(f.state, 0o755))
	must(t, os.Chmod(f.state, 0o755))
	f.cycle(f.options(f.repo))
	if !strings.Contains(f.log.String(), "had mode 0755, open to others: now 0700") {
		t.Errorf("log: %s", f.log)
	}
	for _, p := range []string{"", stateFileName, trustDirName} {
		info, err := os.Stat(filepath.Join(f.state, p))
		must(t, err)
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", filepath.Join(f.state, p), info.Mode().Perm())
		}
	}
}

// A state directory another user owns is refused: that user could change the trust, the
// state and the backups a rollback restores.
func TestStateDirOfAnotherUserRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	f := newFleet(t)
	must(t, os.Mkdir(f.state, 0o700))
	must(t, os.Chown(f.state, 12345, 12345))
	_, err := Open(f.options(f.repo))
	if err == nil || !strings.Contains(err.Error(), "belongs to user 12345") {
		t.Fatalf("Open: %v, want it refused", err)
	}
}
