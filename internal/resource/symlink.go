package resource

import (
	"context"
	"fmt"
	"path"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Symlink manages a symbolic link.
type Symlink struct {
	base
	Path   string `attr:"path" required:"true" format:"path" doc:"Absolute path of the link."`
	Target string `attr:"target" doc:"What the link points to, stored as written (absolute or relative). Required when present."`
	Ensure string `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the link exists and points to target; absent: a link at the path is removed."`
	Force  bool   `attr:"force" default:"false" doc:"Replace a directory found at the path (its content is removed). Files and other links are always replaced."`
}

var symlinkDef = definition{
	name:     "symlink",
	doc:      "A symbolic link pointing to a target.",
	pathAttr: "path",
	ownsPath: true,
	proto:    (*Symlink)(nil),
	check:    requireWhenPresent("target", "a symlink that is present needs a target."),
}

// CheckApply implements Resource.
func (s *Symlink) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	info, err := current(env, s.Path)
	if err != nil {
		return res, err
	}
	if s.Ensure == "absent" {
		if info == nil {
			return res, nil
		}
		if !info.IsSymlink() {
			return res, fmt.Errorf("%s is a %s, not a symlink; manage it with a %s resource", env.Root.HostPath(s.Path), kindOf(info), kindOf(info))
		}
		res.Add("ensure", "present", "absent")
		if apply {
			return res, removeDurably(env.Root, s.Path)
		}
		return res, nil
	}
	var parents []string
	switch {
	case info == nil:
		res.Add("ensure", "absent", "present")
		if parents, err = addParents(env, s.Path, res); err != nil {
			return res, err
		}
	case info.IsDir() && !s.Force:
		return res, fmt.Errorf("%s is a directory; set force = true to replace it with a symlink", env.Root.HostPath(s.Path))
	case !info.IsSymlink():
		res.Add("type", kindOf(info), "symlink")
	default:
		current, err := env.Root.Readlink(s.Path)
		if err != nil {
			return res, err
		}
		if current != s.Target {
			res.Add("target", current, s.Target)
		}
	}
	if !apply || !res.Changed() {
		return res, nil
	}
	if err := makeParents(env, parents); err != nil {
		return res, err
	}
	return res, s.replace(env, info)
}

// replace puts the link in place atomically: a new link under a temporary name, renamed
// over whatever is at the path (a directory is removed first, after backing up its files).
func (s *Symlink) replace(env *Env, info *fsroot.Info) error {
	if info != nil && info.IsDir() {
		if err := walk(env.Root, s.Path, func(p string, fi *fsroot.Info) error {
			if fi.IsRegular() {
				return saveBackup(env, p, fi, "removed by "+s.address+" (force)")
			}
			return nil
		}); err != nil {
			return err
		}
		if err := env.Root.RemoveAll(s.Path); err != nil {
			return err
		}
	} else if info != nil && info.IsRegular() {
		if err := saveBackup(env, s.Path, info, "replaced by "+s.address); err != nil {
			return err
		}
	}
	dir := path.Dir(s.Path)
	f, tmp, err := env.Root.CreateTemp(dir, path.Base(s.Path))
	if err != nil {
		return err
	}
	_ = f.Close()
	if err := env.Root.Remove(tmp); err != nil {
		return err
	}
	if err := env.Root.Symlink(s.Target, tmp); err != nil {
		return err
	}
	if err := env.Root.Rename(tmp, s.Path); err != nil {
		_ = env.Root.Remove(tmp)
		return err
	}
	return env.Root.SyncDir(dir)
}

var _ Resource = (*Symlink)(nil)
