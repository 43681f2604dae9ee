package resource

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// missingParents returns the ancestors of p that do not exist and that no resource of the
// catalog manages, outermost first. Applying a file, directory or symlink creates them
// (mode 0755, owned by the running user), as `mkdir -p` would, so that a configuration can
// be applied into an empty image directory; the change says so.
func missingParents(env *Env, p string) ([]string, error) {
	var missing []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		info, err := env.Root.Lstat(d)
		if err == nil {
			if info.IsDir() || info.IsSymlink() {
				break
			}
			return nil, &fs.PathError{Op: "create", Path: env.Root.HostPath(p), Err: errors.New(d + " is not a directory")}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if !env.Managed.Has(d) {
			missing = append(missing, d)
		}
	}
	slices.Reverse(missing)
	return missing, nil
}

// addParents records the directories that applying will create above p.
func addParents(env *Env, p string, res *Result) ([]string, error) {
	missing, err := missingParents(env, p)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	res.Add("parents", "absent", strings.Join(missing, ", "))
	return missing, nil
}

// makeParents creates the given directories in order.
func makeParents(env *Env, dirs []string) error {
	for _, d := range dirs {
		if err := env.Root.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := env.Root.Chmod(d, 0o755); err != nil {
			return err
		}
		if err := env.Root.SyncDir(path.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}
