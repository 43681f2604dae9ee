package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/satchelcm/satchel/internal/dashboard"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/registry/sqlite"
	"github.com/satchelcm/satchel/internal/release"
)

// Defaults of Config.
const (
	DefaultNodeCertValidity   = 90 * 24 * time.Hour
	DefaultServerCertValidity = 365 * 24 * time.Hour
	DefaultReportsKept        = 100
	DefaultReportMaxAge       = 90 * 24 * time.Hour
	// touchEvery is how stale a node's last-seen time may get before a request updates
	// it: a check-in is a read, not a write, most of the time.
	touchEvery = time.Minute
)

// Config is what a server runs with.
type Config struct {
	// DataDir holds everything the server keeps (see the package documentation).
	DataDir string
	// Hosts are the names and addresses the server's certificate is issued for (for
	// clients other than agents, which pin the CA). Default: localhost and 127.0.0.1.
	Hosts []string
	// NodeCertValidity is how long a node certificate is valid. Default 90 days; agents
	// renew theirs when a third of it is left.
	NodeCertValidity time.Duration
	// ReportsKept is how many of each node's reports the server keeps (its newest), and
	// ReportMaxAge how long it keeps any but a node's newest. Defaults: 100 (two days of
	// runs every half hour) and 90 days; a negative value: no limit.
	ReportsKept  int
	ReportMaxAge time.Duration
	// Log receives the server's structured log. Default: discarded.
	Log *slog.Logger
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Server is a running satchel server's state. Open it, serve its Handler over TLSConfig
// (or call Serve), and Close it after.
type Server struct {
	cfg       Config
	dir       string
	ca        *pki.CA
	store     registry.Store
	repo      *os.Root
	adminHash [sha256.Size]byte
	adminMu   sync.Mutex
	admin     Credential
	cert      tls.Certificate
	log       *slog.Logger
	dash      *dashboard.Dashboard
	metrics   *metrics
}

// Open prepares the data directory — on first start the CA, the state database, the
// release repository with its keys, and the admin credential — and loads it.
func Open(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: no data directory")
	}
	if cfg.NodeCertValidity <= 0 {
		cfg.NodeCertValidity = DefaultNodeCertValidity
	}
	if cfg.ReportsKept == 0 {
		cfg.ReportsKept = DefaultReportsKept
	}
	if cfg.ReportMaxAge == 0 {
		cfg.ReportMaxAge = DefaultReportMaxAge
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"localhost", "127.0.0.1"}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("server: data directory %s: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	if info, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	} else if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("server: data directory %s is open to others and cannot be made 0700: %w", dir, err)
		}
	}
	s := &Server{cfg: cfg, dir: dir, log: cfg.Log}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open() error {
	ca, created, err := pki.LoadOrInit(filepath.Join(s.dir, "ca"), "satchel fleet CA")
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.ca = ca
	if created {
		s.log.Info("created the fleet's CA", "fingerprint", ca.Fingerprint())
	}
	// A failed Open returns a nil *sqlite.Store: keep it out of the interface field, where
	// it would not compare equal to nil and Close would call it.
	store, err := sqlite.Open(filepath.Join(s.dir, "state.db"))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.store = store
	repoDir := filepath.Join(s.dir, "repo")
	if _, err := os.Stat(filepath.Join(repoDir, release.MetadataDir, "root.json")); errors.Is(err, fs.ErrNotExist) {
		if err := release.Init(repoDir, filepath.Join(s.dir, "keys")); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.log.Info("created the release repository", "repo", repoDir, "keys", filepath.Join(s.dir, "keys"))
	} else if err != nil {
		return fmt.Errorf("server: release repository: %w", err)
	}
	if s.repo, err = os.OpenRoot(repoDir); err != nil {
		return fmt.Errorf("server: release repository: %w", err)
	}
	if s.admin, err = loadOrCreateCredential(filepath.Join(s.dir, CredentialFile), ca.Fingerprint()); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.adminHash = sha256.Sum256([]byte(s.admin.Token))
	if s.cert, err = ca.IssueServer(s.cfg.Hosts, DefaultServerCertValidity); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if s.dash, err = s.newDashboard(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.metrics = newMetrics(s)
	return nil
}

// Close releases the database and the repository.
func (s *Server) Close() {
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Error("close the state database", "err", err)
		}
		s.store = nil
	}
	if s.repo != nil {
		s.repo.Close()
		s.repo = nil
	}
}

// CAFingerprint is the fingerprint agents pin (satchel enroll --ca-fingerprint).
func (s *Server) CAFingerprint() string { return s.ca.Fingerprint() }

// RepoDir is the release repository the server serves to nodes.
func (s *Server) RepoDir() string { return filepath.Join(s.dir, "repo") }

// KeysDir holds the repository's signing keys.
func (s *Server) KeysDir() string { return filepath.Join(s.dir, "keys") }

// Store is the server's state (tests, and commands run beside the server).
func (s *Server) Store() registry.Store { return s.store }

// TLSConfig is the server's TLS configuration: its certificate, and client certificates
// verified against the CA when given (node endpoints require one; enrollment and admin
// calls have none).
func (s *Server) TLSConfig() *tls.Config {
	c := s.ca.ServerConfig(s.cert)
	c.ClientAuth = tls.VerifyClientCertIfGiven
	return c
}

// RecordAddress records the address the server listens at in the admin credential file,
// so that the operator's commands find the server. Serve calls it; call it before, to know
// the file is written when Serve starts in a goroutine.
func (s *Server) RecordAddress(addr net.Addr) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	url := "https://" + advertised(addr)
	if s.admin.Server == url {
		return nil
	}
	s.admin.Server = url
	if err := writeCredential(filepath.Join(s.dir, CredentialFile), s.admin); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// Serve serves the API over TLS on ln until ctx ends, then stops accepting requests and
// waits up to 10 seconds for the running ones. It records the listener's address first
// (RecordAddress).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.RecordAddress(ln.Addr()); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second, // an idle TLS connection holds ~40 KiB; agents resume sessions cheaply
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	var sweeper sync.WaitGroup
	sweeper.Go(func() { s.pruneReportsEvery(ctx, time.Hour) })
	defer sweeper.Wait()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// advertised is the address clients on this machine reach a listener at: an unspecified
// address (":8443", "0.0.0.0:8443") is reached at 127.0.0.1.
func advertised(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	return tcp.String()
}

// isAdmin reports whether token is the admin credential, in constant time.
func (s *Server) isAdmin(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], s.adminHash[:]) == 1
}
