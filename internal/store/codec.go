package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The encodings of objects. They are part of the store's format: an object's ID is the
// SHA-256 of its encoding, so changing a byte here changes every ID (codec_test.go pins them
// with fixed vectors). Integers are unsigned varints; IDs are 32 raw bytes.
//
//	file:  "SF" 0x01, size, content SHA-256, count, count × (chunk ID, chunk length)
//	tree:  "ST" 0x01, count, count × (name length, name, kind, mode, then
//	       a file or tree object ID for kinds 'f' and 'd', or target length, target for 'l')
//
// Decoding is strict: anything but the one canonical encoding of a valid object is refused,
// so equal objects always have equal IDs and a crafted object cannot smuggle a path.
var (
	fileMagic = []byte{'S', 'F', 1}
	treeMagic = []byte{'S', 'T', 1}
)

// Limits that keep a hostile object from exhausting memory.
const (
	MaxChunkSize   = 64 << 20 // far above any chunking parameter
	maxTreeEntries = 1 << 20
	maxNameLen     = 255
	maxTargetLen   = 4096
)

// ChunkRef is one chunk of a file.
type ChunkRef struct {
	ID     ID
	Length uint32
}

// FileObject describes a file's content.
type FileObject struct {
	Size   int64
	SHA256 ID // of the whole content
	Chunks []ChunkRef
}

// Kind is the kind of a tree entry.
type Kind byte

// The kinds of tree entries.
const (
	KindFile    Kind = 'f'
	KindDir     Kind = 'd'
	KindSymlink Kind = 'l'
)

// Entry is one name in a directory.
type Entry struct {
	Name   string
	Kind   Kind
	Mode   uint32 // permission bits and setuid, setgid, sticky (0o7777 at most)
	ID     ID     // the file or tree object (files and directories)
	Target string // symlinks
}

// TreeObject describes a directory: its entries, sorted by name.
type TreeObject struct {
	Entries []Entry
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed object")

// Encode returns the file object's canonical encoding.
func (f *FileObject) Encode() []byte {
	b := append([]byte(nil), fileMagic...)
	b = binary.AppendUvarint(b, uint64(f.Size))
	b = append(b, f.SHA256[:]...)
	b = binary.AppendUvarint(b, uint64(len(f.Chunks)))
	for _, c := range f.Chunks {
		b = append(b, c.ID[:]...)
		b = binary.AppendUvarint(b, uint64(c.Length))
	}
	return b
}

// Encode returns the tree object's canonical encoding.
func (t *TreeObject) Encode() []byte {
	b := append([]byte(nil), treeMagic...)
	b = binary.AppendUvarint(b, uint64(len(t.Entries)))
	for _, e := range t.Entries {
		b = binary.AppendUvarint(b, uint64(len(e.Name)))
		b = append(b, e.Name...)
		b = append(b, byte(e.Kind))
		b = binary.AppendUvarint(b, uint64(e.Mode))
		if e.Kind == KindSymlink {
			b = binary.AppendUvarint(b, uint64(len(e.Target)))
			b = append(b, e.Target...)
		} else {
			b = append(b, e.ID[:]...)
		}
	}
	return b
}

// decoder reads an encoding, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	// Canonical: the shortest encoding only.
	if n != len(binary.AppendUvarint(nil, v)) {
		d.fail("%s is not minimally encoded", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("%s is truncated", what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) id(what string) ID {
	var id ID
	copy(id[:], d.bytes(what, len(id)))
	return id
}

func (d *decoder) magic(m []byte, what string) {
	if !bytes.HasPrefix(d.b, m) {
		d.fail("not a %s object", what)
		return
	}
	d.b = d.b[len(m):]
}

func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
}

// DecodeFile decodes a file object, refusing anything but a canonical valid encoding.
func DecodeFile(b []byte) (*FileObject, error) {
	d := &decoder{b: b}
	d.magic(fileMagic, "file")
	f := &FileObject{}
	f.Size = int64(d.uvarint("size", 1<<62))
	f.SHA256 = d.id("content hash")
	n := d.uvarint("chunk count", uint64(len(d.b)/33+1))
	var total int64
	for i := uint64(0); i < n && d.err == nil; i++ {
		c := ChunkRef{ID: d.id("chunk ID")}
		c.Length = uint32(d.uvarint("chunk length", MaxChunkSize))
		if d.err == nil && c.Length == 0 {
			d.fail("chunk %d is empty", i)
		}
		total += int64(c.Length)
		f.Chunks = append(f.Chunks, c)
	}
	d.end()
	if d.err == nil && total != f.Size {
		d.fail("chunks add up to %d bytes, the file has %d", total, f.Size)
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// DecodeTree decodes a tree object, refusing anything but a canonical valid encoding: names
// sorted and unique, each a single path component, modes within 0o7777.
func DecodeTree(b []byte) (*TreeObject, error) {
	d := &decoder{b: b}
	d.magic(treeMagic, "tree")
	t := &TreeObject{}
	n := d.uvarint("entry count", min(maxTreeEntries, uint64(len(d.b))))
	prev := ""
	for i := uint64(0); i < n && d.err == nil; i++ {
		var e Entry
		e.Name = string(d.bytes("name", int(d.uvarint("name length", maxNameLen))))
		if d.err != nil {
			break
		}
		if err := CheckName(e.Name); err != nil {
			d.fail("entry %d: %v", i, err)
			break
		}
		if i > 0 && e.Name <= prev {
			d.fail("entry %q is not after %q: names must be sorted and unique", e.Name, prev)
			break
		}
		prev = e.Name
		kind := d.bytes("kind", 1)
		if d.err != nil {
			break
		}
		e.Kind = Kind(kind[0])
		e.Mode = uint32(d.uvarint("mode", 0o7777))
		switch e.Kind {
		case KindFile, KindDir:
			e.ID = d.id("object ID")
		case KindSymlink:
			e.Target = string(d.bytes("link target", int(d.uvarint("link target length", maxTargetLen))))
			if d.err == nil && (e.Target == "" || strings.IndexByte(e.Target, 0) >= 0) {
				d.fail("entry %q: bad link target", e.Name)
			}
		default:
			d.fail("entry %q: unknown kind %q", e.Name, kind[0])
		}
		t.Entries = append(t.Entries, e)
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return t, nil
}

// CheckName reports whether name can be one component of a path: not empty, not . or ..,
// without /, at most 255 bytes, valid UTF-8 without control characters (C0, DEL, C1: a
// newline or an escape sequence in a name would forge lines in listings and logs, or drive
// the terminal that shows them). Every name from a tree goes through it before use.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q is not allowed", name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("name %q contains /", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("name %q is longer than %d bytes", name[:32]+"…", maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("name %q contains a control character", name)
	}
	return nil
}

// objectKind tells a file object's encoding from a tree's.
func objectKind(b []byte) (string, error) {
	switch {
	case bytes.HasPrefix(b, fileMagic):
		return "file", nil
	case bytes.HasPrefix(b, treeMagic):
		return "tree", nil
	}
	return "", fmt.Errorf("%w: unknown object type", ErrMalformed)
}
