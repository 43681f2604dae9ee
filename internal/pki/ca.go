package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names inside a CA directory.
const (
	certFile = "ca.crt"
	keyFile  = "ca.key"
)

// caValidity is how long a CA certificate is valid.
const caValidity = 20 * 365 * 24 * time.Hour

// ErrExists is returned by Init when the directory holds a CA already.
var ErrExists = errors.New("a CA exists already")

// CA is a private certificate authority kept in a directory.
type CA struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Init creates a CA named name in dir (created with mode 0700 if missing). It refuses a
// directory that holds a CA key already (ErrExists): a CA is never replaced silently, as
// every node pins it.
func Init(dir, name string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, keyFile)); err == nil {
		return nil, fmt.Errorf("init CA in %s: %w", dir, ErrExists)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	// The key first, exclusively: two Inits racing cannot both win.
	if err := writeNew(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := writeNew(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	return &CA{dir: dir, cert: cert, key: key}, nil
}

// Load reads the CA in dir.
func Load(dir string) (*CA, error) {
	kp := filepath.Join(dir, keyFile)
	info, err := os.Stat(kp)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load CA: %s has mode %04o, readable by others: run chmod 600 %s", kp, perm, kp)
	}
	keyPEM, err := os.ReadFile(kp)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load CA: %s is not a PEM private key", kp)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load CA: %s: %w", kp, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load CA: %s is not an ECDSA key", kp)
	}
	cp := filepath.Join(dir, certFile)
	certPEM, err := os.ReadFile(cp)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	cblock, _ := pem.Decode(certPEM)
	if cblock == nil || cblock.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load CA: %s is not a PEM certificate", cp)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load CA: %s: %w", cp, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("load CA: %s is not a CA certificate", cp)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("load CA: %s does not match the certificate %s", kp, cp)
	}
	return &CA{dir: dir, cert: cert, key: key}, nil
}

// LoadOrInit loads the CA in dir, or creates it (created: true) if dir holds none.
func LoadOrInit(dir, name string) (*CA, bool, error) {
	if _, err := os.Lstat(filepath.Join(dir, keyFile)); errors.Is(err, fs.ErrNotExist) {
		ca, err := Init(dir, name)
		return ca, err == nil, err
	}
	ca, err := Load(dir)
	return ca, false, err
}

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a pool holding the CA's certificate only.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Fingerprint returns the SHA-256 of the CA certificate (DER), in lower-case hex.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert.Raw) }

// randomSerial returns a random 128-bit serial number.
func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// writeNew writes a new file with data and perm, durably, refusing to replace one.
func writeNew(p string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(p)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = os.Remove(p)
		return err
	}
	return f.Close()
}
