package store

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"
)

// benchData is 64 MiB of incompressible data: the worst case for the cut-point search, which
// can skip nothing.
func benchData(b *testing.B) []byte {
	b.Helper()
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'}).Read(data)
	return data
}

func chunkAll(b *testing.B, data []byte, each func([]byte)) {
	c, err := NewChunker(bytes.NewReader(data), DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		each(chunk)
	}
}

// BenchmarkChunkAndHash is chunking with DefaultParams plus the SHA-256 of every chunk (its
// ID): what adding content costs before compression. Run it on one core:
//
//	go test -run '^$' -bench ChunkAndHash -cpu 1 ./internal/store
//
// The target (issue 4) is 400 MB/s or more.
func BenchmarkChunkAndHash(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		chunkAll(b, data, func(chunk []byte) { _ = Sum(chunk) })
	}
}

// BenchmarkChunkAndHashWhole adds the SHA-256 of the whole stream, which a file object
// records: a second pass of SHA-256 over every byte.
func BenchmarkChunkAndHashWhole(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		h := sha256.New()
		chunkAll(b, data, func(chunk []byte) {
			_ = Sum(chunk)
			h.Write(chunk)
		})
		_ = h.Sum(nil)
	}
}

// BenchmarkChunk is the cut-point search alone.
func BenchmarkChunk(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		chunkAll(b, data, func([]byte) {})
	}
}

// BenchmarkSHA256 is crypto/sha256 alone over the same bytes, for comparison.
func BenchmarkSHA256(b *testing.B) {
	data := benchData(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		_ = sha256.Sum256(data)
	}
}

// BenchmarkChunkSmallFiles chunks and hashes 1,000 streams of 64 KiB, as adding a tree of
// small files does: the per-stream cost (a chunker and its scan buffer) shows here.
func BenchmarkChunkSmallFiles(b *testing.B) {
	data := benchData(b)[:1000*64<<10]
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for off := 0; off < len(data); off += 64 << 10 {
			chunkAll(b, data[off:off+64<<10], func(chunk []byte) { _ = Sum(chunk) })
		}
	}
}
