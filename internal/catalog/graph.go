package catalog

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// Graph is the dependency graph of a catalog: an edge from A to B means B must be converged
// before A (A requires B; B notifies A).
type Graph struct {
	cat   *Catalog
	index map[string]int
	deps  [][]int // deps[i]: indexes of the resources i requires
	rdep  [][]int // rdep[i]: indexes of the resources that require i
}

// CycleError reports dependency cycles, each as the list of addresses around the loop.
type CycleError struct {
	Cycles [][]string
}

func (e *CycleError) Error() string {
	var parts []string
	for _, c := range e.Cycles {
		parts = append(parts, strings.Join(append(slices.Clone(c), c[0]), " -> "))
	}
	return "dependency cycle: " + strings.Join(parts, "; ")
}

// NewGraph builds the graph of a catalog whose resources are sorted and whose edges resolve
// (see Validate). Notify edges order the target after the notifier.
func NewGraph(c *Catalog) (*Graph, error) {
	index := make(map[string]int, len(c.Resources))
	for i, r := range c.Resources {
		index[r.Address] = i
	}
	g := &Graph{cat: c, index: index, deps: make([][]int, len(c.Resources)), rdep: make([][]int, len(c.Resources))}
	add := func(from, to string) error {
		f, ok1 := index[from]
		t, ok2 := index[to]
		if !ok1 || !ok2 {
			return fmt.Errorf("edge %s -> %s: no such resource", from, to)
		}
		if !slices.Contains(g.deps[f], t) {
			g.deps[f] = append(g.deps[f], t)
			g.rdep[t] = append(g.rdep[t], f)
		}
		return nil
	}
	for _, r := range c.Resources {
		for _, d := range r.Require {
			if err := add(r.Address, d); err != nil {
				return nil, err
			}
		}
		for _, n := range r.Notify {
			if err := add(n, r.Address); err != nil {
				return nil, err
			}
		}
	}
	for i := range g.deps {
		slices.Sort(g.deps[i])
		slices.Sort(g.rdep[i])
	}
	return g, nil
}

// Order returns the resources in the order they must be converged: every resource after
// everything it requires, ties broken by address. It returns a *CycleError if there is none.
func (g *Graph) Order() ([]*Resource, error) {
	n := len(g.cat.Resources)
	pending := make([]int, n)
	ready := &intHeap{}
	for i := range n {
		pending[i] = len(g.deps[i])
		if pending[i] == 0 {
			*ready = append(*ready, i)
		}
	}
	heap.Init(ready)
	order := make([]*Resource, 0, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, g.cat.Resources[i])
		for _, j := range g.rdep[i] {
			pending[j]--
			if pending[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(order) < n {
		return nil, &CycleError{Cycles: g.cycles()}
	}
	return order, nil
}

// Dependents returns the addresses of every resource that depends on addr, directly or not.
func (g *Graph) Dependents(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	seen := map[int]bool{i: true}
	stack := []int{i}
	var out []string
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range g.rdep[k] {
			if !seen[j] {
				seen[j] = true
				out = append(out, g.cat.Resources[j].Address)
				stack = append(stack, j)
			}
		}
	}
	slices.Sort(out)
	return out
}

// RequiredBy returns the addresses of the resources that must come after the one at addr:
// those that require it and those it notifies, sorted.
func (g *Graph) RequiredBy(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.addresses(g.rdep[i])
}

// Requires returns the addresses the resource at addr must come after: what it requires and
// what notifies it, sorted.
func (g *Graph) Requires(addr string) []string {
	i, ok := g.index[addr]
	if !ok {
		return nil
	}
	return g.addresses(g.deps[i])
}

// addresses names the resources at the given (sorted) indexes.
func (g *Graph) addresses(idx []int) []string {
	out := make([]string, len(idx))
	for k, d := range idx {
		out[k] = g.cat.Resources[d].Address
	}
	return out
}

// cycles finds one elementary cycle in every strongly connected component that has one
// (Tarjan's algorithm), each rotated to start at its smallest address.
func (g *Graph) cycles() [][]string {
	n := len(g.deps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var sccs [][]int
	counter := 0
	var strong func(v int)
	strong = func(v int) {
		index[v], low[v] = counter, counter
		counter++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range g.deps[v] {
			if index[w] < 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var scc []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			if len(scc) > 1 || slices.Contains(g.deps[v], v) { // a resource requiring itself is a loop too
				slices.Sort(scc)
				sccs = append(sccs, scc)
			}
		}
	}
	for v := range n {
		if index[v] < 0 {
			strong(v)
		}
	}
	slices.SortFunc(sccs, func(a, b []int) int { return a[0] - b[0] })
	var out [][]string
	for _, scc := range sccs {
		out = append(out, g.cycleIn(scc))
	}
	return out
}

// cycleIn walks from the smallest member of a strongly connected component along edges that
// stay in it, by breadth-first search, and returns the shortest loop back to the start.
func (g *Graph) cycleIn(scc []int) []string {
	in := make(map[int]bool, len(scc))
	for _, v := range scc {
		in[v] = true
	}
	start := scc[0]
	prev := map[int]int{}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range g.deps[v] {
			if !in[w] {
				continue
			}
			if w == start {
				path := []int{v}
				for path[len(path)-1] != start {
					path = append(path, prev[path[len(path)-1]])
				}
				slices.Reverse(path)
				names := make([]string, len(path))
				for i, p := range path {
					names[i] = g.cat.Resources[p].Address
				}
				return names
			}
			if _, seen := prev[w]; !seen {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []string{g.cat.Resources[start].Address} // unreachable for a real component
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
