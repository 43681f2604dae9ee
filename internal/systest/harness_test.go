package systest

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// These tests boot real containers: they need root and the image (scripts/test-image.sh), and
// are skipped without them unless SATCHEL_SYSTEST=1.

func TestBoot(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	if state := strings.TrimSpace(c.MustExec(t, "systemctl", "is-system-running")); state != "running" {
		t.Errorf("is-system-running = %q, want running (failed units: %s)", state,
			c.MustExec(t, "systemctl", "--failed", "--no-legend"))
	}
	if comm := c.MustExec(t, "cat", "/proc/1/comm"); comm != "systemd\n" {
		t.Errorf("PID 1 inside is %q, want systemd", comm)
	}
	if host := strings.TrimSpace(c.MustExec(t, "hostname")); host != c.Name() {
		t.Errorf("hostname = %q, want the machine name %q", host, c.Name())
	}
	// The machine has its own cgroups, named after it.
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(c.Leader()) + "/cgroup")
	if err != nil || !strings.Contains(string(cg), "/"+c.Name()+"/") {
		t.Errorf("the container's PID 1 is not in a cgroup of its own:\n%s (%v)", cg, err)
	}
	// The things the resource tests rely on are in the image.
	c.MustExec(t, "sh", "-c", "command -v useradd groupadd usermod userdel getent hostnamectl cron pidof ps ip dpkg-query apt-get")
	if !strings.Contains(c.MustExec(t, "ls", "/var/lib/apt/lists"), "_Packages") {
		t.Error("the image has no package lists: tests would need apt-get update")
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	stdout, stderr, code := c.Exec(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	if stdout != "out\n" || stderr != "err\n" || code != 3 {
		t.Errorf("Exec = %q, %q, %d; want \"out\\n\", \"err\\n\", 3", stdout, stderr, code)
	}
	if _, _, code := c.Exec(t, "no-such-command"); code != 127 {
		t.Errorf("a missing command exits %d, want 127", code)
	}
	env := strings.Fields(c.MustExec(t, "env"))
	slices.Sort(env)
	if want := []string{"HOME=/root", "PATH=" + ContainerPATH}; !slices.Equal(env, want) {
		t.Errorf("environment inside = %q, want %q", env, want)
	}
	// Commands run in the container's PID namespace, where systemd is PID 1.
	if ppid := strings.Fields(c.MustExec(t, "ps", "-o", "ppid=", "-p", "1")); len(ppid) != 1 || ppid[0] != "0" {
		t.Errorf("ps inside sees PID 1 with parent %q, want 0", ppid)
	}
	// systemd is driven for real.
	c.WriteFile(t, "/etc/systemd/system/hello.service", []byte("[Service]\nExecStart=/bin/sleep infinity\n"), 0o644)
	c.MustExec(t, "systemctl", "daemon-reload")
	c.MustExec(t, "systemctl", "start", "hello")
	if state := strings.TrimSpace(c.MustExec(t, "systemctl", "is-active", "hello")); state != "active" {
		t.Errorf("hello.service is %q after start", state)
	}
}

func TestFiles(t *testing.T) {
	t.Parallel()
	c := Available(t).Boot(t)
	c.WriteFile(t, "/etc/satchel/test.conf", []byte("key = 1\n"), 0o640)
	if got := c.MustExec(t, "stat", "-c", "%a %U %n", "/etc/satchel/test.conf"); got != "640 root /etc/satchel/test.conf\n" {
		t.Errorf("stat inside: %q", got)
	}
	if got := c.MustExec(t, "cat", "/etc/satchel/test.conf"); got != "key = 1\n" {
		t.Errorf("cat inside: %q", got)
	}
	c.MustExec(t, "sh", "-c", "echo made inside >/root/inside")
	if got := string(c.ReadFile(t, "/root/inside")); got != "made inside\n" {
		t.Errorf("ReadFile: %q", got)
	}
	if !strings.HasPrefix(filepath.Join(c.Root(), "root/inside"), c.Root()) {
		t.Error("Root")
	}
	if _, err := os.Stat(filepath.Join(c.Root(), "root/inside")); err != nil {
		t.Errorf("Root does not show the container's files: %v", err)
	}

	// Symlinks resolve inside the container, absolute ones included: nothing lands on the host.
	hostDir := t.TempDir()
	c.MustExec(t, "mkdir", "-p", "/links", hostDir)
	c.MustExec(t, "ln", "-s", hostDir, "/links/abs")
	c.MustExec(t, "ln", "-s", "../../../..", "/links/up")
	c.WriteFile(t, "/links/abs/x", []byte("abs\n"), 0o644)
	c.WriteFile(t, "/links/up/y", []byte("up\n"), 0o644)
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("WriteFile through an absolute symlink wrote on the host: %v", entries)
	}
	if got := c.MustExec(t, "cat", hostDir+"/x", "/y"); got != "abs\nup\n" {
		t.Errorf("files written through symlinks, inside: %q", got)
	}
	for _, bad := range []string{"etc/passwd", "/etc/../../x", "../x", ""} {
		if _, err := rel(bad); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}

	// CopyIn: a tree, with modes and a symlink.
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o700)
	os.WriteFile(filepath.Join(src, "sub/run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	os.Symlink("sub/run.sh", filepath.Join(src, "link"))
	c.CopyIn(t, src, "/opt/tree")
	if got := c.MustExec(t, "/opt/tree/link"); got != "ran\n" {
		t.Errorf("copied script: %q", got)
	}
	if got := c.MustExec(t, "stat", "-c", "%a", "/opt/tree/sub", "/opt/tree/sub/run.sh"); got != "700\n755\n" {
		t.Errorf("copied modes: %q", got)
	}
}

// TestParallel: two machines at once, each with its own files, hostname and cgroups.
func TestParallel(t *testing.T) {
	img := Available(t)
	var written sync.WaitGroup
	written.Add(2)
	names := make(chan string, 2)
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			done := sync.OnceFunc(written.Done)
			t.Cleanup(done) // never leave the other one waiting
			c := img.Boot(t)
			c.WriteFile(t, "/root/"+sub, []byte(c.Name()), 0o644)
			names <- c.Name()
			done()
			written.Wait() // both have written
			if got := strings.Fields(c.MustExec(t, "ls", "/root")); !slices.Equal(got, []string{sub}) {
				t.Errorf("container %s sees %v in /root, want only its own file %q", sub, got, sub)
			}
			if got := strings.TrimSpace(c.MustExec(t, "hostname")); got != c.Name() {
				t.Errorf("hostname %q, want %q", got, c.Name())
			}
		})
	}
	t.Cleanup(func() {
		close(names)
		var all []string
		for n := range names {
			all = append(all, n)
		}
		if len(all) == 2 && all[0] == all[1] {
			t.Errorf("two containers named %s", all[0])
		}
	})
}

// TestTeardown: after a test's cleanups, nothing of its container is left on the host.
func TestTeardown(t *testing.T) {
	img := Available(t)
	t.Parallel()
	var (
		rec                  record
		leader, nspawn       int
		leaderSt, nspawnSt   uint64
		machinePIDs          []int
		mountsBefore, before string
	)
	t.Run("boot", func(t *testing.T) {
		c := img.Boot(t)
		// a service and a stray background process, which the halt must end
		c.MustExec(t, "systemd-run", "--unit=stray", "sleep", "1000")
		c.MustExec(t, "sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
		rec = c.rec
		leader, nspawn = c.Leader(), c.cmd.Process.Pid
		st, _ := readStat(leader)
		leaderSt = st.start
		st, _ = readStat(nspawn)
		nspawnSt = st.start
		for _, dir := range rec.Cgroups {
			machinePIDs = append(machinePIDs, cgroupPIDs(dir)...)
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		mountsBefore, before = string(mounts), rec.Merged
	})
	if !strings.Contains(mountsBefore, before) || len(machinePIDs) < 5 {
		t.Fatalf("the container was not up as expected: merged %s mounted: %v, %d processes",
			before, strings.Contains(mountsBefore, before), len(machinePIDs))
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), rec.Dir) {
		t.Errorf("still mounted under %s", rec.Dir)
	}
	for _, p := range append([]string{rec.Dir, rec.path(), rec.NspawnLock, "/run/systemd/nspawn/propagate/" + rec.Name}, rec.Cgroups...) {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left behind", p)
		}
	}
	if alive(leader, leaderSt) || alive(nspawn, nspawnSt) {
		t.Errorf("the machine's PID 1 (%d) or systemd-nspawn (%d) still runs", leader, nspawn)
	}
	for _, pid := range machinePIDs {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			st, _ := readStat(pid)
			t.Logf("PID %d (%s) exists after teardown (reused, or left behind)", pid, st.comm)
		}
	}
}

// TestApt: the image's package lists allow installing without apt-get update, and a .deb that
// one container downloaded is in the shared cache, where the next container finds it.
func TestApt(t *testing.T) {
	img := Available(t)
	t.Parallel()
	cache := t.TempDir() // empty, so that the first container must download
	install := []string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends", "hello"}

	first := img.Boot(t, WithArchiveCache(cache))
	out := first.MustExec(t, install...)
	if !strings.Contains(out, "Get:") {
		t.Errorf("the first container did not download hello:\n%s", out)
	}
	if got := first.MustExec(t, "hello"); got != "Hello, world!\n" {
		t.Errorf("hello says %q", got)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, "hello_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("the shared cache %s holds %v after the first install, want hello's .deb", cache, debs)
	}

	second := img.Boot(t, WithArchiveCache(cache))
	out = second.MustExec(t, install...)
	if strings.Contains(out, "Get:") || !strings.Contains(out, "Need to get 0 B") {
		t.Errorf("the second container downloaded again:\n%s", out)
	}
	second.MustExec(t, "dpkg-query", "-W", "hello")
	if entries, _ := os.ReadDir(cache); len(entries) != 1 {
		t.Errorf("the shared cache holds %d entries, want 1 (containers must not write to it)", len(entries))
	}
}

// TestOptions: a private network has only loopback; a bind mount shows a host directory.
func TestOptions(t *testing.T) {
	img := Available(t)
	t.Parallel()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "from-host"), []byte("hi\n"), 0o644)
	c := img.Boot(t, WithPrivateNetwork(), WithBindRO(host, "/mnt/host"), WithoutArchiveCache())
	if links := c.MustExec(t, "ip", "-o", "link"); strings.Count(links, "\n") != 1 || !strings.Contains(links, "lo:") {
		t.Errorf("links with a private network:\n%s", links)
	}
	if got := c.MustExec(t, "cat", "/mnt/host/from-host"); got != "hi\n" {
		t.Errorf("bound file: %q", got)
	}
	if _, _, code := c.Exec(t, "touch", "/mnt/host/x"); code == 0 {
		t.Error("a read-only bind mount is writable")
	}
	// Without a network apt fails at once (no resolver timeouts: WithPrivateNetwork), but for
	// its own retries: 1 + 2 + 4 s unless Acquire::Retries=0.
	_, stderr, code := c.Exec(t, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "Acquire::Retries=0", "install", "-y", "tree")
	if code == 0 || !strings.Contains(stderr, "Temporary failure resolving 'deb.debian.org'") {
		t.Errorf("apt without network: exit %d\n%s", code, stderr)
	}
}

// TestSatchelInside: the static binary runs in a container and converges it.
func TestSatchelInside(t *testing.T) {
	img := Available(t)
	t.Parallel()
	bin := SatchelBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
	if again := SatchelBinary(t); again != bin {
		t.Errorf("SatchelBinary built twice: %s, %s", bin, again)
	}

	c := img.Boot(t)
	c.InstallSatchel(t)
	c.WriteFile(t, "/etc/satchel/site.hcl", []byte(`node "satchel-*" {
  file "motd" {
    path    = "/etc/motd"
    content = "Welcome to ${node.name} (${fact.os.id})\n"
  }
}
`), 0o644)
	if _, _, code := c.Exec(t, "satchel", "apply", "--detailed-exitcode", "/etc/satchel"); code != 2 {
		t.Errorf("first apply exits %d, want 2 (changes)", code)
	}
	if got := string(c.ReadFile(t, "/etc/motd")); got != "Welcome to "+c.Name()+" (debian)\n" {
		t.Errorf("/etc/motd = %q", got)
	}
	c.MustExec(t, "satchel", "apply", "--detailed-exitcode", "/etc/satchel") // 0: nothing to change
}

func TestMachineName(t *testing.T) {
	seen := map[string]bool{}
	for _, test := range []string{"TestX", "TestPackage/install_two_packages,_one_transaction", strings.Repeat("Test_long", 20), "Test/ü/"} {
		n := machineName(test)
		if len(n) > 64 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.Contains(n, "--") || seen[n] {
			t.Errorf("machineName(%q) = %q", test, n)
		}
		seen[n] = true
	}
}

// fakeTB records what Available does to a test instead of stopping the real one.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

// TestAvailableWithoutImage: a missing image skips the test, with what to run, except in CI
// (SATCHEL_SYSTEST=1), where it fails it.
func TestAvailableWithoutImage(t *testing.T) {
	t.Setenv(EnvImage, "/nonexistent/satchel-image")
	run := func() *fakeTB {
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); Available(f) }()
		<-done
		return f
	}
	t.Setenv(EnvSystest, "")
	if f := run(); f.fatal != "" || !strings.Contains(f.skip, "no test image at /nonexistent/satchel-image: run scripts/test-image.sh") {
		t.Errorf("without SATCHEL_SYSTEST: skip %q, fatal %q", f.skip, f.fatal)
	}
	t.Setenv(EnvSystest, "1")
	if f := run(); f.skip != "" || !strings.Contains(f.fatal, "run scripts/test-image.sh") {
		t.Errorf("with SATCHEL_SYSTEST=1: skip %q, fatal %q", f.skip, f.fatal)
	}
}
