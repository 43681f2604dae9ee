package resource

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"syscall"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// current describes what is at p now: nil if nothing is. When p cannot exist because an
// ancestor is not a directory, the error names that ancestor.
func current(env *Env, p string) (*fsroot.Info, error) {
	info, err := env.Root.Lstat(p)
	switch {
	case err == nil:
		return info, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, syscall.ENOTDIR):
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if di, derr := env.Root.Lstat(d); derr == nil && !di.IsDir() && !di.IsSymlink() {
				return nil, fmt.Errorf("%s cannot exist: %s is a %s, not a directory", env.Root.HostPath(p), env.Root.HostPath(d), kindOf(di))
			}
		}
	}
	return nil, fmt.Errorf("inspect %s: %w", env.Root.HostPath(p), err)
}
