package server_test

// What a request may carry: body sizes, reports, repository paths, renewals, node names.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/server"
)

// 7. Bodies over the limits are refused with 413, and the server goes on.
func TestOversizedBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	id, n := s.enrolled(t, "school-1")
	before, _ := s.node(t, "school-1")
	c := s.rawClient(t, nodeCert(t, id))

	// object is a JSON object of exactly size bytes.
	object := func(size int) []byte {
		const head, tail = `{"pad":"`, `"}`
		return []byte(head + strings.Repeat("a", size-len(head)-len(tail)) + tail)
	}
	r := s.mustDo(t, s.rawClient(t), http.MethodPost, api.PathEnroll, object(api.MaxEnrollBytes+1))
	wantRefused(t, "an enrollment over the limit", r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	r = s.mustDo(t, c, http.MethodPut, api.PathFacts, object(api.MaxFactsBytes+1))
	wantRefused(t, "facts over the limit", r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	if after, _ := s.node(t, "school-1"); string(after.Facts) != string(before.Facts) {
		t.Error("facts over the limit replaced the node's facts")
	}
	r = s.mustDo(t, c, http.MethodPost, reportPath("big"), object(api.MaxReportBytes+1))
	wantRefused(t, "a report over the limit", r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	r = s.mustDo(t, c, http.MethodPost, api.PathRenew, object(api.MaxEnrollBytes+1))
	wantRefused(t, "a renewal over the limit", r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	if got := s.reportCount(t, "school-1"); got != 0 {
		t.Errorf("%d reports stored, want none", got)
	}

	// The limits are the documented sizes, not less; and the server still serves.
	r = s.mustDo(t, c, http.MethodPut, api.PathFacts, object(api.MaxFactsBytes))
	wantStatus(t, "facts of exactly the limit", r, http.StatusNoContent)
	if _, err := n.PutReport(ctx, api.ReportUpload{ID: "after", Outcome: "applied", Body: []byte(`{}`)}); err != nil {
		t.Errorf("a report after the refusals: %v", err)
	}
	if _, _, err := s.enroll(t, "school-2", s.newToken(t, 1), "m2"); err != nil {
		t.Errorf("an enrollment after the refusals: %v", err)
	}
}

// 8. Reports are stored once per ID, and only well-formed ones.
func TestReportsReplayedAndMalformed(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	id, n := s.enrolled(t, "school-1")
	up := api.ReportUpload{ID: "20261126T163000Z-report-1.json", Outcome: "applied", Release: 3, Body: []byte(`{"run":1}`)}
	for i, want := range []bool{true, false} {
		stored, err := n.PutReport(ctx, up)
		if err != nil || stored != want {
			t.Fatalf("upload %d: stored=%v err=%v, want stored=%v", i+1, stored, err, want)
		}
	}
	// A replay with other content changes nothing: the first upload stands.
	forged := up
	forged.Outcome, forged.Body = "failed", []byte(`{"forged":true}`)
	if stored, err := n.PutReport(ctx, forged); err != nil || stored {
		t.Errorf("a replay with other content: stored=%v err=%v, want not stored", stored, err)
	}

	c := s.rawClient(t, nodeCert(t, id))
	for _, bad := range []string{"../x", "", "a/b", strings.Repeat("a", 200), strings.Repeat("a", 129), ".hidden", "-x", "a b", "a\nb", "a\\b", "é"} {
		r := s.mustDo(t, c, http.MethodPost, reportPath(bad), okReport)
		wantRefused(t, fmt.Sprintf("report ID %q", bad), r, http.StatusBadRequest, api.CodeBadRequest)
	}
	for _, body := range []string{``, `[]`, `"report"`, `null`, `42`, `{`, `not json`, `{} {}`, `{"a":1}]`, "{\"a\":\"\xff\"\x00}"} {
		r := s.mustDo(t, c, http.MethodPost, reportPath("ok-1"), []byte(body))
		wantRefused(t, fmt.Sprintf("report body %q", body), r, http.StatusBadRequest, api.CodeBadRequest)
	}
	for _, query := range []string{"", "?outcome=applied&release=1", "?id=ok-2&release=x", "?id=ok-3&release=-1",
		"?id=ok-4&release=18446744073709551616", "?id=ok-5&outcome=" + strings.Repeat("x", 65)} {
		r := s.mustDo(t, c, http.MethodPost, api.PathReports+query, okReport)
		wantRefused(t, "report query "+query, r, http.StatusBadRequest, api.CodeBadRequest)
	}

	reports, err := s.admin.Reports(ctx, "school-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].ID != up.ID || reports[0].Outcome != "applied" || string(reports[0].Body) != `{"run":1}` {
		t.Errorf("reports = %+v, want the first upload only", reports)
	}
	r := s.mustDo(t, c, http.MethodPost, reportPath(strings.Repeat("a", 128)), okReport)
	wantStatus(t, "a report ID of 128 characters", r, http.StatusOK)
}

// 9. The repository endpoint serves the repository's files and nothing else: no path,
// encoding, dot file, directory or symbolic link leads to the data directory's secrets.
func TestRepoServesOnlyTheRepository(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id, _ := s.enrolled(t, "school-1")
	c := s.rawClient(t, nodeCert(t, id))

	// Per-node secrets as a release lays them out: school-1 may read its own and the
	// index files, never school-2's.
	for p, content := range map[string]string{
		"secrets/1/index-0.json":    `{"index":true}`,
		"secrets/1/school-1/aa.age": "CIPHERTEXT-OF-SCHOOL-1",
		"secrets/1/school-2/bb.age": "CIPHERTEXT-OF-SCHOOL-2",
		"secrets/1/index-x/bb.age":  "CIPHERTEXT-OF-SCHOOL-2",
	} {
		p = filepath.Join(s.RepoDir(), filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"secrets/1/index-0.json", "secrets/1/school-1/aa.age"} {
		wantStatus(t, "GET "+p, s.mustDo(t, c, http.MethodGet, api.PathRepo+p, nil), http.StatusOK)
	}

	var secrets [][]byte
	for _, p := range []string{filepath.Join(s.KeysDir(), "root.key"), filepath.Join(s.KeysDir(), "targets.key"), filepath.Join(s.data, "ca", "ca.key"), filepath.Join(s.data, server.CredentialFile)} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, bytes.TrimSpace(data))
	}
	secrets = append(secrets, []byte("PRIVATE KEY"), []byte("SQLite format 3"), []byte("satchel-admin-"), []byte("CIPHERTEXT-OF-SCHOOL-2"))

	meta := filepath.Join(s.RepoDir(), "metadata")
	for link, target := range map[string]string{
		"key.json":    filepath.Join(s.KeysDir(), "root.key"),
		"rel.json":    filepath.Join("..", "..", "keys", "root.key"),
		"db.json":     filepath.Join(s.data, "state.db"),
		"up":          filepath.Join("..", ".."),
		"abs-up":      s.data,
		"keys-in-dir": s.KeysDir(),
	} {
		if err := os.Symlink(target, filepath.Join(meta, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.RepoDir(), ".lock"), []byte("lock"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(meta, ".hidden"), []byte("hidden"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"store", "targets"} {
		if err := os.MkdirAll(filepath.Join(s.RepoDir(), dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// Literal dot-dot segments are redirected by http.ServeMux to their clean form,
	// outside PathRepo, where the (followed) redirect ends in 404; encoded ones reach the
	// handler, which refuses them itself.
	for _, p := range []string{
		"../state.db", "%2e%2e/state.db", "%2E%2E%2Fstate.db", "..%2fstate.db", "..%5cstate.db",
		"metadata/../../keys/root.key", "metadata/%2e%2e/%2e%2e/keys/root.key", "metadata%2f..%2f..%2fkeys%2froot.key",
		"../keys/root.key", "../../data/keys/root.key", "keys/root.key", "../ca/ca.key", "../admin.json", "state.db",
		".lock", "metadata/.hidden", "", "metadata", "metadata/", "store", "store/", "targets/", "metadata/key.json", "metadata/rel.json", "metadata/db.json",
		"metadata/up/keys/root.key", "metadata/abs-up/keys/root.key", "metadata/keys-in-dir/root.key",
		"metadata/up/state.db", "metadata/root.json%00", "metadata/root.json/",
		"secrets/1/school-2/bb.age", "secrets/1/school-1/../school-2/bb.age", "secrets/1/school-1/%2e%2e/school-2/bb.age",
		"secrets/1/school-1%2f..%2fschool-2/bb.age", "secrets/1/index-0.json/../school-2/bb.age", "secrets/1/index-x/bb.age",
		"secrets/1/index-x", "secrets/1/school-2", "secrets/1/school-2/", "secrets/1", "secrets/1/School-1/../school-2/bb.age",
		"secrets/1/school-1/aa.age/../../school-2/bb.age",
	} {
		r, err := s.do(c, http.MethodGet, api.PathRepo+p, nil)
		if err != nil {
			t.Errorf("GET %s: %v", p, err)
			continue
		}
		if r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
			t.Errorf("GET %s%s: %d (%d bytes), want 404 or 400", api.PathRepo, p, r.status, len(r.body))
		}
		for _, secret := range secrets {
			if bytes.Contains(r.body, secret) {
				t.Errorf("GET %s%s: the answer holds a secret of the data directory", api.PathRepo, p)
			}
		}
	}
}

// 9. The repository's files are served as a static mirror serves them: Range and
// conditional requests.
func TestRepoRangeAndConditional(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id, _ := s.enrolled(t, "school-1")
	c := s.rawClient(t, nodeCert(t, id))
	want, err := os.ReadFile(filepath.Join(s.RepoDir(), "metadata", "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.mustDo(t, c, http.MethodGet, rootJSON, nil)
	wantStatus(t, "GET root.json", r, http.StatusOK)
	if !bytes.Equal(r.body, want) {
		t.Error("root.json served differs from the file")
	}
	r = s.mustDo(t, c, http.MethodGet, rootJSON, nil, "Range", "bytes=10-19")
	wantStatus(t, "a Range request", r, http.StatusPartialContent)
	if !bytes.Equal(r.body, want[10:20]) || r.header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(want)) {
		t.Errorf("Range bytes=10-19: %q, Content-Range %q", r.body, r.header.Get("Content-Range"))
	}
	r = s.mustDo(t, c, http.MethodGet, rootJSON, nil, "If-Modified-Since", r.header.Get("Last-Modified"))
	wantStatus(t, "a conditional request", r, http.StatusNotModified)
}

// 10. Renewal: a new certificate for the node's key, and for it only.
func TestRenewal(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	id, n := s.enrolled(t, "school-1")
	old := nodeCert(t, id)
	if err := n.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := nodeCert(t, id)
	if renewed.Leaf.SerialNumber.Cmp(old.Leaf.SerialNumber) == 0 {
		t.Fatal("the renewal kept the serial")
	}
	if rec, _ := s.node(t, "school-1"); rec.CertSerial != renewed.Leaf.SerialNumber.Text(16) {
		t.Errorf("the registry has serial %s, the renewed certificate %s", rec.CertSerial, renewed.Leaf.SerialNumber.Text(16))
	}
	// Each on a new connection, so that each certificate is presented.
	r := s.mustDo(t, s.rawClient(t, renewed), http.MethodGet, rootJSON, nil)
	wantStatus(t, "the renewed certificate", r, http.StatusOK)
	// The old certificate still works: it is for the same key, which is what the server
	// checks. It must, because a renewal whose answer is lost (the connection drops after
	// the server issued the new certificate) leaves the node with the old one only: were
	// it refused, the node would be locked out until an operator enrolled it again.
	// Revocation, not the serial, is how a node is shut out.
	r = s.mustDo(t, s.rawClient(t, old), http.MethodGet, rootJSON, nil)
	wantStatus(t, "the certificate before renewal", r, http.StatusOK)

	serial := renewed.Leaf.SerialNumber.Text(16)
	c := s.rawClient(t, renewed)
	other := newKey(t)
	r = s.mustDo(t, c, http.MethodPost, api.PathRenew, renewBody(t, other, "school-1"))
	wantRefused(t, "a renewal for another key", r, http.StatusBadRequest, api.CodeBadRequest)
	csr, err := pki.NewCSR(id.Signer(), "school-1")
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(csr)
	tampered[len(tampered)-3] ^= 0xff // in the signature
	otherCSR, err := x509.ParseCertificateRequest(mustCSR(t, other))
	if err != nil {
		t.Fatal(err)
	}
	for what, body := range map[string][]byte{
		"a request with a broken signature": mustJSON(t, api.RenewRequest{CSR: tampered}),
		"no request":                        mustJSON(t, api.RenewRequest{}),
		"garbage":                           mustJSON(t, api.RenewRequest{CSR: []byte("garbage")}),
		"not JSON":                          []byte(`csr`),
		"another key's public key":          mustJSON(t, api.RenewRequest{CSR: otherCSR.Raw}),
	} {
		r = s.mustDo(t, c, http.MethodPost, api.PathRenew, body)
		wantRefused(t, "renewal with "+what, r, http.StatusBadRequest, api.CodeBadRequest)
	}
	if rec, _ := s.node(t, "school-1"); rec.CertSerial != serial || rec.State != registry.Approved {
		t.Errorf("refused renewals changed the record: serial %s state %s, want %s approved", rec.CertSerial, rec.State, serial)
	}

	// The request's subject names another node: the certificate is for this one still.
	r = s.mustDo(t, c, http.MethodPost, api.PathRenew, renewBody(t, id.Signer(), "school-2"))
	wantStatus(t, "a renewal naming another node", r, http.StatusOK)
	var resp api.EnrollResponse
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(resp.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := pki.NodeName(cert); err != nil || name != "school-1" {
		t.Errorf("the renewed certificate names %q (%v), want school-1", name, err)
	}
}

func mustCSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	csr, err := pki.NewCSR(key, "school-1")
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// 10. A revocation stands even when it lands while the node's renewals are in flight:
// issuing the new certificate must not approve the node again.
func TestRevocationNotUndoneByRenewal(t *testing.T) {
	// Not parallel: a race shows when the requests have the CPUs to themselves.
	s := startServer(t)
	ctx := context.Background()
	id, _ := s.enrolled(t, "school-1")
	const workers = 16
	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		mu       sync.Mutex
		renewals int
	)
	started := make(chan struct{}, workers)
	body := renewBody(t, id.Signer(), "school-1")
	for range workers {
		c := s.rawClient(t, nodeCert(t, id))
		wg.Go(func() {
			once := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.do(c, http.MethodPost, api.PathRenew, body)
				if err == nil && r.status == http.StatusOK {
					mu.Lock()
					renewals++
					mu.Unlock()
				}
				if !once {
					once = true
					started <- struct{}{}
				}
			}
		})
	}
	for range workers {
		<-started
	}
	if _, err := s.admin.Revoke(ctx, "school-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n, _ := s.node(t, "school-1"); n.State != registry.Revoked {
		t.Errorf("node school-1 is %s after its revocation: a renewal in flight approved it again (%d renewals in all)", n.State, renewals)
	}
}

// 11. Hostile names are refused before anything is recorded or spent.
func TestHostileNodeNames(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	token := s.newToken(t, 2)
	for _, name := range []string{"../x", "<script>", "A", strings.Repeat("a", 64), "", "a/b", "-a", ".a", "a\x00b", "é", "a b", "a\n", "school-1;drop"} {
		r := s.rawEnroll(t, name, newKey(t), "m-hostile", token)
		wantRefused(t, fmt.Sprintf("name %q", name), r, http.StatusBadRequest, api.CodeBadRequest)
	}
	nodes, err := s.Store().ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 0 {
		t.Errorf("%d nodes recorded, want none", len(nodes))
	}
	if left := s.usesLeft(t, token); left != 2 {
		t.Errorf("%d uses left, want 2", left)
	}
	r := s.rawEnroll(t, strings.Repeat("a", 63), newKey(t), "m-long", token)
	wantStatus(t, "a name of 63 characters", r, http.StatusOK)
}
