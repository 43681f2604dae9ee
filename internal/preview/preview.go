package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// Node is a node to preview, with the facts it last reported (nil: it never did).
type Node struct {
	Name  string
	Facts map[string]any
}

// Kind is how a resource changes.
type Kind string

// The kinds of change.
const (
	Added   Kind = "added"
	Removed Kind = "removed"
	Changed Kind = "changed"
)

// Change is one resource's change on a node.
type Change struct {
	Address string `json:"address"`
	Kind    Kind   `json:"kind"`
	// Fields are the attributes (and "require", "notify") that differ, for Changed.
	Fields []string `json:"fields,omitempty"`
}

// NodeResult is one node's preview.
type NodeResult struct {
	Node    string   `json:"node"`
	Changes []Change `json:"changes,omitempty"`
	// Error is why the new release does not evaluate for the node ("": it does).
	Error string `json:"error,omitempty"`
	// NoFacts: the node never reported facts; it was checked with unknown facts only.
	NoFacts bool `json:"no_facts,omitempty"`
}

// Result is the preview of a release for a fleet.
type Result struct {
	// From is the release compared against (0: none, everything is added).
	From  uint64       `json:"from"`
	Nodes []NodeResult `json:"nodes"`
}

// Failed returns the nodes the release does not evaluate for.
func (r *Result) Failed() []string {
	var out []string
	for _, n := range r.Nodes {
		if n.Error != "" {
			out = append(out, n.Node)
		}
	}
	return out
}

// Group is the nodes that would see the same changes.
type Group struct {
	Nodes   []string `json:"nodes"`
	Changes []Change `json:"changes"`
}

// Groups returns the nodes that evaluate, grouped by identical changes, the largest group
// first (nodes with no change form a group too).
func (r *Result) Groups() []Group {
	byKey := map[string]*Group{}
	var order []string
	for _, n := range r.Nodes {
		if n.Error != "" {
			continue
		}
		data, _ := json.Marshal(n.Changes)
		k := string(data)
		g, ok := byKey[k]
		if !ok {
			g = &Group{Changes: n.Changes}
			byKey[k] = g
			order = append(order, k)
		}
		g.Nodes = append(g.Nodes, n.Node)
	}
	out := make([]Group, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	slices.SortStableFunc(out, func(a, b Group) int { return len(b.Nodes) - len(a.Nodes) })
	return out
}

// placeholderSecrets stands for every secret by its name: a preview never reads one.
type placeholderSecrets struct{}

func (placeholderSecrets) Secret(_, name string) (string, error) { return "(secret " + name + ")", nil }

// Run previews the config in newDir for nodes against the one in oldDir (the current
// release's, checked out; "" when there is none), version from. A config that does not
// load is an error; a node that fails is a NodeResult with its Error.
func Run(ctx context.Context, oldDir, newDir string, from uint64, nodes []Node) (*Result, error) {
	newCfg, diags := load(newDir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the new config: %s", describe(diags, newDir))
	}
	var oldCfg *lang.Config
	if oldDir != "" {
		if oldCfg, diags = load(oldDir); diags.HasErrors() {
			return nil, fmt.Errorf("release %d's config: %s", from, describe(diags, oldDir))
		}
	}
	res := &Result{From: from, Nodes: make([]NodeResult, len(nodes))}
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res.Nodes[i] = previewNode(oldCfg, newCfg, nodes[i])
				if e := res.Nodes[i].Error; e != "" {
					res.Nodes[i].Error = strings.ReplaceAll(e, newDir+string(filepath.Separator), "")
				}
			}
		}()
	}
	for i := range nodes {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(res.Nodes, func(a, b NodeResult) int { return strings.Compare(a.Node, b.Node) })
	return res, nil
}

func load(dir string) (*lang.Config, hcl.Diagnostics) {
	cfg, diags := lang.Load(dir, resource.Schemas())
	if cfg != nil {
		cfg.SetSecrets(placeholderSecrets{})
	}
	return cfg, diags
}

// previewNode evaluates both configs for one node and compares them.
func previewNode(oldCfg, newCfg *lang.Config, n Node) NodeResult {
	r := NodeResult{Node: n.Name}
	if n.Facts == nil {
		r.NoFacts = true
		if diags := newCfg.Check(n.Name, nil); diags.HasErrors() {
			r.Error = describe(diags, "")
		}
		return r
	}
	after, diags := newCfg.Evaluate(n.Name, n.Facts)
	if diags.HasErrors() {
		r.Error = describe(diags, "")
		return r
	}
	before := catalog.New(n.Name)
	if oldCfg != nil {
		// A node the current release fails for (or does not know) has nothing to compare
		// against: all it gets is new.
		if c, diags := oldCfg.Evaluate(n.Name, n.Facts); !diags.HasErrors() {
			before = c
		}
	}
	r.Changes = Diff(before, after)
	return r
}

// Diff compares two catalogs of one node, resource by resource, in address order.
func Diff(before, after *catalog.Catalog) []Change {
	old := map[string]*catalog.Resource{}
	for _, r := range before.Resources {
		old[r.Address] = r
	}
	var out []Change
	seen := map[string]bool{}
	for _, r := range after.Resources {
		seen[r.Address] = true
		o, ok := old[r.Address]
		if !ok {
			out = append(out, Change{Address: r.Address, Kind: Added})
			continue
		}
		if fields := changedFields(o, r); len(fields) > 0 {
			out = append(out, Change{Address: r.Address, Kind: Changed, Fields: fields})
		}
	}
	for _, r := range before.Resources {
		if !seen[r.Address] {
			out = append(out, Change{Address: r.Address, Kind: Removed})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// changedFields names the attributes and edges that differ between two versions of a
// resource.
func changedFields(a, b *catalog.Resource) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(a.Attributes))
	for k := range b.Attributes {
		if _, ok := a.Attributes[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !jsonEqual(a.Attributes[k], b.Attributes[k]) {
			out = append(out, k)
		}
	}
	if !slices.Equal(a.Require, b.Require) {
		out = append(out, "require")
	}
	if !slices.Equal(a.Notify, b.Notify) {
		out = append(out, "notify")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// jsonEqual compares two JSON values by meaning (key order and spacing aside).
func jsonEqual(a, b json.RawMessage) bool {
	if string(a) == string(b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// describe is the first error of diags, on one line with its position, file names
// relative to dir.
func describe(diags hcl.Diagnostics, dir string) string {
	errs := diags.Errs()
	if len(errs) == 0 {
		return ""
	}
	d, ok := errs[0].(*hcl.Diagnostic)
	if !ok {
		return errs[0].Error()
	}
	msg := d.Summary
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if d.Subject != nil {
		msg = lang.Position(*d.Subject) + ": " + msg
	}
	if n := len(errs); n > 1 {
		msg += fmt.Sprintf(" (and %d more)", n-1)
	}
	if dir != "" {
		msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	}
	return msg
}

// Evaluated is a node's catalog under a config, or why there is none.
type Evaluated struct {
	Node    string
	Catalog *catalog.Catalog // nil on error
	Error   string
}

// Evaluate evaluates the config in dir for nodes from their facts, with placeholders for
// secrets (a catalog for planning, not for applying). A config that does not load is an
// error; a node that fails (or has no facts) is an Evaluated with its Error.
func Evaluate(ctx context.Context, dir string, nodes []Node) ([]Evaluated, error) {
	cfg, diags := load(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the config: %s", describe(diags, dir))
	}
	out := make([]Evaluated, len(nodes))
	for i, n := range nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i].Node = n.Name
		if n.Facts == nil {
			out[i].Error = "no facts known for the node"
			continue
		}
		cat, diags := cfg.Evaluate(n.Name, n.Facts)
		if diags.HasErrors() {
			out[i].Error = strings.ReplaceAll(describe(diags, ""), dir+string(filepath.Separator), "")
			continue
		}
		out[i].Catalog = cat
	}
	return out, nil
}

// InventoryNodes loads the config in dir and returns the nodes whose inventory row has
// value in column (lang.Config.InventoryNodes).
func InventoryNodes(dir, column, value string) ([]string, error) {
	cfg, diags := load(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the config: %s", describe(diags, dir))
	}
	return cfg.InventoryNodes(column, value)
}

// InventoryColumn loads the config in dir and returns one column of its inventory by
// node (lang.Config.InventoryColumn).
func InventoryColumn(dir, column string) (map[string]string, string, error) {
	cfg, diags := load(dir)
	if diags.HasErrors() {
		return nil, "", fmt.Errorf("the config: %s", describe(diags, dir))
	}
	values, name := cfg.InventoryColumn(column)
	return values, name, nil
}
