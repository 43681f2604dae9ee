package catalog

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// graphOf builds a sorted catalog from "ADDR: DEP DEP ~NOTIFIED" lines: a resource per line,
// the addresses it requires, and (after ~) the ones it notifies.
func graphOf(t *testing.T, spec ...string) (*Catalog, *Graph) {
	t.Helper()
	c := New("n")
	for _, line := range spec {
		addr, rest, _ := strings.Cut(line, ":")
		a, err := ParseAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		r := &Resource{Address: addr, Type: a.Type, Name: a.Name, Key: a.Key, Attributes: map[string]json.RawMessage{}}
		for _, f := range strings.Fields(rest) {
			if n, ok := strings.CutPrefix(f, "~"); ok {
				r.Notify = append(r.Notify, n)
			} else {
				r.Require = append(r.Require, f)
			}
		}
		c.Resources = append(c.Resources, r)
	}
	c.Sort()
	g, err := NewGraph(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

func addresses(rs []*Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Address)
	}
	return strings.Join(out, " ")
}

func TestOrder(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		spec []string
		want string
	}{
		"empty": {nil, ""},
		"independent, by address": {[]string{"file.c:", "file.a:", "directory.z:", "file.b:"},
			"directory.z file.a file.b file.c"},
		"dependencies first": {[]string{"file.a: directory.z", "directory.z:"},
			"directory.z file.a"},
		"ties broken by address at every step": {
			[]string{"file.a: file.d", "file.b:", "file.c: file.b", "file.d:", "file.e: file.a file.c"},
			"file.b file.c file.d file.a file.e"},
		"a chain": {[]string{"x.a: x.b", "x.b: x.c", "x.c: x.d", "x.d:"}, "x.d x.c x.b x.a"},
		"notify orders the target after the notifier": {
			[]string{"exec.a:", "file.z: ~exec.a"}, "file.z exec.a"},
		"keys": {[]string{`file.k["b"]:`, `file.k["a"]: file.k["b"]`, "file.j:"},
			`file.j file.k["b"] file.k["a"]`},
		"diamond": {[]string{"x.top: x.l x.r", "x.l: x.base", "x.r: x.base", "x.base:"},
			"x.base x.l x.r x.top"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, g := graphOf(t, tc.spec...)
			for range 3 { // deterministic
				order, err := g.Order()
				if err != nil {
					t.Fatal(err)
				}
				if got := addresses(order); got != tc.want {
					t.Fatalf("Order() = %s, want %s", got, tc.want)
				}
			}
		})
	}
}

func TestOrderReportsCycles(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		spec []string
		want [][]string
	}{
		"two": {[]string{"file.a: file.b", "file.b: file.a"},
			[][]string{{"file.a", "file.b"}}},
		"three, rotated to the smallest address": {[]string{"file.c: file.a", "file.a: file.b", "file.b: file.c", "file.z: file.c"},
			[][]string{{"file.a", "file.b", "file.c"}}},
		"through notify": {[]string{"file.f: file.g ~exec.r", "file.g: exec.r", "exec.r:"},
			[][]string{{"exec.r", "file.f", "file.g"}}},
		"two loops, each named once": {[]string{"x.a: x.b", "x.b: x.a", "y.a: y.b", "y.b: y.c", "y.c: y.a", "z.free: x.a"},
			[][]string{{"x.a", "x.b"}, {"y.a", "y.b", "y.c"}}},
		// In one tangle, the shortest loop through the smallest address is reported, not
		// the long way round.
		// Validate refuses these, but a graph built without it must still name the loop.
		"self": {[]string{"file.a: file.a", "file.b: file.a"},
			[][]string{{"file.a"}}},
		"shortest loop": {[]string{"x.a: x.b x.e", "x.b: x.c", "x.c: x.d", "x.d: x.a", "x.e: x.a"},
			[][]string{{"x.a", "x.e"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, g := graphOf(t, tc.spec...)
			_, err := g.Order()
			var cyc *CycleError
			if !errors.As(err, &cyc) {
				t.Fatalf("Order() error = %v, want a *CycleError", err)
			}
			if !slices.EqualFunc(cyc.Cycles, tc.want, slices.Equal) {
				t.Errorf("Cycles = %q, want %q", cyc.Cycles, tc.want)
			}
			for _, c := range tc.want {
				if !strings.Contains(err.Error(), strings.Join(append(slices.Clone(c), c[0]), " -> ")) {
					t.Errorf("error %q does not spell the loop %q", err, c)
				}
			}
		})
	}
}

func TestDependentsAndRequires(t *testing.T) {
	t.Parallel()
	_, g := graphOf(t,
		"directory.etc:",
		"file.conf: directory.etc ~exec.restart",
		"exec.restart:",
		"file.other: directory.etc",
		"line.edit: file.conf",
		"file.alone:",
	)
	for addr, want := range map[string][]string{
		"directory.etc": {"exec.restart", "file.conf", "file.other", "line.edit"},
		"file.conf":     {"exec.restart", "line.edit"},
		"exec.restart":  nil,
		"file.alone":    nil,
		"file.nope":     nil,
	} {
		if got := g.Dependents(addr); !slices.Equal(got, want) {
			t.Errorf("Dependents(%s) = %q, want %q", addr, got, want)
		}
	}
	for addr, want := range map[string][]string{
		"exec.restart": {"file.conf"},
		"line.edit":    {"file.conf"},
		"file.conf":    {"directory.etc"},
		"file.alone":   {},
		"file.nope":    nil,
	} {
		if got := g.Requires(addr); !slices.Equal(got, want) {
			t.Errorf("Requires(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestNewGraphRejectsDanglingEdges(t *testing.T) {
	t.Parallel()
	for _, spec := range [][]string{{"file.a: file.b"}, {"file.a: ~exec.b"}} {
		c := New("n")
		line := spec[0]
		addr, rest, _ := strings.Cut(line, ":")
		r := &Resource{Address: addr, Type: "file", Name: "a", Attributes: map[string]json.RawMessage{}}
		f := strings.TrimSpace(rest)
		if n, ok := strings.CutPrefix(f, "~"); ok {
			r.Notify = []string{n}
		} else {
			r.Require = []string{f}
		}
		c.Resources = []*Resource{r}
		if _, err := NewGraph(c); err == nil || !strings.Contains(err.Error(), "no such resource") {
			t.Errorf("NewGraph(%s) error = %v", line, err)
		}
	}
}
