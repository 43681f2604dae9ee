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
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"syscall"
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

// Init creates a CA named name in dir, which must be absent or empty; its parent is
// created (mode 0700) if missing. It refuses a directory that holds a CA key already
// (ErrExists): a CA is never replaced, as every node pins it.
//
// The CA is written whole or not at all: both files are written and flushed in a staging
// directory next to dir (named ".tmp-ca-*", safe to remove if a crash leaves one behind),
// which is then renamed to dir. A rename onto a non-empty directory fails, so Init never
// overwrites anything, and of two Inits racing for one directory only one wins.
func Init(dir, name string) (*CA, error) {
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := writeDir(dir, map[string]fileData{
		keyFile:  {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		certFile: {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644},
	}); err != nil {
		return nil, fmt.Errorf("init CA in %s: %w", dir, err)
	}
	return &CA{dir: dir, cert: cert, key: key}, nil
}

// Load reads the CA in dir.
func Load(dir string) (*CA, error) {
	kp := filepath.Join(dir, keyFile)
	keyPEM, err := readPrivate(kp)
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

// readPrivate reads the private file p, refusing it if its group or others have any
// access: the mode is checked on the file opened, not on a name that may change under us.
func readPrivate(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o, open to group or others: run chmod 600 %s", p, perm, p)
	}
	return io.ReadAll(f)
}

// fileData is the content and mode of a file writeDir writes.
type fileData struct {
	data []byte
	perm fs.FileMode
}

// writeDir creates dir (mode 0700, absent or empty before) holding files, durably and
// atomically: they are written and flushed in a staging directory beside dir, which is
// then renamed to dir and the parent flushed. An existing dir with a CA key in it gives
// ErrExists; one with anything else in it, an error saying so.
func writeDir(dir string, files map[string]fileData) (err error) {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(parent, ".tmp-ca-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o700); err != nil {
		return err
	}
	for name, fd := range files {
		if err := writeSynced(filepath.Join(stage, name), fd.data, fd.perm); err != nil {
			return err
		}
	}
	if err := syncDir(stage); err != nil {
		return err
	}
	// os.Rename refuses any existing target directory, empty or not; rmdir removes only
	// an empty one (never a file, never a CA), so an empty dir gives way to the staged one.
	// Between the two, a rival Init may take dir: then the rename finds it not empty.
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return notEmpty(dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return notEmpty(dir, err)
	}
	return syncDir(parent)
}

// notEmpty explains why dir cannot become a CA directory: it holds a CA already
// (ErrExists) or something else (err).
func notEmpty(dir string, err error) error {
	if _, serr := os.Lstat(filepath.Join(dir, keyFile)); serr == nil {
		return ErrExists
	}
	return fmt.Errorf("%s must be absent or an empty directory: %w", dir, err)
}

// writeSynced writes a new file p with data and perm, flushed to disk.
func writeSynced(p string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir flushes the directory dir, so that the entries created or renamed in it survive
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
