package transfer

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// A request path maps to a store file's name or to nothing: never to a path that leaves
// chunks/, objects/ or deltas/, or names anything else.
func FuzzResolve(f *testing.F) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, p := range []string{
		"/chunks/01/" + id + ".zst", "/objects/01/" + id + ".zst", "/v1/chunks/" + id, "/v1/objects/" + id,
		"/deltas/" + id + "-" + id + ".idx.zst", "/deltas/" + id + "-" + id + ".pack", "/", "/lock",
		"/chunks/01/../../lock", "/chunks/%2e%2e/lock", "/quarantine/chunks/" + id + ".zst",
	} {
		f.Add(p)
	}
	valid := regexp.MustCompile(`^((chunks|objects)/([0-9a-f]{2})/([0-9a-f]{64})\.zst|deltas/[0-9a-f]{64}-[0-9a-f]{64}\.(idx\.zst|pack))$`)
	f.Fuzz(func(t *testing.T, p string) {
		sf, ok := resolve(p)
		if !ok {
			return
		}
		m := valid.FindStringSubmatch(sf.name)
		if m == nil {
			t.Fatalf("resolve(%q) = %q", p, sf.name)
		}
		if m[3] != "" && m[3] != m[4][:2] {
			t.Fatalf("resolve(%q) = %q: the wrong shard", p, sf.name)
		}
	})
}

// parseContentRange accepts only consistent ranges, and reads back what it is given.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/100", "bytes 5-5/*", "bytes */100", "bytes 9-0/100", "bytes 0-100/100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, size, ok := parseContentRange(s)
		if !ok {
			return
		}
		if start < 0 || end <= start || size >= 0 && end > size || size < -1 {
			t.Fatalf("parseContentRange(%q) = %d, %d, %d", s, start, end, size)
		}
		total := "*"
		if size >= 0 {
			total = fmt.Sprint(size)
		}
		if again := fmt.Sprintf("bytes %d-%d/%s", start, end-1, total); again != s {
			// Not canonical (leading zeros, a plus sign): still the same numbers.
			if a, b, c, ok := parseContentRange(again); !ok || a != start || b != end || c != size {
				t.Fatalf("parseContentRange(%q) does not read back %q", s, again)
			}
		}
	})
}
