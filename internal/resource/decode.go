package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/schema"
)

// decoder turns catalog attributes into a type's struct. It is built once per type: the
// field of every attribute and its default are worked out up front, so decoding a resource
// is one reflective set per attribute (a run may decode tens of thousands).
type decoder struct {
	schema   *schema.Type
	typ      reflect.Type
	fields   map[string]int  // attribute name -> struct field index
	defaults []reflect.Value // per schema attribute: the default as the field's type, or invalid
}

func newDecoder(s *schema.Type, st reflect.Type) (*decoder, error) {
	d := &decoder{schema: s, typ: st, fields: map[string]int{}}
	for i := range st.NumField() {
		if name, ok := st.Field(i).Tag.Lookup("attr"); ok {
			d.fields[name] = i
		}
	}
	for _, a := range s.Attributes {
		var def reflect.Value
		if a.Default != nil {
			raw, err := json.Marshal(a.Default)
			if err != nil {
				return nil, err
			}
			def = reflect.New(st.Field(d.fields[a.Name]).Type)
			if err := json.Unmarshal(raw, def.Interface()); err != nil {
				return nil, fmt.Errorf("default of %s: %w", a.Name, err)
			}
			def = def.Elem()
		}
		d.defaults = append(d.defaults, def)
	}
	return d, nil
}

// decode fills a new struct: defaults first, then the catalog's values. Unknown attributes
// and missing required ones are errors, so a catalog from a newer Satchel is refused rather
// than half applied; then every value is validated against its schema.
func (d *decoder) decode(r *catalog.Resource) (reflect.Value, error) {
	v := reflect.New(d.typ).Elem()
	for i, a := range d.schema.Attributes {
		if def := d.defaults[i]; def.IsValid() {
			f := v.Field(d.fields[a.Name])
			if def.Kind() == reflect.Slice {
				f.Set(reflect.AppendSlice(reflect.MakeSlice(def.Type(), 0, def.Len()), def))
			} else {
				f.Set(def)
			}
		}
	}
	for _, a := range d.schema.Attributes {
		if _, set := r.Attributes[a.Name]; a.NameVar && !set {
			v.Field(d.fields[a.Name]).SetString(r.Name)
		}
	}
	for name, raw := range r.Attributes {
		i, ok := d.fields[name]
		if !ok {
			return v, fmt.Errorf("type %s has no attribute %q", r.Type, name)
		}
		if isNull(raw) {
			continue
		}
		if err := setField(v.Field(i), raw); err != nil {
			return v, fmt.Errorf("attribute %s: %w", name, err)
		}
	}
	values := schema.Values{}
	for i, a := range d.schema.Attributes {
		raw, set := r.Attributes[a.Name]
		set = (set && !isNull(raw)) || a.NameVar
		if a.Required && !set {
			return v, fmt.Errorf("required attribute %s is missing", a.Name)
		}
		if !set && !d.defaults[i].IsValid() {
			continue
		}
		f := v.Field(d.fields[a.Name])
		if f.Kind() == reflect.Pointer {
			f = f.Elem()
		}
		if ref, isRef := f.Interface().(SourceRef); isRef {
			values[a.Name] = ref.Path
			if err := a.Validate(ref.Path); err != nil {
				return v, err
			}
			if err := ref.check(); err != nil {
				return v, &schema.AttrError{Attr: a.Name, Summary: "Invalid source", Detail: err.Error()}
			}
			continue
		}
		values[a.Name] = f.Interface()
		if err := a.Validate(f.Interface()); err != nil {
			return v, err
		}
	}
	if d.schema.Check != nil {
		if errs := d.schema.Check(values); len(errs) > 0 {
			return v, errs[0]
		}
	}
	return v, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(raw, []byte("null")) }

// setField decodes one attribute into its field. A plain JSON string (the common case: paths,
// contents, modes) is set directly; anything else goes through encoding/json.
func setField(f reflect.Value, raw json.RawMessage) error {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 &&
		bytes.IndexByte(raw[1:n-1], '"') < 0 && utf8.Valid(raw) {
		s := string(raw[1 : n-1])
		switch {
		case f.Kind() == reflect.String:
			f.SetString(s)
			return nil
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf(&s))
			return nil
		}
	}
	return json.Unmarshal(raw, f.Addr().Interface())
}
