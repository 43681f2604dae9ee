package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// browser is an operator's browser: cookies kept, redirects not followed (so that the
// tests see them).
type browser struct {
	t    *testing.T
	s    *testServer
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, s *testServer) *browser {
	c := s.rawClient(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, s: s, c: c}
}

// page is a response as the tests read it.
type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values, headers ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(data), header: resp.Header}
	if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) login() {
	b.t.Helper()
	cred, err := server.LoadCredential(b.s.data + "/" + server.CredentialFile)
	if err != nil {
		b.t.Fatal(err)
	}
	p := b.do(http.MethodPost, "/ui/login", url.Values{"token": {cred.Token}})
	if p.status != http.StatusSeeOther || p.location != "/ui/" {
		b.t.Fatalf("login: %d to %q: %s", p.status, p.location, p.body)
	}
	b.do(http.MethodGet, "/ui/", nil) // for the CSRF token
}

func wantPage(t *testing.T, what string, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("%s: status %d, want %d (%.300s)", what, p.status, status, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Errorf("%s: the page lacks %q", what, c)
		}
	}
}

// Without a session every page sends to the login page, and every form is refused; a
// wrong token opens none; the session cookie is HttpOnly, Secure and SameSite=Strict;
// logging out ends it.
func TestDashboardNeedsALogin(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.enrolled(t, "school-1")
	b := newBrowser(t, s)
	for _, path := range []string{"/ui/", "/ui/nodes/school-1", "/ui/pending", "/ui/?status=failing"} {
		p := b.do(http.MethodGet, path, nil)
		if p.status != http.StatusSeeOther || p.location != "/ui/login" {
			t.Errorf("GET %s without a session: %d to %q, want 303 to /ui/login", path, p.status, p.location)
		}
	}
	if p := b.do(http.MethodGet, "/", nil); p.status != http.StatusSeeOther || p.location != "/ui/" {
		t.Errorf("GET /: %d to %q", p.status, p.location)
	}
	p := b.do(http.MethodPost, "/ui/nodes/school-1/revoke", url.Values{"csrf": {"x"}})
	wantPage(t, "revoke without a session", p, http.StatusUnauthorized, "log in again")
	p = b.do(http.MethodPost, "/ui/login", url.Values{"token": {"satchel-admin-wrong"}})
	wantPage(t, "a wrong token", p, http.StatusUnauthorized, "That is not the admin token")
	if p.header.Get("Set-Cookie") != "" {
		t.Errorf("a wrong token set a cookie: %s", p.header.Get("Set-Cookie"))
	}
	if n, _ := s.node(t, "school-1"); n.State != registry.Approved {
		t.Errorf("school-1 is %s after the refused forms", n.State)
	}

	cred, err := server.LoadCredential(s.data + "/" + server.CredentialFile)
	if err != nil {
		t.Fatal(err)
	}
	p = b.do(http.MethodPost, "/ui/login", url.Values{"token": {cred.Token}})
	cookie := p.header.Get("Set-Cookie")
	for _, attr := range []string{"satchel_session=", "Path=/ui/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("the session cookie %q lacks %s", cookie, attr)
		}
	}
	p = b.do(http.MethodGet, "/ui/", nil)
	wantPage(t, "the fleet page", p, http.StatusOK, "Fleet", "school-1")
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options"} {
		if p.header.Get(h) == "" {
			t.Errorf("the page has no %s header", h)
		}
	}
	p = b.do(http.MethodPost, "/ui/logout", url.Values{"csrf": {b.csrf}})
	if p.status != http.StatusSeeOther {
		t.Errorf("logout: %d", p.status)
	}
	if p = b.do(http.MethodGet, "/ui/", nil); p.status != http.StatusSeeOther {
		t.Errorf("after logout: %d, want the login page", p.status)
	}
}

// Every form needs the session's CSRF token, and a cross-origin POST is refused even
// with it; with it, from the page, the action is done.
func TestDashboardCSRF(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.enrolled(t, "school-1")
	b := newBrowser(t, s)
	b.login()
	for _, tc := range []struct {
		what    string
		form    url.Values
		headers []string
	}{
		{"no token", url.Values{}, nil},
		{"another token", url.Values{"csrf": {"forged-token"}}, nil},
		{"a cross-origin POST", url.Values{"csrf": {b.csrf}}, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
	} {
		p := b.do(http.MethodPost, "/ui/nodes/school-1/revoke", tc.form, tc.headers...)
		if p.status != http.StatusForbidden {
			t.Errorf("revoke with %s: %d, want 403", tc.what, p.status)
		}
		if n, _ := s.node(t, "school-1"); n.State != registry.Approved {
			t.Fatalf("revoke with %s: school-1 is %s", tc.what, n.State)
		}
	}
	p := b.do(http.MethodPost, "/ui/nodes/school-1/revoke", url.Values{"csrf": {b.csrf}})
	if p.status != http.StatusSeeOther || p.location != "/ui/nodes/school-1" {
		t.Errorf("revoke from the page: %d to %q", p.status, p.location)
	}
	if n, _ := s.node(t, "school-1"); n.State != registry.Revoked {
		t.Errorf("school-1 is %s after its revocation", n.State)
	}
}

// Names, facts, errors and diffs are data, never markup: a node named <script>… and its
// hostile facts and report render inert.
func TestDashboardEscapes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	hostile := `<script>alert("x")</script>`
	// The name cannot be enrolled (names are checked), so it is put in the store itself:
	// the dashboard must not rely on the check.
	n := registry.Node{Name: hostile, State: registry.Pending, KeyFingerprint: strings.Repeat("ab", 32), MachineID: `"><img src=x onerror=alert(1)>`,
		Enrolled: time.Now(), LastSeen: time.Now(), Facts: []byte(`{"hostname":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `"}`)}
	if err := s.Store().PutPendingNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	_, node := s.enrolled(t, "school-1")
	body := `{"outcome":"failed","release":1,"error":"` + strings.ReplaceAll(hostile, `"`, `\"`) +
		`","run":{"resources":[{"address":"file.x","status":"failed","diff":"<b>diff</b>","error":"<i>boom</i>"}]}}`
	if _, err := node.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: "failed", Release: 1, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s)
	b.login()
	for _, path := range []string{"/ui/", "/ui/pending", "/ui/nodes/" + url.PathEscape(hostile), "/ui/nodes/school-1", "/ui/?q=" + url.QueryEscape(hostile)} {
		p := b.do(http.MethodGet, path, nil)
		if p.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, p.status)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "<b>diff</b>", "<i>boom</i>"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("GET %s: the page holds %q as markup", path, raw)
			}
		}
	}
	p := b.do(http.MethodGet, "/ui/nodes/school-1", nil)
	wantPage(t, "the failing node's page", p, http.StatusOK, "&lt;i&gt;boom&lt;/i&gt;", "&lt;b&gt;diff&lt;/b&gt;", "failing")
}

// The fleet page counts nodes by status, judging silence by how each node reaches the
// office; the pending page approves and rejects.
func TestDashboardFleetAndPending(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	s := startServerWith(t, server.Config{Now: clock.Now})
	ctx := context.Background()
	_, ok := s.enrolled(t, "school-ok")
	_, failing := s.enrolled(t, "school-failing")
	s.enrolled(t, "school-courier")
	s.enrolled(t, "school-silent")
	if _, _, err := s.enroll(t, "school-new", "", "mid-new"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.enroll(t, "school-spam", "", "mid-spam"); err != nil {
		t.Fatal(err)
	}
	for _, up := range []struct {
		n interface {
			PutReport(context.Context, api.ReportUpload) (bool, error)
		}
		outcome string
	}{{ok, "applied"}, {failing, "failed"}} {
		if _, err := up.n.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: up.outcome, Release: 0, Body: []byte(`{"outcome":"` + up.outcome + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Three hours on: the courier school's returns were collected an hour ago (it is not
	// silent: sticks come every few weeks); the silent school has not been heard from.
	now := clock.Advance(3 * time.Hour)
	if _, err := s.Store().RecordReturns(ctx, "school-courier", 1, now.Add(-time.Hour), nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"school-ok", "school-failing"} { // heard from recently
		if err := s.Store().TouchNode(ctx, n, now.Add(-time.Minute), nil); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, s)
	b.login()
	p := b.do(http.MethodGet, "/ui/", nil)
	counts := map[string]string{"in sync": "2", "failing": "1", "pending approval": "2", "silent": "1"}
	for status, n := range counts {
		if !regexp.MustCompile(`<span class="n">` + n + `</span> ` + status + `</a>`).MatchString(p.body) {
			t.Errorf("the fleet page does not count %s %s", n, status)
		}
	}
	if !regexp.MustCompile(`school-courier</a></td>\s*<td></td>\s*<td>in sync</td>[\s\S]*?<td>USB stick</td>`).MatchString(p.body) {
		t.Errorf("the courier school is not shown in sync, reached by USB stick")
	}
	p = b.do(http.MethodGet, "/ui/?status=failing", nil)
	if !strings.Contains(p.body, "school-failing") || strings.Contains(p.body, ">school-ok<") {
		t.Errorf("filtered by failing, the page shows other nodes")
	}

	p = b.do(http.MethodGet, "/ui/pending", nil)
	wantPage(t, "the pending page", p, http.StatusOK, "school-new", "school-spam")
	p = b.do(http.MethodPost, "/ui/nodes/school-new/approve", url.Values{"csrf": {b.csrf}, "back": {"pending"}})
	if p.status != http.StatusSeeOther || p.location != "/ui/pending" {
		t.Errorf("approve: %d to %q", p.status, p.location)
	}
	if n, _ := s.node(t, "school-new"); n.State != registry.Approved {
		t.Errorf("school-new is %s after its approval", n.State)
	}
	b.do(http.MethodPost, "/ui/nodes/school-spam/reject", url.Values{"csrf": {b.csrf}})
	if _, err := s.Store().GetNode(ctx, "school-spam"); err == nil {
		t.Error("school-spam is still there after its rejection")
	}
	p = b.do(http.MethodPost, "/ui/nodes/school-ok/reject", url.Values{"csrf": {b.csrf}})
	wantPage(t, "rejecting an approved node", p, http.StatusConflict, "cannot be rejected")
}

// GET /metrics, with the admin token, counts nodes by status, enrollments, reports, bytes
// served and request times; without it, it is refused.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	_, n := s.enrolled(t, "school-1")
	if _, _, err := s.enroll(t, "school-2", "", "mid-2"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second a duplicate
		if _, err := n.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: "applied", Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := n.HTTPClient().Get(s.url + api.PathRepo + "metadata/1.root.json")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c := s.rawClient(t)
	r := s.mustDo(t, c, http.MethodGet, server.PathMetrics, nil)
	wantRefused(t, "metrics without the token", r, http.StatusUnauthorized, api.CodeUnauthorized)
	cred, err := server.LoadCredential(s.data + "/" + server.CredentialFile)
	if err != nil {
		t.Fatal(err)
	}
	r = s.mustDo(t, c, http.MethodGet, server.PathMetrics, nil, "Authorization", "Bearer "+cred.Token)
	wantStatus(t, "metrics", r, http.StatusOK)
	for _, line := range []string{
		`satchel_nodes{status="in sync"} 1`,
		`satchel_nodes{status="pending approval"} 1`,
		`satchel_nodes{status="failing"} 0`,
		`satchel_enrollments_total{result="approved"} 1`,
		`satchel_enrollments_total{result="pending"} 1`,
		`satchel_reports_received_total{result="stored"} 1`,
		`satchel_reports_received_total{result="duplicate"} 1`,
		`satchel_http_request_duration_seconds_count{code="200",route="POST /v1/node/reports"} 2`,
		`go_goroutines `,
		"satchel_repo_bytes_served_total " + strconv.Itoa(len(root)),
	} {
		if !strings.Contains(string(r.body), line) {
			t.Errorf("the metrics lack %q", line)
		}
	}
}

// The releases page (and GET /v1/admin/releases) lists each release with its notes, how
// many nodes run it, and the preview of what it changed when it was published.
func TestDashboardReleases(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	_, n := s.enrolled(t, "school-1")
	s.enrolled(t, "school-2")
	files := func(motd string) map[string]string {
		return map[string]string{"inventory.csv": "hostname\nschool-1\nschool-2\n", "main.hcl": `inventory {
  source = "inventory.csv"
}
node "school-*" {
  file "motd" {
    path    = "/etc/motd"
    content = "` + motd + `\n"
  }
}
`}
	}
	s.publish(t, "first <b>notes</b>", files("one"))
	s.publish(t, "the motd changes", files("two"))
	if _, err := n.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: "applied", Release: 2, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var infos []api.ReleaseInfo
	cred, err := server.LoadCredential(s.data + "/" + server.CredentialFile)
	if err != nil {
		t.Fatal(err)
	}
	r := s.mustDo(t, s.rawClient(t), http.MethodGet, api.PathAdminReleases, nil, "Authorization", "Bearer "+cred.Token)
	if err := json.Unmarshal(r.body, &infos); err != nil || len(infos) != 2 {
		t.Fatalf("GET %s: %s (%v)", api.PathAdminReleases, r.body, err)
	}
	if infos[0].Version != 2 || infos[0].Applied != 1 || infos[0].Preview == nil || infos[0].Preview.From != 1 || infos[1].Applied != 0 {
		t.Errorf("releases: %+v", infos)
	}
	b := newBrowser(t, s)
	b.login()
	p := b.do(http.MethodGet, "/ui/releases", nil)
	wantPage(t, "the releases page", p, http.StatusOK, "Release 2", "the motd changes", "Run by <strong>1</strong> of 2 nodes",
		"2 nodes</strong>: school-1, school-2", "~ file.motd", "first &lt;b&gt;notes&lt;/b&gt;", "+ file.motd")
}

// The fleet page charts the nodes by release, day by day, from the history the server
// records.
func TestDashboardReleaseChart(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	now := time.Now()
	// Days before today: today's counts are the server's own (its sweep records them).
	for i, counts := range []map[uint64]int{{1: 3}, {1: 2, 2: 1}, {2: 3}} {
		if err := s.Store().RecordReleases(ctx, now.AddDate(0, 0, i-3), counts); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, s)
	b.login()
	p := b.do(http.MethodGet, "/ui/", nil)
	wantPage(t, "the fleet page", p, http.StatusOK, `<svg viewBox="0 0 720 140"`, "release 2</span>", "release 1</span>",
		now.AddDate(0, 0, -1).UTC().Format(time.DateOnly)+": 3 nodes on release 2", now.AddDate(0, 0, -2).UTC().Format(time.DateOnly)+": 1 node on release 2")
	if n := strings.Count(p.body, "<rect x="); n != 4 {
		t.Errorf("the chart has %d bars' segments, want 4", n)
	}
}
