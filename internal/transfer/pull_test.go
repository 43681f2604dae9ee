package transfer

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/satchelcm/satchel/internal/store"
)

// A full pull through the delta from nothing, then an update through the delta v1 → v2:
// the update reads a small fraction of what a full transfer does.
func TestPullFullThenUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := f.serve(t)
	c, _ := testClient(t, url)
	s := newStore(t)

	st := mustPull(t, c, s, f.v1)
	checkComplete(t, s, f.v1)
	full := f.index(t, store.ID{}, f.v1)
	if !st.Delta || !st.From.IsZero() || st.Objects+st.Chunks != 0 || st.Payloads != len(full.Entries) {
		t.Errorf("full pull: %+v; want all %d payloads from the delta from nothing", st, len(full.Entries))
	}
	idxSize := f.fileSize(t, store.DeltaIndexPath(store.ID{}, f.v1))
	if st.BodyBytes != full.PackSize()+idxSize {
		t.Errorf("full pull read %d bytes, want the pack and the index: %d", st.BodyBytes, full.PackSize()+idxSize)
	}

	st = mustPull(t, c, s, f.v2, f.v1)
	checkComplete(t, s, f.v2)
	if !st.Delta || st.From != f.v1 || st.Objects+st.Chunks != 0 {
		t.Errorf("update: %+v; want everything from the delta v1 → v2", st)
	}
	fullV2 := f.index(t, store.ID{}, f.v2).PackSize()
	if st.BodyBytes*10 > fullV2 {
		t.Errorf("update read %d bytes, more than a tenth of the full pack (%d)", st.BodyBytes, fullV2)
	}
	if st.Requests > 1+defaultStreams {
		t.Errorf("update: %d requests", st.Requests)
	}

	// Nothing missing: no request at all.
	if st := mustPull(t, c, s, f.v2, f.v1); st.Requests != 0 || st.BodyBytes != 0 {
		t.Errorf("pull of a complete tree: %+v, want no request", st)
	}
}

// A node that has no FROM the server has a delta from gets the delta from nothing, and
// only the entries it lacks.
func TestPullHaveUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := testClient(t, f.serve(t))
	s := storeWith(t, f.v1Dir)
	other := store.Sum([]byte("a root the server has no delta from"))
	st := mustPull(t, c, s, f.v2, other)
	checkComplete(t, s, f.v2)
	if !st.Delta || !st.From.IsZero() {
		t.Errorf("%+v: want the delta from nothing", st)
	}
	full := f.index(t, store.ID{}, f.v2)
	if st.BodyBytes > full.PackSize()/2 {
		t.Errorf("read %d bytes of a pack of %d, though the store had v1", st.BodyBytes, full.PackSize())
	}
}

// Without any delta on the server, a pull fetches objects and chunks one by one, from
// Handler and from a plain static file server.
func TestPullNoDeltas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.removeDeltas(t)
	for name, url := range map[string]string{
		"Handler":    f.serve(t),
		"FileServer": serve(t, http.FileServer(http.Dir(f.dir))),
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := testClient(t, url)
			s := newStore(t)
			st := mustPull(t, c, s, f.v1)
			checkComplete(t, s, f.v1)
			if st.Delta || st.Payloads != 0 || st.Objects == 0 || st.Chunks == 0 {
				t.Errorf("%+v: want objects and chunks fetched singly", st)
			}
			// The update: only what v2 adds.
			st = mustPull(t, c, s, f.v2, f.v1)
			checkComplete(t, s, f.v2)
			if st.Chunks > 10 {
				t.Errorf("update fetched %d chunks", st.Chunks)
			}
		})
	}
}

// An object store without list permission (S3, GCS) answers 403 for a missing key: a
// mirror without deltas there is pulled file by file.
func TestPullForbiddenMeansMissing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.removeDeltas(t)
	files := http.FileServer(http.Dir(f.dir))
	bucket := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(filepath.Join(f.dir, filepath.FromSlash(r.URL.Path))); err != nil {
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		files.ServeHTTP(w, r)
	}))
	c, _ := testClient(t, bucket)
	s := newStore(t)
	st := mustPull(t, c, s, f.v1)
	checkComplete(t, s, f.v1)
	if st.Delta || st.Retries != 0 || st.Objects == 0 {
		t.Errorf("%+v: want everything singly, no retries", st)
	}
}

// stripRange is a server that does not serve ranges: it answers every GET with the whole
// file.
func stripRange(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
		h.ServeHTTP(w, r)
	})
}

// A server that ignores Range: the pack is read once, whole, whatever the streams.
func TestPullWithoutRanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := testClient(t, serve(t, stripRange(http.FileServer(http.Dir(f.dir)))))
	s := storeWith(t, f.v1Dir)
	st := mustPull(t, c, s, f.v2, f.v1)
	checkComplete(t, s, f.v2)
	x := f.index(t, f.v1, f.v2)
	idx := f.fileSize(t, store.DeltaIndexPath(f.v1, f.v2))
	if st.Requests != 2 || st.BodyBytes > x.PackSize()+idx {
		t.Errorf("%+v: want 2 requests (index, pack) and at most %d bytes", st, x.PackSize()+idx)
	}

	// The full pack, into a store that has v1: read once up to the last entry needed.
	s = storeWith(t, f.v1Dir)
	st = mustPull(t, c, s, f.v2)
	checkComplete(t, s, f.v2)
	x = f.index(t, store.ID{}, f.v2)
	idx = f.fileSize(t, store.DeltaIndexPath(store.ID{}, f.v2))
	if st.Requests != 2 || st.BodyBytes > x.PackSize()+idx {
		t.Errorf("%+v: want 2 requests and at most %d bytes", st, x.PackSize()+idx)
	}
}

// A server with nothing: an error that says what is missing and why. A server that
// refuses: the status, with no retry.
func TestPullErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	h, err := NewHandler(empty)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	root := store.Sum([]byte("no such tree"))
	c, _ := testClient(t, serve(t, h))
	st, err := c.Pull(context.Background(), newStore(t), root, nil)
	if err == nil {
		t.Fatal("pull from an empty server succeeded")
	}
	for _, want := range []string{"pull " + root.String(), "1 object still missing", "objects/" + root.String()[:2] + "/" + root.String() + ".zst: 404 Not Found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if st.Requests != 2 || st.Retries != 0 {
		t.Errorf("%+v: want 2 requests (the index, the root), no retry", st)
	}

	forbidden := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	c, _ = testClient(t, forbidden)
	st, err = c.Pull(context.Background(), newStore(t), root, nil)
	// A 403 on a delta's index is how object stores (S3, GCS) say a key is missing: the
	// pull goes on file by file, and the root's 403 is the error.
	if err == nil || !strings.Contains(err.Error(), "GET "+forbidden+"objects/") || !strings.Contains(err.Error(), ": 403 Forbidden") {
		t.Errorf("error %v: want the root object's 403", err)
	}
	if st.Requests != 2 || st.Retries != 0 {
		t.Errorf("%+v: want 2 requests (the index, the root), no retry of a 403", st)
	}

	// A server that fails: retried, then given up.
	failing := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	c, _ = testClient(t, failing)
	c.MaxAttempts = 3
	st, err = c.Pull(context.Background(), newStore(t), root, nil)
	if err == nil || !strings.Contains(err.Error(), "503 Service Unavailable") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %v: want the 503, given up after 3 attempts", err)
	}
	if st.Retries != 2 || st.Requests != 3 {
		t.Errorf("%+v: want 3 requests, 2 retries", st)
	}
	if !errors.Is(err, errGaveUp) {
		t.Errorf("error %v does not wrap errGaveUp", err)
	}
}

// A GC of the store while a pull runs is refused (store.ErrBusy): what the pull found
// present, the bases of its delta among them, stays until it is done.
func TestPullHoldsStoreAgainstGC(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h, err := NewHandler(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	started, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".pack") {
			once.Do(func() { close(started) })
			<-unblock
		}
		h.ServeHTTP(w, r)
	}))
	c, _ := testClient(t, url)
	s := storeWith(t, f.v1Dir)
	done := make(chan error, 1)
	go func() {
		_, err := c.Pull(context.Background(), s, f.v2, []store.ID{f.v1})
		done <- err
	}()
	<-started
	_, gcErr := s.GC(context.Background(), []store.ID{f.v1})
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(gcErr, store.ErrBusy) {
		t.Errorf("GC during the pull: %v, want ErrBusy", gcErr)
	}
	checkComplete(t, s, f.v2)
	if _, err := s.GC(context.Background(), []store.ID{f.v2}); err != nil {
		t.Errorf("GC after the pull: %v", err)
	}
}
