package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to version i+1. Append only: a released
// migration is never edited.
var migrations = []string{
	// 1: nodes, tokens, reports.
	`CREATE TABLE nodes (
		name            TEXT PRIMARY KEY,
		state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'revoked')),
		key_fingerprint TEXT NOT NULL,
		machine_id      TEXT NOT NULL,
		enrolled        INTEGER NOT NULL,
		last_seen       INTEGER NOT NULL,
		facts           BLOB,
		cert_serial     TEXT NOT NULL,
		token_label     TEXT NOT NULL
	) STRICT;
	CREATE INDEX nodes_machine_id ON nodes (machine_id) WHERE machine_id <> '';
	CREATE TABLE tokens (
		hash      TEXT PRIMARY KEY,
		label     TEXT NOT NULL,
		uses_left INTEGER NOT NULL,
		expires   INTEGER NOT NULL,
		created   INTEGER NOT NULL,
		revoked   INTEGER NOT NULL
	) STRICT;
	CREATE TABLE reports (
		seq      INTEGER PRIMARY KEY,
		node     TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
		id       TEXT NOT NULL,
		received INTEGER NOT NULL,
		outcome  TEXT NOT NULL,
		release  INTEGER NOT NULL,
		body     BLOB,
		UNIQUE (node, id)
	) STRICT;
	CREATE INDEX reports_newest ON reports (node, received DESC, seq DESC);`,
	// 2: the node's age recipient; nodes found by key.
	`ALTER TABLE nodes ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
	CREATE INDEX nodes_key_fingerprint ON nodes (key_fingerprint);`,
	// 3: returns collected from USB sticks.
	`ALTER TABLE nodes ADD COLUMN returns_seq INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE nodes ADD COLUMN last_returns INTEGER NOT NULL DEFAULT 0;`,
	// 4: the number of the facts stored (PutFacts).
	`ALTER TABLE nodes ADD COLUMN facts_seq INTEGER NOT NULL DEFAULT 0;`,
	// 5: nodes by release, day by day (the dashboard's chart).
	`CREATE TABLE release_history (
		day     INTEGER NOT NULL,
		release INTEGER NOT NULL,
		nodes   INTEGER NOT NULL,
		PRIMARY KEY (day, release)
	) STRICT;`,
}

// migrate brings the schema to the latest version, in one transaction.
func (s *Store) migrate(ctx context.Context) error {
	return s.write(ctx, "migrate schema", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program's %d: run a newer satchel", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v)
		return err
	})
}
