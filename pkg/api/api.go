// Package api is blindrelay's HTTP API (docs/api.md) on go-chi: accounts,
// pairing tokens, devices and the tunnel WebSocket under /api/v1, the small
// HTML pages the mailed links open (/verify, /reset), the OpenAPI document
// and /healthz.
//
// It decodes and checks requests (size, content type, Origin, rate
// limits, the shape of keys and sealed blobs), hands them to an
// account.Service or a keystore.Store and maps the domain error codes to
// HTTP statuses in one table. Its only state is per node: rate-limit
// counters and the table of leased key slots (one tunnel session per
// slot). It knows nothing of SQL or mail delivery, opens no sealed blob
// and moves no packet: a tunnel WebSocket, once authorised and accepted, is
// handed to Config.Tunnels (pkg/relay behind pkg/server).
package api

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
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
	// Now is the clock of rate limits and pairing tokens; nil means
	// time.Now.
	Now func() time.Time

	// Devices keeps devices, key slots and pairing tokens. New requires it.
	Devices keystore.Store
	// Relay is what a pairing device is told about the relay's UDP side.
	// New requires both fields.
	Relay RelayInfo
	// Tunnels carries tunnel sessions to devices. Nil: the relay has no
	// UDP side yet, and every tunnel request is answered 503
	// device_offline.
	Tunnels Tunnels
}

// RelayInfo is the relay's side of the management tunnel, as the pairing
// answer hands it to a device.
type RelayInfo struct {
	// PublicKey is the relay's management WireGuard public key.
	PublicKey wgkey.Public
	// Endpoint is the UDP host:port devices send WireGuard to.
	Endpoint string
}

// server is the API's state: the services it serves, the rate limiters and
// the key slot leases.
type server struct {
	accounts *account.Service
	devices  keystore.Store
	relay    RelayInfo
	tunnels  Tunnels // nil: no UDP side
	log      *slog.Logger
	origin   string // scheme://host of Config.PublicURL, or ""
	proxies  []netip.Prefix
	limits   limiters
	leases   *leases
	clock    func() time.Time
	router   chi.Router // the root router, for Allow headers
}

// New returns the API handler. It panics if cfg is invalid (a PublicURL
// that is not an absolute http(s) URL, a rate without a period, no
// Devices store or RelayInfo): the caller validates its configuration at
// startup (Config.Validate) and always passes a store.
func New(cfg Config, accounts *account.Service, logger *slog.Logger) http.Handler {
	return newServer(cfg, accounts, logger).routes()
}

// newServer is New without the routes.
func newServer(cfg Config, accounts *account.Service, logger *slog.Logger) *server {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("api.New: %v", err))
	}
	if cfg.Devices == nil || cfg.Relay.PublicKey.IsZero() || cfg.Relay.Endpoint == "" {
		panic("api.New: Config.Devices and both fields of Config.Relay are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &server{
		accounts: accounts,
		devices:  cfg.Devices,
		relay:    cfg.Relay,
		tunnels:  cfg.Tunnels,
		log:      logger,
		origin:   publicOrigin(cfg.PublicURL),
		proxies:  cfg.TrustedProxies,
		limits:   newLimiters(cfg.Limits.withDefaults(), cfg.Now),
		leases:   newLeases(),
		clock:    cfg.Now,
	}
	return s
}

// Validate checks cfg's settings (not its dependencies: Devices, Relay's
// key and Tunnels are New's to check).
func (cfg Config) Validate() error {
	if cfg.PublicURL != "" && publicOrigin(cfg.PublicURL) == "" {
		return fmt.Errorf("public url %q: want an absolute http(s) URL", cfg.PublicURL)
	}
	if err := cfg.Limits.withDefaults().validate(); err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	if e := cfg.Relay.Endpoint; e != "" {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return fmt.Errorf("relay endpoint %q: want host:port: %w", e, err)
		}
	}
	return nil
}

// now is the current time as the stores keep it: UTC, to the microsecond.
func (s *server) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

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

			r.Post("/pairing-tokens", s.createPairingToken)
			r.Get("/pairing-tokens", s.pairingTokens)
			r.Delete("/pairing-tokens/{id}", s.revokePairingToken)

			r.With(l.pair.perIP).Post("/devices", s.addDevice)
			r.Get("/devices", s.listDevices)
			r.Get("/devices/{id}", s.device)
			r.Get("/devices/{id}/slots", s.deviceSlots)
			r.Delete("/devices/{id}", s.deleteDevice)
		})

		// The token secret authenticates a pairing device; no session.
		r.With(l.pair.perIP).Post("/devices/pair", s.pairDevice)

		// Browsers send Origin on WebSocket upgrades too, and a GET passes
		// checkOrigin: without sameOrigin any site could open a tunnel
		// with the user's cookie (cross-site WebSocket hijacking).
		r.With(s.sameOrigin, s.authenticated).Get("/devices/{id}/tunnel", s.tunnel)
	})
	return r
}

// healthz answers while the process serves.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}
