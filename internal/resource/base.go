package resource

import (
	"strings"

	"github.com/satchelcm/satchel/internal/catalog"
)

// base is embedded in every type: what it needs of its catalog entry besides attributes.
type base struct {
	address   string
	sensitive []string
}

func (b *base) bind(r *catalog.Resource) error {
	b.address = r.Address
	b.sensitive = r.Sensitive
	return nil
}

// isSensitive reports whether attr holds a secret.
func (b *base) isSensitive(attr string) bool {
	for _, s := range b.sensitive {
		if s == attr {
			return true
		}
	}
	return false
}

// show returns v, or Redacted if attr is sensitive.
func (b *base) show(attr, v string) string {
	if b.isSensitive(attr) {
		return Redacted
	}
	return v
}

// quoteIfEmpty makes an empty value visible in a change.
func quoteIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return `"` + s + `"`
	}
	return s
}
