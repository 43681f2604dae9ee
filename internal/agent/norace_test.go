//go:build !race

// Tests too slow under the race detector: make check runs them without it.

package agent

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An endless response (a hostile or broken mirror) is cut at the size limit and refused;
// nothing is applied. (The limits are those of the largest object a store may hold, about
// 1 GiB, so this reads 1.6 GB from loopback: minutes under the race detector.)
func TestEndlessResponseRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.release("1", "a\n")
	f.cycle(f.options(f.repo))
	f.release("2", "b\n")
	files := http.FileServer(http.Dir(f.repo))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/store/") {
			files.ServeHTTP(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		block := bytes.Repeat([]byte{0x28}, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	opts := f.options(srv.URL)
	opts.PullBackoff, opts.PullAttempts = time.Millisecond, 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Open(opts)
	must(t, err)
	defer a.Close()
	rep, err := a.Cycle(ctx)
	must(t, err)
	if ctx.Err() != nil {
		t.Fatal("the cycle read an endless response until the test's deadline")
	}
	t.Logf("endless response: %s; transfer %+v", rep.Error, rep.Transfer)
	if rep.Outcome != Reapplied || rep.Release != 1 || !strings.Contains(rep.Error, "release 2") {
		t.Fatalf("endless response: %s release %d error %q; want release 2 refused, 1 re-applied", rep.Outcome, rep.Release, rep.Error)
	}
	f.wantFiles("1", "a\n")
}
