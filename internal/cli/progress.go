package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progressDelay is how long an operation goes before progress is shown.
const progressDelay = time.Second

// lineProgress shows one line of progress on a terminal, redrawn ten times a second, once an
// operation has taken longer than its delay, and nothing when the output is not a terminal
// (logs stay clean). The line is cleared when the operation is done.
type lineProgress struct {
	w     io.Writer
	line  atomic.Pointer[string]
	stop  chan struct{}
	wg    sync.WaitGroup
	delay time.Duration
}

// newLineProgress shows progress on w if it is a terminal.
func newLineProgress(w io.Writer) *lineProgress {
	f, ok := w.(*os.File)
	return startLineProgress(w, ok && term.IsTerminal(int(f.Fd())), progressDelay)
}

func startLineProgress(w io.Writer, enabled bool, delay time.Duration) *lineProgress {
	p := &lineProgress{w: w, stop: make(chan struct{}), delay: delay}
	if enabled {
		p.wg.Add(1)
		go p.loop()
	}
	return p
}

// set replaces the line shown.
func (p *lineProgress) set(line string) { p.line.Store(&line) }

func (p *lineProgress) loop() {
	defer p.wg.Done()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	shown := false
	for {
		select {
		case <-p.stop:
			if shown {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-tick.C:
			line := p.line.Load()
			if time.Since(start) < p.delay || line == nil {
				continue
			}
			fmt.Fprintf(p.w, "\r\033[K%s", *line)
			shown = true
		}
	}
}

// done stops the display and clears the line.
func (p *lineProgress) done() {
	close(p.stop)
	p.wg.Wait()
}

// progress shows "resource N of M: ADDRESS" for a run.
type progress struct{ *lineProgress }

func newProgress(w io.Writer) progress { return progress{newLineProgress(w)} }

func startProgress(w io.Writer, enabled bool, delay time.Duration) progress {
	return progress{startLineProgress(w, enabled, delay)}
}

// update is the engine's progress callback: done resources of total, addr running.
func (p progress) update(done, total int, addr string) {
	p.set(fmt.Sprintf("resource %d of %d: %s", done+1, total, addr))
}
