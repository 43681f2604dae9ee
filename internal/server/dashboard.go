package server

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/dashboard"
	"github.com/satchelcm/satchel/internal/preview"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
)

// fleetView is what the dashboard reads and changes (dashboard.Fleet): the store, the
// latest release, and the sites of its inventory, read once per release.
type fleetView struct {
	s *Server

	mu        sync.Mutex
	sitesFor  uint64 // the release the sites were read from
	sites     map[string]string
	siteLabel string
}

func (f *fleetView) FleetStatus(ctx context.Context) ([]registry.NodeStatus, error) {
	return f.s.store.FleetStatus(ctx)
}

func (f *fleetView) GetNode(ctx context.Context, name string) (registry.Node, error) {
	return f.s.store.GetNode(ctx, name)
}

func (f *fleetView) ListReports(ctx context.Context, node string, limit int) ([]registry.Report, error) {
	return f.s.store.ListReports(ctx, node, limit)
}

func (f *fleetView) SetNodeState(ctx context.Context, name string, state registry.NodeState) error {
	return f.s.store.SetNodeState(ctx, name, state, "")
}

func (f *fleetView) Forget(ctx context.Context, name string) error {
	return f.s.store.ForgetNode(ctx, name)
}

func (f *fleetView) Latest(context.Context) (uint64, error) {
	m, err := release.Latest(f.s.RepoDir())
	if err != nil || m == nil {
		return 0, err
	}
	return m.Version, nil
}

// Sites reads the first column of the latest release's inventory after the node names
// (a school's name, usually), once per release.
func (f *fleetView) Sites(ctx context.Context) (map[string]string, string, error) {
	m, err := release.Latest(f.s.RepoDir())
	if err != nil || m == nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sitesFor == m.Version {
		return f.sites, f.siteLabel, nil
	}
	work, cleanup, err := f.s.workDir("sites-")
	if err != nil {
		return nil, "", err
	}
	defer cleanup()
	dir := filepath.Join(work, "config")
	if err := release.CheckoutConfig(ctx, f.s.RepoDir(), m, dir); err != nil {
		return nil, "", err
	}
	sites, label, err := preview.InventoryColumn(dir, "")
	if err != nil {
		return nil, "", err
	}
	f.sitesFor, f.sites, f.siteLabel = m.Version, sites, label
	return sites, label, nil
}

func (f *fleetView) ReleaseHistory(ctx context.Context, since time.Time) ([]registry.ReleaseCount, error) {
	return f.s.store.ReleaseHistory(ctx, since)
}

func (f *fleetView) Releases(ctx context.Context) ([]api.ReleaseInfo, error) {
	return f.s.releases(ctx)
}

// newDashboard makes the dashboard the server serves under dashboard.Prefix.
func (s *Server) newDashboard() (*dashboard.Dashboard, error) {
	return dashboard.New(dashboard.Config{Fleet: &fleetView{s: s}, IsAdmin: s.isAdmin, Log: s.log, Now: s.cfg.Now})
}

// getFleet answers the fleet's status, as the dashboard's fleet page shows it.
func (s *Server) getFleet(w http.ResponseWriter, r *http.Request) error {
	sum, err := s.dash.Summary(r.Context())
	if err != nil {
		return err
	}
	out := api.Fleet{Latest: sum.Latest, SiteColumn: sum.SiteColumn, Counts: map[string]int{}, Nodes: make([]api.FleetNode, 0, len(sum.Rows))}
	for _, st := range dashboard.Statuses() {
		out.Counts[string(st)] = sum.Counts[st]
	}
	for _, row := range sum.Rows {
		out.Nodes = append(out.Nodes, api.FleetNode{Name: row.Name, Site: row.Site, Status: string(row.Status), Release: row.Applied,
			Result: row.Result, LastContact: row.Contact, Via: row.Via()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
