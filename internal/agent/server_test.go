package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// office is a satchel server on 127.0.0.1 that a test can kill: its listener and every
// connection close at once, and its database is closed, whatever a request was doing.
type office struct {
	t    *testing.T
	data string
	addr string
	srv  *server.Server
	http *http.Server
	done chan struct{}
}

// startOffice opens the server in data and serves it on addr ("127.0.0.1:0": any port).
// wrap, if not nil, wraps its handler (to inject a fault).
func startOffice(t *testing.T, data, addr string, wrap func(*office, http.Handler) http.Handler) *office {
	t.Helper()
	srv, err := server.Open(server.Config{DataDir: data})
	must(t, err)
	ln, err := net.Listen("tcp", addr)
	must(t, err)
	must(t, srv.RecordAddress(ln.Addr()))
	o := &office{t: t, data: data, addr: ln.Addr().String(), srv: srv, done: make(chan struct{})}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(o, h)
	}
	o.http = &http.Server{Handler: h, TLSConfig: srv.TLSConfig()}
	go func() {
		defer close(o.done)
		if err := o.http.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(o.kill)
	return o
}

// kill stops the server at once: no response still being written reaches its client.
func (o *office) kill() {
	if o.srv == nil {
		return
	}
	_ = o.http.Close()
	<-o.done
	o.srv.Close()
	o.srv = nil
}

// enrollNode enrolls the fleet's node with the office, with a token, as satchel enroll
// does, and returns the agent's options: no repository and no trust given.
func enrollNode(t *testing.T, f *fleet, o *office) Options {
	t.Helper()
	ctx := context.Background()
	token := "st-test-token-for-school-1-abcdefgh"
	must(t, o.srv.Store().CreateToken(ctx, registry.Token{ID: token, Label: "test", UsesLeft: 1, Created: time.Now()}))
	id, err := client.NewIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	res, err := id.Enroll(ctx, client.EnrollRequest{Server: "https://" + o.addr, CAFingerprint: o.srv.CAFingerprint(), Name: "school-1", Token: token})
	must(t, err)
	if !res.Approved {
		t.Fatal("enrolled with a token, but pending")
	}
	must(t, InitServerTrust(f.state, res.Trust))
	f.repo, f.keys = o.srv.RepoDir(), o.srv.KeysDir()
	opts := f.options()
	opts.Trust = ""
	return opts
}

// The server dies while a report is being uploaded — after storing it, before its answer
// reaches the node — and again while the node is offline for ten cycles. When it is back,
// the spool is drained in order: every report is stored exactly once, none is lost.
func TestReportsSurviveServerDeath(t *testing.T) {
	f := newFleet(t)
	data := filepath.Join(f.base, "office")
	o := startOffice(t, data, "127.0.0.1:0", nil)
	opts := enrollNode(t, f, o)
	f.release("1", "a\n")
	if rep := f.cycle(opts); rep.Outcome != Applied || rep.Repository != "https://"+o.addr+api.PathRepo {
		t.Fatalf("first cycle: %s from %q, want applied from the server", rep.Outcome, rep.Repository)
	}
	cycles := 1
	o.kill()

	// Offline: each cycle re-applies release 1 and spools its report.
	for range 10 {
		if rep := f.cycle(opts); rep.Outcome != Reapplied {
			t.Fatalf("offline cycle: %s", rep.Outcome)
		}
		cycles++
	}

	// Back, but it dies as it stores the fifth report of the drain: the report is stored,
	// its answer never sent (the handler aborts: a fault injected, as a real kill cannot
	// be timed between the commit and the answer).
	var uploads atomic.Int32
	dieOnFifth := func(o *office, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != api.PathReports || uploads.Add(1) != 5 {
				h.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(discard{}, r)
			go o.kill()
			panic(http.ErrAbortHandler)
		})
	}
	o = startOffice(t, data, o.addr, dieOnFifth)
	f.cycle(opts)
	cycles++
	<-o.done
	if n := uploads.Load(); n != 5 {
		t.Fatalf("%d uploads before the server died, want 5", n)
	}
	if !strings.Contains(f.log.String(), "warning: upload report") {
		t.Errorf("the log does not say an upload failed:\n%s", f.log)
	}

	// Restarted: the rest of the spool goes, the fifth report again (the node never
	// heard it was stored), stored once.
	o = startOffice(t, data, o.addr, nil)
	f.cycle(opts)
	cycles++
	reports, err := o.srv.Store().ListReports(context.Background(), "school-1", 0)
	must(t, err)
	seen := map[string]bool{}
	for _, r := range reports {
		if seen[r.ID] {
			t.Errorf("report %s stored twice", r.ID)
		}
		seen[r.ID] = true
	}
	if len(reports) != cycles {
		t.Errorf("%d reports stored, want one per cycle: %d", len(reports), cycles)
	}
	a, err := Open(opts)
	must(t, err)
	left, err := a.spool.List()
	a.Close()
	must(t, err)
	if len(left) != 0 {
		t.Errorf("%d reports left in the spool, want none", len(left))
	}
}

// discard is a ResponseWriter whose writes go nowhere.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// With a third of its certificate's life left, the agent renews it on its own, and keeps
// using the server with the new one.
func TestAgentRenewsItsCertificate(t *testing.T) {
	f := newFleet(t)
	o := startOffice(t, filepath.Join(f.base, "office"), "127.0.0.1:0", nil)
	opts := enrollNode(t, f, o)
	f.release("1", "a\n")
	id, err := client.LoadIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	before := id.Certificate()
	if rep := f.cycle(opts); rep.Outcome != Applied {
		t.Fatalf("first cycle: %s %q", rep.Outcome, rep.Error)
	}
	id, err = client.LoadIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	if !id.Certificate().Equal(before) {
		t.Fatal("renewed with most of its life left")
	}
	// Two thirds of the way through its life, as the agent's clock has it.
	opts.Now = func() time.Time {
		return before.NotBefore.Add(before.NotAfter.Sub(before.NotBefore) * 2 / 3).Add(time.Hour)
	}
	f.cycle(opts)
	id, err = client.LoadIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	after := id.Certificate()
	if after.NotAfter.Before(before.NotAfter) || after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatalf("certificate not renewed: serial %x until %s, was %x until %s", after.SerialNumber, after.NotAfter, before.SerialNumber, before.NotAfter)
	}
	if !strings.Contains(f.log.String(), "certificate renewed") {
		t.Errorf("the log does not say the certificate was renewed:\n%s", f.log)
	}
	n, err := o.srv.Store().GetNode(context.Background(), "school-1")
	must(t, err)
	if n.CertSerial != after.SerialNumber.Text(16) {
		t.Errorf("the server records serial %s, the node holds %x", n.CertSerial, after.SerialNumber)
	}
	opts.Now = nil
	if rep := f.cycle(opts); rep.Repository == "" {
		t.Errorf("with the new certificate the server did not answer: %q", rep.RefreshErrors)
	}
}

// A node whose certificate expired while it could not reach the server enrolls again with
// its key and gets a new one; a revoked node does not.
func TestAgentReenrollsAfterItsCertificateExpired(t *testing.T) {
	f := newFleet(t)
	o := startOffice(t, filepath.Join(f.base, "office"), "127.0.0.1:0", nil)
	opts := enrollNode(t, f, o)
	f.release("1", "a\n")
	id, err := client.LoadIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	before := id.Certificate()
	opts.Now = func() time.Time { return before.NotAfter.Add(time.Hour) }
	rep := f.cycle(opts)
	if rep.Outcome != Applied {
		t.Fatalf("cycle after expiry: %s %q %q", rep.Outcome, rep.Error, rep.RefreshErrors)
	}
	id, err = client.LoadIdentity(filepath.Join(f.state, IdentityDirName))
	must(t, err)
	if id.Certificate().SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("no new certificate after expiry")
	}
	if !strings.Contains(f.log.String(), "certificate expired on") {
		t.Errorf("the log does not say why it enrolled again:\n%s", f.log)
	}

	must(t, o.srv.Store().SetNodeState(context.Background(), "school-1", registry.Revoked, ""))
	later := id.Certificate().NotAfter.Add(time.Hour)
	opts.Now = func() time.Time { return later }
	rep = f.cycle(opts)
	if rep.Outcome != Reapplied || len(rep.RefreshErrors) != 1 || !strings.Contains(rep.RefreshErrors[0], "revoked") {
		t.Errorf("revoked node after expiry: %s %q, want its good release re-applied, and why the server refused", rep.Outcome, rep.RefreshErrors)
	}
}
