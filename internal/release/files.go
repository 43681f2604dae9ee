package release

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
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

// signedMeta is what these functions read of a metadata file's signed part.
type signedMeta struct {
	Version int64 `json:"version"`
	Meta    map[string]struct {
		Version int64 `json:"version"`
	} `json:"meta"`
	Targets map[string]json.RawMessage `json:"targets"`
}

// readSigned reads the signed part of the metadata file p.
func readSigned(p string) (signedMeta, error) {
	var md struct {
		Signed signedMeta `json:"signed"`
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return md.Signed, err
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return md.Signed, fmt.Errorf("%s: %w", p, err)
	}
	return md.Signed, nil
}

// metaVersion reads the version that the metadata file p gives for name ("snapshot.json"
// in the timestamp, "targets.json" in the snapshot).
func metaVersion(p, name string) (int64, error) {
	md, err := readSigned(p)
	if err != nil {
		return 0, fmt.Errorf("release files: %w", err)
	}
	v, ok := md.Meta[name]
	if !ok || v.Version <= 0 {
		return 0, fmt.Errorf("release files: %s names no version of %s", p, name)
	}
	return v.Version, nil
}

// TrustedReleaseFiles maps the repository paths of what a node's trust directory holds of
// release version (its verified metadata, kept by go-tuf under fixed names, and the
// release's cached manifest) to those files: what a node relays of a release to a
// neighbour, laid out as a repository (ReleaseFiles' counterpart on a node). Version must
// be the newest release the metadata names.
func TrustedReleaseFiles(trustDir string, version uint64) (map[string]string, error) {
	meta := filepath.Join(trustDir, TrustMetadataDir)
	var md [4]signedMeta
	for i, name := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		var err error
		if md[i], err = readSigned(filepath.Join(meta, name)); err != nil {
			return nil, err
		}
	}
	root, ts, snap, targets := md[0], md[1], md[2], md[3]
	if ts.Meta["snapshot.json"].Version != snap.Version || snap.Meta["targets.json"].Version != targets.Version {
		return nil, errors.New("this node's trust metadata is being refreshed: try again after its cycle")
	}
	var newest uint64
	for p := range targets.Targets {
		if v, ok := releaseVersion(p); ok && v > newest {
			newest = v
		}
	}
	if newest != version {
		return nil, fmt.Errorf("the newest release this node knows is %d, and it runs %d (a release that failed here): only the release it runs can be relayed", newest, version)
	}
	target := TargetPath(version)
	cached := filepath.Join(trustDir, TrustTargetsDir, url.PathEscape(target))
	if _, err := os.Stat(cached); err != nil {
		return nil, fmt.Errorf("release %d's manifest: %w", version, err)
	}
	return map[string]string{
		path.Join(MetadataDir, "root.json"):                                     filepath.Join(meta, "root.json"),
		path.Join(MetadataDir, fmt.Sprintf("%d.root.json", root.Version)):       filepath.Join(meta, "root.json"),
		path.Join(MetadataDir, "timestamp.json"):                                filepath.Join(meta, "timestamp.json"),
		path.Join(MetadataDir, fmt.Sprintf("%d.snapshot.json", snap.Version)):   filepath.Join(meta, "snapshot.json"),
		path.Join(MetadataDir, fmt.Sprintf("%d.targets.json", targets.Version)): filepath.Join(meta, "targets.json"),
		path.Join(TargetsDir, target):                                           cached,
	}, nil
}
