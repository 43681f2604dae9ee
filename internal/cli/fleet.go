package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/server"
)

// The operator's commands: satchel nodes, tokens and reports, which call a server's admin
// API with the admin credential.

// adminFlags find the admin credential.
type adminFlags struct {
	credential string
	output     string
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.credential, "credential", "", "the server's admin credential `file` (default $SATCHEL_CREDENTIAL, else satchel/admin.json in the user's config directory, else "+DefaultServerDataDir+"/admin.json)")
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output `format`: table or json")
}

// credentialPath is the credential file to use.
func (f *adminFlags) credentialPath() string {
	if f.credential != "" {
		return f.credential
	}
	if env := os.Getenv("SATCHEL_CREDENTIAL"); env != "" {
		return env
	}
	if dir, err := os.UserConfigDir(); err == nil {
		p := filepath.Join(dir, "satchel", server.CredentialFile)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(DefaultServerDataDir, server.CredentialFile)
}

// withAdmin makes a command's RunE that calls fn with the admin connection; an error fn
// returns that is not already an exit status is a failure.
func (f *adminFlags) withAdmin(fn func(a *client.Admin, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		a, err := f.admin()
		if err != nil {
			return err
		}
		err = fn(a, args)
		var ee *exitError
		var ue *usageError
		if err == nil || errors.As(err, &ee) || errors.As(err, &ue) {
			return err
		}
		return fail("%v", err)
	}
}

func (f *adminFlags) admin() (*client.Admin, error) {
	if f.output != "table" && f.output != "json" {
		return nil, &usageError{fmt.Errorf("--output %q: want table or json", f.output)}
	}
	path := f.credentialPath()
	cred, err := server.LoadCredential(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail("no admin credential at %s: give the server's admin.json with --credential FILE", path)
	}
	if err != nil {
		return nil, fail("%v", err)
	}
	a, err := client.NewAdmin(cred.Server, cred.CAFingerprint, cred.Token)
	if err != nil {
		return nil, fail("%v", err)
	}
	return a, nil
}

// printJSON writes v as indented JSON.
func printJSON(s *streams, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(s.stdout, string(data))
	return nil
}

// ago shows a time as the time since it, for tables ("never" for the zero time).
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func newNodes(s *streams) *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List, approve, revoke and forget the server's nodes",
		Long: `Manage the nodes enrolled with a satchel server, through its admin API.

Before approving a node, compare the fingerprint 'satchel nodes pending' shows with the one
'satchel enroll' printed on the node: with --fingerprint, approve refuses a mismatch.
A revoked node is refused from its next request on; forget removes a node and its
reports, so that its name can enroll again with a new key (a replaced machine).`,
	}
	f.register(cmd)
	ctx := context.Background()
	var status, search string
	list := &cobra.Command{
		Use:   "list [--status STATUS] [--search TEXT]",
		Short: "List the nodes as the dashboard does: status, release, last run, last contact",
		Long: `List the nodes with their status, as the dashboard's fleet page shows it: in sync, behind,
failing, rolled back, pending approval, silent (judged by how each node reaches the
office: a school reached by USB stick is not silent after hours), or revoked; the release
in place at its last run, that run's outcome, its last contact and how it came (network or
USB stick). A summary line counts them all. --status and --search (a part of the name or
site, without case) narrow the list, not the summary.`,
		Args: wantArgs(0, "no arguments"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			fleet, err := a.Fleet(ctx)
			if err != nil {
				return fail("%v", err)
			}
			want, err := fleetStatus(status)
			if err != nil {
				return err
			}
			nodes := fleet.Nodes[:0:0]
			for _, n := range fleet.Nodes {
				text := strings.ToLower(search)
				if (want == "" || n.Status == want) && (text == "" || strings.Contains(strings.ToLower(n.Name), text) || strings.Contains(strings.ToLower(n.Site), text)) {
					nodes = append(nodes, n)
				}
			}
			if f.output == "json" {
				fleet.Nodes = nodes
				return printJSON(s, fleet)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSITE\tSTATUS\tRELEASE\tLAST RUN\tLAST CONTACT\tVIA")
			for _, n := range nodes {
				rel, result := "-", "-"
				if n.Release > 0 {
					rel = strconv.FormatUint(n.Release, 10)
				}
				if n.Result != "" {
					result = n.Result
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, clip(n.Site, 24), n.Status, rel, result, ago(n.LastContact, now), n.Via)
			}
			_ = tw.Flush()
			var parts []string
			for _, st := range fleetStatuses {
				if c := fleet.Counts[st]; c > 0 || st == "in sync" {
					parts = append(parts, fmt.Sprintf("%d %s", c, st))
				}
			}
			shown := ""
			if len(nodes) != len(fleet.Nodes) {
				shown = fmt.Sprintf(" (%d shown)", len(nodes))
			}
			latest := "no release yet"
			if fleet.Latest > 0 {
				latest = fmt.Sprintf("latest release %d", fleet.Latest)
			}
			fmt.Fprintf(s.stdout, "%s%s: %s; %s\n", plural(len(fleet.Nodes), "node"), shown, strings.Join(parts, ", "), latest)
			return nil
		}),
	}
	list.Flags().StringVar(&status, "status", "", "only the nodes of this `status`: in-sync, behind, failing, rolled-back, pending, silent, revoked")
	list.Flags().StringVar(&search, "search", "", "only the nodes whose name or site holds this `text`")
	pending := &cobra.Command{
		Use:   "pending",
		Short: "List the enrollment requests waiting for an operator, with the fingerprints to compare",
		Args:  wantArgs(0, "no arguments"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			all, err := a.Nodes(ctx)
			if err != nil {
				return fail("%v", err)
			}
			var nodes []api.Node
			for _, n := range all {
				if n.State == api.StatePending {
					nodes = append(nodes, n)
				}
			}
			if f.output == "json" {
				return printJSON(s, nodes)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFINGERPRINT\tMACHINE ID\tASKED")
			for _, n := range nodes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, n.Fingerprint, clip(n.MachineID, 16), ago(n.Enrolled, now))
			}
			_ = tw.Flush()
			fmt.Fprintf(s.stdout, "%s waiting: compare each fingerprint with the one the node printed, then satchel nodes approve NAME --fingerprint FP\n", plural(len(nodes), "node"))
			return nil
		}),
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a node: state, keys, enrollment, facts",
		Args:  wantArgs(1, "a node name"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			n, err := a.Node(ctx, args[0])
			if err != nil {
				return fail("%v", err)
			}
			if f.output == "json" {
				return printJSON(s, n)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintf(tw, "name:\t%s\n", n.Name)
			fmt.Fprintf(tw, "state:\t%s\n", n.State)
			fmt.Fprintf(tw, "fingerprint:\t%s\n", n.Fingerprint)
			fmt.Fprintf(tw, "machine ID:\t%s\n", n.MachineID)
			fmt.Fprintf(tw, "enrolled:\t%s (%s)\n", n.Enrolled.Local().Format(time.DateTime), ago(n.Enrolled, now))
			fmt.Fprintf(tw, "last seen:\t%s (%s)\n", n.LastSeen.Local().Format(time.DateTime), ago(n.LastSeen, now))
			if !n.LastReturns.IsZero() {
				fmt.Fprintf(tw, "last stick:\t%s (%s): its returns collected\n", n.LastReturns.Local().Format(time.DateTime), ago(n.LastReturns, now))
			}
			fmt.Fprintf(tw, "token:\t%s\n", n.TokenLabel)
			fmt.Fprintf(tw, "certificate:\t%s\n", n.CertSerial)
			_ = tw.Flush()
			if len(n.Facts) > 0 {
				var facts map[string]any
				if json.Unmarshal(n.Facts, &facts) == nil {
					data, _ := json.MarshalIndent(facts, "  ", "  ")
					fmt.Fprintf(s.stdout, "facts:\n  %s\n", data)
				}
			}
			return nil
		}),
	}
	var fingerprint string
	approve := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve a pending node: it gets its certificate at its next request",
		Args:  wantArgs(1, "a node name"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			if fingerprint != "" {
				n, err := a.Node(ctx, args[0])
				if err != nil {
					return fail("%v", err)
				}
				if !strings.EqualFold(n.Fingerprint, fingerprint) {
					return fail("node %s has the key fingerprint %s, not %s: not approved (is this the machine you think it is?)", n.Name, n.Fingerprint, fingerprint)
				}
			}
			n, err := a.Approve(ctx, args[0])
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "approved %s (fingerprint %s): it gets its certificate at its next request\n", n.Name, n.Fingerprint)
			return nil
		}),
	}
	approve.Flags().StringVar(&fingerprint, "fingerprint", "", "approve only if the node's key has this short `fingerprint` (as satchel enroll printed it)")
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a node: its next request is refused",
		Args:  wantArgs(1, "a node name"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			n, err := a.Revoke(ctx, args[0])
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "revoked %s: its next request is refused\n", n.Name)
			return nil
		}),
	}
	forget := &cobra.Command{
		Use:   "forget NAME",
		Short: "Remove a node and its reports, so that its name can enroll with a new key",
		Args:  wantArgs(1, "a node name"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			if err := a.Forget(ctx, args[0]); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "forgot %s and its reports\n", args[0])
			return nil
		}),
	}
	recipients := &cobra.Command{
		Use:   "recipients",
		Short: "Print the approved nodes' age recipients, for satchel release --recipients",
		Args:  wantArgs(0, "no arguments"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			nodes, err := a.Nodes(ctx)
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "# the age recipients of the approved nodes, %s\n", time.Now().UTC().Format(time.RFC3339))
			for _, n := range nodes {
				if n.State == api.StateApproved && n.Recipient != "" {
					fmt.Fprintf(s.stdout, "%s %s\n", n.Name, n.Recipient)
				}
			}
			return nil
		}),
	}
	cmd.AddCommand(list, pending, show, approve, revoke, forget, recipients)
	return cmd
}

func newTokens(s *streams) *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke bootstrap tokens",
		Long: `Manage bootstrap tokens: a token lets a batch of machines (a warehouse's day of imaging)
enroll without an operator approving each one, up to its number of uses and until it
expires. The token itself is shown once, at creation; the server keeps only its hash,
which names it afterwards (list, revoke).`,
	}
	f.register(cmd)
	ctx := context.Background()
	var uses int
	var expires, label string
	create := &cobra.Command{
		Use:   "create --uses N [--expires 7d] [--label TEXT]",
		Short: "Create a bootstrap token (shown once)",
		Args:  wantArgs(0, "flags only"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			req := api.TokenRequest{Label: label, Uses: uses}
			if expires != "" {
				d, err := parseDays(expires)
				if err != nil {
					return &usageError{fmt.Errorf("--expires: %w", err)}
				}
				req.Expires = time.Now().Add(d)
			}
			t, err := a.CreateToken(ctx, req)
			if err != nil {
				return fail("%v", err)
			}
			if f.output == "json" {
				return printJSON(s, t)
			}
			fmt.Fprintf(s.stdout, "token %s\n", t.ID)
			until := "never expires"
			if !t.Expires.IsZero() {
				until = "expires " + t.Expires.Local().Format(time.DateTime)
			}
			fmt.Fprintf(s.stdout, "%s, %s; shown only now: the server keeps its hash %s\n", plural(t.UsesLeft, "use"), until, t.Hash[:12])
			return nil
		}),
	}
	create.Flags().IntVar(&uses, "uses", 1, "how many machines may enroll with it")
	create.Flags().StringVar(&expires, "expires", "7d", "how long it is valid (a `duration`: 7d, 12h, 30m; 0: never)")
	create.Flags().StringVar(&label, "label", "", "what the token is for (\"La Rioja batch 3\"), recorded with the nodes it enrolls")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens, by creation",
		Args:  wantArgs(0, "no arguments"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			tokens, err := a.Tokens(ctx)
			if err != nil {
				return fail("%v", err)
			}
			if f.output == "json" {
				return printJSON(s, tokens)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "HASH\tLABEL\tUSES LEFT\tEXPIRES\tSTATE")
			for _, t := range tokens {
				state, exp := "valid", "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Local().Format(time.DateTime)
				}
				switch {
				case t.Revoked:
					state = "revoked"
				case !t.Expires.IsZero() && !now.Before(t.Expires):
					state = "expired"
				case t.UsesLeft <= 0:
					state = "used up"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t.Hash[:12], t.Label, t.UsesLeft, exp, state)
			}
			return tw.Flush()
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke HASH",
		Short: "Revoke a token, named by its hash or a unique prefix of it (8 digits or more)",
		Args:  wantArgs(1, "a token hash"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			prefix := strings.ToLower(args[0])
			if len(prefix) < 8 {
				return &usageError{fmt.Errorf("token hash %q: give at least 8 digits", args[0])}
			}
			tokens, err := a.Tokens(ctx)
			if err != nil {
				return fail("%v", err)
			}
			var match []api.Token
			for _, t := range tokens {
				if strings.HasPrefix(t.Hash, prefix) {
					match = append(match, t)
				}
			}
			switch len(match) {
			case 0:
				return fail("no token has a hash starting with %s", prefix)
			case 1:
			default:
				return fail("%d tokens have a hash starting with %s: give more digits", len(match), prefix)
			}
			if err := a.RevokeToken(ctx, match[0].Hash); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "revoked token %s (%s)\n", match[0].Hash[:12], match[0].Label)
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// parseDays parses a duration that may also be in days ("7d").
func parseDays(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q: want a positive number of days, or a duration such as 12h", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 7d, 12h or 30m", v)
	}
	return d, nil
}

func newReports(s *streams) *cobra.Command {
	f := &adminFlags{}
	var limit int
	cmd := &cobra.Command{
		Use:   "reports NAME",
		Short: "Show a node's last runs: outcome, release, failed and changed resources with diffs",
		Args:  wantArgs(1, "a node name"),
		RunE: f.withAdmin(func(a *client.Admin, args []string) error {
			reports, err := a.Reports(context.Background(), args[0], limit)
			if err != nil {
				return fail("%v", err)
			}
			if f.output == "json" {
				return printJSON(s, reports)
			}
			if len(reports) == 0 {
				fmt.Fprintf(s.stdout, "node %s has sent no report yet\n", args[0])
			}
			for _, r := range reports {
				printServerReport(s, r)
			}
			return nil
		}),
	}
	f.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 5, "show this many of the newest reports")
	return cmd
}

// printServerReport shows one report: a line for the cycle, then its runs as satchel apply
// shows them (each resource that failed or changed, with its error and diff).
func printServerReport(s *streams, r api.Report) {
	var rep agent.CycleReport
	_ = json.Unmarshal(r.Body, &rep) // a report of another shape shows its header only
	fmt.Fprintf(s.stdout, "== %s  %s  release %d\n", rep.Started.Local().Format(time.DateTime), r.Outcome, r.Release)
	if rep.Error != "" {
		fmt.Fprintf(s.stdout, "error: %s\n", rep.Error)
	}
	if rep.Rollback != nil {
		fmt.Fprintf(s.stdout, "rolled back release %d: %s\n", rep.Rollback.From, rep.Rollback.Cause)
	}
	for _, run := range []*report.Report{rep.FailedRun, rep.Run} {
		if run != nil {
			printReport(s.stdout, run, true)
		}
	}
}

// fleetStatuses are the statuses of api.FleetNode, in the dashboard's order.
var fleetStatuses = []string{"in sync", "behind", "failing", "rolled back", "pending approval", "silent", "revoked"}

// fleetStatus reads --status: a status, written with a dash or a space, or its first word.
func fleetStatus(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	v = strings.ToLower(strings.ReplaceAll(v, "-", " "))
	for _, st := range fleetStatuses {
		if v == st || v == strings.Fields(st)[0] {
			return st, nil
		}
	}
	return "", &usageError{fmt.Errorf("--status %q: want in-sync, behind, failing, rolled-back, pending, silent or revoked", v)}
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
