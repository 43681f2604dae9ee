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

// progress shows "resource N of M" on a terminal once a run has taken longer than a second,
// and nothing when the output is not a terminal (logs stay clean).
type progress struct {
	w     io.Writer
	delay time.Duration
	done_ chan struct{}
	wg    sync.WaitGroup
	cur   atomic.Int64
	total atomic.Int64
	addr  atomic.Pointer[string]
}

// progressDelay is how long a run goes before progress is shown.
const progressDelay = time.Second

// newProgress shows progress on w if it is a terminal.
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return startProgress(w, ok && term.IsTerminal(int(f.Fd())), progressDelay)
}

func startProgress(w io.Writer, enabled bool, delay time.Duration) *progress {
	p := &progress{w: w, done_: make(chan struct{}), delay: delay}
	if enabled {
		p.wg.Add(1)
		go p.loop()
	}
	return p
}

func (p *progress) update(done, total int, addr string) {
	p.cur.Store(int64(done))
	p.total.Store(int64(total))
	p.addr.Store(&addr)
}

func (p *progress) loop() {
	defer p.wg.Done()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	shown := false
	for {
		select {
		case <-p.done_:
			if shown {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-tick.C:
			if time.Since(start) < p.delay {
				continue
			}
			addr := ""
			if a := p.addr.Load(); a != nil {
				addr = *a
			}
			fmt.Fprintf(p.w, "\r\033[Kresource %d of %d: %s", p.cur.Load()+1, p.total.Load(), addr)
			shown = true
		}
	}
}

func (p *progress) done() {
	close(p.done_)
	p.wg.Wait()
}
