package catalog

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal, which must never panic. Whatever it
// accepts must be a catalog the engine can use: it re-encodes, and decodes again to the same
// bytes; its graph builds, orders or reports a cycle.
//
//	go test -run XXX -fuzz FuzzUnmarshal -fuzztime 60s ./internal/catalog
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(sampleJSON))
	f.Add([]byte(`{"format":"satchel.catalog/v1","node":"n","resources":[]}`))
	f.Add([]byte(`{"format":"satchel.catalog/v1","node":"n","resources":[{"address":"file.a[\"k\"]","type":"file","name":"a","key":"k","attributes":{"n":1e400,"s":"\u2028<>"},"require":["file.b"]},{"address":"file.b","type":"file","name":"b","attributes":{},"require":["file.a[\"k\"]"]}]}`))
	f.Add([]byte(`{"format":"satchel.catalog/v1","node":"\xff","resources":[{"address":"x.y","type":"x","name":"y","attributes":{"a":{"b":[1,2,{"c":null}]}},"sensitive":["a","a"],"notify":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Unmarshal(data)
		if err != nil {
			return
		}
		first, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of an accepted catalog: %v", err)
		}
		back, err := Unmarshal(first)
		if err != nil {
			t.Fatalf("Unmarshal refuses what Marshal wrote: %v\n%s", err, first)
		}
		second, err := Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("not stable:\n%s\n---\n%s", first, second)
		}
		g, err := NewGraph(back)
		if err != nil {
			t.Fatalf("NewGraph of a valid catalog: %v", err)
		}
		order, err := g.Order()
		var cyc *CycleError
		switch {
		case errors.As(err, &cyc):
			if len(cyc.Cycles) == 0 {
				t.Fatal("a cycle error names no cycle")
			}
			for _, loop := range cyc.Cycles {
				if len(loop) < 2 {
					t.Fatalf("a cycle of %d resources: %q", len(loop), loop)
				}
			}
		case err != nil:
			t.Fatal(err)
		case len(order) != len(back.Resources):
			t.Fatalf("Order returned %d of %d resources", len(order), len(back.Resources))
		}
		for _, r := range back.Resources {
			g.Dependents(r.Address)
			g.Requires(r.Address)
		}
	})
}
