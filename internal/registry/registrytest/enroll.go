package registrytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/satchelcm/satchel/internal/registry"
)

// usesOf returns the uses left of the token with that ID.
func usesOf(t *testing.T, s registry.Store, id string) int {
	t.Helper()
	tokens, err := s.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Hash == registry.TokenHash(id) {
			return tok.UsesLeft
		}
	}
	t.Fatalf("no token %s", id)
	return 0
}

func enroll(s registry.Store, n registry.Node, token string) (registry.Node, error) {
	return s.Enroll(context.Background(), registry.Enrollment{Node: n, Token: token})
}

func testEnrollWithoutToken(t *testing.T, s registry.Store) {
	got, err := enroll(s, node("web1", "key1", "m1"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := node("web1", "key1", "m1")
	want.TokenLabel = ""
	checkNode(t, got, want)
	checkNode(t, get(t, s, "web1"), want)
}

func testEnrollWithToken(t *testing.T, s registry.Store) {
	create(t, s, token("tok-a", "batch 3", 2, at(60)))
	n := node("web1", "key1", "m1")
	n.TokenLabel = "ignored"
	got, err := enroll(s, n, "tok-a")
	if err != nil {
		t.Fatal(err)
	}
	want := node("web1", "key1", "m1")
	want.State = registry.Approved
	checkNode(t, got, want)
	checkNode(t, get(t, s, "web1"), want)
	if u := usesOf(t, s, "tok-a"); u != 1 {
		t.Errorf("uses left %d, want 1", u)
	}
	// Approved already (a retry): the token is not spent again.
	if _, err := enroll(s, node("web1", "key1", "m1"), "tok-a"); err != nil {
		t.Fatal(err)
	}
	if u := usesOf(t, s, "tok-a"); u != 1 {
		t.Errorf("uses left %d after a retry, want 1", u)
	}
	// A pending node is approved by a token.
	if _, err := enroll(s, node("web2", "key2", "m2"), ""); err != nil {
		t.Fatal(err)
	}
	got, err = enroll(s, node("web2", "key2", "m2"), "tok-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != registry.Approved || got.TokenLabel != "batch 3" {
		t.Errorf("pending node with a token: %s", show(got))
	}
}

func testEnrollRefusals(t *testing.T, s registry.Store) {
	ctx := context.Background()
	create(t, s, token("tok-a", "batch", 5, at(60)), token("tok-old", "old", 5, at(-1)))
	if _, err := enroll(s, node("web1", "key1", "m1"), "tok-a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		n     registry.Node
		token string
		want  error
	}{
		{"same machine ID", node("web2", "key2", "m1"), "tok-a", registry.ErrClone},
		{"same key", node("web3", "key1", "m3"), "tok-a", registry.ErrClone},
		{"name with another key", node("web1", "key4", "m4"), "tok-a", registry.ErrExists},
		{"expired token", node("web5", "key5", "m5"), "tok-old", registry.ErrTokenInvalid},
		{"unknown token", node("web6", "key6", "m6"), "tok-none", registry.ErrTokenInvalid},
	} {
		_, err := enroll(s, tc.n, tc.token)
		wantErr(t, tc.name, err, tc.want)
		if tc.n.Name != "web1" {
			if _, err := s.GetNode(ctx, tc.n.Name); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s: node %s recorded (%v)", tc.name, tc.n.Name, err)
			}
		}
	}
	var ce *registry.CloneError
	if _, err := enroll(s, node("web2", "key2", "m1"), ""); !errors.As(err, &ce) || ce.Other != "web1" || ce.Key {
		t.Errorf("clone by machine ID: %v, want a *CloneError naming web1", err)
	}
	if u := usesOf(t, s, "tok-a"); u != 4 {
		t.Errorf("refused enrollments spent the token: %d uses left, want 4", u)
	}
	// A revoked node is returned as it is.
	if err := s.SetNodeState(ctx, "web1", registry.Revoked, ""); err != nil {
		t.Fatal(err)
	}
	got, err := enroll(s, node("web1", "key1", "m1"), "tok-a")
	if err != nil || got.State != registry.Revoked {
		t.Errorf("revoked node enrolling: %s, %v; want it revoked, no error", show(got), err)
	}
	if u := usesOf(t, s, "tok-a"); u != 4 {
		t.Errorf("a revoked node spent the token: %d uses left, want 4", u)
	}
}

// Sixteen machines cloned from one image enroll at once with a token: one is recorded,
// the others are clones, and the token is spent once.
func testEnrollClonesConcurrently(t *testing.T, s registry.Store) {
	create(t, s, token("tok-a", "batch", 100, at(60)))
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = enroll(s, node(fmt.Sprintf("clone%02d", i), fmt.Sprintf("key%02d", i), "same-image"), "tok-a")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, registry.ErrClone):
			t.Errorf("a clone's enrollment: %v, want ErrClone", err)
		}
	}
	nodes, err := s.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok != 1 || len(nodes) != 1 {
		t.Errorf("%d enrollments succeeded and %d nodes recorded, want 1 and 1", ok, len(nodes))
	}
	if u := usesOf(t, s, "tok-a"); u != 99 {
		t.Errorf("%d uses left, want 99", u)
	}
}
