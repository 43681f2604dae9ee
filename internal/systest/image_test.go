package systest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The warehouse flow of the user guide: a school server's disk image prepared on a workstation
// (this host), so that the machine boots already converged and enrolls at its first boot:
//
//	chroot IMAGE dpkg -i /tmp/satchel.deb                  # the agent, from Satchel's package
//	satchel apply --root IMAGE --node school-001 --facts school-001.json CONFIG
//	satchel bootstrap-script --server URL --ca-fingerprint FP --token T | ROOT=IMAGE sh
//
// The image is then booted (a container) and checked from inside; nothing may have escaped
// it onto the workstation.
func TestImagePreparedWithRoot(t *testing.T) {
	t.Parallel()
	img := Available(t)
	bin := SatchelBinary(t)
	deb := buildDeb(t)
	example := exampleDir(t)
	before := hostState(t)

	dir := t.TempDir()
	image, state := filepath.Join(dir, "image"), filepath.Join(dir, "state")
	start := time.Now()
	hostRun(t, nil, "", "cp", "-a", "--reflink=auto", img.Dir(), image)
	seedArchives(t, img.archives, filepath.Join(image, "var/cache/apt/archives"))
	t.Logf("image copied to %s in %v", image, time.Since(start).Round(time.Millisecond))

	// Satchel itself, from its Debian package, as an image needs it (the first-boot unit runs
	// /usr/bin/satchel). dpkg --root would resolve the statoverride's group names on the host,
	// so the package goes in through chroot.
	if err := copyFile(deb, filepath.Join(image, "tmp/satchel.deb")); err != nil {
		t.Fatal(err)
	}
	hostRun(t, nil, "", "chroot", image, "dpkg", "-i", "/tmp/satchel.deb")
	if err := os.Remove(filepath.Join(image, "tmp/satchel.deb")); err != nil {
		t.Fatal(err)
	}

	// The configuration, applied from the workstation with manage_system on (its default):
	// packages through apt in a chroot, units through systemctl --root, accounts through the
	// shadow tools' --root.
	reportFile := filepath.Join(dir, "report.json")
	apply := func() (string, int) {
		t.Helper()
		start := time.Now()
		out, code := hostExec(t, nil, "", bin, "apply", "--detailed-exitcode", "--root", image, "--state-dir", state,
			"--report", reportFile, "--node", "school-001", "--facts", filepath.Join(example, "facts", "school-001.json"), example)
		t.Logf("satchel apply --root: exit %d after %v", code, time.Since(start).Round(time.Millisecond))
		return out, code
	}
	out, code := apply()
	if code != 2 {
		t.Fatalf("first apply --root exited %d, want 2 (changes made):\n%s", code, out)
	}
	// What cannot be done in an image is said, not passed over: the services and the timer
	// start when it boots.
	notes := reportNotes(t, reportFile)
	for addr, want := range map[string]string{
		"service.squid":           "running: not applicable under --root (services start when the image boots)",
		"timer.content_inventory": "active: not applicable under --root (services start when the image boots)",
	} {
		if !slices.Contains(notes[addr], want) {
			t.Errorf("%s: notes %q, want %q", addr, notes[addr], want)
		}
	}
	for _, want := range []string{"package.squid", "user.teacher", "hostname.this", "timer.content_inventory", " 0 failed, "} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply --root does not mention %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "monte-verde-1949") {
		t.Error("the wifi passphrase appeared in the output")
	}
	out, code = apply()
	if code != 0 || !strings.Contains(out, " 0 changed, ") {
		t.Fatalf("second apply --root exited %d, want 0 with nothing changed:\n%s", code, out)
	}

	// First-boot enrollment, installed into the image: satchel bootstrap-script … | ROOT=IMAGE sh.
	script := hostRun(t, nil, "", bin, "bootstrap-script", "--server", "https://127.0.0.1:1",
		"--ca-fingerprint", strings.Repeat("5e", 32), "--token", "warehouse-batch-0001")
	if out := hostRun(t, []string{"ROOT=" + image}, script, "sh"); !strings.Contains(out, "enrolls with https://127.0.0.1:1") {
		t.Errorf("bootstrap script said %q", out)
	}
	// The image has no machine ID of its own: each machine made from it gets one at its first
	// boot, and enrolls with it.
	if id, err := os.ReadFile(filepath.Join(image, "etc/machine-id")); err != nil || len(id) != 0 {
		t.Errorf("the image's /etc/machine-id: %q %v, want an empty file", id, err)
	}
	if exists(filepath.Join(image, "var/lib/dbus/machine-id")) {
		t.Error("the image has a /var/lib/dbus/machine-id")
	}

	// Nothing escaped the image: the workstation's accounts, name and packages are as they
	// were, the state went to --state-dir, and nothing the packages' scripts might have
	// started runs in the image.
	if after := hostState(t); after != before {
		t.Errorf("the host changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if p := defaultRootState(image); exists(p) {
		t.Errorf("%s exists: the run kept its state on the host despite --state-dir", p)
	}
	if procs := processesIn(image); len(procs) > 0 {
		t.Errorf("processes run in the image after apply --root: %s", strings.Join(procs, "; "))
	}
	// What apt downloaded into the image is shared with later tests.
	if err := harvestInto(filepath.Join(image, "var/cache/apt/archives"), img.archives); err != nil {
		t.Logf("apt archive cache: %v", err)
	}

	// The school server's first boot.
	c := (&Image{dir: image, archives: img.archives}).Boot(t)
	checks := append(schoolServerChecks(), [][]string{
		{"test", "-f", "/home/teacher/.bashrc"},
		{"systemctl", "is-active", "content_inventory.timer"},
		{"systemctl", "is-enabled", "systemd-timesyncd"},
		{"dpkg-query", "-W", "squid", "systemd-timesyncd", "satchel"},
		{"systemctl", "is-enabled", "satchel-enroll.service"},
		{"test", "-s", "/etc/machine-id"}, // its own, made at this first boot
	}...)
	for _, argv := range checks {
		if stdout, stderr, code := c.Exec(t, argv...); code != 0 {
			t.Errorf("%s: exit %d %s%s", strings.Join(argv, " "), code, stdout, stderr)
		}
	}
	if got := strings.TrimSpace(c.MustExec(t, "hostname")); got != "school-001" {
		t.Errorf("hostname = %q, want school-001", got)
	}
	if got := strings.TrimSpace(c.MustExec(t, "stat", "-c", "%U:%G", "/home/teacher")); got != "teacher:teachers" {
		t.Errorf("/home/teacher is owned by %s, want teacher:teachers", got)
	}
	if !strings.Contains(c.MustExec(t, "id", "-nG", "teacher"), "teachers") {
		t.Error("teacher is not in the teachers group")
	}
	// The first-boot unit ran (boot is over, and multi-user.target waits for it) under the
	// machine's name; it failed, no server listening, and keeps the token for its next try.
	if stdout, stderr, code := c.Exec(t, "stat", "-c", "%a %U", "/etc/satchel/enroll.env"); code != 0 || stdout != "600 root\n" {
		t.Errorf("/etc/satchel/enroll.env: mode and owner %q, want 600 root (exit %d %s)", stdout, code, stderr)
	}
	if journal := c.MustExec(t, "journalctl", "--no-pager", "-u", "satchel-enroll.service"); !strings.Contains(journal, "enroll school-001 with https://127.0.0.1:1") {
		t.Errorf("satchel-enroll.service did not try to enroll school-001:\n%s", journal)
	}

	// The machine is converged: satchel (the image's, from the package), run on it as its
	// agent would, changes nothing.
	c.CopyIn(t, example, "/etc/satchel/school-server")
	stdout, stderr, code := c.Exec(t, "satchel", "apply", "--detailed-exitcode", "--node", "school-001", "/etc/satchel/school-server")
	if code != 0 || !strings.Contains(stdout, " 0 changed, ") {
		t.Errorf("apply on the booted machine exited %d, want 0 with nothing changed:\n%s%s", code, stdout, stderr)
	}
}

// hostExec runs argv on the host (the workstation), with extra environment variables and
// stdin as its input, and returns its combined output and exit status.
func hostExec(t *testing.T, env []string, stdin string, argv ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		return out.String(), exitErr.ExitCode()
	}
	t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
	return "", -1
}

// hostRun is hostExec for commands that must succeed; it returns their output.
func hostRun(t *testing.T, env []string, stdin string, argv ...string) string {
	t.Helper()
	out, code := hostExec(t, env, stdin, argv...)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", strings.Join(argv, " "), code, out)
	}
	return out
}

// reportNotes reads the notes of a run report (satchel apply --report), by resource address.
func reportNotes(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Resources []struct {
			Address string   `json:"address"`
			Notes   []string `json:"notes"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	notes := map[string][]string{}
	for _, r := range rep.Resources {
		notes[r.Address] = r.Notes
	}
	return notes
}

// hostState describes what of the host an image's preparation could touch by mistake:
// accounts, name, installed packages, units, the files the configuration manages.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	name, err := os.Hostname()
	fmt.Fprintf(&b, "hostname %q %v\n", name, err)
	for _, p := range []string{
		"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
		"/etc/hostname", "/etc/hosts", "/etc/motd", "/var/lib/dpkg/status",
		"/etc/squid", "/usr/sbin/squid", "/etc/school", "/home/teacher", "/srv/content",
		"/etc/satchel/enroll.env", "/etc/satchel/managed-by", "/etc/sysctl.d/60-school.conf",
		"/etc/systemd/system/satchel-enroll.service", "/etc/systemd/system/content_inventory.timer",
		"/etc/systemd/system/content_inventory.service",
		"/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/timers.target.wants",
	} {
		fmt.Fprintf(&b, "%s %s\n", p, describe(p))
	}
	return b.String()
}

// describe says what is at p: absent, a directory and its entries, or a file's hash.
func describe(p string) string {
	info, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "absent"
	case err != nil:
		return err.Error()
	case info.IsDir():
		names, err := os.ReadDir(p)
		if err != nil {
			return err.Error()
		}
		var list []string
		for _, n := range names {
			list = append(list, n.Name())
		}
		return fmt.Sprintf("dir %v %v", info.Mode(), list)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	sum := sha256.Sum256(data)
	return fmt.Sprintf("%v %s", info.Mode(), hex.EncodeToString(sum[:8]))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// defaultRootState is where satchel apply --root keeps its state without --state-dir (as
// root): a directory of /var/lib/satchel/roots named after the root's path.
func defaultRootState(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join("/var/lib/satchel/roots", hex.EncodeToString(sum[:8]))
}

// processesIn lists the host's processes whose root directory or executable is inside dir.
func processesIn(dir string) []string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // /proc shows resolved paths
	}
	entries, _ := os.ReadDir("/proc")
	var found []string
	inside := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if inside(root) || inside(exe) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			found = append(found, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	return found
}

// seedArchives links (or copies) the .debs of the shared apt archive cache into an image's
// /var/cache/apt/archives, so that apt in the image downloads only what no test has yet.
func seedArchives(t *testing.T, shared, dst string) {
	t.Helper()
	entries, err := os.ReadDir(shared)
	if err != nil {
		t.Logf("apt archive cache: %v", err)
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		src, to := filepath.Join(shared, e.Name()), filepath.Join(dst, e.Name())
		if err := os.Link(src, to); err != nil {
			if err := copyFile(src, to); err != nil {
				t.Fatalf("seed the image's apt archives: %v", err)
			}
		}
	}
}

// harvestInto adds the complete .debs of an image's /var/cache/apt/archives to the shared
// cache, as containers do with theirs.
func harvestInto(archives, shared string) error {
	entries, err := os.ReadDir(archives)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") || strings.HasPrefix(e.Name(), ".") || exists(filepath.Join(shared, e.Name())) {
			continue
		}
		if err := publish(filepath.Join(archives, e.Name()), filepath.Join(shared, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
