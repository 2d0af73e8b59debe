package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func testChangeCredentials(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	sess1 := createSession(t, s, u.ID, sessionTTL)
	sess2 := createSession(t, s, u.ID, sessionTTL)
	sess3 := createSession(t, s, u.ID, sessionTTL)
	other, _ := createUser(t, s)
	otherSess := createSession(t, s, other.ID, sessionTTL)

	// A wrong old hash changes nothing.
	wrong := bytes.Clone(u.Credentials.LoginKeyHash)
	wrong[0] ^= 1
	err := s.ChangeCredentials(ctx, u.ID, wrong, newCreds(), sess2.TokenHash, t0.Add(time.Minute))
	wantErr(t, "ChangeCredentials(wrong hash)", err, account.ErrInvalidCredentials)
	err = s.ChangeCredentials(ctx, u.ID, nil, newCreds(), sess2.TokenHash, t0.Add(time.Minute))
	wantErr(t, "ChangeCredentials(nil hash)", err, account.ErrInvalidCredentials)
	diff(t, "user after wrong hash", u, getUser(t, s, u.ID))
	wantSessions(t, s, true, sess1, sess2, sess3)

	// The right one replaces the credentials and keeps only keepSession.
	creds := newCreds()
	now := t0.Add(time.Hour)
	noErr(t, "ChangeCredentials", s.ChangeCredentials(ctx, u.ID, u.Credentials.LoginKeyHash, creds, sess2.TokenHash, now))
	want := *u
	want.Credentials = creds
	want.UpdatedAt = now // EmailVerified stays false: a password change proves no address
	diff(t, "user", &want, getUser(t, s, u.ID))
	wantSessions(t, s, false, sess1, sess3)
	wantSessions(t, s, true, sess2, otherSess)

	// The old hash no longer works; keepSession nil ends every session.
	err = s.ChangeCredentials(ctx, u.ID, u.Credentials.LoginKeyHash, newCreds(), nil, now)
	wantErr(t, "ChangeCredentials(old hash)", err, account.ErrInvalidCredentials)
	noErr(t, "ChangeCredentials(keep nil)", s.ChangeCredentials(ctx, u.ID, creds.LoginKeyHash, newCreds(), nil, now))
	wantSessions(t, s, false, sess2)
	wantSessions(t, s, true, otherSess)
}

func testSessions(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	sess := createSession(t, s, u.ID, sessionTTL)

	// Each use slides the expiry: the session lives its TTL past the latest
	// use. A clock that steps back moves neither.
	latest := sess.LastSeenAt
	for _, now := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(90 * time.Minute)} {
		gotSess, gotUser, err := s.SessionByHash(ctx, sess.TokenHash, now)
		noErr(t, "SessionByHash", err)
		if now.After(latest) {
			latest = now
		}
		want := *sess
		want.LastSeenAt = latest
		want.ExpiresAt = sess.ExpiresAt.Add(latest.Sub(sess.LastSeenAt))
		diff(t, "session", &want, gotSess)
		diff(t, "user", u, gotUser)
		checkUTC(t, "session", gotSess.CreatedAt, gotSess.ExpiresAt, gotSess.LastSeenAt)
	}

	_, _, err := s.SessionByHash(ctx, randBytes(32), t0)
	wantErr(t, "SessionByHash(unknown)", err, account.ErrSessionNotFound)

	// The session follows its user's changes.
	noErr(t, "SetLanguage", s.SetLanguage(ctx, u.ID, "de", t0))
	_, gotUser, err := s.SessionByHash(ctx, sess.TokenHash, t0)
	noErr(t, "SessionByHash", err)
	if gotUser.Language != "de" {
		t.Errorf("user language = %q, want de", gotUser.Language)
	}
}

func testSessionExpiry(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	sess := createSession(t, s, u.ID, time.Hour)

	lastUse := sess.ExpiresAt.Add(-time.Microsecond)
	got, _, err := s.SessionByHash(ctx, sess.TokenHash, lastUse)
	noErr(t, "SessionByHash(last microsecond)", err)
	if want := lastUse.Add(time.Hour).Truncate(time.Microsecond); !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt after use = %v, want %v (TTL past the last use)", got.ExpiresAt, want)
	}
	_, _, err = s.SessionByHash(ctx, sess.TokenHash, got.ExpiresAt)
	wantErr(t, "SessionByHash(at expiry)", err, account.ErrSessionNotFound)
	// The expired session was deleted: even an earlier clock cannot find it.
	_, _, err = s.SessionByHash(ctx, sess.TokenHash, t0)
	wantErr(t, "SessionByHash(after deletion)", err, account.ErrSessionNotFound)
	n, err := s.DeleteSessions(ctx, u.ID, nil)
	noErr(t, "DeleteSessions", err)
	if n != 0 {
		t.Errorf("DeleteSessions after expiry = %d, want 0", n)
	}
}

func testDeleteSession(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	sess1 := createSession(t, s, u.ID, sessionTTL)
	sess2 := createSession(t, s, u.ID, sessionTTL)

	noErr(t, "DeleteSession", s.DeleteSession(ctx, sess1.TokenHash))
	wantSessions(t, s, false, sess1)
	wantSessions(t, s, true, sess2)
	noErr(t, "DeleteSession(again)", s.DeleteSession(ctx, sess1.TokenHash))
	noErr(t, "DeleteSession(unknown)", s.DeleteSession(ctx, randBytes(32)))
	wantSessions(t, s, true, sess2)
}

func testDeleteSessions(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	var sessions []*account.Session
	for range 4 {
		sessions = append(sessions, createSession(t, s, u.ID, sessionTTL))
	}
	other, _ := createUser(t, s)
	otherSess := createSession(t, s, other.ID, sessionTTL)

	tests := []struct {
		name  string
		keep  []byte
		wantN int
	}{
		{"keep one", sessions[1].TokenHash, 3},
		{"keep the same again", sessions[1].TokenHash, 0},
		{"keep an unknown one", randBytes(32), 1},
		{"nothing left", nil, 0},
	}
	for _, tt := range tests {
		n, err := s.DeleteSessions(ctx, u.ID, tt.keep)
		noErr(t, "DeleteSessions("+tt.name+")", err)
		if n != tt.wantN {
			t.Errorf("DeleteSessions(%s) = %d, want %d", tt.name, n, tt.wantN)
		}
	}
	wantSessions(t, s, false, sessions...)
	wantSessions(t, s, true, otherSess)
}

func testDeleteExpired(t *testing.T, s account.Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)                                                 // expires t0+24h
	early := createToken(t, s, u.ID, account.PurposeResetPassword, "", time.Hour) // t0+1h
	exact := createToken(t, s, u.ID, account.PurposeResetPassword, "", 2*time.Hour)
	sessEarly := createSession(t, s, u.ID, time.Hour)
	sessExact := createSession(t, s, u.ID, 2*time.Hour)
	sessLate := createSession(t, s, u.ID, sessionTTL)

	noErr(t, "DeleteExpired", s.DeleteExpired(ctx, t0.Add(2*time.Hour)))

	wantTokens(t, s, false, early, exact)
	wantTokens(t, s, true, verify)
	wantSessions(t, s, false, sessEarly, sessExact)
	wantSessions(t, s, true, sessLate)
	getUser(t, s, u.ID)
}
