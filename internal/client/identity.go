package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/atomicfile"
	"github.com/satchelcm/satchel/internal/pki"
)

// Files of an identity directory.
const (
	keyFile    = "tls.key"
	certFile   = "tls.crt"
	ageFile    = "age.key"
	serverFile = "server.json"
	caFile     = "ca.crt" // the CA's certificate, as the server sent it (a node relays with it)
)

// ErrNoIdentity is returned by LoadIdentity for a directory with no keys.
var ErrNoIdentity = errors.New("this node has no identity: enroll it first (satchel enroll)")

// ServerInfo is where a node's server is and how it is trusted.
type ServerInfo struct {
	Server        string `json:"server"`
	CAFingerprint string `json:"ca_fingerprint"`
	Name          string `json:"name"`
}

// Identity is a node's keys and, once enrolled, its certificate and server.
type Identity struct {
	dir string
	key *ecdsa.PrivateKey
	age *age.X25519Identity

	mu   sync.Mutex
	cert *tls.Certificate // nil until enrolled
	info ServerInfo       // zero until enrolled
}

// LoadIdentity reads the identity in dir; ErrNoIdentity if it has none.
func LoadIdentity(dir string) (*Identity, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	id := &Identity{dir: dir}
	if id.key, err = parseKey(keyPEM); err != nil {
		return nil, fmt.Errorf("node identity %s: %w", filepath.Join(dir, keyFile), err)
	}
	ageText, err := os.ReadFile(filepath.Join(dir, ageFile))
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	if id.age, err = age.ParseX25519Identity(strings.TrimSpace(string(ageText))); err != nil {
		return nil, fmt.Errorf("node identity %s: %w", filepath.Join(dir, ageFile), err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, serverFile)); err == nil {
		if err := json.Unmarshal(data, &id.info); err != nil {
			return nil, fmt.Errorf("node identity %s: %w", filepath.Join(dir, serverFile), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	if certPEM, err := os.ReadFile(filepath.Join(dir, certFile)); err == nil {
		cert, err := tlsCertificate(certPEM, id.key)
		if err != nil {
			return nil, fmt.Errorf("node identity %s: %w", filepath.Join(dir, certFile), err)
		}
		id.cert = cert
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	return id, nil
}

// NewIdentity makes new keys in dir (created 0700), replacing any identity there: the
// old keys, certificate and server are removed.
func NewIdentity(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	for _, f := range []string{certFile, serverFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("node identity: %w", err)
		}
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	// The age key first: a crash between the two leaves no tls.key, so the next start
	// makes both anew rather than loading half an identity.
	if err := atomicfile.WriteBytes(filepath.Join(dir, ageFile), 0o600, []byte(ageID.String()+"\n")); err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, keyFile), 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	return &Identity{dir: dir, key: key, age: ageID}, nil
}

// LoadOrNewIdentity loads the identity in dir, or makes one (created: true).
func LoadOrNewIdentity(dir string) (id *Identity, created bool, err error) {
	id, err = LoadIdentity(dir)
	if errors.Is(err, ErrNoIdentity) {
		id, err = NewIdentity(dir)
		return id, err == nil, err
	}
	return id, false, err
}

// Dir is the identity's directory.
func (id *Identity) Dir() string { return id.dir }

// Fingerprint is the SHA-256 of the node's public key (hex), as the server records it.
func (id *Identity) Fingerprint() string {
	der, _ := x509.MarshalPKIXPublicKey(&id.key.PublicKey) // an ECDSA P-256 key always marshals
	return pki.Fingerprint(der)
}

// ShortFingerprint is the fingerprint the operator compares before approving the node.
func (id *Identity) ShortFingerprint() string { return pki.Shorten(id.Fingerprint()) }

// Recipient is the node's age recipient.
func (id *Identity) Recipient() string { return id.age.Recipient().String() }

// AgeIdentity is the node's age identity, which decrypts its secrets.
func (id *Identity) AgeIdentity() *age.X25519Identity { return id.age }

// Signer is the node's TLS key.
func (id *Identity) Signer() crypto.Signer { return id.key }

// Server is the server the node enrolled with; zero before enrollment.
func (id *Identity) Server() ServerInfo {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.info
}

// Enrolled reports whether the node holds a certificate and knows its server.
func (id *Identity) Enrolled() bool {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.cert != nil && id.info.Server != ""
}

// Certificate is the node's current certificate, nil before enrollment.
func (id *Identity) Certificate() *x509.Certificate {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.cert == nil {
		return nil
	}
	return id.cert.Leaf
}

// saveServer records the node's server.
func (id *Identity) saveServer(info ServerInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(id.dir, serverFile), 0o600, append(data, '\n')); err != nil {
		return fmt.Errorf("node identity: %w", err)
	}
	id.mu.Lock()
	id.info = info
	id.mu.Unlock()
	return nil
}

// saveCertificate checks that der is a certificate for the node's key and keeps it, on
// disk and for the connections made from now on; and keeps ca, the certificate of the CA
// that issued it, if the server sent it and it is the CA the node pinned.
func (id *Identity) saveCertificate(der, ca []byte) error {
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tlsCertificate(certPEM, id.key)
	if err != nil {
		return fmt.Errorf("the server's certificate for this node: %w", err)
	}
	if len(ca) > 0 {
		if got, want := pki.Fingerprint(ca), id.Server().CAFingerprint; got != want {
			return fmt.Errorf("the server sent the certificate of CA %s, and this node pinned %s: refused", pki.Shorten(got), pki.Shorten(want))
		}
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca})
		if err := atomicfile.WriteBytes(filepath.Join(id.dir, caFile), 0o644, caPEM); err != nil {
			return fmt.Errorf("node identity: %w", err)
		}
	}
	if err := atomicfile.WriteBytes(filepath.Join(id.dir, certFile), 0o644, certPEM); err != nil {
		return fmt.Errorf("node identity: %w", err)
	}
	id.mu.Lock()
	id.cert = cert
	id.mu.Unlock()
	return nil
}

// Chain returns the node's certificate and its CA's (DER), to sign what the node relays
// with. A node enrolled by an older server has no CA certificate until it renews its own.
func (id *Identity) Chain() ([][]byte, error) {
	c := id.Certificate()
	if c == nil {
		return nil, errors.New("this node has no certificate yet: it is not enrolled")
	}
	data, err := os.ReadFile(filepath.Join(id.dir, caFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("this node does not have its CA's certificate yet (enrolled by an older satchel server): it gets it when it next renews its own")
	}
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || pki.Fingerprint(block.Bytes) != id.Server().CAFingerprint {
		return nil, fmt.Errorf("node identity: %s is not the pinned CA's certificate", filepath.Join(id.dir, caFile))
	}
	return [][]byte{c.Raw, block.Bytes}, nil
}

// NeedsRenewal reports whether the certificate has less than a third of its validity
// left at now.
func (id *Identity) NeedsRenewal(now time.Time) bool {
	c := id.Certificate()
	if c == nil {
		return false
	}
	left := c.NotAfter.Sub(now)
	return left < c.NotAfter.Sub(c.NotBefore)/3
}

// tlsConfig is the node's TLS configuration for its server: the CA pinned, and the
// current certificate presented (read at each handshake, so a renewal takes effect on
// the next connection).
func (id *Identity) tlsConfig(caFingerprint string) *tls.Config {
	c := pki.PinnedServerConfig(caFingerprint)
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		id.mu.Lock()
		defer id.mu.Unlock()
		if id.cert == nil {
			return &tls.Certificate{}, nil // none: enrollment
		}
		return id.cert, nil
	}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	return c
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an ECDSA key", k)
	}
	return key, nil
}

func tlsCertificate(certPEM []byte, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the certificate is not for this node's key")
	}
	return &tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key, Leaf: leaf}, nil
}
