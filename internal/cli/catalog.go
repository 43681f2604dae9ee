package cli

import (
	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/resource"
)

func newCatalog(s *streams) *cobra.Command {
	var nf nodeFlags
	var showSensitive bool
	cmd := &cobra.Command{
		Use:   "catalog CONFIG_DIR",
		Short: "Print the catalog a node gets: the configuration compiled to canonical JSON",
		Long: `Print the catalog: every resource the node gets, with its attributes (defaults
filled in), its edges and where it was declared, as canonical JSON (sorted keys, stable
addresses). This is the one format the engine, the tests and the fleet preview consume.

Values of sensitive attributes are replaced by "(sensitive)" unless --show-sensitive.`,
		Args: wantArgs(1, "CONFIG_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := nf.prepare(s, args[0], nil)
			if err != nil {
				return err
			}
			if !showSensitive {
				redactCatalog(cat)
			}
			out, err := catalog.Marshal(cat)
			if err != nil {
				return fail("%v", err)
			}
			_, err = s.stdout.Write(out)
			return err
		},
	}
	nf.register(cmd)
	cmd.Flags().BoolVar(&showSensitive, "show-sensitive", false, "print the values of sensitive attributes")
	return cmd
}

// redactCatalog replaces sensitive attribute values for display.
func redactCatalog(cat *catalog.Catalog) {
	for _, r := range cat.Resources {
		for _, a := range r.Sensitive {
			r.Attributes[a] = []byte(`"` + resource.Redacted + `"`)
		}
	}
}
