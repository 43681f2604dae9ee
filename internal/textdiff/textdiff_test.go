package textdiff

import (
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	t.Parallel()
	got := Unified("/etc/motd", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"))
	want := "--- /etc/motd (current)\n+++ /etc/motd (desired)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
	if got != want {
		t.Errorf("Unified:\n%s\nwant:\n%s", got, want)
	}
	if d := Unified("/x", []byte("same"), []byte("same")); d != "" {
		t.Errorf("equal content gave a diff: %q", d)
	}
}

func TestUnifiedNoFinalNewline(t *testing.T) {
	t.Parallel()
	got := Unified("/f", []byte("a"), []byte("a\n"))
	if !strings.Contains(got, "No newline at end of file") {
		t.Errorf("missing final newline not shown:\n%s", got)
	}
}

func TestBinaryAndLargeAreSummarised(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct{ old, new []byte }{
		"nul":     {[]byte("a\x00b"), []byte("a\x00c")},
		"invalid": {[]byte("\xff\xfe"), []byte("text")},
		"large":   {[]byte(strings.Repeat("x\n", MaxDiffBytes)), []byte("y\n")},
	} {
		got := Unified("/f", c.old, c.new)
		if !strings.Contains(got, "differs:") || strings.Contains(got, "@@") {
			t.Errorf("%s: want a summary, got %q", name, got)
		}
	}
	if got := Summary([]byte("a"), []byte("b")); got != "content differs: 1 bytes (sha256 ca978112ca1b) -> 1 bytes (sha256 3e23e8160039)\n" {
		t.Errorf("Summary = %q", got)
	}
}
