package schema

import (
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint32{"0644": 0o644, "644": 0o644, "2775": 0o2775, "0000": 0, "7777": 0o7777} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "64", "999", "0o644", "12345", "rw-r--r--", "-644"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}

func TestCheckPath(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"/", "/etc/motd", "/srv/a b/c"} {
		if err := CheckPath(ok); err != nil {
			t.Errorf("CheckPath(%q): %v", ok, err)
		}
	}
	for bad, msg := range map[string]string{
		"etc/motd": "not an absolute path", "/etc/../x": "not clean", "/etc/": "not clean",
		"//etc": "not clean", "/a\x00b": "NUL",
	} {
		if err := CheckPath(bad); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("CheckPath(%q) = %v; want %q", bad, err, msg)
		}
	}
}

func TestAttributeValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		attr  Attribute
		value any
		err   string
	}{
		{Attribute{Name: "ensure", Enum: []string{"present", "absent"}}, "present", ""},
		{Attribute{Name: "ensure", Enum: []string{"present", "absent"}}, "gone", `"gone" is not one of "present", "absent"`},
		{Attribute{Name: "mode", Format: FormatMode}, "0644", ""},
		{Attribute{Name: "mode", Format: FormatMode}, "999", "not an octal mode"},
		{Attribute{Name: "timeout", Format: FormatDuration}, "30s", ""},
		{Attribute{Name: "timeout", Format: FormatDuration}, "-1s", "must be positive"},
		{Attribute{Name: "timeout", Format: FormatDuration}, "soon", "not a duration"},
		{Attribute{Name: "match", Format: FormatRegexp}, "^a+$", ""},
		{Attribute{Name: "match", Format: FormatRegexp}, "(", "not a valid regular expression"},
		{Attribute{Name: "owner", Format: FormatAccount}, "www-data", ""},
		{Attribute{Name: "owner", Format: FormatAccount}, "a:b", "not a user or group"},
		{Attribute{Name: "source", Format: FormatSource}, "squid/big.bin", ""},
		{Attribute{Name: "source", Format: FormatSource}, "../etc/passwd", "without \"..\""},
		{Attribute{Name: "source", Format: FormatSource}, "/etc/passwd", "clean relative path"},
		{Attribute{Name: "path", Format: FormatPath}, 42.0, ""}, // not a string: type conversion's job
	}
	for _, c := range cases {
		err := c.attr.Validate(c.value)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s = %v: %v", c.attr.Name, c.value, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s = %v: error %v, want %q", c.attr.Name, c.value, err, c.err)
		}
	}
}
