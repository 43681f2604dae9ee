package cli

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/catcache"
	"github.com/satchelcm/satchel/internal/facts"
	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// fail ends a command with exit status 1 and a one-line message.
func fail(format string, args ...any) error {
	return &exitError{code: exitFailure, err: fmt.Errorf(format, args...)}
}

// nodeFlags select the node a configuration is compiled for.
type nodeFlags struct {
	node      string
	factsFile string
	vars      map[string]string
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.node, "node", "", "compile for this node name (default: this machine's hostname fact)")
	cmd.Flags().StringVar(&f.factsFile, "facts", "", "read the node's facts from this JSON `file` instead of gathering this machine's")
	registerVars(cmd, &f.vars)
}

// registerVars adds --var NAME=VALUE, repeatable.
func registerVars(cmd *cobra.Command, vars *map[string]string) {
	cmd.Flags().StringToStringVar(vars, "var", nil, "set a declared variable, above the inventory and node blocks: `NAME=VALUE` (repeatable; HCL syntax for non-strings, e.g. --var 'sites=[\"a\"]')")
}

// loadConfig parses the repository, printing every problem.
func loadConfig(s *streams, dir string) (*lang.Config, error) {
	cfg, diags := lang.Load(dir, resource.Schemas())
	if diags.HasErrors() {
		var sources map[string][]byte
		if cfg != nil {
			sources = cfg.Sources()
		}
		_ = lang.WriteDiagnostics(s.stderr, diags, sources)
		return nil, &exitError{code: exitFailure, err: fmt.Errorf("%s has %s", dir, countErrors(diags))}
	}
	if len(diags) > 0 {
		_ = lang.WriteDiagnostics(s.stderr, diags, cfg.Sources())
	}
	return cfg, nil
}

func countErrors(diags hcl.Diagnostics) string {
	n := len(diags.Errs())
	if n == 1 {
		return "1 error"
	}
	return fmt.Sprintf("%d errors", n)
}

// loadFacts reads facts from a file, or gathers this machine's.
func (f *nodeFlags) loadFacts(s *streams) (map[string]any, error) {
	if f.factsFile != "" {
		return readFactsFile(f.factsFile)
	}
	got, warnings, err := facts.Gather(facts.Options{Version: version()})
	for _, w := range warnings {
		fmt.Fprintf(s.stderr, "satchel: warning: %s\n", w)
	}
	if err != nil {
		return nil, fail("gather facts: %v", err)
	}
	return got, nil
}

func readFactsFile(path string) (map[string]any, error) {
	m, err := facts.ReadFile(path)
	if err != nil {
		return nil, fail("%v", err)
	}
	return m, nil
}

// nodeName is --node, else the facts' hostname.
func (f *nodeFlags) nodeName(fs map[string]any) (string, error) {
	if f.node != "" {
		return f.node, nil
	}
	if h, ok := fs["hostname"].(string); ok && h != "" {
		return h, nil
	}
	return "", fail("no node name: pass --node NAME, or facts with a hostname")
}

// compile evaluates the configuration for the node, printing every problem.
func compile(s *streams, cfg *lang.Config, node string, fs map[string]any) (*catalog.Catalog, error) {
	cat, diags := cfg.Evaluate(node, fs)
	if len(diags) > 0 {
		_ = lang.WriteDiagnostics(s.stderr, diags, cfg.Sources())
	}
	if diags.HasErrors() {
		return nil, fail("configuration for node %s has %s", node, countErrors(diags))
	}
	return cat, nil
}

// compileGCPercent is the garbage collector's target while compiling (Go's default is 100).
const compileGCPercent = 50

// prepare compiles the repository for the selected node. With a cache, a catalog compiled
// from the same files, node and facts is reused instead (see package catcache).
func (f *nodeFlags) prepare(s *streams, dir string, cache *catcache.Cache) (*catalog.Catalog, error) {
	fs, err := f.loadFacts(s)
	if err != nil {
		return nil, err
	}
	node, err := f.nodeName(fs)
	if err != nil {
		return nil, err
	}
	var in *catcache.Inputs
	var newest time.Time
	if cache != nil {
		if in, newest, err = catcache.NewInputs(dir, node, fs); err == nil {
			in.Vars = f.vars
			if cat := cache.Lookup(in); cat != nil {
				return cat, nil
			}
		}
	}
	// Parsing makes much short-lived garbage (HCL allocates ~40 bytes per byte of source):
	// collect it sooner than Go's default, so the peak stays near the live size.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(compileGCPercent))
	}
	cfg, err := loadConfig(s, dir)
	if err != nil {
		return nil, err
	}
	if err := cfg.SetVars(f.vars); err != nil {
		return nil, &usageError{err}
	}
	cat, err := compile(s, cfg, node, fs)
	if err != nil {
		return nil, err
	}
	refs, texts := cfg.FactReferences(), cfg.TextFiles()
	// The syntax trees are garbage now and the catalog is a fraction of their size: collect
	// them before the run allocates, so a node's peak memory is that of parsing, not that
	// plus the run's.
	cfg = nil
	runtime.GC()
	if in != nil {
		if err := cache.Store(in, newest, refs, texts, cat); err != nil {
			fmt.Fprintf(s.stderr, "satchel: warning: %v\n", err)
		}
	}
	return cat, nil
}
