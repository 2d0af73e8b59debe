// Package apiclient is a typed Go client for the blindrelay API
// (docs/api.md, served under /api/v1 by pkg/api): accounts, pairing tokens,
// devices and the tunnel WebSocket.
//
// It has two layers. The endpoint methods (Salt, SubmitRegistration,
// LoginWithKey, Me, MyKeys, CreatePairingToken, PairDevice, Devices,
// DialTunnel, ...) send one request each and carry the documented JSON as
// Go structs. The zero-knowledge helpers (Register, Login, ChangePassword,
// ChangeEmail, DeleteAccount, RecoveryFile, CheckRecovery,
// ResetWithRecovery, ResetWithoutRecovery) do the client-side key work with
// pkg/zkcrypto on top of them, so that the password and the private keys
// never leave the caller. The pairing token string a device takes
// (PairingToken, ParsePairingToken, NewPairingToken) is built here, on the
// user's side, never by the relay.
//
// Errors the server answers with come back as *Error, carrying the stable
// code of pkg/account. The package is not a session store: it keeps the
// session token in memory only, and the caller decides where (if anywhere)
// to persist it. It imports no server code and builds for js/wasm.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// SessionCookieName is the cookie the relay sets on log-in. Its value is the
// session token that Client sends as "Authorization: Bearer".
const SessionCookieName = "blindrelay_session"

// DefaultUserAgent is sent unless WithUserAgent sets another.
const DefaultUserAgent = "blindrelay-apiclient/1"

// Limits on what the client reads back.
const (
	maxResponseSize = 1 << 20  // successful bodies: the API's are tiny
	maxErrorSize    = 64 << 10 // error bodies read for the message
	defaultTimeout  = 60 * time.Second
)

// Client talks to one relay. It is safe for concurrent use; the session
// token is the only state it changes (LoginWithKey, Login, Logout, LogoutAll
// and SetSessionToken).
type Client struct {
	base      *url.URL // the relay's root, e.g. https://relay.example:8443/
	hc        *http.Client
	userAgent string
	minKDF    zkcrypto.KDFParams
	maxKDF    zkcrypto.KDFParams

	mu    sync.Mutex
	token string // guarded by mu
}

// Option configures a Client in New.
type Option func(*options)

type options struct {
	hc        *http.Client
	insecure  bool
	token     string
	userAgent string
	minKDF    *zkcrypto.KDFParams
	maxKDF    *zkcrypto.KDFParams
}

// WithInsecureTLS accepts any TLS certificate the relay presents, as a
// relay with a fresh self-signed certificate needs. It cannot be combined
// with WithHTTPClient (configure that client's transport instead).
func WithInsecureTLS() Option { return func(o *options) { o.insecure = true } }

// WithHTTPClient sends every request through hc instead of a client with
// the default transport and a 60-second timeout.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithSessionToken starts the client with a session token, e.g. one saved
// from an earlier LoginWithKey.
func WithSessionToken(tok string) Option { return func(o *options) { o.token = tok } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithKDFLimits sets the Argon2id parameters the client is willing to derive
// keys with. Parameters outside [min, max] that come from the server (salt
// endpoint, /me/keys) or from the caller are refused before any derivation:
// a weak set would hand the server a login key that is cheap to brute-force,
// a huge one would exhaust the client. The default is
// zkcrypto.MinKDFParams() to zkcrypto.MaxKDFParams().
func WithKDFLimits(min, max zkcrypto.KDFParams) Option {
	return func(o *options) { o.minKDF, o.maxKDF = &min, &max }
}

// New returns a client for the relay at baseURL (scheme and host, e.g.
// "https://relay.example:8443"; a path prefix is kept for relays behind a
// proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      base,
		hc:        o.hc,
		userAgent: o.userAgent,
		token:     o.token,
		minKDF:    zkcrypto.MinKDFParams(),
		maxKDF:    zkcrypto.MaxKDFParams(),
	}
	if o.minKDF != nil {
		c.minKDF, c.maxKDF = *o.minKDF, *o.maxKDF
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	switch {
	case c.hc != nil && o.insecure:
		return nil, errors.New("apiclient: WithInsecureTLS and WithHTTPClient cannot be combined")
	case c.hc == nil:
		c.hc = &http.Client{Timeout: defaultTimeout}
		if o.insecure {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			// The user asked for it: a relay's self-signed certificate.
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec
			c.hc.Transport = tr
		}
	}
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("apiclient: server URL %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("apiclient: server URL %q: scheme must be https or http", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("apiclient: server URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("apiclient: server URL %q: must not have user info, a query or a fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the relay's root URL as the client uses it.
func (c *Client) BaseURL() string { return c.base.String() }

// SessionToken returns the current session token ("" when logged out).
func (c *Client) SessionToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// SetSessionToken replaces the session token ("" to send none).
func (c *Client) SetSessionToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = tok
}

// checkKDF refuses parameters outside the client's limits.
func (c *Client) checkKDF(p zkcrypto.KDFParams) error {
	if err := p.Validate(c.minKDF, c.maxKDF); err != nil {
		return fmt.Errorf("%w: %w", ErrKDFRefused, err)
	}
	return nil
}

// do sends one request. in (if not nil) is sent as JSON; a 2xx answer is
// decoded into out (if not nil and the answer has a body). Any other status
// becomes an *Error. The returned response has its body closed; callers use
// it for headers and cookies.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // *url.Error: names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, parseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseSize))
		return resp, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(out); err != nil {
		return resp, fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return resp, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if tok := c.SessionToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// sessionCookie returns the session token the response set, if any.
func sessionCookie(resp *http.Response) string {
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookieName {
			return ck.Value
		}
	}
	return ""
}
