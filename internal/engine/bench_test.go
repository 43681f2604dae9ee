package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
)

// BenchmarkNoopRun measures a converged run: the catalog is applied once into a temporary
// root, then each iteration runs it again (apply on, Noop false) with nothing to change.
// This is the engine's share of `satchel apply` on an up-to-date machine, without loading
// and evaluating the configuration or gathering facts.
//
//	go test -run '^$' -bench NoopRun -benchmem ./internal/engine
func BenchmarkNoopRun(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			cat := benchCatalog(b, n)
			env := benchEnv(b)
			ctx := context.Background()
			first := engine.Run(ctx, cat, engine.Options{Env: env})
			if first.Error != "" || first.Summary.Failed != 0 || first.Summary.Skipped != 0 {
				b.Fatalf("first run: error %q, summary %+v", first.Error, first.Summary)
			}
			if first.Summary.Changed != first.Summary.Total {
				b.Fatalf("first run changed %d of %d resources", first.Summary.Changed, first.Summary.Total)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rep := engine.Run(ctx, cat, engine.Options{Env: env})
				if rep.Error != "" || rep.Summary.Changed != 0 || rep.Summary.Failed != 0 || rep.Summary.Skipped != 0 {
					b.Fatalf("no-op run: error %q, summary %+v", rep.Error, rep.Summary)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(cat.Resources)), "ns/resource")
		})
	}
}

// benchCatalog returns a catalog of n file resources with inline content of 200 to 2000
// bytes, spread over about n/10 directories (each a directory resource) under /tree.
func benchCatalog(b *testing.B, n int) *catalog.Catalog {
	b.Helper()
	cat := catalog.New("bench")
	ndirs := max(1, n/10)
	add := func(typ, name string, attrs map[string]any, require ...string) {
		raw := map[string]json.RawMessage{}
		for k, v := range attrs {
			data, err := json.Marshal(v)
			if err != nil {
				b.Fatal(err)
			}
			raw[k] = data
		}
		cat.Resources = append(cat.Resources, &catalog.Resource{Address: typ + "." + name, Type: typ,
			Name: name, Attributes: raw, Require: require})
	}
	add("directory", "tree", map[string]any{"path": "/tree", "mode": "0755"})
	for d := range ndirs {
		add("directory", fmt.Sprintf("d%05d", d), map[string]any{"path": fmt.Sprintf("/tree/d%05d", d), "mode": "0755"},
			"directory.tree")
	}
	for i := range n {
		size := 200 + (i*7919)%1801
		var sb strings.Builder
		for k := 0; sb.Len() < size; k++ {
			fmt.Fprintf(&sb, "bench file %05d line %04d the quick brown fox jumps over the lazy dog\n", i, k)
		}
		content := sb.String()[:size-1] + "\n"
		d := i % ndirs
		add("file", fmt.Sprintf("f%06d", i), map[string]any{
			"path": fmt.Sprintf("/tree/d%05d/f%06d.txt", d, i), "mode": "0644", "content": content,
		}, fmt.Sprintf("directory.d%05d", d))
	}
	cat.Sort()
	if err := cat.Validate(); err != nil {
		b.Fatal(err)
	}
	return cat
}

// benchEnv builds the run environment the way `satchel apply --root` does, on a temporary
// root with a backup store (a no-op run replaces nothing, so it never writes to it).
func benchEnv(b *testing.B) *resource.Env {
	b.Helper()
	root, err := fsroot.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { root.Close() })
	sources, err := resource.NewDirSources(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sources.Close() })
	store, err := backup.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return &resource.Env{Root: root, Sources: sources, Accounts: resource.NewAccounts(root), Backup: store}
}
