package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/satchelcm/satchel/internal/report"
)

// printReport writes the outcome of a run for people: one block per resource that changed,
// failed or was skipped (unchanged ones are only counted), then a summary line.
func printReport(w io.Writer, rep *report.Report, diffs bool) {
	var b strings.Builder
	verb := "Applied"
	if rep.Noop {
		verb = "Plan"
	}
	for _, r := range rep.Resources {
		if r.Status == report.Unchanged && len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %s", symbol(r), r.Address)
		if r.Status == report.Failed || r.Status == report.Skipped {
			fmt.Fprintf(&b, " %s", r.Status)
		}
		if r.Refreshed {
			if rep.Noop {
				b.WriteString(" (would be refreshed: notified)")
			} else {
				b.WriteString(" (refreshed: notified)")
			}
		}
		b.WriteString("\n")
		for _, c := range r.Changes {
			fmt.Fprintf(&b, "    %s\n", describeChange(c))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "    note: %s\n", n)
		}
		if r.Error != "" {
			for _, l := range strings.Split(r.Error, "\n") {
				fmt.Fprintf(&b, "    ! %s\n", l)
			}
		}
		if diffs && r.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(r.Diff, "\n"), "\n") {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	if rep.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", rep.Error)
	}
	s := rep.Summary
	changed := "changed"
	if rep.Noop {
		changed = "to change"
	}
	fmt.Fprintf(&b, "%s for %s: %d %s, %d unchanged, %d failed, %d skipped (%d resources, %.2fs).\n",
		verb, rep.Node, s.Changed, changed, s.Unchanged, s.Failed, s.Skipped, s.Total, rep.DurationMS/1000)
	_, _ = io.WriteString(w, b.String())
}

func symbol(r *report.Resource) string {
	switch r.Status {
	case report.Unchanged:
		return " " // listed only for its notes
	case report.Failed:
		return "!"
	case report.Skipped:
		return "-"
	}
	for _, c := range r.Changes {
		if c.Attribute != "ensure" {
			continue
		}
		switch {
		case c.To == "absent" || c.To == "purged":
			return "x"
		case c.From == "absent":
			return "+"
		}
	}
	return "~"
}

func describeChange(c *report.Change) string {
	switch {
	case c.Attribute == "run":
		return "run: " + c.To
	case c.From == "":
		return fmt.Sprintf("%s: %s", c.Attribute, c.To)
	}
	return fmt.Sprintf("%s: %s -> %s", c.Attribute, c.From, c.To)
}
