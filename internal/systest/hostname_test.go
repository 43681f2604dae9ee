package systest

import (
	"os"
	"strings"
	"testing"
)

const hostnameConf = `node "n" {
  hostname "school-01" {
    domain = "lr14.schools.example"
  }
}
`

// The container's name changes (hostnamectl, through systemd-hostnamed), with /etc/hostname
// and /etc/hosts; the host's does not.
func TestHostnameSet(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.InstallSatchel(t)
	hostBefore, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	out := mustApply(t, c, hostnameConf, 2)
	wantOutput(t, out, "~ hostname.school-01", "running: "+c.Name()+" -> school-01",
		"/etc/hosts: (none) -> 127.0.1.1 school-01.lr14.schools.example school-01")
	if got := strings.TrimSpace(c.MustExec(t, "hostname")); got != "school-01" {
		t.Errorf("the container is named %q", got)
	}
	if got := strings.TrimSpace(c.MustExec(t, "hostnamectl", "hostname", "--static")); got != "school-01" {
		t.Errorf("hostnamectl says the static name is %q", got)
	}
	if got := string(c.ReadFile(t, "/etc/hostname")); got != "school-01\n" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := strings.Fields(c.MustExec(t, "getent", "hosts", "school-01")); len(got) < 2 || got[0] != "127.0.1.1" || got[1] != "school-01.lr14.schools.example" {
		t.Errorf("getent hosts school-01 = %q", got)
	}
	if got := strings.TrimSpace(c.MustExec(t, "hostname", "--fqdn")); got != "school-01.lr14.schools.example" {
		t.Errorf("hostname --fqdn = %q", got)
	}
	if now, _ := os.Hostname(); now != hostBefore {
		t.Errorf("the host was renamed from %s to %s", hostBefore, now)
	}
	mustApply(t, c, hostnameConf, 0)
}
