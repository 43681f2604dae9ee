package lang_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/textdiff"
)

func TestLoadRefusesWhatIsNotARepository(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"notes.txt": "no configuration here\n", "files/x.hcl": "node \"*\" {}\n"})
	for name, tc := range map[string]struct{ dir, want string }{
		"missing":   {filepath.Join(dir, "nope"), "Cannot read configuration"},
		"not a dir": {filepath.Join(dir, "notes.txt"), "is not a directory"},
		"no hcl":    {dir, "contains no .hcl files"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, diags := lang.Load(tc.dir, types())
			if cfg != nil || !diags.HasErrors() {
				t.Fatalf("Load(%s) = %v, %v; want no config and an error", tc.dir, cfg, diags)
			}
			if out := string(render(dir, diags, nil)); !strings.Contains(out, tc.want) {
				t.Errorf("diagnostics do not say %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestNodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.hcl": `inventory {
  source = "inv.csv"
}
node "*" {}
node "gateway" {}
node "school-[0-9]" {}
node "lab-?" {}
node "b-node" {}
`,
		"inv.csv": "hostname\nschool-2\nschool-1\ngateway\n",
	})
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []string{"b-node", "gateway", "school-1", "school-2"}
	if got := cfg.Nodes(); !slices.Equal(got, want) {
		t.Errorf("Nodes() = %q, want %q", got, want)
	}
}

func TestSourcesHoldsWhatWasRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.hcl":         "node \"*\" {\n  file \"x\" {\n    path = \"/x\"\n    content = template(\"t.tmpl\", {})\n  }\n}\n",
		"templates/t.tmpl": "hello\n",
	})
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, ok := cfg.Sources()[filepath.Join(dir, "main.hcl")]; !ok {
		t.Errorf("Sources() lacks main.hcl: %v", slices.Collect(mapKeys(cfg.Sources())))
	}
	if _, diags := cfg.Evaluate("srv", nil); diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := string(cfg.Sources()[filepath.Join(dir, "templates", "t.tmpl")]); got != "hello\n" {
		t.Errorf("Sources() has the template as %q after evaluation", got)
	}
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestConcurrentEvaluation compiles one Config for several nodes at once (run with -race):
// Evaluate and Check share the parsed configuration, the file cache and the template cache.
func TestConcurrentEvaluation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.hcl": `node "*" {
  file "t" {
    for_each = toset(["a", "b", "c"])
    path     = "/etc/${node.name}/${each.key}"
    content  = template("t.tmpl", { k = each.key })
  }
  file "f" {
    path   = "/etc/${node.name}/f"
    source = "f.bin"
  }
  file "g" {
    path    = "/etc/${node.name}/g"
    content = file("g.txt")
  }
}
`,
		"templates/t.tmpl": "${node.name} ${k}\n",
		"files/f.bin":      "binary\x00",
		"files/g.txt":      "text\n",
	})
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	const nodes, rounds = 8, 4
	results := make([][]string, nodes)
	var wg sync.WaitGroup
	for n := range nodes {
		results[n] = make([]string, rounds)
		for r := range rounds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				node := fmt.Sprintf("n%d", n)
				if d := cfg.Check(node, nil); d.HasErrors() {
					results[n][r] = "check: " + d.Error()
					return
				}
				cat, d := cfg.Evaluate(node, map[string]any{})
				if d.HasErrors() {
					results[n][r] = d.Error()
					return
				}
				data, err := catalog.Marshal(cat)
				if err != nil {
					results[n][r] = err.Error()
					return
				}
				results[n][r] = string(data)
			}()
		}
	}
	wg.Wait()
	for n := range nodes {
		if !strings.Contains(results[n][0], fmt.Sprintf(`"content": "n%d a\n"`, n)) {
			t.Fatalf("node %d: unexpected result:\n%s", n, results[n][0])
		}
		for r := 1; r < rounds; r++ {
			if results[n][r] != results[n][0] {
				t.Errorf("node %d, round %d differs:\n%s", n, r, textdiff.Unified("catalog", []byte(results[n][0]), []byte(results[n][r])))
			}
		}
	}
}

// TestExampleSchoolServer compiles the example repository for each of its nodes, with the
// facts it ships, and compares the catalogs with testdata/example/NODE.json (-update writes
// them). Without facts, Check finds nothing wrong either.
func TestExampleSchoolServer(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "examples", "school-server")
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatalf("the example does not load:\n%s", render(dir, diags, cfg.Sources()))
	}
	nodes := cfg.Nodes()
	if len(nodes) == 0 {
		t.Fatal("the example names no node")
	}
	for _, node := range nodes {
		t.Run(node, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(dir, "facts", node+".json"))
			if err != nil {
				t.Fatal(err)
			}
			facts := parseFacts(t, raw)
			cat, diags := cfg.Evaluate(node, facts)
			if diags.HasErrors() {
				t.Fatalf("the example does not compile for %s:\n%s", node, render(dir, diags, cfg.Sources()))
			}
			if d := cfg.Check(node, nil); len(d) > 0 {
				t.Errorf("Check without facts reports:\n%s", render(dir, d, cfg.Sources()))
			}
			data, err := catalog.Marshal(cat)
			if err != nil {
				t.Fatal(err)
			}
			checkCatalog(t, data)
			var c struct {
				Resources []struct {
					Address   string
					Sensitive []string
				}
			}
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			for _, r := range c.Resources {
				if r.Address == "file.wifi" && !slices.Contains(r.Sensitive, "content") {
					t.Errorf("file.wifi holds the passphrase but is not sensitive")
				}
			}
			golden := filepath.Join("testdata", "example", node+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(want, data) {
				t.Errorf("catalog differs from %s (run with -update to accept):\n%s", golden, textdiff.Unified(golden, want, data))
			}
		})
	}
}
