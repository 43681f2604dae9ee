package lang

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// FactReferences returns the facts the configuration can read, as paths ({"os", "id"} for
// fact.os.id), sorted and without paths covered by shorter ones. A path stops at the first
// step that is not a constant (fact.disks[var.d] gives {"disks"}); a bare `fact` gives the
// empty path, meaning all of them. Templates count once they have been used, so call this
// after Evaluate.
//
// Evaluation is pure, so a catalog depends only on the repository's files, the node's name
// and these facts: that is what makes a compiled catalog safe to reuse (package catcache).
func (c *Config) FactReferences() [][]string {
	var paths [][]string
	add := func(vars []hcl.Traversal) {
		for _, tr := range vars {
			if tr.RootName() == "fact" {
				paths = append(paths, traversalPath(tr[1:]))
			}
		}
	}
	for _, b := range c.bodies {
		if body, ok := b.(*hclsyntax.Body); ok {
			walkBody(body, add)
		}
	}
	c.files.mu.Lock()
	for _, t := range c.templates {
		if t.expr != nil {
			add(t.expr.Variables())
		}
	}
	c.files.mu.Unlock()
	return minimalPaths(paths)
}

func walkBody(b *hclsyntax.Body, add func([]hcl.Traversal)) {
	for _, a := range b.Attributes {
		add(a.Expr.Variables())
	}
	for _, blk := range b.Blocks {
		walkBody(blk.Body, add)
	}
}

// traversalPath keeps the constant steps of a traversal.
func traversalPath(tr hcl.Traversal) []string {
	var out []string
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseAttr:
			out = append(out, s.Name)
		case hcl.TraverseIndex:
			k := s.Key
			switch {
			case !k.IsKnown() || k.IsNull():
				return out
			case k.Type() == cty.String:
				out = append(out, k.AsString())
			case k.Type() == cty.Number:
				out = append(out, k.AsBigFloat().Text('f', -1))
			default:
				return out
			}
		default:
			return out
		}
	}
	return out
}

// minimalPaths sorts paths and drops those under a shorter one.
func minimalPaths(paths [][]string) [][]string {
	slices.SortFunc(paths, func(a, b []string) int { return strings.Compare(joinPath(a), joinPath(b)) })
	var out [][]string
	for _, p := range paths {
		covered := false
		for _, q := range out {
			if len(q) <= len(p) && slices.Equal(q, p[:len(q)]) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

func joinPath(p []string) string {
	var b strings.Builder
	for _, s := range p {
		b.WriteString(strconv.Quote(s))
		b.WriteByte('.')
	}
	return b.String()
}
