package store

import (
	"errors"
	"fmt"
	"io"
	"sync"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers "fastcdc-v1.0.0"
)

// Content-defined chunking: the algorithm and its sizes, chosen by measurement.
//
// TABLE-PLACEHOLDER

// DefaultParams are the chunking sizes of every store. They are part of the store's format:
// other values cut other boundaries, and a node would fetch again what it already has.
// chunking_test.go pins them, with the algorithm, by fixed test vectors.
var DefaultParams = Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10}

// Params are content-defined chunking sizes, in bytes: no chunk is shorter than Min (but the
// last of a stream) or longer than Max, and cut points are placed so that chunks average
// about Avg. Avg must be a power of two.
type Params struct {
	Min, Avg, Max int
}

// Validate reports whether p can be used: 64 ≤ Min < Avg < Max ≤ MaxChunkSize, Avg a power
// of two.
func (p Params) Validate() error {
	switch {
	case p.Min < 64 || p.Min >= p.Avg || p.Avg >= p.Max || p.Max > MaxChunkSize:
		return fmt.Errorf("chunking sizes %+v: want 64 <= Min < Avg < Max <= %d", p, MaxChunkSize)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunking sizes %+v: Avg must be a power of two", p)
	}
	return nil
}

// algorithm is the chunker's name in go-cdc-chunkers: FastCDC 2016 with normalized chunking
// (level 2), in the library's versioned, spec-faithful variant, so that an upgrade of the
// library cannot move boundaries.
const algorithm = "fastcdc-v1.0.0"

// Chunker cuts a stream into content-defined chunks.
type Chunker struct {
	c    *chunkers.Chunker
	buf  []byte // the scan buffer, from bufPools; nil once the stream is done
	pool *sync.Pool
	err  error // sticky: io.EOF or a read error
}

// bufPools holds scan buffers (2×Max bytes, as go-cdc-chunkers allocates by default) per Max,
// so that chunking many small files does not allocate and clear a buffer per file. A buffer
// goes back when its stream is done, since a chunk is valid only until the following Next.
var bufPools sync.Map // int → *sync.Pool of *[]byte

// NewChunker returns a chunker over r with the given parameters.
func NewChunker(r io.Reader, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pool, _ := bufPools.LoadOrStore(p.Max, &sync.Pool{New: func() any {
		b := make([]byte, 2*p.Max)
		return &b
	}})
	c := &Chunker{pool: pool.(*sync.Pool)}
	c.buf = *c.pool.Get().(*[]byte)
	opts := chunkers.ChunkerOpts{MinSize: p.Min, NormalSize: p.Avg, MaxSize: p.Max}
	cc, err := chunkers.NewChunkerBuffer(algorithm, r, &opts, c.buf)
	if err != nil {
		c.release()
		return nil, fmt.Errorf("chunker %s %+v: %w", algorithm, p, err)
	}
	c.c = cc
	return c, nil
}

// Next returns the next chunk, valid until the following call, or io.EOF after the last.
// An empty stream has no chunk. A read error is returned as it is, and again on every
// following call.
func (c *Chunker) Next() ([]byte, error) {
	if c.err != nil {
		c.release()
		return nil, c.err
	}
	chunk, err := c.c.Next()
	switch {
	case err == nil:
		return chunk, nil
	case errors.Is(err, io.EOF):
		c.err = io.EOF
		if len(chunk) > 0 {
			return chunk, nil // the last chunk; io.EOF comes on the next call
		}
	default:
		c.err = err
	}
	c.release()
	return nil, c.err
}

// release gives the scan buffer back to its pool; no chunk refers to it any more.
func (c *Chunker) release() {
	if c.buf != nil {
		b := c.buf
		c.buf, c.c = nil, nil
		c.pool.Put(&b)
	}
}
