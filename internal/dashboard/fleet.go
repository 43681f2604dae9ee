package dashboard

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

// Status is where a node stands, for the operator.
type Status string

// The statuses, in the order the fleet page counts them.
const (
	InSync     Status = "in sync"
	Behind     Status = "behind"
	Failing    Status = "failing"
	RolledBack Status = "rolled back"
	Pending    Status = "pending approval"
	Silent     Status = "silent"
	Revoked    Status = "revoked"
)

var statuses = []Status{InSync, Behind, Failing, RolledBack, Pending, Silent, Revoked}

// Row is one node in the fleet table.
type Row struct {
	Name    string
	Site    string
	Status  Status
	Applied uint64 // the release in place at its last run (0: none reported)
	Result  string // its last run's outcome ("": never reported)
	Contact time.Time
	Courier bool // reached by USB stick: its returns were collected after its last request
}

// Via says how the node last reached the office.
func (r Row) Via() string {
	switch {
	case r.Contact.IsZero():
		return "never"
	case r.Courier:
		return "USB stick"
	}
	return "network"
}

// classify turns a node's state and newest report into a row.
func (d *Dashboard) classify(st registry.NodeStatus, latest uint64, now time.Time) Row {
	r := Row{Name: st.Name, Contact: st.LastSeen}
	if st.LastReturns.After(st.LastSeen) {
		r.Contact, r.Courier = st.LastReturns, true
	}
	if st.Last != nil {
		r.Applied, r.Result = st.Last.Release, st.Last.Outcome
	}
	silentAfter := d.cfg.SilentAfter
	if r.Courier {
		silentAfter = d.cfg.CourierSilentAfter
	}
	switch {
	case st.State == registry.Pending:
		r.Status = Pending
	case st.State == registry.Revoked:
		r.Status = Revoked
	case now.Sub(r.Contact) > silentAfter:
		r.Status = Silent
	case r.Result == "failed":
		r.Status = Failing
	case r.Result == "rolled_back":
		r.Status = RolledBack
	case r.Applied < latest:
		r.Status = Behind
	default:
		r.Status = InSync
	}
	return r
}

// fleetView is the fleet page's data.
type fleetView struct {
	Counts     []count
	Rows       []Row
	Total      int // rows matching the filter
	Latest     uint64
	SiteColumn string
	Query      string
	Status     string
	Sort       string
	Desc       bool
	Page       int
	Pages      int
	Nodes      int    // in the fleet
	Chart      *chart // nodes by release, day by day (nil: no history yet)
}

type count struct {
	Status Status
	N      int
}

// Link is the fleet page's URL with this view's filters, order and page, and one of
// them changed: "page" to value; "sort" by value (again: the other way round); any other
// (q, status) to value. A change other than the page goes back to the first page.
func (v fleetView) Link(key, value string) string {
	q := url.Values{}
	set := func(k, val string) {
		if val != "" {
			q.Set(k, val)
		}
	}
	query, status, sort, desc, page := v.Query, v.Status, v.Sort, v.Desc, ""
	switch key {
	case "page":
		page = value
	case "sort":
		desc = sort == value && !desc
		sort = value
	case "q":
		query = value
	case "status":
		status = value
	}
	set("q", query)
	set("status", status)
	set("sort", sort)
	if desc {
		q.Set("desc", "1")
	}
	set("page", page)
	if len(q) == 0 {
		return Prefix
	}
	return Prefix + "?" + q.Encode()
}

// Summary is the whole fleet at a glance: every node's row, the counts by status, the
// latest release, and the inventory column the sites come from.
type Summary struct {
	Rows       []Row
	Counts     map[Status]int
	Latest     uint64
	SiteColumn string
}

// Summary reads the fleet, classifies every node and counts them (the fleet page; the
// server's JSON API and metrics too).
func (d *Dashboard) Summary(ctx context.Context) (Summary, error) {
	rows, counts, latest, column, err := d.fleetRows(ctx)
	return Summary{Rows: rows, Counts: counts, Latest: latest, SiteColumn: column}, err
}

// Statuses are the statuses, in the order the fleet page counts them.
func Statuses() []Status { return slices.Clone(statuses) }

// fleetRows reads the fleet, classifies every node, and counts them.
func (d *Dashboard) fleetRows(ctx context.Context) ([]Row, map[Status]int, uint64, string, error) {
	fleet, err := d.cfg.Fleet.FleetStatus(ctx)
	if err != nil {
		return nil, nil, 0, "", err
	}
	latest, err := d.cfg.Fleet.Latest(ctx)
	if err != nil {
		return nil, nil, 0, "", err
	}
	sites, column, err := d.cfg.Fleet.Sites(ctx)
	if err != nil {
		d.cfg.Log.Warn("dashboard: sites", "err", err) // the table goes without them
	}
	now := d.cfg.Now()
	rows := make([]Row, len(fleet))
	counts := map[Status]int{}
	for i, st := range fleet {
		rows[i] = d.classify(st, latest, now)
		rows[i].Site = sites[st.Name]
		counts[rows[i].Status]++
	}
	return rows, counts, latest, column, nil
}

func (d *Dashboard) fleetPage(w http.ResponseWriter, r *http.Request) {
	rows, counts, latest, column, err := d.fleetRows(r.Context())
	if err != nil {
		d.cfg.Log.Error("dashboard: fleet", "err", err)
		d.fail(w, r, http.StatusInternalServerError, "The fleet could not be read (see the server's log).")
		return
	}
	q := r.URL.Query()
	v := fleetView{Latest: latest, SiteColumn: column, Query: strings.TrimSpace(q.Get("q")), Status: q.Get("status"),
		Sort: q.Get("sort"), Desc: q.Get("desc") == "1", Nodes: len(rows)}
	for _, s := range statuses {
		v.Counts = append(v.Counts, count{s, counts[s]})
	}
	if v.Chart, err = d.releaseChart(r.Context()); err != nil {
		d.cfg.Log.Warn("dashboard: the release chart", "err", err) // the page goes without it
	}
	rows = filterRows(rows, v.Query, Status(v.Status))
	sortRows(rows, v.Sort, v.Desc)
	v.Total = len(rows)
	v.Pages = max(1, (len(rows)+d.cfg.PageSize-1)/d.cfg.PageSize)
	v.Page, _ = strconv.Atoi(q.Get("page"))
	v.Page = min(max(v.Page, 1), v.Pages)
	from := (v.Page - 1) * d.cfg.PageSize
	v.Rows = rows[from:min(from+d.cfg.PageSize, len(rows))]
	d.render(w, http.StatusOK, "fleet", pageData{Title: "Fleet", Nav: "fleet", Session: sessionOf(r), Data: v})
}

// filterRows keeps the rows whose name or site holds query (without case) and, if status
// is given, that have it.
func filterRows(rows []Row, query string, status Status) []Row {
	query = strings.ToLower(query)
	return slices.DeleteFunc(rows, func(r Row) bool {
		if status != "" && r.Status != status {
			return true
		}
		return query != "" && !strings.Contains(strings.ToLower(r.Name), query) && !strings.Contains(strings.ToLower(r.Site), query)
	})
}

// sortRows orders the rows by a column (name when unknown), then by name.
func sortRows(rows []Row, by string, desc bool) {
	key := func(a, b Row) int {
		switch by {
		case "site":
			return strings.Compare(a.Site, b.Site)
		case "status":
			return cmp.Compare(slices.Index(statuses, a.Status), slices.Index(statuses, b.Status))
		case "release":
			return cmp.Compare(a.Applied, b.Applied)
		case "result":
			return strings.Compare(a.Result, b.Result)
		case "contact":
			return a.Contact.Compare(b.Contact)
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b Row) int {
		c := key(a, b)
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if desc {
			return -c
		}
		return c
	})
}
