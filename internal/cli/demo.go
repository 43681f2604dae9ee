package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/demo"
)

func newDemo(s *streams) *cobra.Command {
	var dir string
	var schools int
	var serve bool
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--schools N]",
		Short: "See the whole job on this machine: an office, school servers, two releases, a USB stick",
		Long: `Run Satchel's main job end to end on this machine, in DIR and nowhere else:

  1. a central office starts (satchel server on 127.0.0.1, its database in DIR);
  2. N school servers enroll with one bootstrap token (each a directory standing for its
     disk, with an agent of its own);
  3. the office publishes the example school server (examples/school-server, carried in
     the binary) and every school converges to it;
  4. a second release (the web filter lets one more site through, a new book joins the
     content library) reaches the schools over the network, and the last school, which
     has no link, on a USB stick (a directory): exported, imported, reports collected;
  5. a summary, and the dashboard's address with its login.

The office then keeps serving until Ctrl-C (--serve=false ends at once). Nothing keeps
running after it stops; remove DIR when done.`,
		Args: wantArgs(0, "flags only"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := demo.Run(ctx, demo.Options{Dir: dir, Schools: schools, Serve: serve, Out: s.stdout}); err != nil {
				return fail("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "satchel-demo", "the `directory` the demo keeps everything in (new or empty)")
	cmd.Flags().IntVar(&schools, "schools", 3, "how many school servers (1 to 50; the last one has no link)")
	cmd.Flags().BoolVar(&serve, "serve", true, "keep the office serving the dashboard until Ctrl-C")
	return cmd
}
