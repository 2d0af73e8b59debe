package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// fakeSaltSecret names the server secret fake salts are derived from.
const fakeSaltSecret = "fake_salt"

// ServiceConfig configures a Service. Zero fields take the values of
// DefaultServiceConfig, except PublicURL, which is required.
type ServiceConfig struct {
	// PublicURL is the relay's external base URL (scheme and host, maybe a
	// path); mailed links are PublicURL + "/verify?token=..." and
	// PublicURL + "/reset?token=...".
	PublicURL string

	SessionTTL     time.Duration // a session's lifetime, extended on every use
	VerifyTTL      time.Duration // sign-up confirmation links
	ResetTTL       time.Duration // password reset links
	ChangeEmailTTL time.Duration // e-mail change confirmation links

	// DefaultKDF is what the salt endpoint reports for unknown addresses;
	// clients use it for new accounts. Registrations and password changes
	// must use parameters within [MinKDF, MaxKDF].
	DefaultKDF, MinKDF, MaxKDF KDFParams

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// KeysReplacedFunc, if not nil, is called by CompleteReset after a
	// reset without the recovery file has replaced the user's key pairs
	// (and ended the user's sessions). Whatever was sealed to the old box
	// key or signed by the old signing key is now useless, so the relay
	// removes what binds the user to devices: pkg/server points this at
	// keystore.Store.DeleteUserDeviceAccess. It runs after the new
	// credentials are stored, not in the same transaction: if it fails,
	// the reset has still happened and CompleteReset returns the error
	// (an internal one); calling it again for the same user must be
	// harmless.
	KeysReplacedFunc func(ctx context.Context, userID string) error
}

// DefaultServiceConfig returns the defaults (PublicURL empty).
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{
		SessionTTL:     30 * 24 * time.Hour,
		VerifyTTL:      24 * time.Hour,
		ResetTTL:       time.Hour,
		ChangeEmailTTL: 24 * time.Hour,
		DefaultKDF:     zkcrypto.DefaultKDFParams(),
		MinKDF:         zkcrypto.MinKDFParams(),
		MaxKDF:         zkcrypto.MaxKDFParams(),
		Now:            time.Now,
	}
}

// withDefaults fills zero fields from DefaultServiceConfig and checks the
// result.
func (c ServiceConfig) withDefaults() (ServiceConfig, error) {
	d := DefaultServiceConfig()
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.SessionTTL, &d.SessionTTL},
		{&c.VerifyTTL, &d.VerifyTTL},
		{&c.ResetTTL, &d.ResetTTL},
		{&c.ChangeEmailTTL, &d.ChangeEmailTTL},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
		if *f.v < 0 {
			return c, fmt.Errorf("negative lifetime %s", *f.v)
		}
	}
	for _, f := range []struct{ v, def *KDFParams }{
		{&c.DefaultKDF, &d.DefaultKDF},
		{&c.MinKDF, &d.MinKDF},
		{&c.MaxKDF, &d.MaxKDF},
	} {
		if *f.v == (KDFParams{}) {
			*f.v = *f.def
		}
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if err := c.DefaultKDF.Validate(c.MinKDF, c.MaxKDF); err != nil {
		return c, fmt.Errorf("default kdf outside [min, max]: %w", err)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return c, fmt.Errorf("public url %q: want an absolute http(s) URL without query", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c, nil
}

// Service runs the account life cycle: sign-up, e-mail verification,
// log-in and sessions, password change and reset, e-mail change, deletion.
// It is safe for concurrent use.
//
// Errors it returns are *Error values for everything a client caused (see
// ErrorCode); anything else is internal. It never tells whether an e-mail
// address has an account, except to that account's owner.
type Service struct {
	store    Store
	mailer   Mailer
	cfg      ServiceConfig
	log      *slog.Logger
	saltKey  []byte // HMAC key for fake salts
	dummyKey []byte // login-key hash compared against for unknown addresses
}

// NewService returns a Service over store that sends mail through mailer.
// It loads (or creates) the fake-salt secret from the store.
func NewService(ctx context.Context, store Store, mailer Mailer, cfg ServiceConfig, logger *slog.Logger) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("account service: config: %w", err)
	}
	key, err := store.ServerSecret(ctx, fakeSaltSecret, 32)
	if err != nil {
		return nil, fmt.Errorf("account service: server secret: %w", err)
	}
	dummy := make([]byte, LoginKeyHashSize)
	rand.Read(dummy)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, mailer: mailer, cfg: cfg, log: logger, saltKey: key, dummyKey: dummy}, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Service) Config() ServiceConfig { return s.cfg }

// now returns the current time, rounded to microseconds (what the stores keep).
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// fakeSalt is the salt reported for an address without an account.
func (s *Service) fakeSalt(email string) []byte {
	m := hmac.New(sha256.New, s.saltKey)
	m.Write([]byte(email))
	return m.Sum(nil)[:SaltSize]
}

// newToken returns a fresh random token and its hash.
func newToken() (token string, hash []byte) {
	raw := make([]byte, TokenSize)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw), hashToken(raw)
}

// parseToken returns the hash of a token a client sent, or err if it cannot
// be one of ours.
func parseToken(token string, err error) ([]byte, error) {
	raw, decErr := base64.RawURLEncoding.DecodeString(token)
	if decErr != nil || len(raw) != TokenSize {
		return nil, err
	}
	return hashToken(raw), nil
}

// parseMailToken parses a token from an e-mail link.
func parseMailToken(token string) ([]byte, error) {
	if token == "" {
		return nil, Errorf(CodeInvalidInput, "token is required.")
	}
	return parseToken(token, ErrTokenInvalid)
}

// newUserID returns a random UUID (version 4) string.
func newUserID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// checkLoginKey compares the hash of loginKey with want in constant time.
func checkLoginKey(loginKey, want []byte) error {
	if err := checkSize("login_key", loginKey, LoginKeySize); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(zkcrypto.HashLoginKey(loginKey), want) != 1 {
		return ErrInvalidCredentials
	}
	return nil
}

// link returns the public URL of page with token.
func (s *Service) link(page, token string) string {
	return s.cfg.PublicURL + "/" + page + "?token=" + url.QueryEscape(token)
}

// send hands m to the mailer. A failure is logged, not returned: whether a
// mail was due must not change the answer a client gets.
func (s *Service) send(ctx context.Context, m Mail) {
	if m.Language == "" {
		m.Language = DefaultLanguage
	}
	if err := s.mailer.Send(ctx, m); err != nil {
		s.log.ErrorContext(ctx, "send mail", slog.String("kind", string(m.Kind)), slog.Any("error", err))
	}
}

// isNotFound reports whether err says the user does not exist.
func isNotFound(err error) bool { return errors.Is(err, ErrUserNotFound) }

// user loads the user a session belongs to. A user deleted since the
// session was checked reads as a lost session.
func (s *Service) user(ctx context.Context, sess *Session) (*User, error) {
	u, err := s.store.UserByID(ctx, sess.UserID)
	if isNotFound(err) {
		return nil, ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}
