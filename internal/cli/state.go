package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// DefaultStateDir is where a node keeps its state: the run lock, backups, compiled catalogs.
const DefaultStateDir = "/var/lib/satchel"

// stateDirHelp documents the default for --state-dir.
const stateDirHelp = "keep the run lock, backups and compiled catalogs here (default " + DefaultStateDir +
	" as root, else ~/.local/state/satchel, or $SATCHEL_STATE_DIR; with --root, a roots/ subdirectory of it)"

// stateDir returns the state directory for a run on rootDir: flag if given; otherwise the
// user's state directory, and for a --root run a subdirectory of it named after the root.
//
// The state of a --root run is deliberately kept outside the root: an image directory is
// not trusted (a symlink in it must never redirect the lock or the backups onto the host),
// and what an image ships must not include the build host's backups or compiled catalogs,
// which hold secrets.
func stateDir(flag, rootDir string) string {
	if flag != "" {
		return flag
	}
	base := os.Getenv("SATCHEL_STATE_DIR")
	switch {
	case base != "":
	case os.Geteuid() == 0:
		base = DefaultStateDir
	case os.Getenv("XDG_STATE_HOME") != "":
		base = filepath.Join(os.Getenv("XDG_STATE_HOME"), "satchel")
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "state", "satchel")
	}
	if rootDir == "/" {
		return base
	}
	sum := sha256.Sum256([]byte(rootDir))
	return filepath.Join(base, "roots", hex.EncodeToString(sum[:8]))
}
