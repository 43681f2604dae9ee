package bundle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// Source reads the files a bundle is made of (the office's repository): length bytes of
// path from offset.
type Source interface {
	Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)
}

// SourceFunc is a Source that is a function (an admin connection's RepoFile).
type SourceFunc func(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)

// Open calls f.
func (f SourceFunc) Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error) {
	return f(ctx, path, offset, length)
}

// OpenRange opens length bytes of the local file name from offset, as a Source's Open
// returns them: for Sources that read a bundle's files from a disk.
func OpenRange(name string, offset, length int64) (io.ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// WriteOptions are the options of Write.
type WriteOptions struct {
	// Progress is told the bytes in place so far and the bundle's total after each file
	// or part; may be nil.
	Progress func(done, total int64)
}

// piece is one file as it is on the stick: a whole file, or one part of a split one.
type piece struct {
	name         string // on the stick
	path         string // the source file
	offset, size int64
	sha256       string
}

func (ix *Index) pieces() []piece {
	var out []piece
	for _, f := range ix.Files {
		if len(f.Parts) == 0 {
			out = append(out, piece{name: f.Path, path: f.Path, size: f.Size, sha256: f.SHA256})
			continue
		}
		var off int64
		for i, p := range f.Parts {
			out = append(out, piece{name: PartPath(f.Path, i), path: f.Path, offset: off, size: p.Size, sha256: p.SHA256})
			off += p.Size
		}
	}
	return out
}

// Missing is the bytes Write still has to write into dir: the pieces not there whole
// (a piece of the right size is counted as there; Write checks its hash).
func (ix *Index) Missing(dir string) int64 {
	var n int64
	for _, p := range ix.pieces() {
		if info, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p.name))); err != nil || !info.Mode().IsRegular() || info.Size() != p.size {
			n += p.size
		}
	}
	return n
}

// Write writes the bundle ix, signed as signedIndex, into dir from src. The index is
// removed first and written last, so that a bundle being written is never taken for a
// finished one; each piece is written under a temporary name, read back and checked
// against the index (cheap sticks lose writes), then renamed. A piece already in dir that
// checks out is kept: running Write again after an interruption resumes it. At the end,
// files of the repository's directories that the index does not list (an earlier
// bundle's) are removed; returns/ is left alone.
//
// Everything is done through an os.Root on dir, creating files without following links:
// a stick that comes back from the field with a link or a FIFO in its repository
// directories (which an import would refuse anyway) is refused before anything is
// written, and no name on it leads a write out of it.
func Write(ctx context.Context, dir string, ix *Index, signedIndex []byte, src Source, opts WriteOptions) error {
	if err := ix.Check(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("bundle directory: %w", err)
	}
	defer root.Close()
	if err := scan(root); err != nil {
		return fmt.Errorf("%s holds what no bundle does (%w): empty it first", dir, err)
	}
	if err := root.Remove(IndexFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the old index: %w", err)
	}
	total, done := ix.Size(), int64(0)
	report := func() {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	report()
	for _, p := range ix.pieces() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if checkPiece(root, p.name, p) == nil {
			done += p.size
			report()
			continue
		}
		if err := writePiece(ctx, root, p, src); err != nil {
			return err
		}
		done += p.size
		report()
	}
	if err := writeFileIn(root, IndexFile, signedIndex); err != nil {
		return fmt.Errorf("write the index: %w", err)
	}
	return removeUnlisted(root, ix)
}

// createNew creates name in root for writing: a file of that name is removed first (a
// link itself, not what it points to), and the new one is made without following links.
func createNew(root *os.Root, name string) (*os.File, error) {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
}

// tempName is a hidden name beside name: never one an index lists.
func tempName(name string) string {
	return path.Join(path.Dir(name), "."+path.Base(name)+".partial")
}

func writePiece(ctx context.Context, root *os.Root, p piece, src Source) error {
	if err := root.MkdirAll(path.Dir(p.name), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	tmp := tempName(p.name)
	out, err := createNew(root, tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	err = func() error {
		defer out.Close()
		in, err := src.Open(ctx, p.path, p.offset, p.size)
		if err != nil {
			return err
		}
		defer in.Close()
		n, err := io.Copy(out, io.LimitReader(in, p.size))
		if err != nil {
			return fmt.Errorf("copy %s: %w", p.path, err)
		}
		if n != p.size {
			return fmt.Errorf("copy %s: %d bytes, want %d", p.path, n, p.size)
		}
		return out.Sync()
	}()
	if err == nil {
		err = checkPiece(root, tmp, p)
	}
	if err == nil {
		err = root.Rename(tmp, p.name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("write %s: %w", p.name, err)
	}
	return nil
}

// checkPiece reads name back and checks it against the piece the index describes.
func checkPiece(root *os.Root, name string, want piece) error {
	f, _, err := openRegular(root, name)
	if err != nil {
		return err
	}
	defer f.Close()
	if !matches(f, want.size, want.sha256) {
		return fmt.Errorf("%s: read back, it does not match what was written (a failing stick?)", want.name)
	}
	return nil
}

// matches reports whether r holds exactly size bytes whose SHA-256 is sum.
func matches(r io.Reader, size int64, sum string) bool {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, size+1))
	return err == nil && n == size && hashIs(h, sum)
}

func removeUnlisted(root *os.Root, ix *Index) error {
	keep := map[string]bool{}
	for _, p := range ix.pieces() {
		keep[p.name] = true
	}
	for top := range tops {
		err := fs.WalkDir(root.FS(), top, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == top {
				return fs.SkipDir
			}
			if err != nil || d.IsDir() {
				return err
			}
			if !keep[p] {
				return root.Remove(p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("remove an earlier bundle's files: %w", err)
		}
	}
	return nil
}

// Pieces lists the names a bundle's files have on the stick, parts included.
func (ix *Index) Pieces() []string {
	var out []string
	for _, p := range ix.pieces() {
		out = append(out, p.name)
	}
	return out
}

// WriteFile writes data to path on a stick whole or not at all: a temporary file beside
// it, created without following links, flushed, then renamed over it. Unlike package
// atomicfile it sets no permissions, and a directory that cannot be flushed is not an
// error: FAT has neither.
func WriteFile(path string, data []byte) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer root.Close()
	if err := writeFileIn(root, filepath.Base(path), data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileIn writes data to name in root as WriteFile does.
func writeFileIn(root *os.Root, name string, data []byte) error {
	tmp := tempName(name)
	f, err := createNew(root, tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return err
	}
	if d, err := root.Open(path.Dir(name)); err == nil {
		_ = d.Sync() // FAT through FUSE may not flush directories: the rename stands
		d.Close()
	}
	return nil
}
