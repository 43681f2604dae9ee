package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/satchelcm/satchel/internal/registry"
)

func report(node, id string, minute int) registry.Report {
	return registry.Report{
		Node:     node,
		ID:       id,
		Received: at(minute),
		Outcome:  "changed",
		Release:  uint64(minute),
		Body:     []byte(fmt.Sprintf(`{"id":%q}`, id)),
	}
}

func checkReport(t *testing.T, got, want registry.Report) {
	t.Helper()
	if got.Node != want.Node || got.ID != want.ID || !got.Received.Equal(want.Received) || got.Outcome != want.Outcome ||
		got.Release != want.Release || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("report:\n got %+v\nwant %+v", got, want)
	}
}

func reportIDs(reports []registry.Report) []string {
	var out []string
	for _, r := range reports {
		out = append(out, r.ID)
	}
	return out
}

func listReports(t *testing.T, s registry.Store, node string, limit int) []registry.Report {
	t.Helper()
	reports, err := s.ListReports(context.Background(), node, limit)
	if err != nil {
		t.Fatalf("ListReports(%q, %d): %v", node, limit, err)
	}
	return reports
}

func testPutReport(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "k1", ""))
	if got := listReports(t, s, "web1", 0); len(got) != 0 {
		t.Fatalf("a new node has reports %v", reportIDs(got))
	}
	r := report("web1", "20260314T150926Z-report-1a2b3c4d", 1)
	r.Release = math.MaxUint64 // every bit survives
	stored, err := s.PutReport(ctx, r)
	if err != nil || !stored {
		t.Fatalf("PutReport = %v, %v; want stored", stored, err)
	}
	got := listReports(t, s, "web1", 0)
	if len(got) != 1 {
		t.Fatalf("ListReports = %v, want one", reportIDs(got))
	}
	checkReport(t, got[0], r)

	for _, bad := range []registry.Report{report("", "r", 1), report("web1", "", 1)} {
		if _, err := s.PutReport(ctx, bad); err == nil {
			t.Errorf("PutReport(%q, %q) stored an incomplete report", bad.Node, bad.ID)
		}
	}
}

func testPutReportReplay(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "k1", ""), node("web2", "k2", ""))
	r := report("web1", "r1", 1)
	if stored, err := s.PutReport(ctx, r); err != nil || !stored {
		t.Fatalf("PutReport = %v, %v; want stored", stored, err)
	}
	// The replay differs (a later receipt), and still changes nothing.
	replay := r
	replay.Received, replay.Outcome, replay.Body = at(5), "failed", []byte(`{}`)
	for i := range 3 {
		stored, err := s.PutReport(ctx, replay)
		if err != nil || stored {
			t.Errorf("replay %d: PutReport = %v, %v; want not stored, no error", i+1, stored, err)
		}
	}
	got := listReports(t, s, "web1", 0)
	if len(got) != 1 {
		t.Fatalf("after replays: ListReports = %v, want one", reportIDs(got))
	}
	checkReport(t, got[0], r)

	// Report IDs are unique per node, not across nodes.
	if stored, err := s.PutReport(ctx, report("web2", "r1", 1)); err != nil || !stored {
		t.Errorf("another node's report with the same ID: PutReport = %v, %v; want stored", stored, err)
	}
}

func testPutReportUnknownNode(t *testing.T, s registry.Store) {
	ctx := context.Background()
	stored, err := s.PutReport(ctx, report("ghost", "r1", 1))
	if stored {
		t.Error("a report of no node was stored")
	}
	wantErr(t, "PutReport of no node", err, registry.ErrNotFound)
	_, err = s.ListReports(ctx, "ghost", 0)
	wantErr(t, "ListReports of no node", err, registry.ErrNotFound)
}

func testListReportsNewestFirst(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "k1", ""), node("web2", "k2", ""))
	// Stored out of order, as a drained spool and a live upload might interleave; two
	// received in the same microsecond come back in the reverse of the order stored.
	for _, r := range []registry.Report{
		report("web1", "b", 2), report("web1", "a", 1), report("web2", "x", 9),
		report("web1", "d", 4), report("web1", "c1", 3), report("web1", "c2", 3),
	} {
		if _, err := s.PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{0, []string{"d", "c2", "c1", "b", "a"}},
		{-1, []string{"d", "c2", "c1", "b", "a"}},
		{2, []string{"d", "c2"}},
		{9, []string{"d", "c2", "c1", "b", "a"}},
	} {
		if got := reportIDs(listReports(t, s, "web1", tc.limit)); !equal(got, tc.want) {
			t.Errorf("ListReports(web1, %d) = %v, want %v", tc.limit, got, tc.want)
		}
	}
	checkReport(t, listReports(t, s, "web1", 1)[0], report("web1", "d", 4))
}
