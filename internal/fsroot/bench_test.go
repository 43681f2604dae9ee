package fsroot

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLstat compares Root.Lstat with os.Lstat of the same file, three directories deep.
//
//	go test -run '^$' -bench Lstat ./internal/fsroot
func BenchmarkLstat(b *testing.B) {
	r, dir := newRoot(b)
	const p = "/etc/systemd/system/satchel.service"
	host := filepath.Join(dir, p)
	writeHost(b, host, "[Unit]\n", 0o644)

	b.Run("fsroot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Lstat(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := os.Lstat(host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fsroot-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Lstat(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("os-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := os.Lstat(host); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
