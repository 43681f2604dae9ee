package systest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ContainerPATH is the PATH of commands run inside a container.
const ContainerPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// teardownGrace is kept free before the test binary's deadline (go test -timeout) so that
// cleanups still run: a command that would run into it is killed.
const teardownGrace = 30 * time.Second

// Command returns a command that runs argv inside the container, in all its namespaces, as
// root, with only PATH=ContainerPATH and HOME=/root in its environment (add variables with
// "env", "NAME=value", ... in front of argv). Set its Stdin, Stdout and Stderr as needed. When
// ctx is done, the command and what it started in its process group are killed.
func (c *Container) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(c.leader), "-a", "env", "-i", "PATH=" + ContainerPATH, "HOME=/root"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	// nsenter forks the command into the container's PID namespace; in one process group with
	// nsenter, both die together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon started in the background may keep stdout open: stop reading 2 s after the
	// command exits.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Exec runs argv inside the container and returns its output and exit status (-1 if it was
// killed by a signal). It fails the test if the command cannot be run at all, if it runs out of
// time (WithExecTimeout), or if the container is no longer running.
func (c *Container) Exec(t testing.TB, argv ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	if c.leader == 0 || c.exited() {
		t.Fatalf("exec %q: container %s is not running\n%s", argv, c.name, c.diagnostics())
	}
	timeout := c.cfg.execTimeout
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			timeout = min(timeout, max(time.Until(deadline)-teardownGrace, time.Second))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.Command(ctx, argv...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if herr := c.harvest(); herr != nil {
		t.Logf("container %s: apt archive cache: %v", c.name, herr)
	}
	stdout, stderr = o.String(), e.String()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("exec %q in %s: killed after %v\nstdout:\n%s\nstderr:\n%s", argv, c.name, timeout, stdout, stderr)
	case c.exited():
		t.Fatalf("exec %q: container %s stopped (systemd-nspawn: %v)\nstdout:\n%s\nstderr:\n%s\n%s",
			argv, c.name, c.waitErr, stdout, stderr, c.diagnostics())
	case err == nil:
		return stdout, stderr, 0
	case errors.As(err, &exitErr):
		return stdout, stderr, exitErr.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay): // exited, but something it started holds stdout
		return stdout, stderr, cmd.ProcessState.ExitCode()
	default:
		t.Fatalf("exec %q in %s: %v", argv, c.name, err)
	}
	return "", "", -1 // not reached
}

// MustExec runs argv inside the container like Exec, fails the test with the whole output if
// it exits with a status other than 0, and returns its standard output.
func (c *Container) MustExec(t testing.TB, argv ...string) string {
	t.Helper()
	stdout, stderr, code := c.Exec(t, argv...)
	if code != 0 {
		t.Fatalf("exec %s in %s: exit status %d\nstdout:\n%s\nstderr:\n%s", quoteArgs(argv), c.name, code, stdout, stderr)
	}
	return stdout
}

// quoteArgs renders argv as a shell would read it, for messages.
func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
