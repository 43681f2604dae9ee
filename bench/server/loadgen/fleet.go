package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/facts"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/server"
)

// simAgent is one simulated agent: an enrolled identity and its ways to reach the server.
type simAgent struct {
	name string
	node *client.Node // the agent's own client: kept-alive connections, a session cache
	// full presents the agent's certificate and has no session cache: every handshake is
	// a full one.
	full *tls.Config
	// resumed is full with a session cache of the agent's, as its own client has.
	resumed *tls.Config
}

// fleet is the simulated agents and the server they talk to.
type fleet struct {
	o      options
	cred   server.Credential
	admin  *client.Admin
	agents []*simAgent
	// timestampURL is the repository's metadata/timestamp.json, and lastModified its
	// Last-Modified, which every check-in sends as If-Modified-Since.
	timestampURL string
	lastModified string
	// fds is the number of files the server had open before the agents came.
	fds int
	// quiet is set once quiesce has waited without --server-pid.
	quiet bool
	// sent is what the report phases sent.
	sent *reportPhases
}

func newFleet(o options) (*fleet, error) {
	cred, err := server.LoadCredential(o.credential)
	if err != nil {
		return nil, err
	}
	if cred.Server == "" {
		return nil, fmt.Errorf("admin credential %s: no server address: is the server running?", o.credential)
	}
	admin, err := client.NewAdmin(cred.Server, cred.CAFingerprint, cred.Token)
	if err != nil {
		return nil, fmt.Errorf("admin connection: %w", err)
	}
	fmt.Printf("server: %s (CA %s)\n", cred.Server, pki.Shorten(cred.CAFingerprint))
	f := &fleet{o: o, cred: cred, admin: admin, timestampURL: cred.Server + api.PathRepo + "metadata/timestamp.json"}
	if o.serverPID > 0 {
		if f.fds, err = openFiles(o.serverPID); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// enroll makes a bootstrap token for every agent and enrolls them all.
func (f *fleet) enroll(ctx context.Context) (row, error) {
	n := f.o.agents
	fmt.Printf("\n== enroll: %d agents, %d at a time, identities in %s\n", n, f.o.enrollConcurrency, f.o.work)
	tok, err := f.admin.CreateToken(ctx, api.TokenRequest{Label: "loadgen", Uses: n})
	if err != nil {
		return row{}, fmt.Errorf("create a bootstrap token: %w", err)
	}
	base, warnings, err := facts.Gather(facts.Options{})
	if err != nil {
		return row{}, fmt.Errorf("gather this machine's facts, sent by every agent: %w", err)
	}
	for _, w := range warnings {
		fmt.Printf("  facts: %s\n", w)
	}
	f.agents = make([]*simAgent, n)
	lat := newLatencies(n)
	jobs := make(chan int)
	var done atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := startMeter(f.o.serverPID)
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	go func() {
		for {
			select {
			case <-progress.C:
				d := done.Load()
				fmt.Printf("  enrolled %d/%d (%.0f/s)\n", d, n, float64(d)/time.Since(m.start).Seconds())
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range f.o.enrollConcurrency {
		wg.Go(func() {
			for i := range jobs {
				a, err := f.enrollOne(ctx, i, tok.ID, base, lat)
				if err != nil {
					lat.fail(err.Error())
					continue
				}
				f.agents[i] = a
				done.Add(1)
			}
		})
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	u := m.stop()
	if err := ctx.Err(); err != nil {
		return row{}, fmt.Errorf("enroll: %w", err)
	}
	ok, p50, p99, maxD := lat.summary()
	fmt.Printf("  enrolled %d of %d: %.1f/s; latency of Identity.Enroll p50 %s ms, p99 %s ms, max %s ms\n",
		ok, n, float64(ok)/u.wall.Seconds(), ms(p50), ms(p99), ms(maxD))
	fmt.Printf("  %s\n", u)
	lat.printErrors()
	if lat.nerr > 0 {
		return row{}, fmt.Errorf("enroll: %d of %d agents failed to enroll (see above)", lat.nerr, n)
	}
	return row{agents: n, phase: "enroll", n: ok, rate: float64(ok) / u.wall.Seconds(), p50: p50, p99: p99, max: maxD, errors: lat.nerr, use: u}, nil
}

// enrollOne makes agent i's identity and enrolls it with the token. Its latency is that
// of Identity.Enroll: the request, and the certificate and server written to the identity.
func (f *fleet) enrollOne(ctx context.Context, i int, token string, base map[string]any, lat *latencies) (*simAgent, error) {
	name := fmt.Sprintf("bench-%05d", i)
	id, err := client.NewIdentity(filepath.Join(f.o.work, name))
	if err != nil {
		return nil, err
	}
	machineID := randomHex(16)
	own := make(map[string]any, len(base))
	for k, v := range base {
		own[k] = v
	}
	own["hostname"], own["fqdn"], own["machine_id"] = name, name, machineID
	factsJSON, err := json.Marshal(own)
	if err != nil {
		return nil, fmt.Errorf("facts of %s: %w", name, err)
	}
	start := time.Now()
	res, err := id.Enroll(ctx, client.EnrollRequest{
		Server: f.cred.Server, CAFingerprint: f.cred.CAFingerprint, Name: name, Token: token, MachineID: machineID, Facts: factsJSON,
	})
	if err != nil {
		return nil, err
	}
	if !res.Approved {
		return nil, fmt.Errorf("enroll %s: not approved with the bootstrap token", name)
	}
	lat.ok(time.Since(start))
	node, err := client.NewNode(id)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	leaf := id.Certificate()
	cert := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: id.Signer(), Leaf: leaf}
	full := pki.PinnedServerConfig(f.cred.CAFingerprint)
	full.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	resumed := full.Clone()
	resumed.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	return &simAgent{name: name, node: node, full: full, resumed: resumed}, nil
}

// quiesce waits, before a phase, until the server has closed the connections earlier
// phases left (up to 2 minutes), so that they do not count in this one's memory and open
// files. After enrollment that is long: Identity.Enroll makes an HTTP client for each call
// and leaves its connection idle, to be closed by the client 90 s later (its
// IdleConnTimeout) — harmless for a machine that enrolls once, but thousands of
// enrollments a minute leave thousands of connections open at the server. Without
// --server-pid it cannot tell, and waits 95 s once, after enrollment.
func (f *fleet) quiesce(ctx context.Context) error {
	start := time.Now()
	if f.o.serverPID <= 0 {
		if f.quiet {
			return nil
		}
		f.quiet = true
		fmt.Printf("\nquiesce: waiting 95 s for the connections enrollment left to close\n")
		select {
		case <-time.After(95 * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n, err := openFiles(f.o.serverPID)
	if err != nil {
		return err
	}
	if n <= f.fds+20 {
		return nil
	}
	fmt.Printf("\nquiesce: the server has %d open files (%d before enrollment): waiting for the connections left idle to close\n", n, f.fds)
	for n > f.fds+20 && time.Since(start) < 2*time.Minute {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		if n, err = openFiles(f.o.serverPID); err != nil {
			return err
		}
	}
	fmt.Printf("  %d open files after %.0f s\n", n, time.Since(start).Seconds())
	return nil
}

// probe fetches timestamp.json once, as a node, for its Last-Modified.
func (f *fleet) probe(ctx context.Context) error {
	hc := f.agents[0].node.HTTPClient()
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.timestampURL, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetch the repository's timestamp.json: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fetch the repository's timestamp.json: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch the repository's timestamp.json: %s", resp.Status)
	}
	f.lastModified = resp.Header.Get("Last-Modified")
	if f.lastModified == "" {
		return errors.New("the repository's timestamp.json came with no Last-Modified: a check-in could not be conditional")
	}
	fmt.Printf("\nprobe: %s: %d bytes, Last-Modified %s, %s over TLS 1.%d\n", f.timestampURL, len(body), f.lastModified, resp.Proto, resp.TLS.Version-tls.VersionTLS10)
	return nil
}

// closeIdle closes the agents' kept-alive connections.
func (f *fleet) closeIdle() {
	for _, a := range f.agents {
		a.node.HTTPClient().CloseIdleConnections()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
