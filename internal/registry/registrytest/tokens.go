package registrytest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/satchelcm/satchel/internal/registry"
)

func token(id, label string, uses int, expires time.Time) registry.Token {
	return registry.Token{ID: id, Label: label, UsesLeft: uses, Expires: expires, Created: t0}
}

func create(t *testing.T, s registry.Store, tokens ...registry.Token) {
	t.Helper()
	for _, tok := range tokens {
		if err := s.CreateToken(context.Background(), tok); err != nil {
			t.Fatalf("CreateToken(%q): %v", tok.Label, err)
		}
	}
}

// checkToken fails unless got is want, times compared as instants.
func checkToken(t *testing.T, got, want registry.Token) {
	t.Helper()
	if got.ID != want.ID || got.Hash != want.Hash || got.Label != want.Label || got.UsesLeft != want.UsesLeft ||
		!got.Expires.Equal(want.Expires) || !got.Created.Equal(want.Created) || got.Revoked != want.Revoked {
		t.Errorf("token:\n got %+v\nwant %+v", got, want)
	}
}

// listed is a token as ListTokens returns it: hash, no ID.
func listed(tok registry.Token) registry.Token {
	tok.Hash, tok.ID = registry.TokenHash(tok.ID), ""
	return tok
}

func tokens(t *testing.T, s registry.Store) []registry.Token {
	t.Helper()
	list, err := s.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func testCreateToken(t *testing.T, s registry.Store) {
	ctx := context.Background()
	tok := token("s3cret-0123456789abcdef", "La Rioja batch 3", 100, at(7*24*60))
	create(t, s, tok)
	list := tokens(t, s)
	if len(list) != 1 {
		t.Fatalf("ListTokens = %d tokens, want 1", len(list))
	}
	checkToken(t, list[0], listed(tok))
	if list[0].Hash == "" || list[0].Hash == tok.ID {
		t.Errorf("the listed token's hash is %q", list[0].Hash)
	}

	again := token(tok.ID, "other", 1, time.Time{})
	wantErr(t, "CreateToken of an ID twice", s.CreateToken(ctx, again), registry.ErrExists)
	if err := s.CreateToken(ctx, token("", "no ID", 1, time.Time{})); err == nil {
		t.Error("a token without an ID was created")
	}
	if err := s.CreateToken(ctx, token("no-uses", "no uses", 0, time.Time{})); err == nil {
		t.Error("a token with no uses was created")
	}
	if list := tokens(t, s); len(list) != 1 {
		t.Errorf("ListTokens = %d tokens after refused creations, want 1", len(list))
	}
}

func testUseToken(t *testing.T, s registry.Store) {
	ctx := context.Background()
	tok := token("use-me", "batch", 2, at(60))
	create(t, s, tok)

	got, err := s.UseToken(ctx, "use-me", at(1))
	if err != nil {
		t.Fatal(err)
	}
	want := tok
	want.Hash, want.UsesLeft = registry.TokenHash(tok.ID), 1
	checkToken(t, got, want)

	got, err = s.UseToken(ctx, "use-me", at(59))
	if err != nil {
		t.Fatal(err)
	}
	want.UsesLeft = 0
	checkToken(t, got, want)
	checkToken(t, tokens(t, s)[0], listed(want))

	// A token without an expiry does not expire.
	create(t, s, token("forever", "forever", 1, time.Time{}))
	if _, err := s.UseToken(ctx, "forever", at(100*365*24*60)); err != nil {
		t.Errorf("a token without expiry, a century on: %v", err)
	}
}

// wantRefused fails unless err is a *TokenError for reason.
func wantRefused(t *testing.T, what string, err error, reason registry.TokenReason) {
	t.Helper()
	var te *registry.TokenError
	if !errors.Is(err, registry.ErrTokenInvalid) || !errors.As(err, &te) || te.Reason != reason {
		t.Errorf("%s: got error %v, want ErrTokenInvalid (%s)", what, err, reason)
	}
}

func testUseTokenRefused(t *testing.T, s registry.Store) {
	ctx := context.Background()
	create(t, s,
		token("expiring", "expiring", 5, at(10)),
		token("revoked", "revoked", 5, at(10)),
		token("once", "once", 1, time.Time{}),
	)
	if err := s.RevokeToken(ctx, registry.TokenHash("revoked")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseToken(ctx, "once", at(0)); err != nil {
		t.Fatal(err)
	}
	before := tokens(t, s)

	_, err := s.UseToken(ctx, "expiring", at(10)) // expires at that instant
	wantRefused(t, "an expired token", err, registry.TokenExpired)
	_, err = s.UseToken(ctx, "revoked", at(0))
	wantRefused(t, "a revoked token", err, registry.TokenRevoked)
	_, err = s.UseToken(ctx, "once", at(0))
	wantRefused(t, "a used-up token", err, registry.TokenUsedUp)
	_, err = s.UseToken(ctx, "never-created", at(0))
	wantRefused(t, "an unknown token", err, registry.TokenUnknown)
	// The hash is not the token.
	_, err = s.UseToken(ctx, registry.TokenHash("expiring"), at(0))
	wantRefused(t, "a token's hash", err, registry.TokenUnknown)

	// Refusals spend nothing.
	after := tokens(t, s)
	for i := range before {
		checkToken(t, after[i], before[i])
	}
	if _, err := s.UseToken(ctx, "expiring", at(9)); err != nil {
		t.Errorf("the expiring token before its expiry: %v", err)
	}
}

func testUseTokenConcurrently(t *testing.T, s registry.Store) {
	const uses, tries = 10, 50
	create(t, s, token("warehouse", "warehouse", uses, at(60)))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      int
		usedUp  int
		others  []error
		seenLef = map[int]bool{}
	)
	for range tries {
		wg.Go(func() {
			got, err := s.UseToken(context.Background(), "warehouse", at(1))
			mu.Lock()
			defer mu.Unlock()
			var te *registry.TokenError
			switch {
			case err == nil:
				ok++
				if seenLef[got.UsesLeft] {
					others = append(others, errors.New("two uses left the same count"))
				}
				seenLef[got.UsesLeft] = true
			case errors.As(err, &te) && te.Reason == registry.TokenUsedUp:
				usedUp++
			default:
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if ok != uses || usedUp != tries-uses || len(others) > 0 {
		t.Errorf("%d concurrent uses of a %d-use token: %d admitted, %d used up, other errors %v",
			tries, uses, ok, usedUp, others)
	}
	if left := tokens(t, s)[0].UsesLeft; left != 0 {
		t.Errorf("uses left = %d, want 0", left)
	}
}

func testListTokensByCreation(t *testing.T, s registry.Store) {
	a := token("a", "third", 1, time.Time{})
	a.Created = at(3)
	b := token("b", "first", 1, time.Time{})
	b.Created = at(1)
	c := token("c", "second", 1, time.Time{})
	c.Created = at(2)
	create(t, s, a, b, c)
	list := tokens(t, s)
	var labels []string
	for _, tok := range list {
		labels = append(labels, tok.Label)
	}
	if want := []string{"first", "second", "third"}; !equal(labels, want) {
		t.Errorf("ListTokens = %v, want %v", labels, want)
	}
}

func testRevokeToken(t *testing.T, s registry.Store) {
	ctx := context.Background()
	tok := token("r", "to revoke", 3, time.Time{})
	create(t, s, tok, token("keep", "kept", 3, time.Time{}))
	hash := registry.TokenHash("r")
	if err := s.RevokeToken(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, hash); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	want := listed(tok)
	want.Revoked = true
	checkToken(t, tokens(t, s)[0], want)
	if tokens(t, s)[1].Revoked {
		t.Error("revoking one token revoked another")
	}
	wantErr(t, "RevokeToken of no token", s.RevokeToken(ctx, registry.TokenHash("none")), registry.ErrNotFound)
	// Tokens are named by their hash once created, not by their secret.
	wantErr(t, "RevokeToken by ID", s.RevokeToken(ctx, "keep"), registry.ErrNotFound)
}
