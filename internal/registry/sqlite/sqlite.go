package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/satchelcm/satchel/internal/registry"
)

// busyTimeout is how long a connection waits for another process's write lock.
const busyTimeout = 10 * time.Second

// Store is a registry.Store in one SQLite database file.
type Store struct {
	path string
	db   *sql.DB
	// writer is a one-slot semaphore: the one write transaction this process runs.
	writer chan struct{}
}

// Open opens the database at path, creating it if need be, and brings its schema up to
// date. A file that is not a SQLite database, or a damaged one, is an error that says so.
func Open(path string) (*Store, error) {
	s := &Store{path: path, writer: make(chan struct{}, 1)}
	if strings.ContainsAny(path, "?#") {
		return nil, s.errorf("open", fmt.Errorf("the path may not contain '?' or '#'"))
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)") // in WAL mode: durable across crashes of the process, and of the machine up to the last checkpoint
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, s.errorf("open", err)
	}
	// Readers run in parallel under WAL; writers take turns on s.writer, so more
	// connections than CPUs buys nothing.
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	s.db = db
	if err := s.migrate(context.Background()); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return s.errorf("close", err)
	}
	return nil
}

// errorf names the database and the operation, and explains a damaged file.
func (s *Store) errorf(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			err = fmt.Errorf("%w (the file is not a SQLite database or is damaged: restore it from a backup, or move it away to start with an empty registry)", err)
		}
	}
	return fmt.Errorf("state database %s: %s: %w", s.path, op, err)
}

// write runs fn in a write transaction (BEGIN IMMEDIATE), one at a time, and commits it
// if fn returns nil.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return s.errorf(op, ctx.Err())
	}
	defer func() { <-s.writer }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.errorf(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.errorf(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.errorf(op, err)
	}
	return nil
}

// micros is t as stored: microseconds since 1970, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

var _ registry.Store = (*Store)(nil)
