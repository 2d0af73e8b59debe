package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// userColumnNames are the columns scanUser reads, in order.
var userColumnNames = []string{
	"id", "email", "email_verified", "language",
	"salt", "kdf_algorithm", "kdf_version", "kdf_memory_kib", "kdf_iterations", "kdf_parallelism",
	"login_key_hash", "box_public_key", "sign_public_key", "encrypted_private_keys",
	"created_at", "updated_at",
}

// userColumns lists userColumnNames, each prefixed with table ("u.").
func userColumns(table string) string {
	return table + strings.Join(userColumnNames, ", "+table)
}

// userDest returns the scan destinations for userColumnNames.
func userDest(u *account.User) []any {
	c := &u.Credentials
	return []any{&u.ID, &u.Email, &u.EmailVerified, &u.Language,
		&c.Salt, &c.KDF.Algorithm, &c.KDF.Version, &c.KDF.MemoryKiB, &c.KDF.Iterations, &c.KDF.Parallelism,
		&c.LoginKeyHash, &c.BoxPublicKey, &c.SignPublicKey, &c.EncryptedPrivateKeys,
		&u.CreatedAt, &u.UpdatedAt}
}

// scanUser reads one row of userColumns.
func scanUser(row pgx.Row) (*account.User, error) {
	var u account.User
	err := row.Scan(userDest(&u)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, account.ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	utc(&u.CreatedAt, &u.UpdatedAt)
	return &u, nil
}

func userByID(ctx context.Context, q querier, id string) (*account.User, error) {
	return scanUser(q.QueryRow(ctx, `SELECT `+userColumns("")+` FROM users WHERE id = $1`, id))
}

// CreateUser inserts u and, if tok is not nil, tok (which must be u's).
func (s *Store) CreateUser(ctx context.Context, u *account.User, tok *account.Token) error {
	if tok != nil && tok.UserID != u.ID {
		return fmt.Errorf("postgres: create user: token is for another user")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c := &u.Credentials
		_, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns("")+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			u.ID, u.Email, u.EmailVerified, u.Language,
			c.Salt, c.KDF.Algorithm, c.KDF.Version, c.KDF.MemoryKiB, c.KDF.Iterations, c.KDF.Parallelism,
			c.LoginKeyHash, c.BoxPublicKey, c.SignPublicKey, c.EncryptedPrivateKeys,
			u.CreatedAt, u.UpdatedAt)
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
	u, err := userByID(ctx, s.pool, id)
	return u, wrap("user by id", err)
}

// UserByEmail returns the user with this (normalised) e-mail address.
func (s *Store) UserByEmail(ctx context.Context, email string) (*account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns("")+` FROM users WHERE email = $1`, email))
	return u, wrap("user by email", err)
}

// DeleteUser deletes the user; its sessions and tokens go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	return wrap("delete user", mustAffect(tag, err, account.ErrUserNotFound))
}

// SetLanguage sets the user's language.
func (s *Store) SetLanguage(ctx context.Context, id, lang string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET language = $1, updated_at = $2 WHERE id = $3`, lang, now, id)
	return wrap("set language", mustAffect(tag, err, account.ErrUserNotFound))
}

// ChangeCredentials replaces the user's credentials if oldLoginKeyHash is
// the current one and ends every other session.
func (s *Store) ChangeCredentials(ctx context.Context, id string, oldLoginKeyHash []byte, creds account.Credentials, keepSession []byte, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var current []byte
		err := tx.QueryRow(ctx, `SELECT login_key_hash FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
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
func setCredentials(ctx context.Context, tx pgx.Tx, id string, c account.Credentials, verify bool, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE users SET
			salt = $1, kdf_algorithm = $2, kdf_version = $3, kdf_memory_kib = $4, kdf_iterations = $5, kdf_parallelism = $6,
			login_key_hash = $7, box_public_key = $8, sign_public_key = $9, encrypted_private_keys = $10,
			email_verified = email_verified OR $11, updated_at = $12
		WHERE id = $13`,
		c.Salt, c.KDF.Algorithm, c.KDF.Version, c.KDF.MemoryKiB, c.KDF.Iterations, c.KDF.Parallelism,
		c.LoginKeyHash, c.BoxPublicKey, c.SignPublicKey, c.EncryptedPrivateKeys,
		verify, now, id)
	return mustAffect(tag, err, account.ErrUserNotFound)
}
