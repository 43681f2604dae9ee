package registrytest

import (
	"context"
	"testing"

	"github.com/satchelcm/satchel/internal/registry"
)

func testPutPendingNode(t *testing.T, s registry.Store) {
	n := node("web1", "key1", "m1")
	// A request's state and serial are not the caller's to set.
	req := n
	req.State, req.CertSerial = registry.Approved, "42"
	put(t, s, req)
	checkNode(t, get(t, s, "web1"), n)
}

func testPutPendingNodeSameKey(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"))
	if err := s.SetNodeState(ctx, "web1", registry.Approved, "42"); err != nil {
		t.Fatal(err)
	}
	again := node("web1", "key1", "m2")
	again.Facts = []byte(`{"hostname":"web1","memory":1}`)
	again.Enrolled, again.LastSeen = at(10), at(10)
	again.TokenLabel = "other"
	again.Recipient = "age1new"
	if err := s.PutPendingNode(ctx, again); err != nil {
		t.Fatalf("the same key again: %v", err)
	}
	// Facts, machine ID, recipient and last seen refreshed; state, serial, enrollment time
	// and label kept.
	want := node("web1", "key1", "m2")
	want.Recipient = "age1new"
	want.State, want.CertSerial = registry.Approved, "42"
	want.Facts, want.LastSeen = again.Facts, at(10)
	checkNode(t, get(t, s, "web1"), want)
}

func testPutPendingNodeOtherKey(t *testing.T, s registry.Store) {
	n := node("web1", "key1", "m1")
	put(t, s, n)
	err := s.PutPendingNode(context.Background(), node("web1", "key2", "m1"))
	wantErr(t, "another key", err, registry.ErrExists)
	checkNode(t, get(t, s, "web1"), n)
}

func testPutPendingNodeIncomplete(t *testing.T, s registry.Store) {
	ctx := context.Background()
	if err := s.PutPendingNode(ctx, node("", "key1", "m1")); err == nil {
		t.Error("a node without a name was stored")
	}
	if err := s.PutPendingNode(ctx, node("web1", "", "m1")); err == nil {
		t.Error("a node without a key was stored")
	}
	if nodes, err := s.ListNodes(ctx); err != nil || len(nodes) != 0 {
		t.Errorf("ListNodes = %v, %v; want none", names(nodes), err)
	}
}

func testGetNodeNotFound(t *testing.T, s registry.Store) {
	_, err := s.GetNode(context.Background(), "web1")
	wantErr(t, "GetNode of no node", err, registry.ErrNotFound)
}

func testListNodesByName(t *testing.T, s registry.Store) {
	ctx := context.Background()
	nodes, err := s.ListNodes(ctx)
	if err != nil || len(nodes) != 0 {
		t.Fatalf("empty store: ListNodes = %v, %v", names(nodes), err)
	}
	put(t, s, node("db2", "k1", ""), node("web1", "k2", ""), node("app", "k3", ""), node("db10", "k4", ""))
	nodes, err = s.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"app", "db10", "db2", "web1"}; !equal(names(nodes), want) {
		t.Errorf("ListNodes = %v, want %v", names(nodes), want)
	}
	checkNode(t, nodes[0], node("app", "k3", ""))
}

func testSetNodeState(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"))
	want := node("web1", "key1", "m1")

	if err := s.SetNodeState(ctx, "web1", registry.Approved, "1f"); err != nil {
		t.Fatal(err)
	}
	want.State, want.CertSerial = registry.Approved, "1f"
	checkNode(t, get(t, s, "web1"), want)

	// Revoking without a serial keeps the revoked one on record.
	if err := s.SetNodeState(ctx, "web1", registry.Revoked, ""); err != nil {
		t.Fatal(err)
	}
	want.State = registry.Revoked
	checkNode(t, get(t, s, "web1"), want)

	// Re-approval with a new certificate.
	if err := s.SetNodeState(ctx, "web1", registry.Approved, "20"); err != nil {
		t.Fatal(err)
	}
	want.State, want.CertSerial = registry.Approved, "20"
	checkNode(t, get(t, s, "web1"), want)

	wantErr(t, "SetNodeState of no node", s.SetNodeState(ctx, "web2", registry.Approved, "21"), registry.ErrNotFound)
	if err := s.SetNodeState(ctx, "web1", "lost", ""); err == nil {
		t.Error("SetNodeState accepted state \"lost\"")
	}
	checkNode(t, get(t, s, "web1"), want)
}

func testRecordCertificate(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"))
	want := node("web1", "key1", "m1")
	// Pending: refused, nothing recorded.
	wantErr(t, "RecordCertificate of a pending node", s.RecordCertificate(ctx, "web1", "10"), registry.ErrNotApproved)
	checkNode(t, get(t, s, "web1"), want)
	if err := s.SetNodeState(ctx, "web1", registry.Approved, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCertificate(ctx, "web1", "11"); err != nil {
		t.Fatal(err)
	}
	want.State, want.CertSerial = registry.Approved, "11"
	checkNode(t, get(t, s, "web1"), want)
	// Revoked meanwhile: refused, and the node stays revoked.
	if err := s.SetNodeState(ctx, "web1", registry.Revoked, ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RecordCertificate of a revoked node", s.RecordCertificate(ctx, "web1", "12"), registry.ErrNotApproved)
	want.State = registry.Revoked
	checkNode(t, get(t, s, "web1"), want)
	wantErr(t, "RecordCertificate of no node", s.RecordCertificate(ctx, "web2", "13"), registry.ErrNotFound)
}

func testFindByMachineID(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web2", "k1", "clone"), node("solo", "k2", "m2"), node("web1", "k3", "clone"),
		node("nomid1", "k4", ""), node("nomid2", "k5", ""))
	for _, tc := range []struct {
		machineID string
		want      []string
	}{
		{"clone", []string{"web1", "web2"}},
		{"m2", []string{"solo"}},
		{"unknown", nil},
		{"", nil}, // nodes without a machine ID are not clones of each other
	} {
		nodes, err := s.FindByMachineID(ctx, tc.machineID)
		if err != nil {
			t.Fatalf("FindByMachineID(%q): %v", tc.machineID, err)
		}
		if !equal(names(nodes), tc.want) {
			t.Errorf("FindByMachineID(%q) = %v, want %v", tc.machineID, names(nodes), tc.want)
		}
	}
	nodes, _ := s.FindByMachineID(ctx, "m2")
	if len(nodes) == 1 {
		checkNode(t, nodes[0], node("solo", "k2", "m2"))
	}
}

func testFindByKeyFingerprint(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "k1", "m1"), node("solo", "k2", "m2"))
	// The store does not refuse a key two names share: the server decides what that means.
	put(t, s, node("web2", "k1", "m3"))
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"k1", []string{"web1", "web2"}},
		{"k2", []string{"solo"}},
		{"unknown", nil},
		{"", nil},
	} {
		nodes, err := s.FindByKeyFingerprint(ctx, tc.key)
		if err != nil {
			t.Fatalf("FindByKeyFingerprint(%q): %v", tc.key, err)
		}
		if !equal(names(nodes), tc.want) {
			t.Errorf("FindByKeyFingerprint(%q) = %v, want %v", tc.key, names(nodes), tc.want)
		}
	}
	nodes, _ := s.FindByKeyFingerprint(ctx, "k2")
	if len(nodes) == 1 {
		checkNode(t, nodes[0], node("solo", "k2", "m2"))
	}
}

func testForgetNode(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"), node("web2", "key2", "m2"))
	for _, name := range []string{"web1", "web2"} {
		if _, err := s.PutReport(ctx, report(name, "r1", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ForgetNode(ctx, "web1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetNode(ctx, "web1")
	wantErr(t, "GetNode of a forgotten node", err, registry.ErrNotFound)
	_, err = s.ListReports(ctx, "web1", 0)
	wantErr(t, "ListReports of a forgotten node", err, registry.ErrNotFound)
	wantErr(t, "ForgetNode twice", s.ForgetNode(ctx, "web1"), registry.ErrNotFound)

	// The other node and its reports are untouched.
	checkNode(t, get(t, s, "web2"), node("web2", "key2", "m2"))
	if reports, err := s.ListReports(ctx, "web2", 0); err != nil || len(reports) != 1 {
		t.Errorf("ListReports(web2) = %d reports, %v; want 1", len(reports), err)
	}

	// A forgotten name enrolls afresh, with another key (an operator's re-key), and its
	// old reports do not come back.
	n := node("web1", "key9", "m1")
	n.Enrolled, n.LastSeen = at(5), at(5)
	put(t, s, n)
	checkNode(t, get(t, s, "web1"), n)
	if reports, err := s.ListReports(ctx, "web1", 0); err != nil || len(reports) != 0 {
		t.Errorf("ListReports of a re-enrolled node = %d reports, %v; want 0", len(reports), err)
	}
}

func testTouchNode(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"))
	want := node("web1", "key1", "m1")

	// Without facts: only the time.
	if err := s.TouchNode(ctx, "web1", at(1), nil); err != nil {
		t.Fatal(err)
	}
	want.LastSeen = at(1)
	checkNode(t, get(t, s, "web1"), want)

	if err := s.TouchNode(ctx, "web1", at(2), []byte(`{"load":1}`)); err != nil {
		t.Fatal(err)
	}
	want.LastSeen, want.Facts = at(2), []byte(`{"load":1}`)
	checkNode(t, get(t, s, "web1"), want)

	wantErr(t, "TouchNode of no node", s.TouchNode(ctx, "web2", at(3), nil), registry.ErrNotFound)
}

func testRecordReturns(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"), node("web2", "key2", "m2"))
	want := node("web1", "key1", "m1")
	record := func(seq uint64, minute int, facts string, wantRecorded bool) {
		t.Helper()
		var f []byte
		if facts != "" {
			f = []byte(facts)
		}
		recorded, err := s.RecordReturns(ctx, "web1", seq, at(minute), f, seq)
		if err != nil || recorded != wantRecorded {
			t.Errorf("RecordReturns(web1, %d) = %v, %v; want %v", seq, recorded, err, wantRecorded)
		}
	}
	record(3, 1, `{"load":3}`, true)
	want.ReturnsSeq, want.LastReturns, want.Facts = 3, at(1), []byte(`{"load":3}`)
	checkNode(t, get(t, s, "web1"), want)
	// The same returns again, and older ones: nothing changes.
	record(3, 2, `{"load":33}`, false)
	record(2, 3, `{"load":2}`, false)
	checkNode(t, get(t, s, "web1"), want)
	// Newer returns without facts keep the facts; the last-seen time is the network's.
	record(4, 4, "", true)
	want.ReturnsSeq, want.LastReturns = 4, at(4)
	checkNode(t, get(t, s, "web1"), want)
	checkNode(t, get(t, s, "web2"), node("web2", "key2", "m2"))
	_, err := s.RecordReturns(ctx, "ghost", 1, at(1), nil, 1)
	wantErr(t, "RecordReturns of no node", err, registry.ErrNotFound)
}

func testPutFacts(t *testing.T, s registry.Store) {
	ctx := context.Background()
	put(t, s, node("web1", "key1", "m1"))
	want := node("web1", "key1", "m1")
	putFacts := func(minute int, facts string, seq uint64, wantStored bool) {
		t.Helper()
		stored, err := s.PutFacts(ctx, "web1", at(minute), []byte(facts), seq)
		if err != nil || stored != wantStored {
			t.Errorf("PutFacts(%s, seq %d) = %v, %v; want stored %v", facts, seq, stored, err, wantStored)
		}
		want.LastSeen = at(minute)
	}
	// Unnumbered facts (an agent that does not number them) are always taken.
	putFacts(1, `{"n":0}`, 0, true)
	want.Facts = []byte(`{"n":0}`)
	checkNode(t, get(t, s, "web1"), want)
	putFacts(2, `{"n":5}`, 5, true)
	want.Facts = []byte(`{"n":5}`)
	checkNode(t, get(t, s, "web1"), want)
	// Older or equal numbers: not taken, but the node was seen.
	putFacts(3, `{"n":4}`, 4, false)
	putFacts(4, `{"n":55}`, 5, false)
	checkNode(t, get(t, s, "web1"), want)
	// Returns written before the facts the network brought (their facts numbered 3) are
	// recorded, and their facts are not taken; newer ones (facts 6) are.
	if recorded, err := s.RecordReturns(ctx, "web1", 1, at(5), []byte(`{"n":3}`), 3); err != nil || !recorded {
		t.Fatalf("RecordReturns = %v, %v", recorded, err)
	}
	want.ReturnsSeq, want.LastReturns = 1, at(5)
	checkNode(t, get(t, s, "web1"), want)
	if recorded, err := s.RecordReturns(ctx, "web1", 2, at(6), []byte(`{"n":6}`), 6); err != nil || !recorded {
		t.Fatalf("RecordReturns = %v, %v", recorded, err)
	}
	want.ReturnsSeq, want.LastReturns, want.Facts = 2, at(6), []byte(`{"n":6}`)
	checkNode(t, get(t, s, "web1"), want)
	putFacts(7, `{"n":5}`, 5, false)
	checkNode(t, get(t, s, "web1"), want)
	_, err := s.PutFacts(ctx, "ghost", at(1), []byte(`{}`), 1)
	wantErr(t, "PutFacts of no node", err, registry.ErrNotFound)
}
