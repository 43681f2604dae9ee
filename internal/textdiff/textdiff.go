// Package textdiff renders the difference between two versions of a file for people: a unified
// diff for text, a one-line summary for binary or very large content.
package textdiff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/aymanbagabas/go-udiff"
)

// MaxDiffBytes is the largest version, in bytes, that is diffed line by line; beyond it a
// summary is shown, since nobody reads a megabyte of diff on a console.
const MaxDiffBytes = 256 << 10

// Unified returns a unified diff from old to new with three lines of context, the two sides
// labelled "PATH (current)" and "PATH (desired)". It returns "" when they are equal.
func Unified(path string, old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	if IsBinary(old) || IsBinary(new) || len(old) > MaxDiffBytes || len(new) > MaxDiffBytes {
		return Summary(old, new)
	}
	return udiff.Unified(path+" (current)", path+" (desired)", string(old), string(new))
}

// Summary describes a change of content without showing it.
func Summary(old, new []byte) string {
	kind := "content"
	if IsBinary(old) || IsBinary(new) {
		kind = "binary content"
	}
	return fmt.Sprintf("%s differs: %d bytes (sha256 %s) -> %d bytes (sha256 %s)\n",
		kind, len(old), ShortHash(old), len(new), ShortHash(new))
}

// ShortHash returns the first 12 hex digits of the SHA-256 of b.
func ShortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// IsBinary reports whether b looks like binary data: a NUL byte in its first 8 KiB, or bytes
// that are not UTF-8.
func IsBinary(b []byte) bool {
	head := b[:min(len(b), 8<<10)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	return !utf8.Valid(b)
}
