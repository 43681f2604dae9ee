package resource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
)

// refresh calls Refresh on r, which must be a Refresher, and fails the test on an error.
func (fx *fixture) refresh(r resource.Resource, apply bool) *resource.Result {
	fx.t.Helper()
	rf, ok := r.(resource.Refresher)
	if !ok {
		fx.t.Fatalf("%T is not a Refresher", r)
	}
	res, err := rf.Refresh(context.Background(), fx.env, apply)
	if err != nil {
		fx.t.Fatalf("Refresh(apply=%v): %v", apply, err)
	}
	return res
}

func (fx *fixture) checkApply(r resource.Resource, apply bool) *resource.Result {
	fx.t.Helper()
	res, err := r.CheckApply(context.Background(), fx.env, apply)
	if err != nil {
		fx.t.Fatalf("CheckApply(apply=%v): %v", apply, err)
	}
	return res
}

// lines returns the lines of the file p in the root, or nil if it does not exist.
func (fx *fixture) lines(p string) []string {
	fx.t.Helper()
	if !fx.exists(p) {
		return nil
	}
	return strings.Split(strings.TrimSuffix(fx.read(p), "\n"), "\n")
}

func TestExecCreates(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `echo ran >> "$SATCHEL_ROOT/marker"`
	fx.contract(cat("exec", "init", map[string]any{"command": cmd, "creates": "/marker"}), "run:  -> "+cmd)
	if got := fx.lines("/marker"); !slices.Equal(got, []string{"ran"}) {
		t.Errorf("the command ran %d times (%q), want once", len(got), got)
	}
}

func TestExecCreatesIsInsideRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// /bin/sh exists on the host, not in the empty root: the command is needed.
	res := fx.run(cat("exec", "x", map[string]any{"command": "true", "creates": "/bin/sh"}), false)
	assertChanges(t, "creates /bin/sh", res, "run:  -> true")
	// A dangling link counts as existing: creates looks at the entry itself.
	fx.symlink("/nowhere", "/made")
	res = fx.run(cat("exec", "x", map[string]any{"command": "true", "creates": "/made"}), false)
	assertChanges(t, "creates a dangling link", res)
}

func TestExecUnless(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `echo ran >> "$SATCHEL_ROOT/flag"`
	fx.contract(cat("exec", "x", map[string]any{"command": cmd, "unless": `test -e "$SATCHEL_ROOT/flag"`}), "run:  -> "+cmd)
	if got := fx.lines("/flag"); !slices.Equal(got, []string{"ran"}) {
		t.Errorf("the command ran %d times, want once", len(got))
	}
}

func TestExecOnlyIf(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `echo ran >> "$SATCHEL_ROOT/flag"`
	fx.contract(cat("exec", "x", map[string]any{"command": cmd, "onlyif": `test ! -e "$SATCHEL_ROOT/flag"`}), "run:  -> "+cmd)
	if got := fx.lines("/flag"); !slices.Equal(got, []string{"ran"}) {
		t.Errorf("the command ran %d times, want once", len(got))
	}
}

func TestExecGuardsCombined(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		attrs map[string]any
		runs  bool
	}{
		{"unless fails, onlyif succeeds", map[string]any{"unless": "false", "onlyif": "true"}, true},
		{"unless succeeds", map[string]any{"unless": "true", "onlyif": "true"}, false},
		{"onlyif fails", map[string]any{"unless": "false", "onlyif": "exit 3"}, false},
		{"creates exists", map[string]any{"creates": "/", "unless": "false", "onlyif": "true"}, false},
		{"creates missing", map[string]any{"creates": "/nope", "onlyif": "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			attrs := map[string]any{"command": `touch "$SATCHEL_ROOT/ran"`}
			for k, v := range tc.attrs {
				attrs[k] = v
			}
			res := fx.run(cat("exec", "x", attrs), true)
			if fx.exists("/ran") != tc.runs || res.Changed() != tc.runs {
				t.Errorf("ran: %v, changes %q; want it to run: %v", fx.exists("/ran"), changes(res), tc.runs)
			}
		})
	}
}

func TestExecGuardsRunUnderNoop(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `touch "$SATCHEL_ROOT/command-ran"`
	cr := cat("exec", "x", map[string]any{"command": cmd,
		"unless": `touch "$SATCHEL_ROOT/unless-ran"; false`,
		"onlyif": `touch "$SATCHEL_ROOT/onlyif-ran"`})
	res := fx.run(cr, false)
	assertChanges(t, "apply=false", res, "run:  -> "+cmd)
	if !fx.exists("/unless-ran") || !fx.exists("/onlyif-ran") {
		t.Error("the guards did not run under apply=false")
	}
	if fx.exists("/command-ran") {
		t.Fatal("the command ran under apply=false")
	}
	assertChanges(t, "apply=true", fx.run(cr, true), "run:  -> "+cmd)
	if !fx.exists("/command-ran") {
		t.Error("the command did not run under apply=true")
	}
}

func TestExecNoopRunsNothingWithoutGuards(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	before := fx.snapshot()
	res := fx.run(cat("exec", "x", map[string]any{"command": `touch "$SATCHEL_ROOT/ran"`}), false)
	assertChanges(t, "apply=false", res, `run:  -> touch "$SATCHEL_ROOT/ran"`)
	fx.assertUnchanged(before, "apply=false")
}

func TestExecRefreshOnly(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `echo ran >> "$SATCHEL_ROOT/count"`
	cr := cat("exec", "reload", map[string]any{"command": cmd, "refresh_only": true})

	// Not notified: nothing to do, either way.
	r := build(t, cr)
	assertChanges(t, "CheckApply(false)", fx.checkApply(r, false))
	assertChanges(t, "CheckApply(true)", fx.checkApply(r, true))
	if fx.exists("/count") {
		t.Fatal("a refresh_only command ran without a notification")
	}

	// Notified under no-op: reported, not run.
	r = build(t, cr)
	assertChanges(t, "CheckApply(false)", fx.checkApply(r, false))
	assertChanges(t, "Refresh(false)", fx.refresh(r, false), "run:  -> "+cmd)
	if fx.exists("/count") {
		t.Fatal("Refresh(apply=false) ran the command")
	}

	// Notified: runs once, however many notifications.
	r = build(t, cr)
	assertChanges(t, "CheckApply(true)", fx.checkApply(r, true))
	assertChanges(t, "Refresh(true)", fx.refresh(r, true), "run:  -> "+cmd)
	assertChanges(t, "second Refresh(true)", fx.refresh(r, true))
	if got := fx.lines("/count"); !slices.Equal(got, []string{"ran"}) {
		t.Errorf("ran %d times, want once", len(got))
	}

	// The next run is a new instance: a new notification runs it again.
	fx.refresh(build(t, cr), true)
	if got := fx.lines("/count"); len(got) != 2 {
		t.Errorf("ran %d times, want twice", len(got))
	}
}

func TestExecRefreshAfterCheckApplyRan(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := `echo ran >> "$SATCHEL_ROOT/count"`
	cr := cat("exec", "x", map[string]any{"command": cmd})

	// Applying: CheckApply runs it; a notification in the same run does not run it again.
	r := build(t, cr)
	assertChanges(t, "CheckApply(true)", fx.checkApply(r, true), "run:  -> "+cmd)
	assertChanges(t, "Refresh(true)", fx.refresh(r, true))
	if got := fx.lines("/count"); !slices.Equal(got, []string{"ran"}) {
		t.Errorf("ran %d times, want once", len(got))
	}

	// No-op reports exactly what applying does: one run, not two.
	r = build(t, cr)
	assertChanges(t, "CheckApply(false)", fx.checkApply(r, false), "run:  -> "+cmd)
	assertChanges(t, "Refresh(false)", fx.refresh(r, false))
	if got := fx.lines("/count"); len(got) != 1 {
		t.Errorf("no-op ran the command: %d runs", len(got))
	}
}

func TestExecRefreshHonoursGuards(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/done", "", 0o644)
	r := build(t, cat("exec", "x", map[string]any{"command": `touch "$SATCHEL_ROOT/ran"`, "creates": "/done", "refresh_only": true}))
	assertChanges(t, "Refresh(true)", fx.refresh(r, true))
	if fx.exists("/ran") {
		t.Error("a refresh ran the command although creates exists")
	}
}

func TestExecArgv(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	arg := `a  b; $(touch injected) * "q" 'r'`
	argv := []string{"/bin/sh", "-c", `printf '%s' "$1" > "$SATCHEL_ROOT/out"`, "sh", arg}
	res := fx.run(cat("exec", "x", map[string]any{"argv": argv}), true)
	assertChanges(t, "argv", res, "run:  -> "+strings.Join(argv, " "))
	if got := fx.read("/out"); got != arg {
		t.Errorf("the argument arrived as %q, want %q untouched by any shell", got, arg)
	}
	if fx.exists("/injected") {
		t.Error("an argument was interpreted by a shell")
	}

	// The program is looked up in PATH.
	marker := fx.host("/touched")
	fx.run(cat("exec", "t", map[string]any{"argv": []string{"touch", marker}}), true)
	if !fx.exists("/touched") {
		t.Error("argv [touch ...] did not run")
	}
}

func TestExecCommandUsesShell(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.run(cat("exec", "x", map[string]any{"command": `for i in 1 2 3; do echo $i; done | tr '\n' , > "$SATCHEL_ROOT/out"`}), true)
	if got := fx.read("/out"); got != "1,2,3," {
		t.Errorf("out = %q", got)
	}
}

func TestExecFailure(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cmd := "echo to stdout; echo to stderr >&2; exit 7"
	res, err := fx.runErr(cat("exec", "x", map[string]any{"command": cmd}), true)
	if want := "the command exited with status 7; output:\nto stdout\nto stderr"; err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	assertChanges(t, "a failed run", res, "run:  -> "+cmd)

	_, err = fx.runErr(cat("exec", "x", map[string]any{"command": "exit 1"}), true)
	if want := "the command exited with status 1"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = fx.runErr(cat("exec", "x", map[string]any{"argv": []string{"/nonexistent/program"}}), true)
	if want := "run the command: fork/exec /nonexistent/program: no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestExecFailureOutputTail(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	_, err := fx.runErr(cat("exec", "x", map[string]any{"command": "seq 1 3000; exit 1"}), true)
	var b strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	full := b.String()
	tail := strings.TrimRight(full[len(full)-4096:], "\n")
	if want := "the command exited with status 1; output:\n" + tail; err.Error() != want {
		t.Errorf("error has %d bytes of output, starting %.60q; want the last 4096 bytes", len(err.Error()), err.Error())
	}
}

// processGone reports whether pid has exited (a zombie counts: it runs nothing).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	start := time.Now()
	_, err := fx.runErr(cat("exec", "x", map[string]any{
		"command": `sleep 60 & echo $! > "$SATCHEL_ROOT/child"; wait`, "timeout": "2s"}), true)
	if want := "the command did not finish within 2s and was killed"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(fx.read("/child")))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecGuardTimeout(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.wantErr(cat("exec", "x", map[string]any{"command": "true", "unless": "sleep 30", "timeout": "200ms"}),
		"the unless guard (sleep 30) did not finish within 200ms and was killed")
}

func TestExecInterruptedGuardIsAnError(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := build(t, cat("exec", "x", map[string]any{"command": `touch "$SATCHEL_ROOT/ran"`, "onlyif": "sleep 30"}))
	res, err := r.CheckApply(ctx, fx.env, true)
	if err == nil || err.Error() != "the onlyif guard (sleep 30) was interrupted: context canceled" {
		t.Errorf("CheckApply = %q, %v; want an error saying the guard was interrupted", changes(res), err)
	}
	if fx.exists("/ran") {
		t.Error("the command ran")
	}
}

func TestExecDaemonKeepingOutputOpenIsSuccess(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	// Starting a daemon that inherits stdout: the command exits 0 at once.
	res := fx.run(cat("exec", "x", map[string]any{"command": `sleep 30 & echo $! > "$SATCHEL_ROOT/daemon"; echo started`}), true)
	assertChanges(t, "daemon start", res, `run:  -> sleep 30 & echo $! > "$SATCHEL_ROOT/daemon"; echo started`)
	if pid, err := strconv.Atoi(strings.TrimSpace(fx.read("/daemon"))); err == nil {
		if processGone(pid) {
			t.Error("the daemon was killed")
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestExecCwdAndSatchelRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.mkdir("/srv/app", 0o755)
	fx.run(cat("exec", "x", map[string]any{"cwd": "/srv/app",
		"command": `pwd -P > "$SATCHEL_ROOT/pwd"; printf %s "$SATCHEL_ROOT" > "$SATCHEL_ROOT/root"`}), true)
	want, err := filepath.EvalSymlinks(fx.host("/srv/app"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(fx.read("/pwd")); got != want {
		t.Errorf("working directory %s, want %s", got, want)
	}
	if got := fx.read("/root"); got != fx.root.Dir() {
		t.Errorf("SATCHEL_ROOT=%q, want %q", got, fx.root.Dir())
	}

	// The default working directory is the root itself.
	fx.run(cat("exec", "y", map[string]any{"command": `pwd -P > "$SATCHEL_ROOT/pwd"`}), true)
	want, _ = filepath.EvalSymlinks(fx.dir)
	if got := strings.TrimSpace(fx.read("/pwd")); got != want {
		t.Errorf("default working directory %s, want %s", got, want)
	}
}

func TestExecCwdMissing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.write("/file", "", 0o644)
	// Under no-op a command without guards runs nothing, so nothing fails.
	assertChanges(t, "apply=false", fx.run(cat("exec", "x", map[string]any{"command": "true", "cwd": "/nope"}), false), "run:  -> true")
	_, err := fx.runErr(cat("exec", "x", map[string]any{"command": "true", "cwd": "/nope"}), true)
	if want := "working directory " + fx.host("/nope") + " does not exist"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = fx.runErr(cat("exec", "x", map[string]any{"command": "true", "cwd": "/file"}), true)
	if want := "working directory " + fx.host("/file") + " is not a directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// Guards need the working directory too; under no-op, where a directory resource may be
	// about to create it, the command is reported as pending instead (see
	// TestExecPlanBeforeItsWorkingDirectoryExists).
	_, err = fx.runErr(cat("exec", "x", map[string]any{"command": "true", "unless": "false", "cwd": "/nope"}), true)
	if want := "working directory " + fx.host("/nope") + " does not exist"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestExecCwdConfinedToRoot: the working directory, given through absolute and relative
// symlinks of the image, resolves inside the root, never to the host's directory of that
// name.
func TestExecCwdConfinedToRoot(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	if err := os.MkdirAll(filepath.Join(fx.outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fx.mkdir(fx.outside+"/sub", 0o755) // the same path, inside the root
	fx.symlink(fx.outside, "/etc")     // root/etc -> <outside>, absolute
	fx.symlink("../../../../../../../..", "/up")
	fx.mkdir("/real", 0o755)
	fx.symlink("/etc/sub", "/real/link")  // a chain: -> /etc/sub -> <outside>/sub in the root
	fx.symlink("../etc/sub", "/real/rel") // relative, through the absolute one
	realRoot, err := filepath.EvalSymlinks(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	for cwd, want := range map[string]string{
		"/etc":       filepath.Join(realRoot, fx.outside),
		"/etc/sub":   filepath.Join(realRoot, fx.outside, "sub"),
		"/up":        realRoot,
		"/real/link": filepath.Join(realRoot, fx.outside, "sub"),
		"/real/rel":  filepath.Join(realRoot, fx.outside, "sub"),
	} {
		fx.run(cat("exec", "x", map[string]any{"cwd": cwd, "command": `pwd -P > "$SATCHEL_ROOT/pwd"`}), true)
		if got := strings.TrimSpace(fx.read("/pwd")); got != want {
			t.Errorf("cwd %s: the command ran in %s, want %s", cwd, got, want)
		}
	}
	fx.symlink("/loop", "/loop")
	_, err = fx.runErr(cat("exec", "x", map[string]any{"cwd": "/loop", "command": "true"}), true)
	if want := "working directory " + fx.host("/loop") + ": resolve /loop: too many levels of symbolic links"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestExecEnvironment(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.run(cat("exec", "x", map[string]any{"command": `env > "$SATCHEL_ROOT/env"`,
		"environment": map[string]string{"GREETING": "hello world", "PATH": "/usr/bin:/bin", "EMPTY": ""}}), true)
	got := map[string]string{}
	for _, line := range fx.lines("/env") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{"GREETING": "hello world", "PATH": "/usr/bin:/bin", "EMPTY": "",
		"SATCHEL_ROOT": fx.root.Dir(), "LANG": "C.UTF-8"}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s=%q (set: %v), want %q", k, g, ok, v)
		}
	}
	// Nothing else of satchel's own environment leaks through (HOME is kept on purpose;
	// the shell adds PWD and the like).
	allowed := map[string]bool{"HOME": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}
	for k := range got {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("unexpected variable %s=%q in the command's environment", k, got[k])
		}
	}

	fx.run(cat("exec", "y", map[string]any{"command": `printf %s "$PATH" > "$SATCHEL_ROOT/path"`}), true)
	if got := fx.read("/path"); got != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("default PATH %q", got)
	}
}

func TestExecSatchelRootEmptyForSlash(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	slash, err := fsroot.Open("/")
	if err != nil {
		t.Skip(err)
	}
	defer slash.Close()
	env := *fx.env
	env.Root = slash
	out := filepath.Join(fx.outside, "root")
	r := build(t, cat("exec", "x", map[string]any{"command": `printf '[%s]' "$SATCHEL_ROOT" > ` + out}))
	if _, err := r.CheckApply(context.Background(), &env, true); err != nil {
		t.Fatal(err)
	}
	if got := readHost(t, out); got != "[]" {
		t.Errorf("SATCHEL_ROOT with the root / = %s, want []", got)
	}
}

func TestExecSensitiveEnvironmentScrubbed(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const secret = "s3cr3t-t0ken"
	cmd := `echo "token=$TOKEN user=$USERNAME"; exit 2`
	res, err := fx.runErr(cat("exec", "x", map[string]any{"command": cmd,
		"environment": map[string]string{"TOKEN": secret, "USERNAME": "bob"}}, "environment"), true)
	// The whole attribute is sensitive: every value of it is hidden.
	if want := "the command exited with status 2; output:\ntoken=(sensitive) user=(sensitive)"; err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), secret) {
		t.Errorf("result %s shows the secret", b)
	}

	// The same command with nothing sensitive shows everything.
	_, err = fx.runErr(cat("exec", "x", map[string]any{"command": cmd,
		"environment": map[string]string{"TOKEN": secret, "USERNAME": "bob"}}), true)
	if want := "the command exited with status 2; output:\ntoken=" + secret + " user=bob"; err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
}

func TestExecSensitiveCommandAndGuards(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const secret = "hunter2-password"
	cr := cat("exec", "x", map[string]any{"command": "echo " + secret + " > /dev/null"}, "command")
	res := fx.run(cr, false)
	assertChanges(t, "sensitive command", res, "run:  -> (sensitive)")

	cr = cat("exec", "x", map[string]any{"argv": []string{"echo", secret}}, "argv")
	assertChanges(t, "sensitive argv", fx.run(cr, false), "run:  -> (sensitive)")

	cr = cat("exec", "x", map[string]any{"command": "true", "unless": "sleep 5 # " + secret, "timeout": "100ms"}, "unless")
	_, err := fx.runErr(cr, false)
	if want := "the unless guard ((sensitive)) did not finish within 100ms and was killed"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestExecManagedPaths(t *testing.T) {
	t.Parallel()
	r := build(t, cat("exec", "x", map[string]any{"command": "true", "creates": "/var/lib/app/.installed"}))
	pm, ok := r.(resource.PathManager)
	if !ok {
		t.Fatal("exec is not a PathManager")
	}
	if got := pm.ManagedPaths(); !slices.Equal(got, []string{"/var/lib/app/.installed"}) {
		t.Errorf("ManagedPaths = %q", got)
	}
	if got := build(t, cat("exec", "y", map[string]any{"command": "true"})).(resource.PathManager).ManagedPaths(); got != nil {
		t.Errorf("ManagedPaths without creates = %q, want none", got)
	}
}

// A program named without a slash is found in the command's own PATH, not satchel's.
func TestExecArgvUsesTheCommandsPath(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	bin := filepath.Join(fx.outside, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(fx.outside, "ran")
	if err := os.WriteFile(filepath.Join(bin, "satchel-test-tool"), []byte("#!/bin/sh\necho ran > "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fx.run(cat("exec", "tool", map[string]any{"argv": []string{"satchel-test-tool"},
		"environment": map[string]string{"PATH": bin + ":/usr/bin:/bin"}}), true)
	if data, err := os.ReadFile(marker); err != nil || string(data) != "ran\n" {
		t.Fatalf("the tool in the command's PATH did not run: %q, %v", data, err)
	}
	_, err := fx.runErr(cat("exec", "missing", map[string]any{"argv": []string{"satchel-test-tool"}}), true)
	if err == nil || !strings.Contains(err.Error(), `"satchel-test-tool" not found in PATH /usr/local/sbin:`) {
		t.Errorf("a program missing from the default PATH: %v", err)
	}
}

// A plan for a machine where the working directory does not exist yet (a directory resource
// earlier in the run creates it) reports the command as pending rather than failing.
func TestExecPlanBeforeItsWorkingDirectoryExists(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cr := cat("exec", "init", map[string]any{"command": "true", "onlyif": "true", "cwd": "/srv/app"})
	res := fx.run(cr, false)
	assertChanges(t, "plan", res, "run:  -> true (guards not run: the working directory does not exist yet)")
	_, err := fx.runErr(cr, true)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("apply without the directory: %v", err)
	}
}
