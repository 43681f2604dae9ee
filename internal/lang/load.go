package lang

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/schema"
)

// Directories of a config repository that hold data, not configuration.
const (
	FilesDir     = "files"
	TemplatesDir = "templates"
)

// reservedBlocks are block types that cannot be resource type names.
var reservedBlocks = []string{"variable", "locals", "inventory", "node", "role", "param"}

// rootSchema lists the top-level blocks. Resource blocks are in it too, only so that one
// outside any node or role gets a message saying where it belongs.
var rootSchema = func(types map[string]*schema.Type) *hcl.BodySchema {
	return withResourceBlocks(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "inventory"},
		{Type: "node", LabelNames: []string{"pattern"}},
		{Type: "role", LabelNames: []string{"name"}},
	}}, types)
}

// Load parses every .hcl file of the repository at dir (recursively, except under files/,
// templates/ and hidden directories) and checks what can be checked without a node: block
// structure, attribute names and types known statically, role parameters, references'
// syntax, the inventory file. It returns all problems found, not just the first.
func Load(dir string, types map[string]*schema.Type) (*Config, hcl.Diagnostics) {
	dir = filepath.Clean(dir)
	c := &Config{
		Dir: dir, types: types, variables: map[string]*variable{}, roles: map[string]*role{},
		files: &sourceFiles{snippets: map[string][]byte{}, files: map[string]fileData{}},
	}
	for name := range types {
		if slices.Contains(reservedBlocks, name) {
			panic("resource type name " + name + " is reserved")
		}
	}
	names, err := hclFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration",
			Detail: err.Error()}}
	}
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No configuration files",
			Detail: fmt.Sprintf("%s contains no .hcl files.", dir)}}
	}
	var diags hcl.Diagnostics
	var bodies []hcl.Body
	for _, p := range parseFiles(dir, names) {
		diags = append(diags, p.diags...)
		if p.file != nil {
			c.files.snippets[p.name] = p.file.Bytes
			c.files.recordRead(dir, p.name, p.file.Bytes)
			bodies = append(bodies, p.file.Body)
		}
	}
	c.bodies = bodies
	for _, body := range bodies {
		diags = append(diags, c.decodeRoot(body)...)
	}
	diags = append(diags, c.checkRoleUses()...)
	c.maskSensitiveColumns()
	return c, diags
}

type parsedFile struct {
	name  string
	file  *hcl.File
	diags hcl.Diagnostics
}

// parseFiles reads and parses the files concurrently (parsing is most of the cost of a large
// configuration) and returns them in the order given. Files are read through os.Root, so a
// .hcl file that is a symlink out of the repository is refused.
func parseFiles(dir string, names []string) []parsedFile {
	out := make([]parsedFile, len(names))
	root, err := os.OpenRoot(dir)
	if err != nil {
		for i, name := range names {
			out[i] = parsedFile{name: name, diags: hcl.Diagnostics{{Severity: hcl.DiagError,
				Summary: "Cannot read configuration", Detail: err.Error()}}}
		}
		return out
	}
	defer root.Close()
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i].name = name
			rel, _ := filepath.Rel(dir, name)
			src, err := root.ReadFile(rel)
			if err != nil {
				out[i].diags = hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration file", Detail: err.Error()}}
				return
			}
			out[i].file, out[i].diags = hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		}()
	}
	wg.Wait()
	return out
}

// hclFiles lists the configuration files under dir, sorted, as dir-joined paths. dir may
// be a symlink (a "current -> releases/42" layout); links below it are not followed.
func hclFiles(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(real, p)
		p = filepath.Join(dir, rel)
		if d.IsDir() && p != dir {
			if strings.HasPrefix(d.Name(), ".") || rel == FilesDir || rel == TemplatesDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".hcl") && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

func (c *Config) decodeRoot(body hcl.Body) hcl.Diagnostics {
	content, diags := bodyContent(body, rootSchema(c.types))
	for _, attr := range content.Attributes {
		diags = append(diags, errorAt(attr.NameRange, "Unexpected attribute",
			"Attributes are not allowed at the top level; put them in a node, role, variable or locals block."))
	}
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			diags = append(diags, c.decodeVariable(b)...)
		case "locals":
			attrs, d := b.Body.JustAttributes()
			diags = append(diags, d...)
			for _, a := range sortedAttrs(attrs) {
				if dup := findLocal(c.locals, a.Name); dup != nil {
					diags = append(diags, errorAt(a.NameRange, "Duplicate local value",
						fmt.Sprintf("local.%s is already defined at %s.", a.Name, Position(dup.NameRange))))
					continue
				}
				c.locals = append(c.locals, a)
			}
		case "inventory":
			diags = append(diags, c.decodeInventory(b)...)
		case "node":
			n, d := c.decodeNode(b)
			diags = append(diags, d...)
			if n != nil {
				c.nodes = append(c.nodes, n)
			}
		case "role":
			r, d := c.decodeRole(b)
			diags = append(diags, d...)
			if r == nil {
				continue
			}
			if prev, dup := c.roles[r.name]; dup {
				diags = append(diags, errorAt(b.LabelRanges[0], "Duplicate role",
					fmt.Sprintf("role %q is already defined at %s.", r.name, Position(prev.declRange))))
				continue
			}
			c.roles[r.name] = r
		default: // a resource type
			diags = append(diags, errorAt(b.TypeRange, "Resource outside a node or role",
				fmt.Sprintf("%s %q must be declared inside a node block (for the machines it selects) or a role block (included by nodes).", b.Type, b.Labels[0])))
		}
	}
	return diags
}

// The remaining diagnostics of decodeRoot come from the schema itself: an unknown block type
// at the top level gets HCL's own message.

func findLocal(locals []*hcl.Attribute, name string) *hcl.Attribute {
	for _, l := range locals {
		if l.Name == name {
			return l
		}
	}
	return nil
}

var variableSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
}}

func (c *Config) decodeVariable(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	content, diags := bodyContent(b.Body, variableSchema)
	if !validName(name) {
		return append(diags, invalidName(b.LabelRanges[0], "variable", name))
	}
	if prev, dup := c.variables[name]; dup {
		return append(diags, errorAt(b.LabelRanges[0], "Duplicate variable",
			fmt.Sprintf("var.%s is already declared at %s.", name, Position(prev.declRange))))
	}
	v := &variable{name: name, typ: cty.DynamicPseudoType, def: cty.NilVal, declRange: b.DefRange}
	diags = append(diags, decodeTyped(content.Attributes, &v.typ, &v.def, &v.description)...)
	if a, ok := content.Attributes["sensitive"]; ok {
		diags = append(diags, staticBool(a, &v.sensitive)...)
	}
	c.variables[name] = v
	c.varOrder = append(c.varOrder, name)
	return diags
}

// decodeTyped reads the type, default and description attributes shared by variable and
// param blocks. The default must be a constant and must convert to the type.
func decodeTyped(attrs hcl.Attributes, typ *cty.Type, def *cty.Value, desc *string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if a, ok := attrs["type"]; ok {
		t, d := typeexpr.TypeConstraint(a.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			*typ = t
		}
	}
	if a, ok := attrs["default"]; ok {
		v, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := convert.Convert(v, *typ)
			if err != nil {
				diags = append(diags, errorAt(a.Expr.Range(), "Invalid default value",
					fmt.Sprintf("The default does not match the type %s: %s.", typeexpr.TypeString(*typ), err)))
			} else {
				*def = conv
			}
		}
	}
	if a, ok := attrs["description"]; ok {
		diags = append(diags, staticString(a, desc)...)
	}
	return diags
}

var nodeSchema = func(types map[string]*schema.Type) *hcl.BodySchema {
	s := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "where"}, {Name: "vars"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "role", LabelNames: []string{"name"}}},
	}
	return withResourceBlocks(s, types)
}

func withResourceBlocks(s *hcl.BodySchema, types map[string]*schema.Type) *hcl.BodySchema {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: n, LabelNames: []string{"name"}})
	}
	return s
}

func (c *Config) decodeNode(b *hcl.Block) (*nodeBlock, hcl.Diagnostics) {
	pattern := b.Labels[0]
	content, diags := bodyContent(b.Body, nodeSchema(c.types))
	if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
		diags = append(diags, errorAt(b.LabelRanges[0], "Invalid node pattern",
			fmt.Sprintf("%q is not a valid name pattern (use *, ? and [a-z] as in shell globs).", pattern)))
	}
	n := &nodeBlock{pattern: pattern, declRange: b.DefRange}
	if a, ok := content.Attributes["where"]; ok {
		n.where = a.Expr
	}
	if a, ok := content.Attributes["vars"]; ok {
		n.vars = a.Expr
	}
	uses, resources, d := c.decodeMembers(content.Blocks)
	n.roles, n.resources = uses, resources
	return n, append(diags, d...)
}

var roleSchema = func(types map[string]*schema.Type) *hcl.BodySchema {
	s := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "description"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "param", LabelNames: []string{"name"}},
			{Type: "role", LabelNames: []string{"name"}},
		},
	}
	return withResourceBlocks(s, types)
}

var paramSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "default"}, {Name: "description"},
}}

func (c *Config) decodeRole(b *hcl.Block) (*role, hcl.Diagnostics) {
	name := b.Labels[0]
	content, diags := bodyContent(b.Body, roleSchema(c.types))
	if !validName(name) {
		return nil, append(diags, invalidName(b.LabelRanges[0], "role", name))
	}
	r := &role{name: name, params: map[string]*param{}, declRange: b.DefRange}
	if a, ok := content.Attributes["description"]; ok {
		diags = append(diags, staticString(a, &r.description)...)
	}
	var members []*hcl.Block
	for _, blk := range content.Blocks {
		if blk.Type != "param" {
			members = append(members, blk)
			continue
		}
		pc, d := bodyContent(blk.Body, paramSchema)
		diags = append(diags, d...)
		pname := blk.Labels[0]
		if !validName(pname) {
			diags = append(diags, invalidName(blk.LabelRanges[0], "parameter", pname))
			continue
		}
		if prev, dup := r.params[pname]; dup {
			diags = append(diags, errorAt(blk.LabelRanges[0], "Duplicate parameter",
				fmt.Sprintf("param.%s is already declared at %s.", pname, Position(prev.declRange))))
			continue
		}
		p := &param{name: pname, typ: cty.DynamicPseudoType, def: cty.NilVal, declRange: blk.DefRange}
		diags = append(diags, decodeTyped(pc.Attributes, &p.typ, &p.def, &p.description)...)
		r.params[pname] = p
	}
	uses, resources, d := c.decodeMembers(members)
	r.roles, r.resources = uses, resources
	return r, append(diags, d...)
}

// decodeMembers decodes the role uses and resource blocks of a node or role body.
func (c *Config) decodeMembers(blocks hcl.Blocks) ([]*roleUse, []*resourceBlock, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var uses []*roleUse
	var resources []*resourceBlock
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if b.Type == "role" {
			u, d := decodeRoleUse(b)
			diags = append(diags, d...)
			uses = append(uses, u)
			continue
		}
		r, d := c.decodeResource(b)
		diags = append(diags, d...)
		if r == nil {
			continue
		}
		key := r.typ.Name + "." + r.name
		if prev, dup := seen[key]; dup {
			diags = append(diags, errorAt(b.LabelRanges[0], "Duplicate resource",
				fmt.Sprintf("%s is already declared at %s.", key, Position(prev))))
			continue
		}
		seen[key] = b.DefRange
		resources = append(resources, r)
	}
	return uses, resources, diags
}

func decodeRoleUse(b *hcl.Block) (*roleUse, hcl.Diagnostics) {
	attrs, diags := b.Body.JustAttributes()
	u := &roleUse{name: b.Labels[0], args: map[string]*hcl.Attribute{}, declRange: b.DefRange, nameRange: b.LabelRanges[0]}
	for name, a := range attrs {
		if name == metaWhen {
			u.when = a.Expr
			continue
		}
		u.args[name] = a
	}
	return u, diags
}

func (c *Config) decodeResource(b *hcl.Block) (*resourceBlock, hcl.Diagnostics) {
	t := c.types[b.Type]
	name := b.Labels[0]
	if !validName(name) {
		return nil, hcl.Diagnostics{invalidName(b.LabelRanges[0], b.Type, name)}
	}
	attrs, diags := b.Body.JustAttributes()
	r := &resourceBlock{typ: t, name: name, attrs: map[string]*hcl.Attribute{}, declRange: b.DefRange, typeRange: b.TypeRange}
	for _, a := range sortedAttrs(attrs) {
		switch {
		case a.Name == metaForEach:
			r.forEach = a.Expr
		case a.Name == metaWhen:
			r.when = a.Expr
		case slices.Contains(referenceKinds, a.Name):
			refs, d := c.decodeReferences(a)
			diags = append(diags, d...)
			r.refs = append(r.refs, refs...)
		case t.Attribute(a.Name) != nil:
			r.attrs[a.Name] = a
		default:
			detail := fmt.Sprintf("A %s resource has no attribute named %q.", t.Name, a.Name)
			if s := suggest(a.Name, append(t.AttributeNames(), metaForEach, metaWhen, metaRequire, metaBefore, metaNotify, metaSubscribe)); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			diags = append(diags, errorAt(a.NameRange, "Unsupported attribute", detail))
		}
	}
	return r, diags
}

// decodeReferences reads a list of resource references: [TYPE.NAME, TYPE.NAME["KEY"], …].
func (c *Config) decodeReferences(a *hcl.Attribute) ([]*reference, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics{errorAt(a.Expr.Range(), "Invalid "+a.Name,
			fmt.Sprintf("%s takes a list of resources, such as [file.motd, directory.srv].", a.Name))}
	}
	var refs []*reference
	for _, e := range exprs {
		ref, d := c.decodeReference(a.Name, e)
		diags = append(diags, d...)
		if ref != nil {
			refs = append(refs, ref)
		}
	}
	return refs, diags
}

func (c *Config) decodeReference(kind string, e hcl.Expression) (*reference, hcl.Diagnostics) {
	bad := func(detail string) hcl.Diagnostics {
		return hcl.Diagnostics{errorAt(e.Range(), "Invalid reference", detail)}
	}
	tr, d := hcl.AbsTraversalForExpr(e)
	if d.HasErrors() || len(tr) < 2 || len(tr) > 3 {
		return nil, bad("A reference names a resource as TYPE.NAME or TYPE.NAME[\"KEY\"], such as file.motd.")
	}
	typ := tr.RootName()
	if _, ok := c.types[typ]; !ok {
		detail := fmt.Sprintf("%q is not a resource type.", typ)
		if s := suggest(typ, mapKeys(c.types)); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		return nil, bad(detail)
	}
	attr, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return nil, bad("A reference names a resource as TYPE.NAME or TYPE.NAME[\"KEY\"], such as file.motd.")
	}
	ref := &reference{kind: kind, typ: typ, base: typ + "." + attr.Name, rng: e.Range()}
	if len(tr) == 3 {
		idx, ok := tr[2].(hcl.TraverseIndex)
		if !ok { // file.motd.path: an attribute, not an instance
			return nil, bad("A reference names a resource as TYPE.NAME or TYPE.NAME[\"KEY\"], such as file.motd; it cannot name an attribute.")
		}
		if idx.Key.Type() != cty.String || !idx.Key.IsKnown() || idx.Key.IsNull() {
			return nil, bad("The key of a for_each instance must be a quoted string, as in file.conf[\"a\"].")
		}
		k := idx.Key.AsString()
		ref.key = &k
	}
	ref.srcText = ref.base
	if ref.key != nil {
		ref.srcText = catalog.Address{Type: typ, Name: attr.Name, Key: ref.key}.String()
	}
	return ref, nil
}

// checkRoleUses checks, without a node, that every used role exists, takes the arguments
// given and gets every required parameter, and that no role includes itself.
func (c *Config) checkRoleUses() hcl.Diagnostics {
	var diags hcl.Diagnostics
	check := func(uses []*roleUse) {
		for _, u := range uses {
			r, ok := c.roles[u.name]
			if !ok {
				detail := fmt.Sprintf("No role named %q is defined.", u.name)
				if s := suggest(u.name, mapKeys(c.roles)); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				}
				diags = append(diags, errorAt(u.nameRange, "Unknown role", detail))
				continue
			}
			for _, a := range sortedAttrs(u.args) {
				if _, ok := r.params[a.Name]; !ok {
					detail := fmt.Sprintf("Role %q has no parameter named %q.", r.name, a.Name)
					if s := suggest(a.Name, mapKeys(r.params)); s != "" {
						detail += fmt.Sprintf(" Did you mean %q?", s)
					}
					diags = append(diags, errorAt(a.NameRange, "Unknown role parameter", detail))
				}
			}
			for _, name := range sortedKeys(r.params) {
				if p := r.params[name]; p.def == cty.NilVal && u.args[name] == nil {
					diags = append(diags, errorAt(u.declRange, "Missing role parameter",
						fmt.Sprintf("Role %q needs a value for param %q (declared at %s).", r.name, name, Position(p.declRange))))
				}
			}
		}
	}
	for _, n := range c.nodes {
		check(n.roles)
	}
	for _, name := range sortedKeys(c.roles) {
		check(c.roles[name].roles)
	}
	// Inclusion cycles, found by depth-first search from every role.
	state := map[string]int{} // 0 unvisited, 1 on the path, 2 done
	var stack []string        // the path from the role the search started at
	var visit func(name string)
	visit = func(name string) {
		state[name] = 1
		stack = append(stack, name)
		for _, u := range c.roles[name].roles {
			if _, ok := c.roles[u.name]; !ok {
				continue
			}
			switch state[u.name] {
			case 1:
				loop := append(slices.Clone(stack[slices.Index(stack, u.name):]), u.name)
				diags = append(diags, errorAt(u.nameRange, "Role includes itself",
					fmt.Sprintf("Role %q is included again inside itself: %s.", u.name, strings.Join(loop, " -> "))))
			case 0:
				visit(u.name)
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = 2
	}
	for _, name := range sortedKeys(c.roles) {
		if state[name] == 0 {
			visit(name)
		}
	}
	return diags
}

func staticString(a *hcl.Attribute, dst *string) hcl.Diagnostics {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	if v.Type() != cty.String || v.IsNull() {
		return hcl.Diagnostics{errorAt(a.Expr.Range(), "Invalid "+a.Name, a.Name+" must be a string.")}
	}
	*dst = v.AsString()
	return nil
}

func staticBool(a *hcl.Attribute, dst *bool) hcl.Diagnostics {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	if v.Type() != cty.Bool || v.IsNull() {
		return hcl.Diagnostics{errorAt(a.Expr.Range(), "Invalid "+a.Name, a.Name+" must be true or false.")}
	}
	*dst = v.True()
	return nil
}

func validName(s string) bool {
	return hclIdentifier(s)
}

func invalidName(r hcl.Range, what, name string) *hcl.Diagnostic {
	return errorAt(r, "Invalid name", fmt.Sprintf("%q is not a valid %s name: use letters, digits, underscores and dashes, starting with a letter or underscore.", name, what))
}
