package server_test

import (
	"context"
	"testing"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
)

func TestEnrollWithTokenThenReport(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	id, res, err := s.enroll(t, "school-1", s.newToken(t, 1), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Approved || len(res.Trust) == 0 || id.Certificate() == nil {
		t.Fatalf("enroll with a token: approved=%v trust=%d bytes cert=%v", res.Approved, len(res.Trust), id.Certificate() != nil)
	}
	n, err := client.NewNode(id)
	if err != nil {
		t.Fatal(err)
	}
	up := api.ReportUpload{ID: "20261126T163000.000000000Z-report-1a2b3c4d.json", Outcome: "applied", Release: 1, Body: []byte(`{"ok":true}`)}
	for i, want := range []bool{true, false} {
		stored, err := n.PutReport(ctx, up)
		if err != nil {
			t.Fatal(err)
		}
		if stored != want {
			t.Errorf("upload %d: stored=%v, want %v", i+1, stored, want)
		}
	}
	reports, err := s.admin.Reports(ctx, "school-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].ID != up.ID || reports[0].Outcome != "applied" {
		t.Errorf("reports = %+v, want the one uploaded", reports)
	}
	if err := n.PutFacts(ctx, []byte(`{"hostname":"school-1","memory":2048}`), 7); err != nil {
		t.Fatal(err)
	}
	// Facts numbered lower (sent before, arriving late) do not replace them.
	if err := n.PutFacts(ctx, []byte(`{"hostname":"school-1","memory":1024}`), 6); err != nil {
		t.Fatal(err)
	}
	node, err := s.admin.Node(ctx, "school-1")
	if err != nil {
		t.Fatal(err)
	}
	if string(node.Facts) != `{"hostname":"school-1","memory":2048}` || node.Fingerprint != id.ShortFingerprint() {
		t.Errorf("node = %+v", node)
	}
}

func TestEnrollPendingUntilApproved(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	id, res, err := s.enroll(t, "school-2", "", "m2")
	if err != nil {
		t.Fatal(err)
	}
	if res.Approved || res.Fingerprint != id.ShortFingerprint() {
		t.Fatalf("enroll without a token: %+v, want pending with fingerprint %s", res, id.ShortFingerprint())
	}
	if _, err := client.NewNode(id); err == nil {
		t.Fatal("a pending node has a node connection")
	}
	node, err := s.admin.Approve(ctx, "school-2")
	if err != nil {
		t.Fatal(err)
	}
	if node.State != api.StateApproved || node.Fingerprint != res.Fingerprint {
		t.Fatalf("approved node = %+v", node)
	}
	res, err = id.Enroll(ctx, client.EnrollRequest{Server: s.url, CAFingerprint: s.CAFingerprint(), Name: "school-2", MachineID: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Approved || id.Certificate() == nil {
		t.Fatalf("poll after approval: %+v", res)
	}
}
