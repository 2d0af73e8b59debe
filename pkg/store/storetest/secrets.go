package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func testServerSecret(t *testing.T, s account.Store) {
	ctx := t.Context()
	a, err := s.ServerSecret(ctx, "a", 32)
	noErr(t, "ServerSecret(a)", err)
	if len(a) != 32 || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("ServerSecret(a, 32) = %x, want 32 random bytes", a)
	}
	again, err := s.ServerSecret(ctx, "a", 32)
	noErr(t, "ServerSecret(a) again", err)
	if !bytes.Equal(a, again) {
		t.Errorf("ServerSecret(a) changed: %x, then %x", a, again)
	}
	b, err := s.ServerSecret(ctx, "b", 64)
	noErr(t, "ServerSecret(b)", err)
	if len(b) != 64 || bytes.Equal(a, b[:32]) {
		t.Errorf("ServerSecret(b, 64) = %x, want 64 bytes of its own", b)
	}

	// A size that does not match the stored secret is an error, never a
	// silently shorter key; so is a size that makes no sense.
	if got, err := s.ServerSecret(ctx, "a", 16); err == nil {
		t.Errorf("ServerSecret(a, 16) = %x, want an error (stored with 32 bytes)", got)
	}
	for _, size := range []int{0, -1} {
		if got, err := s.ServerSecret(ctx, "c", size); err == nil {
			t.Errorf("ServerSecret(c, %d) = %x, want an error", size, got)
		}
	}
}

// testServerSecretConcurrent makes the first calls for one name from several
// goroutines: they must all get the same value.
func testServerSecretConcurrent(t *testing.T, s account.Store) {
	checkSecretsAgree(t, []account.Store{s}, 8)
}

// checkSecretsAgree calls ServerSecret for a new name n times concurrently,
// spread over stores, and fails t unless every call returns the same bytes.
func checkSecretsAgree(t *testing.T, stores []account.Store, n int) []byte {
	t.Helper()
	name := "concurrent-" + randHex()
	values := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			values[i], errs[i] = stores[i%len(stores)].ServerSecret(t.Context(), name, 32)
		})
	}
	wg.Wait()
	noErr(t, "ServerSecret", errors.Join(errs...))
	for i, v := range values {
		if !bytes.Equal(v, values[0]) {
			t.Errorf("concurrent ServerSecret %d = %x, call 0 got %x", i, v, values[0])
		}
	}
	return values[0]
}

// testCanceledContext checks that a canceled context ends a call with an
// error rather than being ignored or reported as a domain error.
func testCanceledContext(t *testing.T, s account.Store) {
	u, _ := createUser(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.UserByID(ctx, u.ID)
	if err == nil || account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("UserByID(canceled) error = %v, want an internal error", err)
	}
	err = s.SetLanguage(ctx, u.ID, "de", t0)
	if err == nil || account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("SetLanguage(canceled) error = %v, want an internal error", err)
	}
	diff(t, "user", u, getUser(t, s, u.ID))
}
