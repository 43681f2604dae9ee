package cli

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a strings.Builder safe for the progress goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressShowsResourceNOfMAfterTheDelay(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	p := startProgress(&out, true, 50*time.Millisecond)
	p.update(2, 10, "file.motd")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "resource 3 of 10: file.motd") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after the delay; got %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.done()
	if got := out.String(); !strings.HasSuffix(got, "\r\033[K") {
		t.Errorf("the progress line is not cleared at the end: %q", got)
	}
}

func TestProgressIsSilentForShortRunsAndNonTerminals(t *testing.T) {
	t.Parallel()
	var short, pipe lockedBuffer
	p := startProgress(&short, true, time.Hour)
	p.update(0, 3, "file.a")
	time.Sleep(250 * time.Millisecond)
	p.done()
	q := startProgress(&pipe, false, 0)
	q.update(0, 3, "file.a")
	time.Sleep(250 * time.Millisecond)
	q.done()
	if short.String() != "" || pipe.String() != "" {
		t.Errorf("progress written: short run %q, non-terminal %q", short.String(), pipe.String())
	}
}
