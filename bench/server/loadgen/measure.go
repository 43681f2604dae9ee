package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

// procSample is what /proc says of a process at one moment.
type procSample struct {
	cpu    time.Duration // utime + stime, every thread
	rssKiB int64         // VmRSS
	hwmKiB int64         // VmHWM: the peak RSS since the start or the last reset
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("the server's CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("the server's CPU time: /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return s, fmt.Errorf("the server's CPU time: /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	// fields[0] is field 3 (state): utime is field 14, stime field 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("the server's CPU time: /proc/%d/stat: %w", pid, err)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("the server's memory: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			s.hwmKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return s, nil
}

// openFiles is the number of files process pid has open (its sockets included).
func openFiles(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("the server's open files: %w", err)
	}
	return len(fds), nil
}

// resetPeak resets process pid's VmHWM to its current RSS (Linux 4.0 and later).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5\n"), 0)
}

// selfCPU is this process's CPU time, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter measures one phase: its wall time, the CPU time of the server and of the load
// generator, and the server's peak RSS.
type meter struct {
	pid       int
	start     time.Time
	server0   procSample
	self0     time.Duration
	peakSince string // "" when the peak was reset at the start; else why not
}

// usage is what a meter measured.
type usage struct {
	wall       time.Duration
	serverCPU  time.Duration // -1: not measured
	selfCPU    time.Duration
	serverRSS0 int64  // KiB at the start (after the peak's reset)
	serverPeak int64  // KiB; -1: not measured
	serverRSS  int64  // KiB at the end
	serverFDs  int    // open files at the end
	peakSince  string // "" when serverPeak is the phase's; else why it is since an earlier time
}

func startMeter(pid int) *meter {
	m := &meter{pid: pid}
	if pid > 0 {
		if err := resetPeak(pid); err != nil {
			m.peakSince = fmt.Sprintf("the peak could not be reset, so it is since the server started: %v", err)
		}
		m.server0, _ = readProc(pid)
	}
	m.self0 = selfCPU()
	m.start = time.Now()
	return m
}

func (m *meter) stop() usage {
	u := usage{wall: time.Since(m.start), selfCPU: selfCPU() - m.self0, serverCPU: -1, serverPeak: -1, peakSince: m.peakSince, serverRSS0: m.server0.rssKiB}
	if m.pid > 0 {
		s, err := readProc(m.pid)
		if err != nil {
			fmt.Printf("  (the server: %v)\n", err)
			return u
		}
		u.serverCPU = s.cpu - m.server0.cpu
		u.serverPeak = s.hwmKiB
		u.serverRSS = s.rssKiB
		u.serverFDs, _ = openFiles(m.pid)
	}
	return u
}

// String says what the meter measured, for the log.
func (u usage) String() string {
	s := fmt.Sprintf("wall %.1f s; load generator CPU %s", u.wall.Seconds(), cpuShare(u.selfCPU, u.wall))
	if u.serverCPU >= 0 {
		s += fmt.Sprintf("; server CPU %s, RSS %.1f MiB at the start, peak %.1f MiB, %.1f MiB at the end with %d open files",
			cpuShare(u.serverCPU, u.wall), mib(u.serverRSS0), mib(u.serverPeak), mib(u.serverRSS), u.serverFDs)
		if u.peakSince != "" {
			s += " (" + u.peakSince + ")"
		}
	}
	return s
}

// cpuShare is a CPU time and the share of the machine's cores it is over wall.
func cpuShare(cpu, wall time.Duration) string {
	if cpu < 0 {
		return "-"
	}
	pct := 0.0
	if wall > 0 {
		pct = 100 * cpu.Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))
	}
	return fmt.Sprintf("%.1f s (%.0f%%)", cpu.Seconds(), pct)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// latencies records the outcome of every request of a phase.
type latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	errors map[string]int // by kind
	nerr   int
}

func newLatencies(capacity int) *latencies {
	return &latencies{d: make([]time.Duration, 0, capacity), errors: map[string]int{}}
}

func (l *latencies) ok(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// fail counts a failed request; kind groups like failures (a status, an error message).
func (l *latencies) fail(kind string) {
	if len(kind) > 200 {
		kind = kind[:200] + "…"
	}
	l.mu.Lock()
	l.errors[kind]++
	l.nerr++
	l.mu.Unlock()
}

// summary sorts the latencies and returns their count, p50, p99 and max (nearest rank).
func (l *latencies) summary() (n int, p50, p99, maxD time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	n = len(l.d)
	return n, percentile(l.d, 0.50), percentile(l.d, 0.99), percentile(l.d, 1)
}

// percentile is the nearest-rank p-quantile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// printErrors logs the kinds of failure, the most frequent first.
func (l *latencies) printErrors() {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := make([]string, 0, len(l.errors))
	for k := range l.errors {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return l.errors[b] - l.errors[a] })
	for i, k := range kinds {
		if i == 10 {
			fmt.Printf("  … and %d more kinds of error\n", len(kinds)-i)
			break
		}
		fmt.Printf("  error ×%d: %s\n", l.errors[k], k)
	}
}

// row is one row of the results table.
type row struct {
	agents  int
	phase   string
	n       int     // requests that succeeded
	rate    float64 // of those, per second
	target  string  // the rate asked for, "" for a closed loop
	p50     time.Duration
	p99     time.Duration
	max     time.Duration
	errors  int
	use     usage
	targets []string // "target: …" verdicts
}

const tableHeader = "| agents | phase | requests ok | rate achieved (/s) | p50 (ms) | p99 (ms) | max (ms) | errors | server CPU (s, % of machine) | server RSS at the start → peak (VmHWM, MiB) | load generator CPU (s, % of machine) |\n" +
	"|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"

func (r row) markdown() string {
	rate := fmt.Sprintf("%.1f", r.rate)
	if r.target != "" {
		rate += " (of " + r.target + ")"
	}
	peak := "-"
	if r.use.serverPeak >= 0 {
		peak = fmt.Sprintf("%.1f → %.1f", mib(r.use.serverRSS0), mib(r.use.serverPeak))
		if r.use.peakSince != "" {
			peak += " (since start)"
		}
	}
	return fmt.Sprintf("| %d | %s | %d | %s | %s | %s | %s | %d | %s | %s | %s |\n",
		r.agents, r.phase, r.n, rate, ms(r.p50), ms(r.p99), ms(r.max), r.errors,
		cpuShare(r.use.serverCPU, r.use.wall), peak, cpuShare(r.use.selfCPU, r.use.wall))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// verdict is a target line: PASS or FAIL, what was asked and what was measured.
func verdict(pass bool, format string, args ...any) string {
	v := "FAIL"
	if pass {
		v = "PASS"
	}
	return fmt.Sprintf("target: %s: %s", v, fmt.Sprintf(format, args...))
}
