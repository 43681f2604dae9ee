package server_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/server"
)

// A certificate that expires while its connection is kept alive is refused on the next
// request: TLS checked it only at the handshake.
func TestExpiredCertificateRefusedOnKeptAliveConnection(t *testing.T) {
	var skew atomic.Int64
	s := startServerWith(t, server.Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	id, n := s.enrolled(t, "school-1")
	get := func() int {
		resp, err := n.HTTPClient().Get(n.RepoURL() + "metadata/root.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("before expiry: %d", got)
	}
	skew.Store(int64(time.Until(id.Certificate().NotAfter) + time.Minute))
	if got := get(); got != http.StatusUnauthorized {
		t.Errorf("after expiry, same connection: %d, want 401", got)
	}
}
