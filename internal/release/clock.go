package release

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// ClockSuspectAfter is how far ahead of the newest signed time a node has seen its clock
// may be and still be trusted for expiry. A clock further ahead is suspect: expiry is then
// checked against that signed time instead, and the refresh's Warn is told. It is longer
// than the one-year lifetime Publish gives targets, snapshot and timestamp, so that a node
// whose clock is right still refuses metadata that expired a year after its last release
// (a freeze attack). See the package documentation, Expiry.
const ClockSuspectAfter = 3 * 365 * 24 * time.Hour

// clockBehindSlack is how far behind the floor a clock may be without a warning: a
// publisher's clock a little ahead of a node's is not worth a message. Expiry is checked
// against the floor all the same.
const clockBehindSlack = 10 * time.Minute

// floor is the earliest time it can be now, as far as a node knows: the newest signed
// time it has seen, or the time the running program was built if later. Zero if unknown.
type floor struct {
	time time.Time
	from string // what the time is, for messages
}

// nodeFloor returns the later of seen (the persisted newest signed time) and built (the
// build time of the running program), either of which may be zero.
func nodeFloor(seen, built time.Time) floor {
	switch {
	case seen.IsZero() && built.IsZero():
		return floor{}
	case built.After(seen):
		return floor{built, "the time this program was built"}
	default:
		return floor{seen, "the newest signed time this node has seen: the creation of a release it verified"}
	}
}

// buildTime returns the commit time of the running program, stamped by the go command as
// the build setting vcs.time; zero when there is none (test binaries, -buildvcs=false).
var buildTime = sync.OnceValue(func() time.Time {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return time.Time{}
	}
	return buildTimeOf(info)
})

// buildTimeOf returns info's vcs.time, zero if absent or malformed.
func buildTimeOf(info *debug.BuildInfo) time.Time {
	for _, s := range info.Settings {
		if s.Key == "vcs.time" {
			if t, err := time.Parse(time.RFC3339Nano, s.Value); err == nil {
				return t.UTC()
			}
		}
	}
	return time.Time{}
}

// reference is the time a refresh checks expiry against, and why.
type reference struct {
	time  time.Time // what go-tuf's updater is given
	clock time.Time // what the node's clock said
	floor floor
	warn  string // why the clock is not trusted; empty when it is, or is only a little behind
}

// referenceTime applies the clock policy (package documentation, Expiry): never below the
// floor, and the floor too when the clock is more than ClockSuspectAfter ahead of it.
func referenceTime(clock time.Time, f floor) reference {
	clock = clock.UTC()
	r := reference{time: clock, clock: clock, floor: f}
	switch {
	case f.time.IsZero():
	case clock.Before(f.time):
		r.time = f.time
		if f.time.Sub(clock) > clockBehindSlack {
			r.warn = fmt.Sprintf("this node's clock says %s, before %s (%s): the clock is wrong (a dead RTC battery?), so expiry is checked against %s instead; set the clock (timedatectl)",
				stamp(clock), stamp(f.time), f.from, stamp(f.time))
		}
	case clock.Sub(f.time) > ClockSuspectAfter:
		r.time = f.time
		r.warn = fmt.Sprintf("this node's clock says %s, more than %d years after %s (%s): the clock is not trusted, so expiry is checked against %s instead; if the clock is wrong, set it (timedatectl)",
			stamp(clock), ClockSuspectAfter/(365*24*time.Hour), stamp(f.time), f.from, stamp(f.time))
	}
	return r
}

// describe says what r.time is, for messages.
func (r reference) describe() string {
	if r.time.Equal(r.clock) {
		return stamp(r.time) + " (its clock)"
	}
	return fmt.Sprintf("%s (%s; its clock, which says %s, is not trusted)", stamp(r.time), r.floor.from, stamp(r.clock))
}

// expiredError explains err, go-tuf's refusal of expired metadata, with the expiry of the
// metadata at fault, the reference time and what to do.
func expiredError(remote string, up *updater.Updater, r reference, err error) error {
	what := "metadata"
	if role, expires, ok := expiredRole(up, r.time); ok {
		what = fmt.Sprintf("%s metadata expired at %s, and", role, stamp(expires))
	} else {
		what += " has expired:"
	}
	fix := "the repository (or this copy of it: a mirror, a stick) must be published again, as a new release renews every expiry"
	if r.time.Equal(r.clock) {
		fix = "either " + fix + ", or this node's clock is wrong (check it with timedatectl)"
	}
	return fmt.Errorf("refresh from %s: the repository's %s this node's reference time is %s: %s: %w",
		remote, what, r.describe(), fix, err)
}

// expiredRole returns the first of the updater's trusted metadata to be expired at ref, in
// the order go-tuf checks them. go-tuf keeps an expired root, timestamp or snapshot it
// refused (as the intermediate one) but not an expired targets, which is then not found.
func expiredRole(up *updater.Updater, ref time.Time) (role string, expires time.Time, ok bool) {
	tm := up.GetTrustedMetadataSet()
	if tm.Root != nil && tm.Root.Signed.IsExpired(ref) {
		return metadata.ROOT, tm.Root.Signed.Expires, true
	}
	if tm.Timestamp != nil && tm.Timestamp.Signed.IsExpired(ref) {
		return metadata.TIMESTAMP, tm.Timestamp.Signed.Expires, true
	}
	if tm.Snapshot != nil && tm.Snapshot.Signed.IsExpired(ref) {
		return metadata.SNAPSHOT, tm.Snapshot.Signed.Expires, true
	}
	if t := tm.Targets[metadata.TARGETS]; t != nil && t.Signed.IsExpired(ref) {
		return metadata.TARGETS, t.Signed.Expires, true
	}
	return "", time.Time{}, false
}

// stamp formats t for messages and the trusted-time file: RFC 3339, UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// readTrustedTime returns the newest signed time persisted in trustDir, zero if none.
func readTrustedTime(trustDir string) (time.Time, error) {
	p := filepath.Join(trustDir, trustedTimeName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("refresh: %w", err)
	}
	s, ok := strings.CutSuffix(string(data), "\n")
	t, err := time.Parse(time.RFC3339, s)
	if !ok || err != nil || stamp(t) != s {
		return time.Time{}, fmt.Errorf("refresh: %s is damaged (want a UTC time in RFC 3339, YYYY-MM-DDTHH:MM:SSZ, and a newline): refusing to guess the newest signed time this node has seen", p)
	}
	return t, nil
}

// writeTrustedTime persists t as the newest signed time seen in trustDir.
func writeTrustedTime(trustDir string, t time.Time) error {
	if err := atomicfile.WriteBytes(filepath.Join(trustDir, trustedTimeName), 0o600, []byte(stamp(t)+"\n")); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return nil
}
