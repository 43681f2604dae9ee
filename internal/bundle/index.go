package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Format names the index format and its version.
const Format = "satchel.bundle/v1"

// IndexFile is the index's name in a bundle's directory.
const IndexFile = "satchel-bundle.json"

// ReturnsDir is where nodes write what they carry back.
const ReturnsDir = "returns"

// PartSize is the size of each part of a file split for FAT32 (whose files stay under
// 4 GiB). A variable so that tests can split small files.
var PartSize int64 = 1 << 30

// ReceivedListed is how many of a node's newest reports an index lists as received.
const ReceivedListed = 200

// MaxIndexBytes bounds a signed index (a bundle for a whole route of schools lists a few
// thousand files).
const MaxIndexBytes = 64 << 20

// tops are the directories a bundle's files may be in: the repository's.
var tops = map[string]bool{"metadata": true, "targets": true, "store": true, "secrets": true}

// Index is what a bundle holds and for whom.
type Index struct {
	Format  string    `json:"format"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Release is the release the bundle carries.
	Release uint64 `json:"release"`
	// Nodes are the nodes it was made for: their secrets and deltas are on it.
	Nodes []string `json:"nodes"`
	// Roots are the trees the release's nodes need (its config and content trees): a node
	// the bundle was not made for takes what it can of them.
	Roots []string `json:"roots,omitempty"`
	// Received is, by node, the reports the office holds of it (spool entry names, the
	// newest ReceivedListed): the node need not keep them any longer.
	Received map[string][]string `json:"received,omitempty"`
	// Files are the bundle's files but the index and returns/.
	Files []File `json:"files"`

	signedSum string // the SHA-256 of the signed index it was read from (OpenIndex)
}

// stageKey identifies the bundle for a resumed Stage: its ID, and which signed index.
func (ix *Index) stageKey() string { return ix.ID + "/" + ix.signedSum }

// File is one file of a bundle.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the bundle's directory
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Parts: the file is on the stick as Path.000, Path.001, …, of PartSize bytes but the
	// last, each with its own hash. Empty: the file is on the stick as Path.
	Parts []Part `json:"parts,omitempty"`
}

// Part is one part of a split file.
type Part struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PartPath is the name of a split file's part i on the stick.
func PartPath(path string, i int) string { return fmt.Sprintf("%s.%03d", path, i) }

// Size is the bytes the bundle's files take (the index aside).
func (ix *Index) Size() int64 {
	var n int64
	for _, f := range ix.Files {
		n += f.Size
	}
	return n
}

// For reports whether the bundle was made for node.
func (ix *Index) For(node string) bool {
	for _, n := range ix.Nodes {
		if n == node {
			return true
		}
	}
	return false
}

// Check reports what is wrong with an index: its format, a path that could lead out of
// the bundle or is outside the repository's directories, a file listed twice, a size or
// hash that cannot be.
func (ix *Index) Check() error {
	if ix.Format != Format {
		return fmt.Errorf("bundle index: format %q, want %q (a newer satchel made it?)", ix.Format, Format)
	}
	if ix.ID == "" || !fs.ValidPath(ix.ID) || strings.Contains(ix.ID, "/") {
		return fmt.Errorf("bundle index: ID %q", ix.ID)
	}
	if ix.Release == 0 {
		return errors.New("bundle index: no release")
	}
	seen := map[string]bool{}
	for _, f := range ix.Files {
		if err := f.check(); err != nil {
			return fmt.Errorf("bundle index: %w", err)
		}
		// FAT does not tell case apart, and a split file's parts are names on the stick.
		names := []string{f.Path}
		for i := range f.Parts {
			names = append(names, PartPath(f.Path, i))
		}
		for _, name := range names {
			key := strings.ToLower(name)
			if seen[key] {
				return fmt.Errorf("bundle index: %s listed twice", name)
			}
			seen[key] = true
		}
	}
	return nil
}

func (f File) check() error {
	top, _, inside := strings.Cut(f.Path, "/")
	if !fs.ValidPath(f.Path) || !inside || !tops[top] || strings.Contains(f.Path, "\\") {
		return fmt.Errorf("file %q: not a path inside metadata/, targets/, store/ or secrets/", f.Path)
	}
	for _, elem := range strings.Split(f.Path, "/") {
		if strings.HasPrefix(elem, ".") {
			return fmt.Errorf("file %q: a hidden name", f.Path)
		}
	}
	if f.Size < 0 || !isHash(f.SHA256) {
		return fmt.Errorf("file %s: size %d, SHA-256 %q", f.Path, f.Size, f.SHA256)
	}
	if len(f.Parts) == 0 {
		return nil
	}
	var sum int64
	for i, p := range f.Parts {
		if p.Size <= 0 || !isHash(p.SHA256) || p.Size > f.Parts[0].Size || (i < len(f.Parts)-1 && p.Size != f.Parts[0].Size) {
			return fmt.Errorf("file %s: part %d: size %d, SHA-256 %q", f.Path, i, p.Size, p.SHA256)
		}
		sum += p.Size
	}
	if sum != f.Size || len(f.Parts) > 999 {
		return fmt.Errorf("file %s: %d parts of %d bytes in all, for a file of %d", f.Path, len(f.Parts), sum, f.Size)
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// decodeIndex decodes and checks an index's JSON.
func decodeIndex(data []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("bundle index: %w", err)
	}
	if err := ix.Check(); err != nil {
		return nil, err
	}
	return &ix, nil
}

// Describe reads a file's content from r and returns its entry in an index, split into
// parts if it is larger than PartSize.
func Describe(path string, r io.Reader) (File, error) {
	f := File{Path: path}
	whole := sha256.New()
	for {
		part := sha256.New()
		n, err := io.Copy(io.MultiWriter(whole, part), io.LimitReader(r, PartSize))
		if err != nil {
			return File{}, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 && f.Size > 0 {
			break
		}
		f.Size += n
		f.Parts = append(f.Parts, Part{Size: n, SHA256: hex.EncodeToString(part.Sum(nil))})
		if n < PartSize {
			break
		}
	}
	f.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if len(f.Parts) == 1 {
		f.Parts = nil
	}
	return f, nil
}
