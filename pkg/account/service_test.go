package account_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"someone@example.org", "someone@example.org", true},
		{"  Someone@Example.ORG\t", "someone@example.org", true},
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org", true},
		{"user@localhost", "user@localhost", true},
		{"", "", false},
		{"   ", "", false},
		{"no-at-sign", "", false},
		{"@example.org", "", false},
		{"someone@", "", false},
		{"Someone <someone@example.org>", "", false},
		{"someone@example.org (comment)", "", false},
		{"a@b.c, d@e.f", "", false},
		{"a b@example.org", "", false},
		{"a@b.c\r\nBcc: x@y.z", "", false},
		{strings.Repeat("a", 242) + "@example.org", strings.Repeat("a", 242) + "@example.org", true}, // 254
		{strings.Repeat("a", 243) + "@example.org", "", false},                                       // 255
	}
	for _, tt := range tests {
		got, err := account.NormalizeEmail(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && account.ErrorCode(err) != account.CodeInvalidInput {
			t.Errorf("NormalizeEmail(%q) error code %s", tt.in, account.ErrorCode(err))
		}
	}
}

// recorder is a Mailer that keeps mails and can be told to fail.
type recorder struct {
	mu    sync.Mutex
	mails []account.Mail
	fail  bool
}

func (r *recorder) Send(_ context.Context, m account.Mail) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("queue full")
	}
	r.mails = append(r.mails, m)
	return nil
}

func (r *recorder) last() account.Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mails[len(r.mails)-1]
}

func openStore(t *testing.T) account.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testConfig() account.ServiceConfig {
	return account.ServiceConfig{PublicURL: "https://relay.example/", MinKDF: zkcrypto.TestKDFParams()}
}

func newService(t *testing.T, st account.Store, m account.Mailer) *account.Service {
	t.Helper()
	svc, err := account.NewService(t.Context(), st, m, testConfig(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestServiceConfig(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	svc := newService(t, st, &recorder{})
	cfg := svc.Config()
	def := account.DefaultServiceConfig()
	if cfg.SessionTTL != 30*24*time.Hour || cfg.VerifyTTL != 24*time.Hour || cfg.ResetTTL != time.Hour || cfg.ChangeEmailTTL != 24*time.Hour {
		t.Errorf("lifetimes %v %v %v %v", cfg.SessionTTL, cfg.VerifyTTL, cfg.ResetTTL, cfg.ChangeEmailTTL)
	}
	if cfg.DefaultKDF != def.DefaultKDF || cfg.MaxKDF != def.MaxKDF || cfg.MinKDF != zkcrypto.TestKDFParams() || cfg.Now == nil {
		t.Errorf("kdf bounds or clock not filled in: %+v", cfg)
	}
	if cfg.PublicURL != "https://relay.example" {
		t.Errorf("PublicURL %q, want it without the trailing slash", cfg.PublicURL)
	}

	bad := []struct {
		name string
		mod  func(*account.ServiceConfig)
	}{
		{"no public url", func(c *account.ServiceConfig) { c.PublicURL = "" }},
		{"relative url", func(c *account.ServiceConfig) { c.PublicURL = "/relay" }},
		{"ftp url", func(c *account.ServiceConfig) { c.PublicURL = "ftp://relay.example" }},
		{"url with query", func(c *account.ServiceConfig) { c.PublicURL = "https://relay.example/?a=b" }},
		{"negative ttl", func(c *account.ServiceConfig) { c.ResetTTL = -time.Second }},
		{"default below min", func(c *account.ServiceConfig) { c.MinKDF = zkcrypto.MaxKDFParams() }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mod(&cfg)
			if _, err := account.NewService(t.Context(), st, &recorder{}, cfg, nil); err == nil {
				t.Error("NewService accepted the config")
			}
		})
	}
}

// TestFakeSaltSharedByNodes checks that two services on one store (two
// relay nodes) give the same fake salt: the secret lives in the store.
func TestFakeSaltSharedByNodes(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	a := newService(t, st, &recorder{})
	b := newService(t, st, &recorder{})
	saltA, kdfA, err := a.Salt(t.Context(), "nobody@example.org")
	if err != nil {
		t.Fatal(err)
	}
	saltB, kdfB, err := b.Salt(t.Context(), "NOBODY@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if string(saltA) != string(saltB) || kdfA != kdfB || len(saltA) != account.SaltSize {
		t.Errorf("fake salts differ between nodes: %x %x", saltA, saltB)
	}
	other := newService(t, openStore(t), &recorder{})
	saltC, _, _ := other.Salt(t.Context(), "nobody@example.org")
	if string(saltA) == string(saltC) {
		t.Error("two relays with different secrets give the same fake salt")
	}
}

// registration is a client's sign-up with the test KDF.
func registration(t *testing.T, email string) (account.RegisterInput, *zkcrypto.DerivedKeys, *zkcrypto.UserKeys) {
	t.Helper()
	salt, _ := zkcrypto.NewSalt()
	dk, err := zkcrypto.DeriveKeys([]byte("pw"), salt, zkcrypto.TestKDFParams())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := zkcrypto.GenerateUserKeys()
	sealed, _ := keys.Encrypt(dk.SecretKey)
	return account.RegisterInput{Email: email, Credentials: account.ClientCredentials{
		Salt: salt, KDF: zkcrypto.TestKDFParams(), LoginKey: dk.LoginKey[:],
		BoxPublicKey: keys.BoxPublic[:], SignPublicKey: keys.SignPublic, EncryptedPrivateKeys: sealed,
	}}, dk, keys
}

// TestMailFailureHidden checks that a mail that cannot be sent changes
// no answer (it would tell which addresses have accounts).
func TestMailFailureHidden(t *testing.T) {
	t.Parallel()
	m := &recorder{fail: true}
	svc := newService(t, openStore(t), m)
	ctx := t.Context()
	in, _, _ := registration(t, "a@example.org")
	for range 2 {
		if err := svc.Register(ctx, in); err != nil {
			t.Fatalf("Register with a failing mailer: %v", err)
		}
	}
	if err := svc.Resend(ctx, "a@example.org"); err != nil {
		t.Errorf("Resend: %v", err)
	}
	if err := svc.RequestReset(ctx, "a@example.org", ""); err != nil {
		t.Errorf("RequestReset: %v", err)
	}
}

// TestConcurrentRegister checks that racing sign-ups for one new address
// all get the same answer and leave one account.
func TestConcurrentRegister(t *testing.T) {
	t.Parallel()
	m := &recorder{}
	st := openStore(t)
	svc := newService(t, st, m)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		in, _, _ := registration(t, "race@example.org")
		wg.Go(func() { errs <- svc.Register(t.Context(), in) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Register: %v", err)
		}
	}
	if _, err := st.UserByEmail(t.Context(), "race@example.org"); err != nil {
		t.Errorf("UserByEmail: %v", err)
	}
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	m := &recorder{}
	svc := newService(t, openStore(t), m)
	ctx := t.Context()
	in, dk, _ := registration(t, "login@example.org")
	if err := svc.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	wrong := make([]byte, 32)
	_, errUnknown := svc.Login(ctx, "nobody@example.org", wrong)
	_, errWrong := svc.Login(ctx, "login@example.org", wrong)
	if !errors.Is(errUnknown, account.ErrInvalidCredentials) || !errors.Is(errWrong, account.ErrInvalidCredentials) {
		t.Errorf("unknown: %v, wrong key: %v; want ErrInvalidCredentials for both", errUnknown, errWrong)
	}
	if _, err := svc.Login(ctx, "login@example.org", dk.LoginKey[:]); account.ErrorCode(err) != account.CodeEmailNotVerified {
		t.Errorf("unverified login: %v", err)
	}
	if _, _, err := svc.Authenticate(ctx, "not a token"); !errors.Is(err, account.ErrSessionNotFound) {
		t.Errorf("Authenticate(garbage) = %v", err)
	}
}

func TestCompleteResetInput(t *testing.T) {
	t.Parallel()
	m := &recorder{}
	svc := newService(t, openStore(t), m)
	ctx := t.Context()
	in, _, keys := registration(t, "r@example.org")
	if err := svc.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := svc.RequestReset(ctx, "r@example.org", "fr"); err != nil {
		t.Fatal(err)
	}
	mail := m.last()
	if mail.Kind != account.MailResetPassword || mail.Language != "fr" || !strings.HasPrefix(mail.Link, "https://relay.example/reset?token=") {
		t.Fatalf("reset mail %+v", mail)
	}
	token := strings.TrimPrefix(mail.Link, "https://relay.example/reset?token=")
	newIn, _, _ := registration(t, "r@example.org")
	tests := []struct {
		name string
		in   account.CompleteResetInput
		code account.Code
	}{
		{"signature without keep_keys", account.CompleteResetInput{Token: token, Credentials: newIn.Credentials, Signature: make([]byte, 64)}, account.CodeInvalidInput},
		{"keep_keys without signature", account.CompleteResetInput{Token: token, KeepKeys: true, Credentials: in.Credentials}, account.CodeInvalidInput},
		{"no token", account.CompleteResetInput{Credentials: newIn.Credentials}, account.CodeInvalidInput},
		{"bad token", account.CompleteResetInput{Token: "x", Credentials: newIn.Credentials}, account.CodeTokenInvalid},
		{"signature over another token", account.CompleteResetInput{Token: token, KeepKeys: true, Credentials: in.Credentials,
			Signature: keys.Sign(zkcrypto.ResetMessage(strings.Repeat("A", 43), zkcrypto.HashLoginKey(in.Credentials.LoginKey)))}, account.CodeRecoveryMismatch},
	}
	for _, tt := range tests {
		if _, err := svc.CompleteReset(ctx, tt.in); account.ErrorCode(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
	// None of them used the token up.
	if _, err := svc.ResetInfo(ctx, token); err != nil {
		t.Errorf("ResetInfo after refused attempts: %v", err)
	}
}

// TestKeysReplacedFunc checks that the hook runs for a reset without the
// recovery file only, with the user's id, and that its failure is
// reported.
func TestKeysReplacedFunc(t *testing.T) {
	t.Parallel()
	m := &recorder{}
	st := openStore(t)
	var (
		mu    sync.Mutex
		calls []string
		fail  error
	)
	cfg := testConfig()
	cfg.KeysReplacedFunc = func(_ context.Context, userID string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, userID)
		return fail
	}
	svc, err := account.NewService(t.Context(), st, m, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	in, _, keys := registration(t, "hook@example.org")
	if err := svc.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByEmail(ctx, "hook@example.org")
	if err != nil {
		t.Fatal(err)
	}
	reset := func(keep bool) error {
		t.Helper()
		if err := svc.RequestReset(ctx, "hook@example.org", ""); err != nil {
			t.Fatal(err)
		}
		token := strings.TrimPrefix(m.last().Link, "https://relay.example/reset?token=")
		next, _, _ := registration(t, "hook@example.org")
		ri := account.CompleteResetInput{Token: token, Credentials: next.Credentials}
		if keep {
			ri.KeepKeys = true
			ri.Credentials.BoxPublicKey, ri.Credentials.SignPublicKey = keys.BoxPublic[:], keys.SignPublic
			ri.Signature = keys.Sign(zkcrypto.ResetMessage(token, zkcrypto.HashLoginKey(next.Credentials.LoginKey)))
		}
		_, err := svc.CompleteReset(ctx, ri)
		return err
	}

	if err := reset(true); err != nil {
		t.Fatalf("reset with recovery: %v", err)
	}
	if len(calls) != 0 {
		t.Fatalf("hook ran for a reset that kept the keys: %v", calls)
	}
	if err := reset(false); err != nil {
		t.Fatalf("reset without recovery: %v", err)
	}
	if len(calls) != 1 || calls[0] != u.ID {
		t.Fatalf("hook calls %v, want [%s]", calls, u.ID)
	}
	mu.Lock()
	fail = errors.New("store down")
	mu.Unlock()
	if err := reset(false); account.ErrorCode(err) != account.CodeInternal {
		t.Fatalf("reset with a failing hook: %v, want an internal error", err)
	}
}
