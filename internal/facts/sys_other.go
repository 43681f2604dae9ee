//go:build !linux

package facts

import "os"

// Facts are only gathered properly on Linux; elsewhere the package compiles (so that tools
// that merely link it build everywhere) and reports what the standard library knows.

func uname() (unameInfo, error) {
	h, _ := os.Hostname()
	return unameInfo{nodename: h}, nil
}

func statfs(string) (size, avail int64, ok bool) { return 0, 0, false }
