package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// NewDirClient returns a client of the store in the local directory dir (a USB stick, a
// mounted mirror), so that a pull from a directory takes the same path as one over HTTP:
// deltas, byte ranges, verification, resumption. The files are served by net/http's file
// transport from an os.Root on dir, so no name leads out of it (no "..", no symbolic link
// out), and only regular files are opened, without blocking: a FIFO or a device, which
// could stall or never end, is refused. Close releases the directory.
func NewDirClient(dir string) (*Client, func() error, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("store directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("store directory: %w", err)
	}
	// The URLs name the directory, so that messages do; the file system strips it.
	c := &Client{
		BaseURL: &url.URL{Scheme: "file", Path: strings.TrimSuffix(abs, "/") + "/"},
		HTTP:    &http.Client{Transport: http.NewFileTransportFS(regularFS{root, strings.TrimPrefix(abs, "/")})},
	}
	return c, root.Close, nil
}

// regularFS opens only regular files of an os.Root, never blocking on open. Names are
// those of the URLs: the root's directory, then the path inside it.
type regularFS struct {
	root   *os.Root
	prefix string // the directory, without its leading slash
}

func (r regularFS) Open(name string) (fs.File, error) {
	rel, ok := strings.CutPrefix(name, r.prefix+"/")
	if !ok || !fs.ValidPath(rel) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := r.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A link out of the directory, a file we may not read: forbidden, not worth retrying.
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrPermission, err)}
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		// Not found, as the server would say of anything that is not a store's file.
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, fmt.Errorf("not a regular file (%s)", info.Mode().Type()))}
	}
	return f, nil
}
