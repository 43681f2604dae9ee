package transfer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/store"
)

// serverStore returns a store in a temporary directory holding the trees in dirs, and
// their IDs.
func serverStore(t *testing.T, dirs ...string) (*store.Store, []store.ID) {
	t.Helper()
	s := newStore(t)
	var ids []store.ID
	for _, d := range dirs {
		id, err := s.Add(context.Background(), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return s, ids
}

func buildDelta(t *testing.T, s *store.Store, from, to store.ID) store.DeltaStats {
	t.Helper()
	st, err := s.BuildDelta(context.Background(), from, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The bandwidth cap holds: a transfer of B bytes under a limit of L bytes per second takes
// at least (B - burst) / L.
func TestPullLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.bin"), random(rand.New(rand.NewPCG(5, 6)), 1<<20))
	srv, ids := serverStore(t, dir)
	buildDelta(t, srv, store.ID{}, ids[0])
	h, err := NewHandler(srv.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	c, _ := testClient(t, serve(t, h))
	const limit = 2 << 20
	c.Limit = limit
	s := newStore(t)
	start := time.Now()
	st := mustPull(t, c, s, ids[0])
	elapsed := time.Since(start)
	checkComplete(t, s, ids[0])
	want := time.Duration(0.8 * float64(st.BodyBytes-limitBurst) / limit * float64(time.Second))
	if elapsed < want {
		t.Errorf("%d bytes at %d bytes/s in %s, faster than %s", st.BodyBytes, limit, elapsed, want)
	}
	t.Logf("%d bytes in %s (%.0f bytes/s)", st.BodyBytes, elapsed, float64(st.BodyBytes)/elapsed.Seconds())
}

// An update of many small files takes a few requests: the index, then the pack in at
// most Streams ranges.
func TestPullFewRequests(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	tmp := t.TempDir()
	v1, v2 := filepath.Join(tmp, "v1"), filepath.Join(tmp, "v2")
	for i := range 60 {
		name := filepath.Join(fmt.Sprintf("d%02d", i%6), fmt.Sprintf("f%03d.txt", i))
		content := text(r, 1<<10+r.IntN(8<<10))
		writeFile(t, filepath.Join(v1, name), content)
		if i%3 == 0 { // a third of the files changed
			content = append(append(content[:100:100], text(r, 50)...), content[100:]...)
		}
		writeFile(t, filepath.Join(v2, name), content)
	}
	srv, ids := serverStore(t, v1, v2)
	ds := buildDelta(t, srv, ids[0], ids[1])
	t.Logf("delta: %+v", ds)
	h, err := NewHandler(srv.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	url := serve(t, h)
	c, _ := testClient(t, url)
	s := storeWith(t, v1)
	st := mustPull(t, c, s, ids[1], ids[0])
	checkComplete(t, s, ids[1])
	if st.Payloads < 40 || st.Requests > 1+defaultStreams {
		t.Errorf("%+v: want over 40 payloads in at most %d requests", st, 1+defaultStreams)
	}

	// Without the delta, a request per file: what the delta saves.
	if err := os.RemoveAll(filepath.Join(srv.Dir(), "deltas")); err != nil {
		t.Fatal(err)
	}
	s = storeWith(t, v1)
	single := mustPull(t, c, s, ids[1], ids[0])
	checkComplete(t, s, ids[1])
	t.Logf("without the delta: %d requests, %d bytes; with: %d requests, %d bytes",
		single.Requests, single.BodyBytes, st.Requests, st.BodyBytes)
}

// A pack with a dictionary (trained only on packs of 16 MiB of compressible chunks or more):
// the dictionary is fetched first, alone, then the rest; with a server without ranges, the
// whole pack in one request.
func TestPullDictionary(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a pack of 17 MiB: too slow with -short or -race")
	}
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 10))
	dir := t.TempDir()
	for i := range 34 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("doc%02d.txt", i)), text(r, 512<<10))
	}
	srv, ids := serverStore(t, dir)
	ds := buildDelta(t, srv, store.ID{}, ids[0])
	if ds.DictBytes == 0 || ds.Dict == 0 {
		t.Fatalf("no dictionary in the pack: %+v", ds)
	}
	h, err := NewHandler(srv.Dir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	x, err := srv.DeltaIndex(store.ID{}, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, url := range map[string]string{"ranges": serve(t, h), "no ranges": serve(t, stripRange(h))} {
		t.Run(name, func(t *testing.T) {
			c, _ := testClient(t, url)
			s := newStore(t)
			st := mustPull(t, c, s, ids[0])
			checkComplete(t, s, ids[0])
			if st.Payloads != len(x.Entries)-1 || st.Objects+st.Chunks != 0 {
				t.Errorf("%+v: want all %d payloads from the pack", st, len(x.Entries)-1)
			}
			if name == "no ranges" && st.Requests != 2 {
				t.Errorf("%+v: want the index and the whole pack", st)
			}
		})
	}
}
