package registry

import (
	"context"
	"time"
)

// Store is the server's state. Implementations are safe for concurrent use, and pass
// registrytest.Run. Every error for a missing node or token matches ErrNotFound.
type Store interface {
	// PutPendingNode records an enrollment request. A new name is stored as Pending, with
	// no certificate serial, whatever n.State and n.CertSerial say. The same name with the
	// same key fingerprint again refreshes Facts, MachineID, Recipient and LastSeen and keeps the
	// rest, state included. The same name with another key is ErrExists.
	PutPendingNode(ctx context.Context, n Node) error
	// Enroll records an enrollment request in one step, so that concurrent requests cannot
	// slip between its checks: a machine ID or key another node has is a *CloneError; the
	// name with another key is ErrExists; then, if e.Token is set and the node is new or
	// pending, one use of the token is spent (a refusal is a *TokenError) and the node is
	// approved. A new node is stored as PutPendingNode stores it; a known one (same key)
	// has its facts, machine ID, recipient and last-seen time refreshed. A revoked node is
	// returned as it is, unchanged. Any refusal changes nothing. The token is checked at
	// e.Node.LastSeen, the time of the request. It returns the node as stored (with the
	// token's label if one was spent).
	Enroll(ctx context.Context, e Enrollment) (Node, error)
	// GetNode returns the node by that name, or ErrNotFound.
	GetNode(ctx context.Context, name string) (Node, error)
	// ListNodes returns every node, by name.
	ListNodes(ctx context.Context) ([]Node, error)
	// FleetStatus returns every node, by name, without its facts, with the head of its
	// newest report (nil if none): one look at the whole fleet (the dashboard).
	FleetStatus(ctx context.Context) ([]NodeStatus, error)
	// RecordReleases records how many nodes ran each release on day (a UTC date: its time
	// of day is ignored), replacing what was recorded for that day.
	RecordReleases(ctx context.Context, day time.Time, nodes map[uint64]int) error
	// ReleaseHistory returns what RecordReleases recorded for the days from since on, by
	// day then release.
	ReleaseHistory(ctx context.Context, since time.Time) ([]ReleaseCount, error)
	// SetNodeState approves or revokes a node. A non-empty certSerial replaces the
	// stored one; an empty one keeps it (a revocation keeps the revoked serial on record).
	SetNodeState(ctx context.Context, name string, s NodeState, certSerial string) error
	// RecordCertificate records the serial of a certificate issued to an approved node, in
	// one step with checking that it is approved: a node revoked meanwhile (or pending) is
	// ErrNotApproved, and nothing changes. A missing node is ErrNotFound.
	RecordCertificate(ctx context.Context, name, certSerial string) error
	// FindByMachineID returns the nodes reporting that machine ID, by name. An empty
	// machine ID matches nothing.
	FindByMachineID(ctx context.Context, machineID string) ([]Node, error)
	// FindByKeyFingerprint returns the nodes whose key has that fingerprint, by name. An
	// empty fingerprint matches nothing.
	FindByKeyFingerprint(ctx context.Context, fingerprint string) ([]Node, error)
	// ForgetNode removes a node and its reports, or returns ErrNotFound.
	ForgetNode(ctx context.Context, name string) error
	// TouchNode sets the node's last-seen time and, if facts is not nil, its facts.
	TouchNode(ctx context.Context, name string, seen time.Time, facts []byte) error
	// PutFacts sets the node's last-seen time, and its facts unless the node numbered
	// them (seq > 0) no higher than facts already stored: facts a node sent over the
	// network and facts a stick brought back are taken newest first whatever order they
	// arrive in. It reports whether the facts were stored. ErrNotFound if no such node.
	PutFacts(ctx context.Context, name string, seen time.Time, facts []byte, seq uint64) (stored bool, err error)
	// RecordReturns records returns numbered seq collected from the node at collected,
	// if seq is above the node's ReturnsSeq, with their facts (numbered factsSeq, as
	// PutFacts takes them) if not nil; it reports whether it recorded them: returns
	// collected twice, or older than some already collected, change nothing. ErrNotFound
	// if there is no such node.
	RecordReturns(ctx context.Context, name string, seq uint64, collected time.Time, facts []byte, factsSeq uint64) (recorded bool, err error)

	// CreateToken stores a new token under TokenHash(t.ID); ErrExists if that ID exists.
	CreateToken(ctx context.Context, t Token) error
	// UseToken spends one use of the token with that ID at now and returns it as it is
	// after the use. A revoked, expired, used-up or unknown token is a *TokenError (which
	// matches ErrTokenInvalid) and changes nothing. Concurrent uses never exceed the count.
	UseToken(ctx context.Context, id string, now time.Time) (Token, error)
	// ListTokens returns every token, revoked and used-up ones included, by creation time
	// then hash. Their IDs are empty.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the token with that hash (Token.Hash), or returns ErrNotFound.
	// Revoking a revoked token is not an error.
	RevokeToken(ctx context.Context, hash string) error

	// PutReport stores a report unless one with the same (Node, ID) is stored already: a
	// replay returns stored=false and changes nothing. The node must exist (ErrNotFound).
	PutReport(ctx context.Context, r Report) (stored bool, err error)
	// ListReports returns the node's newest reports first (by Received, then by the order
	// they were stored), at most limit of them if limit > 0. ErrNotFound if there is no
	// such node.
	ListReports(ctx context.Context, node string, limit int) ([]Report, error)
	// ListReportHeads is ListReports without the reports' bodies.
	ListReportHeads(ctx context.Context, node string, limit int) ([]Report, error)
	// PruneReports removes the reports the retention does not keep, of one node or, for
	// node "", of every node, and returns how many it removed. Each node's newest report
	// is always kept. A node with no reports, or no such node, is not an error.
	PruneReports(ctx context.Context, node string, keep Retention) (removed int, err error)

	// Close releases the store. Nothing may be called after it.
	Close() error
}
