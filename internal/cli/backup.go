package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/engine"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/schema"
)

type backupFlags struct {
	root     string
	stateDir string
}

func (f *backupFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.root, "root", "", "the tree apply was run on with --root")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", stateDirHelp)
}

func (f *backupFlags) dirs() (rootDir, storeDir string, err error) {
	rootDir = "/"
	if f.root != "" {
		if rootDir, err = filepath.Abs(f.root); err != nil {
			return "", "", fail("--root %s: %v", f.root, err)
		}
	}
	return rootDir, filepath.Join(stateDir(f.stateDir, rootDir), "backups"), nil
}

func newBackup(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "List and restore the previous versions of files that apply replaced or removed",
		Args:  wantArgs(0, "a subcommand: list or restore"),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBackupList(s), newBackupRestore(s))
	return cmd
}

func newBackupList(s *streams) *cobra.Command {
	var f backupFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [PATH]",
		Short: "List saved versions, newest first (of one path, or all)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("expected at most one PATH, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			_, dir, err := f.dirs()
			if err != nil {
				return err
			}
			store, err := backup.Open(dir)
			if err != nil {
				return fail("%v", err)
			}
			p := ""
			if len(args) == 1 {
				p = args[0]
			}
			entries, err := store.List(p)
			if err != nil {
				return fail("%v", err)
			}
			if asJSON {
				out, _ := json.MarshalIndent(entries, "", "  ")
				fmt.Fprintf(s.stdout, "%s\n", out)
				return nil
			}
			if len(entries) == 0 {
				fmt.Fprintln(s.stdout, "no backups")
				return nil
			}
			tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tPATH\tSIZE\tREASON")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.ID, e.Time.Format("2006-01-02 15:04:05Z"), e.Path, e.Size, e.Reason)
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newBackupRestore(s *streams) *cobra.Command {
	var f backupFlags
	var id string
	cmd := &cobra.Command{
		Use:   "restore PATH",
		Short: "Put back the newest saved version of PATH (or --id), keeping the current one",
		Long: `Restore a saved version of a file, with its mode and owner. The content is verified
against its SHA-256 first; a corrupt backup is refused and the file left as it is. The
current content is itself saved, so a restore can be undone. The next apply will put the
configured content back unless the configuration changes.`,
		Args: wantArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := args[0]
			if err := schema.CheckPath(p); err != nil {
				return &usageError{err}
			}
			rootDir, dir, err := f.dirs()
			if err != nil {
				return err
			}
			store, err := backup.Open(dir)
			if err != nil {
				return fail("%v", err)
			}
			var entry backup.Entry
			if id != "" {
				if entry, err = store.Get(id); err != nil {
					return fail("%v", err)
				}
				if entry.Path != p {
					return fail("backup %s is of %s, not %s", entry.ID, entry.Path, p)
				}
			} else {
				entries, err := store.List(p)
				if err != nil {
					return fail("%v", err)
				}
				if len(entries) == 0 {
					return fail("no backup of %s", p)
				}
				entry = entries[0]
			}
			lock, err := engine.AcquireLock(filepath.Join(filepath.Dir(dir), "run.lock"), 0)
			if err != nil {
				return fail("%v", err)
			}
			defer func() { _ = lock.Release() }()
			root, err := fsroot.Open(rootDir)
			if err != nil {
				return fail("%v", err)
			}
			defer root.Close()
			env := &resource.Env{Root: root, Backup: store}
			if err := resource.RestoreBackup(env, entry, "replaced by restore of "+entry.ID); err != nil {
				return fail("restore %s: %v", p, err)
			}
			fmt.Fprintf(s.stdout, "restored %s from backup %s (%s, %d bytes)\n", p, entry.ID, entry.Time.Format("2006-01-02 15:04:05Z"), entry.Size)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&id, "id", "", "restore this backup `ID` (or unique prefix) instead of the newest")
	return cmd
}
