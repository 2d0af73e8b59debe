// Package devicetest starts a real relay (pkg/server on 127.0.0.1:0 with
// SQLite in a temporary directory and mail to its outbox) and plays a user
// of it: register, confirm the mailed link, log in, make pairing tokens.
// It is for the tests of pkg/device and cmd/devicesim, and for end-to-end
// tests that pair devices; it is not for production code.
package devicetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// Relay is a running relay.
type Relay struct {
	URL        string       // https://localhost:PORT
	HTTPClient *http.Client // trusts the relay's self-signed certificate
	DataDir    string
	// UDPEndpoint is the relay's UDP address (127.0.0.1:PORT), which
	// pairing devices are told and reach it at.
	UDPEndpoint string
	outbox      string
}

// KDFOptions are the apiclient options a client of a test relay needs: the
// relay derives keys with zkcrypto.TestKDFParams, which clients refuse by
// default.
func KDFOptions() []apiclient.Option {
	return []apiclient.Option{apiclient.WithKDFLimits(zkcrypto.TestKDFParams(), zkcrypto.MaxKDFParams())}
}

// NewRelay starts a relay that lives until the test ends, with rate limits
// off and tiny KDF parameters, HTTPS and UDP on 127.0.0.1 (free ports).
// Its logs go to the test's output.
func NewRelay(t testing.TB) *Relay {
	t.Helper()
	dir := t.TempDir()
	no := api.Limit{PerIP: ratelimit.NoLimit, PerAccount: ratelimit.NoLimit}
	cfg := server.Config{
		DataDir: dir,
		HTTP:    server.HTTPConfig{Listen: "127.0.0.1:0"},
		// Devices are told the bound address (127.0.0.1:port).
		UDP:     server.UDPConfig{Listen: "127.0.0.1:0"},
		Account: account.ServiceConfig{DefaultKDF: zkcrypto.TestKDFParams(), MinKDF: zkcrypto.TestKDFParams()},
		Limits:  api.RateLimits{Salt: no, Login: no, Register: no, Resend: no, Reset: no, EmailChange: no, Pair: no},
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay Serve: %v", err)
		}
	})
	return &Relay{
		URL:         srv.URL(),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}},
		DataDir:     dir,
		UDPEndpoint: srv.PublicUDP(),
		outbox:      dir + "/outbox",
	}
}

// User is a registered, confirmed and logged-in user of a Relay.
type User struct {
	Email    string
	Password string
	Keys     *zkcrypto.UserKeys // the user's key pairs, private halves included
	Client   *apiclient.Client  // logged in
	ID       string
	Relay    *Relay // the relay the user is registered with
}

// NewUser registers a user with a random e-mail address, confirms it with
// the mailed link and logs in.
func (r *Relay) NewUser(t testing.TB) *User {
	t.Helper()
	ctx := t.Context()
	u := &User{Email: "user-" + rand.Text()[:10] + "@example.com", Password: "correct horse battery staple", Relay: r}
	c, err := r.Client()
	if err != nil {
		t.Fatal(err)
	}
	u.Client = c
	if u.Keys, err = c.Register(ctx, u.Email, []byte(u.Password), "en", zkcrypto.TestKDFParams()); err != nil {
		t.Fatalf("register: %v", err)
	}
	link := r.link(t, u.Email, account.MailVerifyEmail)
	if _, err := c.Verify(ctx, apiclient.ParseToken(link)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	s, _, err := c.Login(ctx, u.Email, []byte(u.Password))
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	u.ID = s.User.ID
	return u
}

// Client returns a new client of the relay, not logged in.
func (r *Relay) Client() (*apiclient.Client, error) {
	return apiclient.New(r.URL, append([]apiclient.Option{apiclient.WithHTTPClient(r.HTTPClient)}, KDFOptions()...)...)
}

// Token makes a pairing token for the user that pairs up to uses devices
// within an hour, and returns its string (BRP1.…).
func (u *User) Token(t testing.TB, name string, uses int) string {
	t.Helper()
	info, err := u.Client.CreatePairingToken(t.Context(), name, uses, time.Hour)
	if err != nil {
		t.Fatalf("create pairing token: %v", err)
	}
	tok, err := u.Client.NewPairingToken(t.Context(), info, u.Keys.BoxPublic[:], u.Keys.SignPublic)
	if err != nil {
		t.Fatalf("pairing token: %v", err)
	}
	return tok.String()
}

// link waits for the newest mail of kind to the address and returns its
// link. Mail goes out through a queue, so it lands a moment after the
// request.
func (r *Relay) link(t testing.TB, to string, kind account.MailKind) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		link, err := mail.LatestLink(r.outbox, to, kind)
		if err == nil {
			return link
		}
		if !errors.Is(err, mail.ErrNoMail) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LatestLink: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("no %s mail to %s: %w", kind, to, err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
