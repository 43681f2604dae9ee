package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/schema"
)

// Type is one resource type: its schema and how to make a Resource from a catalog entry.
type Type struct {
	Schema *schema.Type
	new    func(*catalog.Resource) (Resource, error)
}

// definition is what each type's file declares.
type definition struct {
	name     string
	doc      string
	pathAttr string
	ownsPath bool
	proto    any // a pointer to the type's struct, whose tags are the schema
	check    func(schema.Values) []*schema.AttrError
}

var registry = sync.OnceValues(func() ([]*Type, error) {
	defs := []definition{fileDef, directoryDef, symlinkDef, execDef, lineDef}
	types := make([]*Type, 0, len(defs))
	for _, d := range defs {
		t, err := d.build()
		if err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b *Type) int { return strings.Compare(a.Schema.Name, b.Schema.Name) })
	return types, nil
})

// Types returns every resource type, sorted by name.
func Types() []*Type {
	types, err := registry()
	if err != nil {
		panic(err) // a malformed struct tag is a programming error, caught by every test
	}
	return types
}

// Lookup returns the named type, or nil.
func Lookup(name string) *Type {
	for _, t := range Types() {
		if t.Schema.Name == name {
			return t
		}
	}
	return nil
}

// Schemas returns the schema of every type by name, for the language.
func Schemas() map[string]*schema.Type {
	m := make(map[string]*schema.Type)
	for _, t := range Types() {
		m[t.Schema.Name] = t.Schema
	}
	return m
}

// New decodes a catalog resource into its type's Resource.
func New(r *catalog.Resource) (Resource, error) {
	t := Lookup(r.Type)
	if t == nil {
		return nil, fmt.Errorf("unknown resource type %q", r.Type)
	}
	return t.new(r)
}

// build derives the schema from the struct tags and the decoder from the struct.
//
// Tags: attr:"name" names the attribute; doc:"…" documents it; required:"true";
// default:"…" (parsed per type; lists are comma-separated); enum:"a,b,c";
// format:"path|mode|duration|regexp|account|source"; autorequire:"true" (require the
// resource that manages the path this attribute names).
func (d definition) build() (*Type, error) {
	st := reflect.TypeOf(d.proto).Elem()
	_, refreshable := d.proto.(Refresher)
	s := &schema.Type{Name: d.name, Doc: d.doc, PathAttr: d.pathAttr, OwnsPath: d.ownsPath,
		Refreshable: refreshable, Check: d.check}
	for i := range st.NumField() {
		f := st.Field(i)
		name, ok := f.Tag.Lookup("attr")
		if !ok {
			continue
		}
		vt, err := valueType(f.Type)
		if err != nil {
			return nil, fmt.Errorf("resource type %s, field %s: %w", d.name, f.Name, err)
		}
		a := &schema.Attribute{Name: name, Type: vt, Format: schema.Format(f.Tag.Get("format")),
			Required: f.Tag.Get("required") == "true", Doc: f.Tag.Get("doc"),
			AutoRequire: f.Tag.Get("autorequire") == "true"}
		if a.Format == schema.FormatSource {
			a.Type = schema.String // written as a path; the language resolves it to a SourceRef
		}
		if e := f.Tag.Get("enum"); e != "" {
			a.Enum = strings.Split(e, ",")
		}
		if def, ok := f.Tag.Lookup("default"); ok {
			if a.Default, err = parseDefault(vt, def); err != nil {
				return nil, fmt.Errorf("resource type %s, attribute %s: %w", d.name, name, err)
			}
		}
		if a.Doc == "" {
			return nil, fmt.Errorf("resource type %s, attribute %s: no doc tag", d.name, name)
		}
		s.Attributes = append(s.Attributes, a)
	}
	proto := d.proto
	return &Type{Schema: s, new: func(r *catalog.Resource) (Resource, error) {
		v := reflect.New(reflect.TypeOf(proto).Elem())
		if err := decode(s, r, v.Elem()); err != nil {
			return nil, err
		}
		res := v.Interface().(Resource)
		if b, ok := res.(interface{ bind(*catalog.Resource) error }); ok {
			if err := b.bind(r); err != nil {
				return nil, err
			}
		}
		return res, nil
	}}, nil
}

func valueType(t reflect.Type) (schema.ValueType, error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.String:
		return schema.String, nil
	case t.Kind() == reflect.Bool:
		return schema.Bool, nil
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Float64:
		return schema.Number, nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return schema.ListString, nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return schema.MapString, nil
	case t == reflect.TypeFor[SourceRef]():
		return schema.String, nil
	}
	return "", fmt.Errorf("unsupported Go type %s for an attribute", t)
}

func parseDefault(vt schema.ValueType, s string) (any, error) {
	switch vt {
	case schema.String:
		return s, nil
	case schema.Bool:
		return strconv.ParseBool(s)
	case schema.Number:
		return strconv.ParseFloat(s, 64)
	case schema.ListString:
		if s == "" {
			return []string{}, nil
		}
		return strings.Split(s, ","), nil
	}
	return nil, fmt.Errorf("no default possible for %s", vt)
}

// decode fills the struct v from the catalog resource: defaults first, then the catalog's
// values. Unknown attributes and missing required ones are errors, so a catalog from a newer
// Satchel is refused rather than half applied.
func decode(s *schema.Type, r *catalog.Resource, v reflect.Value) error {
	fields := map[string]reflect.Value{}
	st := v.Type()
	for i := range st.NumField() {
		if name, ok := st.Field(i).Tag.Lookup("attr"); ok {
			fields[name] = v.Field(i)
		}
	}
	for _, a := range s.Attributes {
		if a.Default == nil {
			continue
		}
		raw, _ := json.Marshal(a.Default)
		if err := json.Unmarshal(raw, fields[a.Name].Addr().Interface()); err != nil {
			return fmt.Errorf("default of %s: %w", a.Name, err)
		}
	}
	for name, raw := range r.Attributes {
		f, ok := fields[name]
		if !ok {
			return fmt.Errorf("type %s has no attribute %q", r.Type, name)
		}
		if bytes.Equal(raw, []byte("null")) {
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fmt.Errorf("attribute %s: %w", name, err)
		}
	}
	values := schema.Values{}
	for _, a := range s.Attributes {
		raw, set := r.Attributes[a.Name]
		set = set && !bytes.Equal(raw, []byte("null"))
		if a.Required && !set {
			return fmt.Errorf("required attribute %s is missing", a.Name)
		}
		if !set && a.Default == nil {
			continue
		}
		f := fields[a.Name]
		if f.Kind() == reflect.Pointer {
			f = f.Elem()
		}
		if ref, isRef := f.Interface().(SourceRef); isRef {
			values[a.Name] = ref.Path
			if err := a.Validate(ref.Path); err != nil {
				return err
			}
			if err := ref.check(); err != nil {
				return &schema.AttrError{Attr: a.Name, Summary: "Invalid source", Detail: err.Error()}
			}
			continue
		}
		values[a.Name] = f.Interface()
		if err := a.Validate(f.Interface()); err != nil {
			return err
		}
	}
	if s.Check != nil {
		if errs := s.Check(values); len(errs) > 0 {
			return errs[0]
		}
	}
	return nil
}
