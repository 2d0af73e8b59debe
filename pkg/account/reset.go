package account

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// errRecoveryMismatch is CompleteReset's answer to keys that are not the
// account's.
var errRecoveryMismatch = Errorf(CodeRecoveryMismatch, "The recovery file does not belong to this account.")

// RequestReset mails a password reset link if email has an account and
// does nothing otherwise; the answer is the same. lang "" means the
// account's language.
func (s *Service) RequestReset(ctx context.Context, email, lang string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if lang, err = checkLanguage(lang, ""); err != nil {
		return err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("request reset: %w", err)
	}
	if lang == "" {
		lang = u.Language
	}
	now := s.now()
	token, hash := newToken()
	tok := &Token{TokenHash: hash, UserID: u.ID, Purpose: PurposeResetPassword, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL)}
	if err := s.store.CreateToken(ctx, tok, false); err != nil {
		return fmt.Errorf("request reset: create token: %w", err)
	}
	s.log.InfoContext(ctx, "password reset requested", slog.String("user_id", u.ID))
	s.send(ctx, Mail{Kind: MailResetPassword, To: u.Email, Language: lang, Link: s.link("reset", token)})
	return nil
}

// ResetInfo checks a reset token without using it and tells whose it is.
// Errors: ErrTokenInvalid, ErrTokenExpired.
func (s *Service) ResetInfo(ctx context.Context, token string) (*ResetInfo, error) {
	u, _, err := s.resetUser(ctx, token)
	if err != nil {
		return nil, err
	}
	return &ResetInfo{Email: u.Email, BoxPublicKey: u.Credentials.BoxPublicKey, SignPublicKey: u.Credentials.SignPublicKey}, nil
}

// resetUser returns the user a reset token belongs to and the token's hash.
func (s *Service) resetUser(ctx context.Context, token string) (*User, []byte, error) {
	hash, err := parseMailToken(token)
	if err != nil {
		return nil, nil, err
	}
	tok, err := s.store.PeekToken(ctx, hash, PurposeResetPassword, s.now())
	if err != nil {
		return nil, nil, fmt.Errorf("reset token: %w", err)
	}
	u, err := s.store.UserByID(ctx, tok.UserID)
	if isNotFound(err) {
		return nil, nil, ErrTokenInvalid
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reset token: load user: %w", err)
	}
	return u, hash, nil
}

// CompleteReset replaces the credentials of the account a reset token
// belongs to, ends all its sessions and other reset links, and marks its
// address verified. With in.KeepKeys the client proves it holds the
// account's private keys (a recovery file): the public keys must be the
// account's and in.Signature must verify, else the error has
// CodeRecoveryMismatch. It reports whether the keys were kept.
func (s *Service) CompleteReset(ctx context.Context, in CompleteResetInput) (keysKept bool, err error) {
	if _, err := parseMailToken(in.Token); err != nil {
		return false, err
	}
	creds, err := s.credentials(in.Credentials)
	if err != nil {
		return false, err
	}
	if in.KeepKeys {
		if err := checkSize("signature", in.Signature, ed25519.SignatureSize); err != nil {
			return false, err
		}
	} else if len(in.Signature) != 0 {
		return false, Errorf(CodeInvalidInput, "signature must be omitted when keep_keys is false.")
	}
	u, hash, err := s.resetUser(ctx, in.Token)
	if err != nil {
		return false, err
	}
	if in.KeepKeys {
		msg := zkcrypto.ResetMessage(in.Token, creds.LoginKeyHash)
		if !bytes.Equal(creds.BoxPublicKey, u.Credentials.BoxPublicKey) ||
			!bytes.Equal(creds.SignPublicKey, u.Credentials.SignPublicKey) ||
			!zkcrypto.Verify(u.Credentials.SignPublicKey, msg, in.Signature) {
			s.log.InfoContext(ctx, "reset with foreign recovery keys refused", slog.String("user_id", u.ID))
			return false, errRecoveryMismatch
		}
	}
	u, err = s.store.ResetCredentials(ctx, hash, creds, s.now())
	if err != nil {
		if errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
			return false, err
		}
		return false, fmt.Errorf("complete reset: %w", err)
	}
	s.log.InfoContext(ctx, "password reset", slog.String("user_id", u.ID), slog.Bool("keys_kept", in.KeepKeys))
	s.send(ctx, Mail{Kind: MailPasswordChanged, To: u.Email, Language: u.Language})
	if !in.KeepKeys && s.cfg.KeysReplacedFunc != nil {
		if err := s.cfg.KeysReplacedFunc(ctx, u.ID); err != nil {
			return false, fmt.Errorf("complete reset: keys replaced: %w", err)
		}
	}
	return in.KeepKeys, nil
}
