package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// userColumns is the column list scanUser reads, in order.
const userColumns = `id, email, email_verified, language,
	salt, kdf_algorithm, kdf_version, kdf_memory_kib, kdf_iterations, kdf_parallelism,
	login_key_hash, box_public_key, sign_public_key, encrypted_private_keys,
	created_at, updated_at`

// scanUser reads one row of userColumns.
func scanUser(row *sql.Row) (*account.User, error) {
	var (
		u                account.User
		created, updated int64
		c                = &u.Credentials
	)
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Language,
		&c.Salt, &c.KDF.Algorithm, &c.KDF.Version, &c.KDF.MemoryKiB, &c.KDF.Iterations, &c.KDF.Parallelism,
		&c.LoginKeyHash, &c.BoxPublicKey, &c.SignPublicKey, &c.EncryptedPrivateKeys,
		&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, account.ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = goTime(created), goTime(updated)
	return &u, nil
}

func userByID(ctx context.Context, q querier, id string) (*account.User, error) {
	return scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// CreateUser inserts u and, if tok is not nil, tok (which must be u's).
func (s *Store) CreateUser(ctx context.Context, u *account.User, tok *account.Token) error {
	if tok != nil && tok.UserID != u.ID {
		return fmt.Errorf("sqlite: create user: token is for another user")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c := &u.Credentials
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Email, u.EmailVerified, u.Language,
			c.Salt, c.KDF.Algorithm, c.KDF.Version, c.KDF.MemoryKiB, c.KDF.Iterations, c.KDF.Parallelism,
			c.LoginKeyHash, c.BoxPublicKey, c.SignPublicKey, c.EncryptedPrivateKeys,
			dbTime(u.CreatedAt), dbTime(u.UpdatedAt))
		if isEmailTaken(err) {
			return account.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		if tok != nil {
			return insertToken(ctx, tx, tok)
		}
		return nil
	})
	return wrap("create user", err)
}

// UserByID returns the user with this id.
func (s *Store) UserByID(ctx context.Context, id string) (*account.User, error) {
	u, err := userByID(ctx, s.db, id)
	return u, wrap("user by id", err)
}

// UserByEmail returns the user with this (normalised) e-mail address.
func (s *Store) UserByEmail(ctx context.Context, email string) (*account.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	return u, wrap("user by email", err)
}

// DeleteUser deletes the user; its sessions and tokens go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	return wrap("delete user", mustAffect(res, err, account.ErrUserNotFound))
}

// SetLanguage sets the user's language.
func (s *Store) SetLanguage(ctx context.Context, id, lang string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET language = ?, updated_at = ? WHERE id = ?`,
		lang, dbTime(now), id)
	return wrap("set language", mustAffect(res, err, account.ErrUserNotFound))
}

// ChangeCredentials replaces the user's credentials if oldLoginKeyHash is
// the current one and ends every other session.
func (s *Store) ChangeCredentials(ctx context.Context, id string, oldLoginKeyHash []byte, creds account.Credentials, keepSession []byte, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var current []byte
		err := tx.QueryRowContext(ctx, `SELECT login_key_hash FROM users WHERE id = ?`, id).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrUserNotFound
		}
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(current, oldLoginKeyHash) != 1 {
			return account.ErrInvalidCredentials
		}
		if err := setCredentials(ctx, tx, id, creds, false, now); err != nil {
			return err
		}
		_, err = deleteSessions(ctx, tx, id, keepSession)
		return err
	})
	return wrap("change credentials", err)
}

// setCredentials replaces the credentials of user id and, if verify, marks
// its e-mail verified.
func setCredentials(ctx context.Context, tx *sql.Tx, id string, c account.Credentials, verify bool, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE users SET
			salt = ?, kdf_algorithm = ?, kdf_version = ?, kdf_memory_kib = ?, kdf_iterations = ?, kdf_parallelism = ?,
			login_key_hash = ?, box_public_key = ?, sign_public_key = ?, encrypted_private_keys = ?,
			email_verified = email_verified OR ?, updated_at = ?
		WHERE id = ?`,
		c.Salt, c.KDF.Algorithm, c.KDF.Version, c.KDF.MemoryKiB, c.KDF.Iterations, c.KDF.Parallelism,
		c.LoginKeyHash, c.BoxPublicKey, c.SignPublicKey, c.EncryptedPrivateKeys,
		verify, dbTime(now), id)
	return mustAffect(res, err, account.ErrUserNotFound)
}

// mustAffect turns a statement that changed no row into notFound.
func mustAffect(res sql.Result, err error, notFound error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}
