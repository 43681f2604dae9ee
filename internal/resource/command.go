package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// command is a system tool a resource runs (apt-get, systemctl, useradd): with a clean
// environment, in its own process group, killed with its children if ctx ends or the
// timeout passes, and with its output kept for error messages.
type command struct {
	argv    []string
	env     []string // added to a minimal environment
	stdin   io.Reader
	timeout time.Duration
	// mustFinish: neither an interrupted run nor a timeout kills it. For dpkg: killed
	// half-way, it leaves packages half-configured and the package system locked up until
	// someone runs dpkg --configure -a.
	mustFinish bool
}

// commandResult is what a command printed and how it ended.
type commandResult struct {
	stdout, stderr string
	code           int
}

// output returns stderr and stdout, trimmed, for messages.
func (r *commandResult) output() string {
	return strings.TrimSpace(strings.TrimSpace(r.stderr) + "\n" + strings.TrimSpace(r.stdout))
}

// baseEnv is the environment of system tools: predictable (English messages, no pager, no
// prompts) and independent of satchel's own.
var baseEnv = []string{"PATH=" + defaultPath, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=dumb"}

// run runs the command. A non-zero exit is not an error: callers read code and output. An
// error means it could not run, timed out or was interrupted.
func (c command) run(ctx context.Context) (*commandResult, error) {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	if c.mustFinish {
		ctx, timeout = context.Background(), 0
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	prog, err := lookPath(c.argv[0], baseEnv)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, prog, c.argv[1:]...)
	cmd.Args[0] = c.argv[0]
	cmd.Env = append(append([]string(nil), baseEnv...), c.env...)
	cmd.Dir = "/"
	cmd.Stdin = c.stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := &commandResult{stdout: stdout.String(), stderr: stderr.String()}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return res, fmt.Errorf("%s did not finish within %s and was killed", c.argv[0], timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s was interrupted", c.argv[0])
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
		return res, nil
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // a daemon it started keeps the output open; the command itself ended
	}
	if err != nil {
		return res, fmt.Errorf("run %s: %w", c.argv[0], err)
	}
	return res, nil
}

// inRoot prefixes argv so that it acts on the root: nothing for "/", chroot otherwise (the
// root must then be a system with the tool installed).
func inRoot(env *Env, argv ...string) []string {
	if env.Root.Dir() == "/" {
		return argv
	}
	return append([]string{"chroot", env.Root.Dir()}, argv...)
}
