package lang_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/lang"
)

// secret is what a file outside the repository holds; no test may find it in a catalog or
// in a diagnostic.
const secret = "TOP-SECRET-7f3a"

// writeFiles writes files (path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot make symlinks here: %v", err)
	}
}

// TestSymlinksOutOfRepoAreRefused checks that a symlink under files/ or templates/, or the
// files/ and templates/ directories themselves, or the inventory, cannot lead file(),
// template(), source = or the inventory outside the repository, whether the link is absolute
// or relative. A symlink that stays inside works.
func TestSymlinksOutOfRepoAreRefused(t *testing.T) {
	t.Parallel()
	uses := map[string]string{
		"file":     `content = file("link.txt")`,
		"source":   `source = "link.txt"`,
		"template": `content = template("link.txt", {})`,
	}
	for _, kind := range []string{"absolute", "relative"} {
		for use, attr := range uses {
			for _, linkDir := range []string{"file", "dir"} { // link the file, or its directory
				t.Run(kind+"/"+use+"/"+linkDir, func(t *testing.T) {
					t.Parallel()
					top := t.TempDir()
					outside := filepath.Join(top, "outside")
					writeFiles(t, outside, map[string]string{"link.txt": secret + "\n"})
					repo := filepath.Join(top, "repo")
					writeFiles(t, repo, map[string]string{"main.hcl": `node "*" {
  file "x" {
    path = "/x"
    ` + attr + `
  }
}
`})
					sub := lang.FilesDir
					if use == "template" {
						sub = lang.TemplatesDir
					}
					var link, target string
					if linkDir == "file" {
						link = filepath.Join(repo, sub, "link.txt")
						target = filepath.Join(outside, "link.txt")
						if kind == "relative" {
							target = filepath.Join("..", "..", "outside", "link.txt")
						}
					} else {
						link = filepath.Join(repo, sub)
						target = outside
						if kind == "relative" {
							target = filepath.Join("..", "outside")
						}
					}
					symlink(t, target, link)
					out, cat := evaluate(t, repo, "srv", nil)
					if cat != nil {
						t.Fatalf("a symlink out of the repository was followed:\n%s", catalogText(t, cat))
					}
					if strings.Contains(out, secret) {
						t.Fatalf("the secret appears in the diagnostics:\n%s", out)
					}
					if !strings.Contains(out, "main.hcl:4:") {
						t.Errorf("the error is not reported at the attribute:\n%s", out)
					}
				})
			}
		}
	}
}

func TestSymlinkInsideRepoIsFollowed(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		"main.hcl": `node "*" {
  file "x" {
    path    = "/x"
    content = file("alias.txt")
  }
}
`,
		"files/real/target.txt": "inside\n",
	})
	symlink(t, filepath.Join("real", "target.txt"), filepath.Join(repo, "files", "alias.txt"))
	out, cat := evaluate(t, repo, "srv", nil)
	if cat == nil {
		t.Fatalf("a symlink inside files/ was refused:\n%s", out)
	}
	if got := string(cat.Resources[0].Attributes["content"]); got != `"inside\n"` {
		t.Errorf("content = %s, want the target's", got)
	}
}

func TestInventorySymlinkOutOfRepoIsRefused(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	writeFiles(t, top, map[string]string{"outside.csv": "hostname,secret\nsrv," + secret + "\n"})
	repo := filepath.Join(top, "repo")
	writeFiles(t, repo, map[string]string{"main.hcl": `inventory {
  source = "inventory.csv"
}

node "*" {
}
`})
	symlink(t, filepath.Join("..", "outside.csv"), filepath.Join(repo, "inventory.csv"))
	cfg, diags := lang.Load(repo, types())
	if !diags.HasErrors() {
		t.Fatalf("an inventory symlink out of the repository was followed: %v", cfg.Nodes())
	}
	out := string(render(repo, diags, nil))
	if strings.Contains(out, secret) || !strings.Contains(out, "main.hcl:2:12") {
		t.Errorf("want an error at the source attribute, without the secret:\n%s", out)
	}
}

// evaluate loads dir and compiles it for node, returning the rendered diagnostics and the
// catalog (nil on errors).
func evaluate(t *testing.T, dir, node string, facts map[string]any) (string, *catalog.Catalog) {
	t.Helper()
	cfg, diags := lang.Load(dir, types())
	if diags.HasErrors() {
		var sources map[string][]byte
		if cfg != nil {
			sources = cfg.Sources()
		}
		return string(render(dir, diags, sources)), nil
	}
	cat, ediags := cfg.Evaluate(node, facts)
	return string(render(dir, ediags, cfg.Sources())), cat
}

func catalogText(t *testing.T, cat *catalog.Catalog) string {
	t.Helper()
	data, err := catalog.Marshal(cat)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(data))
}
