// Package fsroot confines file operations to one directory tree, as chroot would, without
// needing privileges or a chroot.
//
// `satchel apply --root DIR` promises that nothing outside DIR is touched, and an image
// directory is full of absolute symlinks (/var/run -> /run, unit links into /lib/systemd) that
// must resolve inside DIR, not on the build host. A Root therefore resolves every path with
// Linux's openat2(2) and RESOLVE_IN_ROOT: ".." and absolute symlinks stop at the root, in the
// kernel, race-free. The last component of a path is never followed: Lstat, Remove, Rename,
// Chmod and Lchown act on the entry itself, and Chmod/Lchown go through a file descriptor
// opened with O_NOFOLLOW so that swapping the entry for a symlink cannot redirect them.
//
// Paths are absolute and clean ("/etc/motd"), as in a catalog; they name places inside the root.
// On kernels without openat2 (before 5.6) the root "/" still works with plain system calls;
// any other root is refused with a clear error.
package fsroot
