// Package report defines the run report: what one engine run did to each resource.
//
// The engine writes a Report; `satchel apply --report FILE` saves it as JSON; later the agent
// spools it to the server and the dashboard renders it. The format is versioned and every
// field is part of a contract (see the JSON names), so consumers outside Satchel can rely on
// it. Secrets never reach a report: the engine redacts sensitive attributes before a report
// is built, and nothing here ever holds a secret's value.
package report

import (
	"encoding/json"
	"fmt"
	"time"
)

// Format names the report format and its version.
const Format = "satchel.report/v1"

// Status is the outcome for one resource.
type Status string

// The outcomes of a resource. Under --noop, changed means "would change".
const (
	Changed   Status = "changed"
	Unchanged Status = "unchanged"
	Failed    Status = "failed"
	Skipped   Status = "skipped"
)

// Report is the outcome of one run.
type Report struct {
	Format     string      `json:"format"`
	Node       string      `json:"node"`
	Noop       bool        `json:"noop"`
	Root       string      `json:"root,omitempty"`
	Started    time.Time   `json:"started"`
	DurationMS float64     `json:"duration_ms"`
	Summary    Summary     `json:"summary"`
	Error      string      `json:"error,omitempty"` // a failure of the run as a whole
	Resources  []*Resource `json:"resources"`
}

// Summary counts resources by status.
type Summary struct {
	Total     int `json:"total"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
}

// Resource is the outcome for one resource.
type Resource struct {
	Address    string    `json:"address"`
	Type       string    `json:"type"`
	Status     Status    `json:"status"`
	Changes    []*Change `json:"changes"`
	Diff       string    `json:"diff"`
	Refreshed  bool      `json:"refreshed,omitempty"` // notified, and restarted or re-run
	Error      string    `json:"error"`
	DurationMS float64   `json:"duration_ms"`
	Origin     string    `json:"origin,omitempty"`
	// Notes are remarks that are neither changes nor errors, such as "running: not
	// applicable under --root": what the run could not check or do on this machine, said
	// rather than passed over in silence. They do not change the status.
	Notes []string `json:"notes,omitempty"`
}

// Change is one attribute that differed, as text for people.
type Change struct {
	Attribute string `json:"attribute"`
	From      string `json:"from"`
	To        string `json:"to"`
}

// New returns an empty report for a run that starts now.
func New(node string, noop bool, started time.Time) *Report {
	return &Report{Format: Format, Node: node, Noop: noop, Started: started.UTC(), Resources: []*Resource{}}
}

// Add appends a resource outcome and counts it.
func (r *Report) Add(res *Resource) {
	if res.Changes == nil {
		res.Changes = []*Change{}
	}
	r.Resources = append(r.Resources, res)
	r.Summary.Total++
	switch res.Status {
	case Changed:
		r.Summary.Changed++
	case Unchanged:
		r.Summary.Unchanged++
	case Failed:
		r.Summary.Failed++
	case Skipped:
		r.Summary.Skipped++
	}
}

// Finish records the run's duration.
func (r *Report) Finish(end time.Time) {
	r.DurationMS = Millis(end.Sub(r.Started))
}

// Failed reports whether anything failed, the run itself included.
func (r *Report) Failed() bool { return r.Error != "" || r.Summary.Failed > 0 }

// Millis converts a duration to milliseconds with microsecond precision.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Marshal renders the report as indented JSON.
func Marshal(r *Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report for %s: %w", r.Node, err)
	}
	return append(b, '\n'), nil
}
