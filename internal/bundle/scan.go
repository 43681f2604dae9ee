package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// scan refuses a bundle whose repository directories hold what no export writes and a
// FAT stick cannot hold: a symbolic link, a name beginning with "..", a device or a FIFO.
// Such a stick was made by hand to trick a reader; other files the index does not list
// (an operating system's own, such as "._x" or ".Trashes") are left alone and never read.
func scan(root *os.Root) error {
	for top := range tops {
		if info, err := root.Lstat(top); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: a symbolic link (no export writes one): %w", top, ErrDamaged)
		}
		err := fs.WalkDir(root.FS(), top, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == top {
				return fs.SkipDir
			}
			if err != nil {
				return err
			}
			switch {
			case strings.HasPrefix(d.Name(), ".."):
				return fmt.Errorf("%s: a name beginning with \"..\": %w", p, ErrDamaged)
			case d.Type()&fs.ModeSymlink != 0:
				return fmt.Errorf("%s: a symbolic link (no export writes one): %w", p, ErrDamaged)
			case !d.IsDir() && !d.Type().IsRegular():
				return fmt.Errorf("%s: not a regular file (%s): %w", p, d.Type(), ErrDamaged)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
