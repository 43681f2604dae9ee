package registry

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no node, token or report by that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: the name or ID is taken (a node name enrolled with another key, a token ID
	// created twice).
	ErrExists = errors.New("already exists")
	// ErrTokenInvalid: a bootstrap token that cannot be used. The error is a *TokenError
	// naming the reason.
	ErrTokenInvalid = errors.New("token invalid")
)

// TokenReason says why a token was refused.
type TokenReason string

// The reasons a token is refused.
const (
	TokenUnknown TokenReason = "unknown"
	TokenRevoked TokenReason = "revoked"
	TokenExpired TokenReason = "expired"
	TokenUsedUp  TokenReason = "used up"
)

// TokenError is a refused token use. It matches ErrTokenInvalid.
type TokenError struct {
	Reason TokenReason
}

func (e *TokenError) Error() string { return fmt.Sprintf("%v: %s", ErrTokenInvalid, e.Reason) }

// Is reports whether target is ErrTokenInvalid.
func (e *TokenError) Is(target error) bool { return target == ErrTokenInvalid }
