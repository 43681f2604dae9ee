package preview_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/preview"
)

func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const oldHCL = `
node "*" {
  file "motd" {
    path    = "/etc/motd"
    content = "welcome\n"
  }
  file "filter" {
    path    = "/etc/filter.conf"
    content = "block = ads\n"
  }
}
`

// The new release changes the motd for everyone, adds a file on debian nodes only (from
// a fact), removes the filter, adds a secret-bearing file for school-1, and reads a fact
// school-4 does not have.
const newHCL = `
node "*" {
  file "motd" {
    path    = "/etc/motd"
    content = "welcome, ${fact.site}\n"
  }
  file "apt" {
    path    = "/etc/apt/extra.list"
    content = "deb ...\n"
    when    = fact.os_family == "debian"
  }
}
node "school-1" {
  file "activation" {
    path    = "/etc/activation"
    content = secret("activation/school-1.sig")
  }
}
`

func TestPreviewGroupsChangesAndFailures(t *testing.T) {
	oldDir := writeConfig(t, map[string]string{"main.hcl": oldHCL})
	newDir := writeConfig(t, map[string]string{"main.hcl": newHCL})
	facts := func(site, family string) map[string]any {
		return map[string]any{"site": site, "os_family": family}
	}
	nodes := []preview.Node{
		{Name: "school-1", Facts: facts("a", "debian")},
		{Name: "school-2", Facts: facts("b", "debian")},
		{Name: "school-3", Facts: facts("c", "debian")},
		{Name: "school-4", Facts: map[string]any{"os_family": "debian"}}, // no site: fails
		{Name: "school-5", Facts: facts("e", "redhat")},
		{Name: "school-6"}, // never reported
	}
	res, err := preview.Run(context.Background(), oldDir, newDir, 7, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Failed(); !slices.Equal(got, []string{"school-4"}) {
		t.Errorf("failed = %q, want school-4", got)
	}
	byNode := map[string]preview.NodeResult{}
	for _, n := range res.Nodes {
		byNode[n.Node] = n
	}
	if e := byNode["school-4"].Error; !strings.HasPrefix(e, "main.hcl:") || !strings.Contains(e, "site") {
		t.Errorf("school-4's error %q: want the position, relative, and the missing fact", e)
	}
	if !byNode["school-6"].NoFacts || byNode["school-6"].Error != "" {
		t.Errorf("school-6 = %+v, want checked without facts, no error", byNode["school-6"])
	}
	want1 := []preview.Change{
		{Address: "file.activation", Kind: preview.Added},
		{Address: "file.apt", Kind: preview.Added},
		{Address: "file.filter", Kind: preview.Removed},
		{Address: "file.motd", Kind: preview.Changed, Fields: []string{"content"}},
	}
	if got := byNode["school-1"].Changes; !slices.EqualFunc(got, want1, equalChange) {
		t.Errorf("school-1: %+v\nwant %+v", got, want1)
	}
	groups := res.Groups()
	if len(groups) < 3 || !slices.Equal(groups[0].Nodes, []string{"school-2", "school-3"}) {
		t.Fatalf("groups = %+v, want school-2 and school-3 together first", groups)
	}
	for _, g := range groups {
		for _, c := range g.Changes {
			if strings.Contains(c.Address, "KEY") {
				t.Errorf("a change shows a secret: %+v", c)
			}
		}
	}
}

func equalChange(a, b preview.Change) bool {
	return a.Address == b.Address && a.Kind == b.Kind && slices.Equal(a.Fields, b.Fields)
}

// Without a current release, everything is added; a config that does not load is an
// error of the preview itself.
func TestPreviewFirstReleaseAndBrokenConfig(t *testing.T) {
	newDir := writeConfig(t, map[string]string{"main.hcl": oldHCL})
	res, err := preview.Run(context.Background(), "", newDir, 0, []preview.Node{{Name: "a", Facts: map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Nodes[0].Changes); n != 2 || res.Nodes[0].Changes[0].Kind != preview.Added {
		t.Errorf("first release: %+v, want 2 added", res.Nodes[0].Changes)
	}
	broken := writeConfig(t, map[string]string{"main.hcl": "node \"*\" {"})
	if _, err := preview.Run(context.Background(), "", broken, 0, nil); err == nil || !strings.Contains(err.Error(), "the new config") {
		t.Errorf("broken config: %v", err)
	}
}
