package apiclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// The tests in this file run the client against the real API handler and
// account service on SQLite, with the mails caught in memory.

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

// link returns the link of the newest mail of kind to the address.
func (m *mailbox) link(t *testing.T, to string, kind account.MailKind) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mail := range slices.Backward(m.mails) {
		if mail.To == to && mail.Kind == kind {
			return mail.Link
		}
	}
	t.Fatalf("no %s mail to %s", kind, to)
	return ""
}

// testRelay is a relay in an httptest server.
type testRelay struct {
	srv      *httptest.Server
	mail     *mailbox
	store    *sqlite.Store
	relayKey wgkey.Public
	tunnels  *echoTunnels
}

func newTestRelay(t *testing.T) *testRelay {
	t.Helper()
	ctx := t.Context()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mb := &mailbox{}
	svc, err := account.NewService(ctx, st, mb, account.ServiceConfig{
		PublicURL:  "https://relay.example",
		DefaultKDF: zkcrypto.TestKDFParams(),
		MinKDF:     zkcrypto.TestKDFParams(),
		KeysReplacedFunc: func(ctx context.Context, userID string) error {
			_, err := st.DeleteUserDeviceAccess(ctx, userID)
			return err
		},
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	relayKey, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	no := api.Limit{PerIP: ratelimit.NoLimit, PerAccount: ratelimit.NoLimit}
	limits := api.RateLimits{Salt: no, Login: no, Register: no, Resend: no, Reset: no, EmailChange: no, Pair: no}
	tunnels := &echoTunnels{offline: map[string]bool{}}
	srv := httptest.NewTLSServer(api.New(api.Config{
		Limits:  limits,
		Devices: st,
		Relay:   api.RelayInfo{PublicKey: relayKey.Public(), Endpoint: "relay.example:51820"},
		Tunnels: tunnels,
	}, svc, logger))
	t.Cleanup(srv.Close)
	return &testRelay{srv: srv, mail: mb, store: st, relayKey: relayKey.Public(), tunnels: tunnels}
}

// client returns a new client of the relay (its own session).
func (r *testRelay) client(t *testing.T) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(r.srv.URL,
		apiclient.WithHTTPClient(r.srv.Client()),
		apiclient.WithKDFLimits(zkcrypto.TestKDFParams(), zkcrypto.MaxKDFParams()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signUp registers and verifies an account and returns its user keys.
func (r *testRelay) signUp(t *testing.T, email, password string) *zkcrypto.UserKeys {
	t.Helper()
	c := r.client(t)
	keys, err := c.Register(t.Context(), email, []byte(password), "de", apiclient.KDFParams{})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if _, err := c.Verify(t.Context(), r.mail.link(t, email, account.MailVerifyEmail)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return keys
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiclient.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v, want code %q", what, err, code)
	}
}

func TestLifeCycle(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	ctx := t.Context()
	const email, password = "alice@example.com", "correct horse"
	c := r.client(t)

	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !bytes.Contains(doc, []byte(`"openapi"`)) {
		t.Fatalf("OpenAPI: %v (%d bytes)", err, len(doc))
	}

	// Sign up; log-in waits for the confirmation.
	keys, err := c.Register(ctx, email, []byte(password), "de", apiclient.KDFParams{})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	_, _, err = c.Login(ctx, email, []byte(password))
	wantCode(t, "Login before verify", err, "email_not_verified")
	if _, err := c.Resend(ctx, email); err != nil {
		t.Fatalf("Resend: %v", err)
	}
	v, err := c.Verify(ctx, r.mail.link(t, email, account.MailVerifyEmail))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.Email != email || v.Purpose != apiclient.PurposeVerifyEmail {
		t.Errorf("Verify = %+v", v)
	}

	// Log in; the derived keys open the private keys on the server.
	_, _, err = c.Login(ctx, email, []byte("wrong password"))
	wantCode(t, "Login with a wrong password", err, "invalid_credentials")
	sess, dk, err := c.Login(ctx, email, []byte(password))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if sess.Token == "" || sess.User.Email != email || !sess.User.Verified {
		t.Errorf("Login session = %+v", sess)
	}
	me, err := c.Me(ctx)
	if err != nil || me.Email != email || me.Language != "de" || me.KDF != zkcrypto.TestKDFParams() {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	mk, err := c.MyKeys(ctx)
	if err != nil {
		t.Fatalf("MyKeys: %v", err)
	}
	if _, err := zkcrypto.DecryptUserKeys(dk.SecretKey, mk.EncryptedPrivateKeys, keys.BoxPublic[:], keys.SignPublic); err != nil {
		t.Fatalf("the derived secret key does not open the stored keys: %v", err)
	}
	if u, err := c.SetLanguage(ctx, "fr"); err != nil || u.Language != "fr" {
		t.Fatalf("SetLanguage = %+v, %v", u, err)
	}

	// Recovery file.
	if _, err := c.RecoveryFile(ctx, []byte("wrong password")); !errors.Is(err, apiclient.ErrWrongPassword) {
		t.Fatalf("RecoveryFile with a wrong password: %v", err)
	}
	file, err := c.RecoveryFile(ctx, []byte(password))
	if err != nil {
		t.Fatalf("RecoveryFile: %v", err)
	}
	fileKeys, info, err := zkcrypto.ParseRecoveryFile(file)
	if err != nil || info.Email != email || fileKeys.BoxPublic != keys.BoxPublic {
		t.Fatalf("recovery file: %v, %+v", err, info)
	}

	// Password change: another session ends, this one stays.
	other := r.client(t)
	if _, _, err := other.Login(ctx, email, []byte(password)); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePassword(ctx, []byte("wrong password"), []byte("new password 1"), apiclient.KDFParams{}); !errors.Is(err, apiclient.ErrWrongPassword) {
		t.Fatalf("ChangePassword with a wrong password: %v", err)
	}
	if err := c.ChangePassword(ctx, []byte(password), []byte("new password 1"), apiclient.KDFParams{}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	_, err = other.Me(ctx)
	wantCode(t, "other session after the password change", err, "unauthorized")
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("own session after the password change: %v", err)
	}
	_, _, err = other.Login(ctx, email, []byte(password))
	wantCode(t, "Login with the old password", err, "invalid_credentials")
	if _, _, err := other.Login(ctx, email, []byte("new password 1")); err != nil {
		t.Fatalf("Login with the new password: %v", err)
	}
	if n, err := other.LogoutAll(ctx); err != nil || n != 2 {
		t.Fatalf("LogoutAll = %d, %v; want 2 sessions", n, err)
	}
	if other.SessionToken() != "" {
		t.Error("LogoutAll kept the token")
	}

	// E-mail change.
	c = r.client(t)
	if _, _, err := c.Login(ctx, email, []byte("new password 1")); err != nil {
		t.Fatal(err)
	}
	const newEmail = "alice@example.org"
	err = c.ChangeEmail(ctx, []byte("wrong password"), newEmail)
	wantCode(t, "ChangeEmail with a wrong password", err, "invalid_credentials")
	if err := c.ChangeEmail(ctx, []byte("new password 1"), newEmail); err != nil {
		t.Fatalf("ChangeEmail: %v", err)
	}
	v, err = c.Verify(ctx, r.mail.link(t, newEmail, account.MailChangeEmailConfirm))
	if err != nil || v.Email != newEmail || v.Purpose != apiclient.PurposeChangeEmail {
		t.Fatalf("Verify change = %+v, %v", v, err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err = c.Me(ctx)
	wantCode(t, "Me after Logout", err, "unauthorized")

	// Reset with the recovery file: same keys, new password.
	if _, err := c.RequestReset(ctx, newEmail, ""); err != nil {
		t.Fatalf("RequestReset: %v", err)
	}
	link := r.mail.link(t, newEmail, account.MailResetPassword)
	wrongFile := r.recoveryFileOf(t, "mallory@example.com", "mallory password")
	if _, err := c.ResetWithRecovery(ctx, link, wrongFile, []byte("new password 2"), apiclient.KDFParams{}); !errors.Is(err, apiclient.ErrRecoveryMismatch) {
		t.Fatalf("ResetWithRecovery with another account's file: %v", err)
	}
	if _, err := c.ResetWithRecovery(ctx, link, []byte("{}"), []byte("new password 2"), apiclient.KDFParams{}); !errors.Is(err, zkcrypto.ErrNotRecoveryFile) {
		t.Fatalf("ResetWithRecovery with a broken file: %v", err)
	}
	res, err := c.ResetWithRecovery(ctx, link, file, []byte("new password 2"), apiclient.KDFParams{})
	if err != nil || !res.KeysKept {
		t.Fatalf("ResetWithRecovery = %+v, %v", res, err)
	}
	_, err = c.ResetInfo(ctx, link)
	wantCode(t, "ResetInfo of a used link", err, "token_invalid")
	if _, _, err := c.Login(ctx, newEmail, []byte("new password 2")); err != nil {
		t.Fatalf("Login after the reset: %v", err)
	}
	if mk, err := c.MyKeys(ctx); err != nil || !bytes.Equal(mk.BoxPublicKey, keys.BoxPublic[:]) || !bytes.Equal(mk.SignPublicKey, keys.SignPublic) {
		t.Fatalf("keys after a reset with the recovery file changed: %v", err)
	}

	// Reset without the recovery file: new keys.
	if _, err := c.RequestReset(ctx, newEmail, "en"); err != nil {
		t.Fatal(err)
	}
	link = r.mail.link(t, newEmail, account.MailResetPassword)
	newKeys, res, err := c.ResetWithoutRecovery(ctx, link, []byte("new password 3"), apiclient.KDFParams{})
	if err != nil || res.KeysKept {
		t.Fatalf("ResetWithoutRecovery = %+v, %v", res, err)
	}
	if newKeys.BoxPublic == keys.BoxPublic {
		t.Error("ResetWithoutRecovery kept the box key")
	}
	_, err = c.Me(ctx)
	wantCode(t, "Me after the reset", err, "unauthorized")
	if _, _, err := c.Login(ctx, newEmail, []byte("new password 3")); err != nil {
		t.Fatalf("Login after the second reset: %v", err)
	}
	mk, err = c.MyKeys(ctx)
	if err != nil || !bytes.Equal(mk.BoxPublicKey, newKeys.BoxPublic[:]) {
		t.Fatalf("keys after a reset without recovery file: %v", err)
	}

	// Delete.
	err = c.DeleteAccount(ctx, []byte("wrong password"))
	wantCode(t, "DeleteAccount with a wrong password", err, "invalid_credentials")
	if err := c.DeleteAccount(ctx, []byte("new password 3")); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, _, err = c.Login(ctx, newEmail, []byte("new password 3"))
	wantCode(t, "Login after DeleteAccount", err, "invalid_credentials")
}

// recoveryFileOf signs up another account and returns its recovery file.
func (r *testRelay) recoveryFileOf(t *testing.T, email, password string) []byte {
	t.Helper()
	keys := r.signUp(t, email, password)
	file, err := keys.RecoveryFile(email, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func TestWireErrors(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	ctx := t.Context()
	c := r.client(t)

	_, err := c.Me(ctx)
	wantCode(t, "Me without a session", err, "unauthorized")
	if e, _ := errors.AsType[*apiclient.Error](err); e.Status != 401 || e.Message == "" {
		t.Errorf("Me without a session: %+v", e)
	}
	_, err = c.Verify(ctx, "https://relay.example/verify?token=bogus")
	wantCode(t, "Verify with a bogus token", err, "token_invalid")
	_, err = c.SubmitRegistration(ctx, &apiclient.RegisterRequest{Email: "bob@example.com", Salt: []byte{1}})
	wantCode(t, "SubmitRegistration with bad fields", err, "invalid_input")

	// The relay refuses parameters below its minimum even if the client
	// would take them.
	weak := zkcrypto.TestKDFParams()
	weak.Version = 16
	_, err = c.Register(ctx, "bob@example.com", []byte("password"), "", weak)
	if !errors.Is(err, apiclient.ErrKDFRefused) {
		t.Errorf("Register with version 16: %v", err)
	}

	// Unknown addresses get a salt of the same shape and the default
	// parameters; log-in fails like a wrong password.
	s, err := c.Salt(ctx, "nobody@example.com")
	if err != nil || len(s.Salt) != zkcrypto.SaltSize || s.KDF != zkcrypto.TestKDFParams() {
		t.Fatalf("Salt for an unknown address = %+v, %v", s, err)
	}
	_, _, err = c.Login(ctx, "nobody@example.com", []byte("password"))
	wantCode(t, "Login of an unknown address", err, "invalid_credentials")
}
