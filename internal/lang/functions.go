package lang

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// sensitiveMark marks values that must never be shown.
type sensitiveMark struct{}

var markSensitive = sensitiveMark{}

// functions returns the functions available to expressions for one evaluation. All are pure:
// the same arguments give the same result, with no clock, network or shell. file() and
// template() read only from the repository's files/ and templates/ directories.
func (e *evaluator) functions() map[string]function.Function {
	fns := map[string]function.Function{
		"file":      e.fileFunc(),
		"template":  e.templateFunc(),
		"sha256":    sha256Func,
		"sensitive": sensitiveFunc,
		"secret":    e.secretFunc(),
		"try":       tryfunc.TryFunc,
		"can":       tryfunc.CanFunc,

		"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"csvdecode": stdlib.CSVDecodeFunc,
		"upper":     stdlib.UpperFunc, "lower": stdlib.LowerFunc, "title": stdlib.TitleFunc,
		"trimspace": stdlib.TrimSpaceFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc, "chomp": stdlib.ChompFunc, "indent": stdlib.IndentFunc,
		"join": stdlib.JoinFunc, "split": stdlib.SplitFunc, "replace": stdlib.ReplaceFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc, "regex_replace": stdlib.RegexReplaceFunc,
		"format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc, "substr": stdlib.SubstrFunc,
		"strlen": stdlib.StrlenFunc, "length": stdlib.LengthFunc, "concat": stdlib.ConcatFunc,
		"merge": stdlib.MergeFunc, "keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc,
		"lookup": stdlib.LookupFunc, "contains": stdlib.ContainsFunc, "element": stdlib.ElementFunc,
		"flatten": stdlib.FlattenFunc, "distinct": stdlib.DistinctFunc, "sort": stdlib.SortFunc,
		"reverse": stdlib.ReverseListFunc, "slice": stdlib.SliceFunc, "zipmap": stdlib.ZipmapFunc,
		"compact": stdlib.CompactFunc, "coalesce": stdlib.CoalesceFunc, "range": stdlib.RangeFunc,
		"chunklist": stdlib.ChunklistFunc, "setunion": stdlib.SetUnionFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setsubtract": stdlib.SetSubtractFunc,
		"min": stdlib.MinFunc, "max": stdlib.MaxFunc, "abs": stdlib.AbsoluteFunc,
		"ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc, "parseint": stdlib.ParseIntFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
	}
	return fns
}

var sha256Func = function.New(&function.Spec{
	Description: "The SHA-256 of a string, as 64 hex digits.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

var sensitiveFunc = function.New(&function.Spec{
	Description: "Marks a value as sensitive: it never appears in plans, diffs, logs or reports.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowMarked: true, AllowNull: true, AllowUnknown: true, AllowDynamicType: true}},
	Type: func(args []cty.Value) (cty.Type, error) {
		return args[0].Type(), nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return args[0].Mark(markSensitive), nil
	},
})

// fileFunc reads a text file from files/.
func (e *evaluator) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "The content of a text file under files/.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			data, name, err := e.cfg.readText(FilesDir, p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s/%s: %s", FilesDir, p, err)
			}
			if !utf8.Valid(data) {
				return cty.NilVal, function.NewArgErrorf(0, "%s is not UTF-8 text; copy binary files with source = %q instead", name, p)
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

// templateFunc renders an HCL template from templates/. The template sees fact, var, node
// and local, plus the names in its second argument (an object), which take precedence.
func (e *evaluator) templateFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Renders an HCL template under templates/ with the given variables.",
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType, AllowMarked: true, AllowUnknown: true, AllowNull: true, AllowDynamicType: true},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			vars := args[1]
			src, name, err := e.cfg.readText(TemplatesDir, p)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "cannot read %s/%s: %s", TemplatesDir, p, err)
			}
			expr, diags := e.cfg.parseTemplate(name, src)
			if diags.HasErrors() {
				e.addDiags(diags)
				return cty.NilVal, fmt.Errorf("template %s has errors (shown above)", name)
			}
			inner, marks := vars.Unmark()
			if !inner.IsKnown() {
				return cty.UnknownVal(cty.String).WithMarks(marks), nil
			}
			if !inner.IsNull() && !inner.Type().IsObjectType() && !inner.Type().IsMapType() {
				return cty.NilVal, function.NewArgErrorf(1, "the template variables must be an object, such as { school = var.school_name }")
			}
			if i := slices.Index(e.rendering, p); i >= 0 { // it would recurse until the stack overflows
				return cty.NilVal, function.NewArgErrorf(0, "template %s includes itself: %s", p,
					strings.Join(append(slices.Clone(e.rendering[i:]), p), " -> "))
			}
			e.rendering = append(e.rendering, p)
			defer func() { e.rendering = e.rendering[:len(e.rendering)-1] }()
			ctx := e.globalContext().NewChild()
			ctx.Variables = map[string]cty.Value{}
			if !inner.IsNull() {
				for it := inner.ElementIterator(); it.Next(); {
					k, v := it.Element()
					ctx.Variables[k.AsString()] = v.WithMarks(marks)
				}
			}
			out, diags := expr.Value(ctx)
			if diags.HasErrors() {
				e.addDiags(diags)
				return cty.NilVal, fmt.Errorf("template %s could not be rendered (see above)", name)
			}
			uo, omarks := out.Unmark()
			if !uo.IsKnown() {
				return cty.UnknownVal(cty.String).WithMarks(omarks), nil
			}
			if uo.Type() != cty.String {
				s, err := convert.Convert(uo, cty.String)
				if err != nil {
					return cty.NilVal, fmt.Errorf("template %s renders a %s, not text", name, uo.Type().FriendlyName())
				}
				uo = s
			}
			return uo.WithMarks(omarks), nil
		},
	})
}

// parseTemplate parses a template once per configuration.
func (c *Config) parseTemplate(name string, src []byte) (hcl.Expression, hcl.Diagnostics) {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	if c.templates == nil {
		c.templates = map[string]parsedTemplate{}
	}
	if t, ok := c.templates[name]; ok {
		return t.expr, t.diags
	}
	expr, diags := hclsyntax.ParseTemplate(src, name, hcl.InitialPos)
	c.templates[name] = parsedTemplate{expr: expr, diags: diags}
	return expr, diags
}

type parsedTemplate struct {
	expr  hcl.Expression
	diags hcl.Diagnostics
}
