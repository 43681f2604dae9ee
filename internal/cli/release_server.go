package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/dirtar"
	"github.com/satchelcm/satchel/internal/release"
)

// releaseToServer sends the config in dir to the server of the admin credential, which
// previews it against every approved node and, unless only previewing, publishes it.
func releaseToServer(s *streams, f *adminFlags, dir, notes string, checks []release.HealthCheck, previewOnly, force bool) error {
	a, err := f.admin()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := dirtar.Pack(&buf, dir); err != nil {
		return fail("%v", err)
	}
	req := api.ReleaseRequest{Config: buf.Bytes(), Notes: notes, Preview: previewOnly, Force: force}
	for _, h := range checks {
		req.HealthChecks = append(req.HealthChecks, api.HealthCheck{Name: h.Name, Command: h.Command, Timeout: h.Timeout.String()})
	}
	res, refused, err := a.Release(context.Background(), req)
	if err != nil {
		return fail("%v", err)
	}
	if f.output == "json" {
		if err := printJSON(s, res); err != nil {
			return err
		}
	} else {
		printPreview(s, res.Preview)
	}
	failed := 0
	for _, n := range res.Preview.Nodes {
		if n.Error != "" {
			failed++
		}
	}
	switch {
	case refused:
		fmt.Fprintf(s.stderr, "satchel: %s\n", res.Message)
		return exitCode(exitFailure)
	case previewOnly:
		if failed > 0 {
			return exitCode(exitFailure)
		}
		return nil
	}
	if f.output != "json" {
		for _, w := range res.Warnings {
			fmt.Fprintf(s.stderr, "satchel: warning: %s\n", w)
		}
		fmt.Fprintf(s.stdout, "published release %d of %s to the server: config %s, %s checked\n", res.Version, dir, res.Config, plural(len(res.Checked), "node"))
		if failed > 0 {
			fmt.Fprintf(s.stdout, "forced: it fails to evaluate for %s\n", plural(failed, "node"))
		}
	}
	return nil
}

// printPreview shows a preview grouped by identical changes, the largest group first, then
// the nodes it fails for.
func printPreview(s *streams, p api.Preview) {
	type group struct {
		nodes   []string
		changes []api.PreviewChange
	}
	var groups []*group
	byKey := map[string]*group{}
	var failing []api.PreviewNode
	changed, same, noFacts := 0, 0, 0
	for _, n := range p.Nodes {
		if n.Error != "" {
			failing = append(failing, n)
			continue
		}
		if n.NoFacts {
			noFacts++
		}
		if len(n.Changes) == 0 {
			same++
		} else {
			changed++
		}
		data, _ := json.Marshal(n.Changes)
		g := byKey[string(data)]
		if g == nil {
			g = &group{changes: n.Changes}
			byKey[string(data)] = g
			groups = append(groups, g)
		}
		g.nodes = append(g.nodes, n.Node)
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return len(b.nodes) - len(a.nodes) })
	against := fmt.Sprintf("against release %d", p.From)
	if p.From == 0 {
		against = "(no release yet)"
	}
	fmt.Fprintf(s.stdout, "preview %s for %s: %d would change, %d unchanged, %d fail", against, plural(len(p.Nodes), "approved node"), changed, same, len(failing))
	if noFacts > 0 {
		fmt.Fprintf(s.stdout, ", %d never reported facts (checked only)", noFacts)
	}
	fmt.Fprintln(s.stdout)
	for _, g := range groups {
		fmt.Fprintf(s.stdout, "  %s (%s):", nodeList(g.nodes, 6), plural(len(g.nodes), "node"))
		if len(g.changes) == 0 {
			fmt.Fprintln(s.stdout, " no change")
			continue
		}
		fmt.Fprintln(s.stdout)
		for _, c := range g.changes {
			sym := map[string]string{"added": "+", "removed": "-", "changed": "~"}[c.Kind]
			line := fmt.Sprintf("    %s %s", sym, c.Address)
			if len(c.Fields) > 0 {
				line += " (" + strings.Join(c.Fields, ", ") + ")"
			}
			fmt.Fprintln(s.stdout, line)
		}
	}
	for _, n := range failing {
		fmt.Fprintf(s.stdout, "  FAILS on %s: %s\n", n.Node, n.Error)
	}
}

// nodeList names up to max nodes, then says how many more.
func nodeList(nodes []string, max int) string {
	if len(nodes) <= max {
		return strings.Join(nodes, ", ")
	}
	return strings.Join(nodes[:max], ", ") + fmt.Sprintf(", … %d more", len(nodes)-max)
}
