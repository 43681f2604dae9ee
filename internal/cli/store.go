package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/store"
)

type storeFlags struct {
	dir string
}

func (f *storeFlags) open() (*store.Store, error) {
	dir := f.dir
	if dir == "" {
		dir = filepath.Join(stateDir("", "/"), "store")
	}
	s, err := store.Open(dir)
	if err != nil {
		return nil, fail("%v", err)
	}
	return s, nil
}

func newStoreCmd(s *streams) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Keep files and whole trees as content-defined chunks: add, ls, delta, serve, pull, checkout, verify, gc",
		Long: `A store keeps files and directory trees as content-defined chunks, compressed, named by
the SHA-256 of their content, so that a node fetches only the bytes it lacks. A tree is
named by one ID that covers every byte below it. The store is a plain directory that any
static HTTP server can serve.`,
		Args: wantArgs(0, "a subcommand: add, ls, delta, serve, pull, checkout, verify or gc"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&f.dir, "store", "", "the store `DIR` (default: store/ in the state directory: "+
		"$SATCHEL_STATE_DIR, else "+DefaultStateDir+" as root, else ~/.local/state/satchel)")
	cmd.AddCommand(newStoreAdd(s, &f), newStoreLs(s, &f), newStoreVerify(s, &f), newStoreGC(s, &f))
	cmd.AddCommand(newStoreServe(s, &f), newStorePull(s, &f))
	cmd.AddCommand(newStoreDelta(s, &f), newStoreCheckout(s, &f))
	return cmd
}

// interruptible returns a context cancelled by SIGINT or SIGTERM.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newStoreAdd(s *streams, f *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add PATH",
		Short: "Store a file or a directory tree; print its ID",
		Long: `Store a file or a whole directory tree (regular files, directories, symlinks and their
permission bits) and print its ID on standard output, then a summary on standard error.
Adding what is already stored writes nothing. Sockets, devices, FIFOs and names with
control characters are refused before anything is written.`,
		Args: wantArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.open()
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			var last store.Progress
			start := time.Now()
			id, err := st.Add(ctx, args[0], func(p store.Progress) {
				last = p
				show.set(fmt.Sprintf("adding: %d of %d files, %s of %s%s", p.Files, p.TotalFiles,
					humanBytes(p.Bytes), humanBytes(p.TotalBytes), percent(p.Bytes, p.TotalBytes)))
			})
			show.done()
			if err != nil {
				return fail("%v", err)
			}
			elapsed := time.Since(start)
			fmt.Fprintln(s.stdout, id)
			what := "tree"
			if info, err := os.Stat(args[0]); err == nil && !info.IsDir() {
				what = "file"
			}
			fmt.Fprintf(s.stderr, "added %s %s: %s, %s; chunks: %d new, %d reused; wrote %s, %s compressed; %.1fs, %s/s\n",
				what, args[0], plural(int(last.Files), "file"), humanBytes(last.Bytes), last.NewChunks, last.ReusedChunks,
				plural(int(last.NewChunks+last.NewObjects), "file"), humanBytes(last.StoredBytes), elapsed.Seconds(),
				humanBytes(int64(float64(last.Bytes)/max(elapsed.Seconds(), 1e-3))))
			return nil
		},
	}
}

// parseIDList parses the values of a repeatable flag of IDs, each a single ID or a
// comma-separated list.
func parseIDList(values []string) ([]store.ID, error) {
	var ids []store.ID
	for _, v := range values {
		for _, one := range strings.Split(v, ",") {
			id, err := parseIDArg(strings.TrimSpace(one))
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func parseIDArg(arg string) (store.ID, error) {
	id, err := store.ParseID(arg)
	if err != nil {
		return id, &usageError{err}
	}
	return id, nil
}

func newStoreLs(s *streams, f *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls ID",
		Short: "List a tree (mode, size, path of every entry) or a file's chunks",
		Args:  wantArgs(1, "an ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			st, err := f.open()
			if err != nil {
				return err
			}
			obj, err := st.Object(id)
			if err != nil {
				return fail("%v", err)
			}
			var b strings.Builder
			if file, ok := obj.(*store.FileObject); ok {
				fmt.Fprintf(&b, "file %s: %d bytes in %s, sha256 %s\n", id, file.Size, plural(len(file.Chunks), "chunk"), file.SHA256)
				var off int64
				for _, c := range file.Chunks {
					fmt.Fprintf(&b, "%12d %8d  %s\n", off, c.Length, c.ID)
					off += int64(c.Length)
				}
				_, _ = io.WriteString(s.stdout, b.String())
				return nil
			}
			ctx, stop := interruptible()
			defer stop()
			err = st.Walk(ctx, id, func(p string, e store.Entry, file *store.FileObject) error {
				size := "-"
				if file != nil {
					size = fmt.Sprint(file.Size)
				}
				name := p
				if e.Kind == store.KindSymlink {
					name += " -> " + e.Target
				}
				fmt.Fprintf(&b, "%s %12s  %s\n", lsMode(e), size, name)
				if b.Len() > 64<<10 {
					_, _ = io.WriteString(s.stdout, b.String())
					b.Reset()
				}
				return nil
			})
			_, _ = io.WriteString(s.stdout, b.String())
			if err != nil {
				return fail("%v", err)
			}
			return nil
		},
	}
}

// lsMode renders an entry's kind and mode as ls -l does: drwxr-sr-x, -rwsr-xr-x, drwxrwxrwt.
func lsMode(e store.Entry) string {
	b := []byte("-rwxrwxrwx")
	switch e.Kind {
	case store.KindDir:
		b[0] = 'd'
	case store.KindSymlink:
		return "lrwxrwxrwx"
	}
	for i := range 9 {
		if e.Mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, at int, set, unset byte) {
		if e.Mode&bit != 0 {
			if b[at] == '-' {
				b[at] = unset
			} else {
				b[at] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

func newStoreVerify(s *streams, f *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Re-read and re-hash every chunk and object; exit 1 listing the corrupt ones",
		Long: `Read every chunk and object in the store, decompress it and check it against its name
(the SHA-256 of its content) and its seal (a checksum of the stored bytes). A corrupt file
is moved to the store's quarantine/ directory, so that it is never used and is stored or
fetched again; verify then lists it and exits with status 1.`,
		Args: wantArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.open()
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			show := newLineProgress(s.stderr)
			rep, err := st.Verify(ctx, func(p store.Progress) {
				show.set(fmt.Sprintf("verifying: %d of %d files, %s of %s%s", p.Files, p.TotalFiles,
					humanBytes(p.Bytes), humanBytes(p.TotalBytes), percent(p.Bytes, p.TotalBytes)))
			})
			show.done()
			if err != nil {
				return fail("%v", err)
			}
			for _, d := range rep.Corrupt {
				fmt.Fprintf(s.stdout, "corrupt %s %s: %v\n", d.Kind, d.ID, d.Err)
			}
			fmt.Fprintf(s.stdout, "verified %s and %s (%s stored)\n", plural(rep.Chunks, "chunk"),
				plural(rep.Objects, "object"), humanBytes(rep.Bytes))
			if len(rep.Corrupt) > 0 {
				return fail("%s corrupt: moved to %s; add or fetch them again",
					plural(len(rep.Corrupt), "file"), filepath.Join(st.Dir(), "quarantine"))
			}
			return nil
		},
	}
}

func newStoreGC(s *streams, f *storeFlags) *cobra.Command {
	var keep []string
	cmd := &cobra.Command{
		Use:   "gc --keep ID...",
		Short: "Delete every chunk and object that the kept roots do not reach",
		Long: `Delete every chunk and object not reachable from the kept roots (tree or file IDs), the
temporary files of interrupted writes and the quarantine. Nothing is deleted if a kept root
is missing, incomplete or corrupt, or if another process is adding to the store.`,
		Args: wantArgs(0, "no arguments (roots are given with --keep)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keep) == 0 {
				return &usageError{errors.New("gc needs the roots to keep: --keep ID (repeatable); to empty a store, remove its directory")}
			}
			ids, err := parseIDList(keep)
			if err != nil {
				return err
			}
			st, err := f.open()
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			stats, err := st.GC(ctx, ids)
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "removed %s and %s (%s); kept %s and %s",
				plural(stats.Chunks, "chunk"), plural(stats.Objects, "object"), humanBytes(stats.Bytes),
				plural(stats.KeptChunks, "chunk"), plural(stats.KeptObjects, "object"))
			if stats.TempFiles > 0 || stats.Quarantined > 0 {
				fmt.Fprintf(s.stdout, "; removed %s and %s",
					plural(stats.TempFiles, "temporary file"), plural(stats.Quarantined, "quarantined file"))
			}
			fmt.Fprintln(s.stdout)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keep, "keep", nil, "keep this root `ID` and everything it reaches (repeatable, or comma-separated)")
	return cmd
}

// humanBytes renders a byte count with a binary unit: 512 B, 1.5 KiB, 597.3 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

func percent(done, total int64) string {
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%d%%)", done*100/total)
}
