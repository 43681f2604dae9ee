package agent_test

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/agent"
)

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFull(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, `
repositories     = ["https://office.example.org/satchel", "/media/usb/satchel"]  # in order of preference
trust            = "/etc/satchel/root.json"
interval         = "1h"
splay            = "5m"
bandwidth_limit  = "256k"
transfer_windows = ["18:00-06:00", "12:00–13:30"]
small_transfer   = "4M"
state_dir        = "/srv/satchel"
spool_max        = "1G"
bundle_paths     = ["/mnt/usb*"]
bundle_poll      = "5s"
`)
	got, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := agent.Config{
		Repositories:   []string{"https://office.example.org/satchel", "/media/usb/satchel"},
		Trust:          "/etc/satchel/root.json",
		Interval:       time.Hour,
		Splay:          5 * time.Minute,
		BandwidthLimit: 256 << 10,
		Windows:        []agent.Window{{Start: 18 * 60, End: 6 * 60}, {Start: 12 * 60, End: 13*60 + 30}},
		SmallTransfer:  4 << 20,
		StateDir:       "/srv/satchel",
		SpoolMax:       1 << 30,
		BundlePaths:    []string{"/mnt/usb*"},
		BundlePoll:     5 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	def := agent.DefaultConfig()
	want := agent.Config{Interval: 30 * time.Minute, Splay: 5 * time.Minute, SmallTransfer: 2 << 20,
		StateDir: "/var/lib/satchel", SpoolMax: 64 << 20,
		BundlePaths: []string{"/media/*", "/media/*/*", "/run/media/*/*"}, BundlePoll: 10 * time.Second}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("DefaultConfig = %+v, want %+v", def, want)
	}
	for name, tc := range map[string]struct {
		src  string
		want func(c *agent.Config)
	}{
		"empty file":             {"", func(*agent.Config) {}},
		"comments":               {"# nothing set\n// still nothing\n", func(*agent.Config) {}},
		"null":                   {"interval = null\nsplay = null\n", func(*agent.Config) {}},
		"no windows":             {"transfer_windows = []\n", func(*agent.Config) {}},
		"no cap":                 {"bandwidth_limit = \"0\"\n", func(*agent.Config) {}},
		"numbers":                {"bandwidth_limit = 4096\nsmall_transfer = 0\n", func(c *agent.Config) { c.BandwidthLimit, c.SmallTransfer = 4096, 0 }},
		"splay follows interval": {"interval = \"1h\"\n", func(c *agent.Config) { c.Interval, c.Splay = time.Hour, 10*time.Minute }},
		"explicit zero splay":    {"interval = \"1h\"\nsplay = \"0s\"\n", func(c *agent.Config) { c.Interval, c.Splay = time.Hour, 0 }},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := agent.LoadConfig(writeConfig(t, tc.src))
			if err != nil {
				t.Fatal(err)
			}
			want := agent.DefaultConfig()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("LoadConfig =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// Relative paths in the file are relative to the file's directory; URLs are left alone.
func TestLoadConfigRelativePaths(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, `
repositories = ["https://office.example.org/satchel", "mirror", "../usb"]
trust        = "root.json"
state_dir    = "state"
`)
	dir := filepath.Dir(p)
	got, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	wantRepos := []string{"https://office.example.org/satchel", filepath.Join(dir, "mirror"), filepath.Join(filepath.Dir(dir), "usb")}
	if !reflect.DeepEqual(got.Repositories, wantRepos) || got.Trust != filepath.Join(dir, "root.json") || got.StateDir != filepath.Join(dir, "state") {
		t.Errorf("got repositories %q, trust %q, state_dir %q", got.Repositories, got.Trust, got.StateDir)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "agent.hcl")
	_, err := agent.LoadConfig(p)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadConfig of a missing file: %v; want fs.ErrNotExist, naming the file", err)
	}
}

// Every problem in the file is reported with its position, as path:line,col.
func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		src  string
		want []string // each a line of the error, after "path:"
	}{
		"unknown attribute": {"trust = \"/etc/satchel/root.json\"\nintervall = \"1h\"\n",
			[]string{`2,1: Unsupported argument; An argument named "intervall" is not expected here. Did you mean "interval"?`}},
		"unknown attribute, no suggestion": {"interval = \"30m\"\nserver = \"x\"\n",
			[]string{`2,1: Unsupported argument; An argument named "server" is not expected here.`}},
		"block": {"server {\n}\n", []string{`1,1: Unsupported block type; Blocks of type "server" are not expected here.`}},
		"syntax error": {"interval = \"30m\"\nsplay = \n",
			[]string{"2,9: Invalid expression; Expected the start of an expression, but found an invalid expression token."}},
		"unterminated string": {"trust = \"/etc/satchel/root.json\n", []string{
			"1,32: Invalid multi-line string; Quoted strings may not be split over multiple lines.",
			"1,32: Unterminated template string; No closing marker was found for the string.",
		}},
		"duplicate": {"interval = \"30m\"\ninterval = \"1h\"\n", []string{`2,1: Attribute redefined; The argument "interval" was already set at `}},
		"variable":  {"interval = var.interval\n", []string{"1,12: Variables not allowed; "}},
		"function":  {"interval = upper(\"30m\")\n", []string{"1,12: Function calls not allowed; "}},
		"not a duration": {`interval = "30 minutes"`,
			[]string{`1,12: interval "30 minutes": want a duration such as 90s, 30m or 1h30m`}},
		"short interval":     {`interval = "30s"`, []string{"1,12: interval 30s is too short: the minimum is 1m"}},
		"negative splay":     {`splay = "-1m"`, []string{"1,9: splay -1m is negative"}},
		"long splay":         {"interval = \"10m\"\nsplay = \"11m\"\n", []string{"2,9: splay 11m is longer than interval 10m"}},
		"long default splay": {"splay = \"31m\"\n", []string{"1,9: splay 31m is longer than interval 30m"}},
		"list for string":    {`interval = ["30m"]`, []string{"1,12: interval must be a string"}},
		"string for list":    {`repositories = "https://office.example.org/satchel"`, []string{"1,16: repositories must be a list of strings"}},
		"null in list":       {`transfer_windows = ["18:00-06:00", null]`, []string{"1,20: transfer_windows must not contain null"}},
		"bad size":           {`bandwidth_limit = "256kb"`, []string{`1,19: bandwidth_limit: size "256kb": want a number of bytes`}},
		"negative size":      {`small_transfer = "-1"`, []string{`1,18: small_transfer: size "-1" is negative`}},
		"zero spool":         {`spool_max = "0"`, []string{"1,13: spool_max 0 is too small"}},
		"bad bundle paths": {`bundle_paths = ["media/*", "/media/[x"]`, []string{
			`1,17: bundle_paths: "media/*" is not an absolute path`,
			`1,28: bundle_paths: "/media/[x": syntax error in pattern`,
		}},
		"fast bundle poll": {`bundle_poll = "100ms"`, []string{"1,15: bundle_poll 100ms: want 1s or more"}},
		"bad window": {`transfer_windows = ["18:00-06:00", "25:00-06:00", "7-8"]`, []string{
			`1,36: transfer_windows: window "25:00-06:00": "25:00" is not a time of day`,
			`1,51: transfer_windows: window "7-8": "7" is not a time of day`,
		}},
		"bad repositories": {`repositories = ["ftp://x/y", "", "https:///satchel", "https://u:pw@office.example.org/"]`, []string{
			`1,17: repositories entry "ftp://x/y": want an http or https URL, or a directory written as a plain path`,
			`1,30: repositories has an empty entry`,
			`1,34: repositories entry "https:///satchel" has no host`,
			`1,54: repositories entry "https://u:xxxxx@office.example.org/" contains credentials; nodes authenticate with their certificate`,
		}},
		"duplicate repository": {`repositories = ["/media/usb", "/media/usb"]`, []string{`1,16: repositories lists "/media/usb" twice`}},
		"empty trust":          {`trust = ""`, nil}, // allowed here; Validate requires it
		"empty state_dir":      {`state_dir = ""`, []string{"1,13: state_dir is empty"}},
		"several problems": {"interval = \"1s\"\nfoo = 1\nspool_max = \"lots\"\nsplay = \"1h\"\n", []string{
			"1,12: interval 1s is too short: the minimum is 1m",
			`2,1: Unsupported argument; An argument named "foo" is not expected here.`,
			`3,13: spool_max: size "lots": want a number of bytes`,
			"4,9: splay 1h is longer than interval 1s",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := writeConfig(t, tc.src)
			_, err := agent.LoadConfig(p)
			if tc.want == nil {
				if err != nil {
					t.Errorf("LoadConfig: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadConfig: no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("error has %d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, want := range tc.want {
				if i < len(lines) && !strings.HasPrefix(lines[i], p+":"+want) {
					t.Errorf("line %d:\n%s\nwant it to start with\n%s:%s", i+1, lines[i], p, want)
				}
			}
		})
	}
}

func validConfig() agent.Config {
	c := agent.DefaultConfig()
	c.Repositories = []string{"https://office.example.org/satchel", "/media/usb/satchel"}
	c.Trust = "/etc/satchel/root.json"
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change func(c *agent.Config)
		want   string // "" for valid
	}{
		"valid":                {func(*agent.Config) {}, ""},
		"minimum interval":     {func(c *agent.Config) { c.Interval, c.Splay = time.Minute, time.Minute }, ""},
		"windows":              {func(c *agent.Config) { c.Windows = []agent.Window{{0, 1439}, {1439, 0}} }, ""},
		"empty repository":     {func(c *agent.Config) { c.Repositories = []string{""} }, "repositories has an empty entry; want a URL or a directory"},
		"bad scheme":           {func(c *agent.Config) { c.Repositories = []string{"file:///media/usb"} }, `repositories entry "file:///media/usb": want an http or https URL, or a directory written as a plain path`},
		"no host":              {func(c *agent.Config) { c.Repositories = []string{"https://"} }, `repositories entry "https://" has no host`},
		"bad URL":              {func(c *agent.Config) { c.Repositories = []string{"https://a b/%zz"} }, `repositories entry "https://a b/%zz" is not a valid URL`},
		"twice":                {func(c *agent.Config) { c.Repositories = []string{"/a", "/b", "/a"} }, `repositories lists "/a" twice`},
		"no trust":             {func(c *agent.Config) { c.Trust = "" }, ""}, // needed on the first run only: Open checks it
		"short interval":       {func(c *agent.Config) { c.Interval, c.Splay = 59*time.Second, 0 }, "interval 59s is too short: the minimum is 1m"},
		"zero interval":        {func(c *agent.Config) { c.Interval, c.Splay = 0, 0 }, "interval 0s is too short: the minimum is 1m"},
		"negative splay":       {func(c *agent.Config) { c.Splay = -time.Second }, "splay -1s is negative"},
		"long splay":           {func(c *agent.Config) { c.Splay = c.Interval + time.Second }, "splay 30m1s is longer than interval 30m"},
		"negative bandwidth":   {func(c *agent.Config) { c.BandwidthLimit = -1 }, "bandwidth_limit -1 is negative; 0 means no cap"},
		"negative small":       {func(c *agent.Config) { c.SmallTransfer = -1 }, "small_transfer -1 is negative; 0 means nothing outside transfer_windows"},
		"window range":         {func(c *agent.Config) { c.Windows = []agent.Window{{Start: 0, End: 1440}} }, "transfer_windows: window {Start: 0, End: 1440} is out of range: minutes after midnight go from 0 to 1439"},
		"negative window":      {func(c *agent.Config) { c.Windows = []agent.Window{{Start: -1, End: 60}} }, "transfer_windows: window {Start: -1, End: 60} is out of range"},
		"empty window":         {func(c *agent.Config) { c.Windows = []agent.Window{{Start: 60, End: 60}} }, "transfer_windows: window 01:00-01:00 starts where it ends"},
		"no state_dir":         {func(c *agent.Config) { c.StateDir = "" }, "state_dir is empty"},
		"zero spool":           {func(c *agent.Config) { c.SpoolMax = 0 }, "spool_max 0 is too small: the report spool needs room for at least one report"},
		"relative bundle path": {func(c *agent.Config) { c.BundlePaths = []string{"usb"} }, `bundle_paths: "usb" is not an absolute path`},
		"fast bundle poll":     {func(c *agent.Config) { c.BundlePoll = time.Millisecond }, "bundle_poll 1ms: want 1s or more"},
		"no bundle paths":      {func(c *agent.Config) { c.BundlePaths, c.BundlePoll = nil, 0 }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Validate: %v\nwant %s", err, tc.want)
			}
		})
	}
	// All problems at once, one per line.
	c := agent.Config{Interval: time.Second, Splay: time.Hour}
	err := c.Validate()
	if err == nil || len(strings.Split(err.Error(), "\n")) != 4 {
		t.Errorf("Validate of an empty config: %v; want 4 problems (interval, splay, state_dir, spool_max)", err)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"256k", 256 << 10, ""},
		{"256K", 256 << 10, ""},
		{"2M", 2 << 20, ""},
		{"2m", 2 << 20, ""},
		{"1G", 1 << 30, ""},
		{" 1g ", 1 << 30, ""},
		{"007", 7, ""},
		{"8589934591G", 8589934591 << 30, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"8589934592G", 0, "too large"},
		{"9223372036854775808", 0, "too large"},
		{"99999999999999999999k", 0, "too large"},
		{"-1", 0, "negative"},
		{"-1k", 0, "negative"},
		{"", 0, "want a number of bytes"},
		{"k", 0, "want a number of bytes"},
		{"+5", 0, "want a number of bytes"},
		{"1.5M", 0, "want a number of bytes"},
		{"2MB", 0, "want a number of bytes"},
		{"2T", 0, "want a number of bytes"},
		{"1 k", 0, "want a number of bytes"},
		{"0x10", 0, "want a number of bytes"},
		{"abc", 0, "want a number of bytes"},
	} {
		got, err := agent.ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error naming it and saying %q", tc.in, got, err, tc.err)
		}
	}
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want agent.Window
		str  string
		err  string
	}{
		{"18:00-06:00", agent.Window{1080, 360}, "18:00-06:00", ""},
		{"09:30-12:00", agent.Window{570, 720}, "09:30-12:00", ""},
		{"9:30-12:00", agent.Window{570, 720}, "09:30-12:00", ""},
		{"22:00–05:30", agent.Window{1320, 330}, "22:00-05:30", ""},
		{" 22:00 - 05:30 ", agent.Window{1320, 330}, "22:00-05:30", ""},
		{"00:00-23:59", agent.Window{0, 1439}, "00:00-23:59", ""},
		{"18:00-24:00", agent.Window{1080, 0}, "18:00-00:00", ""},
		{"00:00-00:01", agent.Window{0, 1}, "00:00-00:01", ""},
		{"18:00-18:00", agent.Window{}, "", "starts where it ends"},
		{"00:00-24:00", agent.Window{}, "", "starts where it ends"},
		{"24:00-06:00", agent.Window{}, "", `"24:00" is not a time of day`},
		{"18:00-24:01", agent.Window{}, "", `"24:01" is not a time of day`},
		{"18:60-06:00", agent.Window{}, "", `"18:60" is not a time of day`},
		{"18:00", agent.Window{}, "", "want a span of local time such as 18:00-06:00"},
		{"18-06", agent.Window{}, "", `"18" is not a time of day`},
		{"18:0-06:00", agent.Window{}, "", `"18:0" is not a time of day`},
		{"018:00-06:00", agent.Window{}, "", `"018:00" is not a time of day`},
		{"-1:00-06:00", agent.Window{}, "", `"" is not a time of day`},
		{"18:00-06:00-07:00", agent.Window{}, "", `"06:00-07:00" is not a time of day`},
		{"6pm-6am", agent.Window{}, "", `"6pm" is not a time of day`},
		{"", agent.Window{}, "", "want a span of local time"},
	} {
		got, err := agent.ParseWindow(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseWindow(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseWindow(%q) = %v (%s), %v; want %v (%s)", tc.in, got, got, err, tc.want, tc.str)
		}
	}
}

func at(hh, mm, ss int) time.Time {
	return time.Date(2026, 11, 26, hh, mm, ss, 0, time.UTC)
}

func TestInWindow(t *testing.T) {
	t.Parallel()
	night := agent.Window{Start: 18 * 60, End: 6 * 60}
	lunch := agent.Window{Start: 12 * 60, End: 13*60 + 30}
	for _, tc := range []struct {
		name string
		ws   []agent.Window
		t    time.Time
		want bool
	}{
		{"no windows", nil, at(12, 0, 0), true},
		{"empty list", []agent.Window{}, at(3, 0, 0), true},
		{"night before midnight", []agent.Window{night}, at(23, 0, 0), true},
		{"night after midnight", []agent.Window{night}, at(2, 0, 0), true},
		{"midnight", []agent.Window{night}, at(0, 0, 0), true},
		{"at the start", []agent.Window{night}, at(18, 0, 0), true},
		{"just before the start", []agent.Window{night}, at(17, 59, 59), false},
		{"just before the end", []agent.Window{night}, at(5, 59, 59), true},
		{"at the end", []agent.Window{night}, at(6, 0, 0), false},
		{"day", []agent.Window{night}, at(12, 0, 0), false},
		{"lunch start", []agent.Window{lunch}, at(12, 0, 0), true},
		{"lunch end", []agent.Window{lunch}, at(13, 30, 0), false},
		{"lunch inside", []agent.Window{lunch}, at(13, 29, 59), true},
		{"before lunch", []agent.Window{lunch}, at(11, 59, 0), false},
		{"several: night", []agent.Window{lunch, night}, at(4, 0, 0), true},
		{"several: lunch", []agent.Window{night, lunch}, at(12, 15, 0), true},
		{"several: neither", []agent.Window{night, lunch}, at(15, 0, 0), false},
		{"ending at midnight", []agent.Window{{Start: 22 * 60, End: 0}}, at(23, 59, 59), true},
		{"ending at midnight, at midnight", []agent.Window{{Start: 22 * 60, End: 0}}, at(0, 0, 0), false},
		{"starting at midnight", []agent.Window{{Start: 0, End: 60}}, at(0, 0, 0), true},
		{"invalid window contains nothing", []agent.Window{{Start: 60, End: 60}}, at(1, 0, 0), false},
		// Wall-clock time in t's location: 17:30 UTC is 18:30 in UTC+1.
		{"local time", []agent.Window{night}, at(17, 30, 0).In(time.FixedZone("UTC+1", 3600)), true},
		{"local time, outside", []agent.Window{night}, at(5, 30, 0).In(time.FixedZone("UTC+1", 3600)), false},
	} {
		if got := agent.InWindow(tc.ws, tc.t); got != tc.want {
			t.Errorf("%s: InWindow(%v, %v) = %v, want %v", tc.name, tc.ws, tc.t, got, tc.want)
		}
	}
}

func TestNextWindowStart(t *testing.T) {
	t.Parallel()
	night := agent.Window{Start: 18 * 60, End: 6 * 60}
	lunch := agent.Window{Start: 12 * 60, End: 13*60 + 30}
	early := agent.Window{Start: 0, End: 60}
	for _, tc := range []struct {
		name string
		ws   []agent.Window
		t    time.Time
		want time.Time
	}{
		{"no windows", nil, at(12, 0, 0), at(12, 0, 0)},
		{"inside", []agent.Window{night}, at(3, 0, 0), at(3, 0, 0)},
		{"at the start", []agent.Window{night}, at(18, 0, 0), at(18, 0, 0)},
		{"at the end", []agent.Window{night}, at(6, 0, 0), at(18, 0, 0)},
		{"during the day", []agent.Window{night}, at(12, 34, 56), at(18, 0, 0)},
		{"a second before", []agent.Window{night}, at(17, 59, 59), at(18, 0, 0)},
		{"across midnight", []agent.Window{early}, at(1, 0, 0), at(24, 0, 0)},
		{"across midnight, late", []agent.Window{early}, at(23, 59, 59), at(24, 0, 0)},
		{"several: lunch first", []agent.Window{night, lunch}, at(7, 0, 0), at(12, 0, 0)},
		{"several: then night", []agent.Window{lunch, night}, at(13, 30, 0), at(18, 0, 0)},
		{"several: tomorrow", []agent.Window{lunch, early}, at(14, 0, 0), at(24, 0, 0)},
		{"in t's location", []agent.Window{night}, at(12, 0, 0).In(time.FixedZone("UTC+3", 3*3600)), at(15, 0, 0)},
		{"invalid windows only", []agent.Window{{Start: 5, End: 5}}, at(12, 0, 0), at(12, 0, 0)},
	} {
		got := agent.NextWindowStart(tc.ws, tc.t)
		if !got.Equal(tc.want) || got.Location() != tc.t.Location() {
			t.Errorf("%s: NextWindowStart(%v, %v) = %v, want %v in %v", tc.name, tc.ws, tc.t, got, tc.want, tc.t.Location())
		}
	}
}

func loadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no time zone data for %s: %v", name, err)
	}
	return loc
}

// On the days clocks change, windows follow wall-clock time.
func TestNextWindowStartDST(t *testing.T) {
	t.Parallel()
	berlin := loadLocation(t, "Europe/Berlin")
	utc := func(mo time.Month, d, hh, mm int) time.Time { return time.Date(2026, mo, d, hh, mm, 0, 0, time.UTC) }
	w := func(s string) agent.Window {
		w, err := agent.ParseWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// 2026-03-29: 02:00 CET (01:00 UTC) becomes 03:00 CEST. 2026-10-25: 03:00 CEST (01:00
	// UTC) becomes 02:00 CET.
	for _, tc := range []struct {
		name string
		ws   []agent.Window
		t    time.Time // UTC; converted to Berlin
		want time.Time
	}{
		{"spring: night window the day before", []agent.Window{w("18:00-06:00")}, utc(3, 28, 12, 0), utc(3, 28, 17, 0)},
		{"spring: ends an hour earlier in UTC", []agent.Window{w("18:00-06:00")}, utc(3, 29, 4, 0), utc(3, 29, 16, 0)},
		{"spring: the start is skipped, opens at the jump", []agent.Window{w("02:30-04:00")}, utc(3, 28, 23, 0), utc(3, 29, 1, 0)},
		{"spring: wholly skipped, next day", []agent.Window{w("02:15-02:45")}, utc(3, 28, 23, 0), utc(3, 30, 0, 15)},
		{"spring: after the jump", []agent.Window{w("03:30-04:00")}, utc(3, 28, 23, 0), utc(3, 29, 1, 30)},
		{"spring: midnight", []agent.Window{w("00:00-01:00")}, utc(3, 29, 12, 0), utc(3, 29, 22, 0)},
		{"autumn: first 02:30", []agent.Window{w("02:30-02:45")}, utc(10, 24, 23, 0), utc(10, 25, 0, 30)},
		{"autumn: second 02:30", []agent.Window{w("02:30-02:45")}, utc(10, 25, 0, 50), utc(10, 25, 1, 30)},
		{"autumn: re-entered at the fall back", []agent.Window{w("01:00-02:30")}, utc(10, 25, 0, 40), utc(10, 25, 1, 0)},
		{"autumn: evening", []agent.Window{w("18:00-06:00")}, utc(10, 25, 12, 0), utc(10, 25, 17, 0)},
	} {
		tb := tc.t.In(berlin)
		got := agent.NextWindowStart(tc.ws, tb)
		if !got.Equal(tc.want) || got.Location() != berlin {
			t.Errorf("%s: NextWindowStart(%v, %v) = %v, want %v", tc.name, tc.ws, tb, got, tc.want.In(berlin))
		}
		if !agent.InWindow(tc.ws, got) {
			t.Errorf("%s: %v is not in the window", tc.name, got)
		}
	}
}

// NextWindowStart agrees with a minute-by-minute search, around every clock change of a
// year: in a zone that moves by an hour at 02:00, one that moves by half an hour, and one
// that moves at midnight.
func TestNextWindowStartMatchesSearch(t *testing.T) {
	t.Parallel()
	windows := [][]agent.Window{
		{{Start: 18 * 60, End: 6 * 60}},
		{{Start: 2*60 + 30, End: 4 * 60}},
		{{Start: 2*60 + 15, End: 2*60 + 45}},
		{{Start: 60, End: 2*60 + 30}},
		{{Start: 2 * 60, End: 2*60 + 1}, {Start: 23 * 60, End: 60}},
		{{Start: 1*60 + 45, End: 2*60 + 10}},
	}
	for _, name := range []string{"Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			loc := loadLocation(t, name)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
			for tr := start; tr.Year() == 2026; {
				_, end := tr.ZoneBounds()
				if end.IsZero() || end.Year() != 2026 {
					break
				}
				tr = end
				for _, ws := range windows {
					for m := -26 * 60; m < 6*60; m += 29 {
						at := tr.Add(time.Duration(m)*time.Minute + 13*time.Second)
						got := agent.NextWindowStart(ws, at)
						want := search(ws, at)
						if !got.Equal(want) {
							t.Fatalf("NextWindowStart(%v, %v) = %v, want %v", ws, at, got, want)
						}
					}
				}
			}
		})
	}
}

// search finds the next moment in ws by trying every minute (wall-clock minutes start on
// whole UTC minutes in these zones).
func search(ws []agent.Window, t time.Time) time.Time {
	if agent.InWindow(ws, t) {
		return t
	}
	c := t.Truncate(time.Minute)
	for range 2 * 24 * 60 {
		c = c.Add(time.Minute)
		if agent.InWindow(ws, c) {
			return c
		}
	}
	return t
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"18:00-06:00", "09:30-12:00", "22:00–05:30", "18:00-24:00", "x", "1:2-3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := agent.ParseWindow(s)
		if err != nil {
			return
		}
		w2, err := agent.ParseWindow(w.String())
		if err != nil || w2 != w || w.Start == w.End || w.Start < 0 || w.Start > 1439 || w.End < 0 || w.End > 1439 {
			t.Errorf("ParseWindow(%q) = %v; its String %q parses to %v, %v", s, w, w.String(), w2, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "4096", "256k", "2M", "1G", "-1", "8589934592G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := agent.ParseSize(s)
		if err == nil && n < 0 {
			t.Errorf("ParseSize(%q) = %d", s, n)
		}
	})
}
