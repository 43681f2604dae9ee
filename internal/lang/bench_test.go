package lang_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// BenchmarkEvaluate measures compiling a loaded configuration of n file blocks (inline
// heredoc content of 200 to 2000 bytes, one directory block per ten files) for one node:
// the language's share of every `satchel apply`, without parsing, which Load does once.
//
//	go test -run '^$' -bench Evaluate -benchmem ./internal/lang
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "site.hcl"), []byte(benchConfig(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			cfg, diags := lang.Load(dir, resource.Schemas())
			if diags.HasErrors() {
				b.Fatal(diags.Error())
			}
			facts := map[string]any{"hostname": "bench", "os": map[string]any{"family": "debian"}}
			want := n + n/10 + 1
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cat, diags := cfg.Evaluate("bench", facts)
				if diags.HasErrors() {
					b.Fatal(diags.Error())
				}
				if len(cat.Resources) != want {
					b.Fatalf("catalog has %d resources, want %d", len(cat.Resources), want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(want), "ns/resource")
		})
	}
}

// BenchmarkLoad measures parsing the same configuration (lang.Load): with inline content,
// the larger part of a no-op `satchel apply`.
//
//	go test -run '^$' -bench Load -benchmem ./internal/lang
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			src := benchConfig(n)
			if err := os.WriteFile(filepath.Join(dir, "site.hcl"), []byte(src), 0o644); err != nil {
				b.Fatal(err)
			}
			types := resource.Schemas()
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, diags := lang.Load(dir, types); diags.HasErrors() {
					b.Fatal(diags.Error())
				}
			}
		})
	}
}

// benchConfig is one node block with a directory per ten files and n file blocks.
func benchConfig(n int) string {
	var sb strings.Builder
	ndirs := max(1, n/10)
	sb.WriteString("node \"*\" {\n  directory \"tree\" {\n    path = \"/tree\"\n    mode = \"0755\"\n  }\n")
	for d := range ndirs {
		fmt.Fprintf(&sb, "  directory \"d%05d\" {\n    path = \"/tree/d%05d\"\n    mode = \"0755\"\n  }\n", d, d)
	}
	for i := range n {
		size := 200 + (i*7919)%1801
		var c strings.Builder
		for k := 0; c.Len() < size; k++ {
			fmt.Fprintf(&c, "bench file %05d line %04d the quick brown fox jumps over the lazy dog\n", i, k)
		}
		content := c.String()[:size-1] + "\n"
		fmt.Fprintf(&sb, "  file \"f%06d\" {\n    path = \"/tree/d%05d/f%06d.txt\"\n    mode = \"0644\"\n    content = <<EOT\n%sEOT\n  }\n",
			i, i%ndirs, i, content)
	}
	sb.WriteString("}\n")
	return sb.String()
}
