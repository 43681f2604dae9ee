package agent

import (
	"encoding/json"
	"time"

	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/transfer"
)

// ReportFormat names the format of the agent's cycle reports and its version.
const ReportFormat = "satchel.agent-report/v1"

// Outcome is how a cycle ended.
type Outcome string

const (
	// Applied: a newer release was fetched, applied and found healthy; it is now the last
	// good release.
	Applied Outcome = "applied"
	// Reapplied: nothing newer was to be had (or it waits for a transfer window), and the
	// last good release was applied again, correcting any drift.
	Reapplied Outcome = "reapplied"
	// RolledBack: a newer release failed to apply or its health checks failed; the last
	// good release was put back. The failed release is not tried again.
	RolledBack Outcome = "rolled_back"
	// Failed: the cycle could not apply any release (none fetched yet, or the last good
	// release itself failed).
	Failed Outcome = "failed"
	// Interrupted: the agent was stopped during the cycle; what was running finished and
	// nothing else started.
	Interrupted Outcome = "interrupted"
)

// CycleReport is what a cycle spools for the office: the run report of the masterless
// core plus the release, the rollback and the transfer.
type CycleReport struct {
	Format     string    `json:"format"`
	Node       string    `json:"node"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    Outcome   `json:"outcome"`
	// Release is the release in place when the cycle ended (0: none).
	Release uint64 `json:"release"`
	// Attempted is a newer release the cycle tried (0: none).
	Attempted uint64 `json:"attempted,omitempty"`
	// Available is the newest release the repositories offered (0: none reached).
	Available  uint64 `json:"available,omitempty"`
	Repository string `json:"repository,omitempty"` // the one that answered
	// Deferred says why a newer release was not fetched in full this cycle (a transfer
	// window).
	Deferred string `json:"deferred,omitempty"`
	// RefreshErrors are the repositories that could not be used, and why.
	RefreshErrors []string       `json:"refresh_errors,omitempty"`
	Rollback      *Rollback      `json:"rollback,omitempty"`
	HealthChecks  []HealthResult `json:"health_checks,omitempty"`
	Transfer      TransferStats  `json:"transfer"`
	// Holds is what the node's store holds whole when the cycle ends: the last good
	// release's trees. The office builds a USB bundle's deltas from them.
	Holds *Holdings `json:"holds,omitempty"`
	// Run is the report of the run that left the node as it is (after a rollback, the
	// rollback's); FailedRun, the run of the release that was rolled back.
	Run       *report.Report `json:"run,omitempty"`
	FailedRun *report.Report `json:"failed_run,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// Holdings are the trees a node's store holds whole.
type Holdings struct {
	Config string            `json:"config"`          // the config tree
	Trees  map[string]string `json:"trees,omitempty"` // content trees, by tree resource address
}

// Rollback describes a release that was rolled back.
type Rollback struct {
	From     uint64 `json:"from"`     // the failed release
	To       uint64 `json:"to"`       // the release put back (0: none was good before)
	Cause    string `json:"cause"`    // what failed
	Restored int    `json:"restored"` // files put back from the backup store
	Removed  int    `json:"removed"`  // files and links it created, removed (saved first)
}

// HealthResult is the outcome of one health check.
type HealthResult struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	DurationMS float64 `json:"duration_ms"`
	Output     string  `json:"output,omitempty"` // the end of its output
	Error      string  `json:"error,omitempty"`
}

// TransferStats adds up the cycle's downloads (trust metadata aside).
type TransferStats struct {
	Requests int   `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Deltas   int   `json:"deltas"` // pulls that used a static delta
	Pulls    int   `json:"pulls"`
}

func (t *TransferStats) add(st transfer.Stats) {
	t.Requests += st.Requests
	t.Bytes += st.BodyBytes
	t.Pulls++
	if st.Delta {
		t.Deltas++
	}
}

// marshalReport encodes a cycle report for the spool, as compact JSON and without the
// runs' unchanged resources (their summaries count them): the report crosses a slow link
// every cycle, and a thousand resources that did not change say nothing the count does not.
func marshalReport(r *CycleReport) ([]byte, error) {
	c := *r
	c.Run, c.FailedRun = withoutUnchanged(r.Run), withoutUnchanged(r.FailedRun)
	data, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// withoutUnchanged is a copy of run listing only the resources that did not stay
// unchanged.
func withoutUnchanged(run *report.Report) *report.Report {
	if run == nil {
		return nil
	}
	c := *run
	c.Resources = make([]*report.Resource, 0, len(run.Resources))
	for _, res := range run.Resources {
		if res.Status != report.Unchanged {
			c.Resources = append(c.Resources, res)
		}
	}
	return &c
}
