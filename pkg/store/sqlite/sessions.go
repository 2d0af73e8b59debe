package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// CreateSession stores s.
func (s *Store) CreateSession(ctx context.Context, sess *account.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?)`,
		sess.TokenHash, sess.UserID, dbTime(sess.CreatedAt), dbTime(sess.ExpiresAt), dbTime(sess.LastSeenAt))
	if isForeignKey(err) {
		return account.ErrUserNotFound
	}
	return wrap("create session", err)
}

// SessionByHash returns a live session and its user, records now as the
// session's LastSeenAt and slides its expiry by as much. An expired session
// is deleted.
func (s *Store) SessionByHash(ctx context.Context, hash []byte, now time.Time) (*account.Session, *account.User, error) {
	var (
		sess    account.Session
		u       *account.User
		expired bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var created, expires, seen int64
		err := tx.QueryRowContext(ctx, `UPDATE sessions
			SET expires_at = expires_at + MAX(?1 - last_seen_at, 0), last_seen_at = MAX(last_seen_at, ?1)
			WHERE token_hash = ?2 AND expires_at > ?1
			RETURNING token_hash, user_id, created_at, expires_at, last_seen_at`, dbTime(now), hash).
			Scan(&sess.TokenHash, &sess.UserID, &created, &expires, &seen)
		if errors.Is(err, sql.ErrNoRows) {
			// Missing or expired: delete it if it is expired, and commit
			// that before reporting ErrSessionNotFound.
			expired = true
			_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash)
			return err
		}
		if err != nil {
			return err
		}
		sess.CreatedAt, sess.ExpiresAt, sess.LastSeenAt = goTime(created), goTime(expires), goTime(seen)
		u, err = userByID(ctx, tx, sess.UserID)
		return err
	})
	if err == nil && expired {
		err = account.ErrSessionNotFound
	}
	if err != nil {
		return nil, nil, wrap("session by hash", err)
	}
	return &sess, u, nil
}

// DeleteSession deletes one session, if it exists.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash)
	return wrap("delete session", err)
}

// DeleteSessions deletes every session of the user but keep.
func (s *Store) DeleteSessions(ctx context.Context, userID string, keep []byte) (int, error) {
	n, err := deleteSessions(ctx, s.db, userID, keep)
	return n, wrap("delete sessions", err)
}

// deleteSessions deletes every session of the user but keep (may be nil)
// and returns how many went.
func deleteSessions(ctx context.Context, q querier, userID string, keep []byte) (int, error) {
	var (
		res sql.Result
		err error
	)
	if keep == nil {
		res, err = q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	} else {
		res, err = q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`, userID, keep)
	}
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
