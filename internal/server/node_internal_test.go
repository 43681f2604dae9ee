package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

// The server's own troubles opening a repository file are 500s (the agent retries), not
// 404s (it gives up). The faults cannot be caused here (the tests run as root, with
// descriptors to spare), so the classification is checked on the errors os.Root returns.
func TestServerFault(t *testing.T) {
	open := func(err error) error {
		return fmt.Errorf("wrapped: %w", &fs.PathError{Op: "openat", Path: "metadata/1.root.json", Err: err})
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{open(syscall.EACCES), true},
		{open(syscall.EIO), true},
		{open(syscall.EMFILE), true},
		{open(syscall.ENFILE), true},
		{open(syscall.ENOENT), false},
		{open(syscall.ENOTDIR), false},
		{open(syscall.EINVAL), false},
		{open(errors.New("path escapes from parent")), false},
	} {
		if got := serverFault(tc.err); got != tc.want {
			t.Errorf("serverFault(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The hourly sweep records how many approved nodes run each release today.
func TestRecordReleases(t *testing.T) {
	s, err := Open(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	for i, name := range []string{"a", "b", "c", "d"} {
		n := registry.Node{Name: name, State: registry.Pending, KeyFingerprint: name, Enrolled: now, LastSeen: now}
		if err := s.store.PutPendingNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if name != "d" { // d stays pending
			if err := s.store.SetNodeState(ctx, name, registry.Approved, ""); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.store.PutReport(ctx, registry.Report{Node: name, ID: "r", Received: now, Release: uint64(1 + i%2)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.recordReleases(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.store.ReleaseHistory(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Release != 1 || got[0].Nodes != 2 || got[1].Release != 2 || got[1].Nodes != 1 {
		t.Errorf("recorded %+v, want release 1: 2 nodes, release 2: 1 (the pending node not counted)", got)
	}
}
