// Package dirtar carries a directory — a config repository sent to satchel server for
// release — as a gzipped tar, and unpacks one that arrived from the network without
// letting it write anywhere else.
//
// # Model
//
// Pack writes directories and regular files only, with relative slash-separated names
// and the executable bit as the only permission kept; a symbolic link, a device or any
// other kind of file is an error naming it, since a config repository needs none and the
// other end would refuse it. Unpack is the strict reader: every name must be a clean
// relative path (fs.ValidPath: no "..", no leading "/", no empty element), only
// directories and regular files are accepted, and the total size and the number of
// entries are capped; it writes through an os.Root opened at the destination, so nothing
// it writes can land outside it, and any refusal leaves what was written for the caller
// to remove with the destination.
package dirtar

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Limits of Unpack.
type Limits struct {
	MaxBytes   int64 // total size of the files
	MaxEntries int   // files and directories
}

// DefaultLimits are generous for a config repository (large content ships as content
// trees, not in the config).
var DefaultLimits = Limits{MaxBytes: 256 << 20, MaxEntries: 100_000}

// Pack writes dir to w as a gzipped tar.
func Pack(w io.Writer, dir string) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
		case info.Mode().IsRegular():
			mode := int64(0o644)
			if info.Mode()&0o100 != 0 {
				mode = 0o755
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size()}); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := io.Copy(tw, f)
			if err == nil && n != info.Size() {
				err = fmt.Errorf("%s changed while it was read", p)
			}
			return err
		default:
			return fmt.Errorf("%s is a %s: a config repository sent for release holds only directories and regular files", p, kind(info.Mode()))
		}
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// ErrRefused is wrapped by every error about the archive's content (as opposed to the
// destination's).
var ErrRefused = errors.New("archive refused")

// Unpack reads a gzipped tar from r into dir, an existing empty directory.
func Unpack(r io.Reader, dir string, lim Limits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: not gzip: %v", ErrRefused, err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		if entries >= lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrRefused, lim.MaxEntries)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." || strings.Contains(name, "\\") {
			return fmt.Errorf("%w: entry %q is not a clean relative path", ErrRefused, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			total += h.Size
			if h.Size < 0 || total > lim.MaxBytes {
				return fmt.Errorf("%w: more than %d bytes", ErrRefused, lim.MaxBytes)
			}
			if d := filepath.Dir(filepath.FromSlash(name)); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			perm := fs.FileMode(0o644)
			if h.Mode&0o100 != 0 {
				perm = 0o755
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrRefused, err)
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: entry %q is not a directory or a regular file", ErrRefused, h.Name)
		}
	}
}
