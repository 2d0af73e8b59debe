package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"time"
)

// ServerSecret returns the secret called name, creating it with size random
// bytes if it does not exist yet. A stored secret of another size is an
// error, not silently a weaker key.
func (s *Store) ServerSecret(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("sqlite: server secret %q: size %d", name, size)
	}
	fresh := make([]byte, size)
	rand.Read(fresh) // never fails
	var value []byte
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, name, fresh)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name).Scan(&value)
	})
	if err != nil {
		return nil, wrap(fmt.Sprintf("server secret %q", name), err)
	}
	if len(value) != size {
		return nil, fmt.Errorf("sqlite: server secret %q: stored with %d bytes, want %d", name, len(value), size)
	}
	return value, nil
}

// DeleteExpired deletes the sessions and tokens whose ExpiresAt is at or
// before now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, dbTime(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at <= ?`, dbTime(now))
		return err
	})
	return wrap("delete expired", err)
}
