package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/api"
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
	_, _ = zw.Write([]byte(`{"id":"r1","outcome":"x","release":1,"body":{"pad":"`))
	_, _ = zw.Write(bytes.Repeat([]byte("a"), api.MaxReportBytes+1))
	_, _ = zw.Write([]byte(`"}}`))
	_ = zw.Close()
	if bomb.Len() > 64<<10 {
		t.Fatalf("the bomb is %d bytes: not a bomb", bomb.Len())
	}
	for enc, want := range map[string]int{"gzip": http.StatusRequestEntityTooLarge, "br": http.StatusUnsupportedMediaType} {
		req, err := http.NewRequest(http.MethodPost, s.url+api.PathReports, bytes.NewReader(bomb.Bytes()))
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
