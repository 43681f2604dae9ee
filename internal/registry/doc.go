// Package registry is the server's state: the nodes that asked to enroll and what the
// operator decided about them, the bootstrap tokens that let a batch of machines enroll
// without an operator, and the run reports the nodes upload.
//
// # Model
//
// This package holds only the types and the [Store] interface; implementations live in
// sub-packages (registry/sqlite now, PostgreSQL later), and every implementation must pass
// the conformance suite in registry/registrytest. The interface is deliberately narrow —
// a handful of operations with exact contracts, no query language, no transactions
// leaking out — so a second backend can follow without touching the server's handlers.
//
// A [Node] is keyed by its name. [Store.PutPendingNode] records an enrollment request:
// a new name becomes a pending node; the same name with the same key fingerprint again
// (an agent retrying) refreshes the node's facts, machine ID and last-seen time and leaves
// its state alone; the same name with a different key is refused with [ErrExists], since a
// node name already enrolled with another key is re-keyed only by an operator (forget,
// then enroll again). [Store.SetNodeState] approves or revokes. Two machines cloned from
// one image report the same machine ID: [Store.FindByMachineID] finds them.
//
// A [Token] is a bootstrap credential with a number of uses and an optional expiry.
// [Store.UseToken] checks and spends one use atomically: under any number of concurrent
// enrollments a token with N uses admits exactly N. A refused use is an [*TokenError]
// that matches [ErrTokenInvalid] with [errors.Is] and names the reason (unknown, revoked,
// expired, used up), for the server's log; what the client is told is the server's call.
//
// # Token IDs are stored hashed
//
// A token's ID is the secret an operator hands to the warehouse. The store keeps only its
// SHA-256 ([TokenHash]), never the ID, so a copy of the database (a backup, a disk sent
// for repair) holds nothing that enrolls a machine. A plain hash is enough, without salt
// or a slow key-derivation function, because token IDs are random with at least 128 bits
// of entropy: there is no dictionary to try. A consequence is that the ID is shown once,
// at creation; afterwards a token is named by its hash ([Token.Hash]), which
// [Store.ListTokens] returns and [Store.RevokeToken] takes.
//
// A [Report] is a node's run report, keyed by (node, report ID): the agent names each
// report when it spools it, so an upload retried after a lost response, or a spool
// drained twice, is stored once. [Store.PutReport] says whether it stored the report.
//
// # Times
//
// Times are stored to the microsecond (what PostgreSQL keeps) and come back in UTC; the
// zero time is stored as the zero time. The store never reads the clock: callers pass
// every time in, so the server's handlers and the tests decide what "now" is.
package registry
