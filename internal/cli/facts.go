package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/facts"
)

func newFacts(s *streams) *cobra.Command {
	var customDir string
	cmd := &cobra.Command{
		Use:   "facts",
		Short: "Print this machine's facts as JSON",
		Long: `Print the facts configurations can use as fact.NAME: hostname, fqdn, os, kernel,
arch, cpus, memory, disks, filesystems, networking, machine_id, and custom facts from
*.json files in the facts directory (default ` + facts.DefaultCustomDir + `). Nothing is sent anywhere.`,
		Args: wantArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			got, warnings, err := facts.Gather(facts.Options{CustomDir: customDir, Version: version()})
			for _, w := range warnings {
				fmt.Fprintf(s.stderr, "satchel: warning: %s\n", w)
			}
			if err != nil {
				return fail("gather facts: %v", err)
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				return fail("encode facts: %v", err)
			}
			fmt.Fprintf(s.stdout, "%s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&customDir, "custom-dir", "", "read custom facts from this `directory`")
	return cmd
}
