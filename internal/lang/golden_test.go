package lang_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/tools/txtar"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/textdiff"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/golden/*.txtar")

// Sections of a golden archive that are not files of the config repository.
const (
	secNode    = "node"         // the node name to compile for (required)
	secFacts   = "facts.json"   // the node's facts (default: {})
	secCatalog = "catalog.json" // expected: the catalog, as catalog.Marshal writes it
	secErrors  = "errors"       // expected: the diagnostics, as WriteDiagnostics prints them
	secCheck   = "check.errors" // optional, expected: what Check(node, nil) reports (unknown facts)
)

var specialSections = []string{secNode, secFacts, secCatalog, secErrors, secCheck}

// types is the resource type registry every test compiles against.
func types() map[string]*schema.Type { return resource.Schemas() }

// TestGolden compiles each testdata/golden/*.txtar archive and compares the result with its
// expected sections. An archive holds the config repository (main.hcl, roles/*.hcl, files/…,
// templates/…, inventory.csv), the node and its facts, and then either the catalog or the
// diagnostics. When Load fails, only its diagnostics are compared (as `satchel check` stops
// there too). `go test ./internal/lang -update` rewrites the expected sections.
//
// Every archive also checks invariants: evaluating twice gives identical bytes, Check with
// the same facts reports exactly what Evaluate does, and a catalog survives
// catalog.Unmarshal and decodes into resources.
func TestGolden(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no golden files")
	}
	for _, name := range names {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".txtar"), func(t *testing.T) {
			t.Parallel()
			runGolden(t, name)
		})
	}
}

func runGolden(t *testing.T, name string) {
	ar, err := txtar.ParseFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]byte{}
	for _, f := range ar.Files {
		if slices.Contains(specialSections, f.Name) {
			sections[f.Name] = f.Data
		}
	}
	node := strings.TrimSpace(string(sections[secNode]))
	if node == "" {
		t.Fatalf("%s: no -- node -- section", name)
	}
	dir := writeRepo(t, ar)
	got := compile(t, dir, node, sections[secFacts])
	if _, want := sections[secCheck]; want {
		got[secCheck] = checkUnknown(t, dir, node)
	}
	if *update {
		rewriteGolden(t, name, ar, got)
		return
	}
	for _, sec := range []string{secCatalog, secErrors, secCheck} {
		want, had := sections[sec]
		have, made := got[sec]
		switch {
		case !had && !made:
		case !had:
			t.Errorf("unexpected -- %s -- (run with -update to accept):\n%s", sec, have)
		case !made:
			t.Errorf("expected -- %s --, got none", sec)
		case !bytes.Equal(want, have):
			t.Errorf("-- %s -- differs, golden (-) vs got (+); run with -update to accept:\n%s", sec, textdiff.Unified(sec, want, have))
		}
	}
}

// writeRepo writes the repository files of an archive into a new temporary directory.
func writeRepo(t *testing.T, ar *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range ar.Files {
		if slices.Contains(specialSections, f.Name) {
			continue
		}
		if !filepath.IsLocal(f.Name) {
			t.Fatalf("archive file %q is not a local path", f.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// compile loads dir and evaluates it for node, returning the expected sections it produces.
func compile(t *testing.T, dir, node string, factsJSON []byte) map[string][]byte {
	t.Helper()
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		var sources map[string][]byte
		if cfg != nil {
			sources = cfg.Sources()
		}
		// Loading is deterministic too.
		_, again := lang.Load(dir, types())
		if a, b := render(dir, diags, sources), render(dir, again, sources); !bytes.Equal(a, b) {
			t.Errorf("loading twice gives different diagnostics:\n%s", textdiff.Unified("errors", a, b))
		}
		return map[string][]byte{secErrors: render(dir, diags, sources)}
	}
	facts := parseFacts(t, factsJSON)
	cat, ediags := cfg.Evaluate(node, facts)
	out := map[string][]byte{}
	if len(ediags) > 0 || len(diags) > 0 {
		out[secErrors] = render(dir, append(diags, ediags...), cfg.Sources())
	}
	if c := render(dir, cfg.Check(node, facts), cfg.Sources()); !bytes.Equal(c, render(dir, ediags, cfg.Sources())) {
		t.Errorf("Check with facts and Evaluate disagree:\n%s", textdiff.Unified("diagnostics", render(dir, ediags, cfg.Sources()), c))
	}
	if ediags.HasErrors() {
		if cat != nil {
			t.Error("Evaluate returned a catalog and errors")
		}
		return out
	}
	if cat == nil {
		t.Fatal("Evaluate returned neither a catalog nor errors")
	}
	data, err := catalog.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	out[secCatalog] = data
	checkCatalog(t, data)
	// Determinism: a second evaluation, from a fresh Load too, gives the same bytes.
	cat2, _ := cfg.Evaluate(node, parseFacts(t, factsJSON))
	cfg3, _ := lang.Load(dir, types())
	cat3, _ := cfg3.Evaluate(node, parseFacts(t, factsJSON))
	for i, c := range []*catalog.Catalog{cat2, cat3} {
		again, err := catalog.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, again) {
			t.Errorf("evaluation %d differs from the first:\n%s", i+2, textdiff.Unified("catalog.json", data, again))
		}
	}
	return out
}

// checkCatalog asserts that a catalog made by the language is one the rest of Satchel takes:
// it decodes, re-encodes to the same bytes, orders without a cycle and decodes into resources.
func checkCatalog(t *testing.T, data []byte) {
	t.Helper()
	back, err := catalog.Unmarshal(data)
	if err != nil {
		t.Fatalf("catalog.Unmarshal refuses the language's catalog: %v", err)
	}
	again, err := catalog.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("catalog does not round-trip:\n%s", textdiff.Unified("catalog.json", data, again))
	}
	g, err := catalog.NewGraph(back)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Order(); err != nil {
		t.Errorf("catalog has no order: %v", err)
	}
	for _, r := range back.Resources {
		if _, err := resource.New(r); err != nil {
			t.Errorf("resource %s does not decode: %v", r.Address, err)
		}
	}
}

// checkUnknown renders what Check reports with unknown facts.
func checkUnknown(t *testing.T, dir, node string) []byte {
	t.Helper()
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatalf("check.errors needs a configuration that loads:\n%s", render(dir, diags, nil))
	}
	return render(dir, cfg.Check(node, nil), cfg.Sources())
}

func parseFacts(t *testing.T, data []byte) map[string]any {
	t.Helper()
	facts := map[string]any{}
	if len(bytes.TrimSpace(data)) == 0 {
		return facts
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // as `satchel --facts` reads them
	if err := dec.Decode(&facts); err != nil {
		t.Fatalf("facts.json: %v", err)
	}
	return facts
}

// render prints diagnostics as the CLI does, with file names relative to the repository so
// that the output does not depend on the temporary directory.
func render(dir string, diags hcl.Diagnostics, sources map[string][]byte) []byte {
	var b bytes.Buffer
	if err := lang.WriteDiagnostics(&b, diags, sources); err != nil {
		panic(err)
	}
	s := strings.ReplaceAll(b.String(), dir+string(filepath.Separator), "")
	s = strings.ReplaceAll(s, dir, ".")
	return []byte(s)
}

// rewriteGolden replaces the expected sections of an archive with what was produced.
func rewriteGolden(t *testing.T, name string, ar *txtar.Archive, got map[string][]byte) {
	t.Helper()
	var files []txtar.File
	for _, f := range ar.Files {
		if f.Name == secCatalog || f.Name == secErrors || f.Name == secCheck {
			continue
		}
		files = append(files, f)
	}
	for _, sec := range []string{secErrors, secCatalog, secCheck} {
		if data, ok := got[sec]; ok {
			files = append(files, txtar.File{Name: sec, Data: data})
		}
	}
	ar.Files = files
	if err := os.WriteFile(name, txtar.Format(ar), 0o644); err != nil {
		t.Fatal(err)
	}
}
