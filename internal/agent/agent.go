package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/catcache"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/facts"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/spool"
	"github.com/satchelcm/satchel/internal/store"
	"github.com/satchelcm/satchel/internal/transfer"
)

// Options are what an agent runs with: the settings of its config file, and the node
// selection of satchel apply.
type Options struct {
	Config
	// Root is the directory converged instead of / ("" or "/": this machine).
	Root string
	// Node is the node name to compile for ("": the hostname fact).
	Node string
	// FactsFile, if set, holds the node's facts as JSON instead of gathering them.
	FactsFile string
	// Version is the agent's version, reported in the facts.
	Version string
	// Parallel is how many resources a run converges at once (default 4).
	Parallel int
	// LockWait is how long a cycle waits for another run (satchel apply) to finish.
	// Default 10 minutes.
	LockWait time.Duration
	// PullBackoff and PullAttempts, if set, replace the transfer client's defaults for
	// repeating failed requests (transfer.Client's MinBackoff and MaxAttempts).
	PullBackoff  time.Duration
	PullAttempts int
	// Hard, if set, is the context whose end interrupts the resources a run is converging
	// (a second SIGTERM); the context given to Cycle and Run only stops a run between
	// resources. Nil: resources are never interrupted.
	Hard context.Context
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// Log receives one line per event of note; nil discards them.
	Log io.Writer
}

// Agent keeps one node converged to the newest good release of its repositories. Open
// it, then call Cycle once or Run until stopped; Close it after.
type Agent struct {
	opts     Options
	state    string // the state directory, absolute
	rootDir  string // what runs converge, absolute
	lock     *engine.Lock
	store    *store.Store
	backups  *backup.Store
	spool    *spool.Spool
	catalogs *catcache.Cache
	// http sends every refresh's requests, so that TLS sessions resume from one cycle to
	// the next.
	http *http.Client
	// identity is the node's identity for its server (nil: none); node, its connection
	// once enrolled (server.go).
	identity *client.Identity
	node     *client.Node
	// only, while a bundle is imported, is the one repository a cycle uses (its copy in
	// the state directory); the server is not contacted.
	only []string
	// sticks are the bundles already seen where BundlePaths look (directory → stickKey).
	sticks map[string]string
}

// Open prepares the state directory (mode 0700) and takes the agent's lock on it, so that
// one agent at a time uses it. On the first run it initializes the node's trust from
// Options.Trust, the repository's root.json as the operator gave it; afterwards the trust
// kept in the state directory is used and Options.Trust is not read again.
func Open(opts Options) (*Agent, error) {
	if opts.StateDir == "" {
		return nil, errors.New("agent: no state directory")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	state, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("agent: state directory %s: %w", opts.StateDir, err)
	}
	rootDir := "/"
	if opts.Root != "" {
		if rootDir, err = filepath.Abs(opts.Root); err != nil {
			return nil, fmt.Errorf("agent: --root %s: %w", opts.Root, err)
		}
	}
	if err := engine.MakeStateDir(state); err != nil {
		return nil, fmt.Errorf("agent: create state directory: %w", err)
	}
	// It holds backups and compiled catalogs, secrets included: for root's eyes only, even
	// when it was made before, by hand or by an older package.
	info, err := os.Stat(state)
	if err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("agent: state directory %s belongs to user %d, not to this one (%d): refusing to trust what another user can change", state, st.Uid, os.Geteuid())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(state, 0o700); err != nil {
			return nil, fmt.Errorf("agent: state directory %s has mode %04o, open to others, and cannot be made 0700: %w", state, perm, err)
		}
		fmt.Fprintf(opts.Log, "satchel agent: state directory %s had mode %04o, open to others: now 0700\n", state, perm)
	}
	a := &Agent{opts: opts, state: state, rootDir: rootDir, catalogs: catcache.Open(filepath.Join(state, catalogsDirName)),
		http: release.NewHTTPClient(), sticks: map[string]string{}}
	if a.lock, err = lockAgent(state); err != nil {
		return nil, err
	}
	if err := a.open(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// ErrNoRepository: the agent knows no repository to take releases from (the node is not
// enrolled, and none is configured).
var ErrNoRepository = errors.New("no repository")

func (a *Agent) open() error {
	var err error
	if err := a.openIdentity(); err != nil {
		return err
	}
	if len(a.repositories()) == 0 && !a.awaitingApproval() {
		return fmt.Errorf("agent: %w: enroll this node with a server (satchel enroll --server URL --ca-fingerprint FP), or give a repository with --repo URL|DIR or in the config file", ErrNoRepository)
	}
	if err := a.initTrust(); err != nil {
		return err
	}
	if a.store, err = store.Open(filepath.Join(a.state, storeDirName)); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if a.backups, err = backup.Open(filepath.Join(a.state, backupsDirName)); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	spoolMax := a.opts.SpoolMax
	if spoolMax <= 0 {
		spoolMax = DefaultConfig().SpoolMax
	}
	if a.spool, err = spool.Open(filepath.Join(a.state, spoolDirName), spoolMax); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// initTrust initializes the trust directory from Options.Trust unless it has a root.
func (a *Agent) initTrust() error {
	trust := filepath.Join(a.state, trustDirName)
	if _, err := os.Stat(filepath.Join(trust, release.TrustMetadataDir, "root.json")); err == nil {
		return nil
	}
	if a.opts.Trust == "" && a.awaitingApproval() {
		return nil // the server sends its root with the approval
	}
	if a.opts.Trust == "" {
		return fmt.Errorf("agent: this node trusts no repository yet: give the repository's root.json with --trust FILE (or trust = \"FILE\" in the config file)")
	}
	data, err := os.ReadFile(a.opts.Trust)
	if err != nil {
		return fmt.Errorf("agent: trusted root: %w", err)
	}
	if err := release.TrustInit(trust, data); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.logf("trusting the repository root in %s", a.opts.Trust)
	return nil
}

// Close releases the state directory.
func (a *Agent) Close() {
	if a.lock != nil {
		_ = a.lock.Release()
		a.lock = nil
	}
}

// StateDir returns the agent's state directory.
func (a *Agent) StateDir() string { return a.state }

func (a *Agent) logf(format string, args ...any) {
	fmt.Fprintf(a.opts.Log, "satchel agent: "+format+"\n", args...)
}

// lockWait is how long Open waits for the agent lock: enough for an agent that is
// stopping (a service restart) to let go of it, and for a child process forked meanwhile,
// which holds the lock until it execs, to exec.
const lockWait = 3 * time.Second

// lockAgent takes the agent lock of the state directory for the life of the agent
// (engine.AcquireLock, waiting up to lockWait).
func lockAgent(state string) (*engine.Lock, error) {
	l, err := engine.AcquireLock(filepath.Join(state, agentLockName), lockWait)
	if errors.Is(err, engine.ErrLocked) {
		return nil, fmt.Errorf("agent: another agent is running with the state directory %s", state)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return l, nil
}

// isURL reports whether a repository is given as an http(s) URL (else it is a directory).
func isURL(remote string) bool {
	u, err := url.Parse(remote)
	return err == nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https"))
}

// storeClient returns a transfer client of the content store of the repository remote.
func (a *Agent) storeClient(remote string) (*transfer.Client, func() error, error) {
	var c *transfer.Client
	closeFn := func() error { return nil }
	var err error
	if isURL(remote) {
		c, err = transfer.NewClient(strings.TrimSuffix(remote, "/") + "/" + release.StoreDir + "/")
		if err == nil && a.node != nil && remote == a.node.RepoURL() {
			c.HTTP = a.node.HTTPClient()
		}
	} else {
		c, closeFn, err = transfer.NewDirClient(filepath.Join(remote, release.StoreDir))
	}
	if err != nil {
		return nil, nil, err
	}
	c.Limit = a.opts.BandwidthLimit
	if a.opts.PullBackoff > 0 {
		c.MinBackoff, c.MaxBackoff = a.opts.PullBackoff, 4*a.opts.PullBackoff
	}
	c.MaxAttempts = a.opts.PullAttempts
	c.Warn = func(msg string) { a.logf("%s", msg) }
	return c, closeFn, nil
}

// pruneReleases removes the checkouts of releases other than keep.
func (a *Agent) pruneReleases(keep ...uint64) {
	dir := filepath.Join(a.state, releasesDirName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
next:
	for _, e := range entries {
		v, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		for _, k := range keep {
			if v == k {
				continue next
			}
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.logf("warning: remove old checkout: %v", err)
		}
		_ = os.Remove(a.store.IndexPath(p)) // its stat cache

	}
}

// gatherFacts returns the node's facts and its name.
func (a *Agent) gatherFacts() (map[string]any, string, error) {
	var fs map[string]any
	if a.opts.FactsFile != "" {
		var err error
		if fs, err = facts.ReadFile(a.opts.FactsFile); err != nil {
			return nil, "", err
		}
	} else {
		got, warnings, err := facts.Gather(facts.Options{Version: a.opts.Version})
		for _, w := range warnings {
			a.logf("warning: %s", w)
		}
		if err != nil {
			return nil, "", fmt.Errorf("gather facts: %w", err)
		}
		fs = got
	}
	node := a.opts.Node
	if node == "" {
		node, _ = fs["hostname"].(string)
	}
	if node == "" {
		return nil, "", errors.New("no node name: give --node NAME, or facts with a hostname")
	}
	return fs, node, nil
}
