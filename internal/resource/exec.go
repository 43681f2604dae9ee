package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/schema"
)

// Exec runs a command when its guards say it is needed, or when notified.
type Exec struct {
	base
	Command     *string           `attr:"command" doc:"A shell command, run with /bin/sh -c."`
	Argv        []string          `attr:"argv" doc:"The program and its arguments, run directly without a shell (instead of command)."`
	Creates     *string           `attr:"creates" format:"path" doc:"Run only if this path does not exist (inside the root)."`
	Unless      *string           `attr:"unless" doc:"Run only if this shell command fails. Guards also run under --noop, so keep them free of side effects."`
	OnlyIf      *string           `attr:"onlyif" doc:"Run only if this shell command succeeds. Guards also run under --noop."`
	RefreshOnly bool              `attr:"refresh_only" default:"false" doc:"Run only when notified by a resource that changed."`
	Timeout     string            `attr:"timeout" default:"5m" format:"duration" doc:"Kill the command (and its children) after this long, and fail."`
	Cwd         string            `attr:"cwd" default:"/" format:"path" autorequire:"true" doc:"Working directory, inside the root. The command itself is not confined to the root: use $SATCHEL_ROOT."`
	Environment map[string]string `attr:"environment" doc:"Extra environment variables. PATH defaults to the usual system directories; SATCHEL_ROOT holds the root (\"\" for /)."`

	ran bool // CheckApply ran the command in this run (or, under no-op, reported that it would)
}

var execDef = definition{
	name:  "exec",
	doc:   "A command, run when its guards (creates, unless, onlyif) say it is needed or when notified.",
	proto: (*Exec)(nil),
	check: func(v schema.Values) []*schema.AttrError {
		_, hasCmd := v["command"]
		_, hasArgv := v["argv"]
		if hasCmd == hasArgv {
			return []*schema.AttrError{{Attr: "command", Summary: "Missing or conflicting command",
				Detail: "give exactly one of command (a shell command) and argv (a program and its arguments)."}}
		}
		if argv, ok := v["argv"].([]string); ok && len(argv) == 0 {
			return []*schema.AttrError{{Attr: "argv", Summary: "Empty argv", Detail: "argv needs at least the program to run."}}
		}
		return nil
	},
}

// maxOutput bounds the command output kept for an error message.
const maxOutput = 4 << 10

// defaultPath is PATH for commands unless environment sets it.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ManagedPaths implements PathManager: a purging directory keeps the creates marker.
func (e *Exec) ManagedPaths() []string {
	if e.Creates == nil {
		return nil
	}
	return []string{*e.Creates}
}

// describe returns the command line for messages.
func (e *Exec) describe() string {
	if e.Command != nil {
		return e.show("command", *e.Command)
	}
	return e.show("argv", strings.Join(e.Argv, " "))
}

// CheckApply implements Resource.
func (e *Exec) CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	if e.RefreshOnly {
		return res, nil
	}
	return e.runIfNeeded(ctx, env, apply, res)
}

// Refresh implements Refresher: run again (guards permitting), unless this run already did.
func (e *Exec) Refresh(ctx context.Context, env *Env, apply bool) (*Result, error) {
	res := &Result{}
	if e.ran {
		return res, nil
	}
	return e.runIfNeeded(ctx, env, apply, res)
}

func (e *Exec) runIfNeeded(ctx context.Context, env *Env, apply bool, res *Result) (*Result, error) {
	if !apply && (e.Unless != nil || e.OnlyIf != nil) {
		// A plan on a machine where the working directory is still to be created (by a
		// directory resource earlier in the run) cannot run the guards there.
		if _, err := current(env, e.Cwd); err == nil {
			if info, _ := env.Root.Stat(e.Cwd); info == nil {
				res.Add("run", "", e.describe()+" (guards not run: the working directory does not exist yet)")
				e.ran = true
				return res, nil
			}
		}
	}
	needed, err := e.guardsAllow(ctx, env)
	if err != nil || !needed {
		return res, err
	}
	res.Add("run", "", e.describe())
	// Set under no-op too, so that a notified exec is reported once, as applying runs it once.
	e.ran = true
	if !apply {
		return res, nil
	}
	if e.Command != nil {
		return res, e.run(ctx, env, []string{"/bin/sh", "-c", *e.Command}, "the command")
	}
	return res, e.run(ctx, env, e.Argv, "the command")
}

// guardsAllow evaluates creates, unless and onlyif.
func (e *Exec) guardsAllow(ctx context.Context, env *Env) (bool, error) {
	if e.Creates != nil {
		_, err := env.Root.Lstat(*e.Creates)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	if e.Unless != nil {
		ok, err := e.guard(ctx, env, *e.Unless, "unless")
		if err != nil || ok {
			return false, err
		}
	}
	if e.OnlyIf != nil {
		ok, err := e.guard(ctx, env, *e.OnlyIf, "onlyif")
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// guard runs a guard command: true if it exits 0, false for another exit status, an error
// if it cannot be run at all or times out.
func (e *Exec) guard(ctx context.Context, env *Env, cmd, attr string) (bool, error) {
	err := e.run(ctx, env, []string{"/bin/sh", "-c", cmd}, "the "+attr+" guard ("+e.show(attr, cmd)+")")
	var exit *exitError
	if errors.As(err, &exit) {
		return false, nil
	}
	return err == nil, err
}

// exitError is a command that ran and exited non-zero.
type exitError struct {
	what   string
	code   int
	output string
}

func (x *exitError) Error() string {
	msg := fmt.Sprintf("%s exited with status %d", x.what, x.code)
	if x.output != "" {
		msg += "; output:\n" + x.output
	}
	return msg
}

// run runs argv in the working directory with the environment, within the timeout, and
// kills its whole process group if the timeout passes or the run is cancelled.
func (e *Exec) run(ctx context.Context, env *Env, argv []string, what string) error {
	timeout, err := time.ParseDuration(e.Timeout)
	if err != nil {
		return fmt.Errorf("timeout %q: %w", e.Timeout, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The kernel resolves cmd.Dir on the host, where an absolute symlink of the image (say
	// /etc -> /usr/etc) would lead out of the root: hand it a path without symlinks.
	dir, err := resolveInRoot(env, e.Cwd)
	var info *fsroot.Info
	if err == nil {
		info, err = env.Root.Lstat(dir)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("working directory %s does not exist", env.Root.HostPath(e.Cwd))
	case err != nil:
		return fmt.Errorf("working directory %s: %w", env.Root.HostPath(e.Cwd), err)
	case !info.IsDir():
		return fmt.Errorf("working directory %s is not a directory", env.Root.HostPath(e.Cwd))
	}
	environ := e.environ(env)
	prog, err := lookPath(argv[0], environ)
	if err != nil {
		return fmt.Errorf("run %s: %w", what, err)
	}
	cmd := exec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = env.Root.HostPath(dir)
	cmd.Env = environ
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s did not finish within %s and was killed", what, e.Timeout)
	}
	if err != nil && ctx.Err() != nil { // interrupted: neither a result nor a failed guard
		return fmt.Errorf("%s was interrupted: %w", what, ctx.Err())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited with status 0 but left a process (a daemon it started) holding its
		// output open: that is success, and the process is left running.
		err = nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{what: what, code: ee.ExitCode(), output: e.scrub(out.String())}
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", what, err)
	}
	return nil
}

// resolveInRoot returns p with every symbolic link resolved as the kernel would resolve it
// if the root were "/": absolute targets and ".." never leave the root. Each component of
// the result is a real entry, so the host resolves root.HostPath(result) to the same place.
func resolveInRoot(env *Env, p string) (string, error) {
	resolved := "/"
	rest := strings.Split(p, "/")
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		info, err := env.Root.Lstat(next)
		if err != nil {
			return "", err
		}
		if !info.IsSymlink() {
			resolved = next
			continue
		}
		if links++; links > 40 {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
		}
		target, err := env.Root.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return resolved, nil
}

// lookPath finds a program named without a slash in the command's own PATH (not satchel's),
// so that environment = { PATH = "…" } means what it says.
func lookPath(name string, environ []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathVar := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %s", name, pathVar)
}

// environ builds the command's environment: a clean one, not satchel's own.
func (e *Exec) environ(env *Env) []string {
	root := env.Root.Dir()
	if root == "/" {
		root = ""
	}
	vars := map[string]string{"PATH": defaultPath, "SATCHEL_ROOT": root, "LANG": "C.UTF-8"}
	if home, ok := os.LookupEnv("HOME"); ok {
		vars["HOME"] = home
	}
	for k, v := range e.Environment {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// scrub hides sensitive environment values that a command may have echoed.
func (e *Exec) scrub(s string) string {
	if e.isSensitive("environment") {
		for _, v := range e.Environment {
			if len(v) >= 3 {
				s = strings.ReplaceAll(s, v, Redacted)
			}
		}
	}
	return s
}

// tailBuffer keeps the last maxOutput bytes written to it.
type tailBuffer struct{ buf bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 2*maxOutput {
		keep := t.buf.Bytes()[t.buf.Len()-maxOutput:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.buf.Bytes()
	if len(b) > maxOutput {
		b = b[len(b)-maxOutput:]
	}
	return strings.TrimRight(string(b), "\n")
}

// Serial implements resource.Serial: commands run one at a time.
func (e *Exec) Serial() {}

var (
	_ Serial      = (*Exec)(nil)
	_ Resource    = (*Exec)(nil)
	_ Refresher   = (*Exec)(nil)
	_ PathManager = (*Exec)(nil)
)
