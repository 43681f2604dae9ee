package lang_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/satchelcm/satchel/internal/lang"
)

func rng(file string, line, col, endLine, endCol int) *hcl.Range {
	return &hcl.Range{Filename: file,
		Start: hcl.Pos{Line: line, Column: col}, End: hcl.Pos{Line: endLine, Column: endCol}}
}

func TestWriteDiagnostics(t *testing.T) {
	t.Parallel()
	sources := map[string][]byte{
		"main.hcl": []byte("node \"*\" {\n\tmode = true\n  path = \"ü/ñ\" # unicode\r\n}\n"),
	}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Tabs", Detail: "Tabs count as four columns.", Subject: rng("main.hcl", 2, 2, 2, 6)},
		{Severity: hcl.DiagWarning, Summary: "Unicode", Detail: "Columns count characters,\nnot bytes.", Subject: rng("main.hcl", 3, 11, 3, 14)},
		{Severity: hcl.DiagError, Summary: "Several lines", Subject: rng("main.hcl", 1, 6, 4, 2)},
		{Severity: hcl.DiagError, Summary: "Unknown file", Detail: "No snippet.", Subject: rng("other.hcl", 7, 3, 7, 9)},
		{Severity: hcl.DiagError, Summary: "Line past the end", Subject: rng("main.hcl", 40, 1, 40, 2)},
		{Severity: hcl.DiagError, Summary: "No place", Detail: "  Trimmed.  "},
	}
	var b strings.Builder
	if err := lang.WriteDiagnostics(&b, diags, sources); err != nil {
		t.Fatal(err)
	}
	want := `error: Tabs
  --> main.hcl:2:2
   |
 2 |     mode = true
   |     ^^^^
   = Tabs count as four columns.

warning: Unicode
  --> main.hcl:3:11
   |
 3 |   path = "ü/ñ" # unicode
   |           ^^^
   = Columns count characters,
     not bytes.

error: Several lines
  --> main.hcl:1:6
   |
 1 | node "*" {
   |      ^^^^^

error: Unknown file
  --> other.hcl:7:3
   = No snippet.

error: Line past the end
  --> main.hcl:40:1

error: No place
   = Trimmed.

`
	if got := b.String(); got != want {
		t.Errorf("WriteDiagnostics printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestPosition(t *testing.T) {
	t.Parallel()
	if got := lang.Position(*rng("roles/web.hcl", 12, 3, 12, 9)); got != "roles/web.hcl:12:3" {
		t.Errorf("Position = %q", got)
	}
}
