package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

func newCheck(s *streams) *cobra.Command {
	var node, factsFile, factsDir string
	var vars map[string]string
	cmd := &cobra.Command{
		Use:   "check CONFIG_DIR",
		Short: "Find every mistake in a config repository, for every node of the inventory",
		Long: `Parse the repository and compile it for every node it names (each inventory row and
each node block without wildcards), or for --node only, and report every problem with
FILE:LINE:COLUMN and the source line: syntax, unknown attributes, wrong types, dangling
references, duplicate resources or paths, dependency cycles.

Facts come from --facts (with --node), from --facts-dir/NODE.json when present, and are
otherwise unknown: expressions that depend on them are checked as far as their types allow.
Exit status 0 when everything is valid, 1 otherwise.`,
		Args: wantArgs(1, "CONFIG_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Problems found while parsing do not stop the per-node checks: a mistake in one
			// block must not hide the mistakes in others.
			cfg, loadDiags := lang.Load(args[0], resource.Schemas())
			if cfg == nil {
				_ = lang.WriteDiagnostics(s.stderr, loadDiags, nil)
				return fail("%s: %s", args[0], countErrors(loadDiags))
			}
			if err := cfg.SetVars(vars); err != nil {
				return &usageError{err}
			}
			nodes := cfg.Nodes()
			if node != "" {
				nodes = []string{node}
			} else if factsFile != "" {
				return &usageError{errors.New("--facts needs --node (use --facts-dir for several nodes)")}
			}
			if len(nodes) == 0 {
				fmt.Fprintf(s.stdout, "%s parses, but names no node (no inventory, no node block without wildcards): pass --node NAME to check one.\n", args[0])
				return nil
			}
			all := loadDiags
			nodesOf := map[string][]string{}
			for _, d := range loadDiags {
				nodesOf[diagKey(d)] = nodes
			}
			for _, n := range nodes {
				facts, err := factsFor(n, factsFile, factsDir)
				if err != nil {
					return err
				}
				for _, d := range cfg.Check(n, facts) {
					key := diagKey(d)
					if _, seen := nodesOf[key]; !seen {
						all = append(all, d)
					}
					nodesOf[key] = append(nodesOf[key], n)
				}
			}
			if len(nodes) > 1 {
				for _, d := range all {
					if ns := nodesOf[diagKey(d)]; len(ns) < len(nodes) {
						d.Detail = strings.TrimSpace(d.Detail + "\n(for node " + listNodes(ns) + ")")
					}
				}
			}
			_ = lang.WriteDiagnostics(s.stderr, all, cfg.Sources())
			if all.HasErrors() {
				return fail("%s: %s in %s", args[0], countErrors(all), plural(len(nodes), "node"))
			}
			fmt.Fprintf(s.stdout, "%s: OK, %s checked (%s)\n", args[0], plural(len(nodes), "node"), listNodes(nodes))
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "check only this node")
	cmd.Flags().StringVar(&factsFile, "facts", "", "facts of --node, from this JSON `file`")
	registerVars(cmd, &vars)
	cmd.Flags().StringVar(&factsDir, "facts-dir", "", "`directory` of NODE.json facts files, for the nodes that have one")
	return cmd
}

func factsFor(node, file, dir string) (map[string]any, error) {
	if file != "" {
		return readFactsFile(file)
	}
	if dir == "" {
		return nil, nil
	}
	p := filepath.Join(dir, node+".json")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return readFactsFile(p)
}

func diagKey(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return d.Summary + "\x00" + d.Detail
	}
	return d.Summary + "\x00" + d.Subject.String()
}

func listNodes(ns []string) string {
	if len(ns) > 5 {
		return strings.Join(ns[:5], ", ") + fmt.Sprintf(" and %d more", len(ns)-5)
	}
	return strings.Join(ns, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
