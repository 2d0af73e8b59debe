package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// CreateSession stores s.
func (s *Store) CreateSession(ctx context.Context, sess *account.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5)`,
		sess.TokenHash, sess.UserID, sess.CreatedAt, sess.ExpiresAt, sess.LastSeenAt)
	if isForeignKey(err) {
		return account.ErrUserNotFound
	}
	return wrap("create session", err)
}

// SessionByHash returns a live session and its user, and records now as the
// session's LastSeenAt, in one statement. An expired session is deleted.
func (s *Store) SessionByHash(ctx context.Context, hash []byte, now time.Time) (*account.Session, *account.User, error) {
	var (
		sess account.Session
		u    account.User
	)
	dest := append([]any{&sess.TokenHash, &sess.UserID, &sess.CreatedAt, &sess.ExpiresAt, &sess.LastSeenAt}, userDest(&u)...)
	err := s.pool.QueryRow(ctx, `WITH s AS (
			UPDATE sessions
			SET expires_at = expires_at + GREATEST($2 - last_seen_at, interval '0'),
				last_seen_at = GREATEST(last_seen_at, $2)
			WHERE token_hash = $1 AND expires_at > $2
			RETURNING token_hash, user_id, created_at, expires_at, last_seen_at
		)
		SELECT s.token_hash, s.user_id, s.created_at, s.expires_at, s.last_seen_at, `+userColumns("u.")+`
		FROM s JOIN users u ON u.id = s.user_id`, hash, now).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		// Missing or expired; delete it if it is expired.
		_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1 AND expires_at <= $2`, hash, now)
		if err != nil {
			return nil, nil, wrap("session by hash: delete expired", err)
		}
		return nil, nil, account.ErrSessionNotFound
	}
	if err != nil {
		return nil, nil, wrap("session by hash", err)
	}
	utc(&sess.CreatedAt, &sess.ExpiresAt, &sess.LastSeenAt, &u.CreatedAt, &u.UpdatedAt)
	return &sess, &u, nil
}

// DeleteSession deletes one session, if it exists.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hash)
	return wrap("delete session", err)
}

// DeleteSessions deletes every session of the user but keep.
func (s *Store) DeleteSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	n, err := deleteSessions(ctx, s.pool, userID, keep)
	return n, wrap("delete sessions", err)
}

// deleteSessions deletes every session of the user but keep (may be nil)
// and returns how many went.
func deleteSessions(ctx context.Context, q querier, userID string, keep []byte) (int, error) {
	tag, err := q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2`, userID, keep)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
