package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchelcm/satchel/internal/atomicfile"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/store"
)

// The layout of the agent's state directory.
const (
	trustDirName    = "trust"      // the node's TUF trust (package release): root, metadata, highest release
	storeDirName    = "store"      // the content store: config trees and content libraries
	releasesDirName = "releases"   // releases/N/: release N's config repository, checked out
	spoolDirName    = "spool"      // reports waiting to be carried to the office
	backupsDirName  = "backups"    // what runs replaced (package backup), as satchel apply keeps it
	catalogsDirName = "catalogs"   // compiled catalogs (package catcache)
	stateFileName   = "agent.json" // State
	runLockName     = "run.lock"   // shared with satchel apply: one run at a time
	agentLockName   = "agent.lock" // one agent per state directory
)

// State is what the agent remembers between cycles and reboots (agent.json in the state
// directory, replaced atomically after every cycle).
type State struct {
	// Good is the last good release: applied without a failure and healthy. Every cycle
	// re-applies it when nothing newer is to be had.
	Good *Release `json:"good,omitempty"`
	// FailedRelease is the highest release that failed and was rolled back: it and any
	// older one are never tried again; a newer one is.
	FailedRelease uint64 `json:"failed_release,omitempty"`
	// Failures counts the cycles in a row that ended in an error (for the back-off).
	Failures int `json:"failures"`
	// LastRun describes the last cycle; NextRun is when the next one is due.
	LastRun *RunInfo  `json:"last_run,omitempty"`
	NextRun time.Time `json:"next_run,omitzero"`
	// LastError is the last cycle's error, kept until a cycle succeeds.
	LastError string `json:"last_error,omitempty"`
	// Attempt is set while a newer release is being applied and checked (saved before its
	// run starts), and cleared once the release is good or rolled back. Found set and not
	// Interrupted at the start of a cycle, it means the agent died during the attempt (a
	// crash, a power cut, a kill, or the release itself rebooting the machine): the release
	// is then rolled back as failed.
	Attempt *Attempt `json:"attempt,omitempty"`
	// ReturnsSeq numbers the returns the node writes onto sticks (package bundle): the
	// office takes facts only from returns newer than the last it collected.
	ReturnsSeq uint64 `json:"returns_seq,omitempty"`
	// FactsSeq numbers the facts the node sends, over the network or on a stick: the
	// office keeps the newest, whichever way reaches it first.
	FactsSeq uint64 `json:"facts_seq,omitempty"`
	// Bundle is the last bundle a stick brought (its ID), imported or refused: a stick
	// left in is not imported again at every poll.
	Bundle string `json:"bundle,omitempty"`
}

// Attempt is a release being applied.
type Attempt struct {
	Version uint64    `json:"version"`
	Started time.Time `json:"started"`
	// BackupMark is the backup store's mark (backup.Store.Mark) before the attempt's first
	// run: what was saved after it is what a rollback puts back.
	BackupMark string `json:"backup_mark"`
	// Interrupted: the agent was stopped (SIGTERM) during the attempt, finishing the
	// resource in flight; the release is tried again, keeping the mark.
	Interrupted bool `json:"interrupted,omitempty"`
	// Deaths counts the times the agent died during the attempt. The first is forgiven
	// (a stop that outlasted the service manager's patience ends in SIGKILL): the release
	// is tried again. The second rolls it back.
	Deaths int `json:"deaths,omitempty"`
	// Rollback is set once a rollback of the attempt has begun (saved before it changes
	// anything), so that a death during the rollback is followed by the same rollback.
	Rollback *RollbackPlan `json:"rollback,omitempty"`
}

// RollbackPlan is what a rollback undoes, fixed before it starts.
type RollbackPlan struct {
	Cause string `json:"cause"`
	// UntilMark is the backup store's mark when the rollback began: the backups between
	// Attempt.BackupMark and it are the failed release's; later ones are the rollback's own.
	UntilMark string `json:"until_mark"`
	// Created lists the files and links the failed run created, to be removed.
	Created []string `json:"created,omitempty"`
}

// Release is a release as the node keeps it: what it needs to apply it again without any
// repository in reach.
type Release struct {
	Version      uint64                `json:"version"`
	Config       string                `json:"config"` // the config tree's ID
	Created      time.Time             `json:"created"`
	Notes        string                `json:"notes,omitempty"`
	HealthChecks []release.HealthCheck `json:"health_checks,omitempty"`
	// Content lists the trees the release's catalog mirrors (tree resources): the bases
	// of the next release's deltas.
	Content []string `json:"content,omitempty"`
	// Trees are the same trees by the address of the tree resource that mirrors them:
	// reported (CycleReport.Holds), so that the office builds a bundle's deltas from
	// them.
	Trees   map[string]string `json:"trees,omitempty"`
	Applied time.Time         `json:"applied,omitzero"`
	// Secrets are the hashes of the release's secret index files (release.Manifest).
	Secrets []string `json:"secrets,omitempty"`
}

// RunInfo summarizes one cycle.
type RunInfo struct {
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    Outcome   `json:"outcome"`
	Release    uint64    `json:"release,omitempty"` // the release in place at the end
	Attempted  uint64    `json:"attempted,omitempty"`
	Changed    int       `json:"changed"`
	Failed     int       `json:"failed"`
	Error      string    `json:"error,omitempty"`
	Report     string    `json:"report,omitempty"` // its name in the spool
}

// releaseOf converts a verified manifest.
func releaseOf(m *release.Manifest) *Release {
	return &Release{Version: m.Version, Config: m.Config.String(), Created: m.Created, Notes: m.Notes, HealthChecks: m.HealthChecks, Secrets: m.Secrets}
}

// configID returns the release's config tree ID.
func (r *Release) configID() (store.ID, error) {
	id, err := store.ParseID(r.Config)
	if err != nil {
		return store.ID{}, fmt.Errorf("its config tree: %w", err)
	}
	return id, nil
}

// contentHave returns the release's content trees with the one mirrored at address first:
// the base a delta to that address's new tree most likely starts from.
func (r *Release) contentHave(address string) []store.ID {
	ids := r.contentIDs()
	if r == nil {
		return ids
	}
	if id, err := store.ParseID(r.Trees[address]); err == nil {
		if i := slices.Index(ids, id); i > 0 {
			ids[0], ids[i] = ids[i], ids[0]
		}
	}
	return ids
}

// contentIDs returns the release's content trees (those that parse).
func (r *Release) contentIDs() []store.ID {
	if r == nil {
		return nil
	}
	var ids []store.ID
	for _, s := range r.Content {
		if id, err := store.ParseID(s); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// ReadState reads the agent's state from the state directory dir; a directory without one
// gives the zero State.
func ReadState(dir string) (*State, error) {
	p := filepath.Join(dir, stateFileName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("agent state %s is damaged: %v (remove it to start over: the node then re-applies the newest release it can fetch)", p, err)
	}
	return &st, nil
}

// writeState replaces the state file atomically.
func writeState(dir string, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, stateFileName), 0o600, append(data, '\n')); err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	return nil
}
