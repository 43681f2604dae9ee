package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const year = 365 * 24 * time.Hour

func TestReferenceTime(t *testing.T) {
	t.Parallel()
	f := floor{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), "the newest signed time"}
	y1970 := time.Unix(0, 0).UTC()
	for _, c := range []struct {
		name   string
		clock  time.Time
		floor  floor
		want   time.Time
		warned []string // in the warning, in order; nil for none
	}{
		{"no floor, 1970", y1970, floor{}, y1970, nil},
		{"no floor, 2040", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), floor{}, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		{"sane", f.time.Add(200 * 24 * time.Hour), f, f.time.Add(200 * 24 * time.Hour), nil},
		{"equal", f.time, f, f.time, nil},
		{"behind by a minute", f.time.Add(-time.Minute), f, f.time, nil},
		{"behind by an hour", f.time.Add(-time.Hour), f, f.time,
			[]string{"clock says 2026-03-01T11:00:00Z, before 2026-03-01T12:00:00Z (the newest signed time)", "against 2026-03-01T12:00:00Z", "timedatectl"}},
		{"1970", y1970, f, f.time, []string{"1970-01-01T00:00:00Z", "dead RTC battery"}},
		{"ahead by the limit", f.time.Add(ClockSuspectAfter), f, f.time.Add(ClockSuspectAfter), nil},
		{"ahead by more", f.time.Add(ClockSuspectAfter + time.Second), f, f.time,
			[]string{"clock says 2029-02-28T12:00:01Z, more than 3 years after 2026-03-01T12:00:00Z (the newest signed time): the clock is not trusted, so expiry is checked against 2026-03-01T12:00:00Z"}},
		{"not UTC", f.time.Add(time.Hour).In(time.FixedZone("X", 3600)), f, f.time.Add(time.Hour), nil},
	} {
		r := referenceTime(c.clock, c.floor)
		if !r.time.Equal(c.want) || r.time.Location() != time.UTC {
			t.Errorf("%s: reference %v, want %v", c.name, r.time, c.want)
		}
		if (r.warn == "") != (c.warned == nil) {
			t.Errorf("%s: warning %q", c.name, r.warn)
		}
		rest := r.warn
		for _, w := range c.warned {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%s: warning %q lacks %q", c.name, r.warn, w)
				break
			}
			rest = rest[i+len(w):]
		}
	}
}

func TestNodeFloor(t *testing.T) {
	t.Parallel()
	seen := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	built := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if f := nodeFloor(time.Time{}, time.Time{}); !f.time.IsZero() {
		t.Errorf("no times: %+v", f)
	}
	if f := nodeFloor(seen, time.Time{}); !f.time.Equal(seen) || !strings.Contains(f.from, "signed") {
		t.Errorf("seen only: %+v", f)
	}
	if f := nodeFloor(seen, built); !f.time.Equal(built) || !strings.Contains(f.from, "built") {
		t.Errorf("built later: %+v", f)
	}
	if f := nodeFloor(built, seen); !f.time.Equal(built) || !strings.Contains(f.from, "signed") {
		t.Errorf("seen later: %+v", f)
	}
}

func TestBuildTimeOf(t *testing.T) {
	t.Parallel()
	info := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	want := time.Date(2026, 11, 2, 10, 4, 5, 0, time.UTC)
	if got := buildTimeOf(info("vcs", "git", "vcs.time", "2026-11-02T10:04:05Z")); !got.Equal(want) {
		t.Errorf("vcs.time: %v", got)
	}
	if got := buildTimeOf(info("vcs.time", "2026-11-02T11:04:05+01:00")); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("vcs.time with an offset: %v", got)
	}
	for _, bi := range []*debug.BuildInfo{info(), info("vcs.time", "yesterday"), info("vcs.revision", "abc")} {
		if got := buildTimeOf(bi); !got.IsZero() {
			t.Errorf("%v: %v, want none", bi.Settings, got)
		}
	}
}

func trustedTimeFile(t *testing.T, trust string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(trust, trustedTimeName))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	must(t, err)
	return string(data)
}

// needNoBuildTime skips a test whose expectations assume no build floor: test binaries
// carry no vcs.time today.
func needNoBuildTime(t *testing.T) {
	t.Helper()
	if b := buildTime(); !b.IsZero() {
		t.Skipf("this test binary carries a build time (%v); the test assumes none", b)
	}
}

// at returns a clock stopped at tm.
func at(tm time.Time) func() time.Time { return func() time.Time { return tm } }

// warnings returns a Warn function and the messages it was told.
func warnings() (func(string), *[]string) {
	var got []string
	return func(msg string) { got = append(got, msg) }, &got
}

// A node whose clock is wrong, behind (a dead RTC battery) or years ahead, accepts a newer
// release and refuses a replayed old repository.
func TestRefreshWrongClock(t *testing.T) {
	t.Parallel()
	needNoBuildTime(t)
	base := time.Now().UTC().Truncate(time.Second)
	t1, t2 := base.Add(-2*time.Hour), base.Add(-time.Hour)
	for _, c := range []struct {
		name  string
		clock time.Time
		warn  []string
	}{
		{"1970", time.Unix(0, 0), []string{"clock says 1970-01-01T00:00:00Z, before " + stamp(t1), "dead RTC battery", "checked against " + stamp(t1)}},
		{"2040", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), []string{"clock says 2040-01-01T00:00:00Z, more than 3 years after " + stamp(t1), "not trusted", "checked against " + stamp(t1)}},
	} {
		for _, kind := range []string{"dir", "http"} {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				repo, keys := newRepo(t)
				remote := remotes(t, repo)[kind]
				cfg := writeConfig(t, "8080")
				_, err := Publish(ctx, repo, keys, cfg, Options{Now: at(t1)})
				must(t, err)
				trust := newTrust(t, repo)
				m, err := Refresh(ctx, remote, trust, RefreshOptions{}) // the real clock
				must(t, err)
				if m.Version != 1 || trustedTimeFile(t, trust) != stamp(t1)+"\n" {
					t.Fatalf("release 1: %d, trusted time %q", m.Version, trustedTimeFile(t, trust))
				}
				old := filepath.Join(t.TempDir(), "old")
				must(t, os.CopyFS(old, os.DirFS(repo)))
				oldRemote := remotes(t, old)[kind]
				must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
				_, err = Publish(ctx, repo, keys, cfg, Options{Now: at(t2)})
				must(t, err)

				warn, warned := warnings()
				opts := RefreshOptions{Now: at(c.clock), Warn: warn}
				m, err = Refresh(ctx, remote, trust, opts)
				must(t, err)
				if m.Version != 2 || !m.Created.Equal(t2) {
					t.Fatalf("release 2: %+v", m)
				}
				if len(*warned) != 1 {
					t.Fatalf("warnings: %q", *warned)
				}
				rest := (*warned)[0]
				for _, w := range c.warn {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Fatalf("warning %q lacks %q", (*warned)[0], w)
					}
					rest = rest[i+len(w):]
				}
				t.Log((*warned)[0])
				if h, tt := highestFile(t, trust), trustedTimeFile(t, trust); h != "2\n" || tt != stamp(t2)+"\n" {
					t.Fatalf("after release 2: highest %q, trusted time %q", h, tt)
				}

				// The replayed repository holding only release 1: go-tuf's versions refuse it.
				before := snapshotDir(t, trust)
				m, err = Refresh(ctx, oldRemote, trust, opts)
				if m != nil || !errors.Is(err, ErrRollback) || !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
					t.Fatalf("Refresh of the old repository: %v, %v", m, err)
				}
				if snapshotDir(t, trust) != before {
					t.Fatal("trust state changed")
				}
				// With go-tuf's metadata cache lost, the highest release refuses it.
				for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
					must(t, os.Remove(filepath.Join(trust, TrustMetadataDir, role+".json")))
				}
				m, err = Refresh(ctx, oldRemote, trust, opts)
				if m != nil || !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "its newest release is 1, but this node has already seen release 2") {
					t.Fatalf("Refresh of the old repository without cached metadata: %v, %v", m, err)
				}
				if h, tt := highestFile(t, trust), trustedTimeFile(t, trust); h != "2\n" || tt != stamp(t2)+"\n" {
					t.Fatalf("after the replays: highest %q, trusted time %q", h, tt)
				}
				if len(*warned) != 3 {
					t.Fatalf("warnings: %q", *warned)
				}
			})
		}
	}
}

// A node that has never refreshed (no floor) uses its clock as it is, even 1970.
func TestRefreshFreshNodeIn1970(t *testing.T) {
	t.Parallel()
	needNoBuildTime(t)
	ctx := context.Background()
	repo, keys := newRepo(t)
	p1, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	trust := newTrust(t, repo)
	warn, warned := warnings()
	opts := RefreshOptions{Now: at(time.Unix(0, 0)), Warn: warn}
	m, err := Refresh(ctx, repo, trust, opts)
	must(t, err)
	if m.Version != 1 || len(*warned) != 0 {
		t.Fatalf("version %d, warnings %q", m.Version, *warned)
	}
	if tt := trustedTimeFile(t, trust); tt != stamp(p1.Manifest.Created)+"\n" {
		t.Fatalf("trusted time %q", tt)
	}
	// Now the node has a floor, and its clock is found behind it.
	m, err = Refresh(ctx, serve(t, repo), trust, opts)
	must(t, err)
	if m.Version != 1 || len(*warned) != 1 || !strings.Contains((*warned)[0], "1970-01-01T00:00:00Z, before "+stamp(p1.Manifest.Created)) {
		t.Fatalf("version %d, warnings %q", m.Version, *warned)
	}
}

// Metadata expired according to the node's reference time is refused with a message that
// says what expired when, against what time, and what to do; nothing the node persisted
// changes.
func TestRefreshRefusesExpired(t *testing.T) {
	t.Parallel()
	needNoBuildTime(t)
	base := time.Now().UTC().Truncate(time.Second)
	for _, c := range []struct {
		name          string
		t1, t2, clock time.Time // release 1 (refreshed at t1), release 2, the node's clock
		want          []string
		fixable       bool // release 2 is accepted once the clock is set right
	}{
		{
			// The repository has not published for two years (or this mirror is stale);
			// the node's clock is right.
			name: "stale repository", t1: base.Add(-2*year - 24*time.Hour), t2: base.Add(-2 * year), clock: base,
			want: []string{
				"the repository's timestamp metadata expired at " + stamp(base.Add(-year)),
				"this node's reference time is " + stamp(base) + " (its clock)",
				"must be published again", "or this node's clock is wrong (check it with timedatectl)",
				"timestamp.json is expired",
			},
		},
		{
			// The repository is fine; the node's clock is two years ahead (less than
			// ClockSuspectAfter, so it is believed).
			name: "clock 2 years ahead", t1: base.Add(-time.Hour), t2: base, clock: base.Add(2 * year),
			want: []string{
				"the repository's timestamp metadata expired at " + stamp(base.Add(year)),
				"this node's reference time is " + stamp(base.Add(2*year)) + " (its clock)",
				"or this node's clock is wrong (check it with timedatectl)",
			},
			fixable: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			repo, keys := newRepo(t)
			cfg := writeConfig(t, "8080")
			_, err := Publish(ctx, repo, keys, cfg, Options{Now: at(c.t1)})
			must(t, err)
			trust := newTrust(t, repo)
			m, err := Refresh(ctx, repo, trust, RefreshOptions{Now: at(c.t1.Add(time.Minute))})
			must(t, err)
			if m.Version != 1 || trustedTimeFile(t, trust) != stamp(c.t1)+"\n" {
				t.Fatalf("release 1: %d, trusted time %q", m.Version, trustedTimeFile(t, trust))
			}
			must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
			_, err = Publish(ctx, repo, keys, cfg, Options{Now: at(c.t2)})
			must(t, err)
			before := snapshotDir(t, trust)
			warn, warned := warnings()
			for name, remote := range remotes(t, repo) {
				m, err := Refresh(ctx, remote, trust, RefreshOptions{Now: at(c.clock), Warn: warn})
				if m != nil || !errors.Is(err, &metadata.ErrExpiredMetadata{}) || errors.Is(err, ErrRollback) {
					t.Fatalf("%s: Refresh: %v, %v", name, m, err)
				}
				rest := err.Error()
				for _, w := range c.want {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Fatalf("%s: the error %q lacks %q", name, err, w)
					}
					rest = rest[i+len(w):]
				}
				t.Logf("%s: %v", name, err)
				if after := snapshotDir(t, trust); after != before {
					t.Fatalf("%s: trust state changed:\n%s\nthen\n%s", name, before, after)
				}
			}
			if len(*warned) != 0 {
				t.Fatalf("warnings: %q", *warned)
			}
			m, err = Refresh(ctx, repo, trust, RefreshOptions{Now: at(base)})
			if !c.fixable {
				if m != nil || !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
					t.Fatalf("with the clock right: %v, %v", m, err)
				}
			} else {
				must(t, err)
				if m.Version != 2 || trustedTimeFile(t, trust) != stamp(c.t2)+"\n" {
					t.Fatalf("with the clock set right: %d, trusted time %q", m.Version, trustedTimeFile(t, trust))
				}
			}
		})
	}
}

// Expiry checked against the floor, not the clock: a copy of the repository whose metadata
// expired before a release the node has seen was created is refused even by a node whose
// clock says 1970, and the message does not blame the clock.
func TestRefreshRefusesExpiredBeforeFloor(t *testing.T) {
	t.Parallel()
	needNoBuildTime(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Second)
	repo, keys := newRepo(t)
	cfg := writeConfig(t, "8080")
	_, err := Publish(ctx, repo, keys, cfg, Options{Now: at(base.Add(-2 * year))})
	must(t, err)
	old := filepath.Join(t.TempDir(), "old")
	must(t, os.CopyFS(old, os.DirFS(repo)))
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("more"), 0o644))
	_, err = Publish(ctx, repo, keys, cfg, Options{Now: at(base)})
	must(t, err)
	trust := newTrust(t, repo)
	_, err = Refresh(ctx, repo, trust, RefreshOptions{})
	must(t, err)
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		must(t, os.Remove(filepath.Join(trust, TrustMetadataDir, role+".json")))
	}
	before := snapshotDir(t, trust)
	warn, warned := warnings()
	m, err := Refresh(ctx, old, trust, RefreshOptions{Now: at(time.Unix(0, 0)), Warn: warn})
	if m != nil || !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Fatalf("Refresh: %v, %v", m, err)
	}
	for _, w := range []string{
		"the repository's timestamp metadata expired at " + stamp(base.Add(-year)),
		"this node's reference time is " + stamp(base) + " (the newest signed time this node has seen",
		"its clock, which says 1970-01-01T00:00:00Z, is not trusted",
		"must be published again",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("the error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "timedatectl") {
		t.Fatalf("the error blames the clock: %v", err)
	}
	t.Log(err)
	if len(*warned) != 1 || snapshotDir(t, trust) != before {
		t.Fatalf("warnings %q, or trust state changed", *warned)
	}
}

func TestRefreshRefusesDamagedTrustedTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo, keys := newRepo(t)
	_, err := Publish(ctx, repo, keys, writeConfig(t, "8080"), Options{})
	must(t, err)
	trust := newTrust(t, repo)
	p := filepath.Join(trust, trustedTimeName)
	for _, bad := range []string{
		"", "\n", "yesterday\n", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z\n\n",
		"2026-01-02T04:04:05+01:00\n", "2026-01-02T03:04:05.5Z\n", "2026-01-02 03:04:05Z\n",
	} {
		must(t, os.WriteFile(p, []byte(bad), 0o600))
		before := snapshotDir(t, trust)
		m, err := Refresh(ctx, repo, trust, RefreshOptions{})
		if m != nil || err == nil || !strings.Contains(err.Error(), p+" is damaged") {
			t.Fatalf("%q: %v, %v", bad, m, err)
		}
		if snapshotDir(t, trust) != before {
			t.Fatalf("%q: trust state changed", bad)
		}
	}
	must(t, os.Remove(p))
	m, err := Refresh(ctx, repo, trust, RefreshOptions{})
	must(t, err)
	if tt := trustedTimeFile(t, trust); tt != stamp(m.Created)+"\n" {
		t.Fatalf("trusted time %q", tt)
	}
}

// A publisher whose clock was years ahead once does not poison the nodes whose clocks are
// right: their floor moves only up to their clock, so the correctly dated release that
// follows is accepted.
func TestRefreshFutureDatedReleaseDoesNotPoison(t *testing.T) {
	t.Parallel()
	needNoBuildTime(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	repo, keys := newRepo(t)
	cfg := writeConfig(t, "8080")
	_, err := Publish(ctx, repo, keys, cfg, Options{Now: at(now.Add(-time.Hour))})
	must(t, err)
	trust := newTrust(t, repo)
	_, err = Refresh(ctx, repo, trust, RefreshOptions{Now: at(now)})
	must(t, err)
	future := now.AddDate(5, 0, 0)
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("2"), 0o644))
	_, err = Publish(ctx, repo, keys, cfg, Options{Now: at(future)})
	must(t, err)
	m, err := Refresh(ctx, repo, trust, RefreshOptions{Now: at(now)})
	must(t, err)
	if m.Version != 2 || trustedTimeFile(t, trust) != stamp(now)+"\n" {
		t.Fatalf("future-dated release 2: version %d, trusted time %q; want the node's clock, %s", m.Version, trustedTimeFile(t, trust), stamp(now))
	}
	// The publisher's clock is put right; release 3 is dated now, and its metadata
	// expires a year from now: accepted.
	must(t, os.WriteFile(filepath.Join(cfg, "extra.txt"), []byte("3"), 0o644))
	_, err = Publish(ctx, repo, keys, cfg, Options{Now: at(now.Add(time.Minute))})
	must(t, err)
	m, err = Refresh(ctx, repo, trust, RefreshOptions{Now: at(now.Add(2 * time.Minute))})
	if err != nil || m.Version != 3 {
		t.Fatalf("release 3 after a future-dated one: %v, %v", m, err)
	}
}
