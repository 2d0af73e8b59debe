package api

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
)

// TestRateLimits checks each limited endpoint per account and per IP:
// the limit holds for known and unknown addresses alike, 429 carries
// Retry-After, and the bucket refills with time.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	perAccount := Limit{PerIP: ratelimit.Rate{N: 4, Per: time.Minute}, PerAccount: ratelimit.Rate{N: 2, Per: time.Minute}}
	limits := noLimits()
	limits.Salt, limits.Login, limits.Register, limits.Resend, limits.Reset = perAccount, perAccount, perAccount, perAccount, perAccount
	e := newEnv(t, envOptions{limits: limits})

	tests := []struct {
		name string
		path string
		body func(email string) any
	}{
		{"salt", "/api/v1/auth/salt", func(m string) any { return emailRequest{Email: m} }},
		{"login", "/api/v1/auth/login", func(m string) any { return loginRequest{Email: m, LoginKey: make([]byte, 32)} }},
		{"register", "/api/v1/auth/register", func(m string) any { return newClient(t, m, "pw").registerRequest() }},
		{"resend", "/api/v1/auth/resend", func(m string) any { return emailRequest{Email: m} }},
		{"reset", "/api/v1/auth/reset/request", func(m string) any { return emailLanguageRequest{Email: m} }},
	}
	for _, tt := range tests {
		// Each endpoint has its own buckets. Two events per address, and
		// four per IP (the test client has one).
		a, b := "a-"+tt.name+"@example.org", "B-"+tt.name+"@example.org"
		e.do("POST", tt.path, tt.body(a)).wantNot(t, 429)
		e.do("POST", tt.path, tt.body(" A-"+tt.name+"@example.org")).wantNot(t, 429)
		r := e.do("POST", tt.path, tt.body(a))
		r.wantError(t, http.StatusTooManyRequests, account.CodeRateLimited)
		if ra := r.header.Get("Retry-After"); ra != "30" {
			t.Errorf("%s: Retry-After %q, want 30", tt.name, ra)
		}
		// Another address still has its own budget, but the IP's fourth
		// and last event goes to it (the refused one counted for the IP).
		e.do("POST", tt.path, tt.body(b)).wantNot(t, 429)
		r = e.do("POST", tt.path, tt.body("c-"+tt.name+"@example.org"))
		r.wantError(t, http.StatusTooManyRequests, account.CodeRateLimited)
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 15 {
			t.Errorf("%s: per-IP Retry-After %q", tt.name, r.header.Get("Retry-After"))
		}
	}
	// After a minute every bucket is full again.
	e.clock.Advance(time.Minute)
	for _, tt := range tests {
		e.do("POST", tt.path, tt.body("a-"+tt.name+"@example.org")).wantNot(t, 429)
	}
}

// wantNot fails the test if the status is status.
func (r *response) wantNot(t *testing.T, status int) *response {
	t.Helper()
	if r.status == status {
		t.Fatalf("status %d; body: %s", r.status, r.body)
	}
	return r
}

// TestRateLimitLoginKeyRoutes checks that the routes that check a login
// key share the log-in budget of the account.
func TestRateLimitLoginKeyRoutes(t *testing.T) {
	t.Parallel()
	limits := noLimits()
	limits.Login.PerAccount = ratelimit.Rate{N: 3, Per: time.Hour}
	e := newEnv(t, envOptions{limits: limits})
	c := e.newUser(t, "guess@example.org") // one log-in spent
	wrong := make([]byte, 32)
	e.do("DELETE", "/api/v1/me", loginKeyRequest{LoginKey: wrong}, bearer(c.token)).wantError(t, 401, account.CodeInvalidCredentials)
	e.do("POST", "/api/v1/me/password", passwordRequest{LoginKey: wrong}, bearer(c.token)).wantError(t, 401, account.CodeInvalidCredentials)
	e.do("DELETE", "/api/v1/me", loginKeyRequest{LoginKey: wrong}, bearer(c.token)).wantError(t, 429, account.CodeRateLimited)
	e.do("POST", "/api/v1/auth/login", loginRequest{Email: c.email, LoginKey: c.loginKey()}).wantError(t, 429, account.CodeRateLimited)
}

// TestForwardedFor checks that X-Forwarded-For counts only from a trusted
// proxy.
func TestForwardedFor(t *testing.T) {
	t.Parallel()
	limits := noLimits()
	limits.Salt.PerIP = ratelimit.Rate{N: 1, Per: time.Hour}
	xff := func(v string) reqOption { return header("X-Forwarded-For", v) }
	body := emailRequest{Email: "x@example.org"}

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{limits: limits})
		e.do("POST", "/api/v1/auth/salt", body, xff("192.0.2.1")).want(t, 200)
		e.do("POST", "/api/v1/auth/salt", body, xff("192.0.2.2")).wantError(t, 429, account.CodeRateLimited)
	})
	t.Run("trusted peer", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{limits: limits, trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
		e.do("POST", "/api/v1/auth/salt", body, xff("192.0.2.1")).want(t, 200)
		e.do("POST", "/api/v1/auth/salt", body, xff("192.0.2.2")).want(t, 200)
		e.do("POST", "/api/v1/auth/salt", body, xff("192.0.2.1")).wantError(t, 429, account.CodeRateLimited)
		// The client cannot pick its address: the rightmost untrusted hop counts.
		e.do("POST", "/api/v1/auth/salt", body, xff("198.51.100.7, 192.0.2.2")).wantError(t, 429, account.CodeRateLimited)
		// Without the header the proxy itself is the client.
		e.do("POST", "/api/v1/auth/salt", body).want(t, 200)
	})
}

func TestRealIP(t *testing.T) {
	t.Parallel()
	s := &server{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"direct ignores header", "192.0.2.1:1234", []string{"203.0.113.9"}, "192.0.2.1"},
		{"proxy without header", "10.0.0.1:80", nil, "10.0.0.1"},
		{"proxy", "10.0.0.1:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"spoofed left part", "10.0.0.1:80", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"two proxies", "10.0.0.1:80", []string{"203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"several headers", "10.0.0.1:80", []string{"1.1.1.1", "203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"only proxies", "10.0.0.1:80", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage hop", "10.0.0.1:80", []string{"1.1.1.1, garbage, 10.2.2.2"}, "10.2.2.2"},
		{"hop with port", "10.0.0.1:80", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"mapped v4", "[::ffff:10.0.0.1]:80", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"v6 proxy", "[fd00::1]:80", []string{"2001:db8::5"}, "2001:db8::5"},
		{"bad remote", "pipe", []string{"203.0.113.9"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.realIP(r).String(); got != tt.want {
				t.Errorf("realIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestIPKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9999": "2001:db8:1:2::/64",
	} {
		if got := ipKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
	if got := ipKey(netip.Addr{}); got != "unknown" {
		t.Errorf("ipKey(zero) = %s", got)
	}
}
