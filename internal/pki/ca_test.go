package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrInit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "ca")
	ca, created, err := LoadOrInit(dir, "fleet")
	if err != nil || !created {
		t.Fatalf("first LoadOrInit: created %v, %v", created, err)
	}
	again, created, err := LoadOrInit(dir, "other")
	if err != nil || created {
		t.Fatalf("second LoadOrInit: created %v, %v", created, err)
	}
	if again.Fingerprint() != ca.Fingerprint() || again.Certificate().Subject.CommonName != "fleet" {
		t.Errorf("second LoadOrInit gave another CA: %s %q", again.Fingerprint(), again.Certificate().Subject.CommonName)
	}
	noLeftovers(t, filepath.Dir(dir))
}

// Init takes an empty directory (and tightens it to 0700), refuses one holding anything
// else without touching it, and leaves no staging directory behind either way.
func TestInitDirectory(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	empty := filepath.Join(parent, "empty")
	must(t, os.Mkdir(empty, 0o755))
	if _, err := Init(empty, "fleet"); err != nil {
		t.Fatalf("Init in an empty directory: %v", err)
	}
	info, err := os.Stat(empty)
	must(t, err)
	if info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", info.Mode().Perm())
	}
	busy := filepath.Join(parent, "busy")
	must(t, os.Mkdir(busy, 0o700))
	must(t, os.WriteFile(filepath.Join(busy, "notes"), []byte("mine"), 0o644))
	if _, err := Init(busy, "fleet"); err == nil || errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "empty directory") {
		t.Errorf("Init in a directory with other files: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(busy, "notes")); err != nil || string(data) != "mine" {
		t.Errorf("the existing file: %q, %v", data, err)
	}
	noLeftovers(t, parent)
}

// Of several Inits racing for one directory exactly one wins, and the CA on disk is its.
func TestInitRace(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []*CA
		errs []error
	)
	for range n {
		wg.Go(func() {
			ca, err := Init(dir, "fleet")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, ca)
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d Inits won, want 1", len(won))
	}
	for _, err := range errs {
		if !errors.Is(err, ErrExists) {
			t.Errorf("a losing Init: %v, want ErrExists", err)
		}
	}
	loaded, err := Load(dir)
	must(t, err)
	if loaded.Fingerprint() != won[0].Fingerprint() {
		t.Error("the CA on disk is not the winner's")
	}
	noLeftovers(t, filepath.Dir(dir))
}

func TestLoadRefusesGroupReadableKey(t *testing.T) {
	t.Parallel()
	_, dir := newCA(t)
	kp := filepath.Join(dir, keyFile)
	must(t, os.Chmod(kp, 0o640))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), kp) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Load: %v", err)
	}
}

func TestNodeNameMalformed(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	for _, tc := range []struct {
		uris []string
		want string
	}{
		{[]string{"satchel-node:a", "satchel-node:b"}, "more than one node"},
		{[]string{"satchel-node:School"}, "lower-case"},
		{[]string{"satchel-node:a?b=c"}, "malformed node URI"},
		{[]string{"satchel-node://host/a"}, "lower-case"},
		{[]string{"https://example.org/a"}, "names no node"},
	} {
		cert := certWithURIs(t, ca, tc.uris)
		if _, err := NodeName(cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NodeName(%v): %v, want %q", tc.uris, err, tc.want)
		}
	}
}

func TestNodeNameChecks(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 63)
	for _, ok := range []string{"a", "0", "school-001", "lab.3.la-rioja", long} {
		if err := CheckNodeName(ok); err != nil {
			t.Errorf("CheckNodeName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", long + "a", "-a", ".a", "A", "a_b", "a b", "a/b", "é"} {
		if err := CheckNodeName(bad); err == nil {
			t.Errorf("CheckNodeName(%q) accepted it", bad)
		}
	}
}

// A certificate of the CA that is not for client authentication does not name a node.
func TestVerifyNodeRefusesServerCertificate(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	srv, err := ca.IssueServer([]string{"127.0.0.1", "satchel.example"}, time.Hour)
	must(t, err)
	if _, err := ca.VerifyNode(srv.Leaf, time.Now()); err == nil {
		t.Error("a server certificate verified as a node's")
	}
	if len(srv.Leaf.IPAddresses) != 1 || len(srv.Leaf.DNSNames) != 1 || srv.Leaf.DNSNames[0] != "satchel.example" {
		t.Errorf("SANs: %v %v", srv.Leaf.IPAddresses, srv.Leaf.DNSNames)
	}
	if _, err := ca.IssueServer(nil, time.Hour); err == nil {
		t.Error("a server certificate for no host was issued")
	}
}

// A node certificate: client auth only, a 128-bit-range random serial, backdated for skew.
func TestSignNodeCertificate(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	before := time.Now()
	c := nodeCert(t, ca, "school-001", time.Hour).Leaf
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.IsCA {
		t.Errorf("usage %v, CA %v", c.ExtKeyUsage, c.IsCA)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	if skew := before.Sub(c.NotBefore); skew < 4*time.Minute || skew > 6*time.Minute {
		t.Errorf("NotBefore %v before now, want 5 minutes", skew)
	}
	if c.Subject.CommonName != "school-001" || len(c.URIs) != 1 || c.URIs[0].String() != "satchel-node:school-001" {
		t.Errorf("CN %q, URIs %v", c.Subject.CommonName, c.URIs)
	}
	key, err := NewNodeKey()
	must(t, err)
	csr, err := NewCSR(key, "school-001")
	must(t, err)
	if _, err := ca.SignNode(csr, "school-001", 0); err == nil {
		t.Error("a certificate valid for no time was issued")
	}
	if _, err := ca.SignNode([]byte("not a request"), "school-001", time.Hour); err == nil {
		t.Error("garbage was signed")
	}
}

// certWithURIs issues a client certificate of ca carrying uris.
func certWithURIs(t *testing.T, ca *CA, uris []string) *x509.Certificate {
	t.Helper()
	key, err := NewNodeKey()
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "crafted"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		must(t, err)
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return cert
}

// noLeftovers fails if a staging directory remains in dir.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
