package account

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// Login checks email and loginKey and opens a session. An unknown address
// and a wrong key give the same ErrInvalidCredentials after the same work;
// ErrEmailNotVerified comes only with the right key.
func (s *Service) Login(ctx context.Context, email string, loginKey []byte) (*LoginResult, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := checkSize("login_key", loginKey, LoginKeySize); err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	want := s.dummyKey
	switch {
	case isNotFound(err):
		u = nil
	case err != nil:
		return nil, fmt.Errorf("login: %w", err)
	default:
		want = u.Credentials.LoginKeyHash
	}
	match := subtle.ConstantTimeCompare(zkcrypto.HashLoginKey(loginKey), want) == 1
	if u == nil || !match {
		return nil, ErrInvalidCredentials
	}
	if !u.EmailVerified {
		return nil, Errorf(CodeEmailNotVerified, "Please confirm your e-mail address first; we sent you a link.")
	}
	now := s.now()
	token, hash := newToken()
	sess := &Session{TokenHash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), LastSeenAt: now}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		if isNotFound(err) {
			return nil, ErrInvalidCredentials // deleted meanwhile
		}
		return nil, fmt.Errorf("login: create session: %w", err)
	}
	s.log.InfoContext(ctx, "logged in", slog.String("user_id", u.ID))
	return &LoginResult{Token: token, Session: sess, User: u}, nil
}

// Authenticate returns the live session a token names and its user, and
// extends the session: it lives SessionTTL past its last use. Any token that
// is not a live session gives ErrSessionNotFound.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, *User, error) {
	hash, err := parseToken(token, ErrSessionNotFound)
	if err != nil {
		return nil, nil, err
	}
	sess, u, err := s.store.SessionByHash(ctx, hash, s.now())
	if err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return nil, nil, ErrSessionNotFound
		}
		return nil, nil, fmt.Errorf("authenticate: %w", err)
	}
	return sess, u, nil
}

// Logout ends sess.
func (s *Service) Logout(ctx context.Context, sess *Session) error {
	if err := s.store.DeleteSession(ctx, sess.TokenHash); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// LogoutAll ends every session of sess's user, sess included, and returns
// how many ended.
func (s *Service) LogoutAll(ctx context.Context, sess *Session) (int, error) {
	n, err := s.store.DeleteSessions(ctx, sess.UserID, nil)
	if err != nil {
		return 0, fmt.Errorf("logout all: %w", err)
	}
	s.log.InfoContext(ctx, "logged out everywhere", slog.String("user_id", sess.UserID), slog.Int("sessions", n))
	return n, nil
}
