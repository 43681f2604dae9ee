package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Format names the catalog format and its version. A reader refuses any other value.
const Format = "satchel.catalog/v1"

// Catalog is the desired state of one node.
type Catalog struct {
	Format    string      `json:"format"`
	Node      string      `json:"node"`
	Resources []*Resource `json:"resources"`
}

// Resource is one managed thing on the node.
type Resource struct {
	Address    string                     `json:"address"`
	Type       string                     `json:"type"`
	Name       string                     `json:"name"`
	Key        *string                    `json:"key,omitempty"`
	Attributes map[string]json.RawMessage `json:"attributes"`
	Sensitive  []string                   `json:"sensitive,omitempty"`
	Require    []string                   `json:"require,omitempty"`
	Notify     []string                   `json:"notify,omitempty"`
	// Origin is where the resource was declared ("roles/web.hcl:12:3"), for messages.
	Origin string `json:"origin,omitempty"`
}

// New returns an empty catalog for node.
func New(node string) *Catalog {
	return &Catalog{Format: Format, Node: node, Resources: []*Resource{}}
}

// Lookup returns the resource at addr, or nil.
func (c *Catalog) Lookup(addr string) *Resource {
	i, ok := slices.BinarySearchFunc(c.Resources, addr, func(r *Resource, a string) int {
		return strings.Compare(r.Address, a)
	})
	if !ok {
		return nil
	}
	return c.Resources[i]
}

// Sort puts resources in address order and sorts and de-duplicates every edge list and
// sensitive list, which is what makes the JSON form canonical.
func (c *Catalog) Sort() {
	slices.SortFunc(c.Resources, func(a, b *Resource) int { return strings.Compare(a.Address, b.Address) })
	for _, r := range c.Resources {
		r.Require = sortedUnique(r.Require)
		r.Notify = sortedUnique(r.Notify)
		r.Sensitive = sortedUnique(r.Sensitive)
	}
}

// Validate checks the invariants the engine relies on: a known format, well-formed unique
// addresses that agree with type, name and key, and edges that point at resources in the
// catalog. Cycles are found by Graph, not here. Attribute values are not re-parsed: a
// catalog that came through Unmarshal has valid JSON values, and the resource types check
// their own attributes when they decode them.
func (c *Catalog) Validate() error {
	if c.Format != Format {
		return fmt.Errorf("catalog format %q is not supported (want %q)", c.Format, Format)
	}
	seen := make(map[string]bool, len(c.Resources))
	for i, r := range c.Resources {
		if r == nil {
			return fmt.Errorf("resource %d is null", i)
		}
		a, err := ParseAddress(r.Address)
		if err != nil {
			return fmt.Errorf("resource %d: %w", i, err)
		}
		if a.Type != r.Type || a.Name != r.Name || !equalKey(a.Key, r.Key) {
			return fmt.Errorf("resource %s: address does not match type %q, name %q and key", r.Address, r.Type, r.Name)
		}
		if seen[r.Address] {
			return fmt.Errorf("resource %s appears twice", r.Address)
		}
		seen[r.Address] = true
		if r.Attributes == nil {
			return fmt.Errorf("resource %s has no attributes object", r.Address)
		}
	}
	for _, r := range c.Resources {
		for _, edges := range [][]string{r.Require, r.Notify} {
			for _, to := range edges {
				if !seen[to] {
					return fmt.Errorf("resource %s refers to %s, which is not in the catalog", r.Address, to)
				}
				if to == r.Address {
					return fmt.Errorf("resource %s refers to itself", r.Address)
				}
			}
		}
	}
	return nil
}

// IsSensitive reports whether the attribute holds a secret.
func (r *Resource) IsSensitive(attr string) bool {
	return slices.Contains(r.Sensitive, attr)
}

func equalKey(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
