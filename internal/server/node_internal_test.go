package server

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// The server's own troubles opening a repository file are 500s (the agent retries), not
// 404s (it gives up). The faults cannot be caused here (the tests run as root, with
// descriptors to spare), so the classification is checked on the errors os.Root returns.
func TestServerFault(t *testing.T) {
	open := func(err error) error {
		return fmt.Errorf("wrapped: %w", &fs.PathError{Op: "openat", Path: "metadata/1.root.json", Err: err})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{open(syscall.EACCES), true},
		{open(syscall.EIO), true},
		{open(syscall.EMFILE), true},
		{open(syscall.ENFILE), true},
		{open(syscall.ENOENT), false},
		{open(syscall.ENOTDIR), false},
		{open(syscall.EINVAL), false},
		{open(errors.New("path escapes from parent")), false},
	} {
		if got := serverFault(tc.err); got != tc.want {
			t.Errorf("serverFault(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
