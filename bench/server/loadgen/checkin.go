package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Check-in modes (see the package documentation).
const (
	modeFull      = "full"
	modeResumed   = "resumed"
	modeKeepalive = "keepalive"
)

// checkinStats are the counters of a check-in phase.
type checkinStats struct {
	lat      *latencies // from the scheduled time to the end of the answer
	service  *latencies // from the request's start to the end of the answer
	lagMax   atomic.Int64
	resumed  atomic.Int64 // TLS sessions resumed
	reused   atomic.Int64 // requests on a kept-alive connection
	lastDone atomic.Int64 // the latest end of a check-in, in ns since the phase's start
	mu       sync.Mutex
	protos   map[string]int
}

// checkins runs the check-in phase of mode for d at the target rate.
func (f *fleet) checkins(ctx context.Context, mode string, d time.Duration) (row, error) {
	n := len(f.agents)
	total := int(f.o.rate * d.Seconds())
	fmt.Printf("\n== checkin-%s: %d agents, %.0f check-ins/s for %s (%d check-ins; each agent every %.1f s)\n",
		mode, n, f.o.rate, d, total, float64(n)/f.o.rate)
	if err := f.quiesce(ctx); err != nil {
		return row{}, err
	}
	switch {
	case mode != modeFull:
		if err := f.warm(ctx, mode); err != nil {
			return row{}, err
		}
	case f.o.warmup > 0:
		start := time.Now()
		w := f.schedule(ctx, mode, int(f.o.rate*f.o.warmup.Seconds()))
		ok, _, _, _ := w.lat.summary()
		fmt.Printf("  warm-up (not measured): %d check-ins answered 304 of %d in %.1f s\n", ok, int(f.o.rate*f.o.warmup.Seconds()), time.Since(start).Seconds())
		w.lat.printErrors()
	}
	m := startMeter(f.o.serverPID)
	st := f.schedule(ctx, mode, total)
	u := m.stop()
	if err := ctx.Err(); err != nil {
		return row{}, fmt.Errorf("checkin-%s: %w", mode, err)
	}
	if mode == modeKeepalive {
		f.closeIdle()
	}
	interval := float64(time.Second) / f.o.rate
	ok, p50, p99, maxD := st.lat.summary()
	_, s50, s99, smax := st.service.summary()
	// The rate is over the schedule's span, or longer if answers came in after it.
	span := max(time.Duration(float64(total)*interval), time.Duration(st.lastDone.Load()))
	rate := float64(ok) / span.Seconds()
	fmt.Printf("  %d of %d check-ins answered 304: %.1f/s over %.1f s; %d errors\n", ok, total, rate, span.Seconds(), st.lat.nerr)
	fmt.Printf("  latency from the scheduled time: p50 %s ms, p99 %s ms, max %s ms; from the request's start: p50 %s ms, p99 %s ms, max %s ms; largest start lag %s ms\n",
		ms(p50), ms(p99), ms(maxD), ms(s50), ms(s99), ms(smax), ms(time.Duration(st.lagMax.Load())))
	var protos []string
	for p, c := range st.protos {
		protos = append(protos, fmt.Sprintf("%s ×%d", p, c))
	}
	slices.Sort(protos)
	fmt.Printf("  TLS sessions resumed: %d; on a kept-alive connection: %d; protocols: %s\n", st.resumed.Load(), st.reused.Load(), strings.Join(protos, ", "))
	fmt.Printf("  %s\n", u)
	st.lat.printErrors()
	r := row{agents: n, phase: "checkin-" + mode, n: ok, rate: rate, target: fmt.Sprintf("%g", f.o.rate), p50: p50, p99: p99, max: maxD, errors: st.lat.nerr, use: u}
	if mode == modeFull {
		short := ""
		if d < 5*time.Minute {
			short = fmt.Sprintf(" (over %s only: the target is 5 minutes)", d)
		}
		r.targets = append(r.targets,
			verdict(rate >= 0.99*f.o.rate && ok == total, "%d agents, check-ins on new TLS connections: %.1f/s sustained of %g/s asked, %d of %d answered 304%s (want 170/s, every one answered)", n, rate, f.o.rate, ok, total, short),
			verdict(p99 < 200*time.Millisecond, "%d agents, check-in p99 %s ms (want under 200 ms)", n, ms(p99)))
		if u.serverPeak >= 0 {
			r.targets = append(r.targets, verdict(u.serverPeak < 300*1024, "%d agents, server peak RSS during the check-ins %.1f MiB, %.1f MiB at their start (want under 300 MiB)", n, mib(u.serverPeak), mib(u.serverRSS0)))
		}
	}
	return r, nil
}

// schedule makes total check-ins of mode, open loop at the rate, rotating through the
// agents, and waits for their answers.
func (f *fleet) schedule(ctx context.Context, mode string, total int) *checkinStats {
	n := len(f.agents)
	st := &checkinStats{lat: newLatencies(total), service: newLatencies(total), protos: map[string]int{}}
	var inflight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	interval := float64(time.Second) / f.o.rate
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if inflight.Load() >= int64(f.o.maxInflight) {
			st.lat.fail(fmt.Sprintf("not sent: %d check-ins in flight already", f.o.maxInflight))
			continue
		}
		a := f.agents[i%n]
		inflight.Add(1)
		wg.Go(func() {
			defer inflight.Add(-1)
			f.checkin(ctx, mode, a, start, at, st)
		})
	}
	wg.Wait()
	return st
}

// warm makes one check-in per agent, as fast as --enroll-concurrency allows, before a
// mode that needs it is measured: resumed, for the agents' TLS sessions, and keepalive,
// for their connections. Otherwise the agents' first check-ins, a whole rotation, would
// be what the other mode measures.
func (f *fleet) warm(ctx context.Context, mode string) error {
	n := len(f.agents)
	st := &checkinStats{lat: newLatencies(n), service: newLatencies(n), protos: map[string]int{}}
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range f.o.enrollConcurrency {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				f.checkin(ctx, mode, f.agents[i], start, time.Now(), st)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkin-%s: warm-up: %w", mode, err)
	}
	ok, _, _, _ := st.lat.summary()
	fmt.Printf("  warm-up (not measured): one check-in per agent, %d at a time: %d answered 304 in %.1f s\n", f.o.enrollConcurrency, ok, time.Since(start).Seconds())
	st.lat.printErrors()
	if st.lat.nerr > 0 {
		return fmt.Errorf("checkin-%s: warm-up: %d check-ins failed", mode, st.lat.nerr)
	}
	return nil
}

// checkin is one agent's check-in: a conditional GET of timestamp.json, answered 304.
func (f *fleet) checkin(ctx context.Context, mode string, a *simAgent, phaseStart, at time.Time, st *checkinStats) {
	var hc *http.Client
	switch mode {
	case modeFull, modeResumed:
		cfg := a.full
		if mode == modeResumed {
			cfg = a.resumed
		}
		tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: true, TLSHandshakeTimeout: f.o.timeout}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	default:
		hc = a.node.HTTPClient()
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if ci.Reused {
			st.reused.Add(1)
		}
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.timestampURL, nil)
	if err != nil {
		st.lat.fail(err.Error())
		return
	}
	req.Header.Set("If-Modified-Since", f.lastModified)
	sent := time.Now()
	lag := int64(sent.Sub(at))
	for {
		old := st.lagMax.Load()
		if lag <= old || st.lagMax.CompareAndSwap(old, lag) {
			break
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		st.lat.fail(err.Error())
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	done := time.Now()
	for {
		old := st.lastDone.Load()
		t := int64(done.Sub(phaseStart))
		if t <= old || st.lastDone.CompareAndSwap(old, t) {
			break
		}
	}
	switch {
	case err != nil:
		st.lat.fail("read the answer: " + err.Error())
		return
	case resp.StatusCode != http.StatusNotModified:
		st.lat.fail("answered " + resp.Status + ", not 304 Not Modified")
		return
	}
	if resp.TLS != nil && resp.TLS.DidResume {
		st.resumed.Add(1)
	}
	st.mu.Lock()
	st.protos[protoName(resp)]++
	st.mu.Unlock()
	st.lat.ok(done.Sub(at))
	st.service.ok(done.Sub(sent))
}

// protoName is the answer's HTTP and TLS versions.
func protoName(resp *http.Response) string {
	if resp.TLS == nil {
		return resp.Proto
	}
	return fmt.Sprintf("%s/TLS 1.%d", resp.Proto, resp.TLS.Version-tls.VersionTLS10)
}
