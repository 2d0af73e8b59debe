// Package storetest is the conformance suite for account.Store. Run checks
// every method and every documented error against a real store, and
// RunShared checks what needs two stores on one database (a restart, two
// relay nodes). pkg/store/sqlite and pkg/store/postgres both run them from
// their tests, so the two implementations cannot drift apart.
//
// It is test support, imported only by tests. It is not a fake store and
// names no database driver: the caller opens the store.
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// t0 is the suite's "now". Its nanoseconds check that stores keep times to
// the microsecond (PostgreSQL's precision) and compare them consistently.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 891_234_567, time.UTC)

// Lifetimes used by the fixtures.
const (
	tokenTTL   = 24 * time.Hour
	sessionTTL = 30 * 24 * time.Hour
)

// Run runs the conformance suite. newStore must return a new, empty store
// of its own for every call (a new SQLite file, a new PostgreSQL schema) and
// close it at the test's cleanup; the subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) account.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s account.Store)
	}{
		{"CreateUser", testCreateUser},
		{"CreateUserNilToken", testCreateUserNilToken},
		{"CreateUserEmailTaken", testCreateUserEmailTaken},
		{"CreateUserDuplicateID", testCreateUserDuplicateID},
		{"NotFound", testNotFound},
		{"DeleteUser", testDeleteUser},
		{"SetLanguage", testSetLanguage},
		{"PeekToken", testPeekToken},
		{"CreateTokenReplace", testCreateTokenReplace},
		{"VerifyEmail", testVerifyEmail},
		{"VerifyEmailErrors", testVerifyEmailErrors},
		{"VerifyEmailConcurrent", testVerifyEmailConcurrent},
		{"ChangeEmail", testChangeEmail},
		{"ChangeEmailTaken", testChangeEmailTaken},
		{"ChangeEmailErrors", testChangeEmailErrors},
		{"ResetCredentials", testResetCredentials},
		{"ResetCredentialsErrors", testResetCredentialsErrors},
		{"ChangeCredentials", testChangeCredentials},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"DeleteSession", testDeleteSession},
		{"DeleteSessions", testDeleteSessions},
		{"ServerSecret", testServerSecret},
		{"ServerSecretConcurrent", testServerSecretConcurrent},
		{"DeleteExpired", testDeleteExpired},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// timeEq compares times to the microsecond, the precision both stores keep.
var timeEq = cmp.Comparer(func(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
})

// diff fails t if got differs from want (times to the microsecond).
func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, timeEq); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// wantErr fails t unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// noErr stops t on an unexpected error.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkUTC fails t for every time not in UTC.
func checkUTC(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("%s: time %d (%v) is in %v, want UTC", what, i, tm, tm.Location())
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randHex() string { return hex.EncodeToString(randBytes(6)) }

// newEmail returns a fresh, normalised address.
func newEmail() string { return "user-" + randHex() + "@example.com" }

// newCreds returns random credentials of the right sizes.
func newCreds() account.Credentials {
	return account.Credentials{
		Salt: randBytes(account.SaltSize),
		KDF: account.KDFParams{
			Algorithm: "argon2id", Version: 19, MemoryKiB: 65536, Iterations: 3, Parallelism: 1,
		},
		LoginKeyHash:         randBytes(account.LoginKeyHashSize),
		BoxPublicKey:         randBytes(account.PublicKeySize),
		SignPublicKey:        randBytes(account.PublicKeySize),
		EncryptedPrivateKeys: randBytes(account.EncryptedPrivateKeysSize),
	}
}

// newUser returns an unverified user that is not stored yet.
func newUser(email string) *account.User {
	return &account.User{
		ID:          "u-" + randHex(),
		Email:       email,
		Language:    "en",
		Credentials: newCreds(),
		CreatedAt:   t0,
		UpdatedAt:   t0,
	}
}

// newToken returns a token of user that is not stored yet, live from t0
// for ttl.
func newToken(userID string, purpose account.TokenPurpose, newEmail string, ttl time.Duration) *account.Token {
	return &account.Token{
		TokenHash: randBytes(32),
		UserID:    userID,
		Purpose:   purpose,
		NewEmail:  newEmail,
		CreatedAt: t0,
		ExpiresAt: t0.Add(ttl),
	}
}

// createUser stores a new unverified user with a verify_email token.
func createUser(t *testing.T, s account.Store) (*account.User, *account.Token) {
	t.Helper()
	u := newUser(newEmail())
	tok := newToken(u.ID, account.PurposeVerifyEmail, "", tokenTTL)
	noErr(t, "CreateUser", s.CreateUser(t.Context(), u, tok))
	return u, tok
}

// createToken stores a new token live from t0 for ttl.
func createToken(t *testing.T, s account.Store, userID string, purpose account.TokenPurpose, newEmail string, ttl time.Duration) *account.Token {
	t.Helper()
	tok := newToken(userID, purpose, newEmail, ttl)
	noErr(t, "CreateToken", s.CreateToken(t.Context(), tok, false))
	return tok
}

// createSession stores a new session live from t0 for ttl.
func createSession(t *testing.T, s account.Store, userID string, ttl time.Duration) *account.Session {
	t.Helper()
	sess := &account.Session{
		TokenHash:  randBytes(32),
		UserID:     userID,
		CreatedAt:  t0,
		ExpiresAt:  t0.Add(ttl),
		LastSeenAt: t0,
	}
	noErr(t, "CreateSession", s.CreateSession(t.Context(), sess))
	return sess
}

// getUser reads user id, which must exist.
func getUser(t *testing.T, s account.Store, id string) *account.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	noErr(t, "UserByID", err)
	return u
}

// tokenLive reports whether the token is stored (peeked at t0).
func tokenLive(t *testing.T, s account.Store, tok *account.Token) bool {
	t.Helper()
	_, err := s.PeekToken(t.Context(), tok.TokenHash, tok.Purpose, t0)
	if err != nil && !errors.Is(err, account.ErrTokenInvalid) {
		t.Fatalf("PeekToken: %v", err)
	}
	return err == nil
}

// sessionLive reports whether the session is stored (looked up at t0,
// which moves its LastSeenAt there).
func sessionLive(t *testing.T, s account.Store, sess *account.Session) bool {
	t.Helper()
	_, _, err := s.SessionByHash(t.Context(), sess.TokenHash, t0)
	if err != nil && !errors.Is(err, account.ErrSessionNotFound) {
		t.Fatalf("SessionByHash: %v", err)
	}
	return err == nil
}

// wantTokens checks which tokens are stored.
func wantTokens(t *testing.T, s account.Store, live bool, toks ...*account.Token) {
	t.Helper()
	for i, tok := range toks {
		if got := tokenLive(t, s, tok); got != live {
			t.Errorf("token %d (%s): stored = %v, want %v", i, tok.Purpose, got, live)
		}
	}
}

// wantSessions checks which sessions are stored.
func wantSessions(t *testing.T, s account.Store, live bool, sessions ...*account.Session) {
	t.Helper()
	for i, sess := range sessions {
		if got := sessionLive(t, s, sess); got != live {
			t.Errorf("session %d: stored = %v, want %v", i, got, live)
		}
	}
}
