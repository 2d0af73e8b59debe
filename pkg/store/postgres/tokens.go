package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func insertToken(ctx context.Context, tx pgx.Tx, tok *account.Token) error {
	_, err := tx.Exec(ctx, `INSERT INTO tokens (token_hash, user_id, purpose, new_email, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		tok.TokenHash, tok.UserID, string(tok.Purpose), tok.NewEmail, tok.CreatedAt, tok.ExpiresAt)
	if isForeignKey(err) {
		return account.ErrUserNotFound
	}
	return err
}

// CreateToken stores tok; with replace, the user's other tokens of the same
// purpose are deleted first.
func (s *Store) CreateToken(ctx context.Context, tok *account.Token, replace bool) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if replace {
			_, err := tx.Exec(ctx, `DELETE FROM tokens WHERE user_id = $1 AND purpose = $2`,
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
	tok, err := peekToken(ctx, s.pool, hash, purpose, now, "")
	return tok, wrap("peek token", err)
}

// peekToken returns the token with this hash and purpose: ErrTokenInvalid
// if there is none, ErrTokenExpired if now is at or past its ExpiresAt.
// lock is appended to the query: "FOR UPDATE" in a transaction that is
// going to use the token up makes a concurrent use wait and then find it
// gone.
func peekToken(ctx context.Context, q querier, hash []byte, purpose account.TokenPurpose, now time.Time, lock string) (*account.Token, error) {
	var (
		tok account.Token
		p   string
	)
	err := q.QueryRow(ctx, `SELECT token_hash, user_id, purpose, new_email, created_at, expires_at
		FROM tokens WHERE token_hash = $1 AND purpose = $2 `+lock, hash, string(purpose)).
		Scan(&tok.TokenHash, &tok.UserID, &p, &tok.NewEmail, &tok.CreatedAt, &tok.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, account.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	tok.Purpose = account.TokenPurpose(p)
	utc(&tok.CreatedAt, &tok.ExpiresAt)
	if !now.Truncate(time.Microsecond).Before(tok.ExpiresAt) {
		return nil, account.ErrTokenExpired
	}
	return &tok, nil
}

// useToken locks a live token for a transaction that uses it up.
func useToken(ctx context.Context, tx pgx.Tx, hash []byte, purpose account.TokenPurpose, now time.Time) (*account.Token, error) {
	return peekToken(ctx, tx, hash, purpose, now, "FOR UPDATE")
}

func deleteToken(ctx context.Context, tx pgx.Tx, hash []byte) error {
	_, err := tx.Exec(ctx, `DELETE FROM tokens WHERE token_hash = $1`, hash)
	return err
}

// VerifyEmail uses up a verify_email token and marks the e-mail verified.
func (s *Store) VerifyEmail(ctx context.Context, hash []byte, now time.Time) (*account.User, error) {
	var u *account.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tok, err := useToken(ctx, tx, hash, account.PurposeVerifyEmail, now)
		if err != nil {
			return err
		}
		if err := deleteToken(ctx, tx, hash); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET email_verified = true, updated_at = $1
			WHERE id = $2 RETURNING `+userColumns(""), now, tok.UserID))
		return err
	})
	return u, wrap("verify email", err)
}

// ChangeEmail uses up a change_email token and moves the user to its
// NewEmail. If that address is taken, nothing changes.
func (s *Store) ChangeEmail(ctx context.Context, hash []byte, now time.Time) (*account.User, error) {
	var before *account.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tok, err := useToken(ctx, tx, hash, account.PurposeChangeEmail, now)
		if err != nil {
			return err
		}
		if before, err = userByID(ctx, tx, tok.UserID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE users SET email = $1, email_verified = true, updated_at = $2 WHERE id = $3`,
			tok.NewEmail, now, tok.UserID)
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tok, err := useToken(ctx, tx, hash, account.PurposeResetPassword, now)
		if err != nil {
			return err
		}
		if err := setCredentials(ctx, tx, tok.UserID, creds, true, now); err != nil {
			return err
		}
		if _, err := deleteSessions(ctx, tx, tok.UserID, nil); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM tokens WHERE user_id = $1 AND purpose = $2`,
			tok.UserID, string(account.PurposeResetPassword))
		if err != nil {
			return err
		}
		u, err = userByID(ctx, tx, tok.UserID)
		return err
	})
	return u, wrap("reset credentials", err)
}
