package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Init(dir, "test fleet")
	must(t, err)
	return ca, dir
}

// nodeCert enrolls a node with ca: a key, a request, a certificate.
func nodeCert(t *testing.T, ca *CA, name string, validity time.Duration) tls.Certificate {
	t.Helper()
	key, err := NewNodeKey()
	must(t, err)
	csr, err := NewCSR(key, name)
	must(t, err)
	der, err := ca.SignNode(csr, name, validity)
	must(t, err)
	leaf, err := x509.ParseCertificate(der)
	must(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestInitLoad(t *testing.T) {
	t.Parallel()
	ca, dir := newCA(t)
	for name, perm := range map[string]os.FileMode{"": 0o700, keyFile: 0o600} {
		info, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if info.Mode().Perm() != perm {
			t.Errorf("%s mode %04o, want %04o", name, info.Mode().Perm(), perm)
		}
	}
	again, err := Load(dir)
	must(t, err)
	if again.Fingerprint() != ca.Fingerprint() || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ca.Fingerprint()) {
		t.Errorf("fingerprints %s and %s", ca.Fingerprint(), again.Fingerprint())
	}
	if _, err := Init(dir, "again"); !errors.Is(err, ErrExists) {
		t.Errorf("Init twice: %v, want ErrExists", err)
	}
	_, created, err := LoadOrInit(dir, "x")
	if err != nil || created {
		t.Errorf("LoadOrInit of an existing CA: created %v, %v", created, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	t.Run("loose key", func(t *testing.T) {
		_, dir := newCA(t)
		must(t, os.Chmod(filepath.Join(dir, keyFile), 0o644))
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("mismatched key", func(t *testing.T) {
		_, dir := newCA(t)
		_, other := newCA(t)
		data, err := os.ReadFile(filepath.Join(other, keyFile))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, keyFile), data, 0o600))
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("not a CA", func(t *testing.T) {
		ca, dir := newCA(t)
		srv, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, certFile), pemCert(srv.Certificate[0]), 0o644))
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
			t.Errorf("Load: %v", err)
		}
	})
}

// The certificate carries the name the server decided, not the one the node asked for.
func TestSignNodeNamesTheGivenNode(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	key, err := NewNodeKey()
	must(t, err)
	csr, err := NewCSR(key, "school-999")
	must(t, err)
	der, err := ca.SignNode(csr, "school-001", time.Hour)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	name, err := ca.VerifyNode(cert, time.Now())
	if err != nil || name != "school-001" || cert.Subject.CommonName != "school-001" {
		t.Errorf("node %q (CN %q), %v; want school-001", name, cert.Subject.CommonName, err)
	}
	// A request whose signature does not verify is refused.
	bad := append([]byte(nil), csr...)
	bad[len(bad)-5] ^= 0xff
	if _, err := ca.SignNode(bad, "school-001", time.Hour); err == nil {
		t.Error("a request with a broken signature was signed")
	}
	if _, err := ca.SignNode(csr, "School 1", time.Hour); err == nil || !strings.Contains(err.Error(), "lower-case") {
		t.Errorf("a bad name: %v", err)
	}
	// Expired, or from another CA: refused.
	if _, err := ca.VerifyNode(cert, time.Now().Add(2*time.Hour)); err == nil {
		t.Error("an expired node certificate verified")
	}
	other, _ := newCA(t)
	if _, err := other.VerifyNode(cert, time.Now()); err == nil {
		t.Error("a certificate of another CA verified")
	}
	// A certificate without the node URI names no node.
	srv, err := ca.IssueServer([]string{"localhost"}, time.Hour)
	must(t, err)
	if _, err := NodeName(srv.Leaf); err == nil || !strings.Contains(err.Error(), "names no node") {
		t.Errorf("NodeName of a server certificate: %v", err)
	}
}

// Mutual TLS on 127.0.0.1: a node with a certificate of the CA is served, a client with
// none or with another CA's is refused; an agent pinning another CA refuses the server.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	srvCert, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	must(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, err := ca.VerifyNode(r.TLS.PeerCertificates[0], time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "hello "+name)
	}))
	srv.TLS = ca.ServerConfig(srvCert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	get := func(cfg *tls.Config) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		resp, err := c.Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	cfg := PinnedServerConfig(ca.Fingerprint())
	cfg.Certificates = []tls.Certificate{nodeCert(t, ca, "school-001", time.Hour)}
	if got, err := get(cfg); err != nil || got != "hello school-001" {
		t.Fatalf("a node of the CA: %q, %v", got, err)
	}
	if _, err := get(PinnedServerConfig(ca.Fingerprint())); err == nil {
		t.Error("a client without a certificate was served")
	}
	other, _ := newCA(t)
	cfg = PinnedServerConfig(ca.Fingerprint())
	cfg.Certificates = []tls.Certificate{nodeCert(t, other, "school-001", time.Hour)}
	if _, err := get(cfg); err == nil {
		t.Error("a client of another CA was served")
	}
	cfg = PinnedServerConfig(other.Fingerprint())
	cfg.Certificates = []tls.Certificate{nodeCert(t, ca, "school-001", time.Hour)}
	if _, err := get(cfg); err == nil || !strings.Contains(err.Error(), "not the pinned "+other.Fingerprint()) {
		t.Errorf("an agent pinning another CA: %v", err)
	}
}

func TestShortFingerprint(t *testing.T) {
	t.Parallel()
	got := ShortFingerprint([]byte("abc"))
	// SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223…
	if got != "ba78-16bf-8f01-cfea-4141-40de-5dae-2223" {
		t.Errorf("ShortFingerprint = %s", got)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
