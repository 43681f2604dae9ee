package lang_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/lang"
)

// FactReferences names every fact a configuration can read, wherever it is read: resource
// attributes, where, locals, templates (once used), and stops at a dynamic step.
func TestFactReferences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"main.hcl": `
locals {
  iface = "eth0"
  mtu   = fact.networking.interfaces[local.iface].mtu
}
node "*" {
  where = fact.os.family == "debian"
  file "motd" {
    path    = "/etc/motd"
    content = template("motd.tmpl", {})
    when    = fact.disks["sda"].size_bytes > 0
  }
  file "other" {
    path    = "/etc/other"
    content = "${fact.os.id} ${local.mtu}"
  }
}
`,
		"templates/motd.tmpl": "${fact.kernel.release} on ${fact.hostname}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	facts := map[string]any{"hostname": "n", "os": map[string]any{"id": "debian", "family": "debian"},
		"kernel": map[string]any{"release": "6.1"}, "disks": map[string]any{"sda": map[string]any{"size_bytes": 1}},
		"networking": map[string]any{"interfaces": map[string]any{"eth0": map[string]any{"mtu": 1500}}}}
	if _, diags := cfg.Evaluate("n", facts); diags.HasErrors() {
		t.Fatal(diags)
	}
	want := [][]string{{"disks", "sda", "size_bytes"}, {"hostname"}, {"kernel", "release"},
		{"networking", "interfaces"}, {"os", "family"}, {"os", "id"}}
	if got := cfg.FactReferences(); !reflect.DeepEqual(got, want) {
		t.Errorf("FactReferences =\n%q\nwant\n%q", got, want)
	}
}

func TestFactReferencesWholeFacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(`node "*" {
  file "facts" {
    path    = "/etc/facts.json"
    content = jsonencode(fact)
  }
  file "os" {
    path    = "/etc/os"
    content = fact.os.id
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := cfg.FactReferences(); !reflect.DeepEqual(got, [][]string{nil}) {
		t.Errorf("FactReferences = %q, want one empty path (all facts)", got)
	}
}

// A .hcl file that is a symlink out of the repository is refused (its content never shows
// up, even in an error snippet); a repository reached through a symlink works.
func TestHCLFilesStayInsideTheRepository(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	repo, outside := filepath.Join(base, "repo"), filepath.Join(base, "outside")
	for _, d := range []string{repo, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.hcl"), []byte("password-on-the-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte("node \"*\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/secret.hcl", filepath.Join(repo, "leak.hcl")); err != nil {
		t.Fatal(err)
	}
	cfg, diags := lang.Load(repo, types())
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "leak.hcl") {
		t.Fatalf("a .hcl symlink out of the repository was accepted: %v", diags)
	}
	var out strings.Builder
	_ = lang.WriteDiagnostics(&out, diags, cfg.Sources())
	if strings.Contains(out.String(), "password-on-the-host") {
		t.Errorf("content from outside the repository was printed:\n%s", out.String())
	}

	if err := os.Remove(filepath.Join(repo, "leak.hcl")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "current")
	if err := os.Symlink("repo", link); err != nil {
		t.Fatal(err)
	}
	cfg, diags = lang.Load(link, types())
	if diags.HasErrors() {
		t.Fatalf("a repository reached through a symlink: %v", diags)
	}
	if got := cfg.Nodes(); len(got) != 0 {
		t.Errorf("Nodes = %v", got)
	}
	if _, ok := cfg.TextFiles()["main.hcl"]; !ok {
		t.Errorf("TextFiles = %v, want main.hcl", cfg.TextFiles())
	}
}
