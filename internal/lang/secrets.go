package lang

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// SecretSource gives the value of a node's secret, secret("NAME"): on a node, the
// release's ciphertext for it, decrypted with the node's own key.
type SecretSource interface {
	Secret(node, name string) (string, error)
}

// SetSecrets sets where secret() takes its values from. Call it before evaluating. Without
// a source, secret() is an unknown sensitive string: Check passes, and Evaluate reports
// that the secret is not available.
func (c *Config) SetSecrets(src SecretSource) { c.secrets = src }

var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$`)

// CheckSecretName reports whether name can name a secret: a relative slash-separated path
// of at most 255 characters, of letters, digits, dots, dashes and underscores, with no
// empty, "." or ".." element and no element starting with a dot.
func CheckSecretName(name string) error {
	if len(name) > 255 || !secretNameRE.MatchString(name) || path.Clean(name) != name {
		return fmt.Errorf("secret name %q: want a relative path such as \"activation/school-1.sig\" (letters, digits, dots, dashes, underscores; no \"..\")", name)
	}
	return nil
}

// SecretNames checks the configuration for node with unknown facts, as Check does, and
// returns the names of the secrets it reads, sorted: what a release must carry for the
// node. A secret whose name depends on facts is an error, since it cannot be encrypted
// for the node before the node evaluates the release.
func (c *Config) SecretNames(node string) ([]string, hcl.Diagnostics) {
	e := c.newEvaluator(node, cty.DynamicVal, false)
	e.run()
	names := slices.Clone(e.secretNames)
	slices.Sort(names)
	return slices.Compact(names), e.diags
}

// secretFunc is secret(name): the node's secret of that name, sensitive.
func (e *evaluator) secretFunc() function.Function {
	return function.New(&function.Spec{
		Description: "The node's secret of that name, from the release (encrypted to the node alone); sensitive.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String, AllowUnknown: true}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if !args[0].IsKnown() {
				return cty.NilVal, function.NewArgErrorf(0, "the name of a secret must be known when the release is made, to encrypt it for the node: build it from node.name and var, not from fact")
			}
			name := args[0].AsString()
			if err := CheckSecretName(name); err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			e.secretNames = append(e.secretNames, name)
			unknown := cty.UnknownVal(cty.String).Mark(markSensitive)
			if !e.known {
				return unknown, nil
			}
			if e.cfg.secrets == nil {
				return cty.NilVal, function.NewArgErrorf(0, "secret %q is not available here: secrets come with a release, encrypted for each node (satchel release --secrets DIR)", name)
			}
			v, err := e.cfg.secrets.Secret(e.node, name)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "secret %q: %v", name, err)
			}
			if !utf8.ValidString(v) {
				return cty.NilVal, function.NewArgErrorf(0, "secret %q is not UTF-8 text", name)
			}
			return cty.StringVal(v).Mark(markSensitive), nil
		},
	})
}
