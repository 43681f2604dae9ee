package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/schema"
)

// typeDoc is the JSON form of a resource type for `satchel types --json`.
type typeDoc struct {
	Name        string              `json:"name"`
	Doc         string              `json:"doc"`
	Refreshable bool                `json:"refreshable"`
	Attributes  []*schema.Attribute `json:"attributes"`
}

func newTypes(s *streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "types",
		Short: "List the resource types with their attributes, types, defaults and docs",
		Long: `List every resource type and its attributes, generated from the types' own schema.
Every resource also takes the meta-attributes for_each, when, require, before, notify and
subscribe.`,
		Args: wantArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var docs []typeDoc
			for _, t := range resource.Types() {
				docs = append(docs, typeDoc{Name: t.Schema.Name, Doc: t.Schema.Doc, Refreshable: t.Schema.Refreshable, Attributes: t.Schema.Attributes})
			}
			if asJSON {
				out, err := json.MarshalIndent(docs, "", "  ")
				if err != nil {
					return fail("encode types: %v", err)
				}
				fmt.Fprintf(s.stdout, "%s\n", out)
				return nil
			}
			for i, d := range docs {
				if i > 0 {
					fmt.Fprintln(s.stdout)
				}
				fmt.Fprintf(s.stdout, "%s: %s\n", d.Name, d.Doc)
				tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
				for _, a := range d.Attributes {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Name, typeText(a), defaultText(a), a.Doc)
				}
				_ = tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, for tools")
	return cmd
}

func typeText(a *schema.Attribute) string {
	t := string(a.Type)
	if a.Format != "" {
		t += " (" + string(a.Format) + ")"
	}
	if len(a.Enum) > 0 {
		t = strings.Join(a.Enum, "|")
	}
	return t
}

func defaultText(a *schema.Attribute) string {
	switch {
	case a.Required:
		return "required"
	case a.Default == nil:
		return "-"
	}
	b, _ := json.Marshal(a.Default)
	return "default " + string(b)
}
