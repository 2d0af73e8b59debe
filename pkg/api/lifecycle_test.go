package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// TestLifecycle walks one account through every flow over HTTP, with the
// client side done by pkg/zkcrypto.
func TestLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		const addr = "alice@example.org"
		alice := newClient(t, "  Alice@Example.ORG ", "first password")

		// Before sign-up the salt is a fake one.
		var fake saltResponse
		e.do("POST", "/api/v1/auth/salt", emailRequest{Email: addr}).want(t, 200).decode(t, &fake)

		// Sign up: a link is mailed to the normalised address.
		r := e.do("POST", "/api/v1/auth/register", alice.registerRequest()).want(t, http.StatusAccepted)
		if got := string(r.body); got != `{"status":"check_email"}`+"\n" {
			t.Errorf("register body %q", got)
		}
		alice.email = addr
		m := e.mail.last(t, addr, account.MailVerifyEmail)
		if !strings.HasPrefix(m.Link, e.baseURL+"/verify?token=") || m.Language != "en" {
			t.Errorf("verify mail %+v", m)
		}
		verifyToken := linkToken(t, m.Link)

		// Not verified yet: the right key says so, a wrong key does not.
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: addr, LoginKey: alice.loginKey()}).
			wantError(t, http.StatusForbidden, account.CodeEmailNotVerified)
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: addr, LoginKey: make([]byte, 32)}).
			wantError(t, http.StatusUnauthorized, account.CodeInvalidCredentials)

		var vr verifyResponse
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: verifyToken}).want(t, 200).decode(t, &vr)
		if diff := cmp.Diff(verifyResponse{Status: "verified", Email: addr, Purpose: account.PurposeVerifyEmail}, vr); diff != "" {
			t.Errorf("verify (-want +got):\n%s", diff)
		}
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: verifyToken}).wantError(t, 400, account.CodeTokenInvalid)

		// The salt is now the account's.
		var sr saltResponse
		e.do("POST", "/api/v1/auth/salt", emailRequest{Email: addr}).want(t, 200).decode(t, &sr)
		if !bytes.Equal(sr.Salt, alice.salt) || sr.KDF != alice.kdf {
			t.Errorf("salt after sign-up = %x %+v, want the account's", sr.Salt, sr.KDF)
		}

		// Log in (twice: two sessions).
		var lr loginResponse
		e.login(t, alice).decode(t, &lr)
		if lr.User.Email != addr || !lr.User.Verified || lr.User.Language != "en" || lr.User.KDF != alice.kdf || lr.User.ID == "" {
			t.Errorf("login user %+v", lr.User)
		}
		if want := e.clock.Now().Add(30 * 24 * time.Hour); !lr.ExpiresAt.Equal(want) {
			t.Errorf("expires_at %v, want %v", lr.ExpiresAt, want)
		}
		first := alice.token
		e.login(t, alice)
		second := alice.token

		var me userJSON
		e.do("GET", "/api/v1/me", nil, bearer(first)).want(t, 200).decode(t, &me)
		if diff := cmp.Diff(lr.User, me); diff != "" {
			t.Errorf("me (-login +me):\n%s", diff)
		}
		checkKeys(t, e, first, alice)

		// Password change: wrong current key, then right; the other
		// session dies, this one lives.
		alice2 := *alice
		alice2.setPassword(t, "second password")
		pw := passwordRequest{LoginKey: make([]byte, 32), Salt: alice2.salt, KDF: alice2.kdf, NewLoginKey: alice2.loginKey(), EncryptedPrivateKeys: alice2.sealed}
		e.do("POST", "/api/v1/me/password", pw, bearer(first)).wantError(t, 401, account.CodeInvalidCredentials)
		e.do("GET", "/api/v1/me", nil, bearer(second)).want(t, 200) // a failed change ends nothing
		pw.LoginKey = alice.loginKey()
		e.do("POST", "/api/v1/me/password", pw, bearer(first)).want(t, 200)
		e.do("GET", "/api/v1/me", nil, bearer(second)).wantError(t, 401, account.CodeUnauthorized)
		e.do("GET", "/api/v1/me", nil, bearer(first)).want(t, 200)
		e.mail.last(t, addr, account.MailPasswordChanged)
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: addr, LoginKey: alice.loginKey()}).
			wantError(t, 401, account.CodeInvalidCredentials)
		alice = &alice2
		alice.token = first
		checkKeys(t, e, first, alice)

		// E-mail change: a link to the new address, a notice to the old.
		const newAddr = "alice.new@example.org"
		e.do("POST", "/api/v1/me/email", emailChangeRequest{NewEmail: newAddr, LoginKey: alice.loginKey()}, bearer(first)).want(t, http.StatusAccepted)
		notice := e.mail.last(t, addr, account.MailChangeEmailNotice)
		if notice.OtherEmail != newAddr || notice.Link != "" {
			t.Errorf("notice to old address %+v", notice)
		}
		changeToken := linkToken(t, e.mail.last(t, newAddr, account.MailChangeEmailConfirm).Link)
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: changeToken}).want(t, 200).decode(t, &vr)
		if diff := cmp.Diff(verifyResponse{Status: "verified", Email: newAddr, Purpose: account.PurposeChangeEmail}, vr); diff != "" {
			t.Errorf("verify change (-want +got):\n%s", diff)
		}
		e.do("GET", "/api/v1/me", nil, bearer(first)).want(t, 200).decode(t, &me)
		if me.Email != newAddr || !me.Verified {
			t.Errorf("me after change %+v", me)
		}
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: addr, LoginKey: alice.loginKey()}).
			wantError(t, 401, account.CodeInvalidCredentials)
		alice.email = newAddr
		e.login(t, alice)
		third := alice.token

		// Logout ends one session; logout-all ends the rest.
		e.do("POST", "/api/v1/auth/logout", nil, bearer(first)).want(t, http.StatusNoContent)
		e.do("GET", "/api/v1/me", nil, bearer(first)).wantError(t, 401, account.CodeUnauthorized)
		e.do("POST", "/api/v1/auth/logout", nil, bearer(first)).wantError(t, 401, account.CodeUnauthorized)
		e.login(t, alice)
		fourth := alice.token
		var la logoutAllResponse
		e.do("POST", "/api/v1/auth/logout-all", nil, bearer(third)).want(t, 200).decode(t, &la)
		if la.SessionsEnded != 2 {
			t.Errorf("sessions_ended = %d, want 2", la.SessionsEnded)
		}
		e.do("GET", "/api/v1/me", nil, bearer(fourth)).wantError(t, 401, account.CodeUnauthorized)

		// Reset keeping the keys (recovery file).
		e.login(t, alice)
		before := alice.token
		recovery, err := alice.keys.RecoveryFile(newAddr, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/api/v1/auth/reset/request", emailLanguageRequest{Email: newAddr}).want(t, http.StatusAccepted)
		resetMail := e.mail.last(t, newAddr, account.MailResetPassword)
		if !strings.HasPrefix(resetMail.Link, e.baseURL+"/reset?token=") {
			t.Errorf("reset link %q", resetMail.Link)
		}
		resetToken := linkToken(t, resetMail.Link)
		var info resetInfoResponse
		e.do("POST", "/api/v1/auth/reset/info", tokenRequest{Token: resetToken}).want(t, 200).decode(t, &info)
		if info.Email != newAddr || !bytes.Equal(info.BoxPublicKey, alice.keys.BoxPublic[:]) || !bytes.Equal(info.SignPublicKey, alice.keys.SignPublic) {
			t.Errorf("reset info %+v", info)
		}

		restored, _, err := zkcrypto.ParseRecoveryFile(recovery)
		if err != nil {
			t.Fatal(err)
		}
		alice3 := &client{email: newAddr, keys: restored}
		alice3.setPassword(t, "third password")
		complete := func(c *client, signer *zkcrypto.UserKeys, token string) completeResetRequest {
			msg := zkcrypto.ResetMessage(token, zkcrypto.HashLoginKey(c.loginKey()))
			return completeResetRequest{Token: token, KeepKeys: true, Signature: signer.Sign(msg), credentialsJSON: c.credentials()}
		}
		// Someone else's recovery file, or a signature by another key, or
		// over another login key: refused, and nothing changes.
		mallory := newClient(t, newAddr, "third password")
		e.do("POST", "/api/v1/auth/reset/complete", complete(mallory, mallory.keys, resetToken)).
			wantError(t, 400, account.CodeRecoveryMismatch)
		e.do("POST", "/api/v1/auth/reset/complete", complete(alice3, mallory.keys, resetToken)).
			wantError(t, 400, account.CodeRecoveryMismatch)
		wrongMsg := complete(alice3, alice3.keys, resetToken)
		wrongMsg.Signature = alice3.keys.Sign(zkcrypto.ResetMessage(resetToken, make([]byte, 32)))
		e.do("POST", "/api/v1/auth/reset/complete", wrongMsg).wantError(t, 400, account.CodeRecoveryMismatch)
		e.do("GET", "/api/v1/me", nil, bearer(before)).want(t, 200)

		var cr completeResetResponse
		e.do("POST", "/api/v1/auth/reset/complete", complete(alice3, alice3.keys, resetToken)).want(t, 200).decode(t, &cr)
		if cr != (completeResetResponse{Status: "reset", KeysKept: true}) {
			t.Errorf("complete reset %+v", cr)
		}
		e.do("POST", "/api/v1/auth/reset/complete", complete(alice3, alice3.keys, resetToken)).
			wantError(t, 400, account.CodeTokenInvalid)
		e.do("GET", "/api/v1/me", nil, bearer(before)).wantError(t, 401, account.CodeUnauthorized)
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: newAddr, LoginKey: alice.loginKey()}).
			wantError(t, 401, account.CodeInvalidCredentials)
		alice = alice3
		e.login(t, alice)
		checkKeys(t, e, alice.token, alice)
		if !bytes.Equal(alice.keys.SignPublic, alice2.keys.SignPublic) {
			t.Error("public keys changed by a reset with keep_keys")
		}
		if n := e.mail.count(newAddr, account.MailPasswordChanged); n != 1 {
			t.Errorf("%d password-changed notices to the new address, want 1", n)
		}

		// Reset without keys: new key pairs.
		e.do("POST", "/api/v1/auth/reset/request", emailLanguageRequest{Email: newAddr, Language: "de"}).want(t, http.StatusAccepted)
		m = e.mail.last(t, newAddr, account.MailResetPassword)
		if m.Language != "de" {
			t.Errorf("reset mail language %q, want de", m.Language)
		}
		resetToken = linkToken(t, m.Link)
		alice4 := newClient(t, newAddr, "fourth password")
		e.do("POST", "/api/v1/auth/reset/complete", completeResetRequest{Token: resetToken, credentialsJSON: alice4.credentials()}).
			want(t, 200).decode(t, &cr)
		if cr != (completeResetResponse{Status: "reset", KeysKept: false}) {
			t.Errorf("complete reset %+v", cr)
		}
		alice = alice4
		e.login(t, alice)
		checkKeys(t, e, alice.token, alice)

		// Delete: only with the login key.
		e.do("DELETE", "/api/v1/me", loginKeyRequest{LoginKey: make([]byte, 32)}, bearer(alice.token)).
			wantError(t, 401, account.CodeInvalidCredentials)
		r = e.do("DELETE", "/api/v1/me", loginKeyRequest{LoginKey: alice.loginKey()}, bearer(alice.token)).want(t, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Errorf("delete body %q", r.body)
		}
		e.mail.last(t, newAddr, account.MailAccountDeleted)
		e.do("GET", "/api/v1/me", nil, bearer(alice.token)).wantError(t, 401, account.CodeUnauthorized)
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: newAddr, LoginKey: alice.loginKey()}).
			wantError(t, 401, account.CodeInvalidCredentials)
		var after saltResponse
		e.do("POST", "/api/v1/auth/salt", emailRequest{Email: addr}).want(t, 200).decode(t, &after)
		if !bytes.Equal(after.Salt, fake.Salt) {
			t.Error("fake salt of the old address changed")
		}
	})
}

// checkKeys fetches /me/keys and checks they are c's and open with c's
// secret key.
func checkKeys(t *testing.T, e *env, token string, c *client) {
	t.Helper()
	var k keysResponse
	e.do("GET", "/api/v1/me/keys", nil, bearer(token)).want(t, 200).decode(t, &k)
	if !bytes.Equal(k.Salt, c.salt) || k.KDF != c.kdf {
		t.Errorf("keys: salt/kdf are not the client's")
	}
	keys, err := zkcrypto.DecryptUserKeys(c.derived.SecretKey, k.EncryptedPrivateKeys, k.BoxPublicKey, k.SignPublicKey)
	if err != nil {
		t.Fatalf("keys do not open with the client's secret key: %v", err)
	}
	if keys.BoxPublic != c.keys.BoxPublic || !bytes.Equal(keys.SignPublic, c.keys.SignPublic) {
		t.Error("keys: public keys are not the client's")
	}
}
