package release

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// CheckError is returned by Publish when the config does not pass check for every node it
// names: nothing was published.
type CheckError struct {
	Dir     string
	Nodes   []string          // every node checked
	Failed  []string          // the nodes with errors, in the order of Nodes
	Diags   hcl.Diagnostics   // every problem, each once
	Sources map[string][]byte // the files read, for printing Diags with their source lines
}

func (e *CheckError) Error() string {
	if len(e.Nodes) == 0 {
		return fmt.Sprintf("%s does not pass check: nothing published", e.Dir)
	}
	return fmt.Sprintf("%s does not pass check for %d of %d nodes (%s): nothing published",
		e.Dir, len(e.Failed), len(e.Nodes), strings.Join(e.Failed, ", "))
}

// Check compiles the config in dir for every node it names (each inventory row and each
// node block without wildcards), as satchel check does with unknown facts, and returns a
// *CheckError if any node has an error or if the config names no node at all (a release
// that no node can be checked against is refused). It returns the nodes checked.
func Check(dir string) ([]string, error) {
	nodes, _, err := checkConfig(dir)
	return nodes, err
}

// checkConfig is Check, also returning the secrets each node reads.
func checkConfig(dir string) ([]string, nodeSecrets, error) {
	cfg, diags := lang.Load(dir, resource.Schemas())
	if cfg == nil {
		return nil, nil, &CheckError{Dir: dir, Diags: diags}
	}
	nodes := cfg.Nodes()
	e := &CheckError{Dir: dir, Nodes: nodes, Sources: cfg.Sources()}
	seen := map[string]bool{}
	add := func(d *hcl.Diagnostic) {
		key := d.Summary + "\x00" + d.Detail
		if d.Subject != nil {
			key += "\x00" + d.Subject.String()
		}
		if !seen[key] {
			seen[key] = true
			e.Diags = append(e.Diags, d)
		}
	}
	for _, d := range diags {
		add(d)
	}
	if len(nodes) == 0 {
		e.Diags = append(e.Diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No node to check",
			Detail: "The config names no node (no inventory, no node block without wildcards), so it cannot be checked before release."})
		return nil, nil, e
	}
	secrets := nodeSecrets{}
	for _, n := range nodes {
		names, nd := cfg.SecretNames(n)
		if len(names) > 0 {
			secrets[n] = names
		}
		if diags.HasErrors() || nd.HasErrors() {
			e.Failed = append(e.Failed, n)
		}
		for _, d := range nd {
			add(d)
		}
	}
	e.Sources = cfg.Sources()
	if len(e.Failed) > 0 {
		return nil, nil, e
	}
	return nodes, secrets, nil
}
