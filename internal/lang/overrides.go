package lang

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// SetVars sets variables from outside the repository (satchel apply --var NAME=VALUE), with
// the highest precedence: above node blocks and the inventory. Each must be declared by a
// variable block. A value is taken as text for a string variable and as an HCL expression
// (true, 3, ["a", "b"]) for any other type.
func (c *Config) SetVars(vars map[string]string) error {
	out := make(map[string]cty.Value, len(vars))
	for _, name := range sortedKeys(vars) {
		decl, ok := c.variables[name]
		if !ok {
			declared := slices.Clone(c.varOrder)
			slices.Sort(declared)
			if len(declared) == 0 {
				return fmt.Errorf("--var %s: no variable %q is declared (the configuration declares no variables)", name, name)
			}
			return fmt.Errorf("--var %s: no variable %q is declared (declared: %s)", name, name, strings.Join(declared, ", "))
		}
		raw := vars[name]
		val := cty.StringVal(raw)
		if decl.typ != cty.String && decl.typ != cty.DynamicPseudoType {
			expr, diags := hclsyntax.ParseExpression([]byte(raw), "--var "+name, hcl.InitialPos)
			if diags.HasErrors() {
				return fmt.Errorf("--var %s: %q is not a value of type %s: %s", name, raw, typeexpr.TypeString(decl.typ), diags.Errs()[0])
			}
			if val, diags = expr.Value(nil); diags.HasErrors() {
				return fmt.Errorf("--var %s: %q is not a constant: %s", name, raw, diags.Errs()[0])
			}
		}
		conv, err := convert.Convert(val, decl.typ)
		if err != nil {
			return fmt.Errorf("--var %s: %q does not fit the type %s: %v", name, raw, typeexpr.TypeString(decl.typ), err)
		}
		out[name] = conv
	}
	c.overrides = out
	return nil
}
