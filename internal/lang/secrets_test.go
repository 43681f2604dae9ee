package lang_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// mapSecrets is a SecretSource from a map of node → name → value.
type mapSecrets map[string]map[string]string

func (m mapSecrets) Secret(node, name string) (string, error) {
	v, ok := m[node][name]
	if !ok {
		return "", errors.New("this release has none for the node")
	}
	return v, nil
}

const secretsConfig = `
node "school-[12]" {
  file "activation" {
    path    = "/etc/activation"
    content = "key=${secret("activation/${node.name}.sig")}\n"
  }
}
node "school-3" {
  file "motd" {
    path    = "/etc/motd"
    content = "no secret here\n"
  }
}
`

func loadSecrets(t *testing.T, hcl string) *lang.Config {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.hcl": hcl})
	cfg, diags := lang.Load(dir, resource.Schemas())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func TestSecretNamesPerNode(t *testing.T) {
	cfg := loadSecrets(t, secretsConfig)
	for node, want := range map[string][]string{
		"school-1": {"activation/school-1.sig"},
		"school-2": {"activation/school-2.sig"},
		"school-3": nil,
	} {
		names, diags := cfg.SecretNames(node)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", node, diags)
		}
		if !slices.Equal(names, want) {
			t.Errorf("SecretNames(%s) = %q, want %q", node, names, want)
		}
	}
}

func TestSecretIsSensitive(t *testing.T) {
	cfg := loadSecrets(t, secretsConfig)
	cfg.SetSecrets(mapSecrets{"school-1": {"activation/school-1.sig": secret}})
	cat, diags := cfg.Evaluate("school-1", map[string]any{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r := cat.Resources[0]
	if !strings.Contains(string(r.Attributes["content"]), secret) {
		t.Errorf("content = %s, want the secret in it", r.Attributes["content"])
	}
	if !slices.Contains(r.Sensitive, "content") {
		t.Errorf("sensitive = %q, want content listed", r.Sensitive)
	}
	// Another node's secret is not there for school-2 (the source has none for it).
	_, diags = cfg.Evaluate("school-2", map[string]any{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `secret "activation/school-2.sig": this release has none for the node`) {
		t.Errorf("school-2 without its secret: %v", diags)
	}
	if strings.Contains(diags.Error(), secret) {
		t.Errorf("a diagnostic quotes a secret: %v", diags)
	}
}

func TestSecretRefusals(t *testing.T) {
	for name, tc := range map[string]struct{ expr, want string }{
		"fact name":  {`secret(fact.hostname)`, "the name of a secret must be known when the release is made"},
		"dotdot":     {`secret("../keys/root.key")`, `secret name "../keys/root.key"`},
		"absolute":   {`secret("/etc/shadow")`, `secret name "/etc/shadow"`},
		"dot prefix": {`secret("a/.hidden")`, `secret name "a/.hidden"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := loadSecrets(t, `node "school-1" {
  file "x" {
    path    = "/etc/x"
    content = `+tc.expr+`
  }
}
`)
			_, diags := cfg.SecretNames("school-1")
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Errorf("diagnostics %v, want %q", diags, tc.want)
			}
		})
	}
	// Evaluating without a source says where secrets come from.
	cfg := loadSecrets(t, secretsConfig)
	_, diags := cfg.Evaluate("school-1", map[string]any{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "is not available here: secrets come with a release") {
		t.Errorf("no source: %v", diags)
	}
}
