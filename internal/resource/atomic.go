package resource

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/fsroot"
)

// writeAtomic replaces (or creates) the file p with the bytes of src so that a crash at any
// point leaves either the old file or the new one, never a mix: the bytes go to a temporary
// file in the same directory, which gets its owner and mode and is flushed to disk, then
// renamed over p; finally the directory is flushed so the rename itself is durable. uid or
// gid -1 leaves that id as the creating process's.
func writeAtomic(root *fsroot.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int) error {
	return writeAtomicThen(root, p, src, mode, uid, gid, nil)
}

// writeAtomicThen is writeAtomic that calls beforeRename, if set, once the new content is
// complete and durable and just before it is renamed over p (to remove what rename cannot
// replace, such as a directory). If anything fails earlier, beforeRename is not called.
func writeAtomicThen(root *fsroot.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int, beforeRename func() error) (err error) {
	dir := path.Dir(p)
	f, tmp, err := root.CreateTemp(dir, path.Base(p))
	if err != nil {
		return fmt.Errorf("write %s: %w", root.HostPath(p), err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = root.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, src); err != nil {
		return fmt.Errorf("write %s: %w", root.HostPath(p), err)
	}
	if uid >= 0 || gid >= 0 {
		if err = f.Chown(uid, gid); err != nil { // before chmod: chown clears setuid bits
			return fmt.Errorf("write %s: set owner: %w", root.HostPath(p), err)
		}
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: set mode: %w", root.HostPath(p), err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: flush: %w", root.HostPath(p), err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", root.HostPath(p), err)
	}
	if beforeRename != nil {
		if err = beforeRename(); err != nil {
			return fmt.Errorf("write %s: %w", root.HostPath(p), err)
		}
	}
	if err = root.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", root.HostPath(p), err)
	}
	if err := root.SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: flush directory: %w", root.HostPath(p), err)
	}
	return nil
}

// removeDurably removes p and flushes its directory.
func removeDurably(root *fsroot.Root, p string) error {
	if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", root.HostPath(p), err)
	}
	if err := root.SyncDir(path.Dir(p)); err != nil {
		return fmt.Errorf("remove %s: flush directory: %w", root.HostPath(p), err)
	}
	return nil
}

// WriteAtomic replaces the file p inside root with the bytes of src, crash-safely, with the
// given mode and ids (-1 keeps the process's). If src fails (a backup that does not verify,
// a source that changed), p is left as it was.
func WriteAtomic(root *fsroot.Root, p string, src io.Reader, mode fs.FileMode, uid, gid int) error {
	return writeAtomic(root, p, src, mode, uid, gid)
}

// BackupFile saves the current content of the regular file p to env.Backup, if there is
// one; a missing p is not an error.
func BackupFile(env *Env, p, reason string) error {
	info, err := env.Root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !info.IsRegular() {
		return nil
	}
	return saveBackup(env, p, info, reason)
}

// RestoreBackup writes the saved version e back to its path, with its mode and owner,
// after saving what is there now to env.Backup (with reason), so that a restore can be
// undone. The content is verified against its hash as it is read: a corrupt backup leaves
// the file as it was.
func RestoreBackup(env *Env, e backup.Entry, reason string) error {
	if err := BackupFile(env, e.Path, reason); err != nil {
		return err
	}
	r, err := env.Backup.Open(e)
	if err != nil {
		return err
	}
	defer r.Close()
	return writeAtomic(env.Root, e.Path, r, e.FileMode(), e.UID, e.GID)
}
