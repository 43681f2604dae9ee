package systest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Container is one booted machine: a private overlay of the image with systemd running in it.
// Its methods take the test they are called from, and fail it on errors of the harness itself.
type Container struct {
	name   string
	dir    string // on the host: upper, work and merged of the overlay, and the archives' upper
	merged string // the container's root, seen from the host
	cfg    config
	rec    record // what the reaper needs, should this process die before teardown

	archShared string // shared apt archive cache: the lower layer of /var/cache/apt/archives
	archUpper  string // this container's upper layer of it, "" if there is no shared cache

	cmd     *exec.Cmd     // systemd-nspawn
	done    chan struct{} // closed when systemd-nspawn has exited
	waitErr error         // systemd-nspawn's exit status, valid after done
	console *tail         // systemd-nspawn's output and the machine's console

	leader   int // PID (on the host) of the machine's PID 1, systemd
	leaderFD int // a pidfd of the leader, -1 when there is none
}

// Name returns the machine name, which is also the container's hostname. It is unique among
// the containers of this host.
func (c *Container) Name() string { return c.name }

// Leader returns the host PID of the container's PID 1 (systemd), e.g. for nsenter -t.
func (c *Container) Leader() int { return c.leader }

// Root returns the overlay's mount point on the host: the container's root file system, but
// not what is mounted inside the container (its /tmp and /run are tmpfs there) and with
// absolute symlinks that would resolve on the host. Prefer WriteFile, ReadFile and CopyIn,
// which see the container as its processes do.
func (c *Container) Root() string { return c.merged }

// Boot starts a container from the image and waits until its systemd has finished booting.
// The container is halted and removed when the test ends (t.Cleanup).
func (img *Image) Boot(t testing.TB, opts ...Option) *Container {
	t.Helper()
	start := time.Now()
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	c := &Container{name: machineName(t.Name()), cfg: cfg, leaderFD: -1, done: make(chan struct{}),
		console: &tail{max: 64 << 10}}
	dir, err := os.MkdirTemp("", c.name+"-")
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	c.dir = dir
	c.rec = record{Name: c.name, Dir: dir} // start fills in the rest
	t.Cleanup(func() { c.teardown(t) })
	if err := c.start(img); err != nil {
		t.Fatalf("boot %s: %v\n%s", c.name, err, c.diagnostics())
	}
	state, err := c.waitBooted()
	if err != nil {
		t.Fatalf("boot %s: %v\n%s", c.name, err, c.diagnostics())
	}
	if cfg.noNetwork {
		c.WriteFile(t, "/etc/resolv.conf", []byte("nameserver 127.0.0.1\n"), 0o644)
	}
	t.Logf("container %s: %s after %v", c.name, state, time.Since(start).Round(time.Millisecond))
	if state == "degraded" {
		out, _ := c.Command(t.Context(), "systemctl", "--failed", "--no-legend", "--no-pager").CombinedOutput()
		t.Logf("container %s: failed units:\n%s", c.name, out)
	}
	return c
}

// machineName makes a machine name (and hostname) from a test's name: lowercase letters,
// digits and dashes, at most 49 characters, with a random suffix.
func machineName(test string) string {
	var b strings.Builder
	dash := true // no leading dash
	for _, r := range strings.ToLower(strings.TrimPrefix(test, "Test")) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := b.String()
	if len(slug) > 32 {
		slug = slug[:32]
	}
	slug = strings.TrimRight(slug, "-")
	if slug == "" {
		slug = "test"
	}
	return fmt.Sprintf("satchel-%s-%08x", slug, rand.Uint32())
}

// start mounts the overlay, creates the cgroups and starts systemd-nspawn.
func (c *Container) start(img *Image) error {
	if strings.ContainsAny(img.dir+c.dir, ",:") {
		return fmt.Errorf("overlay paths cannot hold ',' or ':': %s, %s", img.dir, c.dir)
	}
	upper, work := filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work")
	c.merged = filepath.Join(c.dir, "merged")
	for _, d := range []string{upper, work, c.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	c.archShared = img.archives
	if c.cfg.archives != nil {
		c.archShared = *c.cfg.archives
	}
	if c.archShared != "" {
		c.archUpper = filepath.Join(c.dir, "archives")
		if err := os.Mkdir(c.archUpper, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(c.archShared, 0o755); err != nil {
			return fmt.Errorf("apt archive cache: %w", err)
		}
	}
	roots, err := cgroupRoots()
	if err != nil {
		return err
	}
	self, err := readStat(os.Getpid())
	if err != nil {
		return err
	}
	c.rec.Owner, c.rec.OwnerStart, c.rec.Merged = os.Getpid(), self.start, c.merged
	for _, r := range roots {
		c.rec.Cgroups = append(c.rec.Cgroups, filepath.Join(r, c.name))
	}
	if err := c.rec.save(); err != nil { // before anything needs undoing
		return err
	}

	opts := "lowerdir=" + img.dir + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", c.merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", c.merged, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(c.merged, &st); err != nil {
		return err
	}
	// systemd-nspawn locks the directory it boots; after a hard kill the lock file stays.
	c.rec.NspawnLock = fmt.Sprintf("/run/systemd/nspawn/locks/inode-%d:%d", st.Dev, st.Ino)
	if err := c.rec.save(); err != nil {
		return err
	}
	cgroups, err := makeCgroups(c.name)
	if err != nil {
		return err
	}

	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		return err
	}
	args := []string{"-q", "-D", c.merged, "-M", c.name, "--register=no", "--keep-unit", "--console=pipe"}
	if c.archUpper != "" {
		args = append(args, "--overlay="+escapeColons(c.archShared)+":"+escapeColons(c.archUpper)+":/var/cache/apt/archives")
	}
	args = append(args, c.cfg.nspawnArgs...)
	args = append(args, "-b")
	// The shell moves itself into the container's cgroups, then becomes systemd-nspawn, which
	// creates its payload and supervisor cgroups below them (--keep-unit).
	const script = `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1/cgroup.procs" || exit 125; shift; n=$((n-1)); done; exec "$@"`
	argv := append([]string{"-c", script, "sh", strconv.Itoa(len(cgroups))}, cgroups...)
	argv = append(argv, nspawn)
	argv = append(argv, args...)
	c.cmd = exec.Command("/bin/sh", argv...)
	c.cmd.Stdout, c.cmd.Stderr = c.console, c.console
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:    true,            // nspawn wants a session of its own (no host bus here)
		Pdeathsig: syscall.SIGTERM, // if this process dies, the machine halts
	}
	c.cmd.WaitDelay = 5 * time.Second // the console pipe closes when the machine's last process dies
	if err := c.cmd.Start(); err != nil {
		c.cmd = nil
		return err
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()
	return nil
}

// exited reports whether systemd-nspawn has exited.
func (c *Container) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitBooted finds the machine's PID 1 and waits until systemd says it is running (or
// degraded: booted, with a failed unit).
func (c *Container) waitBooted() (string, error) {
	deadline := time.Now().Add(c.cfg.bootTimeout)
	nspawn := c.cmd.Process.Pid
	for c.leader == 0 {
		if c.exited() {
			return "", fmt.Errorf("systemd-nspawn exited during boot: %v", c.waitErr)
		}
		if pid := childNamed(nspawn, "systemd"); pid != 0 {
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				return "", fmt.Errorf("pidfd_open %d: %w", pid, err)
			}
			// the PID was the leader's when we looked; make sure the pidfd is of that process
			if st, err := readStat(pid); err != nil || st.ppid != nspawn {
				unix.Close(fd)
				continue
			}
			c.leader, c.leaderFD = pid, fd
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("systemd did not start within %v", c.cfg.bootTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var state string
	for {
		out, _ := exec.Command("nsenter", "-t", strconv.Itoa(c.leader), "-a", "systemctl", "is-system-running").Output()
		state = strings.TrimSpace(string(out))
		if state == "running" || state == "degraded" {
			return state, nil
		}
		if c.exited() {
			return "", fmt.Errorf("systemd-nspawn exited during boot: %v", c.waitErr)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not booted after %v: systemctl is-system-running says %q", c.cfg.bootTimeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// diagnostics describes the machine for a failure message: its console and, if it runs,
// its jobs, failed units and last journal lines.
func (c *Container) diagnostics() string {
	var b strings.Builder
	if c.leader != 0 && c.cmd != nil && !c.exited() {
		for _, argv := range [][]string{
			{"systemctl", "list-jobs", "--no-pager"},
			{"systemctl", "--failed", "--no-pager"},
			{"journalctl", "-b", "-n", "40", "--no-pager"},
		} {
			cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(c.leader), "-a"}, argv...)...)
			cmd.WaitDelay = time.Second
			out, _ := cmd.CombinedOutput()
			fmt.Fprintf(&b, "--- %s:\n%s", strings.Join(argv, " "), out)
		}
	}
	fmt.Fprintf(&b, "--- console of %s:\n%s", c.name, c.console)
	return b.String()
}

// teardown halts the machine and removes everything Boot made on the host.
func (c *Container) teardown(t testing.TB) {
	start := time.Now()
	if c.cmd != nil {
		if err := c.harvest(); err != nil {
			t.Logf("container %s: apt archive cache: %v", c.name, err)
		}
		if t.Failed() && !c.exited() {
			t.Logf("container %s: the test failed; the machine's state:\n%s", c.name, c.diagnostics())
		}
		c.halt(t)
	}
	// After a clean halt the cgroups are empty; anything left is the machine's, so ours.
	for _, dir := range c.rec.Cgroups {
		if pids := cgroupPIDs(dir); len(pids) > 0 {
			t.Errorf("container %s: processes %v still in %s after the halt; killing them", c.name, pids, dir)
		}
	}
	for _, err := range releaseHost(&c.rec) {
		t.Errorf("container %s: teardown: %v", c.name, err)
	}
	t.Logf("container %s: torn down in %v", c.name, time.Since(start).Round(time.Millisecond))
}

// halt stops the machine cleanly, or kills it if that takes longer than the halt timeout.
func (c *Container) halt(t testing.TB) {
	if !c.exited() {
		// nspawn turns SIGTERM into a clean halt of the machine (SIGRTMIN+3 to its systemd).
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(c.cfg.haltTimeout):
			t.Errorf("container %s: no clean halt within %v; killing it\n%s", c.name, c.cfg.haltTimeout, c.diagnostics())
			_ = c.cmd.Process.Kill()
		}
	}
	if c.leaderFD >= 0 {
		// The machine's PID 1 exits with nspawn; if nspawn was killed, kill it too: that ends
		// every process of its PID namespace.
		if !waitPidfd(c.leaderFD, 2*time.Second) {
			_ = unix.PidfdSendSignal(c.leaderFD, unix.SIGKILL, nil, 0)
			if !waitPidfd(c.leaderFD, 10*time.Second) {
				t.Errorf("container %s: PID 1 (%d) survives SIGKILL", c.name, c.leader)
			}
		}
		unix.Close(c.leaderFD)
		c.leaderFD = -1
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Errorf("container %s: systemd-nspawn (%d) does not exit", c.name, c.cmd.Process.Pid)
		_ = c.cmd.Process.Kill()
	}
}

// waitPidfd waits up to d for the process of pidfd fd to exit, and reports whether it did.
func waitPidfd(fd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds()))
		if err == nil {
			return n > 0
		}
		if !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
