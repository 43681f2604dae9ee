package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/registry/registrytest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Store {
		return open(t, filepath.Join(t.TempDir(), "state.db"))
	})
}

func TestWAL(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := context.Background()
	// Every connection of the pool, not just the first: hold several at once.
	for i := range 3 {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, tc := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"busy_timeout", "10000"},
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, tc.pragma, got, tc.want)
			}
		}
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	now := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	n := registry.Node{Name: "web1", KeyFingerprint: "k1", MachineID: "m1", Enrolled: now, LastSeen: now, Facts: []byte(`{}`)}
	if err := s.PutPendingNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNodeState(ctx, "web1", registry.Approved, "1f"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, registry.Token{ID: "secret", Label: "batch", UsesLeft: 2, Created: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseToken(ctx, "secret", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutReport(ctx, registry.Report{Node: "web1", ID: "r1", Received: now, Outcome: "ok", Release: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	got, err := s.GetNode(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != registry.Approved || got.CertSerial != "1f" || !got.Enrolled.Equal(now) || string(got.Facts) != `{}` {
		t.Errorf("node after reopening: %+v", got)
	}
	tokens, err := s.ListTokens(ctx)
	if err != nil || len(tokens) != 1 || tokens[0].UsesLeft != 1 {
		t.Errorf("tokens after reopening: %+v, %v", tokens, err)
	}
	if stored, err := s.PutReport(ctx, registry.Report{Node: "web1", ID: "r1", Received: now}); err != nil || stored {
		t.Errorf("a replay after reopening: PutReport = %v, %v; want not stored", stored, err)
	}
	if reports, err := s.ListReports(ctx, "web1", 0); err != nil || len(reports) != 1 || reports[0].Release != 3 {
		t.Errorf("reports after reopening: %+v, %v", reports, err)
	}
}

// The database file holds no token ID, only its hash.
func TestTokenIDNotStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const id = "tok-7d3f9a1b2c4e6f80"
	if err := s.CreateToken(ctx, registry.Token{ID: id, Label: "batch", UsesLeft: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), id) {
			t.Errorf("%s holds the token ID", f)
		}
	}
}

func TestDamaged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data func(t *testing.T, path string) []byte
		want string
	}{
		{"garbage", func(*testing.T, string) []byte {
			return []byte(strings.Repeat("not a database, a text file that landed here\n", 200))
		}, "not a SQLite database or is damaged"},
		{"truncated header", func(t *testing.T, path string) []byte {
			return validDB(t, path)[:50]
		}, "not a SQLite database or is damaged"},
		{"newer schema", func(t *testing.T, path string) []byte {
			s := open(t, path)
			if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
				t.Fatal(err)
			}
			s.Close()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}, "schema version 99 is newer than this program's " + strconv.Itoa(len(migrations))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".db")
			data := tc.data(t, path)
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(f)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tc.want) {
				t.Errorf("Open: %v\nwant the path and %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func validDB(t *testing.T, path string) []byte {
	t.Helper()
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		filepath.Join(t.TempDir(), "no", "such", "dir", "state.db"),
		filepath.Join(t.TempDir(), "what?.db"),
	} {
		s, err := Open(path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q): %v: does not name the file", path, err)
		}
	}
}

func TestCanceledWrite(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	ctx, cancel := context.WithCancel(context.Background())
	s.writer <- struct{}{} // another write holds the lock
	cancel()
	err := s.CreateToken(ctx, registry.Token{ID: "x", UsesLeft: 1})
	<-s.writer
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a write whose context ended while waiting: %v", err)
	}
}
