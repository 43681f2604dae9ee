package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/satchelcm/satchel/internal/store"
)

// ManifestFormat names the version of the release manifest's encoding. A decoder refuses
// any other value, so that a future format is never half-understood.
const ManifestFormat = "satchel-release/1"

// Limits of a manifest, checked by DecodeManifest (a manifest comes from the network).
const (
	MaxManifestSize   = 1 << 20
	maxNotes          = 64 << 10
	maxHealthChecks   = 64
	maxHealthCheckArg = 4 << 10
	maxHealthTimeout  = time.Hour
)

// Manifest is one release: a version and the config repository it ships, named by the
// ID of its tree in the content store.
type Manifest struct {
	Version      uint64        // 1, 2, …: each release is the previous one plus 1
	Config       store.ID      // the tree of the config repository: HCL, files, templates, inventory
	Created      time.Time     // UTC, whole seconds
	Notes        string        // free text for people
	HealthChecks []HealthCheck // run by the agent after applying; optional
	// Secrets are the SHA-256 (hex) of the release's secret index files, one per bucket
	// (secrets.go); nil when the release carries no secret.
	Secrets []string
}

// HealthCheck is a command the agent runs after applying a release; a non-zero exit status
// or a run longer than Timeout makes the release fail, and the agent roll it back.
type HealthCheck struct {
	Name    string
	Command []string // argv, run without a shell
	Timeout time.Duration
}

// manifestJSON is the encoding of a Manifest.
type manifestJSON struct {
	Format       string            `json:"format"`
	Version      uint64            `json:"version"`
	Config       string            `json:"config"`
	Created      string            `json:"created"`
	Notes        string            `json:"notes"`
	HealthChecks []healthCheckJSON `json:"health_checks,omitempty"`
	Secrets      []string          `json:"secrets,omitempty"`
}

type healthCheckJSON struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Timeout string   `json:"timeout"`
}

// Encode returns the manifest's JSON (indented, with a final newline) after checking it as
// DecodeManifest would.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	j := manifestJSON{
		Format:  ManifestFormat,
		Version: m.Version,
		Config:  m.Config.String(),
		Created: m.Created.UTC().Format(time.RFC3339),
		Notes:   m.Notes,
		Secrets: m.Secrets,
	}
	for _, h := range m.HealthChecks {
		j.HealthChecks = append(j.HealthChecks, healthCheckJSON{Name: h.Name, Command: h.Command, Timeout: h.Timeout.String()})
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeManifest decodes and checks a manifest: known fields only, the known format, a
// version from 1, a valid config ID, an RFC 3339 UTC creation time, and sane health checks.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("release manifest: %d bytes, more than the limit of %d", len(data), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j manifestJSON
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("release manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("release manifest: data after the JSON object")
	}
	if j.Format != ManifestFormat {
		return nil, fmt.Errorf("release manifest: format %q, want %q", j.Format, ManifestFormat)
	}
	id, err := store.ParseID(j.Config)
	if err != nil {
		return nil, fmt.Errorf("release manifest: config: %w", err)
	}
	created, err := time.Parse(time.RFC3339, j.Created)
	if err != nil {
		return nil, fmt.Errorf("release manifest: created: %w", err)
	}
	if !strings.HasSuffix(j.Created, "Z") || !created.Equal(created.Truncate(time.Second)) {
		return nil, fmt.Errorf("release manifest: created %q is not in UTC whole seconds (YYYY-MM-DDTHH:MM:SSZ)", j.Created)
	}
	m := &Manifest{Version: j.Version, Config: id, Created: created, Notes: j.Notes, Secrets: j.Secrets}
	for i, h := range j.HealthChecks {
		d, err := time.ParseDuration(h.Timeout)
		if err != nil {
			return nil, fmt.Errorf("release manifest: health check %d: timeout: %w", i+1, err)
		}
		m.HealthChecks = append(m.HealthChecks, HealthCheck{Name: h.Name, Command: h.Command, Timeout: d})
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manifest) validate() error {
	if m.Version == 0 {
		return errors.New("release manifest: version 0: versions start at 1")
	}
	if m.Config.IsZero() {
		return errors.New("release manifest: no config tree ID")
	}
	if m.Created.IsZero() || m.Created.Year() < 2000 || m.Created.Year() > 9999 {
		return fmt.Errorf("release manifest: creation time %s out of range", m.Created.UTC().Format(time.RFC3339))
	}
	if len(m.Notes) > maxNotes {
		return fmt.Errorf("release manifest: notes of %d bytes, more than the limit of %d", len(m.Notes), maxNotes)
	}
	if len(m.HealthChecks) > maxHealthChecks {
		return fmt.Errorf("release manifest: %d health checks, more than the limit of %d", len(m.HealthChecks), maxHealthChecks)
	}
	if err := checkSecretBuckets(m.Secrets); err != nil {
		return fmt.Errorf("release manifest: %w", err)
	}
	names := map[string]bool{}
	for i, h := range m.HealthChecks {
		if h.Name == "" || !printable(h.Name) {
			return fmt.Errorf("release manifest: health check %d: a name of printable characters is required", i+1)
		}
		if names[h.Name] {
			return fmt.Errorf("release manifest: health check %q named twice", h.Name)
		}
		names[h.Name] = true
		if len(h.Command) == 0 || h.Command[0] == "" {
			return fmt.Errorf("release manifest: health check %q: no command", h.Name)
		}
		for _, a := range h.Command {
			if len(a) > maxHealthCheckArg || strings.IndexByte(a, 0) >= 0 {
				return fmt.Errorf("release manifest: health check %q: an argument is too long or holds a NUL byte", h.Name)
			}
		}
		if h.Timeout <= 0 || h.Timeout > maxHealthTimeout {
			return fmt.Errorf("release manifest: health check %q: timeout %s is not between 0 and %s", h.Name, h.Timeout, maxHealthTimeout)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
