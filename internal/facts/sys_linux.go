//go:build linux

package facts

import "golang.org/x/sys/unix"

func uname() (unameInfo, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return unameInfo{}, err
	}
	return unameInfo{
		sysname:  unix.ByteSliceToString(u.Sysname[:]),
		nodename: unix.ByteSliceToString(u.Nodename[:]),
		release:  unix.ByteSliceToString(u.Release[:]),
		version:  unix.ByteSliceToString(u.Version[:]),
		machine:  unix.ByteSliceToString(u.Machine[:]),
	}, nil
}

// statfs returns the size and the space available to unprivileged users of the filesystem
// mounted at dir, as df(1) computes them.
func statfs(dir string) (size, avail int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := int64(st.Frsize)
	if bs <= 0 {
		bs = int64(st.Bsize)
	}
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs, true
}
