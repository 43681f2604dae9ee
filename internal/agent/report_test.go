package agent

import (
	"encoding/json"
	"testing"

	"github.com/satchelcm/satchel/internal/report"
)

// The spooled report lists what changed or failed, and only counts what did not: it
// crosses a slow link every cycle.
func TestSpooledReportLeavesOutUnchanged(t *testing.T) {
	run := &report.Report{Summary: report.Summary{Total: 3, Changed: 1, Unchanged: 1, Failed: 1}, Resources: []*report.Resource{
		{Address: "file.a", Status: report.Changed},
		{Address: "file.b", Status: report.Unchanged},
		{Address: "file.c", Status: report.Failed, Error: "boom"},
	}}
	rep := &CycleReport{Format: ReportFormat, Outcome: Reapplied, Run: run}
	data, err := marshalReport(rep)
	must(t, err)
	var back CycleReport
	must(t, json.Unmarshal(data, &back))
	if n := len(back.Run.Resources); n != 2 || back.Run.Resources[0].Address != "file.a" || back.Run.Resources[1].Address != "file.c" {
		t.Errorf("spooled resources: %d, want file.a and file.c", n)
	}
	if back.Run.Summary != run.Summary {
		t.Errorf("summary %+v, want %+v", back.Run.Summary, run.Summary)
	}
	if len(rep.Run.Resources) != 3 {
		t.Error("marshalReport changed the report it was given")
	}
}
