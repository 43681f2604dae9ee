package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
)

// check validates the size and hash that pin the content (the path is a schema format).
func (ref *SourceRef) check() error {
	if ref.Size < 0 {
		return fmt.Errorf("size %d is negative", ref.Size)
	}
	if _, err := hex.DecodeString(ref.SHA256); err != nil || len(ref.SHA256) != 2*sha256.Size || strings.ToLower(ref.SHA256) != ref.SHA256 {
		return fmt.Errorf("sha256 %q is not 64 lower-case hex digits", ref.SHA256)
	}
	return nil
}

// DirSources reads sources from a config repository directory on disk. Paths in a SourceRef
// are relative to it ("files/squid/big.bin") and are opened through os.Root, so a path that
// climbs out of the repository is refused.
type DirSources struct {
	root *os.Root
}

// NewDirSources opens the repository directory dir.
func NewDirSources(dir string) (*DirSources, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open config directory %s: %w", dir, err)
	}
	return &DirSources{root: r}, nil
}

// Close releases the directory.
func (s *DirSources) Close() error { return s.root.Close() }

// Open implements Sources.
func (s *DirSources) Open(ref *SourceRef) (io.ReadCloser, error) {
	if ref == nil || path.IsAbs(ref.Path) || path.Clean(ref.Path) != ref.Path {
		return nil, fmt.Errorf("source path %v is not a clean relative path", ref)
	}
	f, err := s.root.Open(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", ref.Path, err)
	}
	return &verifyingReader{r: f, c: f, ref: ref, h: sha256.New()}, nil
}

// verifyingReader fails at EOF when the bytes read do not match the reference, so content
// that changed after the catalog was made is never installed.
type verifyingReader struct {
	r   io.Reader
	c   io.Closer
	ref *SourceRef
	h   hash.Hash
	n   int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if v.n != v.ref.Size {
			return n, fmt.Errorf("source %s is %d bytes, the catalog expects %d: it changed after the catalog was made", v.ref.Path, v.n, v.ref.Size)
		}
		if sum := hex.EncodeToString(v.h.Sum(nil)); sum != v.ref.SHA256 {
			return n, fmt.Errorf("source %s has sha256 %s, the catalog expects %s: it changed after the catalog was made", v.ref.Path, sum[:12], v.ref.SHA256[:min(12, len(v.ref.SHA256))])
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }
