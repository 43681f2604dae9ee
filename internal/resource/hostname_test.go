package resource_test

import (
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/resource"
)

// debianHosts is /etc/hosts as Debian's installer writes it.
const debianHosts = `127.0.0.1	localhost
127.0.1.1	debian.example.org	debian

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`

func school(attrs map[string]any) map[string]any {
	a := map[string]any{"domain": "lr14.schools.example"}
	for k, v := range attrs {
		a[k] = v
	}
	return a
}

func TestHostnameInEmptyRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	_, real := fx.contract(cat("hostname", "school-01", school(nil)),
		"/etc/hostname: absent -> school-01", "parents: absent -> /etc",
		"/etc/hosts: (none) -> 127.0.1.1 school-01.lr14.schools.example school-01")
	fx.assertFile("/etc/hostname", "school-01\n", 0o644, 0, 0)
	fx.assertFile("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tschool-01.lr14.schools.example\tschool-01\n::1\t\tlocalhost ip6-localhost ip6-loopback\n", 0o644, 0, 0)
	for _, want := range []string{"+++ /etc/hostname (desired)", "+school-01", "+++ /etc/hosts (desired)", "+127.0.1.1\tschool-01.lr14.schools.example\tschool-01"} {
		if !strings.Contains(real.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, real.Diff)
		}
	}
	fx.assertNoBackups()
}

func TestHostnameReplacesDebianEntry(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/hostname", "debian\n", 0o644)
	fx.write("/etc/hosts", debianHosts, 0o644)
	_, real := fx.contract(cat("hostname", "school-01", school(nil)),
		"/etc/hostname: debian -> school-01",
		"/etc/hosts: 127.0.1.1 debian.example.org debian -> 127.0.1.1 school-01.lr14.schools.example school-01")
	fx.assertFile("/etc/hostname", "school-01\n", 0o644, 0, 0)
	fx.assertFile("/etc/hosts", strings.Replace(debianHosts, "127.0.1.1\tdebian.example.org\tdebian", "127.0.1.1\tschool-01.lr14.schools.example\tschool-01", 1), 0o644, 0, 0)
	want := "-127.0.1.1\tdebian.example.org\tdebian\n+127.0.1.1\tschool-01.lr14.schools.example\tschool-01\n"
	if !strings.Contains(real.Diff, want) || !strings.Contains(real.Diff, "-debian\n+school-01\n") {
		t.Errorf("diff:\n%s", real.Diff)
	}
	fx.assertBackup("/etc/hostname", "debian\n", 0o644, 0, 0, "replaced by hostname.school-01")
	fx.assertBackup("/etc/hosts", debianHosts, 0o644, 0, 0, "edited by hostname.school-01")

	// Without a domain, the entry has the short name only.
	fx.contract(cat("hostname", "school-01", nil),
		"/etc/hosts: 127.0.1.1 school-01.lr14.schools.example school-01 -> 127.0.1.1 school-01")
	if !strings.Contains(fx.read("/etc/hosts"), "\n127.0.1.1\tschool-01\n") {
		t.Errorf("/etc/hosts:\n%s", fx.read("/etc/hosts"))
	}
}

func TestHostnameHostsEdits(t *testing.T) {
	t.Parallel()
	const entry = "127.0.1.1\tschool-01.lr14.schools.example\tschool-01"
	for _, tc := range []struct {
		name, hosts, want, change string
	}{
		{"inserted after the loopback lines", "127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n::1 localhost\n",
			"127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n" + entry + "\n::1 localhost\n", "(none)"},
		{"appended without a loopback line", "# empty\n", "# empty\n" + entry + "\n", "(none)"},
		{"into an empty file", "", entry + "\n", "(none)"},
		{"one entry of several", "127.0.0.1 localhost\n127.0.1.1 old\n10.0.0.5 printer\n127.0.1.1 older # comment\n",
			"127.0.0.1 localhost\n" + entry + "\n10.0.0.5 printer\n", "127.0.1.1 old"},
		{"a second identical entry", "127.0.1.1 school-01.lr14.schools.example school-01\n127.0.1.1 school-01\n",
			"127.0.1.1 school-01.lr14.schools.example school-01\n", "127.0.1.1 school-01.lr14.schools.example school-01"},
		{"no final newline", "127.0.0.1 localhost", "127.0.0.1 localhost\n" + entry + "\n", "(none)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.write("/etc/hostname", "school-01\n", 0o644)
			fx.write("/etc/hosts", tc.hosts, 0o640)
			fx.chown("/etc/hosts", 0, 4)
			fx.contract(cat("hostname", "school-01", school(nil)),
				"/etc/hosts: "+tc.change+" -> 127.0.1.1 school-01.lr14.schools.example school-01")
			fx.assertFile("/etc/hosts", tc.want, 0o640, 0, 4) // mode and owner kept
		})
	}
}

func TestHostnameAlreadySet(t *testing.T) {
	t.Parallel()
	for name, hosts := range map[string]string{
		"other spacing and a comment": "127.0.0.1 localhost\n127.0.1.1   school-01.lr14.schools.example school-01   # set by hand\n",
		"no final newline":            "127.0.0.1 localhost\n127.0.1.1 school-01.lr14.schools.example school-01",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			fx.write("/etc/hostname", "school-01\n", 0o644)
			fx.write("/etc/hosts", hosts, 0o644)
			fx.contract(cat("hostname", "school-01", school(nil)))
		})
	}
}

func TestHostnameWithoutHostsEntry(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/etc/hostname", "debian", 0o600)
	fx.write("/etc/hosts", debianHosts, 0o644)
	r := build(t, cat("hostname", "school-01", school(map[string]any{"hosts_entry": false})))
	if got := r.(resource.PathManager).ManagedPaths(); len(got) != 1 || got[0] != "/etc/hostname" {
		t.Errorf("ManagedPaths() = %q", got)
	}
	fx.contract(cat("hostname", "school-01", school(map[string]any{"hosts_entry": false})), "/etc/hostname: debian -> school-01")
	fx.assertFile("/etc/hostname", "school-01\n", 0o600, 0, 0)
	fx.assertFile("/etc/hosts", debianHosts, 0o644, 0, 0)
}

func TestHostnameErrors(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/etc/hostname", 0o755)
	fx.wantErr(cat("hostname", "school-01", nil), fx.host("/etc/hostname")+" is a directory, not a file")

	fx = newFixture(t)
	fx.write("/etc/hostname", "school-01\n", 0o644)
	fx.symlink("/nowhere", "/etc/hosts")
	fx.wantErr(cat("hostname", "school-01", nil), fx.host("/etc/hosts")+" is a symlink, not a regular file")

	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"name": "school_01"}, `name: Invalid host name: "school_01" is not a host name: one label of letters, digits and hyphens, at most 63, not starting or ending with a hyphen (put the domain in domain).`},
		{map[string]any{"name": "school-01.lr14"}, `name: Invalid host name: "school-01.lr14" is not a host name: one label of letters, digits and hyphens, at most 63, not starting or ending with a hyphen (put the domain in domain).`},
		{map[string]any{"name": "-school"}, `name: Invalid host name: "-school" is not a host name: one label of letters, digits and hyphens, at most 63, not starting or ending with a hyphen (put the domain in domain).`},
		{map[string]any{"name": strings.Repeat("a", 64)}, `name: Invalid host name: "` + strings.Repeat("a", 64) + `" is not a host name: one label of letters, digits and hyphens, at most 63, not starting or ending with a hyphen (put the domain in domain).`},
		{map[string]any{"name": "ok", "domain": "lr14..example"}, `domain: Invalid domain: "lr14..example" is not a DNS domain: labels of letters, digits and hyphens separated by dots.`},
		{map[string]any{"name": "ok", "domain": "lr 14"}, `domain: Invalid domain: "lr 14" is not a DNS domain: labels of letters, digits and hyphens separated by dots.`},
		{map[string]any{"name": "ok", "domain": strings.Repeat("abcdefgh.", 28) + "org"}, "domain: Invalid domain: the fully qualified name would be longer than 253 characters."},
	} {
		_, err := resource.New(cat("hostname", "x", tc.attrs))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v\nwant %s", tc.attrs, err, tc.want)
		}
	}
	// A trailing dot on the domain is accepted and dropped; 63 characters are fine.
	fx = newFixture(t)
	fx.run(cat("hostname", strings.Repeat("a", 63), map[string]any{"domain": "example.org."}), true)
	if !strings.Contains(fx.read("/etc/hosts"), "\t"+strings.Repeat("a", 63)+".example.org\t") {
		t.Errorf("/etc/hosts:\n%s", fx.read("/etc/hosts"))
	}
}
