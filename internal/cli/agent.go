package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/agent"
)

// exitRolledBack: agent --once applied a newer release that failed and was rolled back.
const exitRolledBack = 3

type agentFlags struct {
	node      string
	factsFile string
	config    string
	repos     []string
	trust     string
	once      bool
	state     string
	root      string
	interval  time.Duration
	splay     time.Duration
	limit     string
	windows   []string
	parallel  int
	lockWait  time.Duration
	quietLogs bool
}

func newAgent(s *streams) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent [--repo URL|DIR]... [--trust ROOT_JSON] [--once]",
		Short: "Keep this machine converged to the newest good release of a signed repository",
		Long: `Run the node's agent: every interval (plus a random splay) it refreshes the signed trust
metadata of its release repository, and if a newer release is there it fetches only the
chunks it lacks (resumable, capped, large content only inside the transfer windows),
verifies everything, evaluates the configuration for this node, applies it and runs the
release's health checks. If the run or a health check fails, the files the release
replaced are put back and the last good release is applied again (rolled_back); the failed
release is not tried again. When nothing is new, or no repository answers, the last good
release is applied again: drift is corrected even offline. Each cycle's report is kept in
the spool of the state directory.

A repository is an http(s) URL or a directory (a USB stick, a mirror): the directory
'satchel repo init' made, served as it is. Repositories are tried in order. The first run
needs --trust: the repository's metadata/root.json, handed over by the operator; the
node keeps its own copy and from then on refuses anything older than what it has seen.

Settings come from --config (default ` + agent.DefaultConfigPath + ` if it exists), then flags.

Exit codes with --once: 0 a release applied or re-applied; 1 the cycle failed (no
repository answered and nothing to re-apply, or the run failed); 3 a newer release failed
and was rolled back; 64 usage error. Without --once the agent runs until SIGTERM or
SIGINT, finishing the resource in flight.`,
		Args: wantArgs(0, "flags only"),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(s, cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "compile for this node name (default: this machine's hostname fact)")
	fl.StringVar(&f.factsFile, "facts", "", "read the node's facts from this JSON `file` instead of gathering this machine's")
	fl.StringVar(&f.config, "config", "", "read settings from this agent.hcl `file` (default "+agent.DefaultConfigPath+" if it exists)")
	fl.StringArrayVar(&f.repos, "repo", nil, "a release repository: an http(s) `URL` or a directory (repeatable, in order of preference; replaces the config file's)")
	fl.StringVar(&f.trust, "trust", "", "the repository's root.json `file` to trust on the first run")
	fl.BoolVar(&f.once, "once", false, "run one cycle now and exit")
	fl.StringVar(&f.state, "state", "", "the state `DIR`: trust, chunk store, releases, report spool, backups (default "+DefaultStateDir+" as root)")
	fl.StringVar(&f.root, "root", "", "converge the tree under this `directory` instead of /")
	fl.DurationVar(&f.interval, "interval", 0, "time between cycles (default 30m)")
	fl.DurationVar(&f.splay, "splay", -1, "most random extra delay before a cycle (default interval/6)")
	fl.StringVar(&f.limit, "limit", "", "cap downloads at this many `bytes` per second (k, M, G suffixes)")
	fl.StringArrayVar(&f.windows, "window", nil, "a transfer window for large content, `HH:MM-HH:MM` local time (repeatable)")
	fl.IntVar(&f.parallel, "parallel", 4, "converge up to this many independent resources at once")
	fl.DurationVar(&f.lockWait, "lock-timeout", 10*time.Minute, "wait this long for another run (satchel apply) to finish")
	fl.BoolVar(&f.quietLogs, "quiet", false, "log nothing but errors")
	cmd.AddCommand(newAgentStatus(s))
	return cmd
}

// settings merges the defaults, the config file and the flags.
func (f *agentFlags) settings(cmd *cobra.Command) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	stateFromFile := false
	path := f.config
	if path == "" {
		path = agent.DefaultConfigPath
	}
	loaded, err := agent.LoadConfig(path)
	switch {
	case err == nil:
		cfg, stateFromFile = loaded, true
	case f.config == "" && errors.Is(err, fs.ErrNotExist):
	default:
		return cfg, fail("%v", err)
	}
	if len(f.repos) > 0 {
		cfg.Repositories = f.repos
	}
	if f.trust != "" {
		cfg.Trust = f.trust
	}
	switch {
	case f.state != "":
		cfg.StateDir = f.state
	case !stateFromFile:
		// As satchel apply keeps it: a --root run shares its lock and backups with apply's
		// runs on the same root, never the host's.
		rootDir := "/"
		if f.root != "" {
			abs, err := filepath.Abs(f.root)
			if err != nil {
				return cfg, fail("--root %s: %v", f.root, err)
			}
			rootDir = abs
		}
		cfg.StateDir = stateDir("", rootDir)
	}
	if f.interval != 0 {
		cfg.Interval = f.interval
		if !cmd.Flags().Changed("splay") {
			cfg.Splay = f.interval / 6
		}
	}
	if cmd.Flags().Changed("splay") {
		cfg.Splay = f.splay
	}
	if f.limit != "" {
		n, err := agent.ParseSize(f.limit)
		if err != nil {
			return cfg, &usageError{fmt.Errorf("--limit: %w", err)}
		}
		cfg.BandwidthLimit = n
	}
	if len(f.windows) > 0 {
		cfg.Windows = nil
		for _, w := range f.windows {
			win, err := agent.ParseWindow(w)
			if err != nil {
				return cfg, &usageError{fmt.Errorf("--window: %w", err)}
			}
			cfg.Windows = append(cfg.Windows, win)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{err}
	}
	return cfg, nil
}

func (f *agentFlags) run(s *streams, cmd *cobra.Command) error {
	cfg, err := f.settings(cmd)
	if err != nil {
		return err
	}
	log := s.stderr
	if f.quietLogs {
		log = nil
	}
	// The first SIGTERM or SIGINT stops between resources; a second interrupts them.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	hard, kill := context.WithCancel(context.Background())
	defer kill()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-hard.Done():
			return
		}
		fmt.Fprintln(s.stderr, "satchel agent: stopping once what runs has finished (signal again to interrupt it)")
		stop()
		select {
		case <-sigs:
		case <-hard.Done():
			return
		}
		fmt.Fprintln(s.stderr, "satchel agent: interrupting what runs")
		kill()
	}()
	a, err := agent.Open(agent.Options{Config: cfg, Root: f.root, Node: f.node, FactsFile: f.factsFile,
		Version: version(), Parallel: f.parallel, LockWait: f.lockWait, Log: log, Hard: hard})
	if err != nil {
		return fail("%v", err)
	}
	defer a.Close()
	if !f.once {
		if err := a.Run(ctx); err != nil {
			return fail("%v", err)
		}
		return nil
	}
	rep, err := a.Cycle(ctx)
	if err != nil {
		return fail("%v", err)
	}
	printCycle(s, rep)
	switch rep.Outcome {
	case agent.RolledBack:
		return exitCode(exitRolledBack)
	case agent.Applied, agent.Reapplied:
		if rep.Repository == "" && len(rep.RefreshErrors) > 0 {
			return exitCode(exitFailure) // re-applied, but no repository could be used
		}
		return nil
	}
	return exitCode(exitFailure)
}

// printCycle shows how a cycle went, for --once.
func printCycle(s *streams, rep *agent.CycleReport) {
	line := fmt.Sprintf("cycle %s", rep.Outcome)
	switch rep.Outcome {
	case agent.Applied:
		line = fmt.Sprintf("release %d applied", rep.Release)
	case agent.Reapplied:
		line = fmt.Sprintf("release %d re-applied", rep.Release)
	case agent.RolledBack:
		rb := rep.Rollback
		to := fmt.Sprintf("to release %d", rb.To)
		if rb.To == 0 {
			to = "(no earlier good release)"
		}
		line = fmt.Sprintf("release %d rolled back %s, %s restored: %s", rb.From, to, plural(rb.Restored, "file"), rb.Cause)
	}
	if rep.Run != nil && rep.Outcome != agent.RolledBack {
		line += fmt.Sprintf(": %d changed, %d unchanged, %d failed", rep.Run.Summary.Changed, rep.Run.Summary.Unchanged, rep.Run.Summary.Failed)
	}
	if rep.Transfer.Pulls > 0 {
		line += fmt.Sprintf("; downloaded %d bytes in %d requests", rep.Transfer.Bytes, rep.Transfer.Requests)
	}
	fmt.Fprintln(s.stdout, line)
	if rep.Deferred != "" {
		fmt.Fprintf(s.stdout, "deferred: %s\n", rep.Deferred)
	}
	if rep.Error != "" {
		fmt.Fprintf(s.stderr, "satchel: %s\n", rep.Error)
	}
}

func newAgentStatus(s *streams) *cobra.Command {
	var state, root string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--state DIR] [--json]",
		Short: "Show the agent's last good release, last run, next run and last error",
		Args:  wantArgs(0, "flags only"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if state == "" {
				rootDir := "/"
				if root != "" {
					abs, err := filepath.Abs(root)
					if err != nil {
						return fail("--root %s: %v", root, err)
					}
					rootDir = abs
				}
				state = stateDir("", rootDir)
			}
			st, err := agent.ReadState(state)
			if err != nil {
				return fail("%v", err)
			}
			if asJSON {
				data, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return fail("%v", err)
				}
				fmt.Fprintf(s.stdout, "%s\n", data)
				return nil
			}
			printStatus(s, state, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "the agent's state `DIR` (default "+DefaultStateDir+" as root)")
	cmd.Flags().StringVar(&root, "root", "", "the agent converging this `directory` (its default state directory is kept apart)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the state as JSON")
	return cmd
}

func printStatus(s *streams, state string, st *agent.State) {
	tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
	when := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }
	fmt.Fprintf(tw, "state directory:\t%s\n", state)
	switch {
	case st.Attempt != nil && st.Attempt.Interrupted:
		fmt.Fprintf(tw, "current release:\tpart of %d: stopped while applying it (it is tried again at the next start)\n", st.Attempt.Version)
	case st.Attempt != nil:
		fmt.Fprintf(tw, "current release:\tpart of %d: the agent died while applying it (it is rolled back at the next start)\n", st.Attempt.Version)
	case st.LastRun != nil && st.LastRun.Release > 0:
		fmt.Fprintf(tw, "current release:\t%d\n", st.LastRun.Release)
	}
	if g := st.Good; g != nil {
		fmt.Fprintf(tw, "last good release:\t%d (created %s, applied %s)\n", g.Version, when(g.Created), when(g.Applied))
		if g.Notes != "" {
			fmt.Fprintf(tw, "notes:\t%s\n", firstLineOf(g.Notes))
		}
	} else {
		fmt.Fprintf(tw, "last good release:\tnone yet\n")
	}
	if st.FailedRelease > 0 {
		fmt.Fprintf(tw, "failed release:\t%d (rolled back; it and older ones are not tried again)\n", st.FailedRelease)
	}
	if r := st.LastRun; r != nil {
		fmt.Fprintf(tw, "last run:\t%s, %s, release %d, %d changed, %d failed, %.1f s\n", when(r.Started), r.Outcome, r.Release, r.Changed, r.Failed, r.DurationMS/1000)
	} else {
		fmt.Fprintf(tw, "last run:\tnever\n")
	}
	if !st.NextRun.IsZero() {
		fmt.Fprintf(tw, "next run:\t%s\n", when(st.NextRun))
	}
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error:\t%s (%d failed cycles in a row)\n", st.LastError, st.Failures)
	}
	_ = tw.Flush()
}

func firstLineOf(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
