package catalog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// sample is a catalog with a keyed resource, edges in both lists, a sensitive attribute and
// values that tempt an encoder to escape or reorder.
func sample() *Catalog {
	c := New("school-001")
	c.Resources = []*Resource{
		{Address: `file.site["b"]`, Type: "file", Name: "site", Key: ptr("b"),
			Attributes: map[string]json.RawMessage{"path": json.RawMessage(`"/b"`), "content": json.RawMessage(`"<b>&</b>"`)},
			Require:    []string{"directory.etc", "directory.etc"}},
		{Address: "directory.etc", Type: "directory", Name: "etc",
			Attributes: map[string]json.RawMessage{"path": json.RawMessage(`"/etc"`), "mode": json.RawMessage(`"0755"`)}},
		{Address: "exec.reload", Type: "exec", Name: "reload",
			Attributes: map[string]json.RawMessage{"command": json.RawMessage(`"reload"`),
				"environment": json.RawMessage(`{"Z":"1","A":"2"}`), "timeout_n": json.RawMessage(`1.50`)}},
		{Address: `file.site["a"]`, Type: "file", Name: "site", Key: ptr("a"),
			Attributes: map[string]json.RawMessage{"path": json.RawMessage(`"/a"`), "content": json.RawMessage(`"secret"`)},
			Sensitive:  []string{"content", "content"},
			Notify:     []string{"exec.reload"}, Require: []string{"directory.etc"}, Origin: "main.hcl:3:3"},
	}
	return c
}

const sampleJSON = `{
  "format": "satchel.catalog/v1",
  "node": "school-001",
  "resources": [
    {
      "address": "directory.etc",
      "attributes": {
        "mode": "0755",
        "path": "/etc"
      },
      "name": "etc",
      "type": "directory"
    },
    {
      "address": "exec.reload",
      "attributes": {
        "command": "reload",
        "environment": {
          "A": "2",
          "Z": "1"
        },
        "timeout_n": 1.50
      },
      "name": "reload",
      "type": "exec"
    },
    {
      "address": "file.site[\"a\"]",
      "attributes": {
        "content": "secret",
        "path": "/a"
      },
      "key": "a",
      "name": "site",
      "notify": [
        "exec.reload"
      ],
      "origin": "main.hcl:3:3",
      "require": [
        "directory.etc"
      ],
      "sensitive": [
        "content"
      ],
      "type": "file"
    },
    {
      "address": "file.site[\"b\"]",
      "attributes": {
        "content": "<b>&</b>",
        "path": "/b"
      },
      "key": "b",
      "name": "site",
      "require": [
        "directory.etc"
      ],
      "type": "file"
    }
  ]
}
`

func TestMarshalIsCanonical(t *testing.T) {
	t.Parallel()
	got, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != sampleJSON {
		t.Errorf("Marshal:\n%s\nwant:\n%s", got, sampleJSON)
	}
	// Stable: the same catalog built in another order gives the same bytes.
	c := sample()
	c.Resources[0], c.Resources[3] = c.Resources[3], c.Resources[0]
	c.Resources[1].Attributes["mode"] = json.RawMessage(` "0755" `)
	again, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, again) {
		t.Errorf("Marshal is not stable:\n%s", again)
	}
}

func TestUnmarshalRoundTrip(t *testing.T) {
	t.Parallel()
	c, err := Unmarshal([]byte(sampleJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Lookup(`file.site["a"]`); r == nil || !r.IsSensitive("content") || r.IsSensitive("path") {
		t.Errorf("Lookup/IsSensitive: %+v", r)
	}
	if c.Lookup("file.nope") != nil || c.Lookup(`file.site`) != nil {
		t.Error("Lookup found what is not there")
	}
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != sampleJSON {
		t.Errorf("round trip changed the catalog:\n%s", out)
	}
	// Any valid formatting of the same document decodes to the same catalog.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(sampleJSON)); err != nil {
		t.Fatal(err)
	}
	c2, err := Unmarshal(compact.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if out2, _ := Marshal(c2); !bytes.Equal(out, out2) {
		t.Errorf("compact input gives different bytes:\n%s", out2)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	t.Parallel()
	res := func(extra string) string {
		return `{"format":"satchel.catalog/v1","node":"n","resources":[` + extra + `]}`
	}
	file := func(addr, typ, name, rest string) string {
		return `{"address":"` + addr + `","type":"` + typ + `","name":"` + name + `","attributes":{}` + rest + `}`
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"empty":             {``, "decode catalog"},
		"not an object":     {`[]`, "decode catalog"},
		"trailing data":     {res(``) + `{}`, "unexpected data after"},
		"truncated":         {res(``)[:30], "decode catalog"},
		"unknown format":    {`{"format":"satchel.catalog/v2","node":"n","resources":[]}`, `format "satchel.catalog/v2" is not supported`},
		"no format":         {`{"node":"n","resources":[]}`, `format "" is not supported`},
		"unknown field":     {`{"format":"satchel.catalog/v1","node":"n","resources":[],"extra":1}`, `unknown field "extra"`},
		"unknown res field": {res(`{"address":"file.a","type":"file","name":"a","attributes":{},"when":true}`), `unknown field "when"`},
		"null resources":    {`{"format":"satchel.catalog/v1","node":"n","resources":null}`, "no resources list"},
		"no resources":      {`{"format":"satchel.catalog/v1","node":"n"}`, "no resources list"},
		"null resource":     {res(`null`), "resource 0 is null"},
		"no attributes":     {res(`{"address":"file.a","type":"file","name":"a"}`), "has no attributes object"},
		"bad address":       {res(file("file", "file", "a", "")), "not of the form"},
		"bad key":           {res(file(`file.a[a]`, "file", "a", "")), "malformed key"},
		"type mismatch":     {res(file("file.a", "directory", "a", "")), "does not match"},
		"name mismatch":     {res(file("file.a", "file", "b", "")), "does not match"},
		"key missing":       {res(file(`file.a[\"k\"]`, "file", "a", "")), "does not match"},
		"key extra":         {res(file(`file.a`, "file", "a", `,"key":"k"`)), "does not match"},
		"key differs":       {res(file(`file.a[\"k\"]`, "file", "a", `,"key":"j"`)), "does not match"},
		"duplicate":         {res(file("file.a", "file", "a", "") + `,` + file("file.a", "file", "a", "")), "appears twice"},
		"dangling require":  {res(file("file.a", "file", "a", `,"require":["file.b"]`)), "refers to file.b, which is not in the catalog"},
		"dangling notify":   {res(file("file.a", "file", "a", `,"notify":["exec.b"]`)), "refers to exec.b"},
		"self require":      {res(file("file.a", "file", "a", `,"require":["file.a"]`)), "refers to itself"},
		"self notify":       {res(file("file.a", "file", "a", `,"notify":["file.a"]`)), "refers to itself"},
		"wrong types":       {res(`{"address":1,"type":"file","name":"a","attributes":{}}`), "decode catalog"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := Unmarshal([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Unmarshal accepted %s: %+v", tc.doc, c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	got, err := Canonical([]byte(`{"b":[3, 1.0, 1e3, -0],"a":{"y":"<&>","x":null},"c":"\u00e9\u2028"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": {\n    \"x\": null,\n    \"y\": \"<&>\"\n  },\n  \"b\": [\n    3,\n    1.0,\n    1e3,\n    -0\n  ],\n  \"c\": \"é\\u2028\"\n}\n"
	if string(got) != want {
		t.Errorf("Canonical:\n%s\nwant:\n%s", got, want)
	}
	if _, err := Canonical([]byte(`{"a":`)); err == nil {
		t.Error("Canonical accepted broken JSON")
	}
}

func TestSortDeduplicates(t *testing.T) {
	t.Parallel()
	c := sample()
	c.Sort()
	var addrs []string
	for _, r := range c.Resources {
		addrs = append(addrs, r.Address)
	}
	if got := strings.Join(addrs, " "); got != `directory.etc exec.reload file.site["a"] file.site["b"]` {
		t.Errorf("order: %s", got)
	}
	if r := c.Lookup(`file.site["b"]`); len(r.Require) != 1 {
		t.Errorf("Require not de-duplicated: %q", r.Require)
	}
	if r := c.Lookup(`file.site["a"]`); len(r.Sensitive) != 1 {
		t.Errorf("Sensitive not de-duplicated: %q", r.Sensitive)
	}
}
