package resource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/satchelcm/satchel/internal/fsroot"
)

// Directory manages a directory: its existence, mode, owner and group, and optionally that
// nothing unmanaged lives below it.
type Directory struct {
	base
	Path   string  `attr:"path" required:"true" format:"path" doc:"Absolute path of the directory."`
	Ensure string  `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the directory exists; absent: it is removed (only if empty, unless force is set)."`
	Mode   *string `attr:"mode" format:"mode" doc:"Permission bits in octal, e.g. \"0755\". Unset: new directories get 0755 and existing ones keep theirs."`
	Owner  *string `attr:"owner" format:"account" refers:"user" doc:"Owning user (name or uid). Unset: not managed."`
	Group  *string `attr:"group" format:"account" refers:"group" doc:"Owning group (name or gid). Unset: not managed."`
	Purge  bool    `attr:"purge" default:"false" doc:"Remove everything below the directory that this catalog does not manage (removed files are backed up)."`
	Force  bool    `attr:"force" default:"false" doc:"With ensure = absent, remove the directory and all its content; with present, replace a file or symlink found at the path."`
}

var directoryDef = definition{
	name:     "directory",
	doc:      "A directory with the given mode and owner; can purge what the catalog does not manage.",
	pathAttr: "path",
	ownsPath: true,
	proto:    (*Directory)(nil),
}

// CheckApply implements Resource.
func (d *Directory) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	info, err := current(env, d.Path)
	if err != nil {
		return res, err
	}
	if d.Ensure == "absent" {
		return res, d.remove(env, info, res, apply)
	}
	own, err := resolveOwnership(env, d.Mode, d.Owner, d.Group)
	if err != nil {
		return res, err
	}
	var parents []string
	switch {
	case info == nil:
		res.Add("ensure", "absent", "present")
		if parents, err = addParents(env, d.Path, res); err != nil {
			return res, err
		}
	case !info.IsDir() && !d.Force:
		return res, fmt.Errorf("%s is a %s, not a directory; set force = true to replace it", env.Root.HostPath(d.Path), kindOf(info))
	case !info.IsDir():
		res.Add("type", kindOf(info), "directory")
	default:
		own.diff(env, info, res)
	}
	var purge []string
	if d.Purge && info != nil && info.IsDir() {
		if purge, err = d.unmanaged(env); err != nil {
			return res, err
		}
		if len(purge) > 0 {
			res.Add("purge", strings.Join(purge, ", "), "(removed)")
		}
	}
	if !apply || !res.Changed() {
		return res, nil
	}
	if info != nil && !info.IsDir() {
		if info.IsRegular() {
			if err := saveBackup(env, d.Path, info, "replaced by "+d.address); err != nil {
				return res, err
			}
		}
		if err := removeDurably(env.Root, d.Path); err != nil {
			return res, err
		}
		info = nil
	}
	if info == nil {
		if err := makeParents(env, parents); err != nil {
			return res, err
		}
		mode, uid, gid := own.forNew(nil, 0o755)
		if err := env.Root.Mkdir(d.Path, 0o700); err != nil {
			return res, err
		}
		fresh, err := env.Root.Lstat(d.Path)
		if err != nil {
			return res, err
		}
		if err := (&ownership{mode: &mode, uid: ptrIf(uid), gid: ptrIf(gid)}).fix(env, d.Path, fresh); err != nil {
			return res, err
		}
		return res, env.Root.SyncDir(path.Dir(d.Path))
	}
	if err := own.fix(env, d.Path, info); err != nil {
		return res, err
	}
	for _, p := range purge {
		if err := d.purgeOne(env, p); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (d *Directory) remove(env *Env, info *fsroot.Info, res *Result, apply bool) error {
	if info == nil {
		return nil
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is a %s, not a directory; manage it with a %s resource", env.Root.HostPath(d.Path), kindOf(info), kindOf(info))
	}
	names, err := env.Root.ReadDir(d.Path)
	if err != nil {
		return err
	}
	if len(names) > 0 && !d.Force {
		return fmt.Errorf("%s is not empty (%d entries); set force = true to remove it with its content", env.Root.HostPath(d.Path), len(names))
	}
	res.Add("ensure", "present", "absent")
	if !apply {
		return nil
	}
	if err := walk(env.Root, d.Path, func(p string, fi *fsroot.Info) error {
		if fi.IsRegular() {
			return saveBackup(env, p, fi, "removed by "+d.address)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := env.Root.RemoveAll(d.Path); err != nil {
		return err
	}
	return env.Root.SyncDir(path.Dir(d.Path))
}

// unmanaged lists the top-most entries below the directory that the catalog does not
// manage and that contain nothing it manages.
func (d *Directory) unmanaged(env *Env) ([]string, error) {
	var out []string
	var visit func(dir string) error
	visit = func(dir string) error {
		names, err := env.Root.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			p := path.Join(dir, n)
			switch {
			case env.Managed.Has(p):
				info, err := env.Root.Lstat(p)
				if err != nil {
					return err
				}
				if info.IsDir() {
					if err := visit(p); err != nil {
						return err
					}
				}
			case env.Managed.HasBelow(p):
				if err := visit(p); err != nil {
					return err
				}
			default:
				out = append(out, p)
			}
		}
		return nil
	}
	return out, visit(d.Path)
}

// purgeOne removes an unmanaged entry, backing up the regular files in it.
func (d *Directory) purgeOne(env *Env, p string) error {
	info, err := env.Root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	reason := "purged by " + d.address
	if info.IsRegular() {
		if err := saveBackup(env, p, info, reason); err != nil {
			return err
		}
	} else if info.IsDir() {
		if err := walk(env.Root, p, func(q string, fi *fsroot.Info) error {
			if fi.IsRegular() {
				return saveBackup(env, q, fi, reason)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err := env.Root.RemoveAll(p); err != nil {
		return err
	}
	return env.Root.SyncDir(path.Dir(p))
}

func ptrIf(id int) *int {
	if id < 0 {
		return nil
	}
	return &id
}

var _ Resource = (*Directory)(nil)
