package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// OpenFunc opens a new store on one database. It may be called several
// times, also concurrently; the suite closes what it opens.
type OpenFunc func(ctx context.Context) (account.Store, error)

// RunShared runs the tests that need more than one store on the same
// database: a store reopened after Close (a restart) and several stores
// open at once (several relay nodes, or a second process). newDB must
// return an OpenFunc for a new, empty database (nothing opened yet: the
// first Open migrates it).
func RunShared(t *testing.T, newDB func(t *testing.T) OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open OpenFunc)
	}{
		{"ConcurrentOpen", testConcurrentOpen},
		{"Reopen", testReopen},
		{"TwoStores", testTwoStores},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDB(t))
		})
	}
}

// mustOpen opens a store and closes it at cleanup.
func mustOpen(t *testing.T, open OpenFunc) account.Store {
	t.Helper()
	s, err := open(t.Context())
	noErr(t, "open", err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testConcurrentOpen opens a new database from several goroutines at once,
// as relay nodes starting together do: the migration must run once and
// every open must succeed.
func testConcurrentOpen(t *testing.T, open OpenFunc) {
	const n = 4
	stores := make([]account.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = open(t.Context()) })
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	noErr(t, "concurrent open", errors.Join(errs...))

	u, _ := createUser(t, stores[0])
	for i, s := range stores {
		got, err := s.UserByID(t.Context(), u.ID)
		noErr(t, "UserByID", err)
		diff(t, fmt.Sprintf("user from store %d", i), u, got)
	}
}

// testReopen checks that everything, the server secrets included, survives
// closing the store and opening the database again.
func testReopen(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s1, err := open(ctx)
	noErr(t, "open", err)
	u, tok := createUser(t, s1)
	sess := createSession(t, s1, u.ID, sessionTTL)
	secret, err := s1.ServerSecret(ctx, "fake-salt", 32)
	noErr(t, "ServerSecret", err)
	noErr(t, "Close", s1.Close())

	s2 := mustOpen(t, open)
	diff(t, "user after reopen", u, getUser(t, s2, u.ID))
	wantTokens(t, s2, true, tok)
	wantSessions(t, s2, true, sess)
	again, err := s2.ServerSecret(ctx, "fake-salt", 32)
	noErr(t, "ServerSecret after reopen", err)
	if !bytes.Equal(secret, again) {
		t.Errorf("ServerSecret after reopen = %x, want %x", again, secret)
	}
}

// testTwoStores uses two stores on one database at the same time.
func testTwoStores(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s1, s2 := mustOpen(t, open), mustOpen(t, open)
	stores := []account.Store{s1, s2}

	checkSecretsAgree(t, stores, 8)

	u, tok := createUser(t, s1)
	diff(t, "user seen by the other store", u, getUser(t, s2, u.ID))
	dup := newUser(u.Email)
	wantErr(t, "CreateUser on the other store", s2.CreateUser(ctx, dup, nil), account.ErrEmailTaken)

	// One token used through both stores at once: exactly one use wins.
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = stores[i%2].VerifyEmail(ctx, tok.TokenHash, t0.Add(time.Minute))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, account.ErrTokenInvalid):
			t.Errorf("VerifyEmail: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d VerifyEmail calls over two stores succeeded, want 1", ok, n)
	}
	if !getUser(t, s2, u.ID).EmailVerified {
		t.Error("user not verified")
	}
}
