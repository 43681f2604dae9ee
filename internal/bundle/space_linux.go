package bundle

import (
	"errors"
	"syscall"
)

// FreeSpace returns the bytes free for an unprivileged user in the file system of dir. A
// file system that says it has no blocks at all (some FUSE ones do not tell) is an error:
// its free space is not known.
func FreeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Blocks == 0 {
		return 0, errors.New("free space: the file system does not tell")
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
