package registry

import (
	"fmt"
	"time"
)

// Report is one run report a node uploaded.
type Report struct {
	Node string
	// ID is the name the agent gave the report when it spooled it, unique per node: the
	// key that makes uploads idempotent.
	ID       string
	Received time.Time
	Outcome  string
	Release  uint64
	Body     []byte // JSON
}

// Check reports what is missing from a report about to be stored.
func (r Report) Check() error {
	if r.Node == "" {
		return fmt.Errorf("report %q names no node", r.ID)
	}
	if r.ID == "" {
		return fmt.Errorf("report from %q has no ID", r.Node)
	}
	return nil
}

// NodeStatus is a node (its Facts left out) and the head of its newest report (its Body
// left out; nil if it never reported).
type NodeStatus struct {
	Node
	Last *Report
}

// ReleaseCount is how many nodes ran a release on a day (UTC, midnight).
type ReleaseCount struct {
	Day     time.Time
	Release uint64
	Nodes   int
}

// Retention says which of a node's reports a store keeps: its newest Newest (0: no limit
// on the count), none received before Since (zero: no limit on the age), and in any case
// its newest one, so that a node silent for months still shows how its last run went.
// Order is the order ListReports returns.
type Retention struct {
	Newest int
	Since  time.Time
}
