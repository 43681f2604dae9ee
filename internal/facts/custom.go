package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// custom merges the custom facts in dir into f. Files are read in name order; each must hold
// one JSON object whose keys become top-level facts. A later file replaces a key set by an
// earlier one (a whole value, not merged deeply). Keys naming core facts are ignored with a
// warning; a file that cannot be read or parsed is skipped with a warning.
func (g *gatherer) custom(f map[string]any, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			g.warn(fmt.Errorf("custom facts: %w", err))
		}
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		file := filepath.Join(dir, name)
		obj, err := readCustom(file)
		if err != nil {
			g.warn(err)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if coreKeys[k] {
				g.warn(fmt.Errorf("custom facts %s: key %q would override a core fact; ignored", file, k))
				continue
			}
			f[k] = obj[k]
		}
	}
}

// readCustom reads one custom fact file.
func readCustom(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("custom facts: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("custom facts %s: %w", file, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("custom facts %s: data after the JSON object", file)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("custom facts %s: not a JSON object", file)
	}
	if _, err := normalize(obj); err != nil {
		return nil, fmt.Errorf("custom facts %s: %w", file, err)
	}
	return obj, nil
}

// normalize replaces the json.Numbers in v, in place, by int64 when integral and in range,
// else by float64.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		fl, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return fl, nil
	case map[string]any:
		// Sorted, so that the first error reported is always the same one.
		for _, k := range slices.Sorted(maps.Keys(x)) {
			n, err := normalize(x[k])
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}
