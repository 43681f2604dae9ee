// Package sqlite is the registry.Store kept in one SQLite database file (the server's
// default: DIR/state.db), through modernc.org/sqlite, a pure-Go SQLite, so the server
// stays one static binary.
//
// # Model
//
// The database runs in WAL mode: readers never wait for the writer and the writer never
// waits for readers, and a crash loses at most the transactions not yet committed. Each
// connection sets a busy timeout (another process holding the write lock — a backup, an
// operator's sqlite3 shell — is waited for, not failed on) and turns foreign keys on, so
// forgetting a node removes its reports.
//
// SQLite has one writer at a time. The store keeps one connection pool for readers and
// writers alike, and lets one write transaction run at a time in this process (a lock that
// honours the context, so a handler whose client went away stops waiting); every write
// transaction begins IMMEDIATE, taking SQLite's write lock at BEGIN rather than at its
// first write. A token use — read the token, check it, spend a use — is therefore one
// serialized transaction, and concurrent uses of an N-use token admit exactly N.
//
// # Schema
//
// Table schema_version records the schema's version; [Open] applies the migrations the
// file has not had yet, each in the transaction that records it, and refuses a file whose
// version is newer than this program knows. Version 2 (the second migration added
// recipient and the index on key_fingerprint):
//
//	nodes    (name PK, state, key_fingerprint, machine_id, enrolled, last_seen, facts,
//	          cert_serial, token_label, recipient)      indexes on machine_id, key_fingerprint
//	tokens   (hash PK, label, uses_left, expires, created, revoked)
//	reports  (seq PK, node → nodes ON DELETE CASCADE, id, received, outcome, release,
//	          body, UNIQUE (node, id))                  index on (node, received, seq)
//
// Times are INTEGER microseconds since 1970 UTC, 0 for the zero time. Token IDs are
// stored as their SHA-256 (see package registry). A report's release is stored in a signed
// 64-bit integer, bit for bit.
//
// Every error names the database file and the operation, e.g.
// "state database /srv/satchel/state.db: get node \"web1\": not found".
package sqlite
