package resource

import (
	"fmt"
	"io/fs"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/schema"
)

// ownership is the mode, owner and group a file or directory should have; nil fields are
// not managed.
type ownership struct {
	mode  *fs.FileMode
	uid   *int
	gid   *int
	owner string
	group string
}

// resolveOwnership turns the attributes into ids, inside the root.
func resolveOwnership(env *Env, mode, owner, group *string) (*ownership, error) {
	o := &ownership{}
	if mode != nil {
		m, err := schema.ParseMode(*mode)
		if err != nil {
			return nil, err
		}
		fm := modeFromUnix(m)
		o.mode = &fm
	}
	if owner != nil {
		uid, err := env.Accounts.UID(*owner)
		if err != nil {
			return nil, err
		}
		o.uid, o.owner = &uid, *owner
	}
	if group != nil {
		gid, err := env.Accounts.GID(*group)
		if err != nil {
			return nil, err
		}
		o.gid, o.group = &gid, *group
	}
	return o, nil
}

// modeFromUnix converts 0o7777-style bits to an fs.FileMode.
func modeFromUnix(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// permBits keeps the permission and special bits of a mode.
func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// formatMode renders a mode as four octal digits.
func formatMode(m fs.FileMode) string {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return fmt.Sprintf("%04o", u)
}

// diff records how the existing entry differs from o.
func (o *ownership) diff(env *Env, info *fsroot.Info, res *Result) {
	if o.mode != nil && permBits(info.Mode) != *o.mode {
		res.Add("mode", formatMode(permBits(info.Mode)), formatMode(*o.mode))
	}
	if o.uid != nil && info.UID != *o.uid {
		res.Add("owner", env.Accounts.UserName(info.UID), o.owner)
	}
	if o.gid != nil && info.GID != *o.gid {
		res.Add("group", env.Accounts.GroupName(info.GID), o.group)
	}
}

// fix converges the owner, group and mode of the existing entry p.
func (o *ownership) fix(env *Env, p string, info *fsroot.Info) error {
	if (o.uid != nil && info.UID != *o.uid) || (o.gid != nil && info.GID != *o.gid) {
		uid, gid := -1, -1
		if o.uid != nil {
			uid = *o.uid
		}
		if o.gid != nil {
			gid = *o.gid
		}
		if err := env.Root.Lchown(p, uid, gid); err != nil {
			return err
		}
		// chown may clear setuid/setgid bits: look again before deciding about the mode.
		fresh, err := env.Root.Lstat(p)
		if err != nil {
			return err
		}
		info = fresh
	}
	if o.mode != nil && permBits(info.Mode) != *o.mode {
		return env.Root.Chmod(p, *o.mode)
	}
	return nil
}

// forNew returns the mode, uid and gid for a new entry: the desired ones, else those of the
// entry it replaces, else def and the process's own ids.
func (o *ownership) forNew(old *fsroot.Info, def fs.FileMode) (fs.FileMode, int, int) {
	mode, uid, gid := def, -1, -1
	if old != nil {
		mode, uid, gid = permBits(old.Mode), old.UID, old.GID
	}
	if o.mode != nil {
		mode = *o.mode
	}
	if o.uid != nil {
		uid = *o.uid
	}
	if o.gid != nil {
		gid = *o.gid
	}
	return mode, uid, gid
}
