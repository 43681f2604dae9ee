package systest

import (
	"fmt"
	"strings"
	"testing"
)

// testPackage is a tiny Debian package built inside a container, for what the real archive
// cannot stage on demand: dependency conflicts, a maintainer script that fails once.
type testPackage struct {
	name     string
	depends  string // the Depends field, or ""
	postinst string // the body of a postinst script, or ""
}

// localRepo builds the packages with dpkg-deb into a flat apt repository at /srv/repo inside
// the container, adds it as a trusted source, and refreshes the lists.
func localRepo(t *testing.T, c *Container, pkgs ...testPackage) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -e\nmkdir -p /srv/repo\ncd /srv/build 2>/dev/null || mkdir -p /srv/build && cd /srv/build\n")
	for _, p := range pkgs {
		control := fmt.Sprintf("Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: Satchel tests <tests@example.org>\nDescription: test package %s\n", p.name, p.name)
		if p.depends != "" {
			control += "Depends: " + p.depends + "\n"
		}
		fmt.Fprintf(&script, "mkdir -p %[1]s/DEBIAN %[1]s/usr/share/doc/%[1]s\n", p.name)
		fmt.Fprintf(&script, "cat > %s/DEBIAN/control <<'EOF'\n%sEOF\n", p.name, control)
		fmt.Fprintf(&script, "echo %[1]s > %[1]s/usr/share/doc/%[1]s/README\n", p.name)
		if p.postinst != "" {
			fmt.Fprintf(&script, "cat > %[1]s/DEBIAN/postinst <<'EOF'\n#!/bin/sh\n%[2]s\nEOF\nchmod 755 %[1]s/DEBIAN/postinst\n", p.name, p.postinst)
		}
		fmt.Fprintf(&script, "dpkg-deb --build -Zgzip %[1]s /srv/repo/%[1]s_1.0_all.deb >/dev/null\n", p.name)
	}
	script.WriteString(`cd /srv/repo
: > Packages
for deb in *.deb; do
  dpkg-deb -f "$deb" >> Packages
  echo "Filename: ./$deb" >> Packages
  echo "Size: $(stat -c %s "$deb")" >> Packages
  echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)" >> Packages
  echo >> Packages
done
echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list.d/satchel-tests.list
apt-get update -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/satchel-tests.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/dev/null
touch /var/lib/apt/lists/* /var/lib/apt/periodic/update-success-stamp 2>/dev/null || true
mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp
`)
	c.MustExec(t, "sh", "-c", script.String())
}

// A package that depends on another the configuration wants absent: the removal is refused
// with a message naming the conflict, every run, instead of apt removing both and the next
// run installing both again.
func TestPackageRemovalThatWouldTakeAWantedPackage(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	localRepo(t, c, testPackage{name: "satchel-b"}, testPackage{name: "satchel-a", depends: "satchel-b"})
	conf := `node "n" {
  package "satchel-a" {}
  package "satchel-b" {
    ensure = "absent"
  }
}
`
	for run := 1; run <= 3; run++ {
		out, code := applyConfig(t, c, conf)
		if run == 1 && (code != 6 || !strings.Contains(out, "+ package.satchel-a") ||
			!strings.Contains(out, "apt changed satchel-b as a side effect of this run's transaction")) {
			t.Fatalf("run 1 exited %d:\n%s", code, out)
		}
		if run > 1 && (code != 4 || !strings.Contains(out, "not removed: apt would also remove satchel-a, which this configuration wants installed")) {
			t.Fatalf("run %d exited %d:\n%s", run, code, out)
		}
		for _, p := range []string{"satchel-a", "satchel-b"} {
			if st := dpkgStatus(t, c, p); st != "install ok installed" {
				t.Fatalf("run %d: %s is %q: the runs flip-flop", run, p, st)
			}
		}
	}
}

// A transaction that fails for one package (broken dependencies) is retried package by
// package: the others are installed, the failure is reported where it belongs.
func TestPackageBrokenDependencyFailsAlone(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/usr/local/sbin/apt-get", []byte(aptShim), 0o755)
	localRepo(t, c, testPackage{name: "satchel-broken", depends: "satchel-not-in-any-repository"}, testPackage{name: "satchel-ok"})
	out, code := applyConfig(t, c, `node "n" {
  package "satchel-broken" {}
  package "satchel-ok" {}
}
`)
	if code != 6 || !strings.Contains(out, "! package.satchel-broken failed") || !strings.Contains(out, "broken dependencies") ||
		!strings.Contains(out, "+ package.satchel-ok") {
		t.Fatalf("exited %d:\n%s", code, out)
	}
	if st := dpkgStatus(t, c, "satchel-ok"); st != "install ok installed" {
		t.Errorf("satchel-ok is %q", st)
	}
	log, _, _ := c.Exec(t, "cat", "/var/log/apt-get-calls")
	joint := strings.Index(log, "install satchel-broken satchel-ok")
	alone := strings.LastIndex(log, "install satchel-ok\n")
	if joint < 0 || alone < joint {
		t.Errorf("apt-get calls:\n%s\nwant the joint transaction tried first, then satchel-ok alone", log)
	}
}

// A package whose configuration was cut off (dpkg left it half-configured) is finished on the
// next run with dpkg --configure -a, instead of being counted as installed or locking every
// later change.
func TestPackageHalfConfiguredIsRepaired(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	// The postinst fails the first time, as a cut-off configuration would leave it.
	localRepo(t, c, testPackage{name: "satchel-flaky",
		postinst: "if [ ! -e /var/lib/satchel-flaky-ok ]; then touch /var/lib/satchel-flaky-ok; exit 1; fi"})
	conf := `node "n" {
  package "satchel-flaky" {}
}
`
	out, code := applyConfig(t, c, conf)
	if code != 4 || !strings.Contains(out, "! package.satchel-flaky failed") {
		t.Fatalf("first run exited %d:\n%s", code, out)
	}
	if st := dpkgStatus(t, c, "satchel-flaky"); st != "install ok half-configured" {
		t.Fatalf("after the failed postinst: %q", st)
	}
	out, code = applyConfig(t, c, conf)
	if code != 2 || !strings.Contains(out, "ensure: half installed (1.0) -> installed (finishing what an interrupted dpkg left half done)") {
		t.Fatalf("second run exited %d:\n%s", code, out)
	}
	if st := dpkgStatus(t, c, "satchel-flaky"); st != "install ok installed" {
		t.Errorf("after the repair: %q", st)
	}
	if out, code := applyConfig(t, c, conf); code != 0 {
		t.Errorf("third run exited %d:\n%s", code, out)
	}
}
