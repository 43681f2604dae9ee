package facts

import (
	"strings"
)

// osRelease returns the os fact from /etc/os-release, or /usr/lib/os-release when the former
// is absent. Every key is always present; unknown values are "".
func (g *gatherer) osRelease() map[string]any {
	b, ok := g.read("/etc/os-release")
	if !ok {
		b, _ = g.read("/usr/lib/os-release")
	}
	kv := parseOSRelease(string(b))

	// A VERSION_CODENAME set to "" (as Fedora does) means "none": the words in parentheses
	// in VERSION are then an edition ("39 (Server Edition)"), not a code name.
	codename, ok := kv["VERSION_CODENAME"]
	if !ok {
		codename = parenWord(kv["VERSION"])
	}
	family := kv["ID"]
	if like := strings.Fields(kv["ID_LIKE"]); len(like) > 0 {
		family = like[0]
	}
	return map[string]any{
		"id":          kv["ID"],
		"name":        kv["NAME"],
		"pretty_name": kv["PRETTY_NAME"],
		"version_id":  kv["VERSION_ID"],
		"version":     kv["VERSION"],
		"codename":    codename,
		"family":      family,
	}
}

// parenWord returns the first word inside the parentheses of an os-release VERSION, lower
// case: "12 (bookworm)" -> "bookworm", "7 (Core)" -> "core", "20.04.6 LTS (Focal Fossa)" ->
// "focal". It returns "" when there are none.
func parenWord(version string) string {
	_, rest, ok := strings.Cut(version, "(")
	if !ok {
		return ""
	}
	inner, _, _ := strings.Cut(rest, ")")
	words := strings.FieldsFunc(inner, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(words) == 0 {
		return ""
	}
	return strings.ToLower(words[0])
}

// parseOSRelease parses os-release(5) text: KEY=value lines whose values follow shell quoting
// (double quotes with \ escapes, single quotes, or bare words), "#" comment lines and blank
// lines. Malformed lines are skipped; a later assignment wins.
func parseOSRelease(s string) map[string]string {
	kv := make(map[string]string)
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || !validKey(key) {
			continue
		}
		kv[key] = shellValue(val)
	}
	return kv
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// shellValue unquotes one shell word; it stops at unquoted white space, so that a trailing
// "# comment" is dropped as the shell would.
func shellValue(s string) string {
	var b strings.Builder
	const (
		bare = iota
		double
		single
	)
	state := bare
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case bare:
			switch c {
			case ' ', '\t':
				return b.String()
			case '"':
				state = double
			case '\'':
				state = single
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		case double:
			switch {
			case c == '"':
				state = bare
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0:
				i++
				b.WriteByte(s[i])
			default:
				b.WriteByte(c)
			}
		case single:
			if c == '\'' {
				state = bare
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}
