package server_test

// Who may call the server: certificates, revocation, tokens, clones, the admin credential.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// 1. No client certificate: every node endpoint answers 401, and does nothing.
func TestNodeEndpointsNeedAClientCertificate(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id, _ := s.enrolled(t, "school-1")
	before, _ := s.node(t, "school-1")
	c := s.rawClient(t)
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, rootJSON, nil},
		{http.MethodPut, api.PathFacts, []byte(`{"hostname":"forged"}`)},
		{http.MethodPost, reportPath("forged-1"), okReport},
		// A valid request for the node's own key: possession of the key is not enough.
		{http.MethodPost, api.PathRenew, renewBody(t, id.Signer(), "school-1")},
	} {
		r := s.mustDo(t, c, tc.method, tc.path, tc.body)
		wantRefused(t, tc.method+" "+tc.path+" without a certificate", r, http.StatusUnauthorized, api.CodeUnauthorized)
	}
	after := s.wantState(t, "school-1", registry.Approved)
	if string(after.Facts) != string(before.Facts) || after.CertSerial != before.CertSerial {
		t.Errorf("node changed: facts %s serial %s, was %s %s", after.Facts, after.CertSerial, before.Facts, before.CertSerial)
	}
	if n := s.reportCount(t, "school-1"); n != 0 {
		t.Errorf("%d reports stored, want none", n)
	}
}

// 2. A certificate another CA issued, for the name of an enrolled node, fails the
// handshake: no request reaches a handler, on node endpoints or on enrollment.
func TestCertificateFromAnotherCARefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.enrolled(t, "school-1")
	before, _ := s.node(t, "school-1")

	// The rogue CA bears the fleet CA's very name, so that crypto/tls offers its
	// certificates to the server as if they were the fleet's.
	rogue, err := pki.Init(filepath.Join(t.TempDir(), "rogue"), "satchel fleet CA")
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	csr, err := pki.NewCSR(key, "school-1")
	if err != nil {
		t.Fatal(err)
	}
	der, err := rogue.SignNode(csr, "school-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]tls.Certificate{
		"leaf":          {Certificate: [][]byte{der}, PrivateKey: key},
		"leaf and CA":   {Certificate: [][]byte{der, rogue.Certificate().Raw}, PrivateKey: key},
		"forced anyway": {Certificate: [][]byte{der}, PrivateKey: key},
	}
	for what, cert := range certs {
		c := s.rawClient(t, cert)
		if what == "forced anyway" {
			c = s.forcedClient(t, cert)
		}
		for _, req := range []struct {
			method, path string
			body         []byte
		}{
			{http.MethodPut, api.PathFacts, []byte(`{"hostname":"rogue"}`)},
			{http.MethodPost, reportPath("rogue-1"), okReport},
			{http.MethodGet, rootJSON, nil},
			{http.MethodPost, api.PathEnroll, enrollBody(t, "rogue-1", newKey(t), "", "")},
		} {
			r, err := s.do(c, req.method, req.path, req.body)
			if err == nil {
				t.Errorf("%s %s with a rogue CA's certificate (%s): answered %d %s, want a failed handshake", req.method, req.path, what, r.status, bytes.TrimSpace(r.body))
			} else if !strings.Contains(err.Error(), "tls:") {
				t.Errorf("%s %s with a rogue CA's certificate (%s): %v, want a TLS alert", req.method, req.path, what, err)
			}
		}
	}
	after := s.wantState(t, "school-1", registry.Approved)
	if string(after.Facts) != string(before.Facts) || !after.LastSeen.Equal(before.LastSeen) {
		t.Errorf("node changed: facts %s seen %v, was %s %v", after.Facts, after.LastSeen, before.Facts, before.LastSeen)
	}
	if n := s.reportCount(t, "school-1"); n != 0 {
		t.Errorf("%d reports stored, want none", n)
	}
	s.wantNoNode(t, "rogue-1")
}

// A certificate from the fleet's own CA is accepted only for a node approved now and for
// the key on record; a certificate for servers is no client certificate.
func TestCertificateMustMatchTheRegistry(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.enrolled(t, "school-1")
	if r := s.rawEnroll(t, "school-2", newKey(t), "m2", ""); r.status != http.StatusAccepted {
		t.Fatalf("enroll school-2 without a token: %d %s", r.status, r.body)
	}
	ca, err := pki.Load(filepath.Join(s.data, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, key crypto.Signer) tls.Certificate {
		csr, err := pki.NewCSR(key, name)
		if err != nil {
			t.Fatal(err)
		}
		der, err := ca.SignNode(csr, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	for what, cert := range map[string]tls.Certificate{
		"an enrolled name, another key": issue("school-1", newKey(t)),
		"a pending node":                issue("school-2", newKey(t)),
		"a name never enrolled":         issue("school-9", newKey(t)),
	} {
		r := s.mustDo(t, s.rawClient(t, cert), http.MethodPut, api.PathFacts, []byte(`{"forged":true}`))
		wantRefused(t, what, r, http.StatusUnauthorized, api.CodeUnauthorized)
	}
	if n, _ := s.node(t, "school-1"); strings.Contains(string(n.Facts), "forged") {
		t.Errorf("school-1's facts were replaced: %s", n.Facts)
	}

	srvCert, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.do(s.forcedClient(t, srvCert), http.MethodGet, rootJSON, nil); err == nil {
		t.Errorf("the server's certificate as a client's: answered %d, want a failed handshake", r.status)
	}
}

// 3. Revocation and forgetting take effect on the next request, over the connection the
// node already has open.
func TestRevocationOnNextRequest(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	id, _ := s.enrolled(t, "school-1")
	c := s.rawClient(t, nodeCert(t, id))
	wantStatus(t, "before revocation", s.mustDo(t, c, http.MethodGet, rootJSON, nil), http.StatusOK)
	before, _ := s.node(t, "school-1")

	if _, err := s.admin.Revoke(ctx, "school-1"); err != nil {
		t.Fatal(err)
	}
	r := s.mustDo(t, c, http.MethodGet, rootJSON, nil)
	if !r.reused {
		t.Error("the request after revocation went over a new connection: the kept-alive case is not tested")
	}
	wantRefused(t, "GET after revocation", r, http.StatusForbidden, api.CodeRevoked)
	r = s.mustDo(t, c, http.MethodPut, api.PathFacts, []byte(`{"after":"revocation"}`))
	wantRefused(t, "PUT facts after revocation", r, http.StatusForbidden, api.CodeRevoked)
	r = s.mustDo(t, c, http.MethodPost, reportPath("after-revocation"), okReport)
	wantRefused(t, "POST report after revocation", r, http.StatusForbidden, api.CodeRevoked)
	r = s.mustDo(t, c, http.MethodPost, api.PathRenew, renewBody(t, id.Signer(), "school-1"))
	wantRefused(t, "renewal after revocation", r, http.StatusForbidden, api.CodeRevoked)
	after := s.wantState(t, "school-1", registry.Revoked)
	if string(after.Facts) != string(before.Facts) || after.CertSerial != before.CertSerial || s.reportCount(t, "school-1") != 0 {
		t.Errorf("a revoked node changed its record: facts %s serial %s reports %d", after.Facts, after.CertSerial, s.reportCount(t, "school-1"))
	}

	if _, err := s.admin.Approve(ctx, "school-1"); err != nil {
		t.Fatal(err)
	}
	r = s.mustDo(t, c, http.MethodGet, rootJSON, nil)
	wantStatus(t, "GET after approval again", r, http.StatusOK)

	if err := s.admin.Forget(ctx, "school-1"); err != nil {
		t.Fatal(err)
	}
	r = s.mustDo(t, c, http.MethodGet, rootJSON, nil)
	if !r.reused {
		t.Error("the request after forgetting went over a new connection")
	}
	wantRefused(t, "GET after forgetting", r, http.StatusUnauthorized, api.CodeUnauthorized)

	// The name is free: another machine enrolls it with a new key, and the old
	// certificate, for a key no longer on record, stays refused.
	newID, newNode := s.enrolled(t, "school-1")
	if newID.Fingerprint() == id.Fingerprint() {
		t.Fatal("the new identity has the old key")
	}
	if err := newNode.PutFacts(ctx, []byte(`{"new":true}`), 0); err != nil {
		t.Errorf("the new node: %v", err)
	}
	r = s.mustDo(t, c, http.MethodGet, rootJSON, nil)
	wantRefused(t, "the forgotten node's certificate after the name enrolled anew", r, http.StatusUnauthorized, api.CodeUnauthorized)
	// And the old key cannot take the name back.
	r = s.rawEnroll(t, "school-1", id.Signer(), "mid-school-1", s.newToken(t, 1))
	wantRefused(t, "the forgotten key enrolling the name again", r, http.StatusConflict, api.CodeNameTaken)
}

// 4. A refused token admits nothing and spends nothing.
func TestTokenRefusals(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	now := time.Now()

	expired := registry.Token{ID: "st-expired-test-token", Label: "old", UsesLeft: 3, Expires: now.Add(-time.Minute), Created: now.Add(-time.Hour)}
	if err := s.Store().CreateToken(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.CreateToken(ctx, api.TokenRequest{Label: "past", Uses: 1, Expires: now.Add(-time.Second)}); client.Code(err) != api.CodeBadRequest {
		t.Errorf("create a token expiring in the past: %v, want %s", err, api.CodeBadRequest)
	}

	usedUp := s.newToken(t, 1)
	if r := s.rawEnroll(t, "first", newKey(t), "m-first", usedUp); r.status != http.StatusOK {
		t.Fatalf("first use of a one-use token: %d %s", r.status, r.body)
	}

	revoked, err := s.admin.CreateToken(ctx, api.TokenRequest{Label: "revoked", Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.admin.RevokeToken(ctx, revoked.Hash); err != nil {
		t.Fatal(err)
	}

	// A pending node stays pending when its token is refused.
	waitingKey := newKey(t)
	if r := s.rawEnroll(t, "waiting", waitingKey, "m-waiting", ""); r.status != http.StatusAccepted {
		t.Fatalf("enroll without a token: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		what, token, reason string
		uses                int // uses left before and after, -1: unknown token
	}{
		{"expired", expired.ID, "expired", 3},
		{"used up", usedUp, "used up", 0},
		{"revoked", revoked.ID, "revoked", 3},
		{"unknown", "st-no-such-token", "unknown", -1},
	} {
		name := "node-" + strings.ReplaceAll(tc.what, " ", "-")
		r := s.rawEnroll(t, name, newKey(t), "m-"+name, tc.token)
		wantRefused(t, tc.what+" token", r, http.StatusForbidden, api.CodeTokenInvalid)
		if !strings.Contains(r.apiError().Message, tc.reason) {
			t.Errorf("%s token: message %q does not say %q", tc.what, r.apiError().Message, tc.reason)
		}
		s.wantNoNode(t, name)
		if tc.uses >= 0 {
			if got := s.usesLeft(t, tc.token); got != tc.uses {
				t.Errorf("%s token: %d uses left after the refusal, want %d", tc.what, got, tc.uses)
			}
		}
		r = s.rawEnroll(t, "waiting", waitingKey, "m-waiting", tc.token)
		wantRefused(t, tc.what+" token for a pending node", r, http.StatusForbidden, api.CodeTokenInvalid)
		s.wantState(t, "waiting", registry.Pending)
	}
}

// 4. A token's uses are never exceeded, however many machines race for them.
func TestTokenUsesUnderConcurrency(t *testing.T) {
	// Not parallel: a race shows when the requests have the CPUs to themselves.
	s := startServer(t)
	const uses, machines = 5, 20
	token := s.newToken(t, uses)
	bodies := make([][]byte, machines)
	for i := range bodies {
		bodies[i] = enrollBody(t, fmt.Sprintf("node-%02d", i), newKey(t), fmt.Sprintf("m-%02d", i), token)
	}
	approved := 0
	for i, r := range s.enrollAtOnce(t, bodies) {
		if r.status == http.StatusOK {
			approved++
		} else {
			wantRefused(t, fmt.Sprintf("machine %d", i), r, http.StatusForbidden, api.CodeTokenInvalid)
		}
	}
	if approved != uses {
		t.Errorf("%d machines approved by a %d-use token, want %d", approved, uses, uses)
	}
	nodes, err := s.Store().ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != uses {
		t.Errorf("%d nodes recorded, want %d", len(nodes), uses)
	}
	for _, n := range nodes {
		if n.State != registry.Approved {
			t.Errorf("node %s is %s", n.Name, n.State)
		}
	}
	if left := s.usesLeft(t, token); left != 0 {
		t.Errorf("%d uses left, want 0", left)
	}
}

// 4. Machines racing for one name spend one use of their token: the losers are refused,
// and a refused enrollment spends nothing.
func TestTokenNotSpentByNameRace(t *testing.T) {
	// Not parallel: a race shows when the requests have the CPUs to themselves.
	s := startServer(t)
	const machines, rounds = 16, 4
	for round := range rounds {
		name := fmt.Sprintf("school-%d", round)
		token := s.newToken(t, machines)
		bodies := make([][]byte, machines)
		for i := range bodies {
			bodies[i] = enrollBody(t, name, newKey(t), fmt.Sprintf("m-%d-%02d", round, i), token)
		}
		approved := 0
		for i, r := range s.enrollAtOnce(t, bodies) {
			if r.status == http.StatusOK {
				approved++
			} else {
				wantRefused(t, fmt.Sprintf("%s, machine %d", name, i), r, http.StatusConflict, api.CodeNameTaken)
			}
		}
		if approved != 1 {
			t.Errorf("%d machines approved as %s, want 1", approved, name)
		}
		if left := s.usesLeft(t, token); left != machines-1 {
			t.Errorf("%s: %d uses left after 1 enrollment and %d refusals, want %d: the refused enrollments spent the token", name, left, machines-1, machines-1)
		}
	}
}

// 5. A node's certificate opens no admin endpoint, and no node endpoint lists reports: a
// node reads neither another's reports nor anything else of the fleet's.
func TestNodeCannotReadOthers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	idA, _ := s.enrolled(t, "school-a")
	_, nodeB := s.enrolled(t, "school-b")
	const secretID = "b-report-secret-id"
	if _, err := nodeB.PutReport(ctx, api.ReportUpload{ID: secretID, Outcome: "failed", Body: []byte(`{"b":"private"}`)}); err != nil {
		t.Fatal(err)
	}
	c := s.rawClient(t, nodeCert(t, idA))
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, api.PathAdminNodes + "/school-b/reports"},
		{http.MethodGet, api.PathAdminNodes + "/school-b"},
		{http.MethodGet, api.PathAdminNodes},
		{http.MethodGet, api.PathAdminTokens},
		{http.MethodPost, api.PathAdminNodes + "/school-b/revoke"},
	} {
		r := s.mustDo(t, c, tc.method, tc.path, nil)
		wantRefused(t, "a node's certificate on "+tc.method+" "+tc.path, r, http.StatusUnauthorized, api.CodeUnauthorized)
		if bytes.Contains(r.body, []byte(secretID)) || bytes.Contains(r.body, []byte("private")) {
			t.Errorf("%s %s: the answer holds school-b's data: %s", tc.method, tc.path, r.body)
		}
	}
	// The node endpoint for reports takes uploads only.
	r := s.mustDo(t, c, http.MethodGet, api.PathReports, nil)
	if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
		t.Errorf("GET %s: %d %s, want 405 or 404", api.PathReports, r.status, r.body)
	}
	if bytes.Contains(r.body, []byte(secretID)) {
		t.Errorf("GET %s shows school-b's report", api.PathReports)
	}
	// A's uploads are A's, whatever their ID: B's report with the same ID is untouched.
	r = s.mustDo(t, c, http.MethodPost, reportPath(secretID), okReport)
	wantStatus(t, "A uploading a report with B's report ID", r, http.StatusOK)
	reports, err := s.admin.Reports(ctx, "school-b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Outcome != "failed" {
		t.Errorf("school-b's reports = %+v, want its one report unchanged", reports)
	}
	s.wantState(t, "school-b", registry.Approved)
}

// 5. The admin endpoints need the admin token, exactly.
func TestAdminNeedsTheCredential(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	_, nodeB := s.enrolled(t, "school-b")
	if _, err := nodeB.PutReport(ctx, api.ReportUpload{ID: "r1", Outcome: "applied", Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	cred, err := server.LoadCredential(filepath.Join(s.data, server.CredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	tokensBefore, err := s.admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s.rawClient(t)
	for _, auth := range []string{
		"",
		"Bearer wrong",
		"Bearer ",
		"Bearer " + cred.Token[:len(cred.Token)-1],
		"Bearer " + cred.Token + "x",
		"Bearer  " + cred.Token,
		"Basic " + cred.Token,
		cred.Token,
	} {
		for _, tc := range []struct {
			method, path string
			body         []byte
		}{
			{http.MethodGet, api.PathAdminNodes, nil},
			{http.MethodGet, api.PathAdminNodes + "/school-b", nil},
			{http.MethodGet, api.PathAdminNodes + "/school-b/reports", nil},
			{http.MethodGet, api.PathAdminTokens, nil},
			{http.MethodPost, api.PathAdminTokens, mustJSON(t, api.TokenRequest{Label: "stolen", Uses: 100})},
			{http.MethodPost, api.PathAdminNodes + "/school-b/revoke", nil},
			{http.MethodDelete, api.PathAdminNodes + "/school-b", nil},
			{http.MethodPost, api.PathAdminReleases, []byte(`{}`)},
		} {
			var headers []string
			if auth != "" {
				headers = []string{"Authorization", auth}
			}
			r := s.mustDo(t, c, tc.method, tc.path, tc.body, headers...)
			wantRefused(t, fmt.Sprintf("%s %s with Authorization %q", tc.method, tc.path, auth), r, http.StatusUnauthorized, api.CodeUnauthorized)
			if bytes.Contains(r.body, []byte("school-b")) || bytes.Contains(r.body, []byte(`"r1"`)) {
				t.Errorf("%s %s: the refusal holds data: %s", tc.method, tc.path, r.body)
			}
		}
	}
	s.wantState(t, "school-b", registry.Approved)
	if tokens, _ := s.admin.Tokens(ctx); len(tokens) != len(tokensBefore) {
		t.Errorf("%d tokens, was %d", len(tokens), len(tokensBefore))
	}
	r := s.mustDo(t, c, http.MethodGet, api.PathAdminNodes, nil, "Authorization", "Bearer "+cred.Token)
	wantStatus(t, "GET nodes with the admin token", r, http.StatusOK)
}

// 6. A machine ID or a key that another node has is a clone; a name with another key is
// taken; a revoked node stays revoked whatever it presents.
func TestCloneRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	token := s.newToken(t, 10)
	idA, res, err := s.enroll(t, "school-a", token, "m1")
	if err != nil || !res.Approved {
		t.Fatalf("enroll school-a: %v %+v", err, res)
	}
	const uses = 9

	r := s.rawEnroll(t, "school-b", newKey(t), "m1", token)
	wantRefused(t, "another key and name with A's machine ID", r, http.StatusConflict, api.CodeClone)
	s.wantNoNode(t, "school-b")

	// A copy of A's identity directory, as an image cloned from A would hold.
	cloneDir := filepath.Join(t.TempDir(), "clone")
	if err := os.Mkdir(cloneDir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(idA.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(idA.Dir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cloneDir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clone, err := client.LoadIdentity(cloneDir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = clone.Enroll(ctx, client.EnrollRequest{Server: s.url, CAFingerprint: s.CAFingerprint(), Name: "school-c", Token: token, MachineID: "m3"})
	if client.Code(err) != api.CodeClone {
		t.Errorf("A's copied identity enrolling as school-c: %v, want %s", err, api.CodeClone)
	}
	r = s.rawEnroll(t, "school-c", clone.Signer(), "m3", token)
	wantRefused(t, "A's key as school-c", r, http.StatusConflict, api.CodeClone)
	s.wantNoNode(t, "school-c")

	r = s.rawEnroll(t, "school-a", newKey(t), "m4", token)
	wantRefused(t, "A's name with another key", r, http.StatusConflict, api.CodeNameTaken)
	r = s.rawEnroll(t, "school-a", newKey(t), "m1", token)
	wantRefused(t, "A's name and machine ID with another key", r, http.StatusConflict, api.CodeNameTaken)
	if n := s.wantState(t, "school-a", registry.Approved); n.KeyFingerprint != idA.Fingerprint() || n.MachineID != "m1" {
		t.Errorf("school-a's record changed: key %s machine %s", n.KeyFingerprint, n.MachineID)
	}

	if _, err := s.admin.Revoke(ctx, "school-a"); err != nil {
		t.Fatal(err)
	}
	_, err = idA.Enroll(ctx, client.EnrollRequest{Server: s.url, CAFingerprint: s.CAFingerprint(), Name: "school-a", Token: token, MachineID: "m1"})
	if client.Code(err) != api.CodeRevoked {
		t.Errorf("the revoked node enrolling again with its key and a token: %v, want %s", err, api.CodeRevoked)
	}
	r = s.rawEnroll(t, "school-a", idA.Signer(), "m1", token)
	wantRefused(t, "the revoked node enrolling again", r, http.StatusForbidden, api.CodeRevoked)
	r = s.rawEnroll(t, "school-d", idA.Signer(), "m5", token)
	wantRefused(t, "the revoked node's key under a new name", r, http.StatusConflict, api.CodeClone)
	r = s.rawEnroll(t, "school-d", newKey(t), "m1", token)
	wantRefused(t, "the revoked node's machine ID with a new key and name", r, http.StatusConflict, api.CodeClone)
	s.wantState(t, "school-a", registry.Revoked)
	s.wantNoNode(t, "school-d")
	if left := s.usesLeft(t, token); left != uses {
		t.Errorf("%d uses left after the refusals, want %d: a refused enrollment spent the token", left, uses)
	}
}

// 6. Clones of one image booting together, each with a name of its own, one machine ID
// and the image's bootstrap token: one enrolls, the others are clones — not a race won by
// whoever checks before another records.
func TestCloneRefusedUnderConcurrency(t *testing.T) {
	// Not parallel: a race shows when the requests have the CPUs to themselves.
	s := startServer(t)
	const machines = 16
	imageKey := newKey(t)
	for _, tc := range []struct {
		what string
		key  func() crypto.Signer
		mid  func(i int) string
	}{
		{"one machine ID", func() crypto.Signer { return newKey(t) }, func(int) string { return "m-image" }},
		{"one key", func() crypto.Signer { return imageKey }, func(i int) string { return fmt.Sprintf("m-key-%d", i) }},
	} {
		prefix := strings.ReplaceAll(strings.ToLower(tc.what), " ", "-")
		token := s.newToken(t, machines)
		bodies := make([][]byte, machines)
		for i := range bodies {
			bodies[i] = enrollBody(t, fmt.Sprintf("%s-%d", prefix, i), tc.key(), tc.mid(i), token)
		}
		approved, recorded := 0, 0
		for i, r := range s.enrollAtOnce(t, bodies) {
			if r.status == http.StatusOK {
				approved++
			} else {
				wantRefused(t, fmt.Sprintf("%s, machine %d", tc.what, i), r, http.StatusConflict, api.CodeClone)
			}
			if _, ok := s.node(t, fmt.Sprintf("%s-%d", prefix, i)); ok {
				recorded++
			}
		}
		if approved != 1 || recorded != 1 {
			t.Errorf("%d clones with %s enrolling at once: %d approved, %d recorded; want 1 and 1", machines, tc.what, approved, recorded)
		}
	}
}
