package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/server"
)

// DefaultServerDataDir is the server's data directory when --data is not given.
const DefaultServerDataDir = "/var/lib/satchel-server"

func newServer(s *streams) *cobra.Command {
	var dataDir, listen, logLevel, reportMaxAge string
	var hosts []string
	var keepReports int
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the central office's server: CA, enrollment, releases, reports",
		Long: `Run satchel server: one process that enrolls nodes, serves them the signed release
repository over mutual TLS, and keeps their facts and run reports, in an embedded SQLite
database under --data.

On first start it makes, under --data (mode 0700):
  ca/          the fleet's private CA; its fingerprint is printed: nodes pin it
               (satchel enroll --server URL --ca-fingerprint FP)
  state.db     nodes, bootstrap tokens, reports
  repo/        the release repository served to nodes (satchel release DIR --repo
               DATA/repo --keys DATA/keys publishes to it)
  keys/        its signing keys; move root.key to offline media once set up
  admin.json   the operator's credential (server URL, CA fingerprint, admin token):
               satchel nodes|tokens|reports --credential FILE use it

Each node's reports are kept up to --keep-reports and --report-max-age, its newest
always; older ones are removed as the node uploads and in an hourly sweep.

It logs one structured line per event to stderr (--log-level debug shows every request)
and stops cleanly on SIGINT or SIGTERM.`,
		Args: wantArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
			}
			maxAge, err := parseDays(reportMaxAge)
			if err != nil {
				return &usageError{fmt.Errorf("--report-max-age %v", err)}
			}
			if keepReports < 0 {
				return &usageError{fmt.Errorf("--keep-reports %d: want a number of reports, or 0 to keep all", keepReports)}
			}
			if v := os.Getenv("SATCHEL_BUNDLE_PART_SIZE"); v != "" {
				// For tests: split a bundle's files at a size they can afford.
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1<<10 {
					return &usageError{fmt.Errorf("SATCHEL_BUNDLE_PART_SIZE %q: want a number of bytes, 1024 or more", v)}
				}
				bundle.PartSize = n
			}
			cfg := server.Config{DataDir: dataDir, ReportsKept: keepReports, ReportMaxAge: maxAge}
			if keepReports == 0 {
				cfg.ReportsKept = -1 // no limit
			}
			if maxAge == 0 {
				cfg.ReportMaxAge = -1
			}
			log := slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: level}))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fail("listen on %s: %v", listen, err)
			}
			defer func() { _ = ln.Close() }() // Serve closed it already
			if len(hosts) == 0 {
				hosts = defaultHosts(ln.Addr())
			}
			cfg.Hosts, cfg.Log = hosts, log
			srv, err := server.Open(cfg)
			if err != nil {
				return fail("%v", err)
			}
			defer srv.Close()
			if err := srv.RecordAddress(ln.Addr()); err != nil {
				return fail("%v", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(s.stdout, "satchel server listening on https://%s\n", ln.Addr())
			fmt.Fprintf(s.stdout, "CA fingerprint: %s (short %s)\n", srv.CAFingerprint(), pki.Shorten(srv.CAFingerprint()))
			fmt.Fprintf(s.stdout, "admin credential: %s\n", filepath.Join(dataDir, server.CredentialFile))
			if err := srv.Serve(ctx, ln); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(s.stdout, "satchel server stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", DefaultServerDataDir, "the server's data `directory`")
	cmd.Flags().StringVar(&listen, "listen", ":8443", "the `address` to listen on (host:port)")
	cmd.Flags().StringArrayVar(&hosts, "hostname", nil, "a host `name` or address clients use, put in the server's certificate (repeatable; default: this host's name, localhost and the listen address)")
	cmd.Flags().IntVar(&keepReports, "keep-reports", server.DefaultReportsKept, "how many of each node's newest reports to keep (0: all)")
	cmd.Flags().StringVar(&reportMaxAge, "report-max-age", "90d", "how long to keep reports other than each node's newest, e.g. 30d or 12h (0: no limit)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "least `level` logged: debug, info, warn, error")
	return cmd
}

// defaultHosts are the names a server certificate is issued for when none are given.
func defaultHosts(addr net.Addr) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP != nil && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		hosts = append(hosts, tcp.IP.String())
	}
	return hosts
}
