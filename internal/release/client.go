package release

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

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// The layout of a node's trust directory (the argument trustDir of TrustInit and Refresh).
const (
	// TrustMetadataDir holds the trusted TUF metadata, root.json first (TrustInit), then
	// the newest root, timestamp, snapshot and targets that go-tuf's updater persisted.
	TrustMetadataDir = "metadata"
	// TrustTargetsDir holds the verified release manifests, cached by go-tuf's updater.
	TrustTargetsDir = "targets"
	// highestReleaseName is the file holding the highest release version Refresh returned.
	highestReleaseName = "highest-release"
	// trustedTimeName is the file holding the newest signed time the node has seen: the
	// latest creation time of the release manifests Refresh returned (clock.go).
	trustedTimeName = "trusted-time"
)

// HTTPTimeout bounds each HTTP request a refresh makes (headers and body).
const HTTPTimeout = 60 * time.Second

// ErrRollback is in the error of a refresh refused because the repository offers something
// older than what this node has already trusted: older metadata (go-tuf's version check
// against its persisted metadata) or an older newest release (the persisted highest
// release version).
var ErrRollback = errors.New("refused: older than what this node has already seen (rollback or replay of an old repository)")

// DirFetcher is a go-tuf fetcher.Fetcher for a repository in a local directory: a USB stick,
// a mounted mirror. A URL it is given is a file path that must lie inside the directory;
// the file is opened through an os.Root on it, so neither "..", nor an absolute path
// elsewhere, nor a symbolic link leads out of it, and only regular files are read (a FIFO
// or a device, which could be an endless stream, is refused).
type DirFetcher struct {
	dir  string // absolute, clean
	root *os.Root
	ctx  context.Context // checked before each file; nil for none
}

var _ fetcher.Fetcher = (*DirFetcher)(nil)

// NewDirFetcher opens dir for fetching. Close it after use.
func NewDirFetcher(dir string) (*DirFetcher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("release repository: %w", err)
	}
	return &DirFetcher{dir: abs, root: root}, nil
}

// Dir returns the absolute path of the directory, the base of the URLs the fetcher takes.
func (f *DirFetcher) Dir() string { return f.dir }

// Close releases the directory.
func (f *DirFetcher) Close() error { return f.root.Close() }

// DownloadFile reads the file at urlPath, a path inside the fetcher's directory, if it is a
// regular file of at most maxLength bytes. A missing file is reported as go-tuf's HTTP 404
// (ErrDownloadHTTP), which is how its updater learns that no newer root exists. The
// timeout argument is unused, as go-tuf deprecated it.
func (f *DirFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	if f.ctx != nil {
		if err := f.ctx.Err(); err != nil {
			return nil, err
		}
	}
	rel, ok := strings.CutPrefix(urlPath, f.dir+"/")
	if !ok {
		return nil, fmt.Errorf("fetch %s: outside the repository directory %s", urlPath, f.dir)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return nil, fmt.Errorf("fetch %s: the path has an empty, \".\" or \"..\" element", urlPath)
		}
	}
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("fetch %s: not a path inside the repository directory", urlPath)
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
	file, err := f.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: urlPath}
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", urlPath, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", urlPath, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("fetch %s: not a regular file (%s)", urlPath, info.Mode().Type())
	}
	tooLong := func(n int64) error {
		return &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("fetch %s: %d bytes or more, more than the limit of %d", urlPath, n, maxLength)}
	}
	if info.Size() > maxLength {
		return nil, tooLong(info.Size())
	}
	// The file may grow after Stat: read no more than one byte over the limit.
	data, err := io.ReadAll(io.LimitReader(file, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", urlPath, err)
	}
	if int64(len(data)) > maxLength {
		return nil, tooLong(int64(len(data)))
	}
	return data, nil
}

// remoteConfig returns go-tuf's updater configuration for remote (an http:// or https://
// URL, or a directory) and a function to release it.
func remoteConfig(ctx context.Context, remote, trustDir string, root []byte, client *http.Client) (*config.UpdaterConfig, *httpFetcher, func(), error) {
	if u, err := url.Parse(remote); err == nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) {
		if u.Host == "" {
			return nil, nil, nil, fmt.Errorf("release repository %s: no host in the URL", remote)
		}
		metaURL, err := url.JoinPath(remote, MetadataDir)
		if err != nil {
			return nil, nil, nil, err
		}
		targetsURL, err := url.JoinPath(remote, TargetsDir)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg, err := config.New(metaURL, root)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.RemoteTargetsURL = targetsURL
		if client == nil {
			client = NewHTTPClient()
		}
		hf := &httpFetcher{ctx: ctx, client: client, trustDir: trustDir}
		cfg.Fetcher = hf
		return cfg, hf, func() {}, nil
	} else if err == nil && u.Scheme != "" {
		return nil, nil, nil, fmt.Errorf("release repository %s: unsupported URL scheme %q (http, https or a directory)", remote, u.Scheme)
	}
	info, err := os.Stat(remote)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("release repository: %w", err)
	}
	if !info.IsDir() {
		return nil, nil, nil, fmt.Errorf("release repository %s is not a directory", remote)
	}
	df, err := NewDirFetcher(remote)
	if err != nil {
		return nil, nil, nil, err
	}
	df.ctx = ctx
	cfg, err := config.New(filepath.Join(df.Dir(), MetadataDir), root)
	if err != nil {
		_ = df.Close()
		return nil, nil, nil, err
	}
	cfg.RemoteTargetsURL = filepath.Join(df.Dir(), TargetsDir)
	cfg.Fetcher = df
	return cfg, nil, func() { _ = df.Close() }, nil
}

// TrustInit prepares trustDir as a node's trust directory: rootJSON, the repository's
// metadata/root.json as the operator copied it, is checked (a root metadata file signed by
// its own keys) and written to trustDir/metadata/root.json, mode 0600, the directories
// 0700. A trust directory is initialized once: TrustInit refuses one that already has a
// root (ErrExists), as replacing it would drop the node's memory of what it has seen; to
// start over, remove the directory.
func TrustInit(trustDir string, rootJSON []byte) error {
	if _, err := trustedmetadata.New(rootJSON); err != nil {
		return fmt.Errorf("trust init: the given root metadata is not valid: %w", err)
	}
	metaDir := filepath.Join(trustDir, TrustMetadataDir)
	for _, d := range []string{trustDir, metaDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("trust init: %w", err)
		}
		info, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("trust init: %w", err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return fmt.Errorf("trust init: the directory %s has permissions %04o, wider than 0700: run chmod 700 %s", d, perm, d)
		}
	}
	p := filepath.Join(metaDir, "root.json")
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("trust init: %s %w: a node's trust is initialized once (to start over, remove %s)", p, ErrExists, trustDir)
	}
	if err := atomicfile.WriteBytes(p, 0o600, rootJSON); err != nil {
		return fmt.Errorf("trust init: %w", err)
	}
	return nil
}

// RefreshOptions are the options of Refresh.
type RefreshOptions struct {
	// Now is the node's clock; time.Now when nil.
	Now func() time.Time
	// Warn is told, in one line, when the clock is not trusted for expiry (package
	// documentation, Expiry); may be nil.
	Warn func(msg string)
	// HTTPClient sends the requests to an http(s) repository; NewHTTPClient's when nil. A
	// long-running agent gives every refresh the same one, so that TLS sessions resume.
	HTTPClient *http.Client
}

// Refresh brings the node's trust up to date from remote and returns the manifest of the
// newest release there.
//
// remote is an http:// or https:// URL or a directory (a USB stick, a local mirror): the
// release repository as Init and Publish laid it out. trustDir is the node's trust
// directory, prepared by TrustInit. Refresh runs go-tuf's updater with the trusted
// metadata persisted in trustDir/metadata: the root chain, then timestamp, snapshot and
// targets, each checked for signatures and thresholds, lengths and hashes, and versions no
// lower than those persisted (so metadata older than what the node has seen is refused,
// however validly signed). Then it takes the highest release N that targets lists
// (releases/N.json), downloads it (or finds it cached in trustDir/targets), checks it
// against its signed length and hash, decodes it and checks that it holds version N.
//
// Refresh also persists the highest release version it has returned (trustDir/
// highest-release) and refuses a repository whose newest release is lower, with an error
// wrapping ErrRollback: a mirror replaying an older repository is refused even after the
// node's metadata cache is lost. The same release again is returned (nothing is new).
//
// Expiry (of root, timestamp, snapshot and targets) is checked against a reference time
// rather than the bare clock: the clock (opts.Now), but never earlier than the node's
// floor — the newest signed time it has seen, which is the latest creation time of the
// manifests Refresh has returned (persisted in trustDir/trusted-time), or the build time
// of the program if later — and the floor itself when the clock is more than
// ClockSuspectAfter ahead of it. opts.Warn is told when the clock is not used (unless it
// is only minutes behind). Metadata expired at the reference time is refused with an error
// wrapping go-tuf's metadata.ErrExpiredMetadata that names the expiry, the reference time
// and what to do. See the package documentation, Expiry.
//
// Nothing Refresh persists itself (highest-release, trusted-time) changes unless it
// returns a manifest.
//
// A trust directory is refreshed by one caller at a time (a lock file; a second concurrent
// Refresh fails at once).
func Refresh(ctx context.Context, remote string, trustDir string, opts RefreshOptions) (*Manifest, error) {
	unlock, err := lockTrust(trustDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	highest, err := readHighest(trustDir)
	if err != nil {
		return nil, err
	}
	seen, err := readTrustedTime(trustDir)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ref := referenceTime(now(), nodeFloor(seen, buildTime()))
	if ref.warn != "" && opts.Warn != nil {
		opts.Warn(ref.warn)
	}
	metaDir := filepath.Join(trustDir, TrustMetadataDir)
	root, err := os.ReadFile(filepath.Join(metaDir, "root.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("refresh: %s has no trusted root (%s/root.json): initialize it with the repository's root.json first", trustDir, TrustMetadataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	cfg, hf, done, err := remoteConfig(ctx, remote, trustDir, root, opts.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	defer done()
	cfg.LocalMetadataDir = metaDir
	cfg.LocalTargetsDir = filepath.Join(trustDir, TrustTargetsDir)
	cfg.PrefixTargetsWithHash = false
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("refresh: trusted metadata in %s: %w", metaDir, err)
	}
	// go-tuf reads the reference time only in Refresh (every expiry check is there; New
	// sets it to the time of the call and checks nothing against it).
	up.UnsafeSetRefTime(ref.time)
	if err := up.Refresh(); err != nil {
		if hf != nil {
			hf.forget() // whatever the validators stood for, start afresh next time
		}
		if errors.Is(err, &metadata.ErrBadVersionNumber{}) {
			return nil, fmt.Errorf("refresh from %s: trust metadata %w: %w", remote, ErrRollback, err)
		}
		if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
			return nil, expiredError(remote, up, ref, err)
		}
		return nil, fmt.Errorf("refresh from %s: trust metadata: %w", remote, err)
	}
	if hf != nil {
		if err := hf.persist(); err != nil {
			return nil, fmt.Errorf("refresh: %w", err)
		}
	}
	var newest uint64
	var target string
	for p := range up.GetTopLevelTargets() {
		if v, ok := releaseVersion(p); ok && v > newest {
			newest, target = v, p
		}
	}
	if newest == 0 {
		return nil, fmt.Errorf("refresh from %s: the repository has no release yet", remote)
	}
	if newest < highest {
		return nil, fmt.Errorf("refresh from %s: its newest release is %d, but this node has already seen release %d: %w", remote, newest, highest, ErrRollback)
	}
	tf := up.GetTopLevelTargets()[target]
	if tf.Length > MaxManifestSize {
		return nil, fmt.Errorf("refresh from %s: %s: signed length %d is over the manifest limit of %d bytes", remote, target, tf.Length, MaxManifestSize)
	}
	_, data, err := up.FindCachedTarget(tf, "")
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if data == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, data, err = up.DownloadTarget(tf, "", ""); err != nil {
			return nil, fmt.Errorf("refresh from %s: %s/%s: %w", remote, TargetsDir, target, err)
		}
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("refresh from %s: %s/%s: %w", remote, TargetsDir, target, err)
	}
	if m.Version != newest {
		return nil, fmt.Errorf("refresh from %s: %s/%s holds version %d", remote, TargetsDir, target, m.Version)
	}
	if newest > highest {
		if err := atomicfile.WriteBytes(filepath.Join(trustDir, highestReleaseName), 0o600, []byte(strconv.FormatUint(newest, 10)+"\n")); err != nil {
			return nil, fmt.Errorf("refresh: %w", err)
		}
	}
	// The floor moves to the release's creation, but never past a clock it trusts (one
	// checked against a floor): a publisher whose clock was years ahead must not make every
	// node refuse the correctly dated releases that follow.
	signed := m.Created
	if !ref.floor.time.IsZero() && ref.time.Equal(ref.clock) && ref.clock.Before(signed) {
		signed = ref.clock
	}
	if signed.After(seen) {
		if err := writeTrustedTime(trustDir, signed); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readHighest returns the highest release version persisted in trustDir, 0 if none.
func readHighest(trustDir string) (uint64, error) {
	p := filepath.Join(trustDir, highestReleaseName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("refresh: %w", err)
	}
	s, ok := strings.CutSuffix(string(data), "\n")
	v, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("refresh: %s is damaged (want a release version and a newline): refusing to guess what this node has seen", p)
	}
	return v, nil
}

// lockTrust takes trustDir's lock, failing at once if another refresh holds it.
func lockTrust(trustDir string) (func(), error) {
	if _, err := os.Stat(filepath.Join(trustDir, TrustMetadataDir)); err != nil {
		return nil, fmt.Errorf("refresh: %s is not an initialized trust directory: %w", trustDir, err)
	}
	f, err := os.OpenFile(filepath.Join(trustDir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("refresh: another refresh of %s is running", trustDir)
		}
		return nil, fmt.Errorf("refresh: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

// Highest returns the highest release version a node has accepted (Refresh persists it in
// trustDir), 0 if none: anything older is refused, from any repository or stick.
func Highest(trustDir string) (uint64, error) { return readHighest(trustDir) }
