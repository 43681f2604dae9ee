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
	// ErrNotApproved: the node is not approved (pending, or revoked meanwhile).
	ErrNotApproved = errors.New("not approved")
	// ErrClone: an enrollment presents a machine ID or key that another node has. The
	// error is a *CloneError naming the node.
	ErrClone = errors.New("clone of another node")
)

// CloneError is an enrollment refused because another node has the same machine ID or
// key. It matches ErrClone.
type CloneError struct {
	Other string // the node that has it
	Key   bool   // the key is the same (else the machine ID)
}

func (e *CloneError) Error() string {
	what := "machine ID"
	if e.Key {
		what = "key"
	}
	return fmt.Sprintf("node %s has the same %s", e.Other, what)
}

// Is makes a *CloneError match ErrClone.
func (e *CloneError) Is(target error) bool { return target == ErrClone }

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
