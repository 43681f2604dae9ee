package resource_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/schema"
)

func TestTypes(t *testing.T) {
	t.Parallel()
	var names []string
	for _, ty := range resource.Types() {
		names = append(names, ty.Schema.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Types() = %q, not sorted", names)
	}
	for _, want := range []string{"directory", "exec", "file", "hostname", "line", "package", "service", "symlink", "timer"} {
		if !slices.Contains(names, want) {
			t.Errorf("Types() = %q, missing %q", names, want)
		}
	}
	schemas := resource.Schemas()
	if len(schemas) != len(names) {
		t.Errorf("Schemas() has %d types, want %d", len(schemas), len(names))
	}
	for _, n := range names {
		if ty := resource.Lookup(n); ty == nil || ty.Schema != schemas[n] || ty.Schema.Name != n {
			t.Errorf("Lookup(%q) and Schemas()[%q] disagree", n, n)
		}
	}
	if resource.Lookup("nosuchtype") != nil || resource.Lookup("") != nil {
		t.Error("Lookup of an unknown type returned something")
	}
}

func TestSchemaDocumentsEverything(t *testing.T) {
	t.Parallel()
	for _, ty := range resource.Types() {
		s := ty.Schema
		if len(s.Doc) < 10 || !strings.HasSuffix(s.Doc, ".") {
			t.Errorf("type %s: doc %q is not a sentence", s.Name, s.Doc)
		}
		seen := map[string]bool{}
		for _, a := range s.Attributes {
			if seen[a.Name] {
				t.Errorf("type %s: attribute %s declared twice", s.Name, a.Name)
			}
			seen[a.Name] = true
			if len(a.Doc) < 10 || !strings.HasSuffix(a.Doc, ".") {
				t.Errorf("type %s, attribute %s: doc %q is not a sentence", s.Name, a.Name, a.Doc)
			}
			if a.Default != nil {
				if err := a.Validate(a.Default); err != nil {
					t.Errorf("type %s, attribute %s: the default %v is invalid: %v", s.Name, a.Name, a.Default, err)
				}
			}
		}
		if s.PathAttr != "" && !seen[s.PathAttr] {
			t.Errorf("type %s: PathAttr %q is not an attribute", s.Name, s.PathAttr)
		}
	}
}

func TestSchemaShape(t *testing.T) {
	t.Parallel()
	type attr struct {
		Type     schema.ValueType
		Format   schema.Format
		Required bool
		Default  any
		Enum     []string
	}
	presentAbsent := []string{"present", "absent"}
	want := map[string]map[string]attr{
		"file": {
			"path":    {schema.String, schema.FormatPath, true, nil, nil},
			"ensure":  {schema.String, "", false, "present", presentAbsent},
			"content": {schema.String, "", false, nil, nil},
			"source":  {schema.String, schema.FormatSource, false, nil, nil},
			"mode":    {schema.String, schema.FormatMode, false, nil, nil},
			"owner":   {schema.String, schema.FormatAccount, false, nil, nil},
			"group":   {schema.String, schema.FormatAccount, false, nil, nil},
			"backup":  {schema.Bool, "", false, true, nil},
			"force":   {schema.Bool, "", false, false, nil},
		},
		"directory": {
			"path":   {schema.String, schema.FormatPath, true, nil, nil},
			"ensure": {schema.String, "", false, "present", presentAbsent},
			"mode":   {schema.String, schema.FormatMode, false, nil, nil},
			"owner":  {schema.String, schema.FormatAccount, false, nil, nil},
			"group":  {schema.String, schema.FormatAccount, false, nil, nil},
			"purge":  {schema.Bool, "", false, false, nil},
			"force":  {schema.Bool, "", false, false, nil},
		},
		"symlink": {
			"path":   {schema.String, schema.FormatPath, true, nil, nil},
			"target": {schema.String, "", false, nil, nil},
			"ensure": {schema.String, "", false, "present", presentAbsent},
			"force":  {schema.Bool, "", false, false, nil},
		},
		"exec": {
			"command":      {schema.String, "", false, nil, nil},
			"argv":         {schema.ListString, "", false, nil, nil},
			"creates":      {schema.String, schema.FormatPath, false, nil, nil},
			"unless":       {schema.String, "", false, nil, nil},
			"onlyif":       {schema.String, "", false, nil, nil},
			"refresh_only": {schema.Bool, "", false, false, nil},
			"timeout":      {schema.String, schema.FormatDuration, false, "5m", nil},
			"cwd":          {schema.String, schema.FormatPath, false, "/", nil},
			"environment":  {schema.MapString, "", false, nil, nil},
		},
		"line": {
			"path":     {schema.String, schema.FormatPath, true, nil, nil},
			"line":     {schema.String, "", false, nil, nil},
			"match":    {schema.String, schema.FormatRegexp, false, nil, nil},
			"ensure":   {schema.String, "", false, "present", presentAbsent},
			"after":    {schema.String, schema.FormatRegexp, false, nil, nil},
			"multiple": {schema.Bool, "", false, false, nil},
			"backup":   {schema.Bool, "", false, true, nil},
		},
	}
	for name, attrs := range want {
		s := resource.Lookup(name).Schema
		if got := s.AttributeNames(); len(got) != len(attrs) {
			t.Errorf("%s: attributes %q, want %d of them", name, got, len(attrs))
		}
		for an, w := range attrs {
			a := s.Attribute(an)
			if a == nil {
				t.Errorf("%s has no attribute %s", name, an)
				continue
			}
			got := attr{a.Type, a.Format, a.Required, a.Default, a.Enum}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s.%s = %+v, want %+v", name, an, got, w)
			}
		}
	}
	// Which attribute names the managed path, who owns paths, who can be notified.
	for name, w := range map[string]struct {
		pathAttr           string
		ownsPath, refreshe bool
	}{
		"file": {"path", true, false}, "directory": {"path", true, false}, "symlink": {"path", true, false},
		"line": {"path", false, false}, "exec": {"", false, true},
	} {
		s := resource.Lookup(name).Schema
		if s.PathAttr != w.pathAttr || s.OwnsPath != w.ownsPath || s.Refreshable != w.refreshe {
			t.Errorf("%s: PathAttr %q, OwnsPath %v, Refreshable %v; want %+v", name, s.PathAttr, s.OwnsPath, s.Refreshable, w)
		}
	}
	if !resource.Lookup("exec").Schema.Attribute("cwd").AutoRequire {
		t.Error("exec.cwd does not require the resource managing the directory")
	}
}

func TestDecodeAppliesDefaults(t *testing.T) {
	t.Parallel()
	f := build(t, cat("file", "f", map[string]any{"path": "/f", "content": "x"})).(*resource.File)
	if f.Path != "/f" || f.Ensure != "present" || !f.Backup || f.Force || f.Mode != nil || f.Owner != nil ||
		f.Group != nil || f.Source != nil || f.Content == nil || *f.Content != "x" {
		t.Errorf("file decoded as %+v", f)
	}
	d := build(t, cat("directory", "d", map[string]any{"path": "/d"})).(*resource.Directory)
	if d.Ensure != "present" || d.Purge || d.Force || d.Mode != nil {
		t.Errorf("directory decoded as %+v", d)
	}
	s := build(t, cat("symlink", "s", map[string]any{"path": "/s", "target": "t"})).(*resource.Symlink)
	if s.Ensure != "present" || s.Force || s.Target != "t" {
		t.Errorf("symlink decoded as %+v", s)
	}
	e := build(t, cat("exec", "e", map[string]any{"command": "true"})).(*resource.Exec)
	if e.Timeout != "5m" || e.Cwd != "/" || e.RefreshOnly || e.Argv != nil || e.Creates != nil || e.Environment != nil {
		t.Errorf("exec decoded as %+v", e)
	}
	l := build(t, cat("line", "l", map[string]any{"path": "/l", "line": "x"})).(*resource.Line)
	if l.Ensure != "present" || l.Multiple || !l.Backup || l.Match != nil || l.After != nil {
		t.Errorf("line decoded as %+v", l)
	}
	// Values given override the defaults; null means unset.
	f = build(t, cat("file", "f", map[string]any{"path": "/f", "content": "x", "backup": false, "force": true, "mode": nil})).(*resource.File)
	if f.Backup || !f.Force || f.Mode != nil {
		t.Errorf("file decoded as %+v", f)
	}
	ref := sourceRef("a/b.bin", "bytes")
	f = build(t, cat("file", "f", map[string]any{"path": "/f", "source": ref})).(*resource.File)
	if f.Source == nil || *f.Source != (resource.SourceRef{Path: "files/a/b.bin", Size: 5, SHA256: sha256Hex("bytes")}) {
		t.Errorf("source decoded as %+v", f.Source)
	}
	e = build(t, cat("exec", "e", map[string]any{"argv": []string{"a", "b"}, "environment": map[string]string{"K": "V"}, "timeout": "30s"})).(*resource.Exec)
	if !slices.Equal(e.Argv, []string{"a", "b"}) || e.Environment["K"] != "V" || e.Timeout != "30s" {
		t.Errorf("exec decoded as %+v", e)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	goodSource := sourceRef("x", "x")
	for _, tc := range []struct {
		typ   string
		attrs map[string]any
		want  string
	}{
		{"nosuchtype", map[string]any{"name": "vim"}, `unknown resource type "nosuchtype"`},
		{"file", map[string]any{"path": "/f", "content": "x", "contents": "y"}, `type file has no attribute "contents"`},
		{"file", map[string]any{"path": "/f", "content": "x", "bogus": nil}, `type file has no attribute "bogus"`},
		{"file", map[string]any{"content": "x"}, "required attribute path is missing"},
		{"file", map[string]any{"path": nil, "content": "x"}, "required attribute path is missing"},
		{"directory", map[string]any{}, "required attribute path is missing"},
		{"line", map[string]any{"line": "x"}, "required attribute path is missing"},

		{"file", map[string]any{"path": "etc/motd", "content": "x"}, `path: Invalid path: "etc/motd" is not an absolute path`},
		{"file", map[string]any{"path": "", "content": "x"}, `path: Invalid path: "" is not an absolute path`},
		{"file", map[string]any{"path": "/etc/../motd", "content": "x"}, `path: Invalid path: "/etc/../motd" is not clean (write "/motd")`},
		{"file", map[string]any{"path": "/etc/motd/", "content": "x"}, `path: Invalid path: "/etc/motd/" is not clean (write "/etc/motd")`},
		{"symlink", map[string]any{"path": "rel", "target": "x"}, `path: Invalid path: "rel" is not an absolute path`},
		{"exec", map[string]any{"command": "true", "cwd": "tmp"}, `cwd: Invalid path: "tmp" is not an absolute path`},
		{"exec", map[string]any{"command": "true", "creates": "./x"}, `creates: Invalid path: "./x" is not an absolute path`},

		{"file", map[string]any{"path": "/f", "content": "x", "mode": "999"}, `mode: Invalid mode: "999" is not an octal mode such as "0644"`},
		{"file", map[string]any{"path": "/f", "content": "x", "mode": "17777"}, `mode: Invalid mode: "17777" is not an octal mode such as "0644"`},
		{"file", map[string]any{"path": "/f", "content": "x", "mode": "rw"}, `mode: Invalid mode: "rw" is not an octal mode such as "0644"`},
		{"directory", map[string]any{"path": "/d", "mode": "0o755"}, `mode: Invalid mode: "0o755" is not an octal mode such as "0644"`},
		{"file", map[string]any{"path": "/f", "content": "x", "mode": 644}, "attribute mode: json: cannot unmarshal number into Go value of type string"},
		{"file", map[string]any{"path": "/f", "content": "x", "owner": "a:b"}, `owner: Invalid account: "a:b" is not a user or group name or number`},
		{"directory", map[string]any{"path": "/d", "group": ""}, `group: Invalid account: "" is not a user or group name or number`},
		{"file", map[string]any{"path": "/f", "content": "x", "ensure": "maybe"}, `ensure: Invalid value: "maybe" is not one of "present", "absent".`},
		{"file", map[string]any{"path": "/f", "content": "x", "backup": "yes"}, "attribute backup: json: cannot unmarshal string into Go value of type bool"},
		{"exec", map[string]any{"command": "true", "timeout": "soon"}, `timeout: Invalid duration: "soon" is not a duration such as "30s" or "5m"`},
		{"exec", map[string]any{"command": "true", "timeout": "0s"}, `timeout: Invalid duration: "0s": a duration must be positive`},
		{"line", map[string]any{"path": "/f", "line": "x", "match": "("}, "match: Invalid regexp: \"(\" is not a valid regular expression: error parsing regexp: missing closing ): `(`"},
		{"line", map[string]any{"path": "/f", "line": "x", "after": "[z-a]"}, "after: Invalid regexp: \"[z-a]\" is not a valid regular expression: error parsing regexp: invalid character class range: `z-a`"},

		{"file", map[string]any{"path": "/f"}, "content: Missing content: a file that is present needs content or source."},
		{"file", map[string]any{"path": "/f", "content": "x", "source": goodSource}, "source: Conflicting attributes: content and source are exclusive: give one of them."},
		{"file", map[string]any{"path": "/f", "source": "files/x"}, "attribute source: json: cannot unmarshal string into Go value of type resource.SourceRef"},
		{"file", map[string]any{"path": "/f", "source": map[string]any{"path": "files/x", "size": 1}}, `source: Invalid source: sha256 "" is not 64 lower-case hex digits`},
		{"file", map[string]any{"path": "/f", "source": map[string]any{"path": "files/x", "size": 1, "sha256": strings.ToUpper(sha256Hex("x"))}}, `source: Invalid source: sha256 "` + strings.ToUpper(sha256Hex("x")) + `" is not 64 lower-case hex digits`},
		{"file", map[string]any{"path": "/f", "source": map[string]any{"path": "files/x", "size": -1, "sha256": sha256Hex("x")}}, "source: Invalid source: size -1 is negative"},
		{"file", map[string]any{"path": "/f", "source": map[string]any{"path": "../x", "size": 1, "sha256": sha256Hex("x")}}, `source: Invalid source: "../x" must be a clean relative path under files/, without ".."`},
		{"file", map[string]any{"path": "/f", "source": map[string]any{"path": "/etc/shadow", "size": 1, "sha256": sha256Hex("x")}}, `source: Invalid source: "/etc/shadow" must be a clean relative path under files/, without ".."`},

		{"symlink", map[string]any{"path": "/l"}, "target: Missing target: a symlink that is present needs a target."},
		{"symlink", map[string]any{"path": "/l", "target": ""}, "target: Missing target: a symlink that is present needs a target."},
		{"exec", map[string]any{}, "command: Missing or conflicting command: give exactly one of command (a shell command) and argv (a program and its arguments)."},
		{"exec", map[string]any{"command": "true", "argv": []string{"true"}}, "command: Missing or conflicting command: give exactly one of command (a shell command) and argv (a program and its arguments)."},
		{"exec", map[string]any{"argv": []string{}}, "argv: Empty argv: argv needs at least the program to run."},
		{"exec", map[string]any{"argv": "true"}, "attribute argv: json: cannot unmarshal string into Go value of type []string"},
		{"line", map[string]any{"path": "/f"}, `line: Missing line: give the line to add (or, with ensure = "absent", a line or a match).`},
		{"line", map[string]any{"path": "/f", "ensure": "absent"}, `line: Missing line: give the line to add (or, with ensure = "absent", a line or a match).`},
		{"line", map[string]any{"path": "/f", "line": ""}, `line: Missing line: give the line to add (or, with ensure = "absent", a line or a match).`},
		{"line", map[string]any{"path": "/f", "line": nil, "match": "^x"}, `line: Missing line: give the line to add (or, with ensure = "absent", a line or a match).`},
		{"line", map[string]any{"path": "/f", "line": "a\nb"}, "line: Invalid line: line must not contain a newline."},
		{"line", map[string]any{"path": "/f", "line": "a\r"}, "line: Invalid line: line must not contain a newline."},
	} {
		_, err := resource.New(cat(tc.typ, "x", tc.attrs))
		if err == nil {
			t.Errorf("%s %v: decoded, want error %q", tc.typ, tc.attrs, tc.want)
		} else if err.Error() != tc.want {
			t.Errorf("%s %v: error\n  %s\nwant\n  %s", tc.typ, tc.attrs, err, tc.want)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ   string
		attrs map[string]any
	}{
		{"file", map[string]any{"path": "/f", "ensure": "absent"}},
		{"file", map[string]any{"path": "/f", "content": ""}},
		{"file", map[string]any{"path": "/f", "content": "x", "mode": "644", "owner": "1000", "group": "www-data"}},
		{"file", map[string]any{"path": "/f", "content": "x", "mode": "7777"}},
		{"file", map[string]any{"path": "/f", "source": sourceRef("x", "x")}},
		{"directory", map[string]any{"path": "/"}},
		{"symlink", map[string]any{"path": "/l", "ensure": "absent"}},
		{"exec", map[string]any{"argv": []string{"true"}, "timeout": "1h30m"}},
		{"line", map[string]any{"path": "/f", "ensure": "absent", "match": "^x"}},
	} {
		if _, err := resource.New(cat(tc.typ, "x", tc.attrs)); err != nil {
			t.Errorf("%s %v: %v", tc.typ, tc.attrs, err)
		}
	}
}

// TestDecodeFromCatalogJSON decodes a resource as it arrives in a catalog file.
func TestDecodeFromCatalogJSON(t *testing.T) {
	t.Parallel()
	const doc = `{"address": "file.motd", "type": "file", "name": "motd",
		"attributes": {"path": "/etc/motd", "content": "hi\n", "mode": "0600"},
		"sensitive": ["content"], "origin": "site.hcl:3:1"}`
	var cr catalog.Resource
	if err := json.Unmarshal([]byte(doc), &cr); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t)
	fx.contract(&cr, "ensure: absent -> present", "parents: absent -> /etc")
	fx.assertFile("/etc/motd", "hi\n", 0o600, 0, 0)
}
