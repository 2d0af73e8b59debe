package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func testPeekToken(t *testing.T, s account.Store) {
	u, _ := createUser(t, s)
	change := createToken(t, s, u.ID, account.PurposeChangeEmail, newEmail(), tokenTTL)

	tests := []struct {
		name    string
		hash    []byte
		purpose account.TokenPurpose
		now     time.Time
		wantErr error
	}{
		{"live", change.TokenHash, account.PurposeChangeEmail, t0, nil},
		{"live again", change.TokenHash, account.PurposeChangeEmail, t0.Add(time.Hour), nil},
		{"before created", change.TokenHash, account.PurposeChangeEmail, t0.Add(-time.Hour), nil},
		{"last microsecond", change.TokenHash, account.PurposeChangeEmail, change.ExpiresAt.Add(-time.Microsecond), nil},
		{"at expiry", change.TokenHash, account.PurposeChangeEmail, change.ExpiresAt, account.ErrTokenExpired},
		{"after expiry", change.TokenHash, account.PurposeChangeEmail, change.ExpiresAt.Add(time.Hour), account.ErrTokenExpired},
		{"wrong purpose", change.TokenHash, account.PurposeVerifyEmail, t0, account.ErrTokenInvalid},
		{"wrong purpose expired", change.TokenHash, account.PurposeResetPassword, change.ExpiresAt, account.ErrTokenInvalid},
		{"unknown", randBytes(32), account.PurposeChangeEmail, t0, account.ErrTokenInvalid},
		{"empty hash", []byte{}, account.PurposeChangeEmail, t0, account.ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.PeekToken(t.Context(), tt.hash, tt.purpose, tt.now)
			if tt.wantErr != nil {
				wantErr(t, "PeekToken", err, tt.wantErr)
				return
			}
			noErr(t, "PeekToken", err)
			diff(t, "token", change, got)
		})
	}
}

func testCreateTokenReplace(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)
	other, _ := createUser(t, s)
	otherReset := createToken(t, s, other.ID, account.PurposeResetPassword, "", time.Hour)
	r1 := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)
	r2 := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour) // replace=false
	wantTokens(t, s, true, r1, r2)

	r3 := newToken(u.ID, account.PurposeResetPassword, "", time.Hour)
	noErr(t, "CreateToken(replace)", s.CreateToken(ctx, r3, true))
	wantTokens(t, s, false, r1, r2)
	wantTokens(t, s, true, r3, verify, otherReset)

	// Replacing when there is nothing to replace is fine too.
	c := newToken(u.ID, account.PurposeChangeEmail, newEmail(), tokenTTL)
	noErr(t, "CreateToken(replace, first)", s.CreateToken(ctx, c, true))
	got, err := s.PeekToken(ctx, c.TokenHash, account.PurposeChangeEmail, t0)
	noErr(t, "PeekToken", err)
	diff(t, "token", c, got)
}

func testVerifyEmail(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, tok := createUser(t, s)
	now := t0.Add(time.Minute)

	got, err := s.VerifyEmail(ctx, tok.TokenHash, now)
	noErr(t, "VerifyEmail", err)
	want := *u
	want.EmailVerified = true
	want.UpdatedAt = now
	diff(t, "returned user", &want, got)
	diff(t, "stored user", &want, getUser(t, s, u.ID))

	// Used up.
	_, err = s.VerifyEmail(ctx, tok.TokenHash, now)
	wantErr(t, "VerifyEmail again", err, account.ErrTokenInvalid)
	wantTokens(t, s, false, tok)
}

func testVerifyEmailErrors(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, tok := createUser(t, s)
	reset := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)

	_, err := s.VerifyEmail(ctx, tok.TokenHash, tok.ExpiresAt)
	wantErr(t, "VerifyEmail(expired)", err, account.ErrTokenExpired)
	_, err = s.VerifyEmail(ctx, reset.TokenHash, t0)
	wantErr(t, "VerifyEmail(reset token)", err, account.ErrTokenInvalid)
	_, err = s.VerifyEmail(ctx, randBytes(32), t0)
	wantErr(t, "VerifyEmail(unknown)", err, account.ErrTokenInvalid)

	// Nothing changed.
	diff(t, "user", u, getUser(t, s, u.ID))
	wantTokens(t, s, true, tok, reset)
}

// testVerifyEmailConcurrent uses one token from several goroutines: exactly
// one may succeed.
func testVerifyEmailConcurrent(t *testing.T, s account.Store) {
	_, tok := createUser(t, s)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.VerifyEmail(t.Context(), tok.TokenHash, t0)
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
		t.Errorf("%d of %d concurrent VerifyEmail calls succeeded, want 1", ok, n)
	}
}

func testChangeEmail(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	newAddr := newEmail()
	tok := createToken(t, s, u.ID, account.PurposeChangeEmail, newAddr, tokenTTL)
	now := t0.Add(time.Minute)

	before, err := s.ChangeEmail(ctx, tok.TokenHash, now)
	noErr(t, "ChangeEmail", err)
	diff(t, "returned user", u, before)

	want := *u
	want.Email = newAddr
	want.EmailVerified = true
	want.UpdatedAt = now
	diff(t, "stored user", &want, getUser(t, s, u.ID))
	got, err := s.UserByEmail(ctx, newAddr)
	noErr(t, "UserByEmail(new)", err)
	diff(t, "user by new address", &want, got)
	_, err = s.UserByEmail(ctx, u.Email)
	wantErr(t, "UserByEmail(old)", err, account.ErrUserNotFound)

	_, err = s.ChangeEmail(ctx, tok.TokenHash, now)
	wantErr(t, "ChangeEmail again", err, account.ErrTokenInvalid)
}

func testChangeEmailTaken(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	holder, _ := createUser(t, s)
	tok := createToken(t, s, u.ID, account.PurposeChangeEmail, holder.Email, tokenTTL)

	_, err := s.ChangeEmail(ctx, tok.TokenHash, t0)
	wantErr(t, "ChangeEmail(taken)", err, account.ErrEmailTaken)
	diff(t, "user", u, getUser(t, s, u.ID))
	diff(t, "holder", holder, getUser(t, s, holder.ID))
	wantTokens(t, s, true, tok)

	// The token stayed usable: once the address is free, it works.
	noErr(t, "DeleteUser(holder)", s.DeleteUser(ctx, holder.ID))
	_, err = s.ChangeEmail(ctx, tok.TokenHash, t0)
	noErr(t, "ChangeEmail(freed)", err)
	if got := getUser(t, s, u.ID).Email; got != holder.Email {
		t.Errorf("email = %q, want %q", got, holder.Email)
	}
}

func testChangeEmailErrors(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)
	tok := createToken(t, s, u.ID, account.PurposeChangeEmail, newEmail(), tokenTTL)

	_, err := s.ChangeEmail(ctx, tok.TokenHash, tok.ExpiresAt.Add(time.Second))
	wantErr(t, "ChangeEmail(expired)", err, account.ErrTokenExpired)
	_, err = s.ChangeEmail(ctx, verify.TokenHash, t0)
	wantErr(t, "ChangeEmail(verify token)", err, account.ErrTokenInvalid)
	_, err = s.ChangeEmail(ctx, randBytes(32), t0)
	wantErr(t, "ChangeEmail(unknown)", err, account.ErrTokenInvalid)

	diff(t, "user", u, getUser(t, s, u.ID))
	wantTokens(t, s, true, tok, verify)
}

func testResetCredentials(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s) // unverified: the reset mail proves the address
	change := createToken(t, s, u.ID, account.PurposeChangeEmail, newEmail(), tokenTTL)
	r1 := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)
	r2 := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)
	sess1 := createSession(t, s, u.ID, sessionTTL)
	sess2 := createSession(t, s, u.ID, sessionTTL)
	other, _ := createUser(t, s)
	otherReset := createToken(t, s, other.ID, account.PurposeResetPassword, "", time.Hour)
	otherSess := createSession(t, s, other.ID, sessionTTL)

	creds := newCreds()
	creds.KDF.MemoryKiB = 19456
	now := t0.Add(time.Minute)
	got, err := s.ResetCredentials(ctx, r1.TokenHash, creds, now)
	noErr(t, "ResetCredentials", err)

	want := *u
	want.Credentials = creds
	want.EmailVerified = true
	want.UpdatedAt = now
	diff(t, "returned user", &want, got)
	diff(t, "stored user", &want, getUser(t, s, u.ID))

	wantSessions(t, s, false, sess1, sess2)
	wantTokens(t, s, false, r1, r2)
	wantTokens(t, s, true, verify, change)
	wantSessions(t, s, true, otherSess)
	wantTokens(t, s, true, otherReset)

	_, err = s.ResetCredentials(ctx, r1.TokenHash, newCreds(), now)
	wantErr(t, "ResetCredentials again", err, account.ErrTokenInvalid)
}

func testResetCredentialsErrors(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)
	reset := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour)
	sess := createSession(t, s, u.ID, sessionTTL)

	_, err := s.ResetCredentials(ctx, reset.TokenHash, newCreds(), reset.ExpiresAt)
	wantErr(t, "ResetCredentials(expired)", err, account.ErrTokenExpired)
	_, err = s.ResetCredentials(ctx, verify.TokenHash, newCreds(), t0)
	wantErr(t, "ResetCredentials(verify token)", err, account.ErrTokenInvalid)
	_, err = s.ResetCredentials(ctx, randBytes(32), newCreds(), t0)
	wantErr(t, "ResetCredentials(unknown)", err, account.ErrTokenInvalid)

	diff(t, "user", u, getUser(t, s, u.ID))
	wantTokens(t, s, true, reset, verify)
	wantSessions(t, s, true, sess)
}
