package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Token is a bootstrap token: it admits up to UsesLeft enrollments until Expires.
type Token struct {
	// ID is the secret, random and shown once. The store keeps only its hash: tokens read
	// back from a store have an empty ID, except from UseToken, which was given it.
	ID string
	// Hash is TokenHash(ID), the name of the token once created. CreateToken fills it in.
	Hash     string
	Label    string
	UsesLeft int
	Expires  time.Time // the zero time: never
	Created  time.Time
	Revoked  bool
}

// TokenHash is the hex SHA-256 of a token ID: the key a store keeps a token under.
func TokenHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Check reports what is wrong with a token about to be created.
func (t Token) Check() error {
	if t.ID == "" {
		return fmt.Errorf("token has no ID")
	}
	if t.UsesLeft < 1 {
		return fmt.Errorf("token %q: %d uses left, want at least 1", t.Label, t.UsesLeft)
	}
	return nil
}

// Refusal says why the token cannot be used at now, or "" if it can. Expires is the
// first instant the token is no longer valid.
func (t Token) Refusal(now time.Time) TokenReason {
	switch {
	case t.Revoked:
		return TokenRevoked
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return TokenExpired
	case t.UsesLeft < 1:
		return TokenUsedUp
	}
	return ""
}
