package store

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
)

// writeAtomic writes the file p, with permissions perm, through a temporary file in its
// directory: written (buffered), flushed to disk, then renamed over p, so that p is always
// either its old or its new content. The caller flushes the directory (syncDir) when the
// rename must be durable. Chunks and objects have their own path (Store.writeFile), which
// creates shards and can defer the directory flush.
func writeAtomic(p string, perm fs.FileMode, write func(*bufio.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
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
	return os.Rename(f.Name(), p)
}
