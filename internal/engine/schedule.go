package engine

import (
	"slices"

	"github.com/satchelcm/satchel/internal/catalog"
	"github.com/satchelcm/satchel/internal/report"
)

// schedule visits the resources of order (a topological order) with up to parallel at once.
// A resource is handed out only when every resource it depends on has finished, so it sees
// their final status (to be skipped after a failure) and whether any of them notified it.
// check decides, without running anything, whether a resource is to be skipped (it returns
// the outcome with a Status) or run (an empty Status); run converges it, in a worker. The
// outcomes are returned in the order of order, so the report does not depend on timing.
//
// Only this goroutine touches status and notified; a worker owns the outcome it fills.
func schedule(ctx interface{ Err() error }, order []*catalog.Resource, g *catalog.Graph, parallel int,
	check func(r *catalog.Resource, notified bool, status map[string]report.Status) *report.Resource,
	run func(r *catalog.Resource, notified bool, out *report.Resource),
	progress func(done, total int, address string)) []*report.Resource {

	parallel = max(parallel, 1)
	n := len(order)
	pos := make(map[string]int, n)
	for i, r := range order {
		pos[r.Address] = i
	}
	pending := make([]int, n)
	var ready readyQueue
	for i, r := range order {
		pending[i] = len(g.Requires(r.Address))
		if pending[i] == 0 {
			ready.push(i)
		}
	}

	results := make([]*report.Resource, n)
	status := make(map[string]report.Status, n)
	notified := make(map[string]bool)
	type job struct {
		i        int
		notified bool
		out      *report.Resource
	}
	jobs := make(chan job)
	done := make(chan int)
	for range parallel {
		go func() {
			for j := range jobs {
				run(order[j.i], j.notified, j.out)
				done <- j.i
			}
		}()
	}
	defer close(jobs)

	finished, running, started := 0, 0, 0
	finish := func(i int) {
		r, out := order[i], results[i]
		status[r.Address] = out.Status
		if out.Status == report.Changed {
			for _, t := range r.Notify {
				notified[t] = true
			}
		}
		for _, dep := range g.RequiredBy(r.Address) {
			k := pos[dep]
			if pending[k]--; pending[k] == 0 {
				ready.push(k)
			}
		}
		finished++
	}
	for finished < n {
		for len(ready) > 0 && running < parallel {
			i := ready.pop()
			r := order[i]
			if progress != nil {
				progress(started, n, r.Address)
			}
			started++
			out := check(r, notified[r.Address], status)
			results[i] = out
			if out.Status != "" || ctx.Err() != nil {
				if out.Status == "" {
					out.Status, out.Error = report.Skipped, "not run: the run was interrupted"
				}
				finish(i)
				continue
			}
			running++
			jobs <- job{i, notified[r.Address], out}
		}
		if running > 0 {
			finish(<-done)
			running--
		} else if finished < n && len(ready) == 0 {
			break // unreachable for an acyclic graph; never spin
		}
	}
	if progress != nil {
		progress(n, n, "")
	}
	return results
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
