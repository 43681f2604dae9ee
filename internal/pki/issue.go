package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// nodeURIScheme prefixes the node name in a node certificate's URI SAN.
const nodeURIScheme = "satchel-node"

var nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// CheckNodeName reports whether name can name a node: 1 to 63 characters, lower-case
// letters, digits, dots and dashes, starting with a letter or digit.
func CheckNodeName(name string) error {
	if !nodeNameRE.MatchString(name) {
		return fmt.Errorf("node name %q: want 1 to 63 lower-case letters, digits, dots and dashes, starting with a letter or digit", name)
	}
	return nil
}

// NewNodeKey returns a new key for a node's TLS certificate.
func NewNodeKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// NewCSR returns a certificate signing request (DER) for node, signed by key.
func NewCSR(key crypto.Signer, node string) ([]byte, error) {
	if err := CheckNodeName(node); err != nil {
		return nil, err
	}
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: node}}, key)
}

// SignNode issues a client certificate for node (the name the server decided; the
// request's own subject is not trusted) to the key of the request csrDER, whose signature
// is checked. It is valid for validity from now, and from 5 minutes ago (clock skew).
func (ca *CA) SignNode(csrDER []byte, node string, validity time.Duration) ([]byte, error) {
	if err := CheckNodeName(node); err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("sign %s: validity %v: want a positive duration", node, validity)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("sign %s: the request is not a certificate request: %w", node, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign %s: the request's signature does not verify: %w", node, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: node},
		URIs:         []*url.URL{{Scheme: nodeURIScheme, Opaque: node}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", node, err)
	}
	return der, nil
}

// IssueServer issues the server's certificate, for hosts (DNS names and IP addresses),
// with a new key.
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("issue the server certificate: no host name or address to issue it for")
	}
	if validity <= 0 {
		return tls.Certificate{}, fmt.Errorf("issue the server certificate: validity %v: want a positive duration", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "satchel server"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if h == "" {
			return tls.Certificate{}, errors.New("issue the server certificate: an empty host name")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue the server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// NodeName returns the node name a node certificate carries: its one URI SAN
// "satchel-node:NAME". The CommonName is not read: it is for people. A certificate with no
// such URI, with two, or with a malformed name is an error.
func NodeName(cert *x509.Certificate) (string, error) {
	name := ""
	for _, u := range cert.URIs {
		if u.Scheme != nodeURIScheme {
			continue
		}
		if name != "" {
			return "", fmt.Errorf("certificate %q names more than one node", cert.Subject.CommonName)
		}
		if err := CheckNodeName(u.Opaque); err != nil {
			return "", fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, err)
		}
		if u.String() != nodeURIScheme+":"+u.Opaque {
			return "", fmt.Errorf("certificate %q: malformed node URI %q", cert.Subject.CommonName, u.String())
		}
		name = u.Opaque
	}
	if name == "" {
		return "", fmt.Errorf("certificate %q names no node (no %s: URI)", cert.Subject.CommonName, nodeURIScheme)
	}
	return name, nil
}

// VerifyNode checks that cert chains to ca, is for client authentication and is valid at
// now, and returns the node it names.
func (ca *CA) VerifyNode(cert *x509.Certificate, now time.Time) (string, error) {
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", fmt.Errorf("node certificate %q: %w", cert.Subject.CommonName, err)
	}
	return NodeName(cert)
}

// ServerConfig returns the server's TLS configuration: its certificate, and client
// certificates required and verified against the CA.
func (ca *CA) ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
}

// PinnedServerConfig returns an agent's TLS configuration for a server whose CA has the
// fingerprint caFingerprint (Fingerprint): the server's chain must end in a certificate
// with exactly that fingerprint; the system's roots play no part. The host name is not
// checked against the certificate: the pin is the trust.
func PinnedServerConfig(caFingerprint string) *tls.Config {
	want := strings.ToLower(caFingerprint)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) < 2 {
				return fmt.Errorf("the server sent %d certificates: want its own and its CA's", len(cs.PeerCertificates))
			}
			root := cs.PeerCertificates[len(cs.PeerCertificates)-1]
			if got := Fingerprint(root.Raw); got != want {
				return fmt.Errorf("the server's CA has fingerprint %s, not the pinned %s: refusing it", got, want)
			}
			pool := x509.NewCertPool()
			pool.AddCert(root)
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1 : len(cs.PeerCertificates)-1] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil {
				return fmt.Errorf("the server's certificate: %w", err)
			}
			return nil
		},
	}
}
