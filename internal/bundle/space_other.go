//go:build !linux

package bundle

import "errors"

// FreeSpace is not known on this system.
func FreeSpace(string) (int64, error) { return 0, errors.New("free space: not known on this system") }
