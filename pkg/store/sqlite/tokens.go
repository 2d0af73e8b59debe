package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func insertToken(ctx context.Context, tx *sql.Tx, tok *account.Token) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tokens (token_hash, user_id, purpose, new_email, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		tok.TokenHash, tok.UserID, string(tok.Purpose), tok.NewEmail, dbTime(tok.CreatedAt), dbTime(tok.ExpiresAt))
	if isForeignKey(err) {
		return account.ErrUserNotFound
	}
	return err
}

// CreateToken stores tok; with replace, the user's other tokens of the same
// purpose are deleted first.
func (s *Store) CreateToken(ctx context.Context, tok *account.Token, replace bool) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if replace {
			_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE user_id = ? AND purpose = ?`,
				tok.UserID, string(tok.Purpose))
			if err != nil {
				return err
			}
		}
		return insertToken(ctx, tx, tok)
	})
	return wrap("create token", err)
}

// PeekToken returns a live token without using it up.
func (s *Store) PeekToken(ctx context.Context, hash []byte, purpose account.TokenPurpose, now time.Time) (*account.Token, error) {
	tok, err := peekToken(ctx, s.db, hash, purpose, now)
	return tok, wrap("peek token", err)
}

// peekToken returns the token with this hash and purpose: ErrTokenInvalid
// if there is none, ErrTokenExpired if now is at or past its ExpiresAt.
func peekToken(ctx context.Context, q querier, hash []byte, purpose account.TokenPurpose, now time.Time) (*account.Token, error) {
	var (
		tok              account.Token
		p                string
		created, expires int64
	)
	err := q.QueryRowContext(ctx, `SELECT token_hash, user_id, purpose, new_email, created_at, expires_at
		FROM tokens WHERE token_hash = ? AND purpose = ?`, hash, string(purpose)).
		Scan(&tok.TokenHash, &tok.UserID, &p, &tok.NewEmail, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, account.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	tok.Purpose = account.TokenPurpose(p)
	tok.CreatedAt, tok.ExpiresAt = goTime(created), goTime(expires)
	if dbTime(now) >= expires {
		return nil, account.ErrTokenExpired
	}
	return &tok, nil
}

func deleteToken(ctx context.Context, tx *sql.Tx, hash []byte) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE token_hash = ?`, hash)
	return err
}

// VerifyEmail uses up a verify_email token and marks the e-mail verified.
func (s *Store) VerifyEmail(ctx context.Context, hash []byte, now time.Time) (*account.User, error) {
	var u *account.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		tok, err := peekToken(ctx, tx, hash, account.PurposeVerifyEmail, now)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ?`,
			dbTime(now), tok.UserID)
		if err := mustAffect(res, err, account.ErrTokenInvalid); err != nil {
			return err
		}
		if err := deleteToken(ctx, tx, hash); err != nil {
			return err
		}
		u, err = userByID(ctx, tx, tok.UserID)
		return err
	})
	return u, wrap("verify email", err)
}

// ChangeEmail uses up a change_email token and moves the user to its
// NewEmail. If that address is taken, nothing changes.
func (s *Store) ChangeEmail(ctx context.Context, hash []byte, now time.Time) (*account.User, error) {
	var before *account.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		tok, err := peekToken(ctx, tx, hash, account.PurposeChangeEmail, now)
		if err != nil {
			return err
		}
		if before, err = userByID(ctx, tx, tok.UserID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified = 1, updated_at = ? WHERE id = ?`,
			tok.NewEmail, dbTime(now), tok.UserID)
		if isEmailTaken(err) {
			return account.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		return deleteToken(ctx, tx, hash)
	})
	if err != nil {
		return nil, wrap("change email", err)
	}
	return before, nil
}

// ResetCredentials uses up a reset_password token, replaces the user's
// credentials, marks the e-mail verified and deletes the user's sessions
// and reset tokens.
func (s *Store) ResetCredentials(ctx context.Context, hash []byte, creds account.Credentials, now time.Time) (*account.User, error) {
	var u *account.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		tok, err := peekToken(ctx, tx, hash, account.PurposeResetPassword, now)
		if err != nil {
			return err
		}
		if err := setCredentials(ctx, tx, tok.UserID, creds, true, now); err != nil {
			return err
		}
		if _, err := deleteSessions(ctx, tx, tok.UserID, nil); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE user_id = ? AND purpose = ?`,
			tok.UserID, string(account.PurposeResetPassword))
		if err != nil {
			return err
		}
		u, err = userByID(ctx, tx, tok.UserID)
		return err
	})
	return u, wrap("reset credentials", err)
}
