package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// Hostname sets the machine's name: /etc/hostname, the 127.0.1.1 line of /etc/hosts (as
// Debian's installer writes it, so that the name resolves without DNS) and the name the
// running kernel has. Each of the three is its own change. Under --root only the files are
// written; the image takes the name when it boots.
type Hostname struct {
	base
	Name       string  `attr:"name" namevar:"true" doc:"The short host name, one DNS label: letters, digits and hyphens, at most 63, not starting or ending with a hyphen (default: the resource's name)."`
	Domain     *string `attr:"domain" doc:"The DNS domain; the fully qualified name is NAME.DOMAIN."`
	HostsEntry bool    `attr:"hosts_entry" default:"true" doc:"Keep the line \"127.0.1.1 FQDN NAME\" in /etc/hosts, replacing any other 127.0.1.1 line; other lines are kept."`
}

var hostnameDef = definition{
	name:      "hostname",
	doc:       "The host name: /etc/hostname, the 127.0.1.1 entry of /etc/hosts and the running system's name (only the files under --root).",
	proto:     (*Hostname)(nil),
	singleton: true,
	check: func(v schema.Values) []*schema.AttrError {
		if name, ok := v["name"].(string); ok && !dnsLabel.MatchString(name) {
			return []*schema.AttrError{{Attr: "name", Summary: "Invalid host name",
				Detail: fmt.Sprintf("%q is not a host name: one label of letters, digits and hyphens, at most 63, not starting or ending with a hyphen (put the domain in domain).", name)}}
		}
		if d, ok := v["domain"].(string); ok {
			labels := strings.Split(strings.TrimSuffix(d, "."), ".")
			for _, l := range labels {
				if !dnsLabel.MatchString(l) {
					return []*schema.AttrError{{Attr: "domain", Summary: "Invalid domain",
						Detail: fmt.Sprintf("%q is not a DNS domain: labels of letters, digits and hyphens separated by dots.", d)}}
				}
			}
			if name, _ := v["name"].(string); len(name)+1+len(d) > 253 {
				return []*schema.AttrError{{Attr: "domain", Summary: "Invalid domain",
					Detail: "the fully qualified name would be longer than 253 characters."}}
			}
		}
		return nil
	},
}

// dnsLabel is an RFC 1123 host name label.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

const (
	hostnameFile = "/etc/hostname"
	hostsFile    = "/etc/hosts"
	// hostsAddr is the address Debian gives the host's own name when it has no fixed one.
	hostsAddr = "127.0.1.1"
)

// fqdn returns the fully qualified name, or the short one without a domain.
func (h *Hostname) fqdn() string {
	if h.Domain == nil || strings.TrimSuffix(*h.Domain, ".") == "" {
		return h.Name
	}
	return h.Name + "." + strings.TrimSuffix(*h.Domain, ".")
}

// hostsLine is the /etc/hosts entry for the name.
func (h *Hostname) hostsLine() string {
	if f := h.fqdn(); f != h.Name {
		return hostsAddr + "\t" + f + "\t" + h.Name
	}
	return hostsAddr + "\t" + h.Name
}

// ManagedPaths implements PathManager: /etc/hosts first, so that a line resource editing it
// takes turns with this one.
func (h *Hostname) ManagedPaths() []string {
	if h.HostsEntry {
		return []string{hostsFile, hostnameFile}
	}
	return []string{hostnameFile}
}

// CheckApply implements Resource.
func (h *Hostname) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	var diff strings.Builder

	// /etc/hostname.
	want := []byte(h.Name + "\n")
	nameInfo, oldName, err := readSmallFile(env, hostnameFile)
	if err != nil {
		return res, err
	}
	writeName := nameInfo == nil || !nameInfo.IsRegular() || !bytes.Equal(oldName, want)
	if writeName {
		res.Add(hostnameFile, describeHostname(nameInfo, oldName), h.Name)
		diff.WriteString(textdiff.Unified(hostnameFile, oldName, want))
	}
	parents, err := addParents(env, hostnameFile, res) // /etc, in an empty image directory
	if err != nil {
		return res, err
	}

	// The 127.0.1.1 line of /etc/hosts.
	var hostsInfo *fsroot.Info
	var oldHosts, newHosts []byte
	if h.HostsEntry {
		if hostsInfo, oldHosts, err = readSmallFile(env, hostsFile); err != nil {
			return res, err
		}
		if hostsInfo != nil && !hostsInfo.IsRegular() {
			return res, fmt.Errorf("%s is a %s, not a regular file", env.Root.HostPath(hostsFile), kindOf(hostsInfo))
		}
		var oldEntry string
		newHosts, oldEntry = editHosts(oldHosts, hostsInfo != nil, h.hostsLine())
		if !bytes.Equal(oldHosts, newHosts) {
			if oldEntry == "" {
				oldEntry = "(none)"
			}
			res.Add(hostsFile, oldEntry, strings.ReplaceAll(h.hostsLine(), "\t", " "))
			diff.WriteString(textdiff.Unified(hostsFile, oldHosts, newHosts))
		}
	}
	res.Diff = diff.String()

	// The running name, only on the machine itself.
	running := ""
	if env.Root.Dir() == "/" {
		if running, err = os.Hostname(); err != nil {
			return res, fmt.Errorf("read the running host name: %w", err)
		}
		if running != h.Name {
			res.Add("running", running, h.Name)
		}
	}
	if !apply || !res.Changed() {
		return res, nil
	}

	if err := makeParents(env, parents); err != nil {
		return res, err
	}
	if writeName {
		if nameInfo != nil && nameInfo.IsRegular() {
			if err := saveBackup(env, hostnameFile, nameInfo, "replaced by "+h.address); err != nil {
				return res, err
			}
		}
		mode, uid, gid := keepOwnership(nameInfo)
		if err := writeAtomic(env.Root, hostnameFile, bytes.NewReader(want), mode, uid, gid); err != nil {
			return res, err
		}
	}
	if h.HostsEntry && !bytes.Equal(oldHosts, newHosts) {
		if hostsInfo != nil {
			if err := saveBackup(env, hostsFile, hostsInfo, "edited by "+h.address); err != nil {
				return res, err
			}
		}
		mode, uid, gid := keepOwnership(hostsInfo)
		if err := writeAtomic(env.Root, hostsFile, bytes.NewReader(newHosts), mode, uid, gid); err != nil {
			return res, err
		}
	}
	if running != "" && running != h.Name {
		return res, h.setRunning(ctx, env)
	}
	return res, nil
}

// setRunning gives the running system the name: through hostnamectl (systemd-hostnamed) when
// systemd runs, with sethostname(2) otherwise or when hostnamed cannot be reached (no D-Bus
// in a minimal container).
func (h *Hostname) setRunning(ctx context.Context, env *Env) error {
	if newSystemd(env).online {
		res, err := command{argv: []string{"hostnamectl", "set-hostname", h.Name}}.run(ctx)
		switch {
		case err == nil && res.code == 0:
			return nil
		case err == nil && !strings.Contains(strings.ToLower(res.output()), "bus"):
			return fmt.Errorf("hostnamectl set-hostname %s failed (status %d): %s", h.Name, res.code, lastLines(res.output(), 5))
		}
		if env.Log != nil {
			env.Log.Warn("hostnamectl failed; setting the kernel's host name directly", "error", err, "output", res.output())
		}
	}
	if err := unix.Sethostname([]byte(h.Name)); err != nil {
		return fmt.Errorf("set the running host name to %s: %w", h.Name, err)
	}
	return nil
}

// readSmallFile returns what is at p and, for a regular file, its content; a directory is
// an error.
func readSmallFile(env *Env, p string) (*fsroot.Info, []byte, error) {
	info, err := current(env, p)
	if err != nil || info == nil {
		return nil, nil, err
	}
	if info.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory, not a file", env.Root.HostPath(p))
	}
	if !info.IsRegular() {
		return info, nil, nil
	}
	data, err := env.Root.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read %s: %w", env.Root.HostPath(p), err)
	}
	return info, data, nil
}

// describeHostname says what /etc/hostname holds now.
func describeHostname(info *fsroot.Info, content []byte) string {
	switch {
	case info == nil:
		return "absent"
	case !info.IsRegular():
		return kindOf(info)
	}
	name := strings.TrimSpace(string(content))
	if name == "" {
		return "(empty)"
	}
	if i := strings.IndexByte(name, '\n'); i >= 0 {
		name = name[:i] + " …"
	}
	return name
}

// keepOwnership returns the mode and ids a replacement gets: those of the file it replaces,
// or 0644 and the running user's for a new file (or one replacing a symlink).
func keepOwnership(info *fsroot.Info) (mode os.FileMode, uid, gid int) {
	if info == nil || !info.IsRegular() {
		return 0o644, -1, -1
	}
	return permBits(info.Mode), info.UID, info.GID
}

// editHosts returns /etc/hosts with entry as its only 127.0.1.1 line, and the 127.0.1.1 line
// it had (its first one), if any. The entry replaces the first 127.0.1.1 line and the others
// are dropped; without one it goes after the last 127.0.0.1 line, or at the end. A line that
// already says the same, with other spacing or a comment, is kept as it is. A missing file
// (exists false) becomes the loopback entries and this one.
func editHosts(content []byte, exists bool, entry string) ([]byte, string) {
	if !exists {
		return []byte("127.0.0.1\tlocalhost\n" + entry + "\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"), ""
	}
	text := string(content)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		lines = nil
	}
	wantFields := strings.Fields(entry)
	var out []string
	old, placed, changed, lastLoopback := "", false, false, -1
	for _, l := range lines {
		fields := hostsFields(l)
		if len(fields) > 0 && fields[0] == hostsAddr {
			if old == "" {
				old = strings.Join(fields, " ")
			}
			switch {
			case placed: // a second 127.0.1.1 line would contradict the first
				changed = true
			case slices.Equal(fields, wantFields):
				out = append(out, l)
			default:
				out = append(out, entry)
				changed = true
			}
			placed = true
			continue
		}
		if len(fields) > 0 && fields[0] == "127.0.0.1" {
			lastLoopback = len(out)
		}
		out = append(out, l)
	}
	if !placed {
		at := len(out)
		if lastLoopback >= 0 {
			at = lastLoopback + 1
		}
		out = slices.Insert(out, at, entry)
		changed = true
	}
	if !changed {
		return content, old
	}
	return []byte(strings.Join(out, "\n") + "\n"), old
}

// hostsFields splits an /etc/hosts line into its address and names, without a comment.
func hostsFields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	return strings.Fields(line)
}

var (
	_ Resource    = (*Hostname)(nil)
	_ PathManager = (*Hostname)(nil)
)
