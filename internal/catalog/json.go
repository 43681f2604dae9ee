package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marshal renders the catalog as canonical JSON: resources and edges sorted, object keys
// sorted at every depth, no HTML escaping, two-space indentation and a final newline. Equal
// catalogs always give identical bytes.
func Marshal(c *Catalog) ([]byte, error) {
	c.Sort()
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode catalog for %s: %w", c.Node, err)
	}
	return Canonical(raw)
}

// Canonical re-encodes any JSON document with sorted keys, numbers kept exactly as written,
// no HTML escaping and two-space indentation.
func Canonical(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonicalise JSON: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, fmt.Errorf("canonicalise JSON: %w", err)
	}
	return out.Bytes(), nil
}

// Unmarshal decodes and validates a catalog. Unknown fields are errors, so a catalog written
// by a newer Satchel with a different meaning is refused rather than half understood.
func Unmarshal(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode catalog: unexpected data after the catalog object")
	}
	if c.Resources == nil {
		return nil, fmt.Errorf("decode catalog: no resources list")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	c.Sort()
	return &c, nil
}
