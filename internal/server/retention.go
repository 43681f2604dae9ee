package server

import (
	"context"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

// retention is what Config says to keep, now.
func (s *Server) retention() registry.Retention {
	var keep registry.Retention
	if s.cfg.ReportsKept > 0 {
		keep.Newest = s.cfg.ReportsKept
	}
	if s.cfg.ReportMaxAge > 0 {
		keep.Since = s.cfg.Now().Add(-s.cfg.ReportMaxAge)
	}
	return keep
}

// pruneReports removes the reports of node ("": of every node) that the retention does
// not keep: the node's after each report it uploads (cheap: a walk from its newest), and
// every node's in the hourly sweep, for the nodes that have gone silent. A failure is
// logged, not returned: the report at hand is stored, and the next pass prunes what this
// one left.
func (s *Server) pruneReports(ctx context.Context, node string) {
	keep := s.retention()
	if keep == (registry.Retention{}) {
		return
	}
	removed, err := s.store.PruneReports(ctx, node, keep)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("prune reports", "node", node, "removed", removed, "err", err)
	case removed > 0 && node == "":
		s.log.Info("pruned reports", "removed", removed, "kept_per_node", keep.Newest, "received_since", keep.Since)
	}
}

// pruneReportsEvery prunes every node's reports, and records how many nodes run each
// release today (the dashboard's chart), now and then every interval, until ctx is done.
func (s *Server) pruneReportsEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.pruneReports(ctx, "")
		if err := s.recordReleases(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("record the releases nodes run", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recordReleases records how many nodes run each release today, from their last reports.
func (s *Server) recordReleases(ctx context.Context) error {
	fleet, err := s.store.FleetStatus(ctx)
	if err != nil {
		return err
	}
	counts := map[uint64]int{}
	for _, n := range fleet {
		if n.Last != nil && n.Last.Release > 0 && n.State == registry.Approved {
			counts[n.Last.Release]++
		}
	}
	return s.store.RecordReleases(ctx, s.cfg.Now(), counts)
}
