package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Fingerprint returns the SHA-256 of der (a certificate, a public key), lower-case hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ShortFingerprint returns the first 16 bytes of the SHA-256 of der as 8 groups of 4 hex
// digits ("3f2a-91c0-…"): short enough for an operator to compare on two screens, long
// enough (128 bits) that a forged key cannot match it.
func ShortFingerprint(der []byte) string {
	return Shorten(Fingerprint(der))
}

// Shorten returns the short form (ShortFingerprint) of a fingerprint in hex (Fingerprint).
// A string shorter than 32 characters is returned as it is.
func Shorten(fingerprint string) string {
	if len(fingerprint) < 32 {
		return fingerprint
	}
	full := fingerprint[:32]
	groups := make([]string, 0, 8)
	for i := 0; i < len(full); i += 4 {
		groups = append(groups, full[i:i+4])
	}
	return strings.Join(groups, "-")
}
