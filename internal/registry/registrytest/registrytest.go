package registrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open func(t *testing.T) registry.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s registry.Store)
	}{
		{"PutPendingNode", testPutPendingNode},
		{"EnrollWithoutToken", testEnrollWithoutToken},
		{"EnrollWithToken", testEnrollWithToken},
		{"EnrollRefusals", testEnrollRefusals},
		{"EnrollClonesConcurrently", testEnrollClonesConcurrently},
		{"PutPendingNodeSameKey", testPutPendingNodeSameKey},
		{"PutPendingNodeOtherKey", testPutPendingNodeOtherKey},
		{"PutPendingNodeIncomplete", testPutPendingNodeIncomplete},
		{"GetNodeNotFound", testGetNodeNotFound},
		{"ListNodesByName", testListNodesByName},
		{"SetNodeState", testSetNodeState},
		{"RecordCertificate", testRecordCertificate},
		{"FindByMachineID", testFindByMachineID},
		{"FindByKeyFingerprint", testFindByKeyFingerprint},
		{"ForgetNode", testForgetNode},
		{"TouchNode", testTouchNode},
		{"RecordReturns", testRecordReturns},
		{"PutFacts", testPutFacts},
		{"CreateToken", testCreateToken},
		{"UseToken", testUseToken},
		{"UseTokenRefused", testUseTokenRefused},
		{"UseTokenConcurrently", testUseTokenConcurrently},
		{"ListTokensByCreation", testListTokensByCreation},
		{"RevokeToken", testRevokeToken},
		{"PutReport", testPutReport},
		{"PutReportReplay", testPutReportReplay},
		{"PutReportUnknownNode", testPutReportUnknownNode},
		{"ListReportsNewestFirst", testListReportsNewestFirst},
		{"PruneReports", testPruneReports},
		{"FleetStatus", testFleetStatus},
		{"ReleaseHistory", testReleaseHistory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// zone is where the suite's times are: not UTC, so a store that drops the zone is still
// equal, and one that keeps the local time as UTC is caught.
var zone = time.FixedZone("UTC-3", -3*60*60)

// t0 is the suite's "now": whole microseconds.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, zone)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func node(name, key, machineID string) registry.Node {
	return registry.Node{
		Name:           name,
		State:          registry.Pending,
		KeyFingerprint: key,
		MachineID:      machineID,
		Enrolled:       t0,
		LastSeen:       t0,
		Facts:          []byte(`{"hostname":"` + name + `"}`),
		TokenLabel:     "batch 3",
		Recipient:      "age1" + name,
	}
}

func put(t *testing.T, s registry.Store, nodes ...registry.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := s.PutPendingNode(context.Background(), n); err != nil {
			t.Fatalf("PutPendingNode(%q): %v", n.Name, err)
		}
	}
}

func get(t *testing.T, s registry.Store, name string) registry.Node {
	t.Helper()
	n, err := s.GetNode(context.Background(), name)
	if err != nil {
		t.Fatalf("GetNode(%q): %v", name, err)
	}
	return n
}

// checkNode fails unless got is want, times compared as instants.
func checkNode(t *testing.T, got, want registry.Node) {
	t.Helper()
	if got.Name != want.Name || got.State != want.State || got.KeyFingerprint != want.KeyFingerprint ||
		got.MachineID != want.MachineID || !got.Enrolled.Equal(want.Enrolled) || !got.LastSeen.Equal(want.LastSeen) ||
		!bytes.Equal(got.Facts, want.Facts) || got.CertSerial != want.CertSerial || got.TokenLabel != want.TokenLabel ||
		got.Recipient != want.Recipient || got.ReturnsSeq != want.ReturnsSeq || !got.LastReturns.Equal(want.LastReturns) {
		t.Errorf("node:\n got %+v\nwant %+v", show(got), show(want))
	}
}

func show(n registry.Node) string {
	return fmt.Sprintf("{%s %s key=%s machine=%s enrolled=%s seen=%s facts=%s serial=%s label=%s recipient=%s returns=%d at %s}",
		n.Name, n.State, n.KeyFingerprint, n.MachineID, n.Enrolled.UTC(), n.LastSeen.UTC(), n.Facts, n.CertSerial, n.TokenLabel, n.Recipient,
		n.ReturnsSeq, n.LastReturns.UTC())
}

func names(nodes []registry.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func equal(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b) && len(a) == len(b)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}
