package schema

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ValueType is the type of an attribute's value, written as in HCL type expressions.
type ValueType string

// The value types an attribute can have.
const (
	String     ValueType = "string"
	Number     ValueType = "number"
	Bool       ValueType = "bool"
	ListString ValueType = "list(string)"
	MapString  ValueType = "map(string)"
)

// Format refines a string attribute.
type Format string

// The formats a string attribute can have.
const (
	FormatNone     Format = ""
	FormatPath     Format = "path"     // an absolute, clean path
	FormatMode     Format = "mode"     // an octal permission mode such as "0644"
	FormatDuration Format = "duration" // a Go duration such as "30s" or "5m"
	FormatRegexp   Format = "regexp"   // an RE2 regular expression
	FormatAccount  Format = "account"  // a user or group name, or a number
	FormatSource   Format = "source"   // a file under the repository's files/ directory
)

// Type describes one resource type.
type Type struct {
	Name       string
	Doc        string
	Attributes []*Attribute
	// PathAttr names the attribute holding the path this resource manages, if any; the
	// language uses it to add automatic edges to managed parent directories.
	PathAttr string
	// OwnsPath is true when the resource creates or removes the path (file, directory,
	// symlink), false when it only edits what is there (line). Two resources may not own the
	// same path; an editor of a path requires its owner.
	OwnsPath bool
	// Refreshable is true when the type reacts to notifications (restart, re-run), so that
	// notifying it means something.
	Refreshable bool
	// UniqueAttr names the attribute that identifies what the resource manages (a package's
	// or a user's name): two resources of the type with the same value are an error.
	UniqueAttr string
	// Singleton is true when a node can have at most one resource of the type (hostname).
	Singleton bool
	// Check, if set, validates the combination of attributes (e.g. content and source are
	// exclusive). It sees only attributes that are set and known.
	Check func(Values) []*AttrError
}

// Attribute describes one attribute of a resource type.
type Attribute struct {
	Name     string    `json:"name"`
	Type     ValueType `json:"type"`
	Format   Format    `json:"format,omitempty"`
	Required bool      `json:"required,omitempty"`
	Default  any       `json:"default,omitempty"`
	Enum     []string  `json:"enum,omitempty"`
	Doc      string    `json:"doc"`
	// AutoRequire makes a resource require the one that manages the path in this attribute
	// (an exec's working directory).
	AutoRequire bool `json:"-"`
	// NameVar makes the attribute default to the resource's name (its block label), as a
	// package's name does: package "squid" {}.
	NameVar bool `json:"namevar,omitempty"`
	// Sensitive makes every value of the attribute a secret (a password hash), whether or not
	// the configuration marks it.
	Sensitive bool `json:"sensitive,omitempty"`
	// Refers names a resource type whose resources this attribute's values name (a file's
	// owner names a user): the resource requires the one of that type with that name, if
	// the catalog has it, as Puppet's autorequire does.
	Refers string `json:"refers,omitempty"`
}

// Values are the attributes of one resource as plain Go values: string, float64 or int64,
// bool, []string or map[string]string.
type Values map[string]any

// Unknown stands, in Values, for an attribute that is set to a value not known until the
// node's facts are (during `satchel check` without facts). Checks treat it as "set".
var Unknown any = unknownValue{}

type unknownValue struct{}

// AttrError is a problem with one attribute's value.
type AttrError struct {
	Attr    string
	Summary string
	Detail  string
}

func (e *AttrError) Error() string {
	if e.Detail == "" {
		return e.Attr + ": " + e.Summary
	}
	return e.Attr + ": " + e.Summary + ": " + e.Detail
}

// Attribute returns the named attribute, or nil.
func (t *Type) Attribute(name string) *Attribute {
	for _, a := range t.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttributeNames returns the names of all attributes, in schema order.
func (t *Type) AttributeNames() []string {
	names := make([]string, len(t.Attributes))
	for i, a := range t.Attributes {
		names[i] = a.Name
	}
	return names
}

// Validate checks one known value of the attribute against its enum and format. Type
// conversion is the caller's job; v is a string for every attribute that has a format.
func (a *Attribute) Validate(v any) *AttrError {
	s, isString := v.(string)
	if len(a.Enum) > 0 && isString && !slices.Contains(a.Enum, s) {
		return &AttrError{Attr: a.Name, Summary: "Invalid value",
			Detail: fmt.Sprintf("%q is not one of %s.", s, quoteList(a.Enum))}
	}
	if !isString || a.Format == FormatNone {
		return nil
	}
	if err := a.Format.check(s); err != nil {
		return &AttrError{Attr: a.Name, Summary: "Invalid " + string(a.Format), Detail: err.Error()}
	}
	return nil
}

func (f Format) check(s string) error {
	switch f {
	case FormatPath:
		return CheckPath(s)
	case FormatMode:
		_, err := ParseMode(s)
		return err
	case FormatDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"30s\" or \"5m\"", s)
		}
		if d <= 0 {
			return fmt.Errorf("%q: a duration must be positive", s)
		}
	case FormatRegexp:
		if _, err := regexp.Compile(s); err != nil {
			return fmt.Errorf("%q is not a valid regular expression: %v", s, err)
		}
	case FormatAccount:
		if s == "" || strings.ContainsAny(s, ":\n/") {
			return fmt.Errorf("%q is not a user or group name or number", s)
		}
	case FormatSource:
		if s == "" || path.IsAbs(s) || strings.Contains(s, "\\") || !path.IsAbs("/"+s) || path.Clean("/"+s) != "/"+s {
			return fmt.Errorf("%q must be a clean relative path under files/, without \"..\"", s)
		}
	}
	return nil
}

// CheckPath reports whether p is an absolute, clean path without NUL bytes.
func CheckPath(p string) error {
	switch {
	case !path.IsAbs(p):
		return fmt.Errorf("%q is not an absolute path", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q contains a NUL byte", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (write %q)", p, path.Clean(p))
	}
	return nil
}

// ParseMode parses an octal permission mode such as "0644", "644" or "2775".
func ParseMode(s string) (uint32, error) {
	if len(s) < 3 || len(s) > 4 {
		return 0, fmt.Errorf("%q is not an octal mode such as \"0644\"", s)
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("%q is not an octal mode such as \"0644\"", s)
	}
	return uint32(m), nil
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
