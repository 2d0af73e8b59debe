package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// fakeRelay serves h over TLS and returns a client for it.
func fakeRelay(t *testing.T, h http.HandlerFunc, opts ...apiclient.Option) *apiclient.Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	c, err := apiclient.New(srv.URL, append([]apiclient.Option{apiclient.WithHTTPClient(srv.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		opts    []apiclient.Option
		want    string // BaseURL, or "" for an error
		wantErr string
	}{
		{name: "plain", url: "https://relay.example:8443", want: "https://relay.example:8443"},
		{name: "trailing slash", url: "https://relay.example/", want: "https://relay.example"},
		{name: "path prefix", url: "https://relay.example/relay/", want: "https://relay.example/relay"},
		{name: "http", url: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "no scheme", url: "relay.example:8443", wantErr: "scheme"},
		{name: "ftp", url: "ftp://relay.example", wantErr: "scheme"},
		{name: "no host", url: "https://", wantErr: "no host"},
		{name: "query", url: "https://relay.example/?a=b", wantErr: "query"},
		{name: "user", url: "https://me:pw@relay.example/", wantErr: "user info"},
		{name: "insecure and client", url: "https://relay.example", opts: []apiclient.Option{apiclient.WithInsecureTLS(), apiclient.WithHTTPClient(http.DefaultClient)}, wantErr: "cannot be combined"},
		{name: "insecure", url: "https://relay.example", opts: []apiclient.Option{apiclient.WithInsecureTLS()}, want: "https://relay.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := apiclient.New(tt.url, tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want one containing %q", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BaseURL(); got != tt.want {
				t.Errorf("BaseURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   *apiclient.Error
	}{
		{
			name:   "api error",
			status: 401,
			body:   `{"error":{"code":"invalid_credentials","message":"Wrong e-mail address or password."}}`,
			want:   &apiclient.Error{Status: 401, Code: "invalid_credentials", Message: "Wrong e-mail address or password."},
		},
		{
			name:   "rate limited",
			status: 429,
			header: map[string]string{"Retry-After": "42"},
			body:   `{"error":{"code":"rate_limited","message":"Too many attempts."}}`,
			want:   &apiclient.Error{Status: 429, Code: "rate_limited", Message: "Too many attempts.", RetryAfter: 42 * time.Second},
		},
		{
			name:   "no message",
			status: 404,
			body:   `{"error":{"code":"not_found"}}`,
			want:   &apiclient.Error{Status: 404, Code: "not_found", Message: "Not Found"},
		},
		{
			name:   "html from a proxy",
			status: 502,
			header: map[string]string{"Content-Type": "text/html"},
			body:   "<html>\n<body>Bad   Gateway</body></html>",
			want:   &apiclient.Error{Status: 502, Message: `unexpected answer from the server: 502 Bad Gateway: "<html> <body>Bad Gateway</body></html>"`},
		},
		{
			name:   "empty body",
			status: 500,
			want:   &apiclient.Error{Status: 500, Message: "unexpected answer from the server: 500 Internal Server Error"},
		},
		{
			name:   "json but not an error",
			status: 400,
			body:   `{"status":"nope"}`,
			want:   &apiclient.Error{Status: 400, Message: `unexpected answer from the server: 400 Bad Request: "{\"status\":\"nope\"}"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeRelay(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := c.Me(t.Context())
			got, ok := errors.AsType[*apiclient.Error](err)
			if !ok {
				t.Fatalf("Me() error = %v (%T), want *apiclient.Error", err, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if apiclient.ErrorCode(err) != tt.want.Code {
				t.Errorf("ErrorCode = %q, want %q", apiclient.ErrorCode(err), tt.want.Code)
			}
			if want := fmt.Sprintf("HTTP %d", tt.status); !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want %q in it", err.Error(), want)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, auth, ua, ctype, origin, body string }
	got := make(chan seen, 1)
	c := fakeRelay(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("User-Agent"),
			r.Header.Get("Content-Type"), r.Header.Get("Origin"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"u1","email":"a@example.com","verified":true,"language":"de","new_field":1}`)
	}, apiclient.WithSessionToken("tok123"), apiclient.WithUserAgent("test-agent"))

	u, err := c.SetLanguage(t.Context(), "de")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "a@example.com" || !u.Verified || u.Language != "de" {
		t.Errorf("SetLanguage() = %+v", u)
	}
	want := seen{"POST", "/api/v1/me/language", "Bearer tok123", "test-agent", "application/json", "", `{"language":"de"}`}
	if diff := cmp.Diff(want, <-got, cmp.AllowUnexported(seen{})); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	c.SetSessionToken("")
	if _, err := c.Me(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.auth != "" || s.ctype != "" || s.method != "GET" {
		t.Errorf("GET without session sent Authorization %q, Content-Type %q", s.auth, s.ctype)
	}
}

func TestLoginWithKeyCookie(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		cookie  string
		wantErr error
	}{
		{name: "cookie", cookie: "blindrelay_session=sess-token; Path=/; HttpOnly; Secure; SameSite=Strict"},
		{name: "no cookie", wantErr: apiclient.ErrNoSessionCookie},
		{name: "other cookie", cookie: "other=1", wantErr: apiclient.ErrNoSessionCookie},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeRelay(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.cookie != "" {
					w.Header().Add("Set-Cookie", tt.cookie)
				}
				io.WriteString(w, `{"user":{"id":"u1","email":"a@example.com","verified":true},"expires_at":"2030-01-02T03:04:05Z"}`)
			})
			s, err := c.LoginWithKey(t.Context(), "a@example.com", make([]byte, 32))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoginWithKey() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if s.Token != "sess-token" || c.SessionToken() != "sess-token" || s.User.ID != "u1" || s.ExpiresAt.Year() != 2030 {
				t.Errorf("session = %+v, client token %q", s, c.SessionToken())
			}
		})
	}
}

func TestLogoutForgetsToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		status    int
		wantErr   bool
		wantToken string
	}{
		{name: "ok", status: 204},
		{name: "already gone", status: 401, wantErr: true},
		{name: "server error keeps the token", status: 500, wantErr: true, wantToken: "tok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fakeRelay(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				if tt.status == 401 {
					io.WriteString(w, `{"error":{"code":"unauthorized","message":"Please log in."}}`)
				}
			}, apiclient.WithSessionToken("tok"))
			err := c.Logout(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Logout() error = %v", err)
			}
			if c.SessionToken() != tt.wantToken {
				t.Errorf("token after Logout = %q, want %q", c.SessionToken(), tt.wantToken)
			}
		})
	}
}

// TestKDFLimits checks that the client refuses a server's parameters
// outside its limits before deriving anything.
func TestKDFLimits(t *testing.T) {
	t.Parallel()
	weak := zkcrypto.TestKDFParams()
	huge := zkcrypto.MaxKDFParams()
	huge.MemoryKiB *= 2
	for _, tt := range []struct {
		name string
		kdf  zkcrypto.KDFParams
	}{
		{"too weak", weak},
		{"too big", huge},
		{"wrong algorithm", zkcrypto.KDFParams{Algorithm: "scrypt", Version: 19, MemoryKiB: 65536, Iterations: 3, Parallelism: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logins := 0
			c := fakeRelay(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/api/v1/auth/salt":
					w.Header().Set("Content-Type", "application/json")
					writeJSON(t, w, apiclient.SaltResponse{Salt: make([]byte, 16), KDF: tt.kdf})
				default:
					logins++
					w.WriteHeader(500)
				}
			})
			_, _, err := c.Login(t.Context(), "a@example.com", []byte("password"))
			if !errors.Is(err, apiclient.ErrKDFRefused) || !errors.Is(err, zkcrypto.ErrInvalidKDFParams) {
				t.Fatalf("Login() error = %v, want ErrKDFRefused", err)
			}
			if logins != 0 {
				t.Errorf("the client sent %d log-in requests after refusing the parameters", logins)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"abc_DEF-123", "abc_DEF-123"},
		{"  abc \n", "abc"},
		{"https://relay.example/verify?token=abc_DEF-123", "abc_DEF-123"},
		{"https://relay.example:8443/reset?token=a%2Bb", "a+b"},
		{"https://relay.example/verify?x=1", "https://relay.example/verify?x=1"},
	} {
		if got := apiclient.ParseToken(tt.in); got != tt.want {
			t.Errorf("ParseToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := apiclient.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Health(ctx); err == nil {
		t.Fatal("Health() on a closed server succeeded")
	} else if _, ok := errors.AsType[*apiclient.Error](err); ok {
		t.Errorf("Health() error = %v, want a transport error, not *Error", err)
	}
}

func writeJSON(t *testing.T, w http.ResponseWriter, v any) {
	t.Helper()
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Error(err)
	}
}
