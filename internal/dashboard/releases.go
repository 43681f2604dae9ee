package dashboard

import (
	"net/http"
	"slices"
	"strings"

	"github.com/satchelcm/satchel/internal/api"
)

// releaseView is one release on the releases page.
type releaseView struct {
	api.ReleaseInfo
	Nodes  int           // in the fleet
	Groups []changeGroup // its preview, nodes with the same changes together
	Failed []api.PreviewNode
}

// changeGroup is the nodes a release changes the same way.
type changeGroup struct {
	Nodes   []string
	Changes []api.PreviewChange
}

// groupPreview puts together the nodes of a preview whose changes are the same, largest
// group first; nodes it fails for are apart.
func groupPreview(p *api.Preview) (groups []changeGroup, failed []api.PreviewNode) {
	if p == nil {
		return nil, nil
	}
	byKey := map[string]int{}
	for _, n := range p.Nodes {
		if n.Error != "" {
			failed = append(failed, n)
			continue
		}
		var key strings.Builder
		for _, c := range n.Changes {
			key.WriteString(c.Kind + " " + c.Address + " " + strings.Join(c.Fields, ",") + "\n")
		}
		i, ok := byKey[key.String()]
		if !ok {
			i = len(groups)
			byKey[key.String()] = i
			groups = append(groups, changeGroup{Changes: n.Changes})
		}
		groups[i].Nodes = append(groups[i].Nodes, n.Node)
	}
	slices.SortStableFunc(groups, func(a, b changeGroup) int { return len(b.Nodes) - len(a.Nodes) })
	return groups, failed
}

func (d *Dashboard) releasesPage(w http.ResponseWriter, r *http.Request) {
	releases, err := d.cfg.Fleet.Releases(r.Context())
	var fleet int
	if err == nil {
		var sum Summary
		sum, err = d.Summary(r.Context())
		fleet = len(sum.Rows)
	}
	if err != nil {
		d.cfg.Log.Error("dashboard: releases", "err", err)
		d.fail(w, r, http.StatusInternalServerError, "The releases could not be read (see the server's log).")
		return
	}
	views := make([]releaseView, len(releases))
	for i, rel := range releases {
		views[i] = releaseView{ReleaseInfo: rel, Nodes: fleet}
		views[i].Groups, views[i].Failed = groupPreview(rel.Preview)
	}
	d.render(w, http.StatusOK, "releases", pageData{Title: "Releases", Nav: "releases", Session: sessionOf(r), Data: views})
}
