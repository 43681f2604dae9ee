package lang

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

func (s *sourceFiles) add(name string, data []byte) {
	s.mu.Lock()
	s.snippets[name] = data
	s.mu.Unlock()
}

// recordRead notes the hash of a file the configuration read as text (HCL, templates, file(),
// the inventory), by its path relative to the repository. Callers hold s.mu or are Load.
func (s *sourceFiles) recordRead(dir, name string, data []byte) {
	rel, err := filepath.Rel(dir, name)
	if err != nil {
		return
	}
	sum := sha256.Sum256(data)
	if s.read == nil {
		s.read = map[string]string{}
	}
	s.read[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
}

// TextFiles returns the SHA-256 of every file the configuration has read as text so far —
// its .hcl files, the inventory, and the templates and file()s evaluation used — by path
// relative to the repository. A compiled catalog depends on exactly these contents (and on
// the sources it pins by hash itself), which is what package catcache checks on reuse.
func (c *Config) TextFiles() map[string]string {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	out := make(map[string]string, len(c.files.read))
	for k, v := range c.files.read {
		out[k] = v
	}
	return out
}

// Sources returns the content of every file the configuration has read so far, by the file
// name diagnostics use, for printing source snippets.
func (c *Config) Sources() map[string][]byte {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	out := make(map[string][]byte, len(c.files.snippets))
	for k, v := range c.files.snippets {
		out[k] = v
	}
	return out
}

// checkRepoPath validates a path given to file(), template() or source: relative, clean,
// inside its directory.
func checkRepoPath(p string) error {
	if p == "" || path.IsAbs(p) || strings.Contains(p, "\\") || path.Clean(p) != p || !filepath.IsLocal(p) {
		return fmt.Errorf("%q must be a clean relative path without \"..\"", p)
	}
	return nil
}

// readText reads a file under files/ or templates/ once and keeps it.
func (c *Config) readText(dir, p string) ([]byte, string, error) {
	if err := checkRepoPath(p); err != nil {
		return nil, "", err
	}
	name := filepath.Join(c.Dir, dir, p)
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	key := "text:" + name
	if fd, ok := c.files.files[key]; ok {
		return fd.data, name, fd.err
	}
	data, err := readInRoot(c.Dir, dir, p, func(f *os.File) ([]byte, error) { return io.ReadAll(f) })
	c.files.files[key] = fileData{data: data, err: err}
	if err == nil {
		c.files.snippets[name] = data
		c.files.recordRead(c.Dir, name, data)
	}
	return data, name, err
}

// sourceInfo returns the size and SHA-256 of a file under files/, hashing it once, streaming.
func (c *Config) sourceInfo(p string) (int64, string, error) {
	if err := checkRepoPath(p); err != nil {
		return 0, "", err
	}
	key := "source:" + p
	c.files.mu.Lock()
	fd, ok := c.files.files[key]
	c.files.mu.Unlock()
	if ok {
		return fd.size, fd.sha256, fd.err
	}
	var size int64
	_, err := readInRoot(c.Dir, FilesDir, p, func(f *os.File) ([]byte, error) {
		h := sha256.New()
		n, err := io.Copy(h, f)
		size = n
		fd.sha256 = hex.EncodeToString(h.Sum(nil))
		return nil, err
	})
	fd.size, fd.err = size, err
	c.files.mu.Lock()
	c.files.files[key] = fd
	c.files.mu.Unlock()
	return fd.size, fd.sha256, fd.err
}

// readInRoot opens p inside the directory sub of the repository through os.Root, so that no
// symlink can lead out of sub (not even sub itself being a link out of the repository), and
// hands the regular file to read.
func readInRoot(repo, sub, p string, read func(*os.File) ([]byte, error)) ([]byte, error) {
	top, err := os.OpenRoot(repo)
	if err != nil {
		return nil, err
	}
	defer top.Close()
	root, err := top.OpenRoot(sub)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path.Join(sub, p))
	}
	return read(f)
}
