package bundle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Errors a bundle is refused with; the error says which file and why.
var (
	// ErrForeign: the bundle was signed under another fleet's CA.
	ErrForeign = errors.New("made for another fleet")
	// ErrDamaged: a signature or a hash does not match, a file is missing or truncated:
	// the stick was modified or damaged.
	ErrDamaged = errors.New("damaged or modified")
)

// envelope is a signed document as it is written: the document's bytes exactly as they
// were signed, the signature (ECDSA over SHA-256, ASN.1), and the signer: a certificate
// chain (an index) or a public key (returns).
type envelope struct {
	Signed    []byte   `json:"signed"`
	Signature []byte   `json:"signature"`
	Chain     [][]byte `json:"chain,omitempty"`      // the signer's certificate first, the CA's last
	PublicKey []byte   `json:"public_key,omitempty"` // PKIX, DER
}

func sign(doc any, key crypto.Signer) (env envelope, err error) {
	env.Signed, err = json.Marshal(doc)
	if err != nil {
		return env, err
	}
	digest := sha256.Sum256(env.Signed)
	env.Signature, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return env, fmt.Errorf("sign: %w", err)
	}
	return env, nil
}

func verify(pub crypto.PublicKey, data, sig []byte) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("a %T key: want ECDSA: %w", pub, ErrDamaged)
	}
	digest := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(k, digest[:], sig) {
		return fmt.Errorf("the signature does not verify: %w", ErrDamaged)
	}
	return nil
}

func decodeEnvelope(data []byte, what string) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("%s: %v: %w", what, err, ErrDamaged)
	}
	if len(env.Signed) == 0 || len(env.Signature) == 0 {
		return env, fmt.Errorf("%s: not signed: %w", what, ErrDamaged)
	}
	return env, nil
}

// SignIndex signs ix with key, whose certificate chain (its own first, the CA's last) it
// carries, and returns the file to write as IndexFile.
func SignIndex(ix *Index, key crypto.Signer, chain [][]byte) ([]byte, error) {
	if err := ix.Check(); err != nil {
		return nil, err
	}
	env, err := sign(ix, key)
	if err != nil {
		return nil, err
	}
	env.Chain = chain
	return json.MarshalIndent(env, "", "  ")
}

// OpenIndex checks a signed index: its chain must end in the CA whose certificate has
// the fingerprint caFingerprint (ErrForeign otherwise), and the index must be signed by
// the chain's first certificate (ErrDamaged otherwise). It returns the index and its
// signer. The certificates' validity periods are not checked: a stick may travel for
// months, and what may be applied is decided by the release's own signatures.
func OpenIndex(data []byte, caFingerprint string) (*Index, *x509.Certificate, error) {
	env, err := decodeEnvelope(data, IndexFile)
	if err != nil {
		return nil, nil, err
	}
	if len(env.Chain) < 2 {
		return nil, nil, fmt.Errorf("%s: %d certificates: want the signer's and the CA's: %w", IndexFile, len(env.Chain), ErrDamaged)
	}
	certs := make([]*x509.Certificate, len(env.Chain))
	for i, der := range env.Chain {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, nil, fmt.Errorf("%s: certificate %d: %v: %w", IndexFile, i, err, ErrDamaged)
		}
	}
	ca := certs[len(certs)-1]
	if got := fingerprint(ca.Raw); got != caFingerprint {
		return nil, nil, fmt.Errorf("%s: signed under the CA %s, and this node's is %s: %w", IndexFile, got[:16], short(caFingerprint), ErrForeign)
	}
	leaf := certs[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: leaf.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if len(certs) == 2 && leaf.Equal(ca) {
		return nil, nil, fmt.Errorf("%s: signed by the CA's own key: want a certificate it issued: %w", IndexFile, ErrDamaged)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, nil, fmt.Errorf("%s: the signer's certificate: %v: %w", IndexFile, err, ErrDamaged)
	}
	if err := verify(leaf.PublicKey, env.Signed, env.Signature); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	ix, err := decodeIndex(env.Signed)
	if err != nil {
		return nil, nil, err
	}
	ix.signedSum = fingerprint(env.Signed)
	return ix, leaf, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
