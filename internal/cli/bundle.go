package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/client"
)

func newBundle(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Carry releases to sites with no link on a USB stick, and their reports back",
		Long: `A bundle is a directory (a USB stick, FAT32 or exFAT) that carries the latest release to
nodes that never reach the server, and brings their reports and facts back:

  at the office:   satchel bundle export --to /media/usb --nodes school-7,school-9
  at each school:  plug the stick into the school server; its agent imports it on its
                   own (or: satchel bundle import /media/usb) and says when the stick
                   may be removed
  back at office:  satchel bundle collect /media/usb

Everything on the stick is checked at the school as a network release is (signatures, no
older release, every byte by hash), and the stick itself is signed by the server: a stick
edited on the way, or made for another fleet, is refused with nothing applied.`,
	}
	cmd.AddCommand(newBundleExport(s), newBundleImport(s), newBundleCollect(s), newBundleRelay(s))
	return cmd
}

func newBundleExport(s *streams) *cobra.Command {
	f := &adminFlags{}
	var to, where string
	var nodes []string
	var all, full bool
	cmd := &cobra.Command{
		Use:   "export --to DIR (--nodes NAME,... | --where COLUMN=VALUE | --all) [--full]",
		Short: "Write the latest release onto a stick for the nodes named",
		Long: `Write a bundle of the server's latest release into DIR (a mounted USB stick) for the nodes
named, or those whose row of the release's inventory has VALUE in COLUMN (--where
Department="La Rioja"), or all approved nodes: the signed metadata and manifest, their
encrypted secrets, and for each node static deltas from the trees it holds (as its last
report says) to the release's, so that only what it lacks travels; from nothing for a
node never heard from, or for all with --full.

The server builds the deltas it lacks first (minutes for a large library). The space needed
is said before anything is written. An export that is cut (a full stick, Ctrl-C) is
resumed by running it again: what was written and reads back correctly is kept. The index
is written last, so a stick whose export did not finish is refused at the school.`,
		Args: wantArgs(0, "flags only"),
		RunE: f.withAdmin(func(a *client.Admin, _ []string) error {
			if to == "" {
				return &usageError{errors.New("--to DIR: where to write the bundle (a mounted USB stick)")}
			}
			req := api.BundleRequest{Nodes: nodes, All: all, Full: full}
			if where != "" {
				col, val, ok := strings.Cut(where, "=")
				if !ok || strings.TrimSpace(col) == "" {
					return &usageError{fmt.Errorf("--where %q: want COLUMN=VALUE, a column of the inventory", where)}
				}
				req.Column, req.Value = strings.TrimSpace(col), strings.TrimSpace(val)
			}
			if n := btoi(all) + btoi(len(nodes) > 0) + btoi(where != ""); n != 1 {
				return &usageError{errors.New("name the nodes with --nodes, select them with --where COLUMN=VALUE, or give --all: one of the three")}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(s.stderr, "planning the bundle (the server builds the deltas it lacks)...\n")
			plan, err := a.Bundle(ctx, req)
			if err != nil {
				return err
			}
			if len(plan.Skipped) > 0 {
				fmt.Fprintf(s.stdout, "not on this stick (not enrolled, or not approved): %s\n", strings.Join(plan.Skipped, ", "))
			}
			ix, _, err := bundle.OpenIndex(plan.Index, a.CAFingerprint())
			if err != nil {
				return fmt.Errorf("the server's bundle index: %w", err)
			}
			for _, n := range plan.Nodes {
				fmt.Fprintf(s.stdout, "%s: %s\n", n.Name, describeTrees(n.Trees))
			}
			need := ix.Missing(to)
			fmt.Fprintf(s.stdout, "bundle %s: release %d for %s, %s (%s still to write)\n", ix.ID, ix.Release,
				plural(len(ix.Nodes), "node"), humanBytes(ix.Size()), humanBytes(need))
			if err := os.MkdirAll(to, 0o755); err != nil {
				return err
			}
			if free, err := bundle.FreeSpace(to); err == nil && free < need {
				return fmt.Errorf("%s has %s free, and the bundle needs %s more: use a larger stick, or fewer nodes", to, humanBytes(free), humanBytes(need))
			}
			p := newLineProgress(s.stderr)
			err = bundle.Write(ctx, to, ix, plan.Index, bundle.SourceFunc(a.RepoFile), bundle.WriteOptions{Progress: func(done, total int64) {
				p.set(fmt.Sprintf("writing the bundle: %s of %s", humanBytes(done), humanBytes(total)))
			}})
			p.done()
			if err != nil {
				return fmt.Errorf("write the bundle into %s: %w (run the same command again to resume)", to, err)
			}
			fmt.Fprintf(s.stdout, "bundle written to %s. At each school, plug the stick into the server: its agent imports it on its own (or run satchel bundle import %s).\n", to, to)
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "the `directory` to write the bundle into (a mounted USB stick)")
	cmd.Flags().StringSliceVar(&nodes, "nodes", nil, "the nodes to carry the release to, by `name` (comma-separated or repeated)")
	cmd.Flags().BoolVar(&all, "all", false, "every approved node")
	cmd.Flags().StringVar(&where, "where", "", "the approved nodes whose inventory row has VALUE in COLUMN (`COLUMN=VALUE`, e.g. Department=\"La Rioja\")")
	cmd.Flags().BoolVar(&full, "full", false, "everything the release's trees need, whatever the nodes hold")
	return cmd
}

// describeTrees says how each tree reaches a node.
func describeTrees(trees []api.BundleTree) string {
	var parts []string
	for _, t := range trees {
		switch {
		case t.Held:
			parts = append(parts, t.Address+" held already")
		case t.From == "":
			parts = append(parts, t.Address+" in full")
		default:
			parts = append(parts, fmt.Sprintf("%s as a delta from %s", t.Address, t.From[:12]))
		}
	}
	return strings.Join(parts, ", ")
}

func newBundleImport(s *streams) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Bring this node up to date from a bundle (the agent does it on its own for sticks it finds)",
		Long: `Import the bundle in DIR (a mounted USB stick): check it was made by this node's server,
copy what it carries into the state directory checking every byte (the stick may then be
removed), apply its release as the agent applies any (rolled back if it fails), and write
this node's reports and facts onto the stick for the office.

A stick pulled out while it is copied leaves the node on its last good release; importing
the same stick again resumes the copy. A stick made for other nodes gives this one its
content and nothing else.

Exit codes: 0 imported (or nothing new), 1 refused or failed, 3 the release failed and was
rolled back, 64 usage error.`,
		Args: wantArgs(1, "the bundle's directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.settings(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a, err := agent.Open(agent.Options{Config: cfg, Root: f.root, Node: f.node, FactsFile: f.factsFile,
				Version: version(), Parallel: f.parallel, Log: s.stderr})
			if errors.Is(err, agent.ErrNoRepository) {
				return fail("%v", agent.ErrNotEnrolled) // what matters here: --repo is no flag of this command
			}
			if err != nil {
				return fail("%v", err)
			}
			defer a.Close()
			p := newLineProgress(s.stderr)
			res, err := a.ImportBundle(ctx, args[0], agent.ImportOptions{Progress: func(done, total int64) {
				p.set(fmt.Sprintf("copying from the stick: %s of %s", humanBytes(done), humanBytes(total)))
			}})
			p.done()
			if res != nil && res.Report != nil {
				printCycle(s, res.Report)
			}
			if err != nil {
				return fail("%v", err)
			}
			if res.Report != nil && res.Report.Outcome == agent.RolledBack {
				return exitCode(exitRolledBack)
			}
			if res.Report != nil && res.Report.Outcome != agent.Applied && res.Report.Outcome != agent.Reapplied {
				return exitCode(exitFailure)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.state, "state", "", "the agent's state `DIR` (default "+DefaultStateDir+" as root)")
	fl.StringVar(&f.root, "root", "", "converge the tree under this `directory` instead of /")
	fl.StringVar(&f.node, "node", "", "compile for this node name (default: this machine's hostname fact)")
	fl.StringVar(&f.factsFile, "facts", "", "read the node's facts from this JSON `file` instead of gathering this machine's")
	fl.StringVar(&f.config, "config", "", "read settings from this agent.hcl `file` (default "+agent.DefaultConfigPath+" if it exists)")
	fl.IntVar(&f.parallel, "parallel", 4, "converge up to this many independent resources at once")
	return cmd
}

func newBundleCollect(s *streams) *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "collect DIR",
		Short: "Hand the reports and facts that nodes wrote on a stick to the server",
		Long: `Read what each node wrote into DIR/returns/ (a stick back from the schools) and hand it to
the server, which checks that each node's returns are signed by that node's key and stores
its reports and facts as if they had come over the network. Collecting a stick twice
stores nothing twice. The next export for these nodes carries only what they now lack.

Exit codes: 0 every node's returns taken, 1 some refused (each is named), 64 usage error.`,
		Args: wantArgs(1, "the bundle's directory"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			dir := args[0]
			root, err := os.OpenRoot(dir)
			if err != nil {
				return err
			}
			defer root.Close()
			entries, err := fs.ReadDir(root.FS(), bundle.ReturnsDir)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(s.stdout, "no returns in %s: no node has written onto this stick\n", dir)
				return nil
			}
			if err != nil {
				return err
			}
			ctx := context.Background()
			failed := 0
			var receipts []api.ReturnsReceipt
			for _, e := range entries {
				if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
					continue
				}
				receipt, err := collectNode(ctx, a, dir, e.Name())
				if err != nil {
					failed++
					fmt.Fprintf(s.stderr, "satchel: %s: %v\n", e.Name(), err)
					continue
				}
				receipts = append(receipts, receipt)
				if f.output == "table" {
					facts := "facts updated"
					if !receipt.Recorded {
						facts = "collected before"
					}
					fmt.Fprintf(s.stdout, "%s: returns %d, %s (%d new), %s\n", receipt.Node, receipt.Seq,
						plural(receipt.Reports, "report"), receipt.Stored, facts)
				}
			}
			if f.output == "json" {
				if err := printJSON(s, receipts); err != nil {
					return err
				}
			}
			if failed > 0 {
				return exitCode(exitFailure)
			}
			return nil
		}),
	}
	f.register(cmd)
	return cmd
}

// collectNode reads one node's returns from the stick and hands them to the server.
func collectNode(ctx context.Context, a *client.Admin, dir, node string) (api.ReturnsReceipt, error) {
	signed, reports, err := bundle.ReadReturns(dir, node, api.MaxReportBytes, api.MaxReturnsBytes*3/4) // base64 on the way
	if err != nil {
		return api.ReturnsReceipt{}, err
	}
	return a.Returns(ctx, api.ReturnsUpload{Returns: signed, Reports: reports})
}

func newBundleRelay(s *streams) *cobra.Command {
	f := &agentFlags{}
	var to string
	var nodes []string
	cmd := &cobra.Command{
		Use:   "relay --to DIR --nodes NAME,...",
		Short: "On a connected node, write the release it runs onto a stick for neighbours with no link",
		Long: `Write into DIR (a mounted USB stick) a bundle of the release this node runs, from its own
state, for neighbouring nodes of the same fleet that never reach the server: the same format
and the same checks at the neighbour as a stick from the office (the release's signatures,
every byte's hash, and the stick signed with this node's certificate from the fleet's CA).

A relay carries the release's config and the content this node mirrors, in full (it does
not know what its neighbours hold), and no secrets: a neighbour whose configuration reads
secrets needs a stick from the office. The neighbours' reports written onto the stick are
collected at the office (satchel bundle collect).`,
		Args: wantArgs(0, "flags only"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" || len(nodes) == 0 {
				return &usageError{errors.New("--to DIR and --nodes NAME,... are required")}
			}
			cfg, err := f.settings(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := newLineProgress(s.stderr)
			ix, err := agent.Relay(ctx, cfg.StateDir, to, agent.RelayOptions{Nodes: nodes, Progress: func(done, total int64) {
				p.set(fmt.Sprintf("writing the bundle: %s of %s", humanBytes(done), humanBytes(total)))
			}})
			p.done()
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "bundle %s: release %d for %s, %s, written to %s\n", ix.ID, ix.Release, strings.Join(ix.Nodes, ", "), humanBytes(ix.Size()), to)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&to, "to", "", "the `directory` to write the bundle into (a mounted USB stick)")
	fl.StringSliceVar(&nodes, "nodes", nil, "the neighbours to carry the release to, by `name`")
	fl.StringVar(&f.state, "state", "", "this node's agent state `DIR` (default "+DefaultStateDir+" as root)")
	fl.StringVar(&f.root, "root", "", "the tree this node's agent converges, if not / (finds its state as satchel agent does)")
	fl.StringVar(&f.config, "config", "", "read settings from this agent.hcl `file` (default "+agent.DefaultConfigPath+" if it exists)")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
