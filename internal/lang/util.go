package lang

import (
	"maps"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// errorAt makes an error diagnostic about a range.
func errorAt(r hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
}

// bodyContent decodes a body against a schema, with the diagnostics in source order: HCL
// reports unexpected arguments in map order, which would make the output of a check vary
// from run to run.
func bodyContent(body hcl.Body, s *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	content, diags := body.Content(s)
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		if a.Subject == nil || b.Subject == nil {
			return cmpBool(a.Subject != nil, b.Subject != nil) // those without a place first
		}
		if c := strings.Compare(a.Subject.Filename, b.Subject.Filename); c != 0 {
			return c
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
	return content, diags
}

// itemRange returns the range of the value of the item named name in an object constructor
// such as { port = 80 }, so that an error points at it; otherwise the whole expression's.
func itemRange(expr hcl.Expression, name string) hcl.Range {
	if obj, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			if hcl.ExprAsKeyword(item.KeyExpr) == name {
				return item.ValueExpr.Range()
			}
			if k, d := item.KeyExpr.Value(nil); !d.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() && k.AsString() == name {
				return item.ValueExpr.Range()
			}
		}
	}
	return expr.Range()
}

// sortedAttrs returns attributes in source order, so diagnostics come out in reading order.
func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := slices.Collect(maps.Values(attrs))
	slices.SortFunc(out, func(a, b *hcl.Attribute) int {
		if c := strings.Compare(a.Range.Filename, b.Range.Filename); c != 0 {
			return c
		}
		return a.Range.Start.Byte - b.Range.Start.Byte
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func mapKeys[V any](m map[string]V) []string { return sortedKeys(m) }

// suggest returns the candidate closest to the misspelt name, if it is close enough to be
// what was meant.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// hclIdentifier reports whether s is a valid HCL identifier.
func hclIdentifier(s string) bool {
	return hclsyntax.ValidIdentifier(s)
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
