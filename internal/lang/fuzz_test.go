package lang_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/lang"
)

// FuzzLoad writes the input as main.hcl of a repository (beside a few data files its
// expressions may use) and loads it; whatever loads is then checked and evaluated, with and
// without facts. None of it may panic. The seed corpus is the HCL of every golden file.
//
//	go test -run XXX -fuzz FuzzLoad -fuzztime 60s ./internal/lang
func FuzzLoad(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txtar"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		ar, err := txtar.ParseFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if filepath.Ext(file.Name) == ".hcl" {
				f.Add(string(file.Data))
			}
		}
	}
	data := map[string]string{
		"files/a.txt":         "a\n",
		"files/b.bin":         "\xff\x00",
		"templates/t.tmpl":    "${node.name} %{ for x in [1, 2] }${x}%{ endfor }\n",
		"templates/bad.tmpl":  "%{ if }",
		"inventory.csv":       "hostname,School Name,list\nsrv,A,x;y\n",
		"roles/base.hcl":      "role \"base\" {\n  param \"p\" {\n    default = 1\n  }\n}\n",
		"facts/ignored.json":  "{}",
		"templates/deep/u.tm": "${upper(\"x\")}",
		"templates/self.tmpl": "${template(\"self.tmpl\", {})}",
	}
	facts := map[string]any{"os": map[string]any{"family": "debian", "id": "debian"}, "hostname": "srv",
		"disks": map[string]any{"sda": map[string]any{"model": "x"}}, "tags": []any{"a", "b"}}
	// The repository is made once per process (each runs the target serially); only
	// main.hcl changes between inputs.
	dir := f.TempDir()
	for name, content := range data {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := lang.Load(dir, types())
		if cfg == nil {
			if !diags.HasErrors() {
				t.Fatal("Load returned no config and no error")
			}
			return
		}
		render(dir, diags, cfg.Sources()) // printing must not panic either
		if diags.HasErrors() {
			return
		}
		nodes := cfg.Nodes()
		if !slices.Contains(nodes, "srv") {
			nodes = append(nodes, "srv")
		}
		for _, node := range nodes {
			render(dir, cfg.Check(node, nil), cfg.Sources())
			cat, d := cfg.Evaluate(node, facts)
			if d.HasErrors() != (cat == nil) {
				t.Fatalf("Evaluate(%s): catalog %v with errors %v", node, cat != nil, d)
			}
			if cat != nil {
				checkCatalog(t, catalogBytes(t, cat))
			}
		}
	})
}

func catalogBytes(t *testing.T, cat *catalog.Catalog) []byte {
	t.Helper()
	data, err := catalog.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
