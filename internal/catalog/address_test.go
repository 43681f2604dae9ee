package catalog

import (
	"strings"
	"testing"
)

func ptr(s string) *string { return &s }

func TestAddressRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr Address
		want string
	}{
		{Address{Type: "file", Name: "motd"}, `file.motd`},
		{Address{Type: "file", Name: "my-file_2"}, `file.my-file_2`},
		{Address{Type: "_t", Name: "_"}, `_t._`},
		{Address{Type: "file", Name: "conf", Key: ptr("a")}, `file.conf["a"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("")}, `file.conf[""]`},
		{Address{Type: "file", Name: "conf", Key: ptr(`say "hi"`)}, `file.conf["say \"hi\""]`},
		{Address{Type: "file", Name: "conf", Key: ptr(`back\slash`)}, `file.conf["back\\slash"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("ñandú 日本 🚀")}, `file.conf["ñandú 日本 🚀"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("<a&b>")}, `file.conf["<a&b>"]`}, // no HTML escaping
		{Address{Type: "file", Name: "conf", Key: ptr("tab\tnl\n")}, `file.conf["tab\tnl\n"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("a]b[c")}, `file.conf["a]b[c"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("x.y")}, `file.conf["x.y"]`},
		{Address{Type: "file", Name: "conf", Key: ptr("\x01")}, `file.conf["\u0001"]`},
	} {
		got := tc.addr.String()
		if got != tc.want {
			t.Errorf("String() = %s, want %s", got, tc.want)
			continue
		}
		back, err := ParseAddress(got)
		if err != nil {
			t.Errorf("ParseAddress(%s): %v", got, err)
			continue
		}
		if back.Type != tc.addr.Type || back.Name != tc.addr.Name || !equalKey(back.Key, tc.addr.Key) {
			t.Errorf("ParseAddress(%s) = %+v, want %+v", got, back, tc.addr)
		}
		if back.Base() != tc.addr.Type+"."+tc.addr.Name {
			t.Errorf("Base() = %s", back.Base())
		}
	}
}

func TestParseAddressRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"",
		"file",
		"file.",
		".motd",
		"file.motd.x",
		"1file.motd",
		"file.1motd",
		"-file.motd",
		"fi le.motd",
		"file.mo td",
		"file.motd[",
		"file.motd[]",
		`file.motd["a"`,
		`file.motd[a]`,
		`file.motd['a']`,
		`file.motd[1]`,
		`file.motd["a"]x`,
		`file.motd["a"]]`,
		`file.motd["a"]["b"]`,
		`file.motd[ "a"]`,
		`file.motd["\u0061"]`,  // not canonical: the canonical form is ["a"]
		`file.motd["\u003c"]`,  // not canonical: no HTML escaping
		`file.motd["a\/b"]`,    // not canonical
		"file.motd[\"\xff\"]",  // invalid UTF-8
		"fileé.motd",           // identifiers are ASCII
		`file.motd["a" ]`,      // spaces
		"file.motd[\"a\"]\n",   // trailing newline
		`file.motd[null]`,      // not a string
		`file.motd["a","b"]`,   // not one string
		`file.motd[""]extra[]`, // junk
	} {
		if a, err := ParseAddress(s); err == nil {
			t.Errorf("ParseAddress(%q) = %+v, want an error", s, a)
		} else if !strings.Contains(err.Error(), "address") {
			t.Errorf("ParseAddress(%q): error %q does not say what was wrong", s, err)
		}
	}
}

func TestIsIdentifier(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"a": true, "_": true, "A9": true, "a-b": true, "a_b-c9": true,
		"": false, "9a": false, "-a": false, "a.b": false, "a b": false, "é": false, "a\x00": false,
	} {
		if got := IsIdentifier(s); got != want {
			t.Errorf("IsIdentifier(%q) = %v, want %v", s, got, want)
		}
	}
}
