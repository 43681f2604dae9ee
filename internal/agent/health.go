package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/release"
)

// maxHealthOutput is how much of a health check's output a report keeps (its end).
const maxHealthOutput = 2 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf.Reset()
		p = p[len(p)-t.max:]
	} else if over := t.buf.Len() + len(p) - t.max; over > 0 {
		t.buf.Next(over)
	}
	t.buf.Write(p)
	return n, nil
}

// runHealthChecks runs a release's health checks in order, each without a shell, with its
// timeout, and returns their results and the first failure (nil: all passed). A check sees
// SATCHEL_RELEASE (the version) and SATCHEL_ROOT (the directory the run converged: / or
// --root) in its environment, and runs in SATCHEL_ROOT.
func runHealthChecks(ctx context.Context, checks []release.HealthCheck, version uint64, rootDir string) ([]HealthResult, error) {
	var results []HealthResult
	var first error
	for _, hc := range checks {
		res := runHealthCheck(ctx, hc, version, rootDir)
		results = append(results, res)
		if !res.OK && first == nil {
			first = fmt.Errorf("health check %s failed: %s", hc.Name, res.Error)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return results, first
}

func runHealthCheck(ctx context.Context, hc release.HealthCheck, version uint64, rootDir string) HealthResult {
	start := time.Now()
	res := HealthResult{Name: hc.Name}
	cctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, hc.Command[0], hc.Command[1:]...)
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), "SATCHEL_RELEASE="+strconv.FormatUint(version, 10), "SATCHEL_ROOT="+rootDir)
	out := &tailBuffer{max: maxHealthOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second // a child that keeps the output open does not hold the agent
	err := cmd.Run()
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	res.Output = strings.ToValidUTF8(out.buf.String(), "?")
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.OK = true
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		res.Error = fmt.Sprintf("still running after %s (timeout)", hc.Timeout)
	case ctx.Err() != nil:
		res.Error = "interrupted"
	case errors.As(err, &exitErr):
		res.Error = exitErr.String()
	default:
		res.Error = err.Error()
	}
	return res
}
