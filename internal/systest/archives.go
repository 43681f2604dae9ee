package systest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// harvest adds the .debs that apt downloaded in the container to the shared archive cache.
// apt downloads into partial/ and renames complete files into /var/cache/apt/archives, which
// is this container's upper layer: every .deb at its top level is complete. Each is linked (or
// copied, across file systems) under a temporary name and renamed, so other containers and
// test processes see whole files or none.
func (c *Container) harvest() error {
	if c.archUpper == "" {
		return nil
	}
	entries, err := os.ReadDir(c.archUpper)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dst := filepath.Join(c.archShared, e.Name())
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := publish(filepath.Join(c.archUpper, e.Name()), dst); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// publish makes src appear at dst atomically.
func publish(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), fmt.Sprintf(".%s.%08x.tmp", filepath.Base(dst), rand.Uint32()))
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
