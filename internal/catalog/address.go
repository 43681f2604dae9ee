package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Address identifies a resource within a catalog: TYPE.NAME, or TYPE.NAME["KEY"] for one
// instance of a for_each.
type Address struct {
	Type string
	Name string
	Key  *string
}

// String renders the address in its canonical form.
func (a Address) String() string {
	base := a.Type + "." + a.Name
	if a.Key == nil {
		return base
	}
	return base + "[" + quoteKey(*a.Key) + "]"
}

// Base returns the address without its key: the address of the resource block.
func (a Address) Base() string { return a.Type + "." + a.Name }

// ParseAddress parses a canonical address.
func ParseAddress(s string) (Address, error) {
	base, rest, hasKey := strings.Cut(s, "[")
	typ, name, ok := strings.Cut(base, ".")
	if !ok || !IsIdentifier(typ) || !IsIdentifier(name) {
		return Address{}, fmt.Errorf("address %q is not of the form TYPE.NAME or TYPE.NAME[\"KEY\"]", s)
	}
	a := Address{Type: typ, Name: name}
	if !hasKey {
		return a, nil
	}
	quoted, ok := strings.CutSuffix(rest, "]")
	var key string
	if !ok || json.Unmarshal([]byte(quoted), &key) != nil || quoteKey(key) != quoted {
		return Address{}, fmt.Errorf("address %q has a malformed key", s)
	}
	a.Key = &key
	return a, nil
}

// IsIdentifier reports whether s is a valid type, resource or attribute name: a letter or
// underscore followed by letters, digits, underscores or dashes (as HCL identifiers).
func IsIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'):
		case i > 0 && (r == '-' || ('0' <= r && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// quoteKey renders a key as a JSON string without HTML escaping.
func quoteKey(k string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(k) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
