package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := newClient(t, "cookie@example.org", "pw")
	e.signup(t, c)
	r := e.login(t, c)
	var lr loginResponse
	r.decode(t, &lr)

	ck := r.cookie(sessionCookie)
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Errorf("cookie attributes: %s", r.header.Get("Set-Cookie"))
	}
	if !ck.Expires.Equal(lr.ExpiresAt.Truncate(time.Second)) {
		t.Errorf("cookie expires %v, session %v", ck.Expires, lr.ExpiresAt)
	}
	if len(ck.Value) != 43 {
		t.Errorf("token of %d characters, want 43 (32 bytes base64url)", len(ck.Value))
	}

	// The cookie works alone and is renewed with each use.
	r = e.do("GET", "/api/v1/me", nil, withCookie(&http.Cookie{Name: sessionCookie, Value: ck.Value})).want(t, 200)
	if renewed := r.cookie(sessionCookie); renewed == nil || renewed.Value != ck.Value || !renewed.HttpOnly {
		t.Errorf("cookie not renewed: %q", r.header.Get("Set-Cookie"))
	}
	// A bearer token answers no cookie.
	if r := e.do("GET", "/api/v1/me", nil, bearer(ck.Value)).want(t, 200); r.header.Get("Set-Cookie") != "" {
		t.Errorf("bearer request got Set-Cookie %q", r.header.Get("Set-Cookie"))
	}
	// A dead cookie is cleared.
	r = e.do("GET", "/api/v1/me", nil, withCookie(&http.Cookie{Name: sessionCookie, Value: "bm9wZQ"}))
	r.wantError(t, 401, account.CodeUnauthorized)
	if cleared := r.cookie(sessionCookie); cleared == nil || cleared.MaxAge >= 0 {
		t.Errorf("dead cookie not cleared: %q", r.header.Get("Set-Cookie"))
	}
	// A malformed Authorization header is no session, even with a cookie.
	e.do("GET", "/api/v1/me", nil, header("Authorization", "Basic eDp5"), withCookie(ck)).wantError(t, 401, account.CodeUnauthorized)

	// Logout clears the cookie.
	r = e.do("POST", "/api/v1/auth/logout", nil, withCookie(&http.Cookie{Name: sessionCookie, Value: ck.Value})).want(t, http.StatusNoContent)
	if cleared := r.cookie(sessionCookie); cleared == nil || cleared.Value != "" || cleared.MaxAge >= 0 || len(r.header.Values("Set-Cookie")) != 1 {
		t.Errorf("logout Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
}

func TestSessionExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		c := e.newUser(t, "slide@example.org")
		day := 24 * time.Hour

		// Used every 20 days, the session outlives its 30 days.
		for i := range 3 {
			e.clock.Advance(20 * day)
			if r := e.do("GET", "/api/v1/me", nil, bearer(c.token)); r.status != 200 {
				t.Fatalf("after %d days of regular use: status %d; sessions must slide "+
					"(docs/api.md), which needs account.Store.SessionByHash to move ExpiresAt", 20*(i+1), r.status)
			}
		}
		// Left alone for 30 days, it ends.
		e.clock.Advance(30*day + time.Second)
		e.do("GET", "/api/v1/me", nil, bearer(c.token)).wantError(t, 401, account.CodeUnauthorized)
	})
}
