package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/api"
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
