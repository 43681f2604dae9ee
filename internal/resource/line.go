package resource

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// Line manages one line in a file that something else owns (a package, the OS): present
// (added or replacing the lines that match) or absent.
type Line struct {
	base
	Path     string  `attr:"path" required:"true" format:"path" doc:"Absolute path of the file to edit. It must exist; ownership and mode are kept."`
	Line     string  `attr:"line" doc:"The whole line, without its newline. Required when present."`
	Match    *string `attr:"match" format:"regexp" doc:"Lines matching this regular expression are replaced by line (present) or removed (absent)."`
	Ensure   string  `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the line is in the file; absent: lines equal to line (or matching match) are removed."`
	After    *string `attr:"after" format:"regexp" doc:"When the line must be added, insert it after the first line matching this; otherwise it goes at the end."`
	Multiple bool    `attr:"multiple" default:"false" doc:"Replace every line that matches match. Without it, more than one match is an error."`
	Backup   bool    `attr:"backup" default:"true" doc:"Keep the previous content in the backup store before editing."`
}

var lineDef = definition{
	name:     "line",
	doc:      "One line in a file owned by something else, present or absent, optionally replacing lines that match a regular expression.",
	pathAttr: "path",
	ownsPath: false,
	proto:    (*Line)(nil),
	check: func(v schema.Values) []*schema.AttrError {
		if line, ok := v["line"].(string); ok && strings.ContainsAny(line, "\n\r") {
			return []*schema.AttrError{{Attr: "line", Summary: "Invalid line", Detail: "line must not contain a newline."}}
		}
		_, hasMatch := v["match"]
		if v["ensure"] == "absent" && hasMatch {
			return nil
		}
		present := schema.Values{"ensure": "present"}
		if line, ok := v["line"]; ok { // an unset line must stay unset, not become nil
			present["line"] = line
		}
		return requireWhenPresent("line", "give the line to add (or, with ensure = \"absent\", a line or a match).")(present)
	},
}

// CheckApply implements Resource.
func (l *Line) CheckApply(ctx context.Context, env *Env, apply bool) (_ *Result, err error) {
	res := &Result{}
	defer func() {
		if apply && err == nil && res.Changed() {
			noteWrite(env, l.Path)
		}
	}()
	info, err := current(env, l.Path)
	if err == nil && info == nil {
		if l.Ensure == "absent" {
			return res, nil
		}
		if !apply { // a resource earlier in the run may be about to create it
			res.Add("line", "", l.show("line", l.Line))
			return res, nil
		}
		return res, fmt.Errorf("%s does not exist; create it first (a file or package resource) and require that", env.Root.HostPath(l.Path))
	}
	if err != nil {
		return res, err
	}
	if !info.IsRegular() {
		return res, fmt.Errorf("%s is a %s, not a regular file", env.Root.HostPath(l.Path), kindOf(info))
	}
	old, err := env.Root.ReadFile(l.Path)
	if err != nil {
		return res, err
	}
	edited, err := l.edit(old)
	if err != nil {
		return res, fmt.Errorf("%s: %w", env.Root.HostPath(l.Path), err)
	}
	if bytes.Equal(old, edited) {
		return res, nil
	}
	if l.Ensure == "absent" {
		res.Add("line", l.show("line", l.Line), "(removed)")
	} else {
		res.Add("line", "", l.show("line", l.Line))
	}
	if !l.isSensitive("line") {
		res.Diff = textdiff.Unified(l.Path, old, edited)
	}
	if !apply {
		return res, nil
	}
	if l.Backup {
		if err := saveBackup(env, l.Path, info, "edited by "+l.address); err != nil {
			return res, err
		}
	}
	return res, writeAtomic(env.Root, l.Path, bytes.NewReader(edited), permBits(info.Mode), info.UID, info.GID)
}

// edit returns the file content with the line ensured present or absent.
func (l *Line) edit(content []byte) ([]byte, error) {
	text := string(content)
	finalNewline := text == "" || strings.HasSuffix(text, "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		lines = nil
	}
	var match, after *regexp.Regexp
	if l.Match != nil {
		match = regexp.MustCompile(*l.Match) // validated by the schema
	}
	if l.After != nil {
		after = regexp.MustCompile(*l.After)
	}
	var out []string
	if l.Ensure == "absent" {
		for _, ln := range lines {
			if (match != nil && match.MatchString(ln)) || (match == nil && ln == l.Line) {
				continue
			}
			out = append(out, ln)
		}
	} else {
		var hits []int
		for i, ln := range lines {
			if match != nil && match.MatchString(ln) {
				hits = append(hits, i)
			}
		}
		switch {
		case len(hits) > 1 && !l.Multiple:
			return nil, fmt.Errorf("%d lines match %q; set multiple = true to replace them all", len(hits), *l.Match)
		case len(hits) > 0:
			out = append([]string(nil), lines...)
			for _, i := range hits {
				out[i] = l.Line
			}
		default:
			out = insertLine(lines, l.Line, after)
		}
	}
	if len(out) == 0 {
		return []byte{}, nil
	}
	result := strings.Join(out, "\n")
	if finalNewline || l.Ensure == "present" && len(out) > len(lines) {
		result += "\n"
	}
	return []byte(result), nil
}

// insertLine adds line unless it is already there: after the first line matching after, or
// at the end.
func insertLine(lines []string, line string, after *regexp.Regexp) []string {
	for _, ln := range lines {
		if ln == line {
			return lines
		}
	}
	if after != nil {
		for i, ln := range lines {
			if after.MatchString(ln) {
				out := append([]string(nil), lines[:i+1]...)
				out = append(out, line)
				return append(out, lines[i+1:]...)
			}
		}
	}
	return append(append([]string(nil), lines...), line)
}

var _ Resource = (*Line)(nil)
