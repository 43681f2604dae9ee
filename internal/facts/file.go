package facts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// ReadFile reads a node's facts from a JSON file holding one object (as satchel facts
// prints them), numbers kept as json.Number so that they compare as written.
func ReadFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read facts: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("read facts %s: not a JSON object: %v", path, err)
	}
	return m, nil
}
