package facts

import (
	"bufio"
	"bytes"
	"strings"
)

// host sets hostname, fqdn and domain. nodename is the running kernel's host name, used in
// live mode; in fixture mode the name comes from /etc/hostname.
func (g *gatherer) host(f map[string]any, nodename string) {
	name := ""
	if g.live {
		name = nodename
	}
	if name == "" || name == "(none)" {
		name = g.etcHostname()
	}
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	short, _, _ := strings.Cut(name, ".")

	fqdn := ""
	if short != "" {
		if b, ok := g.read("/etc/hosts"); ok {
			fqdn = hostsCanonical(b, name, short)
		}
		if fqdn == "" {
			if strings.Contains(name, ".") {
				fqdn = name
			} else {
				fqdn = short
			}
		}
	}
	domain := ""
	if len(fqdn) > len(short)+1 && strings.EqualFold(fqdn[:len(short)+1], short+".") {
		domain = fqdn[len(short)+1:]
	}
	f["hostname"] = short
	f["fqdn"] = fqdn
	f["domain"] = domain
}

// etcHostname returns the first non-comment word of /etc/hostname.
func (g *gatherer) etcHostname() string {
	b, ok := g.read("/etc/hostname")
	if !ok {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		line, _, _ = strings.Cut(line, "#")
		if fields := strings.Fields(line); len(fields) > 0 {
			return fields[0]
		}
	}
	return ""
}

// hostsCanonical returns the canonical name (the first name) of the first /etc/hosts line that
// lists name or short, as the resolver's files backend would, skipping lines whose canonical
// name is not this host (such as "127.0.0.1 localhost myhost"). It returns "" if no line fits.
func hostsCanonical(hosts []byte, name, short string) string {
	sc := bufio.NewScanner(bytes.NewReader(hosts))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		names := fields[1:]
		match := false
		for _, n := range names {
			n = strings.TrimSuffix(n, ".")
			if strings.EqualFold(n, name) || strings.EqualFold(n, short) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		canon := strings.TrimSuffix(names[0], ".")
		if strings.EqualFold(canon, short) ||
			(len(canon) > len(short)+1 && strings.EqualFold(canon[:len(short)+1], short+".")) {
			return canon
		}
	}
	return ""
}

// machineID returns /etc/machine-id, trimmed, or "".
func (g *gatherer) machineID() string {
	b, ok := g.read("/etc/machine-id")
	if !ok {
		return ""
	}
	return strings.TrimSpace(string(b))
}
