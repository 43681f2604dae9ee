package lang

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diagnostics for people: severity and summary, FILE:LINE:COLUMN,
// the source line with the problem underlined, then the detail. sources maps file names to
// their content (Config.Sources); a diagnostic whose file is unknown is printed without a
// snippet.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, sources map[string][]byte) error {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		fmt.Fprintf(&b, "%s: %s\n", sev, d.Summary)
		if d.Subject != nil {
			r := *d.Subject
			fmt.Fprintf(&b, "  --> %s\n", Position(r))
			if line, ok := sourceLine(sources[r.Filename], r.Start.Line); ok {
				writeSnippet(&b, line, r)
			}
		}
		if d.Detail != "" {
			for i, l := range strings.Split(strings.TrimSpace(d.Detail), "\n") {
				prefix := "   = "
				if i > 0 {
					prefix = "     "
				}
				b.WriteString(prefix + l + "\n")
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Position renders a range's start as FILE:LINE:COLUMN.
func Position(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func sourceLine(src []byte, n int) (string, bool) {
	if src == nil || n < 1 {
		return "", false
	}
	for i := 1; i < n; i++ {
		k := bytes.IndexByte(src, '\n')
		if k < 0 {
			return "", false
		}
		src = src[k+1:]
	}
	if k := bytes.IndexByte(src, '\n'); k >= 0 {
		src = src[:k]
	}
	return strings.TrimRight(string(src), "\r"), true
}

// writeSnippet prints the line and a caret line under the range (to the end of the line
// when the range spans several).
func writeSnippet(b *strings.Builder, line string, r hcl.Range) {
	num := fmt.Sprintf("%2d", r.Start.Line)
	pad := strings.Repeat(" ", len(num))
	expanded := strings.ReplaceAll(line, "\t", "    ")
	fmt.Fprintf(b, "%s |\n%s | %s\n", pad, num, expanded)
	startCol := r.Start.Column
	endCol := r.End.Column
	if r.End.Line != r.Start.Line || endCol <= startCol {
		endCol = utf8.RuneCountInString(line) + 1
	}
	prefix := width(line, startCol-1)
	span := max(1, width(line, endCol-1)-prefix)
	fmt.Fprintf(b, "%s | %s%s\n", pad, strings.Repeat(" ", prefix), strings.Repeat("^", span))
}

// width is the display width of the first n characters of line, tabs counted as four.
func width(line string, n int) int {
	w := 0
	for i, r := range []rune(line) {
		if i >= n {
			break
		}
		if r == '\t' {
			w += 4
		} else {
			w++
		}
	}
	if extra := n - utf8.RuneCountInString(line); extra > 0 {
		w += extra
	}
	return w
}
