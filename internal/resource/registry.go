package resource

import (
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
	// uniqueAttr and singleton: see schema.Type.
	uniqueAttr string
	singleton  bool
}

var registry = sync.OnceValues(func() ([]*Type, error) {
	defs := []definition{
		directoryDef,
		execDef,
		fileDef,
		groupDef,
		hostnameDef,
		lineDef,
		packageDef,
		serviceDef,
		symlinkDef,
		timerDef,
		treeDef,
		userDef,
	}
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
// resource that manages the path this attribute names); namevar:"true" (defaults to the
// resource's name); sensitive:"true" (its values are always secret); refers:"TYPE" (its
// values name resources of that type, which the resource then requires).
func (d definition) build() (*Type, error) {
	st := reflect.TypeOf(d.proto).Elem()
	_, refreshable := d.proto.(Refresher)
	s := &schema.Type{Name: d.name, Doc: d.doc, PathAttr: d.pathAttr, OwnsPath: d.ownsPath,
		Refreshable: refreshable, Check: d.check, UniqueAttr: d.uniqueAttr, Singleton: d.singleton}
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
			AutoRequire: f.Tag.Get("autorequire") == "true", NameVar: f.Tag.Get("namevar") == "true",
			Sensitive: f.Tag.Get("sensitive") == "true", Refers: f.Tag.Get("refers")}
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
	dec, err := newDecoder(s, st)
	if err != nil {
		return nil, fmt.Errorf("resource type %s: %w", d.name, err)
	}
	return &Type{Schema: s, new: func(r *catalog.Resource) (Resource, error) {
		v, err := dec.decode(r)
		if err != nil {
			return nil, err
		}
		res := v.Addr().Interface().(Resource)
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
