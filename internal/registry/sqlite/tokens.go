package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

const tokenColumns = `hash, label, uses_left, expires, created, revoked`

// CreateToken stores a new token under its ID's hash.
func (s *Store) CreateToken(ctx context.Context, t registry.Token) error {
	op := fmt.Sprintf("create token %q", t.Label)
	if err := t.Check(); err != nil {
		return s.errorf(op, err)
	}
	hash := registry.TokenHash(t.ID)
	return s.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
			hash, t.Label, t.UsesLeft, micros(t.Expires), micros(t.Created), t.Revoked)
		err = oneRow(res, err)
		if errors.Is(err, registry.ErrNotFound) { // the insert did nothing: the hash is taken
			return registry.ErrExists
		}
		return err
	})
}

// UseToken spends one use of a token, in one serialized transaction.
func (s *Store) UseToken(ctx context.Context, id string, now time.Time) (registry.Token, error) {
	hash := registry.TokenHash(id)
	var t registry.Token
	// The token's label is not known before it is read: name it by a prefix of its hash.
	err := s.write(ctx, fmt.Sprintf("use token %.12s", hash), func(tx *sql.Tx) error {
		var err error
		t, err = useToken(ctx, tx, id, now)
		return err
	})
	if err != nil {
		return registry.Token{}, err
	}
	return t, nil
}

// useToken spends one use of a token within tx.
func useToken(ctx context.Context, tx *sql.Tx, id string, now time.Time) (registry.Token, error) {
	hash := registry.TokenHash(id)
	tokens, err := queryTokens(ctx, tx, `WHERE hash = ?`, hash)
	if err != nil {
		return registry.Token{}, err
	}
	if len(tokens) == 0 {
		return registry.Token{}, &registry.TokenError{Reason: registry.TokenUnknown}
	}
	t := tokens[0]
	if reason := t.Refusal(now); reason != "" {
		return registry.Token{}, &registry.TokenError{Reason: reason}
	}
	t.UsesLeft--
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET uses_left = ? WHERE hash = ?`, t.UsesLeft, hash); err != nil {
		return registry.Token{}, err
	}
	t.ID = id
	return t, nil
}

// ListTokens returns every token by creation time.
func (s *Store) ListTokens(ctx context.Context) ([]registry.Token, error) {
	tokens, err := queryTokens(ctx, s.db, ``)
	if err != nil {
		return nil, s.errorf("list tokens", err)
	}
	return tokens, nil
}

// RevokeToken revokes the token with that hash.
func (s *Store) RevokeToken(ctx context.Context, hash string) error {
	return s.write(ctx, fmt.Sprintf("revoke token %.12s", hash), func(tx *sql.Tx) error {
		return oneRow(tx.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE hash = ?`, hash))
	})
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryTokens(ctx context.Context, q querier, where string, args ...any) ([]registry.Token, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens `+where+` ORDER BY created, hash`, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err reports what matters
	var tokens []registry.Token
	for rows.Next() {
		var t registry.Token
		var expires, created int64
		if err := rows.Scan(&t.Hash, &t.Label, &t.UsesLeft, &expires, &created, &t.Revoked); err != nil {
			return nil, err
		}
		t.Expires, t.Created = fromMicros(expires), fromMicros(created)
		tokens = append(tokens, t)
	}
	return tokens, rows.Err()
}
