package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"index/suffixarray"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// troubleshootingPage is the page of every message a user can meet.
const troubleshootingPage = "../../docs/troubleshooting.md"

// ellipsis stands, in the page and in collected messages, for what varies: a path, a
// name, a wrapped error.
const ellipsis = "…"

// undocumented are the messages the code declares as data that no user can meet, so the
// page leaves them out, each with why.
var undocumented = map[string]string{
	// lang's decodeRoot: the root schema declares no attribute, so HCL reports a top-level
	// attribute itself ("Unsupported argument", on the page) and hands none to this check.
	"Unexpected attribute": "unreachable: HCL reports top-level attributes first",
	// The registry's sentinels: the server turns them into the API's messages and codes
	// ("bootstrap token refused: …", "this machine's … is node …'s"), on the page.
	"token invalid":         "server-internal: shown as bootstrap token refused",
	"clone of another node": "server-internal: shown as this machine's … is node …'s",
	// The spool names its entries itself; a bad name is a bug, never a user's doing.
	"not a spool entry name": "internal invariant of the spool",
}

// libraryMessages are texts the page quotes that come from libraries, not from this
// program's literals. A quoted fragment found within one of them is real.
var libraryMessages = []string{
	// github.com/hashicorp/hcl/v2: diagnostics of HCL's own parser and evaluator.
	"Unsupported argument",
	"Unsupported block type",
	"Missing required argument",
	"Attribute redefined",
	"Invalid expression",
	"Argument or block definition required",
	"Unclosed configuration block",
	"Unterminated template string",
	"Unknown variable",
	"Call to unknown function",
	"Invalid function argument",
	"Error in function call",
	"Missing name for %s",
	"Unexpected %q block",
	// github.com/theupdateframework/go-tuf/v2, metadata.ErrDownloadHTTP: a repository
	// answering a node's refresh with an HTTP error.
	"failed to download %s, http status code: %d",
	// go-tuf, metadata.ErrBadVersionNumber: older metadata than the node has seen.
	"new timestamp version %d must be >= %d",
	// github.com/spf13/pflag: an unknown flag.
	"unknown flag: --%s",
}

// TestTroubleshootingCoversErrors: every message a user can meet that the code declares as
// data is quoted in docs/troubleshooting.md, inside a backticked span: the Err… variables
// made with errors.New, the API's error codes, and the summaries of the diagnostics of a
// configuration (errorAt calls and Summary fields).
func TestTroubleshootingCoversErrors(t *testing.T) {
	files := parseGoSources(t, "../../internal", "../../cmd")
	messages := codeMessages(files)
	spans := inlineSpans(readPage(t))
	checked := 0
	for _, m := range messages {
		if _, ok := undocumented[m.text]; ok {
			continue
		}
		checked++
		if !spansContain(spans, m.text) {
			t.Errorf("%s: %q is not quoted in %s", m.where, m.text, filepath.Base(troubleshootingPage))
		}
	}
	for text := range undocumented {
		if !slices.ContainsFunc(messages, func(m codeMessage) bool { return m.text == text }) {
			t.Errorf("undocumented lists %q, which the code no longer declares: remove it", text)
		}
	}

	// The check itself finds what it is for: a made-up message, and a real one whose
	// entry is taken out of the page, are missing.
	if spansContain(spans, "the flux capacitor is out of alignment") {
		t.Error("a made-up message passes the check")
	}
	const known = "another satchel run is in progress"
	if !spansContain(spans, known) {
		t.Fatalf("%q is not on the page: the control below needs it", known)
	}
	without := slices.DeleteFunc(slices.Clone(spans), func(s string) bool { return strings.Contains(s, known) })
	if spansContain(without, known) {
		t.Errorf("%q is still found once its entries are removed from the page", known)
	}
	if !spansContain([]string{"Invalid where condition"}, "Invalid "+ellipsis+" condition") {
		t.Error("a message with a variable part does not match its quote")
	}

	if checked < 80 {
		t.Errorf("only %d messages collected from the code: it is not read as it should be", checked)
	}
	t.Logf("%d messages of the code checked against %d spans of the page (%d left out on purpose)", checked, len(spans), len(undocumented))
}

// TestTroubleshootingQuotesRealMessages: every message docs/troubleshooting.md quotes (the
// backticked spans of its ### headings and of the first cells of its tables) is one the
// program can print: each fragment between two "…", of four characters or more, comes out
// of the program's string literals (see literals.real) or is one of libraryMessages.
func TestTroubleshootingQuotesRealMessages(t *testing.T) {
	lits := newLiterals(parseGoSources(t, "../../internal", "../../cmd"))
	quotes := quotedMessages(readPage(t))
	fragments := 0
	for _, q := range quotes {
		for _, f := range fragmentsOf(q.text) {
			if len(f) < 4 {
				continue
			}
			fragments++
			if !lits.real(f) && !fromLibrary(f) {
				t.Errorf("%s:%d: %q is not in any message of the program (in %q)", filepath.Base(troubleshootingPage), q.line, f, q.text)
			}
		}
	}

	// The check itself finds what it is for.
	for _, fake := range []string{
		"the flux capacitor is out of alignment",
		"another satchel run is in progresss",        // one letter more
		"the stick is damaged or was modified badly", // a real message, continued
		"node school-3 is enrolled with another key", // a name where the page writes …
	} {
		if lits.real(fake) || fromLibrary(fake) {
			t.Errorf("%q passes the check", fake)
		}
	}
	for _, genuine := range []string{
		"another satchel run is in progress",
		": an older release than this node has; nothing was applied", // three literals joined
		"Invalid path", // "Invalid " + a format's name
	} {
		if !lits.real(genuine) {
			t.Errorf("%q does not pass the check", genuine)
		}
	}

	if len(quotes) < 150 || fragments < 250 {
		t.Errorf("only %d messages and %d fragments quoted on the page: it is not read as it should be", len(quotes), fragments)
	}
	t.Logf("%d quoted messages, %d fragments checked against %d literals", len(quotes), fragments, len(lits.all))
}

// goSource is one parsed non-test Go file.
type goSource struct {
	path string
	file *ast.File
	fset *token.FileSet
}

// position is where n is, as FILE:LINE.
func (src goSource) position(n ast.Node) string {
	return src.path + ":" + strconv.Itoa(src.fset.Position(n.Pos()).Line)
}

// parseGoSources parses every non-test .go file under dirs.
func parseGoSources(t *testing.T, dirs ...string) []goSource {
	t.Helper()
	fset := token.NewFileSet()
	var out []goSource
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			out = append(out, goSource{path: p, file: f, fset: fset})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 100 {
		t.Fatalf("only %d Go files under %v", len(out), dirs)
	}
	return out
}

// codeMessage is a message the code declares as data, and where.
type codeMessage struct {
	text  string // with … for each part that is not a literal
	where string // file:line
}

// codeMessages collects the messages a user can meet that the code declares as data:
//   - exported package-level variables named Err… made with errors.New("…");
//   - the values of the Code… constants of internal/api;
//   - the summary of each diagnostic: the second argument of errorAt in internal/lang,
//     and the Summary field of composite literals under internal. A concatenation keeps
//     its literal parts, with … for the others; a summary with no literal part (an
//     error's text) is skipped.
func codeMessages(files []goSource) []codeMessage {
	var out []codeMessage
	for _, src := range files {
		add := func(n ast.Node, text string) {
			out = append(out, codeMessage{text: text, where: src.position(n)})
		}
		slashed := filepath.ToSlash(src.path)
		inInternal := strings.Contains(slashed, "/internal/")
		for _, decl := range src.file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					switch {
					case gd.Tok == token.VAR && strings.HasPrefix(name.Name, "Err") && name.IsExported():
						if s, ok := errorsNewText(vs.Values[i]); ok {
							add(name, s)
						}
					case gd.Tok == token.CONST && strings.HasPrefix(name.Name, "Code") && strings.HasSuffix(slashed, "/internal/api/api.go"):
						if s, ok := stringLiteral(vs.Values[i]); ok {
							add(name, s)
						}
					}
				}
			}
		}
		if !inInternal {
			continue
		}
		inLang := strings.Contains(slashed, "/internal/lang/")
		ast.Inspect(src.file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok && fn.Name == "errorAt" && inLang && len(n.Args) == 3 {
					if s, ok := messageOf(n.Args[1]); ok {
						add(n, s)
					}
				}
			case *ast.KeyValueExpr:
				if key, ok := n.Key.(*ast.Ident); ok && key.Name == "Summary" {
					if s, ok := messageOf(n.Value); ok {
						add(n, s)
					}
				}
			}
			return true
		})
	}
	return out
}

// errorsNewText returns s for errors.New("s").
func errorsNewText(e ast.Expr) (string, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "New" {
		return "", false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "errors" {
		return "", false
	}
	return stringLiteral(call.Args[0])
}

// stringLiteral returns the value of a string literal.
func stringLiteral(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// messageOf returns the text of a string expression as the page writes it: a literal as it
// is; a concatenation of literals and other expressions with … for each of the others
// ("Invalid " + name + " condition" is "Invalid … condition"). ok is false when no part is
// a literal.
func messageOf(e ast.Expr) (string, bool) {
	if s, ok := stringLiteral(e); ok {
		return s, true
	}
	bin, ok := e.(*ast.BinaryExpr)
	if !ok || bin.Op != token.ADD {
		return "", false
	}
	var b strings.Builder
	literal := false
	var walk func(ast.Expr)
	walk = func(e ast.Expr) {
		if bin, ok := e.(*ast.BinaryExpr); ok && bin.Op == token.ADD {
			walk(bin.X)
			walk(bin.Y)
			return
		}
		if s, ok := stringLiteral(e); ok {
			b.WriteString(s)
			literal = true
			return
		}
		b.WriteString(ellipsis)
	}
	walk(e)
	return b.String(), literal
}

// readPage returns the page's text.
func readPage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(troubleshootingPage)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// pageLines returns the page's lines outside fenced code blocks, each with its number.
func pageLines(page string) (lines []string, numbers []int) {
	fenced := false
	for i, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines = append(lines, line)
			numbers = append(numbers, i+1)
		}
	}
	return lines, numbers
}

// codeSpans returns the code spans of one line of Markdown, as CommonMark reads them: a
// run of backticks opens a span that the next run of as many backticks closes (so that a
// span opened by two quotes a message holding one), and one space inside each end is
// dropped when both are there.
func codeSpans(line string) []string {
	var spans []string
	for {
		open := strings.Index(line, "`")
		if open < 0 {
			return spans
		}
		n := len(line[open:]) - len(strings.TrimLeft(line[open:], "`"))
		fence := line[open : open+n]
		rest := line[open+n:]
		end := -1
		for i := 0; i < len(rest); {
			j := strings.Index(rest[i:], fence)
			if j < 0 {
				break
			}
			j += i
			run := len(rest[j:]) - len(strings.TrimLeft(rest[j:], "`"))
			if run == n {
				end = j
				break
			}
			i = j + run
		}
		if end < 0 {
			return spans
		}
		span := rest[:end]
		if len(span) > 1 && strings.HasPrefix(span, " ") && strings.HasSuffix(span, " ") {
			span = span[1 : len(span)-1]
		}
		spans = append(spans, span)
		line = rest[end+n:]
	}
}

// inlineSpans returns every code span of the page outside fenced code blocks. A span may
// run over the end of a line, inside a paragraph (the line break then counts as a space).
func inlineSpans(page string) []string {
	lines, _ := pageLines(page)
	var spans []string
	var paragraph []string
	for _, line := range append(lines, "") {
		if strings.TrimSpace(line) != "" {
			paragraph = append(paragraph, line)
			continue
		}
		spans = append(spans, codeSpans(strings.Join(paragraph, " "))...)
		paragraph = nil
	}
	return spans
}

// quote is a message the page quotes, and the line it is on.
type quote struct {
	text string
	line int
}

// quotedMessages returns the messages the page quotes: the code spans of its ### headings
// and of the first cells of its table rows.
func quotedMessages(page string) []quote {
	lines, numbers := pageLines(page)
	var out []quote
	for i, line := range lines {
		var where string
		switch {
		case strings.HasPrefix(line, "### "):
			where = line
		case strings.HasPrefix(line, "|"):
			where = firstCell(line)
		}
		for _, s := range codeSpans(where) {
			out = append(out, quote{text: s, line: numbers[i]})
		}
	}
	return out
}

// firstCell returns the first cell of a table row: up to the second "|" outside code
// spans.
func firstCell(row string) string {
	row = strings.TrimPrefix(row, "|")
	inSpan := false
	for i, r := range row {
		switch {
		case r == '`':
			inSpan = !inSpan
		case r == '|' && !inSpan:
			return row[:i]
		}
	}
	return row
}

// fragmentsOf splits a message at each …, trimming from each fragment the spaces and the
// punctuation that join it to the variable parts (": ", "; ", ", "), and dropping empty
// fragments. A quoted "…" is one variable part: what a %q verb prints.
func fragmentsOf(message string) []string {
	var out []string
	message = strings.ReplaceAll(message, `"`+ellipsis+`"`, ellipsis)
	for _, f := range strings.Split(message, ellipsis) {
		if f = strings.Trim(f, " :;,"); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// spansContain reports whether some span holds message: each of its fragments, in order.
func spansContain(spans []string, message string) bool {
	fragments := fragmentsOf(message)
	for _, span := range spans {
		rest, found := span, true
		for _, f := range fragments {
			i := strings.Index(rest, f)
			if i < 0 {
				found = false
				break
			}
			rest = rest[i+len(f):]
		}
		if found {
			return true
		}
	}
	return false
}

// fromLibrary reports whether fragment lies within one of libraryMessages, between its
// format verbs.
func fromLibrary(fragment string) bool {
	for _, m := range libraryMessages {
		if slices.ContainsFunc(splitAtVerbs(m), func(piece string) bool { return strings.Contains(piece, fragment) }) {
			return true
		}
	}
	return false
}

// literals are the string literals of the program: what its messages are made of.
type literals struct {
	all    []string
	every  *suffixarray.Index // every literal, each between two NUL bytes
	pieces *suffixarray.Index // the pieces of message literals, each between NUL bytes
	whole  map[string]bool    // every literal
	// inserted are the texts a message inserts whole: those of errors.New (wrapped
	// errors), and constants (a file's name, a variable's).
	inserted map[string]bool
}

// newLiterals collects the string literals of files. Message literals are those a message
// is built from: format strings (with a verb), the texts of errors.New, and the parts of
// a concatenation; their pieces are their texts between format verbs.
func newLiterals(files []goSource) *literals {
	l := &literals{whole: map[string]bool{}, inserted: map[string]bool{}}
	var every, pieces strings.Builder
	every.WriteByte(0)
	pieces.WriteByte(0)
	addPieces := func(s string) {
		for _, p := range splitAtVerbs(s) {
			pieces.WriteString(p)
			pieces.WriteByte(0)
		}
	}
	for _, src := range files {
		ast.Inspect(src.file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				s, ok := stringLiteral(n)
				if !ok {
					return true
				}
				l.all = append(l.all, s)
				l.whole[s] = true
				every.WriteString(s)
				every.WriteByte(0)
				if len(splitAtVerbs(s)) > 1 {
					addPieces(s)
				}
			case *ast.CallExpr:
				if s, ok := errorsNewText(n); ok {
					l.inserted[s] = true
					addPieces(s)
				}
			case *ast.GenDecl:
				if n.Tok != token.CONST {
					return true
				}
				for _, spec := range n.Specs {
					for _, v := range spec.(*ast.ValueSpec).Values {
						if s, ok := stringLiteral(v); ok {
							l.inserted[s] = true
						}
					}
				}
			case *ast.BinaryExpr:
				if n.Op == token.ADD {
					for _, e := range []ast.Expr{n.X, n.Y} {
						if s, ok := stringLiteral(e); ok {
							addPieces(s)
						}
					}
				}
			}
			return true
		})
	}
	l.every = suffixarray.New([]byte(every.String()))
	l.pieces = suffixarray.New([]byte(pieces.String()))
	return l
}

// has reports whether s occurs in index.
func has(index *suffixarray.Index, s string) bool {
	return len(index.Lookup([]byte(s), 1)) > 0
}

// real reports whether the program can print fragment. It can if the fragment lies within
// one literal. It also can if the fragment is a message joined from pieces, as the program
// joins them: a format's text between its verbs, the text of a wrapped error, literals
// joined with +. The fragment then begins with the end of a message's piece, may go on
// with texts inserted whole (of errors made with errors.New, of constants), and ends with
// the start of a message's piece or with a whole literal (a name, such as "path" in
// "Invalid path"). Every join is between two words, never inside one ("progres"+"s"):
//
//	": an older release than this node has; nothing was applied"
//	= ": " (the end of "…release %d: %w; nothing…")
//	+ "an older release than this node has" (ErrOlderBundle, whole)
//	+ "; nothing was applied" (the start of the format's last piece)
func (l *literals) real(fragment string) bool {
	if has(l.every, fragment) {
		return true
	}
	for i := 1; i < len(fragment); i++ {
		if betweenWords(fragment, i) && has(l.pieces, fragment[:i]+"\x00") && l.endsJoined(fragment[i:]) {
			return true
		}
	}
	return false
}

// endsJoined reports whether rest, what follows a join, is the start of a message's piece,
// a whole literal, or a text inserted whole followed by a join and more of the same.
func (l *literals) endsJoined(rest string) bool {
	if has(l.pieces, "\x00"+rest) || l.whole[rest] {
		return true
	}
	for j := 1; j < len(rest); j++ {
		if l.inserted[rest[:j]] && betweenWords(rest, j) && l.endsJoined(rest[j:]) {
			return true
		}
	}
	return false
}

// betweenWords reports whether s can be cut before byte i without cutting a word: one of
// the bytes on either side is not a letter or a digit.
func betweenWords(s string, i int) bool {
	return !isWordByte(s[i-1]) || !isWordByte(s[i])
}

// isWordByte reports whether b is part of a word: an ASCII letter or digit, or a byte of
// a longer UTF-8 character.
func isWordByte(b byte) bool {
	return isLetter(b) || '0' <= b && b <= '9' || b >= 0x80
}

// splitAtVerbs cuts a format string at its verbs (%s, %q, %04o, %w…), dropping them.
func splitAtVerbs(format string) []string {
	var pieces []string
	start := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[j]) >= 0 {
			j++
		}
		if j < len(format) && isLetter(format[j]) {
			pieces = append(pieces, format[start:i])
			start = j + 1
			i = j
		}
	}
	return append(pieces, format[start:])
}

func isLetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }
