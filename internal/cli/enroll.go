package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/facts"
	"github.com/satchelcm/satchel/internal/pki"
)

// exitPending: satchel enroll asked, and the node waits for an operator's approval.
const exitPending = 3

type enrollFlags struct {
	server, caFingerprint, token, name string
	state, root, config, factsFile     string
	machineID                          string
	newIdentity                        bool
	wait, poll                         time.Duration
}

func newEnroll(s *streams) *cobra.Command {
	f := &enrollFlags{}
	cmd := &cobra.Command{
		Use:   "enroll --server URL --ca-fingerprint FP [--token TOKEN]",
		Short: "Exchange keys with satchel server: this node's certificate, and the server's trust",
		Long: `Enroll this node with a satchel server. On first use it makes the node's keys (a TLS key
and an age X25519 identity, in the state directory's identity/, mode 0600) and prints the
short fingerprint of the TLS key.

The server is trusted by the fingerprint of its CA, which 'satchel server' printed: give
it whole (64 hex digits). With a bootstrap token (satchel tokens create) the node is
approved at once; without one it waits until an operator, having compared the fingerprint
printed here with the one 'satchel nodes pending' shows, runs 'satchel nodes approve NAME'.
Once approved, the node holds its certificate and trusts the server's release repository;
'satchel agent' then pulls releases from the server and uploads its reports, with no
--repo or --trust.

A machine cloned from an image that held an identity is refused; --new-identity makes
new keys (regenerate /etc/machine-id too).

The token may be given in SATCHEL_ENROLL_TOKEN instead of --token, which other users can
see in the process list.

Exit codes: 0 enrolled; 3 waiting for approval (the agent keeps asking at each cycle, or
use --wait); 1 refused or failed; 64 usage error.`,
		Args: wantArgs(0, "flags only"),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(s) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "the server's `URL` (https://host:port)")
	fl.StringVar(&f.caFingerprint, "ca-fingerprint", "", "the fingerprint of the server's CA, as satchel server printed it (64 hex `digits`)")
	fl.StringVar(&f.token, "token", "", "a bootstrap `token`: approved at once (default $SATCHEL_ENROLL_TOKEN)")
	fl.StringVar(&f.name, "name", "", "the node's `name` (default: the hostname fact)")
	fl.StringVar(&f.state, "state", "", "the agent's state `DIR` (default: the agent's)")
	fl.StringVar(&f.root, "root", "", "enroll for the tree under this `directory` (an image, a sandbox): its machine ID, and the agent state satchel agent --root uses")
	fl.StringVar(&f.config, "config", "", "the agent's settings `file`, for its state_dir (default "+agent.DefaultConfigPath+" if it exists)")
	fl.StringVar(&f.factsFile, "facts", "", "send the facts in this JSON `file` instead of gathering this machine's")
	fl.StringVar(&f.machineID, "machine-id", "", "the machine `ID` to present (default: ROOT/etc/machine-id)")
	fl.BoolVar(&f.newIdentity, "new-identity", false, "make new keys, replacing this node's identity (a clone of an image)")
	fl.DurationVar(&f.wait, "wait", 0, "wait up to this long for an operator's approval (0: ask once)")
	fl.DurationVar(&f.poll, "poll", 10*time.Second, "with --wait, ask this often")
	return cmd
}

func (f *enrollFlags) run(s *streams) error {
	if f.server == "" || f.caFingerprint == "" {
		return &usageError{errors.New("--server and --ca-fingerprint are required: satchel server prints both")}
	}
	if f.token == "" {
		f.token = os.Getenv("SATCHEL_ENROLL_TOKEN")
	}
	rootDir := "/"
	if f.root != "" {
		abs, err := filepath.Abs(f.root)
		if err != nil {
			return fail("--root %s: %v", f.root, err)
		}
		rootDir = abs
	}
	state, err := f.stateDir(rootDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fail("state directory: %v", err)
	}
	factsMap, err := f.facts()
	if err != nil {
		return err
	}
	name := f.name
	if name == "" {
		host, _ := factsMap["hostname"].(string)
		name = strings.ToLower(host)
	}
	if err := pki.CheckNodeName(name); err != nil {
		return &usageError{fmt.Errorf("%w (give one with --name)", err)}
	}
	factsJSON, err := json.Marshal(factsMap)
	if err != nil {
		return fail("facts: %v", err)
	}
	machineID := f.machineID
	if machineID == "" {
		if data, err := os.ReadFile(filepath.Join(rootDir, "etc", "machine-id")); err == nil {
			machineID = strings.TrimSpace(string(data))
		}
	}

	idDir := filepath.Join(state, agent.IdentityDirName)
	var id *client.Identity
	if f.newIdentity {
		id, err = client.NewIdentity(idDir)
	} else {
		var created bool
		id, created, err = client.LoadOrNewIdentity(idDir)
		if err == nil && !created && id.Enrolled() && id.Server().Name != name {
			return fail("this node is enrolled as %s with %s; to enroll it as %s, give --new-identity", id.Server().Name, id.Server().Server, name)
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(s.stdout, "node %s, key fingerprint %s\n", name, id.ShortFingerprint())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	req := client.EnrollRequest{Server: f.server, CAFingerprint: f.caFingerprint, Name: name, Token: f.token, MachineID: machineID, Facts: factsJSON}
	deadline := time.Now().Add(f.wait)
	for {
		res, err := id.Enroll(ctx, req)
		if err != nil {
			return fail("%v", explainEnroll(err))
		}
		if res.Approved {
			if err := agent.InitServerTrust(state, res.Trust); err != nil {
				return fail("%v", err)
			}
			fmt.Fprintf(s.stdout, "enrolled with %s: certificate valid until %s\n", f.server, id.Certificate().NotAfter.Format("2006-01-02"))
			fmt.Fprintln(s.stdout, "now run the agent (satchel agent, or the satchel-agent service): it pulls releases from the server")
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(s.stdout, "waiting for an operator's approval: on the server, check that node %s has the fingerprint %s, then run\n  satchel nodes approve %s\n", name, res.Fingerprint, name)
			fmt.Fprintln(s.stdout, "the agent asks again at each cycle; or run satchel enroll again with --wait DURATION")
			return exitCode(exitPending)
		}
		select {
		case <-ctx.Done():
			return fail("interrupted while waiting for approval")
		case <-time.After(min(f.poll, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// stateDir is the agent's state directory, found as satchel agent finds it.
func (f *enrollFlags) stateDir(rootDir string) (string, error) {
	if f.state != "" {
		return f.state, nil
	}
	path := f.config
	if path == "" {
		path = agent.DefaultConfigPath
	}
	cfg, err := agent.LoadConfig(path)
	switch {
	case err == nil:
		return cfg.StateDir, nil
	case f.config == "" && errors.Is(err, fs.ErrNotExist):
		return stateDir("", rootDir), nil
	default:
		return "", fail("%v", err)
	}
}

func (f *enrollFlags) facts() (map[string]any, error) {
	if f.factsFile != "" {
		m, err := facts.ReadFile(f.factsFile)
		if err != nil {
			return nil, fail("%v", err)
		}
		return m, nil
	}
	m, _, err := facts.Gather(facts.Options{Version: version()})
	if err != nil {
		return nil, fail("gather facts: %v", err)
	}
	return m, nil
}

// explainEnroll adds what to do to a refusal.
func explainEnroll(err error) error {
	switch client.Code(err) {
	case api.CodeTokenInvalid:
		return fmt.Errorf("%w: ask the office for a valid token, or enroll without one and have an operator approve the node", err)
	}
	return err
}
