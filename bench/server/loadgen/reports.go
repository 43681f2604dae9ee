package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http/httptrace"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satchelcm/satchel/internal/agent"
	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// resourceKinds is the mix of resource types in a report, by weight, with the stem of
// their names, the role file they come from and the change each makes when it changes.
var resourceKinds = []struct {
	typ, stem, role string
	weight          int
	changes         []*report.Change // nil: a file, whose content changes, with a diff
}{
	{"file", "conf", "base", 55, nil},
	{"directory", "dir", "base", 15, []*report.Change{{Attribute: "ensure", From: "absent", To: "present"}, {Attribute: "mode", From: "0755", To: "0750"}}},
	{"package", "pkg", "packages", 12, []*report.Change{{Attribute: "ensure", From: "absent", To: "2.4.1-1+deb12u2"}}},
	{"service", "svc", "services", 6, []*report.Change{{Attribute: "running", From: "false", To: "true"}, {Attribute: "enabled", From: "false", To: "true"}}},
	{"user", "account", "accounts", 6, []*report.Change{{Attribute: "ensure", From: "absent", To: "present"}, {Attribute: "groups", From: "[]", To: "[\"pupils\"]"}}},
	{"exec", "refresh", "web_filter", 4, []*report.Change{{Attribute: "ran", From: "", To: "exit 0"}}},
	{"symlink", "link", "base", 2, []*report.Change{{Attribute: "target", From: "", To: "/etc/school/current"}}},
}

// buildReport is the spooled body of a cycle that applied release 1 to n resources, of
// which pct percent changed (spread evenly; a changed file comes with its diff): an
// agent.CycleReport around a report.Report, encoded as the agent spools it (compact JSON,
// unchanged resources counted in the summary but not listed).
func buildReport(node, repo string, n, pct int) ([]byte, error) {
	started := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	run := report.New(node, false, started)
	total := 0
	for _, k := range resourceKinds {
		total += k.weight
	}
	changed := 0
	for i := range n {
		k := resourceKinds[0]
		for w, j := i%total, 0; j < len(resourceKinds); j++ {
			if w < resourceKinds[j].weight {
				k = resourceKinds[j]
				break
			}
			w -= resourceKinds[j].weight
		}
		res := &report.Resource{
			Address:    fmt.Sprintf("%s.%s_%04d", k.typ, k.stem, i),
			Type:       k.typ,
			Status:     report.Unchanged,
			DurationMS: float64(20+(i*7919)%900) / 1000,
			Origin:     fmt.Sprintf("roles/%s.hcl:%d:3", k.role, 10+(i*31)%400),
		}
		if (i+1)*pct/100 > changed { // the i-th resource brings the changed ones to pct percent
			changed++
			res.Status = report.Changed
			res.DurationMS *= 20
			if k.changes == nil {
				path := fmt.Sprintf("/etc/school/%s_%04d.conf", k.stem, i)
				old := []byte(fmt.Sprintf("# managed by satchel\nproxy_host = squid.school.example\nproxy_port = 3128\nbanner = \"Welcome to school %d\"\n", i))
				cur := bytes.Replace(old, []byte("3128"), []byte("8080"), 1)
				res.Changes = []*report.Change{{Attribute: "content", From: textdiff.ShortHash(cur), To: textdiff.ShortHash(old)}}
				res.Diff = textdiff.Unified(path, cur, old)
			} else {
				res.Changes = k.changes
				res.Refreshed = k.typ == "service"
			}
		}
		run.Add(res)
	}
	run.Finish(started.Add(time.Duration(n) * 900 * time.Microsecond))
	// The agent's marshalReport: the unchanged resources are counted, not listed.
	listed := &report.Report{}
	*listed = *run
	listed.Resources = []*report.Resource{}
	for _, res := range run.Resources {
		if res.Status != report.Unchanged {
			listed.Resources = append(listed.Resources, res)
		}
	}
	outcome := agent.Reapplied
	if pct == 100 {
		outcome = agent.Applied
	}
	cr := &agent.CycleReport{
		Format: agent.ReportFormat, Node: node, Started: started, DurationMS: run.DurationMS + 35.5,
		Outcome: outcome, Release: 1, Available: 1, Repository: repo,
		Transfer: agent.TransferStats{Requests: 1},
		Run:      listed,
	}
	data, err := json.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("encode the report: %w", err)
	}
	return append(data, '\n'), nil
}

// sentReport is an upload of the report phases.
type sentReport struct {
	shape int  // index in reportPhases.shapes
	ok    bool // answered stored=true (else the upload failed: it may or may not be stored)
}

// reportShape is one report phase's report.
type reportShape struct {
	pct  int
	up   api.ReportUpload // its ID aside
	body []byte           // as the server stores and returns it
	row  int              // its row in the table
	// stored counts the uploads answered stored=true, the warm-up's included.
	stored int
}

// reportPhases is what the report phases sent, for verify.
type reportPhases struct {
	shapes []*reportShape
	mu     sync.Mutex
	sent   map[int]map[string]sentReport // by agent, by report ID
	seq    atomic.Int64                  // uploads so far, every phase: each has a new ID
	base   time.Time
}

// reports runs a report phase: reports with pct percent of their resources changed.
func (f *fleet) reports(ctx context.Context, pct int) (row, error) {
	n := len(f.agents)
	if f.sent == nil {
		f.sent = &reportPhases{sent: map[int]map[string]sentReport{}, base: time.Now()}
	}
	p := f.sent
	body, err := buildReport(f.agents[0].name, f.agents[0].node.RepoURL(), f.o.reportResources, pct)
	if err != nil {
		return row{}, err
	}
	up := api.ReportUpload{Outcome: string(agent.Reapplied), Release: 1, Body: body}
	if pct == 100 {
		up.Outcome = string(agent.Applied)
	}
	up.ID = reportID(p.base, 0)
	wire := body // the upload's body is the report as the spool holds it
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(wire) // a bytes.Buffer does not fail
	if err := zw.Close(); err != nil {
		return row{}, err
	}
	stored, err := json.Marshal(json.RawMessage(body))
	if err != nil {
		return row{}, fmt.Errorf("encode the report: %w", err)
	}
	shape := len(p.shapes)
	p.shapes = append(p.shapes, &reportShape{pct: pct, up: up, body: stored})
	until := "for " + f.o.reportDuration.String()
	if f.o.reportCount > 0 {
		until = fmt.Sprintf("%d uploads", f.o.reportCount)
		if f.o.reportDuration > 0 {
			until += " or " + f.o.reportDuration.String()
		}
	}
	conn := "closed after each upload"
	if f.o.reportKeep {
		conn = "kept for the agent's next upload"
	}
	fmt.Printf("\n== reports, %d%% changed: %d agents, %d uploads in flight, %s, connections %s; %d resources a report, %d listed: %d bytes of JSON uploaded, %d gzipped (client.Node.PutReport gzips)\n",
		pct, n, f.o.reportConcurrency, until, conn, f.o.reportResources, f.o.reportResources*pct/100, len(wire), gz.Len())
	if err := f.quiesce(ctx); err != nil {
		return row{}, err
	}
	if f.o.reportWarmup > 0 {
		start := time.Now()
		w := f.upload(ctx, shape, up, start.Add(f.o.reportWarmup), 0)
		ok, _, _, _ := w.lat.summary()
		fmt.Printf("  warm-up (not measured, verified): %d reports stored in %.1f s\n", ok, time.Since(start).Seconds())
		w.lat.printErrors()
	}
	m := startMeter(f.o.serverPID)
	var deadline time.Time
	if f.o.reportDuration > 0 {
		deadline = m.start.Add(f.o.reportDuration)
	}
	st := f.upload(ctx, shape, up, deadline, f.o.reportCount)
	u := m.stop()
	f.closeIdle()
	if err := ctx.Err(); err != nil {
		return row{}, fmt.Errorf("reports: %w", err)
	}
	lat := st.lat
	ok, p50, p99, maxD := lat.summary()
	rate := float64(ok) / u.wall.Seconds()
	fmt.Printf("  %d reports stored: %.1f/s (%.2f MB/s of JSON, %.2f MB/s gzipped); %d errors; latency p50 %s ms, p99 %s ms, max %s ms\n",
		ok, rate, rate*float64(len(wire))/1e6, rate*float64(gz.Len())/1e6, lat.nerr, ms(p50), ms(p99), ms(maxD))
	fmt.Printf("  connections: %d new (TLS sessions resumed: %d), %d requests on a kept-alive one\n", st.conns.Load(), st.resumed.Load(), st.reused.Load())
	fmt.Printf("  %s\n", u)
	lat.printErrors()
	r := row{agents: n, phase: fmt.Sprintf("reports, %d%% changed (%.1f KiB, %.1f KiB gzipped)", pct, float64(len(wire))/1024, float64(gz.Len())/1024),
		n: ok, rate: rate, p50: p50, p99: p99, max: maxD, errors: lat.nerr, use: u}
	r.targets = append(r.targets, verdict(rate >= 100, "%d agents, %.1f reports/s of %d resources, %d%% changed, stored (want at least 100/s)", n, rate, f.o.reportResources, pct))
	return r, nil
}

// uploadStats are the counters of a run of uploads.
type uploadStats struct {
	lat           *latencies
	reused, conns atomic.Int64 // requests on a kept-alive connection, and on a new one
	resumed       atomic.Int64 // new connections that resumed a TLS session
}

// upload has --report-concurrency workers upload up (with new IDs) until the deadline
// (if not zero) or count uploads (if not 0), and records what was sent.
func (f *fleet) upload(ctx context.Context, shape int, up api.ReportUpload, deadline time.Time, count int) *uploadStats {
	p := f.sent
	n := len(f.agents)
	st := &uploadStats{lat: newLatencies(1 << 16)}
	trace := &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) {
			if ci.Reused {
				st.reused.Add(1)
			} else {
				st.conns.Add(1)
			}
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			if err == nil && cs.DidResume {
				st.resumed.Add(1)
			}
		},
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range f.o.reportConcurrency {
		wg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				if c := sent.Add(1); count > 0 && c > int64(count) {
					return
				}
				k := p.seq.Add(1)
				ai := int(k % int64(n))
				u := up
				u.ID = reportID(p.base, k)
				rctx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), f.o.timeout)
				start := time.Now()
				stored, err := f.agents[ai].node.PutReport(rctx, u)
				d := time.Since(start)
				cancel()
				if !f.o.reportKeep {
					f.agents[ai].node.HTTPClient().CloseIdleConnections()
				}
				p.mu.Lock()
				if p.sent[ai] == nil {
					p.sent[ai] = map[string]sentReport{}
				}
				p.sent[ai][u.ID] = sentReport{shape: shape, ok: err == nil && stored}
				if err == nil && stored {
					p.shapes[shape].stored++
				}
				p.mu.Unlock()
				switch {
				case err != nil:
					st.lat.fail(err.Error())
				case !stored:
					st.lat.fail("a new report ID answered stored=false")
				default:
					st.lat.ok(d)
				}
			}
		})
	}
	wg.Wait()
	return st
}

// reportID is a spool entry name, as the agent uploads it: the time, the kind, and 8 hex
// digits (here the upload's number, so that every ID is new).
func reportID(base time.Time, k int64) string {
	return fmt.Sprintf("%s-report-%08x.json", base.Add(time.Duration(k)*time.Microsecond).UTC().Format("20060102T150405.000000000Z"), k)
}

// verify checks, after the report phases, that every report stored is in the store,
// whole, once, and nothing else is; then uploads some again, which must not be stored
// twice. Its verdicts go to the phases' rows.
func (f *fleet) verify(ctx context.Context, rows []row) error {
	p := f.sent
	if p == nil {
		return nil
	}
	fmt.Printf("\n== verify: the reports read back through the admin API\n")
	start := time.Now()
	type counts struct{ found, missing, differ, fromFailed, resent, restored, twice int64 }
	per := make([]counts, len(p.shapes))
	var extra atomic.Int64
	var mu sync.Mutex
	agents := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range 4 {
		wg.Go(func() {
			for ai := range agents {
				sent := p.sent[ai]
				reps, err := f.admin.Reports(ctx, f.agents[ai].name, len(sent)+1)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("verify: reports of %s: %w", f.agents[ai].name, err) })
					continue
				}
				seen := map[string]bool{}
				mu.Lock()
				for _, rep := range reps {
					s, ok := sent[rep.ID]
					if !ok || seen[rep.ID] {
						extra.Add(1)
						continue
					}
					seen[rep.ID] = true
					c := &per[s.shape]
					if s.ok {
						c.found++
					} else {
						c.fromFailed++
					}
					if !sameJSON(rep.Body, p.shapes[s.shape].body) {
						c.differ++
					}
				}
				for id, s := range sent {
					if s.ok && !seen[id] {
						per[s.shape].missing++
					}
				}
				mu.Unlock()
			}
		})
	}
	for ai := range f.agents {
		if len(p.sent[ai]) > 0 {
			agents <- ai
		}
	}
	close(agents)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("  read back in %.1f s; reports no upload sent, or there twice: %d\n", time.Since(start).Seconds(), extra.Load())

	// Uploads again, a few of each phase: a retry whose answer was lost must store nothing.
	type pick struct {
		ai int
		id string
	}
	for shape := range p.shapes {
		var all []pick
		for ai := range f.agents {
			for id, s := range p.sent[ai] {
				if s.ok && s.shape == shape {
					all = append(all, pick{ai, id})
				}
			}
		}
		slices.SortFunc(all, func(a, b pick) int { return strings.Compare(a.id, b.id) })
		step := max(1, len(all)/max(1, f.o.resend))
		c := &per[shape]
		for i := 0; i < len(all) && c.resent < int64(f.o.resend); i += step {
			s := all[i]
			u := p.shapes[shape].up
			u.ID = s.id
			stored, err := f.agents[s.ai].node.PutReport(ctx, u)
			if err != nil {
				return fmt.Errorf("verify: upload again: %w", err)
			}
			c.resent++
			if stored {
				c.restored++
			}
			reps, err := f.admin.Reports(ctx, f.agents[s.ai].name, len(p.sent[s.ai])+1)
			if err != nil {
				return fmt.Errorf("verify: reports of %s: %w", f.agents[s.ai].name, err)
			}
			n := 0
			for _, rep := range reps {
				if rep.ID == s.id {
					n++
				}
			}
			if n != 1 {
				c.twice++
			}
		}
	}
	f.closeIdle()
	for shape, sh := range p.shapes {
		c := per[shape]
		r := &rows[sh.row]
		fmt.Printf("  %d%% changed: %d of the %d answered stored=true (the warm-up's included) read back (missing %d, body differs %d; %d more stored by uploads that failed); uploaded again %d: stored again %d, not there exactly once after %d\n",
			sh.pct, c.found, sh.stored, c.missing, c.differ, c.fromFailed, c.resent, c.restored, c.twice)
		pass := c.found == int64(sh.stored) && c.missing == 0 && c.differ == 0 && extra.Load() == 0 && c.restored == 0 && c.twice == 0
		r.targets = append(r.targets, verdict(pass,
			"%d agents, %d%% changed, no report lost: %d of %d stored reports read back whole (missing %d, differing %d, unexpected %d in all phases); %d uploaded again, stored twice %d",
			len(f.agents), sh.pct, c.found, sh.stored, c.missing, c.differ, extra.Load(), c.resent, c.restored+c.twice))
	}
	return nil
}

// sameJSON reports whether two JSON texts are the same bytes, or failing that the same
// values.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
