package engine

import (
	"slices"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/report"
)

// task is the work of one job: one resource, or the members of one batch.
type task struct {
	idx      []int // positions in the order
	notified []bool
	outs     []*report.Resource
}

// scheduler hands out the resources of a topological order to up to parallel workers. A
// resource is handed out only when every resource it depends on has finished, so it sees
// their final status (to be skipped after a failure) and whether any of them notified it.
//
// Resources with a batch key (packages) are held back when they become ready and handed out
// together, as one task, only when nothing else can run: the whole run's independent package
// changes then go in as few transactions as the dependency graph allows.
//
// Only the scheduling goroutine touches status and notified; a worker owns the outcomes of
// its task. Outcomes are returned in the order given, so the report does not depend on timing.
type scheduler struct {
	order    []*catalog.Resource
	graph    *catalog.Graph
	parallel int
	// check decides, without running anything, whether a resource is skipped (it returns an
	// outcome with a Status) or must run (an empty Status).
	check func(r *catalog.Resource, status map[string]report.Status) *report.Resource
	// batchKey is the batch a resource belongs to, or "".
	batchKey func(r *catalog.Resource) string
	// run converges a task, in a worker.
	run      func(t *task)
	progress func(done, total int, address string)
	stopped  func() bool // the run was interrupted

	pos      map[string]int
	pending  []int
	results  []*report.Resource
	status   map[string]report.Status
	notified map[string]bool
	ready    readyQueue
	held     map[string][]int // batch key -> ready members
	finished int
	started  int
}

func (s *scheduler) runAll() []*report.Resource {
	n := len(s.order)
	s.parallel = max(s.parallel, 1)
	s.pos = make(map[string]int, n)
	s.pending = make([]int, n)
	s.results = make([]*report.Resource, n)
	s.status = make(map[string]report.Status, n)
	s.notified = map[string]bool{}
	s.held = map[string][]int{}
	for i, r := range s.order {
		s.pos[r.Address] = i
	}
	for i, r := range s.order {
		s.pending[i] = len(s.graph.Requires(r.Address))
		if s.pending[i] == 0 {
			s.ready.push(i)
		}
	}

	jobs := make(chan *task)
	done := make(chan *task)
	for range s.parallel {
		go func() {
			for t := range jobs {
				s.run(t)
				done <- t
			}
		}()
	}
	defer close(jobs)

	running := 0
loop:
	for s.finished < n {
		for len(s.ready) > 0 && running < s.parallel {
			if t := s.take(s.ready.pop()); t != nil {
				running++
				jobs <- t
			}
		}
		if running == 0 && len(s.ready) == 0 {
			t := s.flushBatch()
			switch {
			case t != nil:
				running++
				jobs <- t
			case len(s.ready) == 0 && len(s.held) == 0:
				break loop // nothing runnable: unreachable for an acyclic graph; never spin
			}
			// A batch skipped as a whole (an interrupted run) released its dependents.
			continue
		}
		if running > 0 {
			t := <-done
			running--
			for _, i := range t.idx {
				s.finish(i)
			}
		}
	}
	if s.progress != nil {
		s.progress(n, n, "")
	}
	for i, out := range s.results { // defensive: every resource gets an outcome
		if out == nil {
			r := s.order[i]
			s.results[i] = &report.Resource{Address: r.Address, Type: r.Type, Origin: r.Origin,
				Status: report.Skipped, Error: "not run: the run ended before it could run"}
		}
	}
	return s.results
}

// take prepares a ready resource: skipped (finished at once), held for its batch, or a task.
func (s *scheduler) take(i int) *task {
	r := s.order[i]
	out := s.check(r, s.status)
	if out.Status == "" && s.stopped() {
		out.Status, out.Error = report.Skipped, "not run: the run was interrupted"
	}
	s.results[i] = out
	if out.Status != "" {
		s.announce(r)
		s.finish(i)
		return nil
	}
	if key := s.batchKey(r); key != "" {
		s.held[key] = append(s.held[key], i)
		return nil
	}
	s.announce(r)
	return &task{idx: []int{i}, notified: []bool{s.notified[r.Address]}, outs: []*report.Resource{out}}
}

// flushBatch hands out every held member of the first batch key, as one task.
func (s *scheduler) flushBatch() *task {
	if len(s.held) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s.held))
	for k := range s.held {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	members := s.held[keys[0]]
	delete(s.held, keys[0])
	slices.Sort(members)
	t := &task{}
	for _, i := range members {
		if s.stopped() {
			s.results[i].Status, s.results[i].Error = report.Skipped, "not run: the run was interrupted"
			s.finish(i)
			continue
		}
		s.announce(s.order[i])
		t.idx = append(t.idx, i)
		t.notified = append(t.notified, s.notified[s.order[i].Address])
		t.outs = append(t.outs, s.results[i])
	}
	if len(t.idx) == 0 {
		return nil
	}
	return t
}

func (s *scheduler) announce(r *catalog.Resource) {
	if s.progress != nil {
		s.progress(s.started, len(s.order), r.Address)
	}
	s.started++
}

// finish records an outcome, delivers its notifications and releases its dependents.
func (s *scheduler) finish(i int) {
	r, out := s.order[i], s.results[i]
	s.status[r.Address] = out.Status
	if out.Status == report.Changed {
		for _, t := range r.Notify {
			s.notified[t] = true
		}
	}
	for _, dep := range s.graph.RequiredBy(r.Address) {
		k := s.pos[dep]
		if s.pending[k]--; s.pending[k] == 0 {
			s.ready.push(k)
		}
	}
	s.finished++
}

// readyQueue holds the positions of resources that may run, smallest (earliest in the
// deterministic order) first.
type readyQueue []int

func (q *readyQueue) push(i int) {
	k, _ := slices.BinarySearch(*q, i)
	*q = slices.Insert(*q, k, i)
}

func (q *readyQueue) pop() int {
	i := (*q)[0]
	*q = (*q)[1:]
	return i
}
