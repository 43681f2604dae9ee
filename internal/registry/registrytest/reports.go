package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

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

	// The heads: the same reports in the same order, without their bodies.
	heads, err := s.ListReportHeads(ctx, "web1", 3)
	if err != nil {
		t.Fatal(err)
	}
	full := listReports(t, s, "web1", 3)
	if len(heads) != len(full) {
		t.Fatalf("ListReportHeads = %v, ListReports = %v", reportIDs(heads), reportIDs(full))
	}
	for i := range heads {
		want := full[i]
		want.Body = nil
		checkReport(t, heads[i], want)
	}
	_, err = s.ListReportHeads(ctx, "ghost", 0)
	wantErr(t, "ListReportHeads of no node", err, registry.ErrNotFound)
}

func testPruneReports(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "k1", ""), node("web2", "k2", ""), node("web3", "k3", ""))
	// web1: minutes 1..6 (two at minute 3); web2: minutes 1..3; web3: one old report.
	for _, r := range []registry.Report{
		report("web1", "a", 1), report("web1", "b", 2), report("web1", "c1", 3), report("web1", "c2", 3),
		report("web1", "d", 4), report("web1", "e", 5), report("web1", "f", 6),
		report("web2", "x", 1), report("web2", "y", 2), report("web2", "z", 3),
		report("web3", "old", -600),
	} {
		if _, err := s.PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	prune := func(node string, keep registry.Retention, want int) {
		t.Helper()
		removed, err := s.PruneReports(ctx, node, keep)
		if err != nil || removed != want {
			t.Errorf("PruneReports(%q, %+v) = %d, %v; want %d removed", node, keep, removed, err, want)
		}
	}
	want := func(node string, ids ...string) {
		t.Helper()
		if got := reportIDs(listReports(t, s, node, 0)); !equal(got, ids) {
			t.Errorf("%s's reports = %v, want %v", node, got, ids)
		}
	}

	// One node, by count: the newest, in ListReports order; other nodes untouched.
	prune("web1", registry.Retention{Newest: 5}, 2)
	want("web1", "f", "e", "d", "c2", "c1")
	want("web2", "z", "y", "x")
	prune("web1", registry.Retention{Newest: 5}, 0)
	prune("web1", registry.Retention{}, 0)
	// By age: received before minute 4 goes.
	prune("web1", registry.Retention{Since: at(4)}, 2)
	want("web1", "f", "e", "d")
	// Every node, both limits; the newest report stays however old it is.
	prune("", registry.Retention{Newest: 2, Since: at(0)}, 2)
	want("web1", "f", "e")
	want("web2", "z", "y")
	want("web3", "old")
	prune("", registry.Retention{Newest: 1, Since: at(100)}, 2)
	want("web1", "f")
	want("web2", "z")
	want("web3", "old")
	// A pruned report is stored anew if uploaded again; nothing else changes.
	if stored, err := s.PutReport(ctx, report("web1", "g", 7)); err != nil || !stored {
		t.Errorf("PutReport after pruning = %v, %v; want stored", stored, err)
	}
	want("web1", "g", "f")
	// No such node, or no reports: nothing to do.
	prune("ghost", registry.Retention{Newest: 1}, 0)
	put(t, s, node("web4", "k4", ""))
	prune("web4", registry.Retention{Newest: 1, Since: at(100)}, 0)
}

func testFleetStatus(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web2", "k2", ""), node("web1", "k1", ""), node("web3", "k3", ""))
	for _, r := range []registry.Report{report("web1", "a", 1), report("web1", "c", 3), report("web1", "b", 2), report("web2", "x", 9)} {
		if _, err := s.PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RecordReturns(ctx, "web2", 4, at(10), nil, 0); err != nil {
		t.Fatal(err)
	}
	got, err := s.FleetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "web1" || got[1].Name != "web2" || got[2].Name != "web3" {
		t.Fatalf("FleetStatus: %d nodes %v, want web1, web2, web3", len(got), got)
	}
	for i, want := range []registry.Report{report("web1", "c", 3), report("web2", "x", 9)} {
		want.Body = nil
		if got[i].Last == nil {
			t.Fatalf("%s: no last report", got[i].Name)
		}
		checkReport(t, *got[i].Last, want)
	}
	if got[2].Last != nil {
		t.Errorf("web3 never reported, yet its last report is %+v", got[2].Last)
	}
	want := node("web2", "k2", "")
	want.Facts, want.ReturnsSeq, want.LastReturns = nil, 4, at(10)
	checkNode(t, got[1].Node, want)
}

func testReleaseHistory(t *testing.T, s registry.Store) {
	ctx := context.Background()
	d1 := time.Date(2026, 3, 14, 23, 30, 0, 0, zone) // 2026-03-15 in UTC
	d2 := d1.Add(24 * time.Hour)
	for _, rec := range []struct {
		when  time.Time
		nodes map[uint64]int
	}{
		{d1, map[uint64]int{1: 5, 2: 1}},
		{d2, map[uint64]int{2: 4}},
		{d2.Add(time.Hour), map[uint64]int{2: 5, 3: 1}}, // the same day: replaces
	} {
		if err := s.RecordReleases(ctx, rec.when, rec.nodes); err != nil {
			t.Fatal(err)
		}
	}
	day := func(t time.Time) time.Time {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	got, err := s.ReleaseHistory(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	want := []registry.ReleaseCount{{Day: day(d1), Release: 1, Nodes: 5}, {Day: day(d1), Release: 2, Nodes: 1},
		{Day: day(d2), Release: 2, Nodes: 5}, {Day: day(d2), Release: 3, Nodes: 1}}
	if len(got) != len(want) {
		t.Fatalf("ReleaseHistory = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Day.Equal(want[i].Day) || got[i].Release != want[i].Release || got[i].Nodes != want[i].Nodes {
			t.Errorf("ReleaseHistory[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, _ := s.ReleaseHistory(ctx, d2); len(got) != 2 {
		t.Errorf("ReleaseHistory from the second day: %v", got)
	}
}
