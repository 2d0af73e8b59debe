package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/api/v1/openapi.json", "/api/v1/me", "/nope", "/healthz", "/verify", "/reset?token=x"} {
		r := e.do("GET", path, nil)
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
			"X-Frame-Options":        "DENY",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/healthz", nil).want(t, 200)
	if string(r.body) != "ok\n" {
		t.Errorf("healthz body %q", r.body)
	}
}

func TestVerifyPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := newClient(t, "page@example.org", "pw")
	e.do("POST", "/api/v1/auth/register", c.registerRequest()).want(t, 202)
	link := e.mail.last(t, c.email, account.MailVerifyEmail).Link
	path := strings.TrimPrefix(link, e.baseURL)

	// Opening the link (as a mail scanner would) confirms nothing.
	r := e.do("GET", path, nil, header("Accept-Language", "fr-CH, de;q=0.9")).want(t, 200)
	page := string(r.body)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
	checkSelfContained(t, page, r.header.Get("Content-Security-Policy"))
	for _, want := range []string{`lang="fr"`, `id="confirm"`, "api/v1/auth/verify", `method: "POST"`} {
		if !strings.Contains(page, want) {
			t.Errorf("verify page lacks %q", want)
		}
	}
	if strings.Contains(page, linkToken(t, link)) {
		t.Error("verify page embeds the token; the script reads it from the URL")
	}
	e.do("POST", "/api/v1/auth/login", loginRequest{Email: c.email, LoginKey: c.loginKey()}).
		wantError(t, 403, account.CodeEmailNotVerified)

	// What the button does: POST the token with the page's Origin.
	e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: linkToken(t, link)}, header("Origin", e.baseURL)).want(t, 200)
	e.login(t, c)

	// A link without a token says so.
	r = e.do("GET", "/verify?token=%3Cscript%3E", nil).want(t, 200)
	if strings.Contains(string(r.body), `id="confirm"`) || strings.Contains(string(r.body), "<script>alert") {
		t.Error("verify page without a valid token offers to confirm")
	}
}

func TestResetPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.newUser(t, "reset-page@example.org")
	e.do("POST", "/api/v1/auth/reset/request", emailLanguageRequest{Email: c.email}).want(t, 202)
	link := e.mail.last(t, c.email, account.MailResetPassword).Link
	r := e.do("GET", strings.TrimPrefix(link, e.baseURL), nil, header("Accept-Language", "de")).want(t, 200)
	page := string(r.body)
	checkSelfContained(t, page, r.header.Get("Content-Security-Policy"))
	for _, want := range []string{`lang="de"`, "blindctl recovery reset --token '" + link + "'", "--recovery-file"} {
		if !strings.Contains(page, want) {
			t.Errorf("reset page lacks %q:\n%s", want, page)
		}
	}
	// Opening it uses nothing up.
	e.do("POST", "/api/v1/auth/reset/info", tokenRequest{Token: linkToken(t, link)}).want(t, 200)

	r = e.do("GET", "/reset", nil).want(t, 200)
	if strings.Contains(string(r.body), "blindctl recovery reset") {
		t.Error("reset page without a token shows a command")
	}
}

// checkSelfContained checks that a page loads nothing from elsewhere and
// that its CSP allows exactly its inline style and script.
func checkSelfContained(t *testing.T, page, csp string) {
	t.Helper()
	if regexp.MustCompile(`(?i)(src|href)\s*=`).MatchString(page) {
		t.Error("page references external resources")
	}
	for _, m := range regexp.MustCompile(`(?s)<(style|script)>(.*?)</(?:style|script)>`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(csp, cspHash(m[2])) {
			t.Errorf("inline %s is not allowed by the CSP %q", m[1], csp)
		}
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
}

func TestAcceptLanguage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"es"}, ""},
		{[]string{"de-DE,de;q=0.9,en;q=0.8"}, "de"},
		{[]string{"es, fr;q=0.5, en;q=0.4"}, "fr"},
		{[]string{"en;q=0.2", "DE;q=0.3"}, "de"},
		{[]string{"fr;q=abc, en"}, "en"},
		{[]string{"de;q=0, fr;q=0.001"}, "fr"},
		{[]string{"*"}, ""},
	}
	for _, tt := range tests {
		if got := acceptLanguage(tt.in); got != tt.want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRegisterLanguageFromHeader checks that Accept-Language picks the
// language of a sign-up without one.
func TestRegisterLanguageFromHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := newClient(t, "sprache@example.org", "pw")
	e.do("POST", "/api/v1/auth/register", c.registerRequest(), header("Accept-Language", "de-AT")).want(t, 202)
	if m := e.mail.last(t, c.email, account.MailVerifyEmail); m.Language != "de" {
		t.Errorf("mail language %q, want de", m.Language)
	}
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := securityHeaders(s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "x=y")
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	res := &response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	res.wantError(t, 500, account.CodeInternal)
	if rec.Header().Get("Set-Cookie") != "" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers after panic: %v", rec.Header())
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}

	// A panic after the answer started only gets logged.
	h = s.recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(202)
		panic("late")
	}))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 202 || rec.Body.Len() != 0 {
		t.Errorf("late panic: %d %q", rec.Code, rec.Body.String())
	}

	// http.ErrAbortHandler goes on up.
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}
