package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// Me returns the user of sess.
func (s *Service) Me(ctx context.Context, sess *Session) (*User, error) {
	return s.user(ctx, sess)
}

// Keys returns the credentials of sess's user: salt, KDF parameters,
// public keys and the encrypted private keys.
func (s *Service) Keys(ctx context.Context, sess *Session) (*Credentials, error) {
	u, err := s.user(ctx, sess)
	if err != nil {
		return nil, err
	}
	return &u.Credentials, nil
}

// SetLanguage sets the language of sess's user and returns the user.
func (s *Service) SetLanguage(ctx context.Context, sess *Session, lang string) (*User, error) {
	if lang == "" {
		return nil, Errorf(CodeInvalidInput, "language is required.")
	}
	if _, err := checkLanguage(lang, ""); err != nil {
		return nil, err
	}
	if err := s.store.SetLanguage(ctx, sess.UserID, lang, s.now()); err != nil {
		if isNotFound(err) {
			return nil, ErrSessionNotFound
		}
		return nil, fmt.Errorf("set language: %w", err)
	}
	return s.user(ctx, sess)
}

// ChangePassword replaces the password-derived credentials of sess's user
// if in.LoginKey is the current one (ErrInvalidCredentials if not). The
// public keys stay. Every other session of the user ends; sess lives on.
// The owner gets a notice.
func (s *Service) ChangePassword(ctx context.Context, sess *Session, in PasswordChangeInput) error {
	u, err := s.user(ctx, sess)
	if err != nil {
		return err
	}
	if err := checkLoginKey(in.LoginKey, u.Credentials.LoginKeyHash); err != nil {
		return err
	}
	if err := checkSize("new_login_key", in.NewLoginKey, LoginKeySize); err != nil {
		return err
	}
	creds, err := s.credentials(ClientCredentials{
		Salt:                 in.Salt,
		KDF:                  in.KDF,
		LoginKey:             in.NewLoginKey,
		BoxPublicKey:         u.Credentials.BoxPublicKey,
		SignPublicKey:        u.Credentials.SignPublicKey,
		EncryptedPrivateKeys: in.EncryptedPrivateKeys,
	})
	if err != nil {
		return err
	}
	err = s.store.ChangeCredentials(ctx, u.ID, zkcrypto.HashLoginKey(in.LoginKey), creds, sess.TokenHash, s.now())
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			return ErrInvalidCredentials // changed concurrently
		}
		return fmt.Errorf("change password: %w", err)
	}
	s.log.InfoContext(ctx, "password changed", slog.String("user_id", u.ID))
	s.send(ctx, Mail{Kind: MailPasswordChanged, To: u.Email, Language: u.Language})
	return nil
}

// RequestEmailChange asks to move sess's user to in.NewEmail: a
// confirmation link goes to the new address and a notice to the old one.
// If the new address has an account, that address gets a notice instead
// and the answer is the same. in.LoginKey must be the current one.
func (s *Service) RequestEmailChange(ctx context.Context, sess *Session, in EmailChangeInput) error {
	newEmail, err := normalizeEmail("new_email", in.NewEmail)
	if err != nil {
		return err
	}
	u, err := s.user(ctx, sess)
	if err != nil {
		return err
	}
	if err := checkLoginKey(in.LoginKey, u.Credentials.LoginKeyHash); err != nil {
		return err
	}
	if newEmail == u.Email {
		return Errorf(CodeInvalidInput, "new_email is your current address.")
	}
	other, err := s.store.UserByEmail(ctx, newEmail)
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "e-mail change to a taken address", slog.String("user_id", u.ID))
		s.send(ctx, Mail{Kind: MailChangeEmailTaken, To: other.Email, Language: other.Language})
		return nil
	case !isNotFound(err):
		return fmt.Errorf("request email change: %w", err)
	}
	now := s.now()
	token, hash := newToken()
	tok := &Token{TokenHash: hash, UserID: u.ID, Purpose: PurposeChangeEmail, NewEmail: newEmail, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ChangeEmailTTL)}
	if err := s.store.CreateToken(ctx, tok, true); err != nil {
		return fmt.Errorf("request email change: create token: %w", err)
	}
	s.log.InfoContext(ctx, "e-mail change requested", slog.String("user_id", u.ID))
	s.send(ctx, Mail{Kind: MailChangeEmailConfirm, To: newEmail, Language: u.Language, Link: s.link("verify", token)})
	s.send(ctx, Mail{Kind: MailChangeEmailNotice, To: u.Email, Language: u.Language, OtherEmail: newEmail})
	return nil
}

// Delete deletes sess's user with all sessions and tokens if loginKey is
// the current one, and sends the owner a notice.
func (s *Service) Delete(ctx context.Context, sess *Session, loginKey []byte) error {
	u, err := s.user(ctx, sess)
	if err != nil {
		return err
	}
	if err := checkLoginKey(loginKey, u.Credentials.LoginKeyHash); err != nil {
		return err
	}
	if err := s.store.DeleteUser(ctx, u.ID); err != nil {
		if isNotFound(err) {
			return ErrSessionNotFound
		}
		return fmt.Errorf("delete account: %w", err)
	}
	s.log.InfoContext(ctx, "account deleted", slog.String("user_id", u.ID))
	s.send(ctx, Mail{Kind: MailAccountDeleted, To: u.Email, Language: u.Language})
	return nil
}
