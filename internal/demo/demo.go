package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/satchelcm/satchel/examples"
	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/server"
)

// Options are what a demo runs with.
type Options struct {
	// Dir holds everything: the office's data, the schools' state and disks, the stick.
	Dir string
	// Schools is how many schools (1 to 50); the last one has no link.
	Schools int
	// Serve keeps the office serving (the dashboard) until ctx is done.
	Serve bool
	// Out receives the story and the summary.
	Out io.Writer
}

// school is one simulated school server.
type school struct {
	name    string
	state   string // the agent's state directory
	root    string // the school server's disk
	facts   string // its facts file
	offline bool
	runs    []*agent.CycleReport // by release, the cycle that applied it
	how     []string             // by release: network or USB stick
}

// demo is a demo under way.
type demo struct {
	opts    Options
	out     io.Writer
	srv     *server.Server
	url     string
	admin   *client.Admin
	cred    server.Credential
	schools []*school
	config  string
}

// Run runs the demo's story, then, with Serve, keeps the office serving until ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.Schools < 1 || opts.Schools > 50 {
		return fmt.Errorf("demo: %d schools: want 1 to 50", opts.Schools)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	opts.Dir = dir
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("demo: %s is not empty: give a new or empty directory (--dir), or remove it", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d := &demo{opts: opts, out: opts.Out}
	start := time.Now()
	d.say("Satchel demo in %s: a central office and %d school server%s on this machine.", dir, opts.Schools, plural(opts.Schools))
	stop, err := d.startOffice(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := d.enroll(ctx); err != nil {
		return err
	}
	if err := d.prepareConfig(); err != nil {
		return err
	}
	d.step("The office publishes release 1: the example school server (web filter, content library, clock, accounts).")
	if err := d.publish(ctx, "the example school server"); err != nil {
		return err
	}
	if err := d.converge(ctx, 1, false); err != nil {
		return err
	}
	d.step("The office publishes release 2: the web filter lets khanacademy.org through, and a new book joins the library.")
	if err := d.changeConfig(); err != nil {
		return err
	}
	if err := d.publish(ctx, "khanacademy.org allowed; a new book"); err != nil {
		return err
	}
	if err := d.converge(ctx, 2, true); err != nil {
		return err
	}
	if err := d.usbRoundTrip(ctx); err != nil {
		return err
	}
	d.summary(time.Since(start))
	if !opts.Serve {
		return nil
	}
	d.say("\nThe office keeps serving until you press Ctrl-C; everything is in %s (remove it after).", dir)
	<-ctx.Done()
	d.say("Stopping the office.")
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) step(format string, args ...any) { d.say("\n"+format, args...) }

// startOffice opens satchel server in DIR/office on 127.0.0.1 and returns how to stop it.
func (d *demo) startOffice(ctx context.Context) (func(), error) {
	data := filepath.Join(d.opts.Dir, "office")
	logFile, err := os.Create(filepath.Join(d.opts.Dir, "office.log"))
	if err != nil {
		return nil, err
	}
	srv, err := server.Open(server.Config{DataDir: data, Hosts: []string{"127.0.0.1", "localhost"},
		Log: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		logFile.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		logFile.Close()
		return nil, err
	}
	if err := srv.RecordAddress(ln.Addr()); err != nil {
		srv.Close()
		logFile.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			d.say("the office's server: %v", err)
		}
		srv.Close()
		logFile.Close()
	}
	d.srv, d.url = srv, "https://"+ln.Addr().String()
	if d.cred, err = server.LoadCredential(filepath.Join(data, server.CredentialFile)); err == nil {
		d.admin, err = client.NewAdmin(d.cred.Server, d.cred.CAFingerprint, d.cred.Token)
	}
	if err != nil {
		stop()
		return nil, err
	}
	d.say("The office's server listens on %s; its CA fingerprint is %s.", d.url, shortFP(srv.CAFingerprint()))
	return stop, nil
}

func shortFP(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

// enroll makes the schools and enrolls each with one bootstrap token, as a warehouse
// does on the day it images them.
func (d *demo) enroll(ctx context.Context) error {
	tok, err := d.admin.CreateToken(ctx, api.TokenRequest{Label: "demo warehouse", Uses: d.opts.Schools, Expires: time.Now().Add(24 * time.Hour)})
	if err != nil {
		return err
	}
	d.step("The warehouse enrolls %d school server%s with one bootstrap token (each makes its own keys).", d.opts.Schools, plural(d.opts.Schools))
	for i := range d.opts.Schools {
		name := fmt.Sprintf("school-%03d", i+1)
		base := filepath.Join(d.opts.Dir, "schools", name)
		s := &school{name: name, state: filepath.Join(base, "state"), root: filepath.Join(base, "disk"),
			facts: filepath.Join(base, "facts.json"), offline: i == d.opts.Schools-1 && d.opts.Schools > 1,
			runs: make([]*agent.CycleReport, 3), how: make([]string, 3)}
		facts, err := schoolFacts(i, name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(s.root, "etc"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(s.facts, facts, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.root, "etc", "machine-id"), []byte(fmt.Sprintf("demo%028d\n", i+1)), 0o644); err != nil {
			return err
		}
		id, err := client.NewIdentity(filepath.Join(s.state, agent.IdentityDirName))
		if err != nil {
			return err
		}
		res, err := id.Enroll(ctx, client.EnrollRequest{Server: d.url, CAFingerprint: d.srv.CAFingerprint(), Name: name,
			Token: tok.ID, MachineID: fmt.Sprintf("demo%028d", i+1), Facts: facts})
		if err != nil {
			return err
		}
		if err := agent.InitServerTrust(s.state, res.Trust); err != nil {
			return err
		}
		d.say("  %s enrolled: key fingerprint %s, certificate issued", name, res.Fingerprint)
		d.schools = append(d.schools, s)
	}
	return nil
}

// schoolFacts are school i's facts: the example's (cycled for more than three), named.
func schoolFacts(i int, name string) ([]byte, error) {
	data, err := fs.ReadFile(examples.SchoolServer, fmt.Sprintf("school-server/facts/school-%03d.json", i%3+1))
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	f["hostname"] = name
	return json.MarshalIndent(f, "", "  ")
}
