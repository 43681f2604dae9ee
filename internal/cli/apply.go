package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/catcache"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/store"
)

// How long replaced content is kept, and how much of it at most (oldest dropped first).
const (
	backupMaxAge   = 90 * 24 * time.Hour
	backupMaxBytes = 1 << 30
)

type applyFlags struct {
	nodeFlags
	root             string
	stateDir         string
	store            string
	noop             bool
	reportFile       string
	detailedExitcode bool
	lockTimeout      time.Duration
	showDiff         bool
	noCache          bool
	parallel         int
}

func newApply(s *streams, plan bool) *cobra.Command {
	f := &applyFlags{}
	cmd := &cobra.Command{
		Use:   "apply CONFIG_DIR",
		Short: "Converge this machine (or a --root image directory) to the configuration",
		Long: `Compile the configuration for this node and converge the machine to it: check every
resource, change only what differs, in dependency order. A failed resource skips what
depends on it and the run goes on with the rest. Replaced files are kept in the backup
store (satchel backup list). A second apply changes nothing.

With --root DIR every managed path is taken inside DIR (created if missing), as in a
chroot: nothing outside DIR is touched. Use it to prepare server images before they ship.

Exit codes: 0 success; 1 failure. With --detailed-exitcode: 0 nothing changed, 2 changes
made, 4 failures, 6 both; 1 means the run could not start (configuration error, lock).`,
		Args: wantArgs(1, "CONFIG_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(s, args[0], plan)
		},
	}
	if plan {
		cmd.Use = "plan CONFIG_DIR"
		cmd.Short = "Show what apply would change on this machine, with diffs, changing nothing"
		cmd.Long = `Compile the configuration for this node and show what apply would change: every
resource that differs, with unified diffs for files (sensitive values hidden). Nothing is
changed, except that the guard commands of exec resources (unless, onlyif) run, as they
decide whether the command would.

Same flags and exit codes as apply --noop.`
	}
	fl := cmd.Flags()
	f.nodeFlags.register(cmd)
	fl.StringVar(&f.root, "root", "", "converge the tree under this `directory` instead of / (created if missing)")
	fl.StringVar(&f.stateDir, "state-dir", "", stateDirHelp)
	fl.StringVar(&f.store, "store", "", "the content store `DIR` that tree resources mirror from (default: store/ in the state directory, as for satchel store)")
	fl.BoolVar(&f.noop, "noop", false, "check only: report what would change, change nothing")
	if plan {
		_ = fl.MarkHidden("noop") // plan is apply --noop; accepting the flag keeps scripts simple
	} else {
		fl.BoolVar(&f.showDiff, "diff", false, "show diffs of changed files")
	}
	fl.StringVar(&f.reportFile, "report", "", "write the run report as JSON to this `file`")
	fl.BoolVar(&f.detailedExitcode, "detailed-exitcode", false, "exit 0 unchanged, 2 changed, 4 failed, 6 changed and failed")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 0, "wait this long for another run to finish before giving up")
	fl.IntVar(&f.parallel, "parallel", 4, "converge up to this many independent resources at once (commands still run one at a time)")
	fl.BoolVar(&f.noCache, "no-cache", false, "compile the configuration even if a catalog compiled from the same files and facts is cached")
	return cmd
}

func (f *applyFlags) run(s *streams, dir string, plan bool) error {
	noop := f.noop || plan
	rootDir := "/"
	var err error
	if f.root != "" {
		if rootDir, err = filepath.Abs(f.root); err != nil {
			return fail("--root %s: %v", f.root, err)
		}
	}
	state := stateDir(f.stateDir, rootDir)
	if err := engine.MakeStateDir(state); err != nil {
		return fail("create state directory: %v", err)
	}
	lock, err := engine.AcquireLock(filepath.Join(state, "run.lock"), f.lockTimeout)
	if err != nil {
		return fail("%v", err)
	}
	defer func() { _ = lock.Release() }()
	var cache *catcache.Cache
	if !f.noCache {
		cache = catcache.Open(filepath.Join(state, "catalogs"))
	}
	cat, err := f.prepare(s, dir, cache)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		return fail("create --root directory: %v", err)
	}

	root, err := fsroot.Open(rootDir)
	if err != nil {
		return fail("%v", err)
	}
	defer root.Close()
	sources, err := resource.NewDirSources(dir)
	if err != nil {
		return fail("%v", err)
	}
	defer func() { _ = sources.Close() }()
	env := &resource.Env{Root: root, Sources: sources, Accounts: resource.NewAccounts(root)}
	if !noop {
		if env.Backup, err = backup.Open(filepath.Join(state, "backups")); err != nil {
			return fail("%v", err)
		}
	}
	if hasType(cat, "tree") { // the store is opened (and created) only when a resource needs it
		if env.Content, err = store.Open(f.storeDir()); err != nil {
			return fail("%v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := newProgress(s.stderr)
	rep := engine.Run(ctx, cat, engine.Options{Noop: noop, Env: env, Progress: progress.update, Parallel: f.parallel})
	progress.done()

	printReport(s.stdout, rep, plan || f.showDiff)
	if env.Backup != nil && rep.Summary.Changed > 0 { // only a run that changed things adds backups
		if _, err := env.Backup.Prune(backupMaxAge, backupMaxBytes); err != nil {
			fmt.Fprintf(s.stderr, "satchel: warning: prune backups: %v\n", err)
		}
	}
	if f.reportFile != "" {
		if err := writeReport(f.reportFile, rep); err != nil {
			return fail("%v", err)
		}
	}
	return exitCode(f.exitStatus(rep))
}

// storeDir is the content store: --store, else store/ in the state directory. A --root run
// uses the host's store, as satchel store does, not one kept per root.
func (f *applyFlags) storeDir() string {
	switch {
	case f.store != "":
		return f.store
	case f.stateDir != "":
		return filepath.Join(f.stateDir, "store")
	}
	return filepath.Join(stateDir("", "/"), "store")
}

// hasType reports whether the catalog has a resource of type typ.
func hasType(cat *catalog.Catalog, typ string) bool {
	for _, r := range cat.Resources {
		if r.Type == typ {
			return true
		}
	}
	return false
}

func (f *applyFlags) exitStatus(rep *report.Report) int {
	if rep.Error != "" {
		return exitFailure
	}
	if !f.detailedExitcode {
		if rep.Failed() {
			return exitFailure
		}
		return exitOK
	}
	code := exitOK
	if rep.Summary.Changed > 0 {
		code |= exitChanges
	}
	if rep.Summary.Failed > 0 || rep.Summary.Skipped > 0 {
		code |= exitFailures
	}
	return code
}

// writeReport saves the report atomically.
func writeReport(path string, rep *report.Report) error {
	data, err := report.Marshal(rep)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
