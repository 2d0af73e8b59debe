package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func testCreateUser(t *testing.T, s account.Store) {
	ctx := t.Context()
	u := newUser(newEmail())
	// Times in another zone come back as the same instant in UTC.
	berlin := time.FixedZone("CET", 3600)
	u.CreatedAt = t0.In(berlin)
	u.UpdatedAt = t0.Add(time.Second).In(berlin)
	u.Language = "fr"
	u.Credentials.KDF = account.KDFParams{
		Algorithm: "argon2id", Version: 19, MemoryKiB: 1 << 20, Iterations: 10, Parallelism: 8,
	}
	tok := newToken(u.ID, account.PurposeVerifyEmail, "", tokenTTL)
	noErr(t, "CreateUser", s.CreateUser(ctx, u, tok))

	byID, err := s.UserByID(ctx, u.ID)
	noErr(t, "UserByID", err)
	diff(t, "UserByID", u, byID)
	checkUTC(t, "UserByID", byID.CreatedAt, byID.UpdatedAt)

	byEmail, err := s.UserByEmail(ctx, u.Email)
	noErr(t, "UserByEmail", err)
	diff(t, "UserByEmail", u, byEmail)

	got, err := s.PeekToken(ctx, tok.TokenHash, account.PurposeVerifyEmail, t0)
	noErr(t, "PeekToken", err)
	diff(t, "token", tok, got)
	checkUTC(t, "PeekToken", got.CreatedAt, got.ExpiresAt)
}

func testCreateUserNilToken(t *testing.T, s account.Store) {
	u := newUser(newEmail())
	noErr(t, "CreateUser", s.CreateUser(t.Context(), u, nil))
	diff(t, "user", u, getUser(t, s, u.ID))
}

func testCreateUserEmailTaken(t *testing.T, s account.Store) {
	ctx := t.Context()
	u1, tok1 := createUser(t, s)

	u2 := newUser(u1.Email)
	tok2 := newToken(u2.ID, account.PurposeVerifyEmail, "", tokenTTL)
	wantErr(t, "CreateUser", s.CreateUser(ctx, u2, tok2), account.ErrEmailTaken)

	// Nothing of the second attempt was written, not even its token.
	_, err := s.UserByID(ctx, u2.ID)
	wantErr(t, "UserByID(second)", err, account.ErrUserNotFound)
	wantTokens(t, s, false, tok2)
	// The first is untouched.
	diff(t, "first user", u1, getUser(t, s, u1.ID))
	wantTokens(t, s, true, tok1)
}

func testCreateUserDuplicateID(t *testing.T, s account.Store) {
	ctx := t.Context()
	u1, _ := createUser(t, s)

	u2 := newUser(newEmail())
	u2.ID = u1.ID
	tok2 := newToken(u2.ID, account.PurposeVerifyEmail, "", tokenTTL)
	err := s.CreateUser(ctx, u2, tok2)
	if err == nil || errors.Is(err, account.ErrEmailTaken) {
		t.Errorf("CreateUser with a taken id: error %v, want an internal error", err)
	}
	_, err = s.UserByEmail(ctx, u2.Email)
	wantErr(t, "UserByEmail(second)", err, account.ErrUserNotFound)
	wantTokens(t, s, false, tok2)
	diff(t, "first user", u1, getUser(t, s, u1.ID))
}

// testNotFound checks ErrUserNotFound from every method that takes a user.
func testNotFound(t *testing.T, s account.Store) {
	ctx := t.Context()
	const id = "u-missing"
	tests := []struct {
		name string
		call func() error
	}{
		{"UserByID", func() error { _, err := s.UserByID(ctx, id); return err }},
		{"UserByEmail", func() error { _, err := s.UserByEmail(ctx, "missing@example.com"); return err }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, id) }},
		{"SetLanguage", func() error { return s.SetLanguage(ctx, id, "de", t0) }},
		{"ChangeCredentials", func() error {
			return s.ChangeCredentials(ctx, id, randBytes(32), newCreds(), nil, t0)
		}},
		{"CreateSession", func() error {
			return s.CreateSession(ctx, &account.Session{TokenHash: randBytes(32), UserID: id,
				CreatedAt: t0, ExpiresAt: t0.Add(sessionTTL), LastSeenAt: t0})
		}},
		{"CreateToken", func() error {
			return s.CreateToken(ctx, newToken(id, account.PurposeResetPassword, "", time.Hour), true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.call(), account.ErrUserNotFound)
		})
	}
	n, err := s.DeleteSessions(ctx, id, nil)
	if err != nil || n != 0 {
		t.Errorf("DeleteSessions(missing user) = %d, %v; want 0, nil", n, err)
	}
}

func testDeleteUser(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)
	reset := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)
	change := createToken(t, s, u.ID, account.PurposeChangeEmail, newEmail(), tokenTTL)
	sess1 := createSession(t, s, u.ID, sessionTTL)
	sess2 := createSession(t, s, u.ID, sessionTTL)
	other, otherTok := createUser(t, s)
	otherSess := createSession(t, s, other.ID, sessionTTL)

	noErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID))

	_, err := s.UserByID(ctx, u.ID)
	wantErr(t, "UserByID", err, account.ErrUserNotFound)
	_, err = s.UserByEmail(ctx, u.Email)
	wantErr(t, "UserByEmail", err, account.ErrUserNotFound)
	wantTokens(t, s, false, verify, reset, change)
	wantSessions(t, s, false, sess1, sess2)
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, u.ID), account.ErrUserNotFound)

	// Other users keep everything.
	wantTokens(t, s, true, otherTok)
	wantSessions(t, s, true, otherSess)
	getUser(t, s, other.ID)

	// The address is free again.
	again := newUser(u.Email)
	noErr(t, "CreateUser with the freed address", s.CreateUser(ctx, again, nil))
}

func testSetLanguage(t *testing.T, s account.Store) {
	u, _ := createUser(t, s)
	now := t0.Add(time.Hour)
	noErr(t, "SetLanguage", s.SetLanguage(t.Context(), u.ID, "de", now))
	want := *u
	want.Language = "de"
	want.UpdatedAt = now
	diff(t, "user", &want, getUser(t, s, u.ID))
}
