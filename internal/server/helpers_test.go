package server_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/server"
)

// testServer is a server on 127.0.0.1 over real TLS, with its admin connection.
type testServer struct {
	*server.Server
	url   string
	admin *client.Admin
	data  string
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	return startServerWith(t, server.Config{})
}

// testClock is a server's clock that a test moves forward (Config.Now = c.Now).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

// Now is the clock's time.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward and returns the new time.
func (c *testClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// startServerWith starts a server with cfg (its DataDir and Log are set here).
func startServerWith(t testing.TB, cfg server.Config) *testServer {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	cfg.DataDir = data
	cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RecordAddress(ln.Addr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	cred, err := server.LoadCredential(filepath.Join(data, server.CredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Server != "https://"+ln.Addr().String() {
		t.Fatalf("credential names server %s, listening on %s", cred.Server, ln.Addr())
	}
	admin, err := client.NewAdmin(cred.Server, cred.CAFingerprint, cred.Token)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: srv, url: cred.Server, admin: admin, data: data}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// newToken creates a bootstrap token with uses uses.
func (s *testServer) newToken(t testing.TB, uses int) string {
	t.Helper()
	tok, err := s.admin.CreateToken(context.Background(), api.TokenRequest{Label: "batch", Uses: uses, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

// enroll makes a new identity for name and enrolls it with token ("" for none).
func (s *testServer) enroll(t testing.TB, name, token, machineID string) (*client.Identity, client.EnrollResult, error) {
	t.Helper()
	id, err := client.NewIdentity(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := id.Enroll(context.Background(), client.EnrollRequest{
		Server: s.url, CAFingerprint: s.CAFingerprint(), Name: name, Token: token, MachineID: machineID,
		Facts: []byte(`{"hostname":"` + name + `"}`),
	})
	return id, res, err
}

// enrolled enrolls name with a one-use token and returns its node connection.
func (s *testServer) enrolled(t testing.TB, name string) (*client.Identity, *client.Node) {
	t.Helper()
	id, res, err := s.enroll(t, name, s.newToken(t, 1), "mid-"+name)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Approved {
		t.Fatalf("enroll %s with a token: pending", name)
	}
	n, err := client.NewNode(id)
	if err != nil {
		t.Fatal(err)
	}
	return id, n
}
