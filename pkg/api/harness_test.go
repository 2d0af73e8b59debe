package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// testStore is what the relay's stores implement: accounts and devices.
type testStore interface {
	account.Store
	keystore.Store
}

// newStoreFunc opens a fresh, empty store for one test.
type newStoreFunc func(t testing.TB) testStore

func newSQLite(t testing.TB) testStore {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// stores are the stores the API suite runs against; postgres is added in
// postgres_test.go when it is available.
var stores = map[string]newStoreFunc{"sqlite": newSQLite}

// forEachStore runs f once per store as a subtest.
func forEachStore(t *testing.T, f func(t *testing.T, newStore newStoreFunc)) {
	for name, ns := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, ns)
		})
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mailbox is an account.Mailer that keeps every mail.
type mailbox struct {
	mu    sync.Mutex
	mails []account.Mail
}

func (m *mailbox) Send(_ context.Context, mail account.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, mail)
	return nil
}

// all returns the mails so far.
func (m *mailbox) all() []account.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]account.Mail(nil), m.mails...)
}

// last returns the last mail of kind to to, failing the test if none.
func (m *mailbox) last(t *testing.T, to string, kind account.MailKind) account.Mail {
	t.Helper()
	mails := m.all()
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].To == to && mails[i].Kind == kind {
			return mails[i]
		}
	}
	t.Fatalf("no %s mail to %s; mails: %+v", kind, to, mails)
	return account.Mail{}
}

// count returns how many mails of kind went to to.
func (m *mailbox) count(to string, kind account.MailKind) int {
	n := 0
	for _, mail := range m.all() {
		if mail.To == to && mail.Kind == kind {
			n++
		}
	}
	return n
}

// linkToken returns the token of a mailed link.
func linkToken(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("mailed link %q: %v", link, err)
	}
	tok := u.Query().Get("token")
	if tok == "" {
		t.Fatalf("mailed link %q has no token", link)
	}
	return tok
}

// env is one relay API on an httptest TLS server with a fake clock and
// mailbox.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	store    testStore
	svc      *account.Service
	api      *server
	tunnels  *fakeTunnels // nil with envOptions.noTunnels
	relayKey wgkey.Public
	mail     *mailbox
	clock    *fakeClock
	baseURL  string
}

type envOptions struct {
	newStore       newStoreFunc
	limits         RateLimits
	trustedProxies []netip.Prefix
	apiPublicURL   string
	logs           io.Writer // also gets the logs (JSON, debug level)
	noTunnels      bool      // Config.Tunnels nil, as before the UDP side exists
}

// testRelayEndpoint is the UDP endpoint the test relays tell devices.
const testRelayEndpoint = "relay.example:51820"

// noLimits switches every rate limit off.
func noLimits() RateLimits {
	l := RateLimits{}
	for _, f := range l.fields() {
		*f.rate = ratelimit.NoLimit
	}
	return l
}

// newEnv starts an API over a fresh store (SQLite unless o.newStore). Rate
// limits are off unless o.limits sets some.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.newStore == nil {
		o.newStore = newSQLite
	}
	if o.limits == (RateLimits{}) {
		o.limits = noLimits()
	}
	e := &env{t: t, store: o.newStore(t), mail: &mailbox{}, clock: &fakeClock{t: time.Now().UTC().Truncate(time.Second)}}
	e.srv = httptest.NewUnstartedServer(nil)
	e.baseURL = "https://" + e.srv.Listener.Addr().String()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	if o.logs != nil {
		logger = slog.New(slog.NewJSONHandler(io.MultiWriter(t.Output(), o.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := account.DefaultServiceConfig()
	cfg.PublicURL = e.baseURL
	cfg.MinKDF = zkcrypto.TestKDFParams()
	cfg.Now = e.clock.Now
	// As pkg/server wires it: a reset without the recovery file ends the
	// user's device access.
	cfg.KeysReplacedFunc = func(ctx context.Context, userID string) error {
		_, err := e.store.DeleteUserDeviceAccess(ctx, userID)
		return err
	}
	svc, err := account.NewService(t.Context(), e.store, e.mail, cfg, logger)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	e.svc = svc
	relayKey, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e.relayKey = relayKey.Public()
	apiCfg := Config{
		PublicURL:      o.apiPublicURL,
		TrustedProxies: o.trustedProxies,
		Limits:         o.limits,
		Now:            e.clock.Now,
		Devices:        e.store,
		Relay:          RelayInfo{PublicKey: e.relayKey, Endpoint: testRelayEndpoint},
	}
	if !o.noTunnels {
		e.tunnels = newFakeTunnels()
		apiCfg.Tunnels = e.tunnels
	}
	e.api = newServer(apiCfg, svc, logger)
	if e.tunnels != nil {
		e.api.leases.releasedForTest = func(device string, index int) {
			select {
			case e.tunnels.released <- slotID{device, index}:
			default: // nobody waits for it
			}
		}
	}
	e.srv.Config.Handler = e.api.routes()
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// reqOption changes a request before it is sent.
type reqOption func(*http.Request)

func bearer(token string) reqOption {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func header(k, v string) reqOption { return func(r *http.Request) { r.Header.Set(k, v) } }

func withCookie(c *http.Cookie) reqOption { return func(r *http.Request) { r.AddCookie(c) } }

// rawBody is a request body sent as is.
type rawBody struct {
	contentType string
	data        []byte
}

// do sends a request; body is JSON-encoded unless it is a rawBody or nil.
func (e *env) do(method, path string, body any, opts ...reqOption) *response {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, ct = bytes.NewReader(b.data), b.contentType
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal request: %v", err)
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.baseURL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}
}

// want fails the test unless the status is status; it returns r.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// decode unmarshals the body into v.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// wantError fails the test unless r is an error answer with status and
// code.
func (r *response) wantError(t *testing.T, status int, code account.Code) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s); body: %s", r.status, status, code, r.body)
	}
	var eb errorBody
	r.decode(t, &eb)
	if eb.Error.Code != code || eb.Error.Message == "" {
		t.Fatalf("error %+v, want code %s with a message", eb.Error, code)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
}

// cookie returns the named cookie the answer sets, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// client is the client side of one account: what blindctl or the browser
// would derive and keep.
type client struct {
	email    string
	salt     []byte
	kdf      zkcrypto.KDFParams
	derived  *zkcrypto.DerivedKeys
	keys     *zkcrypto.UserKeys
	sealed   []byte // keys encrypted under derived.SecretKey
	token    string // session token after login
	password string
}

// newClient derives keys for email and password with the test KDF.
func newClient(t *testing.T, email, password string) *client {
	t.Helper()
	keys, err := zkcrypto.GenerateUserKeys()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{email: email, keys: keys}
	c.setPassword(t, password)
	return c
}

// setPassword derives new credentials for password (new salt) and
// re-encrypts the same keys.
func (c *client) setPassword(t *testing.T, password string) {
	t.Helper()
	salt, err := zkcrypto.NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	c.salt, c.kdf, c.password = salt, zkcrypto.TestKDFParams(), password
	if c.derived, err = zkcrypto.DeriveKeys([]byte(password), c.salt, c.kdf); err != nil {
		t.Fatal(err)
	}
	if c.sealed, err = c.keys.Encrypt(c.derived.SecretKey); err != nil {
		t.Fatal(err)
	}
}

func (c *client) loginKey() []byte { return c.derived.LoginKey[:] }

func (c *client) credentials() credentialsJSON {
	return credentialsJSON{
		Salt: c.salt, KDF: c.kdf, LoginKey: c.loginKey(),
		BoxPublicKey: c.keys.BoxPublic[:], SignPublicKey: c.keys.SignPublic,
		EncryptedPrivateKeys: c.sealed,
	}
}

func (c *client) registerRequest() registerRequest {
	return registerRequest{Email: c.email, credentialsJSON: c.credentials()}
}

// signup registers c and confirms the mailed link.
func (e *env) signup(t *testing.T, c *client) {
	t.Helper()
	e.do("POST", "/api/v1/auth/register", c.registerRequest()).want(t, http.StatusAccepted)
	tok := linkToken(t, e.mail.last(t, c.email, account.MailVerifyEmail).Link)
	e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: tok}).want(t, http.StatusOK)
}

// login logs c in, keeps the token and returns the answer.
func (e *env) login(t *testing.T, c *client) *response {
	t.Helper()
	r := e.do("POST", "/api/v1/auth/login", loginRequest{Email: c.email, LoginKey: c.loginKey()}).want(t, http.StatusOK)
	ck := r.cookie(sessionCookie)
	if ck == nil {
		t.Fatal("login set no session cookie")
	}
	c.token = ck.Value
	return r
}

// newUser signs up, verifies and logs in a fresh account.
func (e *env) newUser(t *testing.T, email string) *client {
	t.Helper()
	c := newClient(t, email, "correct horse battery staple")
	e.signup(t, c)
	e.login(t, c)
	return c
}
