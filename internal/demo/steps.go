package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/satchelcm/satchel/examples"
	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/dirtar"
	"github.com/satchelcm/satchel/internal/server"
)

// prepareConfig copies the example into DIR/config: the schools of the demo are
// directories, not Debian machines, so its system side (packages, services, accounts)
// is left out (manage_system = false), and its inventory names every school.
func (d *demo) prepareConfig() error {
	d.config = filepath.Join(d.opts.Dir, "config")
	sub, err := fs.Sub(examples.SchoolServer, "school-server")
	if err != nil {
		return err
	}
	if err := os.CopyFS(d.config, sub); err != nil {
		return fmt.Errorf("copy the example: %w", err)
	}
	if err := d.edit("site.hcl", "default     = true\n  description = \"Install packages", "default     = false\n  description = \"Install packages"); err != nil {
		return err
	}
	return d.extendInventory()
}

// edit replaces old with new in a file of the config, once.
func (d *demo) edit(name, old, new string) error {
	p := filepath.Join(d.config, name)
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(old)) {
		return fmt.Errorf("demo: %s no longer holds %q: the example changed", name, old)
	}
	return os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644)
}

// extendInventory adds rows for the schools past the example's three.
func (d *demo) extendInventory() error {
	p := filepath.Join(d.config, "inventory.csv")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return err
	}
	base := rows[1:]
	for i := len(base); i < d.opts.Schools; i++ {
		row := append([]string(nil), base[i%len(base)]...)
		row[0], row[1], row[3] = fmt.Sprintf("school-%03d", i+1), fmt.Sprintf("School %d", i+1), fmt.Sprintf("10.12.%d.0/24", i+1)
		rows = append(rows, row)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return os.WriteFile(p, buf.Bytes(), 0o644)
}

// changeConfig makes release 2: a site more through the web filter, and a book in the
// content library.
func (d *demo) changeConfig() error {
	if err := d.edit("site.hcl", `"kolibri.example.org"]`, `"kolibri.example.org", "khanacademy.org"]`); err != nil {
		return err
	}
	book := "The water cycle\n\nWater evaporates from the sea, forms clouds, falls as rain and flows back to the sea.\n"
	if err := os.WriteFile(filepath.Join(d.config, "files", "content", "water-cycle.txt"), []byte(book), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.config, "library.hcl"), []byte(`# Release 2: a new book in every school's library.
node "school-*" {
  file "book_water_cycle" {
    path   = "/srv/content/water-cycle.txt"
    source = "content/water-cycle.txt"
  }
}
`), 0o644)
}

// publish sends the config to the office, which previews it on every school and
// publishes it.
func (d *demo) publish(ctx context.Context, notes string) error {
	var tarball bytes.Buffer
	if err := dirtar.Pack(&tarball, d.config); err != nil {
		return err
	}
	res, refused, err := d.admin.Release(ctx, api.ReleaseRequest{Config: tarball.Bytes(), Notes: notes})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if refused {
		return fmt.Errorf("publish: %s", res.Message)
	}
	changed := 0
	for _, n := range res.Preview.Nodes {
		changed += len(n.Changes)
	}
	d.say("  previewed on every school first (%d resource changes in all), then signed and published as release %d", changed, res.Version)
	return nil
}

// agentOptions are a school's agent's: no repository nor trust given (its server gave
// both), its disk as the root it converges.
func (s *school) agentOptions(log io.Writer) agent.Options {
	cfg := agent.DefaultConfig()
	cfg.StateDir = s.state
	cfg.BundlePaths = nil
	return agent.Options{Config: cfg, Root: s.root, FactsFile: s.facts, Log: log, PullAttempts: 2, LockWait: time.Minute}
}

// openAgent opens a school's agent, its log in its directory.
func (s *school) openAgent() (*agent.Agent, func(), error) {
	log, err := os.OpenFile(filepath.Join(filepath.Dir(s.state), "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	a, err := agent.Open(s.agentOptions(log))
	if err != nil {
		log.Close()
		return nil, nil, err
	}
	return a, func() { a.Close(); log.Close() }, nil
}

// converge runs one agent cycle at every connected school (all of them, unless
// skipOffline), as their agents do every half hour, until each runs release version.
func (d *demo) converge(ctx context.Context, version uint64, skipOffline bool) error {
	d.say("  the schools' agents pull it on their next cycle (the demo runs them now):")
	for _, s := range d.schools {
		if s.offline && skipOffline {
			d.say("  %s has no link: it waits for a USB stick", s.name)
			continue
		}
		a, closeAgent, err := s.openAgent()
		if err != nil {
			return err
		}
		rep, err := a.Cycle(ctx)
		closeAgent()
		if err != nil {
			return err
		}
		if rep.Release != version || (rep.Outcome != agent.Applied && rep.Outcome != agent.Reapplied) {
			return fmt.Errorf("demo: %s: %s, release %d (%s): see %s", s.name, rep.Outcome, rep.Release, rep.Error, filepath.Join(filepath.Dir(s.state), "agent.log"))
		}
		s.runs[version], s.how[version] = rep, "network"
		d.say("  %s: release %d applied over the network, %s", s.name, version, describeRun(rep, false))
	}
	return nil
}

// describeRun says what a cycle changed and how many bytes of the release it took, over the
// network or from a stick.
func describeRun(rep *agent.CycleReport, fromStick bool) string {
	if rep.Run == nil {
		return "nothing to do"
	}
	took := fmt.Sprintf("downloaded %d bytes", rep.Transfer.Bytes)
	if fromStick {
		took = fmt.Sprintf("read %d bytes from the stick", rep.Transfer.Bytes)
	}
	return fmt.Sprintf("%d resources changed, %d already right, %s", rep.Run.Summary.Changed, rep.Run.Summary.Unchanged, took)
}

// usbRoundTrip brings release 2 to the offline school on a stick and its reports back.
func (d *demo) usbRoundTrip(ctx context.Context) error {
	var s *school
	for _, sc := range d.schools {
		if sc.offline {
			s = sc
		}
	}
	if s == nil {
		return nil
	}
	stick := filepath.Join(d.opts.Dir, "usb-stick")
	d.step("A technician carries release 2 to %s on a USB stick (%s).", s.name, stick)
	plan, err := d.admin.Bundle(ctx, api.BundleRequest{Nodes: []string{s.name}})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ix, _, err := bundle.OpenIndex(plan.Index, d.admin.CAFingerprint())
	if err != nil {
		return err
	}
	if err := bundle.Write(ctx, stick, ix, plan.Index, bundle.SourceFunc(d.admin.RepoFile), bundle.WriteOptions{}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	d.say("  at the office: satchel bundle export wrote %d bytes, only what %s lacks (deltas from what it last reported)", ix.Size(), s.name)
	a, closeAgent, err := s.openAgent()
	if err != nil {
		return err
	}
	res, err := a.ImportBundle(ctx, stick, agent.ImportOptions{})
	closeAgent()
	if err != nil {
		return fmt.Errorf("import at %s: %w", s.name, err)
	}
	if res.Report == nil || res.Report.Release != 2 {
		return fmt.Errorf("demo: %s did not apply release 2 from the stick", s.name)
	}
	s.runs[2], s.how[2] = res.Report, "USB stick"
	d.say("  at the school: the agent checked the stick, applied release 2 (%s) and wrote its reports onto the stick", describeRun(res.Report, true))
	n, err := d.collect(ctx, stick)
	if err != nil {
		return err
	}
	d.say("  back at the office: satchel bundle collect handed %d report%s of %s to the server", n, plural(n), s.name)
	return nil
}

// collect hands the stick's returns to the office, as satchel bundle collect does.
func (d *demo) collect(ctx context.Context, stick string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(stick, bundle.ReturnsDir))
	if err != nil {
		return 0, err
	}
	stored := 0
	for _, e := range entries {
		signed, reports, err := bundle.ReadReturns(stick, e.Name(), api.MaxReportBytes, api.MaxReturnsBytes*3/4)
		if err != nil {
			return 0, err
		}
		receipt, err := d.admin.Returns(ctx, api.ReturnsUpload{Returns: signed, Reports: reports})
		if err != nil {
			return 0, fmt.Errorf("collect %s: %w", e.Name(), err)
		}
		stored += receipt.Stored
	}
	return stored, nil
}

// summary prints every school's two releases, and how to look further.
func (d *demo) summary(took time.Duration) {
	d.step("Summary (%.1f s):", took.Seconds())
	tw := tabwriter.NewWriter(d.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHOOL\tRELEASE 1\tRELEASE 2\tRELEASE 2 CAME BY\tCHANGED")
	converged := 0
	for _, s := range d.schools {
		cell := func(v int) string {
			if rep := s.runs[v]; rep != nil {
				return string(rep.Outcome)
			}
			return "missing"
		}
		changed := 0
		if rep := s.runs[2]; rep != nil && rep.Run != nil {
			changed = rep.Run.Summary.Changed
		}
		if s.runs[1] != nil && s.runs[2] != nil {
			converged++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.name, cell(1), cell(2), s.how[2], changed)
	}
	_ = tw.Flush()
	d.say("%d of %d schools converged on both releases.", converged, len(d.schools))
	d.say("\nLook further:")
	d.say("  dashboard:   %s/ui/  (log in with the token %s; the certificate is the demo CA's, so the browser warns)", d.url, d.cred.Token)
	d.say("  the fleet:   satchel nodes list --credential %s", filepath.Join(d.opts.Dir, "office", server.CredentialFile))
	d.say("  a school:    find %s -type f | sort", d.schools[0].root)
}
