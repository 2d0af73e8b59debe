// Package api is blindrelay's account HTTP API (docs/api.md) on go-chi:
// routes under /api/v1, the small HTML pages the mailed links open
// (/verify, /reset), the OpenAPI document and /healthz.
//
// It decodes and checks requests (size, content type, Origin, rate
// limits), hands them to an account.Service and maps the service's error
// codes to HTTP statuses in one table. It holds no state of its own beyond
// rate-limit counters, and knows nothing of SQL or mail delivery.
package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// maxBodyBytes limits every request body.
const maxBodyBytes = 64 << 10

// Config configures the API.
type Config struct {
	// PublicURL is the relay's external URL. Its origin (scheme://host)
	// is the only Origin accepted on state-changing requests. Empty: the
	// request's own scheme and host.
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client; the client IP is the rightmost address in it that
	// is not itself a trusted proxy.
	TrustedProxies []netip.Prefix
	// Limits are the rate limits; zero fields take DefaultRateLimits.
	Limits RateLimits
	// Now is the rate limiters' clock; nil means time.Now.
	Now func() time.Time
}

// server is the API's state: the service it serves and the rate limiters.
type server struct {
	accounts *account.Service
	log      *slog.Logger
	origin   string // scheme://host of Config.PublicURL, or ""
	proxies  []netip.Prefix
	limits   limiters
	router   chi.Router // the root router, for Allow headers
}

// New returns the API handler. It panics if cfg is invalid (a PublicURL
// that is not an absolute http(s) URL, a rate without a period): the
// caller validates its configuration at startup (Config.Validate).
func New(cfg Config, accounts *account.Service, logger *slog.Logger) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("api.New: %v", err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{
		accounts: accounts,
		log:      logger,
		origin:   publicOrigin(cfg.PublicURL),
		proxies:  cfg.TrustedProxies,
		limits:   newLimiters(cfg.Limits.withDefaults(), cfg.Now),
	}
	return s.routes()
}

// Validate checks cfg.
func (cfg Config) Validate() error {
	if cfg.PublicURL != "" && publicOrigin(cfg.PublicURL) == "" {
		return fmt.Errorf("public url %q: want an absolute http(s) URL", cfg.PublicURL)
	}
	if err := cfg.Limits.withDefaults().validate(); err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	return nil
}

// publicOrigin returns the origin of rawURL as browsers send it in the
// Origin header, or "" if rawURL is not an absolute http(s) URL.
func publicOrigin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host
}

// routes is the API: every route in one place.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	s.router = r
	r.Use(securityHeaders, s.recoverer, s.clientIP, limitBody)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	r.Get("/healthz", healthz)
	r.Get("/verify", s.verifyPage)
	r.Get("/reset", s.resetPage)

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.checkOrigin)
		r.Get("/openapi.json", serveOpenAPI)

		l := &s.limits
		r.With(l.salt.perIP).Post("/auth/salt", s.salt)
		r.With(l.register.perIP).Post("/auth/register", s.register)
		r.Post("/auth/verify", s.verify)
		r.With(l.resend.perIP).Post("/auth/resend", s.resend)
		r.With(l.login.perIP).Post("/auth/login", s.login)
		r.With(l.reset.perIP).Post("/auth/reset/request", s.requestReset)
		r.Post("/auth/reset/info", s.resetInfo)
		r.Post("/auth/reset/complete", s.completeReset)

		r.Group(func(r chi.Router) {
			r.Use(s.authenticated)
			r.Post("/auth/logout", s.logout)
			r.Post("/auth/logout-all", s.logoutAll)
			r.Get("/me", s.me)
			r.Get("/me/keys", s.keys)
			r.Post("/me/language", s.setLanguage)
			r.With(l.login.perIP).Post("/me/password", s.changePassword)
			r.With(l.emailChange.perIP).Post("/me/email", s.changeEmail)
			r.With(l.login.perIP).Delete("/me", s.deleteAccount)
		})
	})
	return r
}

// healthz answers while the process serves.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}
