package lang

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/schema"
)

// evaluator compiles the configuration for one node.
type evaluator struct {
	cfg   *Config
	node  string
	facts cty.Value // cty.DynamicVal when unknown
	known bool      // facts are known, so a complete catalog can be made

	diags     hcl.Diagnostics
	ctx       *hcl.EvalContext // fact, var, node, local and the functions
	fns       map[string]function.Function
	rendering []string             // the templates being rendered, innermost last
	included  map[string]inclusion // roles included so far, with where

	unknown []hcl.Range // values that are unknown although the facts are known (see build)
	// secretNames are the secrets secret() was asked for (SecretNames).
	secretNames []string
	instances   []*instance
	byBase      map[string][]*instance // TYPE.NAME -> its instances
	blockOf     map[string]inclusion   // TYPE.NAME -> where its block is, for duplicate errors
}

// inclusion records where a role or resource block was taken in, and whether it surely
// applies: a block under a condition that is unknown (check without facts) or that failed is
// checked as if it applied, but is not held against another block (a duplicate name or path),
// since complementary conditions such as fact.os.family == "debian" and != "debian" would
// otherwise clash whenever the facts are unknown.
type inclusion struct {
	where     string
	uncertain bool
}

// instance is one resource for the node: a block, or one for_each element of it.
type instance struct {
	block       *resourceBlock
	key         *string
	address     string
	placeholder bool // for_each was unknown (check without facts): stands for all instances
	attrs       map[string]json.RawMessage
	known       map[string]any // known values, for paths
	sensitive   []string
	require     []string
	notify      []string
	owner       string // "role web_filter" or "node school-*"
	uncertain   bool   // under a condition that is unknown or failed (see inclusion)
}

// Evaluate compiles the configuration for one node into its catalog. facts are the node's
// facts as JSON-compatible values (as package facts returns them). The catalog is nil when
// there are errors.
func (c *Config) Evaluate(node string, facts map[string]any) (*catalog.Catalog, hcl.Diagnostics) {
	fv, err := factsValue(facts)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid facts", Detail: err.Error()}}
	}
	e := c.newEvaluator(node, fv, true)
	cat := e.run()
	if e.diags.HasErrors() {
		return nil, e.diags
	}
	return cat, e.diags
}

// Check compiles the configuration for one node and returns every problem. With nil facts
// the facts are unknown: whatever depends on them is checked as far as types allow, a
// condition on them counts as true, and a for_each over them as one placeholder instance.
func (c *Config) Check(node string, facts map[string]any) hcl.Diagnostics {
	fv, known := cty.DynamicVal, false
	if facts != nil {
		v, err := factsValue(facts)
		if err != nil {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid facts", Detail: err.Error()}}
		}
		fv, known = v, true
	}
	e := c.newEvaluator(node, fv, known)
	e.run()
	return e.diags
}

// Nodes returns the node names the configuration knows by name: every inventory row and
// every node block whose pattern has no wildcard, sorted.
func (c *Config) Nodes() []string {
	set := map[string]bool{}
	if c.inventory != nil {
		for _, n := range c.inventory.order {
			set[n] = true
		}
	}
	for _, n := range c.nodes {
		if !strings.ContainsAny(n.pattern, "*?[") {
			set[n.pattern] = true
		}
	}
	return sortedKeys(set)
}

func factsValue(facts map[string]any) (cty.Value, error) {
	if facts == nil {
		facts = map[string]any{}
	}
	raw, err := json.Marshal(facts)
	if err != nil {
		return cty.NilVal, fmt.Errorf("encode facts: %w", err)
	}
	ty, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return cty.NilVal, fmt.Errorf("facts: %w", err)
	}
	return ctyjson.Unmarshal(raw, ty)
}

func (c *Config) newEvaluator(node string, facts cty.Value, known bool) *evaluator {
	e := &evaluator{cfg: c, node: node, facts: facts, known: known,
		included: map[string]inclusion{}, byBase: map[string][]*instance{}, blockOf: map[string]inclusion{}}
	e.fns = e.functions()
	return e
}

func (e *evaluator) addDiags(d hcl.Diagnostics) { e.diags = append(e.diags, d...) }

func (e *evaluator) globalContext() *hcl.EvalContext { return e.ctx }

func (e *evaluator) nodeValue() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(e.node)})
}

// run evaluates everything for the node and builds its catalog.
func (e *evaluator) run() *catalog.Catalog {
	row := e.inventoryRow()
	defaults, inv := e.baseVariables(row)
	early := mergeVars(defaults, inv, e.cfg.overrides)
	matched, uncertain := e.matchNodes(early, row)
	if len(matched) == 0 {
		return nil
	}
	vars := e.nodeVariables(matched, defaults, inv, early)
	locals := e.evalLocals(vars)
	e.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{"fact": e.facts, "var": vars, "node": e.nodeValue(), "local": locals},
		Functions: e.fns,
	}
	// Even after an error, everything is evaluated and every reference resolved, so that
	// `satchel check` reports all the problems at once; build returns no catalog then.
	for _, n := range matched {
		for _, u := range n.roles {
			e.includeRole(u, e.ctx, 0, uncertain[n])
		}
		e.addResources(n.resources, e.ctx, fmt.Sprintf("node %q", n.pattern), uncertain[n])
	}
	return e.build()
}

func (e *evaluator) inventoryRow() *inventoryRow {
	if e.cfg.inventory == nil || e.cfg.inventory.rows == nil {
		return nil
	}
	return e.cfg.inventory.rows[e.node]
}

// baseVariables returns the declared defaults and the node's inventory values, converted to
// the declared types (a list type splits the cell on the inventory's list separator).
func (e *evaluator) baseVariables(row *inventoryRow) (map[string]cty.Value, map[string]cty.Value) {
	defaults := map[string]cty.Value{}
	for _, name := range e.cfg.varOrder {
		if v := e.cfg.variables[name]; v.def != cty.NilVal {
			defaults[name] = v.def
		}
	}
	inv := map[string]cty.Value{}
	if row == nil {
		return defaults, inv
	}
	for _, col := range e.cfg.inventory.columns {
		cell := row.values[col]
		val := cty.StringVal(cell)
		if decl, ok := e.cfg.variables[col]; ok {
			if decl.typ.IsListType() || decl.typ.IsSetType() {
				var elems []cty.Value
				for _, part := range strings.Split(cell, e.cfg.inventory.separator) {
					if part = strings.TrimSpace(part); part != "" {
						elems = append(elems, cty.StringVal(part))
					}
				}
				val = cty.ListValEmpty(cty.String)
				if len(elems) > 0 {
					val = cty.ListVal(elems)
				}
			}
			conv, err := convert.Convert(val, decl.typ)
			if err != nil {
				e.diags = append(e.diags, errorAt(row.cells[col], "Invalid inventory value",
					fmt.Sprintf("Column %q of node %q does not fit var.%s (%s): %s.", col, e.node, col, typeexpr.TypeString(decl.typ), err)))
				inv[col] = cty.DynamicVal // reported: not missing too
				continue
			}
			val = conv
		}
		inv[col] = val
	}
	return defaults, inv
}

func mergeVars(layers ...map[string]cty.Value) cty.Value {
	out := map[string]cty.Value{}
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return cty.ObjectVal(out)
}

// matchNodes returns the node blocks that select this node: the pattern matches its name and
// the where condition, evaluated with fact, node and the default and inventory variables,
// holds. A block whose where is unknown or fails is taken in as uncertain (see inclusion).
func (e *evaluator) matchNodes(vars cty.Value, row *inventoryRow) ([]*nodeBlock, map[*nodeBlock]bool) {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"fact": e.facts, "var": vars, "node": e.nodeValue()},
		Functions: e.fns,
	}
	e.ctx = ctx // for template()
	var matched []*nodeBlock
	uncertain := map[*nodeBlock]bool{}
	for _, n := range e.cfg.nodes {
		if ok, _ := path.Match(n.pattern, e.node); !ok {
			continue
		}
		switch e.condition(n.where, ctx, "where") {
		case excluded:
			continue
		case unsure:
			uncertain[n] = true
		}
		matched = append(matched, n)
	}
	if len(matched) == 0 && !e.diags.HasErrors() {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No node block matches",
			Detail: fmt.Sprintf("No node block selects %q (by name pattern and where condition). Add one, or node \"*\" for every machine.", e.node)}
		if row != nil {
			d.Subject = row.rng.Ptr()
		}
		e.diags = append(e.diags, d)
	}
	return matched, uncertain
}

// nodeVariables merges, lowest precedence first: declared defaults, the vars of every
// matching node block (in file order), the node's inventory row, --var (SetVars). Sensitive variables are
// marked; a declared variable without any value is an error.
func (e *evaluator) nodeVariables(matched []*nodeBlock, defaults, inv map[string]cty.Value, early cty.Value) cty.Value {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"fact": e.facts, "var": early, "node": e.nodeValue()},
		Functions: e.fns,
	}
	e.ctx = ctx // for template()
	merged := map[string]cty.Value{}
	for k, v := range defaults {
		merged[k] = v
	}
	for _, n := range matched {
		if n.vars == nil {
			continue
		}
		v, d := n.vars.Value(ctx)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			continue
		}
		if !v.IsKnown() {
			e.unknown = append(e.unknown, n.vars.Range())
			continue
		}
		v, marks := v.Unmark() // vars = sensitive({…}): every value is sensitive
		if v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
			e.diags = append(e.diags, errorAt(n.vars.Range(), "Invalid vars", "vars must be an object, such as { proxy_port = 3128 }."))
			continue
		}
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			name := k.AsString()
			val = val.WithMarks(marks)
			if decl, ok := e.cfg.variables[name]; ok {
				conv, err := convert.Convert(val, decl.typ)
				if err != nil {
					e.diags = append(e.diags, errorAt(itemRange(n.vars, name), "Invalid variable value",
						fmt.Sprintf("vars.%s does not fit var.%s (%s): %s.", name, name, typeexpr.TypeString(decl.typ), err)))
					merged[name] = cty.DynamicVal // reported: not missing too
					continue
				}
				val = conv
			}
			merged[name] = val
		}
	}
	for k, v := range inv {
		merged[k] = v
	}
	for k, v := range e.cfg.overrides {
		merged[k] = v
	}
	for _, name := range e.cfg.varOrder {
		decl := e.cfg.variables[name]
		v, ok := merged[name]
		if !ok {
			e.diags = append(e.diags, errorAt(decl.declRange, "Missing variable value",
				fmt.Sprintf("var.%s has no default and node %q gets no value for it from the inventory or a node block.", name, e.node)))
			merged[name] = cty.DynamicVal
			continue
		}
		if decl.sensitive {
			merged[name] = v.Mark(markSensitive)
		}
	}
	return cty.ObjectVal(merged)
}

// evalLocals evaluates the locals in dependency order.
func (e *evaluator) evalLocals(vars cty.Value) cty.Value {
	byName := map[string]*hcl.Attribute{}
	for _, l := range e.cfg.locals {
		byName[l.Name] = l
	}
	values := map[string]cty.Value{}
	state := map[string]int{} // 1 evaluating, 2 done
	var eval func(a *hcl.Attribute)
	eval = func(a *hcl.Attribute) {
		state[a.Name] = 1
		for _, tr := range a.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			step, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				continue
			}
			dep, exists := byName[step.Name]
			switch {
			case !exists:
				// Reported by HCL when the expression is evaluated.
			case state[step.Name] == 1:
				e.diags = append(e.diags, errorAt(tr.SourceRange(), "Cycle in locals",
					fmt.Sprintf("local.%s refers back to local.%s.", step.Name, a.Name)))
				values[a.Name] = cty.DynamicVal
				state[a.Name] = 2
				return
			case state[step.Name] == 0:
				eval(dep)
			}
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"fact": e.facts, "var": vars, "node": e.nodeValue(), "local": cty.ObjectVal(values)},
			Functions: e.fns,
		}
		e.ctx = ctx // for template()
		v, d := a.Expr.Value(ctx)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			v = cty.DynamicVal
		}
		values[a.Name] = v
		state[a.Name] = 2
	}
	for _, l := range e.cfg.locals {
		if state[l.Name] == 0 {
			eval(l)
		}
	}
	return cty.ObjectVal(values)
}

// The outcomes of a condition.
const (
	excluded = iota
	included
	unsure // unknown (check without facts) or failed: checked as if true, but uncertain
)

// condition evaluates a when or where expression (nil is true). Unknown counts as true, so
// checks cover what it guards; so does an error, so that the rest is checked too.
func (e *evaluator) condition(expr hcl.Expression, ctx *hcl.EvalContext, name string) int {
	if expr == nil {
		return included
	}
	v, d := expr.Value(ctx)
	e.diags = append(e.diags, d...)
	if d.HasErrors() {
		return unsure
	}
	v, _ = v.Unmark()
	if !v.IsKnown() {
		e.unknown = append(e.unknown, expr.Range())
		return unsure
	}
	if v.IsNull() || v.Type() != cty.Bool {
		e.diags = append(e.diags, errorAt(expr.Range(), "Invalid "+name+" condition",
			name+" must be true or false, such as fact.os.id == \"debian\"."))
		return unsure
	}
	if v.True() {
		return included
	}
	return excluded
}

// includeRole adds a role (and the roles it includes) for the node, with its parameters
// evaluated in the caller's scope.
func (e *evaluator) includeRole(u *roleUse, caller *hcl.EvalContext, depth int, uncertain bool) {
	r, ok := e.cfg.roles[u.name]
	if !ok || depth > 64 {
		return
	}
	switch e.condition(u.when, caller, "when") {
	case excluded:
		return
	case unsure:
		uncertain = true
	}
	if prev, dup := e.included[u.name]; dup {
		if !uncertain && !prev.uncertain {
			e.diags = append(e.diags, errorAt(u.nameRange, "Role included twice",
				fmt.Sprintf("Role %q is already included for node %q at %s; include each role once.", u.name, e.node, prev.where)))
		}
		return
	}
	e.included[u.name] = inclusion{where: Position(u.declRange), uncertain: uncertain}
	params := map[string]cty.Value{}
	for _, name := range sortedKeys(r.params) {
		p := r.params[name]
		arg, given := u.args[name]
		if !given {
			params[name] = p.def
			if p.def == cty.NilVal {
				params[name] = cty.DynamicVal // reported by Load
			}
			continue
		}
		v, d := arg.Expr.Value(caller)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			params[name] = cty.DynamicVal
			continue
		}
		conv, err := convert.Convert(v, p.typ)
		if err != nil {
			e.diags = append(e.diags, errorAt(arg.Expr.Range(), "Invalid role parameter",
				fmt.Sprintf("param %q of role %q must be %s: %s.", name, r.name, typeexpr.TypeString(p.typ), err)))
			conv = cty.DynamicVal
		}
		params[name] = conv
	}
	ctx := e.ctx.NewChild()
	ctx.Variables = map[string]cty.Value{"param": cty.ObjectVal(params)}
	for _, sub := range r.roles {
		e.includeRole(sub, ctx, depth+1, uncertain)
	}
	e.addResources(r.resources, ctx, fmt.Sprintf("role %q", r.name), uncertain)
}

// addResources evaluates resource blocks, expanding for_each.
func (e *evaluator) addResources(blocks []*resourceBlock, ctx *hcl.EvalContext, owner string, uncertain bool) {
	for _, b := range blocks {
		unc := uncertain
		switch e.condition(b.when, ctx, "when") {
		case excluded:
			continue
		case unsure:
			unc = true
		}
		base := b.typ.Name + "." + b.name
		if prev, dup := e.blockOf[base]; dup {
			if !unc && !prev.uncertain {
				e.diags = append(e.diags, errorAt(b.declRange, "Duplicate resource",
					fmt.Sprintf("%s is also declared in %s; a node can have each resource once.", base, prev.where)))
			}
			continue
		}
		e.blockOf[base] = inclusion{where: fmt.Sprintf("%s at %s", owner, Position(b.declRange)), uncertain: unc}
		if b.forEach == nil {
			e.addInstance(b, ctx, nil, cty.NilVal, owner, false, unc)
			continue
		}
		e.expandForEach(b, ctx, owner, unc)
	}
}

// expandForEach adds one instance per element of for_each. When the elements cannot be known
// (check without facts) or for_each is wrong, it adds one placeholder instance instead, which
// stands for all of them: its attributes are still checked, and references resolve to it.
func (e *evaluator) expandForEach(b *resourceBlock, ctx *hcl.EvalContext, owner string, uncertain bool) {
	placeholder := func() {
		each := cty.ObjectVal(map[string]cty.Value{"key": cty.UnknownVal(cty.String), "value": cty.DynamicVal})
		e.addInstance(b, ctx, nil, each, owner, true, uncertain)
	}
	v, d := b.forEach.Value(ctx)
	e.diags = append(e.diags, d...)
	if d.HasErrors() {
		placeholder()
		return
	}
	v, marks := v.Unmark()
	if !v.IsKnown() {
		e.unknown = append(e.unknown, b.forEach.Range())
		placeholder()
		return
	}
	bad := func(detail string) {
		e.diags = append(e.diags, errorAt(b.forEach.Range(), "Invalid for_each", detail))
		placeholder()
	}
	if v.IsNull() {
		bad("for_each is null; give a map, or a list or set of strings.")
		return
	}
	const secretKeys = "for_each keys become part of resource addresses, which plans and reports show, so they cannot be secrets. Mark the values instead, as in { api = sensitive(var.token) }."
	if _, secret := marks[markSensitive]; secret {
		bad("This for_each value is sensitive. " + secretKeys)
		return
	}
	ty := v.Type()
	type elem struct {
		key string
		val cty.Value
	}
	var elems []elem
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			elems = append(elems, elem{key: k.AsString(), val: val})
		}
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		seen := map[string]bool{}
		for it := v.ElementIterator(); it.Next(); {
			_, val := it.Element()
			val, vmarks := val.Unmark()
			if !val.IsKnown() { // check without facts: the keys are not known
				e.unknown = append(e.unknown, b.forEach.Range())
				placeholder()
				return
			}
			if _, secret := vmarks[markSensitive]; secret {
				bad("An element of this list is sensitive. " + secretKeys)
				return
			}
			s, err := convert.Convert(val, cty.String)
			if err != nil || s.IsNull() || !s.IsKnown() {
				bad("A list or set given to for_each must hold strings (they become the instance keys); use a map for other values.")
				return
			}
			k := s.AsString()
			if seen[k] {
				bad(fmt.Sprintf("The key %q appears twice; instance keys must be unique.", k))
				return
			}
			seen[k] = true
			elems = append(elems, elem{key: k, val: s})
		}
	default:
		bad(fmt.Sprintf("for_each takes a map, or a list or set of strings, not a %s.", ty.FriendlyName()))
		return
	}
	for _, el := range elems {
		k := el.key
		each := cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(k), "value": el.val})
		e.addInstance(b, ctx, &k, each, owner, false, uncertain)
	}
}

// addInstance evaluates the attributes of one resource instance.
func (e *evaluator) addInstance(b *resourceBlock, ctx *hcl.EvalContext, key *string, each cty.Value, owner string, placeholder, uncertain bool) {
	addr := catalog.Address{Type: b.typ.Name, Name: b.name, Key: key}
	inst := &instance{block: b, key: key, address: addr.String(), placeholder: placeholder,
		attrs: map[string]json.RawMessage{}, known: map[string]any{}, owner: owner, uncertain: uncertain}
	if each != cty.NilVal {
		ctx = ctx.NewChild()
		ctx.Variables = map[string]cty.Value{"each": each}
	}
	values := schema.Values{}
	for _, a := range sortedAttrs(b.attrs) {
		spec := b.typ.Attribute(a.Name)
		v, d := a.Expr.Value(ctx)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			values[a.Name] = schema.Unknown
			continue
		}
		v, pvm := v.UnmarkDeepWithPaths()
		if v.IsNull() {
			continue
		}
		conv, err := convert.Convert(v, ctyType(spec.Type))
		if err != nil {
			e.diags = append(e.diags, errorAt(a.Expr.Range(), "Invalid value for "+a.Name,
				fmt.Sprintf("%s of a %s resource must be %s: %s.", a.Name, b.typ.Name, spec.Type, err)))
			values[a.Name] = schema.Unknown
			continue
		}
		if !conv.IsWhollyKnown() {
			if !placeholder { // each.key of a placeholder is unknown: that is reported once, at for_each
				e.unknown = append(e.unknown, a.Expr.Range())
			}
			values[a.Name] = schema.Unknown
			continue
		}
		goVal := goValue(conv, spec.Type)
		if ae := spec.Validate(goVal); ae != nil {
			detail := ae.Detail
			if len(pvm) > 0 || spec.Sensitive { // the message would quote the value
				detail = fmt.Sprintf("The value of %s is not valid, and is not shown because it is sensitive.", a.Name)
			}
			e.diags = append(e.diags, errorAt(a.Expr.Range(), ae.Summary, detail))
			values[a.Name] = schema.Unknown
			continue
		}
		values[a.Name] = goVal
		inst.known[a.Name] = goVal
		if len(pvm) > 0 || spec.Sensitive {
			inst.sensitive = append(inst.sensitive, a.Name)
		}
		if spec.Format == schema.FormatSource {
			raw, err := e.sourceRef(goVal.(string))
			if err != nil {
				e.diags = append(e.diags, errorAt(a.Expr.Range(), "Invalid source", err.Error()))
				continue
			}
			inst.attrs[a.Name] = raw
			continue
		}
		raw, err := ctyjson.Marshal(conv, conv.Type())
		if err != nil {
			e.diags = append(e.diags, errorAt(a.Expr.Range(), "Invalid value for "+a.Name, err.Error()))
			continue
		}
		inst.attrs[a.Name] = raw
	}
	for _, spec := range b.typ.Attributes {
		if _, set := values[spec.Name]; set {
			continue
		}
		if spec.NameVar { // package "squid" {} manages the package named squid
			values[spec.Name] = b.name
			inst.known[spec.Name] = b.name
			raw, _ := json.Marshal(b.name)
			inst.attrs[spec.Name] = raw
			continue
		}
		if spec.Required {
			e.diags = append(e.diags, errorAt(b.declRange, "Missing required attribute",
				fmt.Sprintf("A %s resource needs %s: %s", b.typ.Name, spec.Name, spec.Doc)))
			continue
		}
		if spec.Default != nil {
			values[spec.Name] = spec.Default
			inst.known[spec.Name] = spec.Default
			raw, _ := json.Marshal(spec.Default)
			inst.attrs[spec.Name] = raw
		}
	}
	if b.typ.Check != nil {
		for _, ae := range b.typ.Check(values) {
			rng := b.declRange
			if a, ok := b.attrs[ae.Attr]; ok {
				rng = a.Expr.Range()
			}
			e.diags = append(e.diags, errorAt(rng, ae.Summary, ae.Detail))
		}
	}
	e.instances = append(e.instances, inst)
	e.byBase[addr.Base()] = append(e.byBase[addr.Base()], inst)
}

// sourceRef resolves a path under files/ to its catalog form: path, size and hash.
func (e *evaluator) sourceRef(p string) (json.RawMessage, error) {
	size, sum, err := e.cfg.sourceInfo(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s/%s: %v", FilesDir, p, err)
	}
	return json.Marshal(map[string]any{"path": FilesDir + "/" + p, "size": size, "sha256": sum})
}

func ctyType(t schema.ValueType) cty.Type {
	switch t {
	case schema.Number:
		return cty.Number
	case schema.Bool:
		return cty.Bool
	case schema.ListString:
		return cty.List(cty.String)
	case schema.MapString:
		return cty.Map(cty.String)
	}
	return cty.String
}

// goValue converts a known value of a schema type to the Go value schema checks expect.
func goValue(v cty.Value, t schema.ValueType) any {
	switch t {
	case schema.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case schema.Bool:
		return v.True()
	case schema.ListString:
		out := []string{}
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			out = append(out, el.AsString())
		}
		return out
	case schema.MapString:
		out := map[string]string{}
		for it := v.ElementIterator(); it.Next(); {
			k, el := it.Element()
			out[k.AsString()] = el.AsString()
		}
		return out
	}
	return v.AsString()
}

// origin is where a block is, relative to the repository, for catalogs.
func (e *evaluator) origin(r hcl.Range) string {
	name := r.Filename
	if rel, err := filepath.Rel(e.cfg.Dir, name); err == nil {
		name = filepath.ToSlash(rel)
	}
	return fmt.Sprintf("%s:%d:%d", name, r.Start.Line, r.Start.Column)
}

// build turns the instances into a catalog: references resolved into edges, automatic edges
// to the resources managing parent directories, duplicate paths and cycles rejected.
func (e *evaluator) build() *catalog.Catalog {
	cat := catalog.New(e.node)
	for _, inst := range e.instances {
		e.resolveReferences(inst)
	}
	e.addPathEdges()
	e.addReferEdges()
	e.checkIdentities()
	byAddr := map[string]*instance{}
	for _, inst := range e.instances {
		byAddr[inst.address] = inst
		res := &catalog.Resource{Address: inst.address, Type: inst.block.typ.Name, Name: inst.block.name,
			Key: inst.key, Attributes: inst.attrs, Sensitive: inst.sensitive,
			Require: inst.require, Notify: inst.notify, Origin: e.origin(inst.block.declRange)}
		cat.Resources = append(cat.Resources, res)
	}
	cat.Sort()
	g, err := catalog.NewGraph(cat) // even after other errors: a cycle is one more to report
	if err == nil {
		_, err = g.Order()
	}
	if cyc, ok := err.(*catalog.CycleError); ok {
		for _, c := range cyc.Cycles {
			first := byAddr[c[0]]
			e.diags = append(e.diags, errorAt(first.block.declRange, "Dependency cycle",
				fmt.Sprintf("These resources depend on each other in a loop, so none can go first: %s (each must come after the next; edges come from require, before, notify, subscribe and from managed parent directories).",
					strings.Join(append(slices.Clone(c), c[0]), " -> "))))
		}
		return nil
	} else if err != nil {
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid catalog", Detail: err.Error()})
		return nil
	}
	if e.known && !e.diags.HasErrors() {
		// With known facts every value is known, unless something went wrong that was
		// reported (then these are consequences, not news) or a function returned an
		// unknown value for a null argument. A catalog must not silently lack a value.
		for _, r := range e.unknown {
			e.diags = append(e.diags, errorAt(r, "Value not known",
				"This value cannot be known even with the node's facts, so the catalog would be incomplete; a function given null can cause this."))
		}
	}
	if e.diags.HasErrors() {
		return nil
	}
	return cat
}

// addReferEdges makes a resource require the resources its attributes name (a file owned by
// "teacher" requires user.teacher, a user in group "staff" requires group.staff), when the
// node has them: an account must exist before anything can belong to it.
func (e *evaluator) addReferEdges() {
	byName := map[string]*instance{} // TYPE + "\x00" + identity
	for _, inst := range e.instances {
		t := inst.block.typ
		if v, ok := inst.known[t.UniqueAttr].(string); ok && t.UniqueAttr != "" && inst.known["ensure"] != "absent" {
			byName[t.Name+"\x00"+v] = inst
		}
	}
	for _, inst := range e.instances {
		for _, spec := range inst.block.typ.Attributes {
			if spec.Refers == "" {
				continue
			}
			var names []string
			switch v := inst.known[spec.Name].(type) {
			case string:
				names = []string{v}
			case []string:
				names = v
			}
			for _, n := range names {
				if target, ok := byName[spec.Refers+"\x00"+n]; ok && target != inst {
					inst.require = append(inst.require, target.address)
				}
			}
		}
	}
}

// checkIdentities rejects two resources managing the same thing (two package blocks for one
// package, two users of one name) and a second resource of a singleton type (hostname).
func (e *evaluator) checkIdentities() {
	seen := map[string]*instance{}
	for _, inst := range e.instances {
		t := inst.block.typ
		key := ""
		switch {
		case inst.uncertain:
			continue
		case t.Singleton:
			key = t.Name
		case t.UniqueAttr != "":
			v, ok := inst.known[t.UniqueAttr].(string)
			if !ok {
				continue
			}
			key = t.Name + "\x00" + v
		default:
			continue
		}
		prev, dup := seen[key]
		if !dup {
			seen[key] = inst
			continue
		}
		detail := fmt.Sprintf("%s and %s (%s) both manage %s %q; one resource per %s.", inst.address, prev.address,
			Position(prev.block.declRange), t.Name, inst.known[t.UniqueAttr], t.Name)
		if t.Singleton {
			detail = fmt.Sprintf("%s and %s (%s): a node has one %s.", inst.address, prev.address, Position(prev.block.declRange), t.Name)
		}
		e.diags = append(e.diags, errorAt(inst.block.declRange, "Managed twice", detail))
	}
}

// checkRemovals rejects a resource that removes a path (ensure = "absent") which another
// resource creates, or under which another creates something: the two would undo each other
// on every run.
func (e *evaluator) checkRemovals(owners map[string]*instance, pathOf func(*instance, string) (string, bool)) {
	for _, gone := range e.instances {
		t := gone.block.typ
		if t.PathAttr == "" || !t.OwnsPath || gone.known["ensure"] != "absent" || gone.uncertain {
			continue
		}
		p, ok := pathOf(gone, t.PathAttr)
		if !ok {
			continue
		}
		for _, inst := range e.instances {
			it := inst.block.typ
			q, ok := pathOf(inst, it.PathAttr)
			if !ok || inst == gone || inst.uncertain || inst.known["ensure"] == "absent" {
				continue
			}
			if q == p || strings.HasPrefix(q, p+"/") {
				what := "creates " + q
				if q != p {
					what = "manages " + q + " inside it"
				}
				e.diags = append(e.diags, errorAt(gone.block.declRange, "Removing a managed path",
					fmt.Sprintf("%s removes %s, but %s (%s) %s; the two would undo each other on every run.",
						gone.address, p, inst.address, Position(inst.block.declRange), what)))
				break
			}
		}
	}
}

// resolveReferences turns require/before/notify/subscribe into edges.
func (e *evaluator) resolveReferences(inst *instance) {
	for _, ref := range inst.block.refs {
		targets := e.byBase[ref.base]
		if ref.key != nil {
			var keyed []*instance
			for _, t := range targets {
				if t.placeholder || (t.key != nil && *t.key == *ref.key) {
					keyed = append(keyed, t)
				}
			}
			targets = keyed
		}
		if len(targets) == 0 {
			detail := fmt.Sprintf("%s is not declared for node %q", ref.srcText, e.node)
			if len(e.byBase[ref.base]) > 0 {
				detail = fmt.Sprintf("%s has no instance with key %q for node %q", ref.base, *ref.key, e.node)
			}
			e.diags = append(e.diags, errorAt(ref.rng, "Reference to undeclared resource",
				detail+"; is it in a role this node includes, or behind a when that is false?"))
			continue
		}
		for _, t := range targets {
			if t == inst {
				e.diags = append(e.diags, errorAt(ref.rng, "Self reference", fmt.Sprintf("%s refers to itself.", inst.address)))
				continue
			}
			switch ref.kind {
			case metaRequire:
				inst.require = append(inst.require, t.address)
			case metaBefore:
				t.require = append(t.require, inst.address)
			case metaNotify:
				if e.refreshable(t, ref) {
					inst.notify = append(inst.notify, t.address)
				}
			case metaSubscribe:
				if e.refreshable(inst, ref) {
					t.notify = append(t.notify, inst.address)
				}
			}
		}
	}
}

func (e *evaluator) refreshable(target *instance, ref *reference) bool {
	if target.block.typ.Refreshable {
		return true
	}
	e.diags = append(e.diags, errorAt(ref.rng, "Cannot notify "+target.block.typ.Name,
		fmt.Sprintf("%s resources do not react to notifications (only exec and services do); use require to order them.", target.block.typ.Name)))
	return false
}

// addPathEdges rejects two owners of one path and makes every resource with a path require
// the resource that manages its nearest managed ancestor (for an editor such as line: the
// owner of the path itself, if any).
func (e *evaluator) addPathEdges() {
	owners := map[string]*instance{}
	pathOf := func(inst *instance, attr string) (string, bool) {
		p, ok := inst.known[attr].(string)
		return p, ok && p != ""
	}
	for _, inst := range e.instances {
		t := inst.block.typ
		if t.PathAttr == "" || !t.OwnsPath {
			continue
		}
		p, ok := pathOf(inst, t.PathAttr)
		if !ok || (inst.known["ensure"] == "absent") {
			continue
		}
		if prev, dup := owners[p]; dup {
			if inst.uncertain || prev.uncertain {
				continue // see inclusion
			}
			e.diags = append(e.diags, errorAt(inst.block.declRange, "Path managed twice",
				fmt.Sprintf("%s and %s (%s) both manage %s; a path can have one owner.", inst.address, prev.address, Position(prev.block.declRange), p)))
			continue
		}
		owners[p] = inst
	}
	e.checkRemovals(owners, pathOf)
	ancestor := func(p string) *instance {
		for d := path.Dir(p); ; d = path.Dir(d) {
			if o, ok := owners[d]; ok {
				return o
			}
			if d == "/" {
				return nil
			}
		}
	}
	for _, inst := range e.instances {
		t := inst.block.typ
		if p, ok := pathOf(inst, t.PathAttr); ok && t.PathAttr != "" {
			dep := ancestor(p)
			if o, ok := owners[p]; ok && !t.OwnsPath {
				dep = o
			}
			if dep != nil && dep != inst {
				inst.require = append(inst.require, dep.address)
			}
		}
		for _, spec := range t.Attributes {
			if !spec.AutoRequire {
				continue
			}
			if p, ok := pathOf(inst, spec.Name); ok {
				if o, ok := owners[p]; ok && o != inst {
					inst.require = append(inst.require, o.address)
				}
			}
		}
	}
	// Resources that edit one file (several lines in /etc/hosts) take turns, in address
	// order: each reads what the previous one wrote, and the result does not depend on timing.
	editors := map[string][]*instance{}
	for _, inst := range e.instances {
		t := inst.block.typ
		if p, ok := pathOf(inst, t.PathAttr); ok && t.PathAttr != "" && !t.OwnsPath {
			editors[p] = append(editors[p], inst)
		}
	}
	for _, list := range editors {
		slices.SortFunc(list, func(a, b *instance) int { return strings.Compare(a.address, b.address) })
		for k := 1; k < len(list); k++ {
			list[k].require = append(list[k].require, list[k-1].address)
		}
	}
}
