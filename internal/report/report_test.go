package report

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSummaryAndJSONContract(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("x", 3600))
	r := New("school-001", false, start)
	r.Add(&Resource{Address: "file.a", Type: "file", Status: Changed, Changes: []*Change{{Attribute: "ensure", From: "absent", To: "present"}}})
	r.Add(&Resource{Address: "file.b", Type: "file", Status: Unchanged})
	r.Add(&Resource{Address: "exec.c", Type: "exec", Status: Failed, Error: "boom"})
	r.Add(&Resource{Address: "file.d", Type: "file", Status: Skipped, Error: "skipped: dependency exec.c failed"})
	r.Finish(start.Add(1500 * time.Microsecond))
	if r.Summary != (Summary{Total: 4, Changed: 1, Unchanged: 1, Failed: 1, Skipped: 1}) || !r.Failed() {
		t.Fatalf("summary = %+v, failed = %v", r.Summary, r.Failed())
	}
	data, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"format", "node", "noop", "started", "duration_ms", "summary", "resources"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("report has no %q", key)
		}
	}
	if doc["started"] != "2026-11-26T09:00:00Z" || doc["duration_ms"] != 1.5 {
		t.Errorf("started = %v, duration_ms = %v", doc["started"], doc["duration_ms"])
	}
	res := doc["resources"].([]any)[1].(map[string]any)
	for _, key := range []string{"address", "type", "status", "changes", "diff", "error", "duration_ms"} {
		if _, ok := res[key]; !ok {
			t.Errorf("resource has no %q", key)
		}
	}
	if changes, ok := res["changes"].([]any); !ok || len(changes) != 0 {
		t.Errorf("an unchanged resource's changes = %v, want []", res["changes"])
	}
}
