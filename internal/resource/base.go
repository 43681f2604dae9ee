package resource

import (
	"slices"

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
	return slices.Contains(b.sensitive, attr)
}

// show returns v, or Redacted if attr is sensitive.
func (b *base) show(attr, v string) string {
	if b.isSensitive(attr) {
		return Redacted
	}
	return v
}
