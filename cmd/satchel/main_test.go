package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/satchelcm/satchel/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"satchel": func() { os.Exit(cli.RunMain()) },
	})
}

// TestScripts runs the CLI contract: every verb, its messages and its exit codes.
func TestScripts(t *testing.T) {
	t.Parallel()
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			// Keep every run's state (lock, backups, catalogs) in the test's own directory.
			env.Setenv("SATCHEL_STATE_DIR", filepath.Join(env.WorkDir, ".state"))
			return nil
		},
		// [exists:PATH]: a device or file the machine may lack (/dev/fuse).
		Condition: func(cond string) (bool, error) {
			if p, ok := strings.CutPrefix(cond, "exists:"); ok {
				_, err := os.Stat(p)
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"waitaddr": cmdWaitAddr,
			"waitgrep": cmdWaitGrep,
			"jsonget":  cmdJSONGet,
		},
	})
}

// cmdExitCode runs a program and checks its exit status: exitcode N PROG [ARGS...].
// stdout and stderr are kept for the following stdout/stderr checks.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
