// Command loadgen is the load generator of bench/server: many simulated agents, in this
// one process, against a running satchel server over real mutual TLS on loopback. It
// measures what the fleet costs the server: enrollment, check-ins when nothing is new, and
// run-report uploads.
//
// usage: loadgen --credential DATA/admin.json --agents N [--server-pid PID] [flags]
//
// The phases, in order:
//
//   - enroll: a bootstrap token for N uses is made through the admin API, then N agents
//     are enrolled with it (client.NewIdentity, Identity.Enroll), --enroll-concurrency at a
//     time, each with its own key, machine ID and this machine's facts under its own host
//     name, as `satchel enroll` sends them. Identities go under --work (tmpfs is best: the
//     load generator's own durable writes are not what is measured).
//   - checkin-MODE, for each of --modes: what an agent does each cycle when no release is
//     new, a conditional GET of the repository's metadata/timestamp.json with
//     If-Modified-Since, which the server answers 304 after looking the node up. Requests
//     arrive on an open-loop schedule at --rate per second for --duration (the first mode)
//     or --other-duration (the others), rotating through the N agents' certificates; one
//     that cannot be sent because --max-inflight are waiting counts as an error. Latency
//     runs from the request's scheduled time, so a late load generator or a backlog at the
//     server shows in it (no coordinated omission).
//   - reports, for each of --report-changed: --report-concurrency workers upload run
//     reports of --report-resources resources of which that percentage changed, with
//     client.Node.PutReport (gzipped, as it sends them), rotating through the agents, for
//     --report-duration (or --report-count uploads). With --report-conn close (the
//     default) the agent's connection is closed after its upload, as the agent closes it
//     at the end of its cycle, and its next upload resumes the TLS session; with keep it
//     stays open for the agent's next turn (with thousands of agents, the server then holds
//     a connection per agent that uploaded in its last IdleTimeout).
//     The report is an agent.CycleReport around a report.Report, encoded as the agent
//     spools it (compact, unchanged resources counted but not listed), built once; each
//     upload has a new spool-style ID. Closed loop: the rate is what the server sustains.
//   - verify (not timed): every report the server said it stored is read back through the
//     admin API (client.Admin.Reports per node) and compared with what was sent; no other
//     report may be there; then --resend reports of each phase are uploaded again and
//     must be answered stored=false, and be stored once still.
//
// The check-in modes:
//
//	full       a new TLS connection per check-in with a full handshake (the agent's key
//	           signs, the server verifies its certificate): no session cache, no keep-alive.
//	           The target is for this mode.
//	resumed    a new TLS connection per check-in, resuming the agent's TLS session (a cache
//	           per agent, as the agent's own client has)
//	keepalive  the agent's own HTTP client (client.Node.HTTPClient), its connection left
//	           open after each check-in: reused while neither the client (90 s) nor the
//	           server (its IdleTimeout) has closed it, resumed after. The agent itself
//	           closes its connection at the end of each cycle (since 09d1a83); this mode
//	           is what the server pays for the connections clients leave open
//
// Before each phase loadgen waits for the server to close the connections the previous
// ones left (fleet.quiesce), then warms up, unmeasured: full for --warmup at the rate;
// resumed and keepalive with one check-in per agent, so that the phase measures resumed
// sessions and kept connections rather than the first rotation; reports for
// --report-warmup (those reports are verified too). A warm-up also lets the server's Go
// runtime collect and give back what the previous phase left, which would otherwise count
// in this phase's peak RSS; the table shows the RSS at the phase's start beside its peak.
//
// With --server-pid, each phase also records the server's CPU time (utime+stime of
// /proc/PID/stat), its peak RSS during the phase (VmHWM of /proc/PID/status, reset at the
// phase's start by writing 5 to /proc/PID/clear_refs) and its open files at the end. The
// load generator's own CPU time comes from getrusage. Both share the machine: the CPU
// columns say how much of its cores each used.
//
// The output is a log of the phases and a Markdown table, one row per phase, also
// appended to --rows (with a header if the file is empty), and lines "target: PASS" or
// "target: FAIL" for the figures the issue sets: 170 check-ins/s sustained on new TLS
// connections with p99 under 200 ms and the server under 300 MiB; 100 reports/s of 1,000
// resources without loss. loadgen exits 1 if it could not run, not when a target is missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	credential        string
	agents            int
	work              string
	enrollConcurrency int
	modes             []string
	rate              float64
	duration          time.Duration
	otherDuration     time.Duration
	warmup            time.Duration
	reportWarmup      time.Duration
	maxInflight       int
	timeout           time.Duration
	reportConcurrency int
	reportDuration    time.Duration
	reportCount       int
	reportResources   int
	reportChanged     []int
	reportKeep        bool
	resend            int
	serverPID         int
	rows              string
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.credential, "credential", "", "the server's admin credential `file` (DATA/admin.json)")
	flag.IntVar(&o.agents, "agents", 1000, "simulated `agents`")
	flag.StringVar(&o.work, "work", "", "`directory` for the agents' identities (default: a new one under $TMPDIR, removed at the end)")
	flag.IntVar(&o.enrollConcurrency, "enroll-concurrency", 8, "enrollments in flight")
	flag.StringVar(&modes, "modes", "full,resumed,keepalive", "check-in `modes`, in order: full, resumed, keepalive (\"\": no check-ins)")
	flag.Float64Var(&o.rate, "rate", 170, "check-ins per `second` (open loop)")
	flag.DurationVar(&o.duration, "duration", 5*time.Minute, "length of the first check-in mode")
	flag.DurationVar(&o.otherDuration, "other-duration", 2*time.Minute, "length of the other check-in modes")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "unmeasured check-ins at the rate before mode full")
	flag.DurationVar(&o.reportWarmup, "report-warmup", 10*time.Second, "unmeasured uploads before each report phase")
	flag.IntVar(&o.maxInflight, "max-inflight", 10000, "check-ins waiting at once before new ones are counted as errors")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of one request")
	flag.IntVar(&o.reportConcurrency, "report-concurrency", 16, "report uploads in flight (0: no report phase)")
	flag.DurationVar(&o.reportDuration, "report-duration", time.Minute, "length of the report phase")
	flag.IntVar(&o.reportCount, "report-count", 0, "stop the report phase after this many uploads (0: --report-duration only)")
	flag.IntVar(&o.reportResources, "report-resources", 1000, "resources in each report")
	var changed, reportConn string
	flag.StringVar(&reportConn, "report-conn", "close", "after an agent's upload, close its connection (close) or keep it for its next turn (keep)")
	flag.StringVar(&changed, "report-changed", "1,100", "one report phase for each `percent` of the resources changed")
	flag.IntVar(&o.resend, "resend", 100, "stored reports uploaded again, which must not be stored twice")
	flag.IntVar(&o.serverPID, "server-pid", 0, "the server's `pid`, for its CPU time and peak RSS (0: not measured)")
	flag.StringVar(&o.rows, "rows", "", "append the table's rows to this `file`")
	flag.Parse()
	if o.credential == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: loadgen --credential DATA/admin.json --agents N [--server-pid PID] [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	for m := range strings.SplitSeq(modes, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if m != modeFull && m != modeResumed && m != modeKeepalive {
			fmt.Fprintf(os.Stderr, "loadgen: --modes: no mode %q (full, resumed, keepalive)\n", m)
			os.Exit(2)
		}
		o.modes = append(o.modes, m)
	}
	if o.agents < 1 || o.rate <= 0 || o.enrollConcurrency < 1 || o.maxInflight < 1 || o.reportResources < 0 || o.reportConcurrency < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: --agents, --rate, --enroll-concurrency and --max-inflight must be positive")
		os.Exit(2)
	}
	switch reportConn {
	case "close":
	case "keep":
		o.reportKeep = true
	default:
		fmt.Fprintf(os.Stderr, "loadgen: --report-conn %q: want close or keep\n", reportConn)
		os.Exit(2)
	}
	for c := range strings.SplitSeq(changed, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		pct, err := strconv.Atoi(c)
		if err != nil || pct < 0 || pct > 100 {
			fmt.Fprintf(os.Stderr, "loadgen: --report-changed: %q is not a percentage\n", c)
			os.Exit(2)
		}
		o.reportChanged = append(o.reportChanged, pct)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	fmt.Printf("loadgen: %s\n", strings.Join(os.Args, " "))
	fmt.Printf("machine: %d CPUs (nproc), GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if o.work == "" {
		dir, err := os.MkdirTemp("", "satchel-loadgen-")
		if err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }() // a temporary directory: nothing to do if it stays
		o.work = dir
	}
	f, err := newFleet(o)
	if err != nil {
		return err
	}
	var rows []row
	r, err := f.enroll(ctx)
	if err != nil {
		return err
	}
	rows = append(rows, r)
	if len(o.modes) > 0 {
		if err := f.probe(ctx); err != nil {
			return err
		}
	}
	for i, m := range o.modes {
		d := o.duration
		if i > 0 {
			d = o.otherDuration
		}
		r, err := f.checkins(ctx, m, d)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if o.reportConcurrency > 0 && (o.reportDuration > 0 || o.reportCount > 0) {
		for _, pct := range o.reportChanged {
			r, err := f.reports(ctx, pct)
			if err != nil {
				return err
			}
			f.sent.shapes[len(f.sent.shapes)-1].row = len(rows)
			rows = append(rows, r)
		}
		if err := f.verify(ctx, rows); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(tableHeader)
	for _, r := range rows {
		fmt.Print(r.markdown())
	}
	fmt.Println()
	for _, r := range rows {
		for _, t := range r.targets {
			fmt.Println(t)
		}
	}
	if o.rows != "" {
		if err := appendRows(o.rows, rows); err != nil {
			return err
		}
	}
	return nil
}

// appendRows appends the rows to the file, after the table's header if it is empty.
func appendRows(path string, rows []row) error {
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	defer fd.Close()
	var b strings.Builder
	if info, err := fd.Stat(); err == nil && info.Size() == 0 {
		b.WriteString(tableHeader)
	}
	for _, r := range rows {
		b.WriteString(r.markdown())
	}
	if _, err := fd.WriteString(b.String()); err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	return nil
}
