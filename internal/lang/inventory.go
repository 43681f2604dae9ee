package lang

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// inventory is the per-node data a ministry keeps as a spreadsheet: one row per machine, one
// column per variable. Column headers become variable names (lower-cased, with other
// characters turned into underscores: "School Name" is var.school_name).
type inventory struct {
	file      string
	keyColumn string
	separator string
	columns   []string
	headers   []string // the columns as the spreadsheet writes them
	rows      map[string]*inventoryRow
	order     []string // node names in file order
	declRange hcl.Range
}

type inventoryRow struct {
	values map[string]string
	cells  map[string]hcl.Range
	rng    hcl.Range
}

var inventorySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "source", Required: true}, {Name: "key"}, {Name: "list_separator"},
}}

func (c *Config) decodeInventory(b *hcl.Block) hcl.Diagnostics {
	content, diags := bodyContent(b.Body, inventorySchema)
	if c.inventory != nil {
		return append(diags, errorAt(b.DefRange, "Duplicate inventory",
			fmt.Sprintf("The inventory is already declared at %s; a repository has one.", Position(c.inventory.declRange))))
	}
	if diags.HasErrors() {
		return diags
	}
	inv := &inventory{keyColumn: "hostname", separator: ";", declRange: b.DefRange}
	var source string
	diags = append(diags, staticString(content.Attributes["source"], &source)...)
	if a, ok := content.Attributes["key"]; ok {
		diags = append(diags, staticString(a, &inv.keyColumn)...)
	}
	if a, ok := content.Attributes["list_separator"]; ok {
		diags = append(diags, staticString(a, &inv.separator)...)
	}
	if diags.HasErrors() {
		return diags
	}
	srcRange := content.Attributes["source"].Expr.Range()
	if filepath.IsAbs(source) || !filepath.IsLocal(source) {
		return append(diags, errorAt(srcRange, "Invalid inventory source",
			fmt.Sprintf("%q must be a path inside the repository, without \"..\".", source)))
	}
	root, err := os.OpenRoot(c.Dir)
	if err != nil {
		return append(diags, errorAt(srcRange, "Cannot read inventory", err.Error()))
	}
	defer root.Close()
	data, err := root.ReadFile(source)
	if err != nil {
		return append(diags, errorAt(srcRange, "Cannot read inventory", err.Error()))
	}
	inv.file = filepath.Join(c.Dir, source)
	c.files.add(inv.file, data)
	c.files.mu.Lock()
	c.files.recordRead(c.Dir, inv.file, data)
	c.files.mu.Unlock()
	diags = append(diags, inv.parse(data)...)
	c.inventory = inv
	return diags
}

// parse reads the CSV: a header row, then one row per node. A UTF-8 byte order mark (as
// spreadsheet programs write) is ignored, as are blank lines.
func (inv *inventory) parse(data []byte) hcl.Diagnostics {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // rows of the wrong length are reported below, every one of them
	at := func(line, col int) hcl.Range {
		p := hcl.Pos{Line: line, Column: col, Byte: 0}
		return hcl.Range{Filename: inv.file, Start: p, End: hcl.Pos{Line: line, Column: col + 1}}
	}
	cell := func(line, col int, v string) hcl.Range {
		r := at(line, col)
		r.End.Column = col + max(1, utf8.RuneCountInString(v))
		return r
	}
	header, err := r.Read()
	if err != nil {
		return hcl.Diagnostics{errorAt(at(1, 1), "Invalid inventory", "The inventory has no header row: "+csvError(err))}
	}
	var diags hcl.Diagnostics
	seen := map[string]int{}
	keyIndex := -1
	for i, h := range header {
		name := columnName(h)
		line, col := r.FieldPos(i)
		switch {
		case name == "":
			diags = append(diags, errorAt(at(line, col), "Invalid inventory column",
				fmt.Sprintf("Column %d has the header %q, which gives no variable name.", i+1, h)))
		case seen[name] > 0:
			diags = append(diags, errorAt(at(line, col), "Duplicate inventory column",
				fmt.Sprintf("Column %d (%q) gives the variable name %q, like column %d.", i+1, h, name, seen[name])))
		}
		seen[name] = i + 1
		inv.columns = append(inv.columns, name)
		inv.headers = append(inv.headers, strings.TrimSpace(h))
		if name == columnName(inv.keyColumn) {
			keyIndex = i
		}
	}
	if keyIndex < 0 {
		return append(diags, errorAt(at(1, 1), "Missing inventory key column",
			fmt.Sprintf("The inventory has no column %q naming the nodes; set key in the inventory block to the column that does.", inv.keyColumn)))
	}
	inv.rows = map[string]*inventoryRow{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, col := 1, 1
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line, col = pe.Line, pe.Column
			}
			return append(diags, errorAt(at(line, col), "Invalid inventory", csvError(err)))
		}
		line, _ := r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			diags = append(diags, errorAt(at(line, 1), "Invalid inventory row",
				fmt.Sprintf("Row has %d fields but the header has %d.", len(rec), len(header))))
			continue
		}
		row := &inventoryRow{values: map[string]string{}, cells: map[string]hcl.Range{}, rng: at(line, 1)}
		for i, v := range rec {
			l, c := r.FieldPos(i)
			row.values[inv.columns[i]] = strings.TrimSpace(v)
			row.cells[inv.columns[i]] = cell(l, c, v)
		}
		key := row.values[inv.columns[keyIndex]]
		switch prev, dup := inv.rows[key]; {
		case key == "":
			diags = append(diags, errorAt(row.cells[inv.columns[keyIndex]], "Missing node name",
				fmt.Sprintf("This row has no value in the key column %q.", inv.keyColumn)))
		case dup:
			diags = append(diags, errorAt(row.cells[inv.columns[keyIndex]], "Duplicate node in inventory",
				fmt.Sprintf("%q already has a row at line %d.", key, prev.rng.Start.Line)))
		default:
			inv.rows[key] = row
			inv.order = append(inv.order, key)
		}
	}
	return diags
}

func csvError(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// columnName turns a spreadsheet header into a variable name: "School Name" -> school_name,
// "IP-Plan (LAN)" -> ip_plan_lan. It returns "" if nothing usable remains.
func columnName(h string) string {
	var b strings.Builder
	underscore := false
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if underscore && b.Len() > 0 {
				b.WriteByte('_')
			}
			underscore = false
			b.WriteRune(r)
			continue
		}
		underscore = true
	}
	s := b.String()
	if s != "" && unicode.IsDigit(rune(s[0])) {
		s = "_" + s
	}
	return s
}

// maskSensitiveColumns replaces, in the copy of the inventory that diagnostics quote, the
// cells of columns whose variable is declared sensitive (a wifi passphrase in the
// spreadsheet), so that an error in a row never prints a secret. Each byte of such a cell
// becomes '*', so the columns of the other cells, and the carets under them, do not move.
func (c *Config) maskSensitiveColumns() {
	inv := c.inventory
	if inv == nil {
		return
	}
	hidden := map[int]bool{}
	for i, col := range inv.columns {
		if v, ok := c.variables[col]; ok && v.sensitive {
			hidden[i] = true
		}
	}
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	src, ok := c.files.snippets[inv.file]
	if !ok || len(hidden) == 0 {
		return
	}
	out := append([]byte(nil), src...)
	record, field, inQuotes := 0, 0, false
	for i := 0; i < len(out); i++ {
		b := out[i]
		switch {
		case inQuotes && b == '"' && i+1 < len(out) && out[i+1] == '"':
			i++ // an escaped quote inside a quoted field
			if record > 0 && hidden[field] {
				out[i-1], out[i] = '*', '*'
			}
			continue
		case b == '"':
			inQuotes = !inQuotes
			continue
		case !inQuotes && b == ',':
			field++
			continue
		case !inQuotes && b == '\n':
			record, field = record+1, 0
			continue
		case b == '\r':
			continue
		}
		if record > 0 && hidden[field] {
			out[i] = '*'
		}
	}
	c.files.snippets[inv.file] = out
}

// InventoryNodes returns the nodes whose inventory row has value in column (a header as
// the spreadsheet writes it, "Department", or as a variable, "department"), in the
// inventory's order; an error if the config has no inventory or no such column.
func (c *Config) InventoryNodes(column, value string) ([]string, error) {
	inv := c.inventory
	if inv == nil {
		return nil, errors.New("the config has no inventory")
	}
	name := columnName(column)
	if !slices.Contains(inv.columns, name) {
		return nil, fmt.Errorf("the inventory has no column %q (its columns: %s)", column, strings.Join(inv.columns, ", "))
	}
	var nodes []string
	for _, node := range inv.order {
		if strings.EqualFold(inv.rows[node].values[name], strings.TrimSpace(value)) {
			nodes = append(nodes, node)
		}
	}
	return nodes, nil
}

// InventoryColumn returns, by node, the value of one inventory column (a header as the
// spreadsheet writes it, or as a variable), and the column's header as the spreadsheet
// writes it; column "" is the first column after the one naming the nodes (a school's
// name, usually). Nil if the config has no inventory or the inventory no such column.
func (c *Config) InventoryColumn(column string) (map[string]string, string) {
	inv := c.inventory
	if inv == nil {
		return nil, ""
	}
	name := columnName(column)
	if column == "" {
		for _, col := range inv.columns {
			if col != columnName(inv.keyColumn) {
				name = col
				break
			}
		}
	}
	i := slices.Index(inv.columns, name)
	if name == "" || i < 0 {
		return nil, ""
	}
	out := make(map[string]string, len(inv.rows))
	for node, row := range inv.rows {
		out[node] = row.values[name]
	}
	return out, inv.headers[i]
}
