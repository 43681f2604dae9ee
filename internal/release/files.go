package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ReleaseFiles lists the files of repoDir a node needs to verify release m, and nothing
// else, as slash-separated paths relative to repoDir: every root (a node pinned to an old
// one follows the chain), the timestamp, the snapshot and targets metadata it names, the
// release's manifest, and its secret index files. What a USB bundle carries of the
// repository besides content (package bundle).
func ReleaseFiles(repoDir string, m *Manifest) ([]string, error) {
	meta := filepath.Join(repoDir, MetadataDir)
	entries, err := os.ReadDir(meta)
	if err != nil {
		return nil, fmt.Errorf("release files: %w", err)
	}
	var files []string
	for _, e := range entries {
		if v, ok := strings.CutSuffix(e.Name(), ".root.json"); ok {
			if _, err := strconv.ParseUint(v, 10, 64); err == nil {
				files = append(files, path.Join(MetadataDir, e.Name()))
			}
		}
	}
	files = append(files, path.Join(MetadataDir, "root.json"), path.Join(MetadataDir, "timestamp.json"))
	snapshot, err := metaVersion(filepath.Join(meta, "timestamp.json"), "snapshot.json")
	if err != nil {
		return nil, err
	}
	targets, err := metaVersion(filepath.Join(meta, fmt.Sprintf("%d.snapshot.json", snapshot)), "targets.json")
	if err != nil {
		return nil, err
	}
	files = append(files,
		path.Join(MetadataDir, fmt.Sprintf("%d.snapshot.json", snapshot)),
		path.Join(MetadataDir, fmt.Sprintf("%d.targets.json", targets)),
		path.Join(TargetsDir, TargetPath(m.Version)))
	for b := range len(m.Secrets) {
		files = append(files, SecretIndexPath(m.Version, b))
	}
	slices.Sort(files)
	return files, nil
}

// NodeSecretFiles lists the encrypted secrets of node in release version (paths relative
// to the repository, slash-separated); none if it has none.
func NodeSecretFiles(repoDir string, version uint64, node string) ([]string, error) {
	dir := path.Dir(SecretPath(version, node, "x"))
	entries, err := os.ReadDir(filepath.Join(repoDir, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets of %s: %w", node, err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// metaVersion reads the version that the metadata file p gives for name ("snapshot.json"
// in the timestamp, "targets.json" in the snapshot).
func metaVersion(p, name string) (int64, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("release files: %w", err)
	}
	var md struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return 0, fmt.Errorf("release files: %s: %w", p, err)
	}
	v, ok := md.Signed.Meta[name]
	if !ok || v.Version <= 0 {
		return 0, fmt.Errorf("release files: %s names no version of %s", p, name)
	}
	return v.Version, nil
}
