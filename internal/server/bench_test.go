package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// BenchmarkReportUpload uploads reports of a thousand changed resources (each with its
// changes and a diff, about 350 KiB, 30 KiB gzipped), one at a time over one kept-alive
// connection: the server's cost per report, client included.
func BenchmarkReportUpload(b *testing.B) {
	s := startServer(b)
	_, n := s.enrolled(b, "school-1")
	var res []string
	for i := range 1000 {
		res = append(res, fmt.Sprintf(`{"address":"file.f%04d","type":"file","status":"changed","changes":[{"attribute":"content","from":"sha256:%064d","to":"sha256:%064d"}],"diff":"--- /srv/f%04d (current)\n+++ /srv/f%04d (desired)\n@@ -1 +1 @@\n-old line %d\n+new line %d\n","error":"","duration_ms":0.4,"origin":"main.hcl:%d:3"}`, i, i, i+1, i, i, i, i, i))
	}
	body := json.RawMessage(`{"format":"satchel.agent-report/v1","outcome":"applied","run":{"resources":[` + strings.Join(res, ",") + `]}}`)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := range b.N {
		if _, err := n.PutReport(context.Background(), api.ReportUpload{ID: fmt.Sprintf("r%d", i), Outcome: "applied", Release: 1, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetPage renders the dashboard's fleet page (its first 100 rows, sorted by
// last contact) for a fleet of 10,000 nodes, each with reports: the server's side of a
// page view, through its HTTP handler, TLS aside. The target is under 300 ms.
func BenchmarkFleetPage(b *testing.B) {
	s := startServer(b)
	ctx := context.Background()
	st := s.Store()
	now := time.Now()
	for i := range 10000 {
		name := fmt.Sprintf("school-%05d", i)
		n := registry.Node{Name: name, State: registry.Pending, KeyFingerprint: fmt.Sprintf("%064x", i), Enrolled: now, LastSeen: now,
			Facts: []byte(`{"hostname":"` + name + `","os":{"family":"debian"}}`)}
		if err := st.PutPendingNode(ctx, n); err != nil {
			b.Fatal(err)
		}
		if i%10 != 0 { // a tenth still pending
			if err := st.SetNodeState(ctx, name, registry.Approved, "serial"); err != nil {
				b.Fatal(err)
			}
		}
		for r := range 2 {
			outcome := []string{"applied", "reapplied", "failed"}[(i+r)%3]
			if _, err := st.PutReport(ctx, registry.Report{Node: name, ID: fmt.Sprintf("r%d", r), Received: now.Add(time.Duration(r) * time.Second),
				Outcome: outcome, Release: uint64(1 + i%3), Body: []byte(`{"outcome":"` + outcome + `"}`)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	h := s.Handler()
	cred, err := server.LoadCredential(s.data + "/" + server.CredentialFile)
	if err != nil {
		b.Fatal(err)
	}
	login := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"token": {cred.Token}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, login)
	cookies := rec.Result().Cookies()
	if len(cookies) == 0 {
		b.Fatalf("login: %d, no cookie", rec.Code)
	}
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodGet, "/ui/?sort=contact&desc=1", nil)
		req.AddCookie(cookies[0])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "10000 nodes") {
			b.Fatalf("fleet page: %d %.200s", rec.Code, rec.Body.String())
		}
	}
}
