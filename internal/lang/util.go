package lang

import (
	"maps"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// errorAt makes an error diagnostic about a range.
func errorAt(r hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: r.Ptr()}
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
