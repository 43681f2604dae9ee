package api

import (
	"strings"
	"testing"
)

func TestValidReportID(t *testing.T) {
	for id, want := range map[string]bool{
		"20261127T021500.123456789Z-cycle-0a1b2c3d.json": true, // a spool entry name
		"school-001":             true,
		"a":                      true,
		"A.b_c-d":                true,
		strings.Repeat("x", 128): true,
		"":                       false,
		strings.Repeat("x", 129): false,
		"_hidden":                false,
		".hidden":                false,
		"-flag":                  false,
		"..":                     false,
		"a/b":                    false,
		"a\\b":                   false,
		"a b":                    false,
		"caf\u00e9":              false,
		"a\x00":                  false,
		"ok\n":                   false,
	} {
		if got := ValidReportID(id); got != want {
			t.Errorf("ValidReportID(%q) = %v, want %v", id, got, want)
		}
	}
}
