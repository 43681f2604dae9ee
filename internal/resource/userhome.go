package resource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// The home directory and the authorized keys of a user.
//
// A home belongs to its user, who can put a symbolic link anywhere in it (.ssh pointing at
// /root/.ssh) at any moment. So below the home nothing is reached by path: the home is
// opened once (refusing a symlink), and .ssh and authorized_keys are opened, created,
// re-owned and replaced relative to that descriptor, never following a symlink. A new home
// is filled from /etc/skel while it is still root's and private, and given to the user last.

// homeOwner is who should own the home and its files once the account is converged.
type homeOwner struct {
	uid, gid       int // wanted; -1 when only useradd will know (a new account)
	oldUID, oldGID int // the account's ids now (-1 for a new one): usermod re-owns files that have them
	user, group    string
}

// remap returns the ids a file will have once usermod has changed the account's uid and
// gid: it re-owns the files of the home that had the old ones.
func (o *homeOwner) remap(uid, gid int) (int, int) {
	if o.oldUID >= 0 && o.uid >= 0 && uid == o.oldUID {
		uid = o.uid
	}
	if o.oldGID >= 0 && o.gid >= 0 && gid == o.oldGID {
		gid = o.gid
	}
	return uid, gid
}

// is reports whether uid and gid are the wanted ones (never, while one is unknown).
func (o *homeOwner) is(uid, gid int) bool {
	return o.uid >= 0 && o.gid >= 0 && uid == o.uid && gid == o.gid
}

// names renders ids for a change line. The account's old ids are shown as numbers: the
// names still resolve to them, but will not once the account is changed.
func (o *homeOwner) names(db *accountDB, uid, gid int) string {
	un, gn := db.userName(uid), db.groupName(gid)
	switch uid {
	case o.uid:
		un = o.user
	case o.oldUID:
		un = strconv.Itoa(uid)
	}
	switch gid {
	case o.gid:
		gn = o.group
	case o.oldGID:
		gn = strconv.Itoa(gid)
	}
	return un + ":" + gn
}

func (o *homeOwner) String() string { return o.user + ":" + o.group }

// homePlan is what manage_home will do.
type homePlan struct {
	create bool   // create the home from skel
	skel   string // the skeleton directory
}

// planHome records how the home differs from a directory owned by the user. src is where the
// home's content is now (the old home, when usermod is to move it).
func (u *User) planHome(env *Env, db *accountDB, home, src string, own *homeOwner, res *Result) (*homePlan, error) {
	info, err := current(env, src)
	if err != nil {
		return nil, err
	}
	switch {
	case info == nil:
		hp := &homePlan{create: true, skel: skelDir(env)}
		res.Add("home_directory", "absent", fmt.Sprintf("%s, owned by %s (from %s)", u.show("home", home), own, hp.skel))
		if _, err := addParents(env, home, res); err != nil {
			return nil, err
		}
		return hp, nil
	case info.IsSymlink():
		return nil, fmt.Errorf("%s, the home of user %s, is a symbolic link; manage_home needs a directory there (or set manage_home = false)", env.Root.HostPath(src), u.Name)
	case !info.IsDir():
		return nil, fmt.Errorf("%s, the home of user %s, is a %s, not a directory; remove it, or set manage_home = false", env.Root.HostPath(src), u.Name, kindOf(info))
	}
	uid, gid := own.remap(info.UID, info.GID)
	if own.is(uid, gid) {
		return &homePlan{}, nil
	}
	// An existing directory is given to the account only if it is the account's already
	// (its group aside) or is its standard home, /home/NAME (a home that lost its owner):
	// handing over /etc or /srv because a configuration named it as a home would give that
	// user the machine.
	standard := (&User{Name: u.Name}).defaultHome(env)
	if own.uid < 0 || (uid != own.uid && src != standard) {
		return nil, fmt.Errorf("%s, the home of user %s, exists and belongs to %s: Satchel gives a home to its user only when it creates it or the user owns it already; chown it yourself if it is really theirs, or set manage_home = false",
			env.Root.HostPath(src), u.Name, own.names(db, uid, gid))
	}
	res.Add("home_directory", "owned by "+own.names(db, uid, gid), "owned by "+own.String())
	return &homePlan{}, nil
}

// convergeHome makes the account's home a directory it owns, creating it if need be.
func (u *User) convergeHome(env *Env, acct *passwdEntry, hp *homePlan) error {
	info, err := current(env, acct.home)
	switch {
	case err != nil:
		return err
	case info == nil:
		skel := hp.skel
		if skel == "" {
			skel = skelDir(env)
		}
		return createHome(env, acct.home, acct.uid, acct.gid, skel)
	case !info.IsDir():
		return fmt.Errorf("%s, the home of user %s, is a %s, not a directory", env.Root.HostPath(acct.home), u.Name, kindOf(info))
	case info.UID != acct.uid || info.GID != acct.gid:
		if err := env.Root.Lchown(acct.home, acct.uid, acct.gid); err != nil {
			return fmt.Errorf("give %s to user %s: %w", env.Root.HostPath(acct.home), u.Name, err)
		}
	}
	return nil
}

// skelDir is the skeleton directory of new homes: SKEL of /etc/default/useradd, else /etc/skel.
func skelDir(env *Env) string {
	if s := keyValueFile(env, "/etc/default/useradd")["SKEL"]; s != "" && path.IsAbs(s) {
		return path.Clean(s)
	}
	return "/etc/skel"
}

// homeMode is the mode useradd gives a new home: HOME_MODE of /etc/login.defs, else 0777
// without its UMASK (022 if unset).
func homeMode(env *Env) fs.FileMode {
	defs := keyValueFile(env, "/etc/login.defs")
	if m, err := strconv.ParseUint(defs["HOME_MODE"], 8, 32); err == nil && m <= 0o7777 {
		return modeFromUnix(uint32(m))
	}
	umask := uint64(0o22)
	if m, err := strconv.ParseUint(defs["UMASK"], 8, 32); err == nil && m <= 0o777 {
		umask = m
	}
	return modeFromUnix(uint32(0o777 &^ umask))
}

// createHome creates home, with the missing directories above it, fills it from skel and
// gives it to uid:gid. Until the copy is complete the home is root's and private (0700).
func createHome(env *Env, home string, uid, gid int, skel string) error {
	host := env.Root.HostPath(home)
	parents, err := missingParents(env, home)
	if err != nil {
		return err
	}
	if err := makeParents(env, parents); err != nil {
		return fmt.Errorf("create home %s: %w", host, err)
	}
	if err := env.Root.Mkdir(home, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", host, err)
	}
	if info, err := current(env, skel); err == nil && info != nil && info.IsDir() {
		err := walk(env.Root, skel, func(p string, fi *fsroot.Info) error {
			return copySkelEntry(env, p, path.Join(home, strings.TrimPrefix(p, skel)), fi, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("copy %s into %s: %w", env.Root.HostPath(skel), host, err)
		}
	}
	if err := env.Root.SyncDir(home); err != nil {
		return err
	}
	if err := env.Root.Lchown(home, uid, gid); err != nil {
		return fmt.Errorf("create home %s: %w", host, err)
	}
	if err := env.Root.Chmod(home, homeMode(env)); err != nil {
		return fmt.Errorf("create home %s: %w", host, err)
	}
	return env.Root.SyncDir(path.Dir(home))
}

// copySkelEntry copies one entry of the skeleton directory to dst, owned by uid:gid.
func copySkelEntry(env *Env, src, dst string, fi *fsroot.Info, uid, gid int) error {
	switch {
	case fi.IsDir():
		if err := env.Root.Mkdir(dst, 0o700); err != nil {
			return err
		}
		if err := env.Root.Lchown(dst, uid, gid); err != nil {
			return err
		}
		return env.Root.Chmod(dst, permBits(fi.Mode))
	case fi.IsSymlink():
		target, err := env.Root.Readlink(src)
		if err != nil {
			return err
		}
		if err := env.Root.Symlink(target, dst); err != nil {
			return err
		}
		return env.Root.Lchown(dst, uid, gid)
	case fi.IsRegular():
		in, err := env.Root.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := env.Root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		defer out.Close()
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
		if err := out.Chown(uid, gid); err != nil {
			return err
		}
		if err := out.Chmod(permBits(fi.Mode)); err != nil {
			return err
		}
		if err := out.Sync(); err != nil {
			return err
		}
		return out.Close()
	}
	return nil // sockets, devices and FIFOs are not copied
}

// keysState is what is at HOME/.ssh/authorized_keys, found without following symlinks.
type keysState struct {
	noHome  bool         // the home does not exist
	dir     *unix.Stat_t // .ssh, nil if missing
	file    *unix.Stat_t // authorized_keys (not followed), nil if missing
	content []byte       // of a regular authorized_keys
}

// maxKeysFile bounds the authorized_keys file that is read.
const maxKeysFile = 4 << 20

// readKeys inspects the authorized keys of the home.
func readKeys(env *Env, home string) (*keysState, error) {
	st := &keysState{}
	hf, err := openHome(env, home)
	if errors.Is(err, fs.ErrNotExist) {
		st.noHome = true
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	sshPath := path.Join(home, ".ssh")
	dfd, dirSt, err := openSSHDir(env, int(hf.Fd()), sshPath)
	if err != nil || dfd < 0 {
		return st, err
	}
	defer unix.Close(dfd)
	st.dir = dirSt
	var fst unix.Stat_t
	err = unix.Fstatat(dfd, "authorized_keys", &fst, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("inspect %s: %w", env.Root.HostPath(sshPath+"/authorized_keys"), err)
	}
	st.file = &fst
	switch fst.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.content, err = readAt(dfd, "authorized_keys"); err != nil {
			return nil, fmt.Errorf("read %s: %w", env.Root.HostPath(sshPath+"/authorized_keys"), err)
		}
	case unix.S_IFLNK:
	default:
		return nil, fmt.Errorf("%s is not a regular file; remove it, or stop managing ssh_authorized_keys", env.Root.HostPath(sshPath+"/authorized_keys"))
	}
	return st, nil
}

// openHome opens the home directory; a symlink at the home is refused.
func openHome(env *Env, home string) (*os.File, error) {
	f, err := env.Root.OpenFile(home, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open home %s: %w", env.Root.HostPath(home), err)
	}
	return f, err
}

// openSSHDir opens .ssh below the open home hfd: -1 if there is none; an error if it is not a
// directory (a symlink is never followed).
func openSSHDir(env *Env, hfd int, sshPath string) (int, *unix.Stat_t, error) {
	fd, err := unix.Openat(hfd, ".ssh", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, nil, nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return -1, nil, fmt.Errorf("%s is not a directory (a symbolic link is never followed there); remove it, or stop managing ssh_authorized_keys", env.Root.HostPath(sshPath))
	case err != nil:
		return -1, nil, fmt.Errorf("open %s: %w", env.Root.HostPath(sshPath), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return -1, nil, fmt.Errorf("inspect %s: %w", env.Root.HostPath(sshPath), err)
	}
	return fd, &st, nil
}

// readAt reads the regular file name in the directory dfd, not following a symlink.
func readAt(dfd int, name string) ([]byte, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err == nil && len(data) > maxKeysFile {
		err = fmt.Errorf("larger than %d bytes", maxKeysFile)
	}
	return data, err
}

// keysContent is the desired authorized_keys.
func keysContent(keys []string) []byte {
	if len(keys) == 0 {
		return nil
	}
	return []byte(strings.Join(keys, "\n") + "\n")
}

// describeKeys summarises authorized keys for a change line: how many, and their comments.
func describeKeys(content []byte) string {
	var names []string
	for _, line := range strings.Split(string(content), "\n") {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			names = append(names, keyName(line))
		}
	}
	switch len(names) {
	case 0:
		return "no keys"
	case 1:
		return "1 key (" + names[0] + ")"
	}
	return fmt.Sprintf("%d keys (%s)", len(names), strings.Join(names, ", "))
}

// keyName names one authorized key: its comment, else a short hash of the line.
func keyName(line string) string {
	f := strings.Fields(line)
	for i, w := range f {
		if (strings.HasPrefix(w, "ssh-") || strings.HasPrefix(w, "ecdsa-") || strings.HasPrefix(w, "sk-")) && i+2 < len(f) {
			return strings.Join(f[i+2:], " ")
		}
	}
	return "sha256 " + textdiff.ShortHash([]byte(line))
}

// planKeys records how the authorized keys differ and reports whether there is anything to
// do. src is where the home's content is now; manageHome says whether manage_home applies,
// and fresh whether the home is to be created.
func (u *User) planKeys(env *Env, db *accountDB, home, src string, own *homeOwner, manageHome, fresh bool, res *Result) (bool, error) {
	const attr = "ssh_authorized_keys"
	file := path.Join(home, ".ssh", "authorized_keys")
	want := keysContent(u.SSHAuthorizedKeys)
	st := &keysState{}
	if !fresh {
		var err error
		if st, err = readKeys(env, src); err != nil {
			return false, err
		}
		if st.noHome && !manageHome {
			return false, fmt.Errorf("%s, the home of user %s, does not exist, so its authorized keys cannot be written; create it first, or let manage_home create it (for a system account, give home as well)", env.Root.HostPath(home), u.Name)
		}
	}
	if st.file == nil && len(want) == 0 {
		return false, nil // no keys wanted, and none there
	}
	regular := st.file != nil && st.file.Mode&unix.S_IFMT == unix.S_IFREG
	rewrite := !regular || !bytes.Equal(st.content, want)
	if rewrite {
		from := "absent"
		switch {
		case regular:
			from = describeKeys(st.content)
		case st.file != nil:
			from = "a symbolic link"
		}
		res.Add(attr, u.show(attr, from), u.show(attr, describeKeys(want)))
		if !u.isSensitive(attr) {
			res.Diff += textdiff.Unified(file, st.content, want)
		}
	}
	var from, to []string
	check := func(name string, s *unix.Stat_t, mode uint32) {
		uid, gid := own.remap(int(s.Uid), int(s.Gid))
		if !own.is(uid, gid) || s.Mode&0o7777 != mode {
			from = append(from, fmt.Sprintf("%s %04o %s", name, s.Mode&0o7777, own.names(db, uid, gid)))
			to = append(to, fmt.Sprintf("%s %04o %s", name, mode, own))
		}
	}
	if st.dir != nil {
		check(".ssh", st.dir, 0o700)
	}
	if regular && !rewrite {
		check("authorized_keys", st.file, 0o600)
	}
	if len(from) > 0 {
		res.Add(attr, strings.Join(from, ", "), strings.Join(to, ", "))
	}
	return rewrite || len(from) > 0, nil
}

// convergeKeys writes the authorized keys of the account's home, owned by the account.
func (u *User) convergeKeys(env *Env, acct *passwdEntry) error {
	home := acct.home
	sshPath := path.Join(home, ".ssh")
	filePath := path.Join(sshPath, "authorized_keys")
	want := keysContent(u.SSHAuthorizedKeys)
	hf, err := openHome(env, home)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s, the home of user %s, does not exist, so its authorized keys cannot be written", env.Root.HostPath(home), u.Name)
	}
	if err != nil {
		return err
	}
	defer hf.Close()
	hfd := int(hf.Fd())
	dfd, dirSt, err := openSSHDir(env, hfd, sshPath)
	if err != nil {
		return err
	}
	if dfd < 0 {
		if len(want) == 0 {
			return nil
		}
		if err := unix.Mkdirat(hfd, ".ssh", 0o700); err != nil {
			return fmt.Errorf("create %s: %w", env.Root.HostPath(sshPath), err)
		}
		if dfd, dirSt, err = openSSHDir(env, hfd, sshPath); err != nil {
			return err
		}
		if dfd < 0 {
			return fmt.Errorf("create %s: it vanished", env.Root.HostPath(sshPath))
		}
		if err := unix.Fsync(hfd); err != nil {
			_ = unix.Close(dfd)
			return fmt.Errorf("create %s: flush: %w", env.Root.HostPath(sshPath), err)
		}
	}
	defer unix.Close(dfd)
	if err := fixOwnerAt(dfd, dirSt, acct.uid, acct.gid, 0o700); err != nil {
		return fmt.Errorf("set the owner and mode of %s: %w", env.Root.HostPath(sshPath), err)
	}

	var fst unix.Stat_t
	err = unix.Fstatat(dfd, "authorized_keys", &fst, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if len(want) == 0 {
			return nil
		}
	case err != nil:
		return fmt.Errorf("inspect %s: %w", env.Root.HostPath(filePath), err)
	case fst.Mode&unix.S_IFMT == unix.S_IFREG:
		fd, err := unix.Openat(dfd, "authorized_keys", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", env.Root.HostPath(filePath), err)
		}
		f := os.NewFile(uintptr(fd), filePath)
		defer f.Close()
		if err := unix.Fstat(fd, &fst); err != nil {
			return fmt.Errorf("inspect %s: %w", env.Root.HostPath(filePath), err)
		}
		current, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
		if err != nil {
			return fmt.Errorf("read %s: %w", env.Root.HostPath(filePath), err)
		}
		if bytes.Equal(current, want) {
			if err := fixOwnerAt(fd, &fst, acct.uid, acct.gid, 0o600); err != nil {
				return fmt.Errorf("set the owner and mode of %s: %w", env.Root.HostPath(filePath), err)
			}
			return nil
		}
		if env.Backup != nil {
			e := backup.Entry{Path: filePath, Mode: fst.Mode & 0o7777, UID: int(fst.Uid), GID: int(fst.Gid), Reason: "replaced by " + u.address}
			if _, err := env.Backup.Save(e, bytes.NewReader(current)); err != nil {
				return fmt.Errorf("back up %s: %w", env.Root.HostPath(filePath), err)
			}
		}
	case fst.Mode&unix.S_IFMT == unix.S_IFLNK:
		// replaced by the rename below; the link's target is left alone
	default:
		return fmt.Errorf("%s is not a regular file; remove it, or stop managing ssh_authorized_keys", env.Root.HostPath(filePath))
	}
	if err := writeAt(dfd, "authorized_keys", want, acct.uid, acct.gid, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", env.Root.HostPath(filePath), err)
	}
	return nil
}

// fixOwnerAt gives the open file fd (whose state is st) the owner and mode.
func fixOwnerAt(fd int, st *unix.Stat_t, uid, gid int, mode uint32) error {
	if int(st.Uid) != uid || int(st.Gid) != gid {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	if st.Mode&0o7777 != mode || int(st.Uid) != uid || int(st.Gid) != gid { // chown may clear setuid bits
		return unix.Fchmod(fd, mode)
	}
	return nil
}

// writeAt atomically replaces name in the directory dfd: a temporary file in the same
// directory, owner and mode set, flushed, renamed over name, directory flushed. No step
// follows a symlink.
func writeAt(dfd int, name string, content []byte, uid, gid int, mode uint32) (err error) {
	tmp := fmt.Sprintf(".%s.satchel-%d-%d", name, os.Getpid(), time.Now().UnixNano())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	if _, err = f.Write(content); err != nil {
		return err
	}
	if err = unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	if err = unix.Fchmod(fd, mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return err
	}
	return unix.Fsync(dfd)
}
