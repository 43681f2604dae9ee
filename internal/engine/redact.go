package engine

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
)

// minSecretLen is the shortest secret value that is searched for and replaced in text; a
// shorter one would blank out ordinary words.
const minSecretLen = 3

// redactor removes secrets from resource outcomes: the values of sensitive attributes of
// any resource, wherever they appear, and the from/to of a change to a sensitive attribute.
type redactor struct {
	values    []string
	sensitive map[string][]string // address -> sensitive attribute names
}

func newRedactor(cat *catalog.Catalog) *redactor {
	r := &redactor{sensitive: map[string][]string{}}
	for _, res := range cat.Resources {
		if len(res.Sensitive) == 0 {
			continue
		}
		r.sensitive[res.Address] = res.Sensitive
		for _, attr := range res.Sensitive {
			var v any
			if json.Unmarshal(res.Attributes[attr], &v) == nil {
				r.collect(v)
			}
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(r.values, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	r.values = slices.Compact(r.values)
	return r
}

func (r *redactor) collect(v any) {
	switch v := v.(type) {
	case string:
		// The catalog knows that a value is secret, not which part of it came from the
		// secret: a template line "passphrase=${var.wifi}" is sensitive as a whole. So every
		// line is searched for, and so is what follows a "key=" or "key:" in it.
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimSpace(line)
			r.add(line)
			if i := strings.IndexAny(line, "=:"); i >= 0 {
				r.add(strings.Trim(strings.TrimSpace(line[i+1:]), `"'`))
			}
		}
	case []any:
		for _, e := range v {
			r.collect(e)
		}
	case map[string]any:
		for _, e := range v {
			r.collect(e)
		}
	}
}

func (r *redactor) add(s string) {
	if len(s) >= minSecretLen {
		r.values = append(r.values, s)
	}
}

func (r *redactor) scrub(s string) string {
	for _, v := range r.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, resource.Redacted)
		}
	}
	return s
}

func (r *redactor) redact(out *report.Resource) {
	attrs := r.sensitive[out.Address]
	for _, c := range out.Changes {
		if slices.Contains(attrs, c.Attribute) {
			c.From, c.To = resource.Redacted, resource.Redacted
		}
		c.From, c.To = r.scrub(c.From), r.scrub(c.To)
	}
	if slices.Contains(attrs, "content") && out.Diff != "" {
		out.Diff = "(diff hidden: the content is sensitive)\n"
	}
	out.Diff = r.scrub(out.Diff)
	out.Error = r.scrub(out.Error)
	for i, n := range out.Notes {
		out.Notes[i] = r.scrub(n)
	}
}

// Scrubber returns a function that replaces the values of the catalog's sensitive
// attributes in a text with a mark, as run reports have them: for text from outside the
// engine that may quote them (a health check's output, a message).
func Scrubber(cat *catalog.Catalog) func(string) string {
	return newRedactor(cat).scrub
}
