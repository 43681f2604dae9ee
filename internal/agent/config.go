// The agent's own configuration: /etc/satchel/agent.hcl, which says where the node pulls
// releases from, how often, how fast, and when large content may cross the link.

package agent

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// DefaultConfigPath is where the agent looks for its configuration.
const DefaultConfigPath = "/etc/satchel/agent.hcl"

// Defaults and limits of the agent's configuration.
const (
	DefaultInterval      = 30 * time.Minute
	MinInterval          = time.Minute
	DefaultSmallTransfer = 2 << 20
	DefaultStateDir      = "/var/lib/satchel"
	DefaultSpoolMax      = 64 << 20
	DefaultBundlePoll    = 10 * time.Second
)

// DefaultBundlePaths are where the agent looks for USB sticks: where Debian's desktop
// and udisks mount them, and /media/usb* of the usbmount package.
var DefaultBundlePaths = []string{"/media/*", "/media/*/*", "/run/media/*/*"}

// Config is the agent's configuration, as read from agent.hcl.
type Config struct {
	// Repositories are where releases come from, in order of preference: an http or https
	// URL, or a directory (a mounted USB stick, a mirror on the LAN).
	Repositories []string
	// Trust is the repository's root.json this node trusts at first; it is copied into the
	// state directory on the first run.
	Trust string
	// Interval is the time between two cycles (at least MinInterval).
	Interval time.Duration
	// Splay is the most random extra delay added before each cycle (0 <= Splay <= Interval),
	// so that a fleet does not knock on the server all at once.
	Splay time.Duration
	// BandwidthLimit caps downloads, in bytes per second; 0 means no cap.
	BandwidthLimit int64
	// Windows are the local times at which large content may be downloaded; none means
	// always.
	Windows []Window
	// SmallTransfer is how many bytes a cycle may download outside the windows (config
	// trees, small content).
	SmallTransfer int64
	// StateDir holds the node's keys, trust, chunk store, last good release and report
	// spool.
	StateDir string
	// SpoolMax caps the size of the report spool, in bytes.
	SpoolMax int64
	// BundlePaths are glob patterns of directories where USB sticks are mounted: a
	// directory among them holding a bundle (package bundle) is imported on its own,
	// checked every BundlePoll. None: sticks are imported by satchel bundle import only.
	BundlePaths []string
	BundlePoll  time.Duration
}

// DefaultConfig returns the defaults: a cycle every 30 minutes with up to 5 minutes of
// splay, no bandwidth cap, no windows, 2 MiB outside windows, state in /var/lib/satchel and
// a 64 MiB report spool. Repositories and Trust are empty: they have no sensible default.
func DefaultConfig() Config {
	return Config{
		Interval:      DefaultInterval,
		Splay:         DefaultInterval / 6,
		SmallTransfer: DefaultSmallTransfer,
		StateDir:      DefaultStateDir,
		SpoolMax:      DefaultSpoolMax,
		BundlePaths:   slices.Clone(DefaultBundlePaths),
		BundlePoll:    DefaultBundlePoll,
	}
}

// configSchema lists the attributes of agent.hcl; any other attribute or block is an error.
var configSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "repositories"},
	{Name: "trust"},
	{Name: "interval"},
	{Name: "splay"},
	{Name: "bandwidth_limit"},
	{Name: "transfer_windows"},
	{Name: "small_transfer"},
	{Name: "state_dir"},
	{Name: "spool_max"},
	{Name: "bundle_paths"},
	{Name: "bundle_poll"},
}}

// LoadConfig reads the agent's configuration from path: the defaults, overridden by what
// the file sets. When the file sets interval but not splay, splay is a sixth of the
// interval. Relative paths in the file (trust, state_dir, directory repositories) are
// resolved against the file's directory.
//
// Every value the file sets is checked, and every problem is reported as
// "path:line,col: summary; detail", one line each. What the file may leave out
// (repositories, trust) is not required here, so that the command line can supply it:
// call [Config.Validate] on the result, after any such overrides. A missing file is an
// error that wraps fs.ErrNotExist.
func LoadConfig(path string) (Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read agent configuration: %w", err)
	}
	file, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return Config{}, diagError(diags)
	}
	// Unknown attributes and blocks are errors, but the known ones are still checked, so
	// that one run reports every problem.
	content, diags := file.Body.Content(configSchema)
	l := loader{c: DefaultConfig(), dir: filepath.Dir(path), attrs: content.Attributes, diags: diags}
	l.load()
	if l.diags.HasErrors() {
		return Config{}, diagError(l.diags)
	}
	return l.c, nil
}

// loader fills a Config from a file's attributes, collecting every problem.
type loader struct {
	c     Config
	dir   string
	attrs hcl.Attributes
	diags hcl.Diagnostics
}

func (l *loader) load() {
	if a, ok := l.strings("repositories"); ok {
		l.c.Repositories = l.c.Repositories[:0]
		for i, s := range a.values {
			if s != "" && !strings.Contains(s, "://") {
				s = l.abs(s)
			}
			l.c.Repositories = append(l.c.Repositories, s)
			l.check(a.ranges[i], checkRepository(s))
		}
		l.check(a.rng, checkRepositories(l.c.Repositories))
	}
	if s, rng, ok := l.string("trust"); ok {
		l.c.Trust = l.abs(s)
		l.check(rng, checkTrust(l.c.Trust, false))
	}
	intervalSet := false
	if s, rng, ok := l.string("interval"); ok {
		d, err := parseDuration("interval", s)
		if l.check(rng, err) {
			l.c.Interval, intervalSet = d, true
			l.check(rng, checkInterval(d))
		}
	}
	if s, rng, ok := l.string("splay"); ok {
		d, err := parseDuration("splay", s)
		if l.check(rng, err) {
			l.c.Splay = d
			l.check(rng, checkSplay(d, l.c.Interval))
		}
	} else if intervalSet {
		l.c.Splay = l.c.Interval / 6
	}
	l.size("bandwidth_limit", &l.c.BandwidthLimit, nil)
	if a, ok := l.strings("transfer_windows"); ok {
		l.c.Windows = nil
		for i, s := range a.values {
			w, err := ParseWindow(s)
			if err != nil {
				err = fmt.Errorf("transfer_windows: %w", err)
			}
			if l.check(a.ranges[i], err) {
				l.c.Windows = append(l.c.Windows, w)
			}
		}
	}
	l.size("small_transfer", &l.c.SmallTransfer, nil)
	if s, rng, ok := l.string("state_dir"); ok {
		l.c.StateDir = l.abs(s)
		l.check(rng, checkStateDir(l.c.StateDir))
	}
	l.size("spool_max", &l.c.SpoolMax, checkSpoolMax)
	if a, ok := l.strings("bundle_paths"); ok {
		l.c.BundlePaths = nil
		for i, s := range a.values {
			if l.check(a.ranges[i], checkBundlePath(s)) {
				l.c.BundlePaths = append(l.c.BundlePaths, s)
			}
		}
	}
	if s, rng, ok := l.string("bundle_poll"); ok {
		d, err := parseDuration("bundle_poll", s)
		if l.check(rng, err) {
			l.c.BundlePoll = d
			l.check(rng, checkBundlePoll(d))
		}
	}
}

// checkBundlePath checks a pattern of bundle_paths: absolute, and a valid glob.
func checkBundlePath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("bundle_paths: %q is not an absolute path", p)
	}
	if _, err := filepath.Match(p, ""); err != nil {
		return fmt.Errorf("bundle_paths: %q: %v", p, err)
	}
	return nil
}

func checkBundlePoll(d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("bundle_poll %v: want 1s or more", d)
	}
	return nil
}

// check records err, if any, as a diagnostic at rng; it reports whether err was nil.
func (l *loader) check(rng hcl.Range, err error) bool {
	if err == nil {
		return true
	}
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error(), Subject: rng.Ptr()})
	return false
}

// abs resolves a non-empty relative path against the config file's directory.
func (l *loader) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

// value evaluates attribute name as type ty; ok is false when the attribute is absent,
// null or wrong (then a diagnostic says so).
func (l *loader) value(name string, ty cty.Type, want string) (cty.Value, hcl.Range, bool) {
	a, ok := l.attrs[name]
	if !ok {
		return cty.NilVal, hcl.Range{}, false
	}
	rng := a.Expr.Range()
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		l.diags = append(l.diags, diags...)
		return cty.NilVal, rng, false
	}
	if v.IsNull() {
		return cty.NilVal, rng, false
	}
	v, err := convert.Convert(v, ty)
	if err != nil || !v.IsWhollyKnown() {
		l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: name + " must be " + want, Subject: rng.Ptr()})
		return cty.NilVal, rng, false
	}
	return v, rng, true
}

func (l *loader) string(name string) (string, hcl.Range, bool) {
	v, rng, ok := l.value(name, cty.String, "a string")
	if !ok {
		return "", rng, false
	}
	return v.AsString(), rng, true
}

// list is a list attribute's strings, each with its own range when the file writes the
// list literally, and the range of the whole list.
type list struct {
	values []string
	ranges []hcl.Range
	rng    hcl.Range
}

func (l *loader) strings(name string) (list, bool) {
	v, rng, ok := l.value(name, cty.List(cty.String), "a list of strings")
	if !ok {
		return list{}, false
	}
	a := list{rng: rng}
	var elems []hclsyntax.Expression
	if t, ok := l.attrs[name].Expr.(*hclsyntax.TupleConsExpr); ok {
		elems = t.Exprs
	}
	for i, e := range v.AsValueSlice() {
		if e.IsNull() {
			l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: name + " must not contain null", Subject: rng.Ptr()})
			return list{}, false
		}
		a.values = append(a.values, e.AsString())
		if len(elems) == v.LengthInt() {
			a.ranges = append(a.ranges, elems[i].Range())
		} else {
			a.ranges = append(a.ranges, rng)
		}
	}
	return a, true
}

// size reads a size attribute (a string such as "2M", or a plain number of bytes) into dst;
// check, if not nil, checks its value.
func (l *loader) size(name string, dst *int64, check func(int64) error) {
	s, rng, ok := l.string(name)
	if !ok {
		return
	}
	n, err := ParseSize(s)
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	} else if check != nil {
		err = check(n)
	}
	if l.check(rng, err) {
		*dst = n
	}
}

// diagError formats diagnostics as "path:line,col: summary; detail", one per line, in the
// order of their positions.
func diagError(diags hcl.Diagnostics) error {
	diags = slices.Clone(diags)
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		if a.Subject == nil || b.Subject == nil {
			return 0
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		var b strings.Builder
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if detail := strings.Join(strings.Fields(d.Detail), " "); detail != "" {
			b.WriteString("; " + detail)
		}
		lines = append(lines, b.String())
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Validate checks the whole configuration, including what LoadConfig leaves to the caller:
// splay no longer than the interval. Repositories and Trust may be empty: a node enrolled
// with a server pulls from it and got its trust from it, and Open says what is missing
// otherwise. Each message names the attribute,
// as agent.hcl spells it.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkRepositories(c.Repositories))
	for _, r := range c.Repositories {
		add(checkRepository(r))
	}
	add(checkTrust(c.Trust, false))
	add(checkInterval(c.Interval))
	add(checkSplay(c.Splay, c.Interval))
	if c.BandwidthLimit < 0 {
		add(fmt.Errorf("bandwidth_limit %d is negative; 0 means no cap", c.BandwidthLimit))
	}
	for _, w := range c.Windows {
		add(w.check())
	}
	if c.SmallTransfer < 0 {
		add(fmt.Errorf("small_transfer %d is negative; 0 means nothing outside transfer_windows", c.SmallTransfer))
	}
	add(checkStateDir(c.StateDir))
	add(checkSpoolMax(c.SpoolMax))
	for _, p := range c.BundlePaths {
		add(checkBundlePath(p))
	}
	if len(c.BundlePaths) > 0 {
		add(checkBundlePoll(c.BundlePoll))
	}
	return errors.Join(errs...)
}

// checkRepositories refuses a repository listed twice.
func checkRepositories(rs []string) error {
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if seen[r] && r != "" {
			return fmt.Errorf("repositories lists %q twice", r)
		}
		seen[r] = true
	}
	return nil
}

// checkRepository accepts an http or https URL with a host, or a directory.
func checkRepository(r string) error {
	if r == "" {
		return errors.New("repositories has an empty entry; want a URL or a directory")
	}
	if !strings.Contains(r, "://") {
		return nil
	}
	u, err := url.Parse(r)
	if err != nil {
		return fmt.Errorf("repositories entry %q is not a valid URL", r)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("repositories entry %q: want an http or https URL, or a directory written as a plain path", r)
	}
	if u.Host == "" {
		return fmt.Errorf("repositories entry %q has no host", r)
	}
	if u.User != nil {
		return fmt.Errorf("repositories entry %q contains credentials; nodes authenticate with their certificate", u.Redacted())
	}
	return nil
}

func checkTrust(p string, required bool) error {
	if p == "" && required {
		return errors.New("trust is not set: name the repository's root.json this node trusts at first")
	}
	return nil
}

func checkInterval(d time.Duration) error {
	if d < MinInterval {
		return fmt.Errorf("interval %s is too short: the minimum is %s", fmtDuration(d), fmtDuration(MinInterval))
	}
	return nil
}

func checkSplay(splay, interval time.Duration) error {
	switch {
	case splay < 0:
		return fmt.Errorf("splay %s is negative", fmtDuration(splay))
	case splay > interval:
		return fmt.Errorf("splay %s is longer than interval %s", fmtDuration(splay), fmtDuration(interval))
	}
	return nil
}

func checkStateDir(p string) error {
	if p == "" {
		return errors.New("state_dir is empty")
	}
	return nil
}

func checkSpoolMax(n int64) error {
	if n <= 0 {
		return fmt.Errorf("spool_max %d is too small: the report spool needs room for at least one report", n)
	}
	return nil
}

// parseDuration parses a Go duration such as 30m or 1h30m.
func parseDuration(name, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a duration such as 90s, 30m or 1h30m", name, s)
	}
	return d, nil
}

// fmtDuration prints a duration without trailing zero units: 30m, 1h, 1h30m, 90ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseSize parses a number of bytes: a decimal integer, optionally followed by k, M or G
// (1k = 1024; the suffix's case does not matter), such as 4096, 256k, 2M or 1G.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	bad := fmt.Errorf("size %q: want a number of bytes, optionally with a k, M or G suffix (1k = 1024), such as 4096, 256k or 2M", s)
	if t == "" || strings.TrimLeft(t, "0123456789") != "" {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("size %q is negative", s)
		}
		return 0, bad
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// A Window is a daily span of local wall-clock time, [Start, End) in minutes after
// midnight. A window whose End is before its Start wraps midnight: 18:00-06:00 is the
// evening and the following early morning. Start == End is not a window.
type Window struct {
	Start, End int // minutes after local midnight, 0..1439
}

const minutesPerDay = 24 * 60

// ParseWindow parses "HH:MM-HH:MM" (an en dash "–" works too, as do spaces around the
// dash): "09:30-12:00", or "18:00-06:00", which wraps midnight. An end of 24:00 means
// midnight.
func ParseWindow(s string) (Window, error) {
	start, end, ok := strings.Cut(s, "-")
	if !ok {
		start, end, ok = strings.Cut(s, "–")
	}
	if !ok {
		return Window{}, fmt.Errorf("window %q: want a span of local time such as 18:00-06:00", s)
	}
	var w Window
	var err error
	if w.Start, err = parseClock(start, false); err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if w.End, err = parseClock(end, true); err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	if w.Start == w.End {
		return Window{}, fmt.Errorf("window %q starts where it ends; to allow transfers at any time, leave transfer_windows out", s)
	}
	return w, nil
}

// parseClock parses H:MM or HH:MM into minutes after midnight; 24:00 is midnight when
// end is true.
func parseClock(s string, end bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 ||
		strings.TrimLeft(h, "0123456789") != "" || strings.TrimLeft(m, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a time of day such as 06:00 or 18:30", s)
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if end && hh == 24 && mm == 0 {
		return 0, nil
	}
	if hh > 23 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day such as 06:00 or 18:30", s)
	}
	return hh*60 + mm, nil
}

// String renders the window as ParseWindow reads it, such as "18:00-06:00".
func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

func (w Window) check() error {
	if w.Start < 0 || w.Start >= minutesPerDay || w.End < 0 || w.End >= minutesPerDay {
		return fmt.Errorf("transfer_windows: window {Start: %d, End: %d} is out of range: minutes after midnight go from 0 to 1439", w.Start, w.End)
	}
	if w.Start == w.End {
		return fmt.Errorf("transfer_windows: window %s starts where it ends", w)
	}
	return nil
}

// contains reports whether minute m of the day is inside the window.
func (w Window) contains(m int) bool {
	if w.Start < w.End {
		return w.Start <= m && m < w.End
	}
	return m >= w.Start || m < w.End
}

// InWindow reports whether t's wall-clock time, in t's location, is inside any of ws; it
// is always true when ws is empty. An invalid window (see [Config.Validate]) contains
// nothing.
func InWindow(ws []Window, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	m := t.Hour()*60 + t.Minute()
	for _, w := range ws {
		if w.check() == nil && w.contains(m) {
			return true
		}
	}
	return false
}

// NextWindowStart returns the first moment at or after t that is inside one of ws: t
// itself when t is inside one (or ws is empty), else the start of the next window, in t's
// location.
//
// Windows are wall-clock times, so the answer follows daylight saving time: on the day
// clocks go forward past a window's start (02:30 does not exist in Berlin on the last
// Sunday of March), a window that is still open after the jump starts at the jump (03:00),
// and one that lies wholly inside the skipped hour does not happen that day; when clocks
// go back, a window that the repeated hour re-enters starts again then. If no window can
// ever be entered (every one of them invalid), it returns t.
func NextWindowStart(ws []Window, t time.Time) time.Time {
	if InWindow(ws, t) {
		return t
	}
	loc := t.Location()
	cur := t
	// Between two changes of the zone's offset, wall-clock time moves in step with real
	// time, so the next window start in a fixed zone is the answer unless the offset
	// changes first; then carry on from that change. Two days hold at most a few changes.
	for range 8 {
		name, offset := cur.Zone()
		_, end := cur.ZoneBounds()
		next, ok := nextStart(ws, cur.In(time.FixedZone(name, offset)))
		if !ok {
			return t
		}
		if end.IsZero() || next.Before(end) {
			return next.In(loc)
		}
		cur = end.In(loc)
		if InWindow(ws, cur) {
			return cur
		}
	}
	return t
}

// nextStart is the first start of a valid window after t, whose location has a fixed
// offset.
func nextStart(ws []Window, t time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	y, mo, d := t.Date()
	for _, w := range ws {
		if w.check() != nil {
			continue
		}
		for day := range 2 {
			c := time.Date(y, mo, d+day, w.Start/60, w.Start%60, 0, 0, t.Location())
			if c.After(t) && (!found || c.Before(best)) {
				best, found = c, true
			}
		}
	}
	return best, found
}
