package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/satchelcm/satchel/internal/registry"
)

// PutReport stores a report once.
func (s *Store) PutReport(ctx context.Context, r registry.Report) (bool, error) {
	op := fmt.Sprintf("put report %q of node %q", r.ID, r.Node)
	if err := r.Check(); err != nil {
		return false, s.errorf(op, err)
	}
	var stored bool
	err := s.write(ctx, op, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, r.Node); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO reports (node, id, received, outcome, release, body) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (node, id) DO NOTHING`,
			r.Node, r.ID, micros(r.Received), r.Outcome, int64(r.Release), r.Body)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		stored = n == 1
		return err
	})
	return stored, err
}

// ListReports returns a node's newest reports first.
func (s *Store) ListReports(ctx context.Context, node string, limit int) ([]registry.Report, error) {
	return s.listReports(ctx, node, limit, true)
}

// ListReportHeads returns a node's newest reports first, without their bodies.
func (s *Store) ListReportHeads(ctx context.Context, node string, limit int) ([]registry.Report, error) {
	return s.listReports(ctx, node, limit, false)
}

func (s *Store) listReports(ctx context.Context, node string, limit int, bodies bool) ([]registry.Report, error) {
	op := fmt.Sprintf("list reports of node %q", node)
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	body := "NULL"
	if bodies {
		body = "body"
	}
	// One read transaction, so the node check and the reports agree.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.errorf(op, err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to undo
	if err := nodeExists(ctx, tx, node); err != nil {
		return nil, s.errorf(op, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT node, id, received, outcome, release, `+body+` FROM reports
		WHERE node = ? ORDER BY received DESC, seq DESC LIMIT ?`, node, limit)
	if err != nil {
		return nil, s.errorf(op, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var reports []registry.Report
	for rows.Next() {
		var r registry.Report
		var received, release int64
		if err := rows.Scan(&r.Node, &r.ID, &received, &r.Outcome, &release, &r.Body); err != nil {
			return nil, s.errorf(op, err)
		}
		r.Received, r.Release = fromMicros(received), uint64(release)
		reports = append(reports, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf(op, err)
	}
	return reports, nil
}

func nodeExists(ctx context.Context, tx *sql.Tx, name string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM nodes WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("node %q: %w", name, registry.ErrNotFound)
	}
	return err
}

// PruneReports removes, node by node, the reports the retention does not keep. Each
// node's reports are pruned in a transaction of their own, so that report uploads wait
// for one node's deletes at most, not for the whole fleet's.
func (s *Store) PruneReports(ctx context.Context, node string, keep registry.Retention) (int, error) {
	op := "prune reports"
	nodes := []string{node}
	if node == "" {
		var err error
		if nodes, err = s.nodesWithReports(ctx); err != nil {
			return 0, s.errorf(op, err)
		}
	}
	removed := 0
	for _, n := range nodes {
		err := s.write(ctx, fmt.Sprintf("prune reports of node %q", n), func(tx *sql.Tx) error {
			k, err := pruneNode(ctx, tx, n, keep)
			removed += k
			return err
		})
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Store) nodesWithReports(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT node FROM reports`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var nodes []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

// pruneNode removes one node's reports beyond keep; both deletes walk the
// reports_newest index from the node's newest report.
func pruneNode(ctx context.Context, tx *sql.Tx, node string, keep registry.Retention) (int, error) {
	removed := 0
	del := func(query string, args ...any) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		removed += int(n)
		return err
	}
	if keep.Newest > 0 {
		if err := del(`DELETE FROM reports WHERE seq IN (SELECT seq FROM reports WHERE node = ?
			ORDER BY received DESC, seq DESC LIMIT -1 OFFSET ?)`, node, keep.Newest); err != nil {
			return removed, err
		}
	}
	if !keep.Since.IsZero() {
		if err := del(`DELETE FROM reports WHERE seq IN (SELECT seq FROM reports WHERE node = ?
			ORDER BY received DESC, seq DESC LIMIT -1 OFFSET 1) AND received < ?`, node, micros(keep.Since)); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
