package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// Exit codes; see the package documentation.
const (
	exitOK       = 0
	exitFailure  = 1
	exitChanges  = 2
	exitFailures = 4
	exitUsage    = 64
)

// streams are where a command reads and writes.
type streams struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	stopProfile func() // set by --cpu-profile
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // already reported when nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// exitCode ends a command with code after its output has been written.
func exitCode(code int) error { return &exitError{code: code} }

// usageError is an error in how the command was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// Main runs the satchel command with args (without the program name) and returns its exit
// code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &streams{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if s.stopProfile != nil {
		s.stopProfile()
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "satchel: %v\n", ee.err)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(stderr, "satchel: %v\nRun 'satchel --help' for usage.\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "satchel: %v\n", err)
	return exitFailure
}

// isCobraUsage reports whether cobra rejected the arguments or flags. Cobra returns plain
// errors for these; every error our commands return is an exitError, so anything else
// that reaches Main came from argument parsing.
func isCobraUsage(err error) bool {
	var ee *exitError
	return !errors.As(err, &ee)
}

// RunMain is Main on the process's own arguments and streams.
func RunMain() int {
	return Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// stampedVersion is the release's version, set at link time by make dist
// (-ldflags "-X github.com/satchelcm/satchel/internal/cli.stampedVersion=0.1.0"); empty in
// other builds, which report the module's version or "dev".
var stampedVersion string

func version() string {
	if stampedVersion != "" {
		return stampedVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func newRoot(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "satchel",
		Short: "Keep fleets of servers configured, even at the far end of bad links",
		Long: `Satchel converges machines to a configuration written in HCL: files, directories,
links, commands and more, checked before anything changes and applied atomically.

Start with:
  satchel check DIR          find every mistake in a config repository
  satchel plan DIR           show what would change on this machine, with diffs
  satchel apply DIR          make it so (--root DIR to prepare an image directory)

For a fleet, with nothing but a static file server, a mirror or a USB stick:
  satchel repo init REPO     a signed release repository, and its keys
  satchel release DIR --repo REPO    check DIR for every node, publish it signed
  satchel agent --repo URL|DIR --trust ROOT_JSON    on each node: pull, apply, roll back

With a server (one process, embedded database):
  satchel server --data DIR  CA, enrollment, releases over mutual TLS, reports, secrets
  satchel enroll --server URL --ca-fingerprint FP [--token T]    on each node, once
  satchel release DIR --preview | --server    what changes on every node; publish
  satchel nodes, satchel tokens, satchel reports NAME    the operator's view

Exit codes: 0 success; 1 failure; with --detailed-exitcode 2 changes, 4 failures,
6 both; 64 usage error.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the run to this `file`")
	_ = root.PersistentFlags().MarkHidden("cpu-profile")
	var profile *os.File
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fail("--cpu-profile: %v", err)
		}
		profile = f
		return pprof.StartCPUProfile(f)
	}
	s.stopProfile = func() {
		if profile != nil {
			pprof.StopCPUProfile()
			_ = profile.Close()
		}
	}
	root.AddCommand(newApply(s, false), newApply(s, true), newCheck(s), newCatalog(s), newFacts(s),
		newTypes(s), newBackup(s), newStoreCmd(s), newRepoCmd(s), newRelease(s), newAgent(s), newServer(s), newEnroll(s), newNodes(s), newTokens(s), newReports(s), newBundle(s), newDemo(s), newBootstrapScript(s), newMan())
	return root
}

// wantArgs makes cobra argument-count errors usage errors.
func wantArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("expected %s, got %d argument(s)", what, len(args))}
		}
		return nil
	}
}
