package bundle_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
)

// identity is a key and its certificate, made for the test: a CA, an intermediate, or a
// signer (the office's certificate, issued by the fleet's CA).
type identity struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	der  []byte
}

// fingerprint is what a node pins at enrollment: the hex SHA-256 of the CA's DER.
func (ca *identity) fingerprint() string {
	sum := sha256.Sum256(ca.der)
	return hex.EncodeToString(sum[:])
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newCA makes a self-signed CA, valid from ten years ago for twenty years (so that any
// certificate the tests issue, even one long expired, was issued while it was valid).
func newCA(t *testing.T, name string) *identity {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().AddDate(-10, 0, 0),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &identity{key: key, cert: cert, der: der}
}

// issue makes a certificate for pub, issued by ca: a server certificate
// (ExtKeyUsageServerAuth), or an intermediate CA if isCA.
func (ca *identity) issue(t *testing.T, name string, pub crypto.PublicKey, notBefore, notAfter time.Time, isCA bool) (*x509.Certificate, []byte) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, der
}

// newSigner makes an ECDSA key and its server certificate issued by ca, valid now.
func (ca *identity) newSigner(t *testing.T, name string) *identity {
	t.Helper()
	return ca.newSignerValid(t, name, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
}

func (ca *identity) newSignerValid(t *testing.T, name string, notBefore, notAfter time.Time) *identity {
	t.Helper()
	key := newKey(t)
	cert, der := ca.issue(t, name, key.Public(), notBefore, notAfter, false)
	return &identity{key: key, cert: cert, der: der}
}

// fleet is an office: the fleet's CA and the certificate bundles are signed with.
type fleet struct {
	ca, signer *identity
}

func (f *fleet) chain() [][]byte { return [][]byte{f.signer.der, f.ca.der} }

var (
	sharedFleetOnce sync.Once
	sharedFleet     *fleet
)

// testFleet is one fleet shared by the tests that only need a bundle signed (its keys
// are only read).
func testFleet(t *testing.T) *fleet {
	t.Helper()
	sharedFleetOnce.Do(func() {
		ca := newCA(t, "fleet CA")
		sharedFleet = &fleet{ca: ca, signer: ca.newSigner(t, "office")}
	})
	if sharedFleet == nil {
		t.Fatal("the shared fleet could not be made")
	}
	return sharedFleet
}

// envelope mirrors the signed file's JSON, for tests that take one apart.
type envelope struct {
	Signed    []byte   `json:"signed"`
	Signature []byte   `json:"signature"`
	Chain     [][]byte `json:"chain,omitempty"`
	PublicKey []byte   `json:"public_key,omitempty"`
}

func parseEnvelope(t *testing.T, data []byte) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("the signed file is not an envelope: %v", err)
	}
	return env
}

// editEnvelope returns signed with its envelope changed by change.
func editEnvelope(t *testing.T, signed []byte, change func(env *envelope)) []byte {
	t.Helper()
	env := parseEnvelope(t, signed)
	change(&env)
	return env.marshal(t)
}

func (env envelope) marshal(t *testing.T) []byte {
	t.Helper()
	data, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// signRaw signs data as the package does (ECDSA over SHA-256, ASN.1), for envelopes the
// package would refuse to make itself.
func signRaw(t *testing.T, key crypto.Signer, data []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(data)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// hashOf is the hex SHA-256 of data, as an index lists it.
func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func goodIndex() *bundle.Index {
	data := []byte("the manifest of release 7")
	return &bundle.Index{
		Format:   bundle.Format,
		ID:       "20250301-route-north",
		Created:  time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC),
		Release:  7,
		Nodes:    []string{"school-a", "school-b"},
		Roots:    []string{"abc123"},
		Received: map[string][]string{"school-a": {"20250228T100000.000000000Z-report-0123abcd.json"}},
		Files:    []bundle.File{{Path: "targets/releases/7.json", Size: int64(len(data)), SHA256: hashOf(data)}},
	}
}

func signedIndex(t *testing.T, f *fleet, ix *bundle.Index) []byte {
	t.Helper()
	data, err := bundle.SignIndex(ix, f.signer.key, f.chain())
	if err != nil {
		t.Fatalf("SignIndex: %v", err)
	}
	return data
}

func TestSignIndexOpenIndexRoundTrip(t *testing.T) {
	t.Parallel()
	f := testFleet(t)
	ix := goodIndex()
	data := signedIndex(t, f, ix)

	got, signer, err := bundle.OpenIndex(data, f.ca.fingerprint())
	if err != nil {
		t.Fatalf("OpenIndex: %v", err)
	}
	if !signer.Equal(f.signer.cert) {
		t.Errorf("signer %q, want the office's certificate", signer.Subject.CommonName)
	}
	wantJSON, _ := json.Marshal(ix)
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("the index opened is not the one signed:\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestSignIndexRefusesBadIndex(t *testing.T) {
	t.Parallel()
	f := testFleet(t)
	ix := goodIndex()
	ix.Files = append(ix.Files, bundle.File{Path: "../etc/passwd", SHA256: hashOf(nil)})
	if _, err := bundle.SignIndex(ix, f.signer.key, f.chain()); err == nil {
		t.Fatal("SignIndex signed an index with a path out of the bundle")
	}
}

func TestOpenIndexThroughIntermediate(t *testing.T) {
	t.Parallel()
	root := newCA(t, "fleet CA")
	interKey := newKey(t)
	interCert, interDER := root.issue(t, "intermediate", interKey.Public(), time.Now().AddDate(-1, 0, 0), time.Now().AddDate(5, 0, 0), true)
	inter := &identity{key: interKey, cert: interCert, der: interDER}
	leaf := inter.newSigner(t, "office")
	ix := goodIndex()

	data, err := bundle.SignIndex(ix, leaf.key, [][]byte{leaf.der, inter.der, root.der})
	if err != nil {
		t.Fatal(err)
	}
	if _, signer, err := bundle.OpenIndex(data, root.fingerprint()); err != nil {
		t.Errorf("a chain through an intermediate: %v", err)
	} else if !signer.Equal(leaf.cert) {
		t.Errorf("signer %q, want the leaf", signer.Subject.CommonName)
	}

	// Without the intermediate, the leaf does not lead to the pinned CA.
	data, err = bundle.SignIndex(ix, leaf.key, [][]byte{leaf.der, root.der})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bundle.OpenIndex(data, root.fingerprint()); !errors.Is(err, bundle.ErrDamaged) {
		t.Errorf("a chain missing its intermediate: %v, want ErrDamaged", err)
	}
}

// An expired signer's certificate is accepted: a stick may travel for months between the
// office and a school with no link, and what the node may apply is decided by the
// release's own signatures (checked against its pinned release keys), not by the index's.
func TestOpenIndexAcceptsExpiredSigner(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "fleet CA")
	old := ca.newSignerValid(t, "office (2023)", time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0))
	if time.Now().Before(old.cert.NotAfter) {
		t.Fatal("the test's certificate is not expired")
	}
	data, err := bundle.SignIndex(goodIndex(), old.key, [][]byte{old.der, ca.der})
	if err != nil {
		t.Fatal(err)
	}
	ix, signer, err := bundle.OpenIndex(data, ca.fingerprint())
	if err != nil {
		t.Fatalf("an expired signer's index was refused: %v", err)
	}
	if ix.Release != 7 || !signer.Equal(old.cert) {
		t.Errorf("release %d, signer %q", ix.Release, signer.Subject.CommonName)
	}
}

func TestOpenIndexForeignFleet(t *testing.T) {
	t.Parallel()
	ours := testFleet(t)
	theirCA := newCA(t, "another fleet's CA")
	theirs := &fleet{ca: theirCA, signer: theirCA.newSigner(t, "their office")}
	data := signedIndex(t, theirs, goodIndex())

	_, _, err := bundle.OpenIndex(data, ours.ca.fingerprint())
	if !errors.Is(err, bundle.ErrForeign) {
		t.Fatalf("another fleet's bundle: %v, want ErrForeign", err)
	}
	if errors.Is(err, bundle.ErrDamaged) {
		t.Errorf("another fleet's bundle is also called damaged: %v", err)
	}
	if !strings.Contains(err.Error(), theirCA.fingerprint()[:16]) {
		t.Errorf("the error does not name the CA it was signed under: %v", err)
	}
	// Their own nodes take it.
	if _, _, err := bundle.OpenIndex(data, theirCA.fingerprint()); err != nil {
		t.Errorf("their own fleet: %v", err)
	}
}

func TestOpenIndexDamaged(t *testing.T) {
	t.Parallel()
	f := testFleet(t)
	foreignCA := newCA(t, "another fleet's CA")
	impostor := foreignCA.newSigner(t, "office") // same name, issued by the other CA
	good := signedIndex(t, f, goodIndex())
	ix := goodIndex()

	mustSign := func(key crypto.Signer, chain [][]byte) []byte {
		t.Helper()
		data, err := bundle.SignIndex(ix, key, chain)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	edit := func(change func(env *envelope)) []byte { return editEnvelope(t, good, change) }

	tests := []struct {
		name string
		data []byte
	}{
		{"signed bytes edited", edit(func(env *envelope) {
			edited := bytes.Replace(env.Signed, []byte(`"release":7`), []byte(`"release":8`), 1)
			if bytes.Equal(edited, env.Signed) {
				t.Fatal("the release is not in the signed bytes")
			}
			env.Signed = edited
		})},
		{"a flipped byte in the signed bytes", edit(func(env *envelope) { env.Signed[len(env.Signed)/2] ^= 0x01 })},
		{"a flipped byte in the signature", edit(func(env *envelope) { env.Signature[len(env.Signature)-1] ^= 0x01 })},
		{"no signature", edit(func(env *envelope) { env.Signature = nil })},
		{"nothing signed", edit(func(env *envelope) { env.Signed = nil })},
		{"no chain", edit(func(env *envelope) { env.Chain = nil })},
		{"only the CA in the chain", mustSign(f.ca.key, [][]byte{f.ca.der})},
		{"the CA as its own signer", mustSign(f.ca.key, [][]byte{f.ca.der, f.ca.der})},
		{"a signer issued by another CA, ending in ours", mustSign(impostor.key, [][]byte{impostor.der, f.ca.der})},
		{"signed by another key than the signer's", mustSign(impostor.key, f.chain())},
		{"a certificate that does not parse", edit(func(env *envelope) { env.Chain[0] = []byte("not a certificate") })},
		{"garbage", []byte("this is not JSON")},
		{"empty", nil},
		{"JSON of another shape", []byte(`{"signed": 12}`)},
		{"truncated", good[:len(good)/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ix, signer, err := bundle.OpenIndex(tt.data, f.ca.fingerprint())
			if !errors.Is(err, bundle.ErrDamaged) {
				t.Fatalf("OpenIndex: %v, want ErrDamaged", err)
			}
			if ix != nil || signer != nil {
				t.Errorf("an index or signer returned with the error")
			}
		})
	}
}

// A signer's key the package cannot verify with (not ECDSA) is a damaged index, as a
// signature that does not verify is.
func TestOpenIndexNonECDSASigner(t *testing.T) {
	t.Parallel()
	f := testFleet(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, leafDER := f.ca.issue(t, "office (ed25519)", pub, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0), false)
	signed, _ := json.Marshal(goodIndex())
	env := envelope{Signed: signed, Signature: ed25519.Sign(priv, signed), Chain: [][]byte{leafDER, f.ca.der}}

	_, _, err = bundle.OpenIndex(env.marshal(t), f.ca.fingerprint())
	if err == nil {
		t.Fatal("an index signed with an Ed25519 key was accepted")
	}
	if !errors.Is(err, bundle.ErrDamaged) {
		t.Errorf("OpenIndex: %v, want ErrDamaged (the index is not signed as an index is)", err)
	}
}

// A well signed index that the node cannot read (a newer format) is refused by its check.
func TestOpenIndexChecksSignedIndex(t *testing.T) {
	t.Parallel()
	f := testFleet(t)
	ix := goodIndex()
	ix.Format = "satchel.bundle/v2"
	signed, _ := json.Marshal(ix)
	env := envelope{Signed: signed, Signature: signRaw(t, f.signer.key, signed), Chain: f.chain()}

	_, _, err := bundle.OpenIndex(env.marshal(t), f.ca.fingerprint())
	if err == nil || !strings.Contains(err.Error(), "format") {
		t.Fatalf("OpenIndex of a v2 index: %v, want a format error", err)
	}
}

func goodReturns() *bundle.Returns {
	report := []byte(`{"outcome":"ok"}`)
	return &bundle.Returns{
		Format:  bundle.ReturnsFormat,
		Node:    "school-a",
		Seq:     3,
		Written: time.Date(2025, 3, 2, 9, 0, 0, 0, time.UTC),
		Bundle:  "20250301-route-north",
		Release: 7,
		Facts:   json.RawMessage(`{"hostname":"school-a"}`),
		Reports: []bundle.ReturnedReport{{ID: "20250302T090000.000000000Z-report-0123abcd.json", Size: int64(len(report)), SHA256: hashOf(report)}},
	}
}

func TestSignReturnsOpenReturnsRoundTrip(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	r := goodReturns()
	data, err := bundle.SignReturns(r, key)
	if err != nil {
		t.Fatalf("SignReturns: %v", err)
	}
	got, fp, err := bundle.OpenReturns(data)
	if err != nil {
		t.Fatalf("OpenReturns: %v", err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if want := hashOf(pkix); fp != want {
		t.Errorf("key fingerprint %s, want %s (the SHA-256 of the key's PKIX DER)", fp, want)
	}
	wantJSON, _ := json.Marshal(r)
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("returns opened:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// Another key signs the same returns under another fingerprint.
	data2, err := bundle.SignReturns(r, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, fp2, err := bundle.OpenReturns(data2); err != nil || fp2 == fp {
		t.Errorf("another key: fingerprint %s (err %v), want one other than %s", fp2, err, fp)
	}
}

func TestOpenReturnsDamaged(t *testing.T) {
	t.Parallel()
	keyA, keyB := newKey(t), newKey(t)
	good, err := bundle.SignReturns(goodReturns(), keyA)
	if err != nil {
		t.Fatal(err)
	}
	pubB, err := x509.MarshalPKIXPublicKey(keyB.Public())
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPKIX, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(change func(env *envelope)) []byte { return editEnvelope(t, good, change) }
	tests := []struct {
		name string
		data []byte
	}{
		{"signed bytes edited", edit(func(env *envelope) {
			edited := bytes.Replace(env.Signed, []byte(`"seq":3`), []byte(`"seq":4`), 1)
			if bytes.Equal(edited, env.Signed) {
				t.Fatal("the sequence number is not in the signed bytes")
			}
			env.Signed = edited
		})},
		{"a flipped byte in the signature", edit(func(env *envelope) { env.Signature[len(env.Signature)/2] ^= 0x40 })},
		{"signed by key A, carrying key B", edit(func(env *envelope) { env.PublicKey = pubB })},
		{"no public key", edit(func(env *envelope) { env.PublicKey = nil })},
		{"a public key that does not parse", edit(func(env *envelope) { env.PublicKey = []byte("key") })},
		{"no signature", edit(func(env *envelope) { env.Signature = nil })},
		{"an Ed25519 key", edit(func(env *envelope) {
			env.PublicKey = edPKIX
			env.Signature = ed25519.Sign(edPriv, env.Signed)
		})},
		{"garbage", []byte("{{{")},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, fp, err := bundle.OpenReturns(tt.data)
			if !errors.Is(err, bundle.ErrDamaged) {
				t.Fatalf("OpenReturns: %v, want ErrDamaged", err)
			}
			if r != nil || fp != "" {
				t.Errorf("returns or a fingerprint given with the error")
			}
		})
	}
}

func TestReturnsCheck(t *testing.T) {
	t.Parallel()
	if err := goodReturns().Check(); err != nil {
		t.Fatalf("good returns: %v", err)
	}
	empty := goodReturns()
	empty.Reports = nil
	if err := empty.Check(); err != nil {
		t.Errorf("returns without reports: %v", err)
	}

	tests := []struct {
		name   string
		change func(r *bundle.Returns)
	}{
		{"no format", func(r *bundle.Returns) { r.Format = "" }},
		{"a newer format", func(r *bundle.Returns) { r.Format = "satchel.returns/v2" }},
		{"the index's format", func(r *bundle.Returns) { r.Format = bundle.Format }},
		{"no node", func(r *bundle.Returns) { r.Node = "" }},
		{"node with a slash", func(r *bundle.Returns) { r.Node = "school/a" }},
		{"node ..", func(r *bundle.Returns) { r.Node = ".." }},
		{"node ../x", func(r *bundle.Returns) { r.Node = "../x" }},
		{"hidden node", func(r *bundle.Returns) { r.Node = ".school" }},
		{"node with a backslash", func(r *bundle.Returns) { r.Node = `school\a` }},
		{"node too long", func(r *bundle.Returns) { r.Node = strings.Repeat("a", 129) }},
		{"seq 0", func(r *bundle.Returns) { r.Seq = 0 }},
		{"a report twice", func(r *bundle.Returns) { r.Reports = append(r.Reports, r.Reports[0]) }},
		{"report ../x", func(r *bundle.Returns) { r.Reports[0].ID = "../x" }},
		{"report ..", func(r *bundle.Returns) { r.Reports[0].ID = ".." }},
		{"report with a slash", func(r *bundle.Returns) { r.Reports[0].ID = "a/b" }},
		{"report without ID", func(r *bundle.Returns) { r.Reports[0].ID = "" }},
		{"report of negative size", func(r *bundle.Returns) { r.Reports[0].Size = -1 }},
		{"report with a short hash", func(r *bundle.Returns) { r.Reports[0].SHA256 = "abc" }},
		{"report with an uppercase hash", func(r *bundle.Returns) { r.Reports[0].SHA256 = strings.ToUpper(r.Reports[0].SHA256) }},
	}
	key := newKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := goodReturns()
			tt.change(r)
			if err := r.Check(); err == nil {
				t.Fatal("Check accepted it")
			}
			if _, err := bundle.SignReturns(r, key); err == nil {
				t.Error("SignReturns signed it")
			}
			// Signed all the same (by a node that does not check), the office refuses it.
			signed, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := x509.MarshalPKIXPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			env := envelope{Signed: signed, Signature: signRaw(t, key, signed), PublicKey: pub}
			if got, _, err := bundle.OpenReturns(env.marshal(t)); err == nil {
				t.Errorf("OpenReturns accepted %+v", got)
			}
		})
	}
}

func TestReportPath(t *testing.T) {
	t.Parallel()
	if got, want := bundle.ReportPath("school-a", "r1.json"), "returns/school-a/reports/r1.json"; got != want {
		t.Errorf("ReportPath = %q, want %q", got, want)
	}
}
