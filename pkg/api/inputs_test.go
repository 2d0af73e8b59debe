package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// TestBadInput sends malformed requests and checks each gets its code.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.newUser(t, "input@example.org")
	fresh := newClient(t, "fresh@example.org", "pw")

	raw := func(ct, s string) rawBody { return rawBody{contentType: ct, data: []byte(s)} }
	reg := func(f func(r *registerRequest)) registerRequest {
		r := fresh.registerRequest()
		f(&r)
		return r
	}
	big := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		opts   []reqOption
		status int
		code   account.Code
	}{
		{"malformed", "POST", "/api/v1/auth/salt", raw("application/json", `{"email":`), nil, 400, account.CodeInvalidJSON},
		{"not json", "POST", "/api/v1/auth/salt", raw("application/json", `email=a`), nil, 400, account.CodeInvalidJSON},
		{"empty body", "POST", "/api/v1/auth/salt", raw("application/json", ``), nil, 400, account.CodeInvalidJSON},
		{"array", "POST", "/api/v1/auth/salt", raw("application/json", `[]`), nil, 400, account.CodeInvalidJSON},
		{"unknown field", "POST", "/api/v1/auth/salt", raw("application/json", `{"email":"a@b.c","admin":true}`), nil, 400, account.CodeInvalidJSON},
		{"unknown nested field", "POST", "/api/v1/auth/register", raw("application/json", `{"kdf":{"salt":1}}`), nil, 400, account.CodeInvalidJSON},
		{"trailing data", "POST", "/api/v1/auth/salt", raw("application/json", `{"email":"a@b.c"} {}`), nil, 400, account.CodeInvalidJSON},
		{"wrong type", "POST", "/api/v1/auth/salt", raw("application/json", `{"email":5}`), nil, 400, account.CodeInvalidJSON},
		{"bad base64", "POST", "/api/v1/auth/login", raw("application/json", `{"email":"a@b.c","login_key":"!!"}`), nil, 400, account.CodeInvalidJSON},
		{"negative kdf", "POST", "/api/v1/auth/register", raw("application/json", `{"kdf":{"memory_kib":-1}}`), nil, 400, account.CodeInvalidJSON},
		{"too large", "POST", "/api/v1/auth/salt", raw("application/json", big), nil, 413, account.CodeBodyTooLarge},
		{"text/plain", "POST", "/api/v1/auth/salt", raw("text/plain", `{"email":"a@b.c"}`), nil, 415, account.CodeUnsupportedMedia},
		{"form", "POST", "/api/v1/auth/login", raw("application/x-www-form-urlencoded", `email=a`), nil, 415, account.CodeUnsupportedMedia},
		{"no content type", "POST", "/api/v1/auth/salt", raw("", `{"email":"a@b.c"}`), nil, 415, account.CodeUnsupportedMedia},
		{"latin1", "POST", "/api/v1/auth/salt", raw("application/json; charset=latin1", `{"email":"a@b.c"}`), nil, 415, account.CodeUnsupportedMedia},

		{"no email", "POST", "/api/v1/auth/salt", emailRequest{}, nil, 400, account.CodeInvalidInput},
		{"bad email", "POST", "/api/v1/auth/salt", emailRequest{Email: "not-an-address"}, nil, 400, account.CodeInvalidInput},
		{"display name", "POST", "/api/v1/auth/salt", emailRequest{Email: "Eve <eve@example.org>"}, nil, 400, account.CodeInvalidInput},
		{"two addresses", "POST", "/api/v1/auth/salt", emailRequest{Email: "a@b.c, d@e.f"}, nil, 400, account.CodeInvalidInput},
		{"long email", "POST", "/api/v1/auth/salt", emailRequest{Email: strings.Repeat("a", 243) + "@example.org"}, nil, 400, account.CodeInvalidInput},
		{"short salt", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.Salt = r.Salt[:15] }), nil, 400, account.CodeInvalidInput},
		{"short login key", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.LoginKey = r.LoginKey[:31] }), nil, 400, account.CodeInvalidInput},
		{"long box key", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.BoxPublicKey = append(r.BoxPublicKey, 0) }), nil, 400, account.CodeInvalidInput},
		{"no sign key", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.SignPublicKey = nil }), nil, 400, account.CodeInvalidInput},
		{"short private keys", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.EncryptedPrivateKeys = r.EncryptedPrivateKeys[:103] }), nil, 400, account.CodeInvalidInput},
		{"weak kdf", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.KDF.MemoryKiB = 4 }), nil, 400, account.CodeInvalidInput},
		{"huge kdf", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.KDF.Iterations = 1000 }), nil, 400, account.CodeInvalidInput},
		{"other kdf", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.KDF.Algorithm = "scrypt" }), nil, 400, account.CodeInvalidInput},
		{"bad language", "POST", "/api/v1/auth/register", reg(func(r *registerRequest) { r.Language = "es" }), nil, 400, account.CodeInvalidInput},
		{"login short key", "POST", "/api/v1/auth/login", loginRequest{Email: c.email, LoginKey: []byte{1}}, nil, 400, account.CodeInvalidInput},
		{"no token", "POST", "/api/v1/auth/verify", tokenRequest{}, nil, 400, account.CodeInvalidInput},
		{"malformed token", "POST", "/api/v1/auth/verify", tokenRequest{Token: "abc"}, nil, 400, account.CodeTokenInvalid},
		{"unknown token", "POST", "/api/v1/auth/reset/info", tokenRequest{Token: strings.Repeat("A", 43)}, nil, 400, account.CodeTokenInvalid},
		{"set bad language", "POST", "/api/v1/me/language", languageRequest{Language: "xx"}, []reqOption{bearer(c.token)}, 400, account.CodeInvalidInput},
		{"set no language", "POST", "/api/v1/me/language", languageRequest{}, []reqOption{bearer(c.token)}, 400, account.CodeInvalidInput},
		{"change to bad email", "POST", "/api/v1/me/email", emailChangeRequest{NewEmail: "nope", LoginKey: c.loginKey()}, []reqOption{bearer(c.token)}, 400, account.CodeInvalidInput},
		{"change to same email", "POST", "/api/v1/me/email", emailChangeRequest{NewEmail: c.email, LoginKey: c.loginKey()}, []reqOption{bearer(c.token)}, 400, account.CodeInvalidInput},
		{"password short new key", "POST", "/api/v1/me/password", passwordRequest{LoginKey: c.loginKey(), Salt: c.salt, KDF: c.kdf, NewLoginKey: []byte{1}, EncryptedPrivateKeys: c.sealed}, []reqOption{bearer(c.token)}, 400, account.CodeInvalidInput},

		{"no session", "GET", "/api/v1/me", nil, nil, 401, account.CodeUnauthorized},
		{"bad bearer", "GET", "/api/v1/me/keys", nil, []reqOption{bearer("x")}, 401, account.CodeUnauthorized},
		{"foreign origin", "POST", "/api/v1/auth/salt", emailRequest{Email: "a@b.c"}, []reqOption{header("Origin", "https://evil.example")}, 403, account.CodeForbiddenOrigin},
		{"null origin", "POST", "/api/v1/auth/salt", emailRequest{Email: "a@b.c"}, []reqOption{header("Origin", "null")}, 403, account.CodeForbiddenOrigin},
		{"origin with path", "POST", "/api/v1/auth/salt", emailRequest{Email: "a@b.c"}, []reqOption{header("Origin", e.baseURL+"/x")}, 403, account.CodeForbiddenOrigin},
		{"foreign origin logout", "POST", "/api/v1/auth/logout", nil, []reqOption{bearer(c.token), header("Origin", "https://evil.example")}, 403, account.CodeForbiddenOrigin},
		{"foreign origin delete", "DELETE", "/api/v1/me", loginKeyRequest{LoginKey: c.loginKey()}, []reqOption{bearer(c.token), header("Origin", "http://"+strings.TrimPrefix(e.baseURL, "https://"))}, 403, account.CodeForbiddenOrigin},
		{"not found", "GET", "/nope", nil, nil, 404, account.CodeNotFound},
		{"api not found", "POST", "/api/v1/nope", emailRequest{}, nil, 404, account.CodeNotFound},
		{"trailing slash", "GET", "/api/v1/me/", nil, nil, 404, account.CodeNotFound},
		{"wrong method", "GET", "/api/v1/auth/login", nil, nil, 405, account.CodeMethodNotAllowed},
		{"wrong method me", "PUT", "/api/v1/me", nil, nil, 405, account.CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(tt.method, tt.path, tt.body, tt.opts...).wantError(t, tt.status, tt.code)
		})
	}

	// The account is as it was.
	e.do("GET", "/api/v1/me", nil, bearer(c.token)).want(t, 200)
}

func TestAllowHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := e.do("PATCH", "/api/v1/me", nil)
	r.wantError(t, 405, account.CodeMethodNotAllowed)
	if got := strings.Join(r.header.Values("Allow"), ","); got != "GET,DELETE" {
		t.Errorf("Allow %q, want GET,DELETE", got)
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	body := emailRequest{Email: "a@example.org"}
	t.Run("own origin", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.do("POST", "/api/v1/auth/salt", body, header("Origin", e.baseURL)).want(t, 200)
		e.do("POST", "/api/v1/auth/salt", body, header("Origin", strings.ToUpper(e.baseURL))).want(t, 200)
	})
	t.Run("public url", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{apiPublicURL: "https://Relay.Example.com:443/base/"})
		e.do("POST", "/api/v1/auth/salt", body, header("Origin", "https://relay.example.com")).want(t, 200)
		e.do("POST", "/api/v1/auth/salt", body, header("Origin", e.baseURL)).wantError(t, 403, account.CodeForbiddenOrigin)
		e.do("POST", "/api/v1/auth/salt", body, header("Origin", "https://relay.example.com:8443")).wantError(t, 403, account.CodeForbiddenOrigin)
		// Reads need no Origin check.
		e.do("GET", "/api/v1/openapi.json", nil, header("Origin", "https://evil.example")).want(t, 200)
	})
}

// TestTokenExpiry checks links against an injected clock.
func TestTokenExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		c := newClient(t, "late@example.org", "pw")
		e.do("POST", "/api/v1/auth/register", c.registerRequest()).want(t, http.StatusAccepted)
		tok := linkToken(t, e.mail.last(t, c.email, account.MailVerifyEmail).Link)
		e.clock.Advance(24 * time.Hour)
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: tok}).wantError(t, http.StatusGone, account.CodeTokenExpired)
		// A fresh link works.
		e.do("POST", "/api/v1/auth/resend", emailRequest{Email: c.email}).want(t, http.StatusAccepted)
		tok = linkToken(t, e.mail.last(t, c.email, account.MailVerifyEmail).Link)
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: tok}).want(t, 200)

		e.do("POST", "/api/v1/auth/reset/request", emailLanguageRequest{Email: c.email}).want(t, http.StatusAccepted)
		tok = linkToken(t, e.mail.last(t, c.email, account.MailResetPassword).Link)
		e.clock.Advance(59 * time.Minute)
		e.do("POST", "/api/v1/auth/reset/info", tokenRequest{Token: tok}).want(t, 200)
		e.clock.Advance(time.Minute)
		e.do("POST", "/api/v1/auth/reset/info", tokenRequest{Token: tok}).wantError(t, http.StatusGone, account.CodeTokenExpired)
		n := newClient(t, c.email, "new")
		e.do("POST", "/api/v1/auth/reset/complete", completeResetRequest{Token: tok, credentialsJSON: n.credentials()}).
			wantError(t, http.StatusGone, account.CodeTokenExpired)
		e.login(t, c)
	})
}

// TestEmailChangeToTakenAddress checks that moving to a taken address
// changes nothing and tells nothing.
func TestEmailChangeToTakenAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		alice := e.newUser(t, "alice@example.org")
		bob := e.newUser(t, "bob@example.org")

		free := e.do("POST", "/api/v1/me/email", emailChangeRequest{NewEmail: "free@example.org", LoginKey: alice.loginKey()}, bearer(alice.token)).want(t, 202)
		taken := e.do("POST", "/api/v1/me/email", emailChangeRequest{NewEmail: "BOB@example.org", LoginKey: alice.loginKey()}, bearer(alice.token)).want(t, 202)
		if !bytes.Equal(free.body, taken.body) {
			t.Errorf("answers differ: %s vs %s", free.body, taken.body)
		}
		e.mail.last(t, bob.email, account.MailChangeEmailTaken)
		if n := e.mail.count(bob.email, account.MailChangeEmailConfirm); n != 0 {
			t.Errorf("%d confirmation links to the taken address", n)
		}

		// The address is taken after the link went out: the link fails and
		// nothing changes.
		freeToken := linkToken(t, e.mail.last(t, "free@example.org", account.MailChangeEmailConfirm).Link)
		carol := newClient(t, "free@example.org", "pw")
		e.do("POST", "/api/v1/auth/register", carol.registerRequest()).want(t, 202)
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: freeToken}).wantError(t, http.StatusConflict, account.CodeEmailTaken)

		var me userJSON
		e.do("GET", "/api/v1/me", nil, bearer(alice.token)).want(t, 200).decode(t, &me)
		if me.Email != alice.email {
			t.Errorf("alice's address is now %s", me.Email)
		}
		e.login(t, bob)
		e.signup(t, carol) // carol's pending account is intact and can be confirmed
		e.login(t, carol)
	})
}

// TestInternalError checks that a store failure is a generic 500 that
// leaks nothing.
func TestInternalError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{newStore: func(t testing.TB) testStore { return failingStore{newSQLite(t)} }})
	r := e.do("POST", "/api/v1/auth/salt", emailRequest{Email: "a@example.org"})
	r.wantError(t, 500, account.CodeInternal)
	if strings.Contains(string(r.body), "disk") {
		t.Errorf("500 leaks the cause: %s", r.body)
	}
}

// failingStore fails UserByEmail.
type failingStore struct{ testStore }

func (failingStore) UserByEmail(context.Context, string) (*account.User, error) {
	return nil, errors.New("disk on fire")
}

func TestKDFBoundsFromService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := newClient(t, "kdf@example.org", "pw")
	r := c.registerRequest()
	r.KDF = zkcrypto.MaxKDFParams()
	r.KDF.MemoryKiB++
	e.do("POST", "/api/v1/auth/register", r).wantError(t, 400, account.CodeInvalidInput)
}
