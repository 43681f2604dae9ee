package dashboard

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/registry"
)

func TestClassify(t *testing.T) {
	d := &Dashboard{cfg: Config{SilentAfter: 2 * time.Hour, CourierSilentAfter: 120 * 24 * time.Hour}}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	report := func(outcome string, release uint64) *registry.Report {
		return &registry.Report{Outcome: outcome, Release: release}
	}
	for _, tc := range []struct {
		name string
		st   registry.NodeStatus
		want Status
		via  string
	}{
		{"in sync", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(time.Minute)}, Last: report("reapplied", 3)}, InSync, "network"},
		{"behind", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(time.Minute)}, Last: report("reapplied", 2)}, Behind, "network"},
		{"never reported", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(time.Minute)}}, Behind, "network"},
		{"failing", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(time.Minute)}, Last: report("failed", 3)}, Failing, "network"},
		{"rolled back", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(time.Minute)}, Last: report("rolled_back", 2)}, RolledBack, "network"},
		{"silent on the network", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(3 * time.Hour)}, Last: report("applied", 3)}, Silent, "network"},
		{"a courier school weeks after its stick", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(90 * 24 * time.Hour),
			LastReturns: ago(30 * 24 * time.Hour)}, Last: report("applied", 3)}, InSync, "USB stick"},
		{"a courier school a season after its stick", registry.NodeStatus{Node: registry.Node{State: registry.Approved, LastSeen: ago(300 * 24 * time.Hour),
			LastReturns: ago(150 * 24 * time.Hour)}, Last: report("applied", 3)}, Silent, "USB stick"},
		{"pending", registry.NodeStatus{Node: registry.Node{State: registry.Pending, LastSeen: ago(30 * 24 * time.Hour)}}, Pending, "network"},
		{"revoked", registry.NodeStatus{Node: registry.Node{State: registry.Revoked, LastSeen: ago(time.Minute)}, Last: report("failed", 3)}, Revoked, "network"},
	} {
		r := d.classify(tc.st, 3, now)
		if r.Status != tc.want || r.Via() != tc.via {
			t.Errorf("%s: %s via %s, want %s via %s", tc.name, r.Status, r.Via(), tc.want, tc.via)
		}
	}
}

func TestFleetViewLinks(t *testing.T) {
	v := fleetView{Query: "rioja", Status: "failing", Sort: "name", Page: 3}
	for _, tc := range []struct {
		key, value string
		want       url.Values
	}{
		{"page", "4", url.Values{"q": {"rioja"}, "status": {"failing"}, "sort": {"name"}, "page": {"4"}}},
		{"sort", "name", url.Values{"q": {"rioja"}, "status": {"failing"}, "sort": {"name"}, "desc": {"1"}}},
		{"sort", "contact", url.Values{"q": {"rioja"}, "status": {"failing"}, "sort": {"contact"}}},
		{"status", "silent", url.Values{"q": {"rioja"}, "status": {"silent"}, "sort": {"name"}}},
		{"q", "", url.Values{"status": {"failing"}, "sort": {"name"}}},
	} {
		got, err := url.Parse(v.Link(tc.key, tc.value))
		if err != nil || got.Path != Prefix {
			t.Fatalf("Link(%s, %s) = %v, %v", tc.key, tc.value, got, err)
		}
		if q := got.Query(); q.Encode() != tc.want.Encode() {
			t.Errorf("Link(%s, %s) = %s, want %s", tc.key, tc.value, q.Encode(), tc.want.Encode())
		}
	}
	if got := (fleetView{}).Link("status", ""); got != Prefix {
		t.Errorf("no filter at all: %s", got)
	}
}

func TestFilterAndSortRows(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	rows := []Row{
		{Name: "school-b", Site: "La Rioja", Status: Failing, Applied: 2, Contact: t0},
		{Name: "school-a", Site: "Catamarca", Status: InSync, Applied: 3, Contact: t0.Add(time.Hour)},
		{Name: "school-c", Site: "La Rioja", Status: InSync, Applied: 3, Contact: t0.Add(-time.Hour)},
	}
	names := func(rows []Row) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.Name)
		}
		return out
	}
	for _, tc := range []struct {
		by   string
		desc bool
		want []string
	}{
		{"", false, []string{"school-a", "school-b", "school-c"}},
		{"contact", true, []string{"school-a", "school-b", "school-c"}},
		{"contact", false, []string{"school-c", "school-b", "school-a"}},
		{"release", false, []string{"school-b", "school-a", "school-c"}},
		{"site", false, []string{"school-a", "school-b", "school-c"}},
		{"status", true, []string{"school-b", "school-c", "school-a"}},
	} {
		r := slices.Clone(rows)
		sortRows(r, tc.by, tc.desc)
		if got := names(r); !slices.Equal(got, tc.want) {
			t.Errorf("sort by %q desc %v: %v, want %v", tc.by, tc.desc, got, tc.want)
		}
	}
	if got := names(filterRows(slices.Clone(rows), "RIOJA", "")); !slices.Equal(got, []string{"school-b", "school-c"}) {
		t.Errorf("filter rioja: %v", got)
	}
	if got := names(filterRows(slices.Clone(rows), "rioja", InSync)); !slices.Equal(got, []string{"school-c"}) {
		t.Errorf("filter rioja, in sync: %v", got)
	}
}

func TestGroupPreview(t *testing.T) {
	motd := []api.PreviewChange{{Address: "file.motd", Kind: "changed", Fields: []string{"content"}}}
	groups, failed := groupPreview(&api.Preview{Nodes: []api.PreviewNode{
		{Node: "a", Changes: motd}, {Node: "b", Error: "boom"}, {Node: "c", Changes: motd}, {Node: "d"},
	}})
	if len(failed) != 1 || failed[0].Node != "b" {
		t.Errorf("failed: %+v", failed)
	}
	if len(groups) != 2 || !slices.Equal(groups[0].Nodes, []string{"a", "c"}) || !slices.Equal(groups[1].Nodes, []string{"d"}) {
		t.Errorf("groups: %+v", groups)
	}
	if g, f := groupPreview(nil); g != nil || f != nil {
		t.Error("no preview, yet groups")
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", 5 * time.Minute: "5 min ago", 3 * time.Hour: "3 hours ago", 72 * time.Hour: "3 days ago", -time.Hour: "in the future",
	} {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	if got := ago(time.Time{}, now); got != "never" {
		t.Errorf("ago(zero) = %q", got)
	}
}
