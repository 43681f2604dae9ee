package registry

import (
	"fmt"
	"time"
)

// NodeState is where a node is in enrollment.
type NodeState string

// The states of a node.
const (
	// Pending: the node asked to enroll and waits for an operator (or was just admitted by a
	// token and waits for the server to record its certificate).
	Pending NodeState = "pending"
	// Approved: the node holds a certificate and may use the node endpoints.
	Approved NodeState = "approved"
	// Revoked: the node's certificate is refused from its next request on.
	Revoked NodeState = "revoked"
)

// Valid reports whether s is one of the three states.
func (s NodeState) Valid() bool {
	return s == Pending || s == Approved || s == Revoked
}

// Node is one enrolled or enrolling machine.
type Node struct {
	Name           string
	State          NodeState
	KeyFingerprint string // SHA-256 hex of the node's public key
	MachineID      string // /etc/machine-id or the like; "" if the node has none
	Enrolled       time.Time
	LastSeen       time.Time
	Facts          []byte // JSON, as the node reported it
	CertSerial     string // the serial of the certificate issued at approval
	TokenLabel     string // the label of the token it enrolled with, if any
	// Recipient is the node's age X25519 recipient ("age1…"): what its secrets are
	// encrypted to. "" if the node sent none.
	Recipient string
	// ReturnsSeq is the sequence number of the newest returns collected from the node (a
	// USB stick, package bundle), 0 if none; LastReturns is when they were collected.
	ReturnsSeq  uint64
	LastReturns time.Time
}

// Check reports what is missing from an enrollment request.
func (n Node) Check() error {
	if n.Name == "" {
		return fmt.Errorf("node has no name")
	}
	if n.KeyFingerprint == "" {
		return fmt.Errorf("node %q has no key fingerprint", n.Name)
	}
	return nil
}

// Enrollment is an enrollment request as the store records it (Store.Enroll).
type Enrollment struct {
	// Node is the request: Name, KeyFingerprint, MachineID, Facts, Recipient, and
	// Enrolled and LastSeen set to the time of the request. State and CertSerial are
	// ignored; TokenLabel is set from the token.
	Node Node
	// Token is a bootstrap token's ID, or "".
	Token string
}
