package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/report"
)

// runsShown is how many of a node's last runs its page shows.
const runsShown = 10

// run is one report as the node page shows it: the agent's cycle report, read here
// without package agent (the fields the page shows).
type run struct {
	ID       string
	Received time.Time
	Outcome  string
	Release  uint64
	Body     struct {
		Started  time.Time `json:"started"`
		Error    string    `json:"error"`
		Rollback *struct {
			From  uint64 `json:"from"`
			Cause string `json:"cause"`
		} `json:"rollback"`
		Transfer struct {
			Requests int   `json:"requests"`
			Bytes    int64 `json:"bytes"`
			Deltas   int   `json:"deltas"`
		} `json:"transfer"`
		Run       *report.Report `json:"run"`
		FailedRun *report.Report `json:"failed_run"`
	}
}

// Resources are the run's resources that failed or changed (the failed run's first).
func (r run) Resources() []*report.Resource {
	var out []*report.Resource
	for _, rep := range []*report.Report{r.Body.FailedRun, r.Body.Run} {
		if rep == nil {
			continue
		}
		for _, res := range rep.Resources {
			if res.Status == report.Failed || res.Status == report.Changed || res.Status == report.Skipped {
				out = append(out, res)
			}
		}
	}
	return out
}

// nodeView is the node page's data.
type nodeView struct {
	Node   registry.Node
	Row    Row
	Facts  string // indented
	Runs   []run
	Latest uint64
}

func (d *Dashboard) nodePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	n, err := d.cfg.Fleet.GetNode(ctx, name)
	if errors.Is(err, registry.ErrNotFound) {
		d.fail(w, r, http.StatusNotFound, "There is no node named "+name+".")
		return
	}
	reports, err2 := d.cfg.Fleet.ListReports(ctx, name, runsShown)
	latest, err3 := d.cfg.Fleet.Latest(ctx)
	if err = errors.Join(err, err2, err3); err != nil {
		d.cfg.Log.Error("dashboard: node", "node", name, "err", err)
		d.fail(w, r, http.StatusInternalServerError, "The node could not be read (see the server's log).")
		return
	}
	v := nodeView{Node: n, Latest: latest}
	st := registry.NodeStatus{Node: n}
	if len(reports) > 0 {
		st.Last = &reports[0]
	}
	v.Row = d.classify(st, latest, d.cfg.Now())
	var facts bytes.Buffer
	if json.Indent(&facts, n.Facts, "", "  ") == nil {
		v.Facts = facts.String()
	}
	for _, rep := range reports {
		ru := run{ID: rep.ID, Received: rep.Received, Outcome: rep.Outcome, Release: rep.Release}
		_ = json.Unmarshal(rep.Body, &ru.Body) // a report of another shape shows its head only
		v.Runs = append(v.Runs, ru)
	}
	d.render(w, http.StatusOK, "node", pageData{Title: name, Nav: "fleet", Session: sessionOf(r), Data: v})
}

// nodeAction approves, revokes or rejects (forgets, while pending) a node.
func (d *Dashboard) nodeAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, action := r.PathValue("name"), r.PathValue("action")
	n, err := d.cfg.Fleet.GetNode(ctx, name)
	if errors.Is(err, registry.ErrNotFound) {
		d.fail(w, r, http.StatusNotFound, "There is no node named "+name+".")
		return
	}
	if err == nil {
		switch {
		case action == "approve" && n.State != registry.Approved:
			err = d.cfg.Fleet.SetNodeState(ctx, name, registry.Approved)
		case action == "revoke" && n.State == registry.Approved:
			err = d.cfg.Fleet.SetNodeState(ctx, name, registry.Revoked)
		case action == "reject" && n.State == registry.Pending:
			err = d.cfg.Fleet.Forget(ctx, name)
		default:
			done := map[string]string{"approve": "approved", "revoke": "revoked", "reject": "rejected"}[action]
			if done == "" {
				d.fail(w, r, http.StatusNotFound, "There is no action "+action+".")
				return
			}
			d.fail(w, r, http.StatusConflict, "Node "+name+" is "+string(n.State)+": it cannot be "+done+".")
			return
		}
	}
	if err != nil {
		d.cfg.Log.Error("dashboard: node action", "node", name, "action", action, "err", err)
		d.fail(w, r, http.StatusInternalServerError, "That could not be done (see the server's log).")
		return
	}
	d.cfg.Log.Info("dashboard: node "+action, "node", name, "remote", r.RemoteAddr)
	back := Prefix + "nodes/" + name
	if action == "reject" || r.PostFormValue("back") == "pending" {
		back = Prefix + "pending"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// pendingPage lists the enrollment requests waiting for an operator.
func (d *Dashboard) pendingPage(w http.ResponseWriter, r *http.Request) {
	fleet, err := d.cfg.Fleet.FleetStatus(r.Context())
	if err != nil {
		d.cfg.Log.Error("dashboard: pending", "err", err)
		d.fail(w, r, http.StatusInternalServerError, "The fleet could not be read (see the server's log).")
		return
	}
	var pending []registry.NodeStatus
	for _, st := range fleet {
		if st.State == registry.Pending {
			pending = append(pending, st)
		}
	}
	d.render(w, http.StatusOK, "pending", pageData{Title: "Pending", Nav: "pending", Session: sessionOf(r), Data: pending})
}
