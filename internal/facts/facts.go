package facts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// Options say where to read from. The zero value reads the running machine.
type Options struct {
	// HostRoot is prefixed to every file read (/etc/os-release, /proc/..., /sys/...); "" means
	// "/". Tests point it at a fixture tree. When it is neither "" nor "/" Gather is in fixture
	// mode: network interfaces come from /sys/class/net (without addresses), the hostname
	// from /etc/hostname, and filesystem sizes are left out; see the package comment.
	HostRoot string
	// CustomDir holds custom facts: every *.json file in it (sorted by name) must hold a JSON
	// object whose keys are merged at the top level. "" means /etc/satchel/facts.d (under
	// HostRoot); any other value is used as given, not prefixed with HostRoot. A missing dir
	// is fine.
	CustomDir string
	// Version is this build's version, reported as satchel.version; "" means "dev".
	Version string
}

// DefaultCustomDir is where custom facts live unless Options.CustomDir says otherwise.
const DefaultCustomDir = "/etc/satchel/facts.d"

// coreKeys are the top-level facts Gather computes itself; custom facts may not replace them.
var coreKeys = map[string]bool{
	"arch":        true,
	"cpus":        true,
	"disks":       true,
	"domain":      true,
	"filesystems": true,
	"fqdn":        true,
	"hostname":    true,
	"kernel":      true,
	"machine":     true,
	"machine_id":  true,
	"memory":      true,
	"networking":  true,
	"os":          true,
	"satchel":     true,
}

// Gather returns the facts as JSON-compatible Go values and warnings.
//
// Values are string, bool, int64 (every integer, core or custom), float64 (only for
// non-integral numbers in custom facts), []any and map[string]any; nothing else. The result
// marshals with encoding/json as is.
//
// A missing or unreadable source leaves its fact empty and is not reported. Any other read
// error, and every problem with a custom fact file (unreadable, malformed, not an object, a
// key that would override a core fact), becomes a warning naming the file; the rest of the
// facts are still gathered. The error is non-nil only when the options cannot be used at all
// (HostRoot is not a directory) or uname fails.
func Gather(opts Options) (map[string]any, []string, error) {
	g := &gatherer{}
	if opts.HostRoot != "" && filepath.Clean(opts.HostRoot) != "/" {
		root := filepath.Clean(opts.HostRoot)
		st, err := os.Stat(root)
		if err != nil {
			return nil, nil, fmt.Errorf("facts: host root: %w", err)
		}
		if !st.IsDir() {
			return nil, nil, fmt.Errorf("facts: host root %s: %w", root, syscall.ENOTDIR)
		}
		g.root = root
	} else {
		g.live = true
	}

	u, err := uname()
	if err != nil {
		return nil, nil, fmt.Errorf("facts: uname: %w", err)
	}

	f := make(map[string]any, len(coreKeys)+8)
	g.host(f, u.nodename)
	f["os"] = g.osRelease()
	f["kernel"] = map[string]any{
		"name":    u.sysname,
		"release": u.release,
		"version": u.version,
	}
	f["arch"] = runtime.GOARCH
	f["machine"] = u.machine
	f["cpus"] = g.cpus()
	f["memory"] = g.memory()
	f["disks"] = g.disks()
	f["filesystems"] = g.filesystems()
	f["networking"] = g.networking()
	f["machine_id"] = g.machineID()
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	f["satchel"] = map[string]any{"version": version}

	dir := opts.CustomDir
	if dir == "" {
		dir = g.path(DefaultCustomDir)
	}
	g.custom(f, dir)
	return f, g.warnings, nil
}

// gatherer carries the read root and the warnings of one Gather call.
type gatherer struct {
	root     string // fixture root; "" when live
	live     bool
	warnings []string
}

// path returns where the absolute machine path name is read from.
func (g *gatherer) path(name string) string {
	if g.live {
		return name
	}
	return filepath.Join(g.root, name)
}

func (g *gatherer) warn(err error) {
	g.warnings = append(g.warnings, err.Error())
}

// read returns the content of the machine file name, or ok=false when it cannot be read. A
// missing or unreadable file is silently absent; other errors are warnings.
func (g *gatherer) read(name string) (b []byte, ok bool) {
	b, err := os.ReadFile(g.path(name))
	if err != nil {
		if !absent(err) {
			g.warn(err) // *fs.PathError: names the file
		}
		return nil, false
	}
	return b, true
}

// readDir lists the machine directory name, sorted by name; a missing directory is empty.
func (g *gatherer) readDir(name string) []os.DirEntry {
	ents, err := os.ReadDir(g.path(name))
	if err != nil {
		if !absent(err) {
			g.warn(err)
		}
		return nil
	}
	return ents
}

// absent reports whether err means "this source is not there for us", which is normal in
// containers, for non-root users and for sysfs attributes a driver does not implement.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.ENODEV) ||
		errors.Is(err, syscall.ENXIO)
}

// unameInfo is the part of uname(2) that facts use.
type unameInfo struct {
	sysname, nodename, release, version, machine string
}
