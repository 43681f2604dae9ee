package agent

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/catcache"
	"github.com/satchelcm/satchel/internal/lang"
	"github.com/satchelcm/satchel/internal/resource"
)

// compile evaluates the config repository checked out in dir for node with facts and the
// release's secrets, reusing a catalog compiled from the same files, node and facts
// (package catcache; each release has its own checkout, so its own secrets).
func (a *Agent) compile(dir, node string, facts map[string]any, secrets lang.SecretSource) (*catalog.Catalog, error) {
	in, newest, err := catcache.NewInputs(dir, node, facts)
	if err == nil {
		if cat := a.catalogs.Lookup(in); cat != nil {
			return cat, nil
		}
	}
	cfg, diags := lang.Load(dir, resource.Schemas())
	if diags.HasErrors() {
		return nil, fmt.Errorf("the configuration has %s", describeDiags(diags))
	}
	cfg.SetSecrets(secrets)
	cat, diags := cfg.Evaluate(node, facts)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the configuration for node %s has %s", node, describeDiags(diags))
	}
	refs, texts := cfg.FactReferences(), cfg.TextFiles()
	cfg = nil
	runtime.GC() // the syntax trees are garbage: an idle agent keeps only the catalog
	if in != nil {
		if err := a.catalogs.Store(in, newest, refs, texts, cat); err != nil {
			a.logf("warning: %v", err)
		}
	}
	return cat, nil
}

// describeDiags counts the errors and gives each with its position, summary and detail (a
// release was checked before it was published, so these come from this node's facts).
// Source lines are left out: the report goes to the spool and the office, and a line of
// the configuration may hold a secret.
func describeDiags(diags hcl.Diagnostics) string {
	var b strings.Builder
	_ = lang.WriteDiagnostics(&b, diags, nil)
	n := len(diags.Errs())
	word := "errors"
	if n == 1 {
		word = "error"
	}
	return fmt.Sprintf("%d %s:\n%s", n, word, strings.TrimRight(b.String(), "\n"))
}
