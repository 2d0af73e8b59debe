package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Salt returns the salt and KDF parameters to derive keys for email. For an
// address without an account it returns a fake salt (an HMAC of the address
// under a server secret: the same on every call and every node) and the
// default parameters, so the answer does not tell whether an account exists.
func (s *Service) Salt(ctx context.Context, email string) ([]byte, KDFParams, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, KDFParams{}, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case isNotFound(err):
		return s.fakeSalt(email), s.cfg.DefaultKDF, nil
	case err != nil:
		return nil, KDFParams{}, fmt.Errorf("salt: %w", err)
	}
	return u.Credentials.Salt, u.Credentials.KDF, nil
}

// Register signs up in.Email. Every valid request gets the same nil answer:
//   - a new address gets an unverified account and a confirmation link;
//   - an unverified account gets in's credentials instead of its pending
//     ones and a fresh link (earlier links stop working), so nobody can
//     pre-claim someone else's address;
//   - a verified account stays as it is, and its owner gets a notice.
func (s *Service) Register(ctx context.Context, in RegisterInput) error {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return err
	}
	lang, err := checkLanguage(in.Language, DefaultLanguage)
	if err != nil {
		return err
	}
	creds, err := s.credentials(in.Credentials)
	if err != nil {
		return err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case isNotFound(err):
		return s.createUser(ctx, email, lang, creds)
	case err != nil:
		return fmt.Errorf("register: %w", err)
	case u.EmailVerified:
		s.log.InfoContext(ctx, "sign-up for a verified address", slog.String("user_id", u.ID))
		s.send(ctx, Mail{Kind: MailAlreadyRegistered, To: u.Email, Language: u.Language})
		return nil
	default:
		return s.replacePending(ctx, u, lang, creds)
	}
}

// createUser stores a new unverified account and mails its link.
func (s *Service) createUser(ctx context.Context, email, lang string, creds Credentials) error {
	now := s.now()
	u := &User{ID: newUserID(), Email: email, Language: lang, Credentials: creds, CreatedAt: now, UpdatedAt: now}
	token, hash := newToken()
	tok := &Token{TokenHash: hash, UserID: u.ID, Purpose: PurposeVerifyEmail, CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyTTL)}
	err := s.store.CreateUser(ctx, u, tok)
	if errors.Is(err, ErrEmailTaken) {
		// A concurrent sign-up for the same address won; the answer is
		// the same as for any other existing address.
		s.log.InfoContext(ctx, "concurrent sign-up lost")
		return nil
	}
	if err != nil {
		return fmt.Errorf("register: create user: %w", err)
	}
	s.log.InfoContext(ctx, "account created", slog.String("user_id", u.ID))
	s.send(ctx, Mail{Kind: MailVerifyEmail, To: email, Language: lang, Link: s.link("verify", token)})
	return nil
}

// replacePending gives an unverified account new credentials and a new
// confirmation link, replacing the old links.
func (s *Service) replacePending(ctx context.Context, u *User, lang string, creds Credentials) error {
	now := s.now()
	err := s.store.ChangeCredentials(ctx, u.ID, u.Credentials.LoginKeyHash, creds, nil, now)
	if errors.Is(err, ErrInvalidCredentials) || isNotFound(err) {
		// Changed or deleted concurrently: answer as always.
		s.log.InfoContext(ctx, "concurrent sign-up lost", slog.String("user_id", u.ID))
		return nil
	}
	if err != nil {
		return fmt.Errorf("register: replace pending credentials: %w", err)
	}
	if lang != u.Language {
		if err := s.store.SetLanguage(ctx, u.ID, lang, now); err != nil {
			return fmt.Errorf("register: set language: %w", err)
		}
	}
	s.log.InfoContext(ctx, "pending sign-up replaced", slog.String("user_id", u.ID))
	return s.mailVerifyLink(ctx, u.ID, u.Email, lang)
}

// mailVerifyLink replaces the user's confirmation links by a new one and
// mails it.
func (s *Service) mailVerifyLink(ctx context.Context, userID, email, lang string) error {
	now := s.now()
	token, hash := newToken()
	tok := &Token{TokenHash: hash, UserID: userID, Purpose: PurposeVerifyEmail, CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyTTL)}
	if err := s.store.CreateToken(ctx, tok, true); err != nil {
		return fmt.Errorf("create verify token: %w", err)
	}
	s.send(ctx, Mail{Kind: MailVerifyEmail, To: email, Language: lang, Link: s.link("verify", token)})
	return nil
}

// Verify uses up an e-mail token from a sign-up mail (the address becomes
// verified) or from an e-mail change mail (the account moves to the new
// address). Errors: ErrTokenInvalid, ErrTokenExpired, ErrEmailTaken (a
// change to an address that got taken meanwhile).
func (s *Service) Verify(ctx context.Context, token string) (*VerifyResult, error) {
	hash, err := parseMailToken(token)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u, err := s.store.VerifyEmail(ctx, hash, now)
	if err == nil {
		s.log.InfoContext(ctx, "e-mail verified", slog.String("user_id", u.ID))
		return &VerifyResult{Email: u.Email, Purpose: PurposeVerifyEmail}, nil
	}
	if !errors.Is(err, ErrTokenInvalid) {
		return nil, fmt.Errorf("verify: %w", err)
	}
	before, err := s.store.ChangeEmail(ctx, hash, now)
	if err != nil {
		return nil, fmt.Errorf("verify: change email: %w", err)
	}
	after, err := s.store.UserByID(ctx, before.ID)
	if err != nil {
		return nil, fmt.Errorf("verify: load user: %w", err)
	}
	s.log.InfoContext(ctx, "e-mail changed", slog.String("user_id", after.ID))
	return &VerifyResult{Email: after.Email, Purpose: PurposeChangeEmail}, nil
}

// Resend mails a fresh confirmation link if email belongs to an unverified
// account, and does nothing otherwise. The answer is the same either way.
func (s *Service) Resend(ctx context.Context, email string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("resend: %w", err)
	case u.EmailVerified:
		return nil
	}
	if err := s.mailVerifyLink(ctx, u.ID, u.Email, u.Language); err != nil {
		return fmt.Errorf("resend: %w", err)
	}
	return nil
}
