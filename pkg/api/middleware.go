package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "blindrelay_session"

// apiCSP is the Content-Security-Policy of everything but the HTML pages:
// nothing may load, frame or submit anywhere.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets the headers every answer carries. The HTML pages
// replace the Content-Security-Policy with their own.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", apiCSP)
		// Sessions, tokens in URLs and per-user data: nothing is cacheable.
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 JSON answer (if nothing was
// written yet). http.ErrAbortHandler passes through.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !sw.wroteHeader {
				w.Header().Del("Set-Cookie")
				writeError(w, r, errors.New("panic"), nil)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records whether the header was written.
type statusWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitBody caps every request body at maxBodyBytes; reading past it fails
// with *http.MaxBytesError (413).
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// checkOrigin refuses state-changing requests whose Origin header is not
// the relay's own origin. Requests without Origin (non-browser clients)
// pass.
func (s *server) checkOrigin(next http.Handler) http.Handler {
	checked := s.sameOrigin(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
		default:
			checked.ServeHTTP(w, r)
		}
	})
}

// sameOrigin refuses requests of any method whose Origin header is not the
// relay's own origin. Requests without Origin (non-browser clients) pass.
func (s *server) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.originAllowed(r) {
			s.error(w, r, account.Errorf(account.CodeForbiddenOrigin, "Requests to this relay must come from its own pages."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed reports whether r has no Origin header or exactly one that
// is the relay's own origin (--public-url, else the request's own).
func (s *server) originAllowed(r *http.Request) bool {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	want := s.origin
	if want == "" {
		want = requestOrigin(r)
	}
	return len(origins) == 1 && publicOrigin(origins[0]) == want && sameOriginSyntax(origins[0])
}

// sameOriginSyntax reports whether an Origin header is a bare origin
// (scheme://host[:port]) with nothing after it.
func sameOriginSyntax(origin string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && !strings.ContainsAny(rest, "/?#@")
}

// requestOrigin is the origin a request was sent to.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return publicOrigin(scheme + "://" + r.Host)
}

// ctxKey types keep request-scoped values private.
type (
	clientIPKey struct{}
	sessionKey  struct{}
)

// authInfo is the logged-in identity of a request.
type authInfo struct {
	session *account.Session
	user    *account.User
	token   string
}

// clientIP stores the client's IP address in the request context.
func (s *server) clientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), clientIPKey{}, s.realIP(r))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// clientIPFrom returns the client IP the clientIP middleware found (the
// zero Addr if none).
func clientIPFrom(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip
}

// realIP is the TCP peer, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For address that is not a trusted proxy.
func (s *server) realIP(r *http.Request) netip.Addr {
	ip := parseHop(r.RemoteAddr)
	if !ip.IsValid() || !s.trusted(ip) {
		return ip
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseHop(hops[i])
		if !hop.IsValid() {
			break // garbage: trust nothing further left
		}
		if !s.trusted(hop) {
			return hop
		}
		ip = hop
	}
	return ip
}

// parseHop parses "addr", "addr:port" or "[addr]:port".
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

func (s *server) trusted(ip netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ipKey is the rate-limit key of a client: the address, or for IPv6 its
// /64, which one subscriber usually holds whole.
func ipKey(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is6():
		return netip.PrefixFrom(ip, 64).Masked().String()
	default:
		return ip.String()
	}
}

// authenticated lets only requests with a live session through: the
// token in "Authorization: Bearer" or else in the session cookie. A cookie
// session gets its cookie renewed (the session slides).
func (s *server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, fromCookie := sessionToken(r)
		if token == "" {
			s.error(w, r, account.ErrSessionNotFound)
			return
		}
		sess, u, err := s.accounts.Authenticate(r.Context(), token)
		if err != nil {
			if fromCookie && account.ErrorCode(err) == account.CodeUnauthorized {
				clearSessionCookie(w)
			}
			s.error(w, r, err)
			return
		}
		if fromCookie {
			setSessionCookie(w, token, sess.ExpiresAt)
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, &authInfo{session: sess, user: u, token: token})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// auth returns the identity the authenticated middleware found.
func auth(r *http.Request) *authInfo {
	a, _ := r.Context().Value(sessionKey{}).(*authInfo)
	if a == nil {
		panic("api: handler behind authenticated called without it")
	}
	return a
}

// sessionToken returns the session token of r and whether it came from
// the cookie. A present but malformed Authorization header gives "".
func sessionToken(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		return strings.TrimSpace(tok), false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

func setSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}

// clearSessionCookie replaces any Set-Cookie of this answer by one that
// deletes the session cookie.
func clearSessionCookie(w http.ResponseWriter) {
	w.Header().Del("Set-Cookie")
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}
