package release

import (
	"strings"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/store"
)

func testManifest() *Manifest {
	return &Manifest{Version: 3, Config: store.Sum([]byte("tree")), Created: time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC),
		Notes: "n", HealthChecks: []HealthCheck{{Name: "http", Command: []string{"curl", "-f", "http://127.0.0.1/"}, Timeout: 10 * time.Second}}}
}

func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	data, err := testManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Encode()
	if err != nil || string(again) != string(data) {
		t.Fatalf("round trip: %v\n%s\n%s", err, data, again)
	}
}

func TestDecodeManifestRefuses(t *testing.T) {
	t.Parallel()
	good, err := testManifest().Encode()
	if err != nil {
		t.Fatal(err)
	}
	id := store.Sum([]byte("tree")).String()
	for _, c := range []struct{ name, from, to, want string }{
		{"unknown field", `"notes"`, `"extra": 1, "notes"`, `unknown field "extra"`},
		{"version 0", `"version": 3`, `"version": 0`, "version 0"},
		{"negative version", `"version": 3`, `"version": -1`, "cannot unmarshal"},
		{"bad ID", id, id[:60], "config"},
		{"zero ID", id, strings.Repeat("0", 64), "no config tree ID"},
		{"format", ManifestFormat, "satchel-release/2", "format"},
		{"local time", `2026-11-26T16:00:00Z`, `2026-11-26T17:00:00+01:00`, "not in UTC"}, {"fraction", `16:00:00Z`, `16:00:00.5Z`, "whole seconds"},
		{"no timeout", `"10s"`, `"0s"`, "timeout"},
		{"no command", "\"curl\",\n        \"-f\",\n        \"http://127.0.0.1/\"", "", "no command"},
	} {
		data := strings.Replace(string(good), c.from, c.to, 1)
		if data == string(good) {
			t.Fatalf("%s: the test changed nothing", c.name)
		}
		if _, err := DecodeManifest([]byte(data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if _, err := DecodeManifest(append(good, []byte("{}")...)); err == nil {
		t.Error("trailing data accepted")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	good, err := testManifest().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"satchel-release/1","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		m2, err := DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
		if m2.Version != m.Version || m2.Config != m.Config || !m2.Created.Equal(m.Created) || m2.Notes != m.Notes {
			t.Fatalf("round trip changed the manifest: %+v then %+v", m, m2)
		}
	})
}
