package server_test

// The server's security properties, each checked against the real server over real TLS
// on 127.0.0.1, with real certificates and raw HTTP requests, so that a refusal is
// asserted as the wire shows it (status and api error code, or the failed handshake) and
// the registry is read after it to see that nothing changed.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
)

// response is an answer as a raw client saw it.
type response struct {
	status int
	header http.Header
	body   []byte
	// reused: the request went over a kept-alive connection.
	reused bool
}

// apiError decodes the body as an api.Error (the zero Error if it is not one).
func (r response) apiError() api.Error {
	var e api.Error
	_ = json.Unmarshal(r.body, &e)
	return e
}

// rawClient is an HTTP client that pins the server's CA as agents do and presents certs
// (none: no client certificate). It follows redirects, as an attacker's client would.
func (s *testServer) rawClient(t *testing.T, certs ...tls.Certificate) *http.Client {
	t.Helper()
	cfg := pki.PinnedServerConfig(s.CAFingerprint())
	cfg.Certificates = certs
	return s.clientWith(t, cfg)
}

// forcedClient presents cert whatever the server says it accepts: crypto/tls would
// otherwise send no certificate at all when the issuer is not among the server's CAs.
func (s *testServer) forcedClient(t *testing.T, cert tls.Certificate) *http.Client {
	t.Helper()
	cfg := pki.PinnedServerConfig(s.CAFingerprint())
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return s.clientWith(t, cfg)
}

func (s *testServer) clientWith(t *testing.T, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends a request with body (nil: none) and headers (name, value pairs).
func (s *testServer) do(c *http.Client, method, path string, body []byte, headers ...string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var r response
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { r.reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return r, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	r.status, r.header = resp.StatusCode, resp.Header
	r.body, err = io.ReadAll(resp.Body)
	return r, err
}

// mustDo is do, failing the test if the request gets no answer.
func (s *testServer) mustDo(t *testing.T, c *http.Client, method, path string, body []byte, headers ...string) response {
	t.Helper()
	r, err := s.do(c, method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// wantStatus checks a successful answer.
func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d (%s), want %d", what, r.status, bytes.TrimSpace(r.body), status)
	}
}

// wantRefused checks a refusal: its status and its api error code.
func wantRefused(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if e := r.apiError(); r.status != status || e.Code != code {
		t.Errorf("%s: status %d code %q (%s), want %d %q", what, r.status, e.Code, bytes.TrimSpace(r.body), status, code)
	}
}

// nodeCert is the identity's current certificate as crypto/tls presents it.
func nodeCert(t *testing.T, id *client.Identity) tls.Certificate {
	t.Helper()
	c := id.Certificate()
	if c == nil {
		t.Fatal("the identity has no certificate")
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: id.Signer(), Leaf: c}
}

// enrollBody is an enrollment request for name by key, sent as a raw agent would. The
// request's own subject names no one: the server decides the name.
func enrollBody(t *testing.T, name string, key crypto.Signer, machineID, token string) []byte {
	t.Helper()
	csr, err := pki.NewCSR(key, "subject-ignored")
	if err != nil {
		t.Fatal(err)
	}
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, api.EnrollRequest{Name: name, CSR: csr, Recipient: ageID.Recipient().String(), MachineID: machineID, Token: token})
}

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := pki.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rawEnroll posts an enrollment with no client certificate.
func (s *testServer) rawEnroll(t *testing.T, name string, key crypto.Signer, machineID, token string) response {
	t.Helper()
	return s.mustDo(t, s.rawClient(t), http.MethodPost, api.PathEnroll, enrollBody(t, name, key, machineID, token))
}

// node is the registry's record of name (ok: there is one).
func (s *testServer) node(t *testing.T, name string) (n registry.Node, ok bool) {
	t.Helper()
	n, err := s.Store().GetNode(context.Background(), name)
	if errors.Is(err, registry.ErrNotFound) {
		return n, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return n, true
}

// wantNoNode checks that the registry holds no node name.
func (s *testServer) wantNoNode(t *testing.T, name string) {
	t.Helper()
	if n, ok := s.node(t, name); ok {
		t.Errorf("node %s is recorded (%s), want none", name, n.State)
	}
}

// wantState checks the registry's state of node name.
func (s *testServer) wantState(t *testing.T, name string, state registry.NodeState) registry.Node {
	t.Helper()
	n, ok := s.node(t, name)
	if !ok || n.State != state {
		t.Errorf("node %s: recorded=%v state %q, want %q", name, ok, n.State, state)
	}
	return n
}

// usesLeft is the uses left of the token with ID id.
func (s *testServer) usesLeft(t *testing.T, id string) int {
	t.Helper()
	tokens, err := s.admin.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Hash == registry.TokenHash(id) {
			return tok.UsesLeft
		}
	}
	t.Fatalf("no token %.12s", registry.TokenHash(id))
	return 0
}

// reportCount is how many reports the registry holds for node.
func (s *testServer) reportCount(t *testing.T, node string) int {
	t.Helper()
	reports, err := s.Store().ListReports(context.Background(), node, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(reports)
}

// reportPath is where a report with this ID is uploaded; okReport is a report to send.
func reportPath(id string) string {
	return api.ReportUpload{ID: id, Outcome: "applied", Release: 1}.Path()
}

var okReport = []byte(`{"ok":true}`)

// renewBody is a renewal request signed by key.
func renewBody(t *testing.T, key crypto.Signer, subject string) []byte {
	t.Helper()
	csr, err := pki.NewCSR(key, subject)
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, api.RenewRequest{CSR: csr})
}

const rootJSON = api.PathRepo + "metadata/root.json"

// enrollAtOnce posts the enrollments bodies together, each from a machine of its own
// connected beforehand, so that they reach the server as close together as can be.
func (s *testServer) enrollAtOnce(t *testing.T, bodies [][]byte) []response {
	t.Helper()
	clients := make([]*http.Client, len(bodies))
	for i := range clients {
		clients[i] = s.rawClient(t)
		s.mustDo(t, clients[i], http.MethodGet, api.PathEnroll, nil) // connect: 405
	}
	results := make([]response, len(bodies))
	errs := make([]error, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.do(clients[i], http.MethodPost, api.PathEnroll, bodies[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("machine %d: %v", i, err)
		}
	}
	return results
}
