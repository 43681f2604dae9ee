package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

// day is the UTC midnight of t, in micros.
func day(t time.Time) int64 {
	y, m, d := t.UTC().Date()
	return micros(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

// RecordReleases replaces the counts of the day.
func (s *Store) RecordReleases(ctx context.Context, when time.Time, nodes map[uint64]int) error {
	return s.write(ctx, fmt.Sprintf("record the releases of %s", when.UTC().Format(time.DateOnly)), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM release_history WHERE day = ?`, day(when)); err != nil {
			return err
		}
		for rel, n := range nodes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_history (day, release, nodes) VALUES (?, ?, ?)`, day(when), int64(rel), n); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReleaseHistory returns the counts from since's day on.
func (s *Store) ReleaseHistory(ctx context.Context, since time.Time) ([]registry.ReleaseCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, release, nodes FROM release_history WHERE day >= ? ORDER BY day, release`, day(since))
	if err != nil {
		return nil, s.errorf("release history", err)
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var out []registry.ReleaseCount
	for rows.Next() {
		var d, rel int64
		var c registry.ReleaseCount
		if err := rows.Scan(&d, &rel, &c.Nodes); err != nil {
			return nil, s.errorf("release history", err)
		}
		c.Day, c.Release = fromMicros(d).UTC(), uint64(rel)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("release history", err)
	}
	return out, nil
}
