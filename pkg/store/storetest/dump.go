package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// CheckDump0001 checks that s holds the rows of the stores' released
// schema-0001 dumps (testdata/schema-0001.sql of each store package), after
// s has migrated them to its latest schema: two users, a verify and a
// change token, a session and the server secret "fake-salt". Both dumps
// hold the same rows, described here once.
func CheckDump0001(t *testing.T, s account.Store) {
	t.Helper()
	ctx := t.Context()
	b := func(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
	kdf := account.KDFParams{Algorithm: "argon2id", Version: 19, MemoryKiB: 65536, Iterations: 3, Parallelism: 1}
	alice := &account.User{
		ID: "u-alice", Email: "alice@example.com", EmailVerified: true, Language: "de",
		Credentials: account.Credentials{Salt: b(0xa1, 16), KDF: kdf, LoginKeyHash: b(0xa2, 32),
			BoxPublicKey: b(0xa3, 32), SignPublicKey: b(0xa4, 32), EncryptedPrivateKeys: b(0xa5, 104)},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
	}
	bob := &account.User{
		ID: "u-bob", Email: "bob@example.com", Language: "en",
		Credentials: account.Credentials{Salt: b(0xb1, 16), KDF: kdf, LoginKeyHash: b(0xb2, 32),
			BoxPublicKey: b(0xb3, 32), SignPublicKey: b(0xb4, 32), EncryptedPrivateKeys: b(0xb5, 104)},
		CreatedAt: t0, UpdatedAt: t0,
	}
	for _, want := range []*account.User{alice, bob} {
		got, err := s.UserByEmail(ctx, want.Email)
		noErr(t, "UserByEmail", err)
		diff(t, "user "+want.ID, want, got)
	}

	tokens := []*account.Token{
		{TokenHash: b(0xc1, 32), UserID: "u-bob", Purpose: account.PurposeVerifyEmail,
			CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)},
		{TokenHash: b(0xc2, 32), UserID: "u-alice", Purpose: account.PurposeChangeEmail, NewEmail: "alice@example.org",
			CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)},
	}
	for _, want := range tokens {
		got, err := s.PeekToken(ctx, want.TokenHash, want.Purpose, t0)
		noErr(t, "PeekToken", err)
		diff(t, "token "+string(want.Purpose), want, got)
	}

	// The dumped session was last seen an hour after t0; using it now
	// slides its expiry by the hour since.
	lastSeen0001 := t0.Add(time.Hour)
	now := t0.Add(2 * time.Hour)
	sess, u, err := s.SessionByHash(ctx, b(0xd1, 32), now)
	noErr(t, "SessionByHash", err)
	diff(t, "session", &account.Session{TokenHash: b(0xd1, 32), UserID: "u-alice", CreatedAt: t0,
		ExpiresAt: t0.Add(30*24*time.Hour + now.Sub(lastSeen0001)), LastSeenAt: now}, sess)
	diff(t, "session user", alice, u)

	secret, err := s.ServerSecret(ctx, "fake-salt", 32)
	noErr(t, "ServerSecret", err)
	if !bytes.Equal(secret, b(0xe1, 32)) {
		t.Errorf("server secret = %x, want e1e1...", secret)
	}

	// The constraints came along: the e-mail is still unique.
	dup := newUser(alice.Email)
	wantErr(t, "CreateUser(taken address)", s.CreateUser(ctx, dup, nil), account.ErrEmailTaken)
}
