// Package atomicfile writes a file so that whoever reads it, and whatever a crash leaves
// behind, sees its old content or its new one, never a mix: the content goes to a
// temporary file in the same directory (named ".tmp-*", so that whoever owns the directory
// can recognise and remove leftovers), which is flushed to disk and renamed over the file;
// then the directory is flushed, so the rename itself survives a crash.
package atomicfile

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file Write creates.
const TempPrefix = ".tmp-"

// Write writes path, with permissions perm, from what write puts into a buffered writer.
// If write or anything after it fails, path keeps its old content (or stays absent) and
// the temporary file is removed.
func Write(path string, perm fs.FileMode, write func(*bufio.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = write(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteBytes writes data to path as Write does.
func WriteBytes(path string, perm fs.FileMode, data []byte) error {
	return Write(path, perm, func(w *bufio.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
