package bundle

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/satchelcm/satchel/internal/atomicfile"
)

// ReadIndex reads and checks the signed index of the bundle in dir (OpenIndex).
func ReadIndex(dir, caFingerprint string) (*Index, *x509.Certificate, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer root.Close()
	f, _, err := openRegular(root, IndexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("bundle %s: no %s: not a bundle, or its export did not finish (run it again): %w", dir, IndexFile, fs.ErrNotExist)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxIndexBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: read %s: %w", dir, IndexFile, err)
	}
	if len(data) > MaxIndexBytes {
		return nil, nil, fmt.Errorf("bundle %s: %s is over %d bytes: %w", dir, IndexFile, MaxIndexBytes, ErrDamaged)
	}
	ix, signer, err := OpenIndex(data, caFingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	return ix, signer, nil
}

// openRegular opens name in root if it is a regular file, without following a link at
// its end and without blocking (a FIFO is refused, not waited on).
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	rel := filepath.FromSlash(name)
	if info, err := root.Lstat(rel); err != nil {
		return nil, nil, linkOut(name, err)
	} else if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file (%s): %w", name, info.Mode().Type(), ErrDamaged)
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, linkOut(name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file (%s): %w", name, info.Mode().Type(), ErrDamaged)
	}
	return f, info, nil
}

// linkOut names an error opening a bundle's file: missing, or a path through a link out
// of the bundle (os.Root refuses it).
func linkOut(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing from the bundle: %w", name, errors.Join(ErrDamaged, fs.ErrNotExist))
	}
	return fmt.Errorf("%s: %v (a link out of the bundle?): %w", name, err, ErrDamaged)
}

// StageOptions are the options of Stage.
type StageOptions struct {
	// Progress is told the bytes copied so far (those kept from an earlier, interrupted
	// Stage included) and the bundle's total, after each file or part; may be nil.
	Progress func(done, total int64)
}

// stageState is what Stage keeps in the staging directory to resume: the bundle (its ID
// and the hash of its signed index: an ID is only a name), and the files (or parts)
// copied and verified so far.
type stageState struct {
	Bundle string         `json:"bundle"`
	Done   map[string]int `json:"done"` // path → parts verified (1 for a file in one piece)
}

// stageStateFile is the staging directory's state; its name is not a repository's.
const stageStateFile = ".staged.json"

// Stage copies the files of ix from the bundle in dir into stageDir (first refusing a
// bundle that holds a symbolic link or a name beginning with ".." anywhere in its
// repository directories), checking each against
// the index as it is copied and joining split files, so that stageDir becomes a verified
// partial repository the node can read as any repository directory. A staging of the same
// bundle that was cut (the stick pulled out, the node stopped) is resumed: what it had
// verified is kept. A staging directory holding another bundle's files is emptied first.
// An error wraps ErrDamaged when the stick is at fault.
func Stage(ctx context.Context, dir string, ix *Index, stageDir string, opts StageOptions) error {
	if err := ix.Check(); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer root.Close()
	if err := scan(root); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	st, err := startStage(stageDir, ix.stageKey())
	if err != nil {
		return err
	}
	total, done := ix.Size(), int64(0)
	for _, f := range ix.Files {
		done += f.doneBytes(st.Done[f.Path])
	}
	if free, err := FreeSpace(stageDir); err == nil && free < total-done {
		return fmt.Errorf("the bundle needs %d more bytes in %s, and %d are free: free some space", total-done, stageDir, free)
	}
	report := func() {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	report()
	for _, f := range ix.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if st.Done[f.Path] == f.pieces() {
			continue
		}
		err := stageFile(ctx, root, f, stageDir, st.Done[f.Path], func(parts int, n int64) error {
			st.Done[f.Path] = parts
			done += n
			report()
			return saveStage(stageDir, st)
		})
		if err != nil {
			return fmt.Errorf("bundle %s: %w", dir, err)
		}
	}
	return nil
}

// pieces is how many pieces a file is on the stick.
func (f File) pieces() int { return max(1, len(f.Parts)) }

// doneBytes is the size of the file's first n pieces.
func (f File) doneBytes(n int) int64 {
	if len(f.Parts) == 0 {
		if n >= 1 {
			return f.Size
		}
		return 0
	}
	var sum int64
	for _, p := range f.Parts[:min(n, len(f.Parts))] {
		sum += p.Size
	}
	return sum
}

func startStage(stageDir, id string) (*stageState, error) {
	var st stageState
	data, err := os.ReadFile(filepath.Join(stageDir, stageStateFile))
	if err == nil && json.Unmarshal(data, &st) == nil && st.Bundle == id && st.Done != nil {
		return &st, nil
	}
	if err := os.RemoveAll(stageDir); err != nil {
		return nil, fmt.Errorf("empty the staging directory: %w", err)
	}
	if err := os.MkdirAll(stageDir, 0o700); err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	st = stageState{Bundle: id, Done: map[string]int{}}
	return &st, saveStage(stageDir, &st)
}

func saveStage(stageDir string, st *stageState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(stageDir, stageStateFile), 0o600, data)
}

// stageFile copies f's pieces from done on into stageDir, calling saved after each piece
// is written, flushed and verified.
func stageFile(ctx context.Context, root *os.Root, f File, stageDir string, done int, saved func(parts int, n int64) error) error {
	dst := filepath.Join(stageDir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if len(f.Parts) == 0 {
		tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp") // hidden: never a listed name
		out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = copyPiece(ctx, root, f.Path, f.Size, f.SHA256, out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, dst)
		}
		if err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return saved(1, f.Size)
	}
	// A split file is joined in place: cut back to the parts verified, then appended to.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	offset := f.doneBytes(done)
	if err := out.Truncate(offset); err != nil {
		return err
	}
	if _, err := out.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	for i := done; i < len(f.Parts); i++ {
		p := f.Parts[i]
		if err := copyPiece(ctx, root, PartPath(f.Path, i), p.Size, p.SHA256, out); err != nil {
			return err
		}
		if err := saved(i+1, p.Size); err != nil {
			return err
		}
	}
	// The whole file, hashed once more from what was written: the parts' hashes do not
	// prove their order.
	if err := checkWhole(dst, f); err != nil {
		// What was joined is not the file: the next Stage copies it again from its first part.
		if serr := saved(0, 0); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	return nil
}

// copyPiece copies name (size bytes, SHA-256 sum) from the stick to out, and flushes it.
func copyPiece(ctx context.Context, root *os.Root, name string, size int64, sum string, out *os.File) error {
	in, info, err := openRegular(root, name)
	if err != nil {
		return err
	}
	defer in.Close()
	if info.Size() != size {
		return fmt.Errorf("%s: %d bytes, the index says %d: %w", name, info.Size(), size, ErrDamaged)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, io.LimitReader(in, size+1)})
	if err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	if n != size || !hashIs(h, sum) {
		return fmt.Errorf("%s: its content does not match the index: %w", name, ErrDamaged)
	}
	return out.Sync()
}

func checkWhole(p string, f File) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	if !matches(in, f.Size, f.SHA256) {
		return fmt.Errorf("%s: its parts, joined, do not match the index: %w", f.Path, ErrDamaged)
	}
	return nil
}

func hashIs(h hash.Hash, sum string) bool {
	return hex.EncodeToString(h.Sum(nil)) == sum
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
