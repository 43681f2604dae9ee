package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/server"
)

// A large report travels gzipped and is stored as sent.
func TestLargeReportTravelsGzipped(t *testing.T) {
	s := startServer(t)
	_, n := s.enrolled(t, "school-1")
	body := `{"resources":[` + strings.Repeat(`{"address":"file.x","status":"unchanged"},`, 5000) + `{}]}`
	if _, err := n.PutReport(context.Background(), api.ReportUpload{ID: "r1", Outcome: "reapplied", Release: 1, Body: json.RawMessage(body)}); err != nil {
		t.Fatal(err)
	}
	reports, err := s.admin.Reports(context.Background(), "school-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(reports[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(body), &want)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("stored report differs from the one sent (%d bytes, want %d)", len(gotJSON), len(wantJSON))
	}
}

// A gzip bomb — a few kilobytes that inflate past the limit — is refused as it inflates;
// an unknown encoding is refused.
func TestGzipBombRefused(t *testing.T) {
	s := startServer(t)
	_, n := s.enrolled(t, "school-1")
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	_, _ = zw.Write([]byte(`{"pad":"`))
	_, _ = zw.Write(bytes.Repeat([]byte("a"), api.MaxReportBytes+1))
	_, _ = zw.Write([]byte(`"}`))
	_ = zw.Close()
	if bomb.Len() > 64<<10 {
		t.Fatalf("the bomb is %d bytes: not a bomb", bomb.Len())
	}
	for enc, want := range map[string]int{"gzip": http.StatusRequestEntityTooLarge, "br": http.StatusUnsupportedMediaType} {
		req, err := http.NewRequest(http.MethodPost, s.url+reportPath("r1"), bytes.NewReader(bomb.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Encoding", enc)
		resp, err := n.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Content-Encoding %s: %d, want %d", enc, resp.StatusCode, want)
		}
	}
	if reports, err := s.admin.Reports(context.Background(), "school-1", 0); err != nil || len(reports) != 0 {
		t.Errorf("reports after the bomb: %d, %v; want none", len(reports), err)
	}
}

// A node's reports are kept up to Config.ReportsKept and Config.ReportMaxAge, but its
// newest always.
func TestReportRetention(t *testing.T) {
	clock := newTestClock()
	s := startServerWith(t, server.Config{ReportsKept: 3, ReportMaxAge: time.Hour, Now: clock.Now})
	ctx := context.Background()
	_, n := s.enrolled(t, "school-1")
	_, other := s.enrolled(t, "school-2")
	upload := func(n *client.Node, id string) {
		t.Helper()
		if stored, err := n.PutReport(ctx, api.ReportUpload{ID: id, Outcome: "applied", Release: 1, Body: []byte(`{}`)}); err != nil || !stored {
			t.Fatalf("upload %s: stored=%v err=%v", id, stored, err)
		}
		clock.Advance(time.Second)
	}
	ids := func(node string) []string {
		t.Helper()
		reports, err := s.admin.Reports(ctx, node, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range reports {
			out = append(out, r.ID)
		}
		return out
	}
	upload(other, "o1")
	for i := 1; i <= 5; i++ {
		upload(n, fmt.Sprintf("r%d", i))
	}
	if got := ids("school-1"); !slices.Equal(got, []string{"r5", "r4", "r3"}) {
		t.Errorf("after 5 reports, keeping 3: %v", got)
	}
	clock.Advance(2 * time.Hour)
	upload(n, "r6")
	if got := ids("school-1"); !slices.Equal(got, []string{"r6"}) {
		t.Errorf("2 hours later, keeping 1 hour: %v", got)
	}
	// Another node's reports are its own to prune: school-2's newest stays, however old.
	if got := ids("school-2"); !slices.Equal(got, []string{"o1"}) {
		t.Errorf("school-2's reports: %v", got)
	}
}
