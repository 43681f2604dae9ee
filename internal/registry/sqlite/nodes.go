package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

const nodeColumns = `name, state, key_fingerprint, machine_id, enrolled, last_seen, facts, cert_serial, token_label, recipient`

// nodeSelect is what queryNodes reads: nodeColumns, and what only updates set.
const nodeSelect = nodeColumns + `, returns_seq, last_returns`

// PutPendingNode records an enrollment request.
func (s *Store) PutPendingNode(ctx context.Context, n registry.Node) error {
	op := fmt.Sprintf("put pending node %q", n.Name)
	if err := n.Check(); err != nil {
		return s.errorf(op, err)
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, `SELECT key_fingerprint FROM nodes WHERE name = ?`, n.Name).Scan(&key)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO nodes (`+nodeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)`,
				n.Name, registry.Pending, n.KeyFingerprint, n.MachineID, micros(n.Enrolled), micros(n.LastSeen), n.Facts, n.TokenLabel, n.Recipient)
			return err
		case err != nil:
			return err
		case key != n.KeyFingerprint:
			return fmt.Errorf("enrolled with another key: %w", registry.ErrExists)
		}
		_, err = tx.ExecContext(ctx, `UPDATE nodes SET facts = ?, machine_id = ?, recipient = ?, last_seen = ? WHERE name = ?`,
			n.Facts, n.MachineID, n.Recipient, micros(n.LastSeen), n.Name)
		return err
	})
}

// Enroll records an enrollment request in one serialized transaction.
func (s *Store) Enroll(ctx context.Context, e registry.Enrollment) (registry.Node, error) {
	n := e.Node
	n.TokenLabel = "" // from the token, if any
	op := fmt.Sprintf("enroll node %q", n.Name)
	if err := n.Check(); err != nil {
		return registry.Node{}, s.errorf(op, err)
	}
	var out registry.Node
	err := s.write(ctx, op, func(tx *sql.Tx) error {
		for _, c := range []struct {
			where string
			arg   string
			key   bool
		}{{`machine_id = ? AND machine_id <> ''`, n.MachineID, false}, {`key_fingerprint = ?`, n.KeyFingerprint, true}} {
			var other string
			err := tx.QueryRowContext(ctx, `SELECT name FROM nodes WHERE `+c.where+` AND name <> ? ORDER BY name LIMIT 1`, c.arg, n.Name).Scan(&other)
			if err == nil {
				return &registry.CloneError{Other: other, Key: c.key}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		existing, err := queryNodes(ctx, tx, `WHERE name = ?`, n.Name)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			out = existing[0]
			switch {
			case out.KeyFingerprint != n.KeyFingerprint:
				return fmt.Errorf("enrolled with another key: %w", registry.ErrExists)
			case out.State == registry.Revoked:
				return nil
			}
		}
		approve := false
		if e.Token != "" && (len(existing) == 0 || out.State == registry.Pending) {
			t, err := useToken(ctx, tx, e.Token, n.LastSeen)
			if err != nil {
				return err
			}
			n.TokenLabel, approve = t.Label, true
		}
		if len(existing) == 0 {
			_, err = tx.ExecContext(ctx, `INSERT INTO nodes (`+nodeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)`,
				n.Name, registry.Pending, n.KeyFingerprint, n.MachineID, micros(n.Enrolled), micros(n.LastSeen), n.Facts, n.TokenLabel, n.Recipient)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE nodes SET facts = ?, machine_id = ?, recipient = ?, last_seen = ?, token_label = CASE WHEN ? THEN ? ELSE token_label END WHERE name = ?`,
				n.Facts, n.MachineID, n.Recipient, micros(n.LastSeen), approve, n.TokenLabel, n.Name)
		}
		if err != nil {
			return err
		}
		if approve {
			if _, err := tx.ExecContext(ctx, `UPDATE nodes SET state = ? WHERE name = ?`, registry.Approved, n.Name); err != nil {
				return err
			}
		}
		nodes, err := queryNodes(ctx, tx, `WHERE name = ?`, n.Name)
		if err != nil {
			return err
		}
		out = nodes[0]
		return nil
	})
	if err != nil {
		return registry.Node{}, err
	}
	return out, nil
}

// GetNode returns a node.
func (s *Store) GetNode(ctx context.Context, name string) (registry.Node, error) {
	nodes, err := s.queryNodes(ctx, `WHERE name = ?`, name)
	if err == nil && len(nodes) == 0 {
		err = registry.ErrNotFound
	}
	if err != nil {
		return registry.Node{}, s.errorf(fmt.Sprintf("get node %q", name), err)
	}
	return nodes[0], nil
}

// ListNodes returns every node by name.
func (s *Store) ListNodes(ctx context.Context) ([]registry.Node, error) {
	nodes, err := s.queryNodes(ctx, ``)
	if err != nil {
		return nil, s.errorf("list nodes", err)
	}
	return nodes, nil
}

// FleetStatus returns every node with the head of its newest report, in one query: the
// newest report of each node is found through the reports_newest index.
func (s *Store) FleetStatus(ctx context.Context) ([]registry.NodeStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT n.name, n.state, n.key_fingerprint, n.machine_id, n.enrolled, n.last_seen,
		n.cert_serial, n.token_label, n.recipient, n.returns_seq, n.last_returns, r.id, r.received, r.outcome, r.release
		FROM nodes n LEFT JOIN reports r ON r.seq = (SELECT seq FROM reports WHERE node = n.name ORDER BY received DESC, seq DESC LIMIT 1)
		ORDER BY n.name`)
	if err != nil {
		return nil, s.errorf("fleet status", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var out []registry.NodeStatus
	for rows.Next() {
		var st registry.NodeStatus
		n := &st.Node
		var enrolled, seen, returnsSeq, lastReturns int64
		var id, outcome sql.NullString
		var received, release sql.NullInt64
		if err := rows.Scan(&n.Name, &n.State, &n.KeyFingerprint, &n.MachineID, &enrolled, &seen, &n.CertSerial, &n.TokenLabel,
			&n.Recipient, &returnsSeq, &lastReturns, &id, &received, &outcome, &release); err != nil {
			return nil, s.errorf("fleet status", err)
		}
		n.Enrolled, n.LastSeen, n.ReturnsSeq = fromMicros(enrolled), fromMicros(seen), uint64(returnsSeq)
		if lastReturns != 0 {
			n.LastReturns = fromMicros(lastReturns)
		}
		if id.Valid {
			st.Last = &registry.Report{Node: n.Name, ID: id.String, Received: fromMicros(received.Int64), Outcome: outcome.String,
				Release: uint64(release.Int64)}
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("fleet status", err)
	}
	return out, nil
}

// FindByMachineID returns the nodes with that machine ID.
func (s *Store) FindByMachineID(ctx context.Context, machineID string) ([]registry.Node, error) {
	if machineID == "" {
		return nil, nil
	}
	nodes, err := s.queryNodes(ctx, `WHERE machine_id = ?`, machineID)
	if err != nil {
		return nil, s.errorf(fmt.Sprintf("find nodes by machine ID %q", machineID), err)
	}
	return nodes, nil
}

// FindByKeyFingerprint returns the nodes whose key has that fingerprint.
func (s *Store) FindByKeyFingerprint(ctx context.Context, fingerprint string) ([]registry.Node, error) {
	if fingerprint == "" {
		return nil, nil
	}
	nodes, err := s.queryNodes(ctx, `WHERE key_fingerprint = ?`, fingerprint)
	if err != nil {
		return nil, s.errorf(fmt.Sprintf("find nodes by key %q", fingerprint), err)
	}
	return nodes, nil
}

// SetNodeState approves or revokes a node.
func (s *Store) SetNodeState(ctx context.Context, name string, state registry.NodeState, certSerial string) error {
	op := fmt.Sprintf("set node %q %s", name, state)
	if !state.Valid() {
		return s.errorf(op, fmt.Errorf("no such state %q", state))
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET state = ?, cert_serial = CASE WHEN ? = '' THEN cert_serial ELSE ? END WHERE name = ?`,
			state, certSerial, certSerial, name)
		return oneRow(res, err)
	})
}

// RecordCertificate records the serial of a certificate issued to an approved node.
func (s *Store) RecordCertificate(ctx context.Context, name, certSerial string) error {
	return s.write(ctx, fmt.Sprintf("record node %q's certificate", name), func(tx *sql.Tx) error {
		var state registry.NodeState
		err := tx.QueryRowContext(ctx, `SELECT state FROM nodes WHERE name = ?`, name).Scan(&state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return registry.ErrNotFound
		case err != nil:
			return err
		case state != registry.Approved:
			return fmt.Errorf("node is %s: %w", state, registry.ErrNotApproved)
		}
		_, err = tx.ExecContext(ctx, `UPDATE nodes SET cert_serial = ? WHERE name = ?`, certSerial, name)
		return err
	})
}

// ForgetNode removes a node and its reports.
func (s *Store) ForgetNode(ctx context.Context, name string) error {
	return s.write(ctx, fmt.Sprintf("forget node %q", name), func(tx *sql.Tx) error {
		return oneRow(tx.ExecContext(ctx, `DELETE FROM nodes WHERE name = ?`, name))
	})
}

// TouchNode records that a node was seen, with its facts if not nil.
func (s *Store) TouchNode(ctx context.Context, name string, seen time.Time, facts []byte) error {
	return s.write(ctx, fmt.Sprintf("touch node %q", name), func(tx *sql.Tx) error {
		return oneRow(tx.ExecContext(ctx, `UPDATE nodes SET last_seen = ?, facts = CASE WHEN ? THEN ? ELSE facts END WHERE name = ?`,
			micros(seen), facts != nil, facts, name))
	})
}

// PutFacts records a node's facts, unless newer ones are stored.
func (s *Store) PutFacts(ctx context.Context, name string, seen time.Time, facts []byte, seq uint64) (bool, error) {
	var stored bool
	err := s.write(ctx, fmt.Sprintf("put the facts of node %q", name), func(tx *sql.Tx) error {
		if err := oneRow(tx.ExecContext(ctx, `UPDATE nodes SET last_seen = ? WHERE name = ?`, micros(seen), name)); err != nil {
			return err
		}
		var err error
		stored, err = putFacts(ctx, tx, name, facts, seq)
		return err
	})
	return stored, err
}

// putFacts stores facts numbered seq unless facts numbered as high are stored (seq 0:
// not numbered, always stored).
func putFacts(ctx context.Context, tx *sql.Tx, name string, facts []byte, seq uint64) (bool, error) {
	if facts == nil {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE nodes SET facts = ?, facts_seq = max(facts_seq, ?) WHERE name = ? AND (? = 0 OR facts_seq < ?)`,
		facts, int64(seq), name, int64(seq), int64(seq))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecordReturns records returns collected from a node, if they are newer than the last.
func (s *Store) RecordReturns(ctx context.Context, name string, seq uint64, collected time.Time, facts []byte, factsSeq uint64) (bool, error) {
	var recorded bool
	err := s.write(ctx, fmt.Sprintf("record returns %d of node %q", seq, name), func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET returns_seq = ?, last_returns = ? WHERE name = ? AND returns_seq < ?`,
			int64(seq), micros(collected), name, int64(seq))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if recorded = n == 1; !recorded || factsSeq == 0 {
			return err
		}
		_, err = putFacts(ctx, tx, name, facts, factsSeq)
		return err
	})
	return recorded, err
}

// queryNodes returns the nodes matching where, by name.
func (s *Store) queryNodes(ctx context.Context, where string, args ...any) ([]registry.Node, error) {
	return queryNodes(ctx, s.db, where, args...)
}

// queryNodes returns the nodes matching where, by name, from a database or a transaction.
func queryNodes(ctx context.Context, q querier, where string, args ...any) ([]registry.Node, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+nodeSelect+` FROM nodes `+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var nodes []registry.Node
	for rows.Next() {
		var n registry.Node
		var enrolled, seen, returnsSeq, lastReturns int64
		if err := rows.Scan(&n.Name, &n.State, &n.KeyFingerprint, &n.MachineID, &enrolled, &seen, &n.Facts, &n.CertSerial, &n.TokenLabel, &n.Recipient,
			&returnsSeq, &lastReturns); err != nil {
			return nil, err
		}
		n.Enrolled, n.LastSeen = fromMicros(enrolled), fromMicros(seen)
		n.ReturnsSeq = uint64(returnsSeq)
		if lastReturns != 0 {
			n.LastReturns = fromMicros(lastReturns)
		}
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

// oneRow turns an update that touched no row into ErrNotFound.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return registry.ErrNotFound
	}
	return nil
}
