package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerSecret returns the secret called name, creating it with size random
// bytes if it does not exist yet. A stored secret of another size is an
// error, not silently a weaker key.
//
// Concurrent first calls, also from other relay nodes, agree: the INSERT of
// all but one does nothing (waiting for the one that wins to commit), and
// the SELECT, a statement of its own, then sees the winner's value.
func (s *Store) ServerSecret(ctx context.Context, name string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("postgres: server secret %q: size %d", name, size)
	}
	fresh := make([]byte, size)
	rand.Read(fresh) // never fails
	_, err := s.pool.Exec(ctx, `INSERT INTO server_secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, fresh)
	if err != nil {
		return nil, fmt.Errorf("postgres: server secret %q: %w", name, err)
	}
	var value []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM server_secrets WHERE name = $1`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("postgres: server secret %q: %w", name, err)
	}
	if len(value) != size {
		return nil, fmt.Errorf("postgres: server secret %q: stored with %d bytes, want %d", name, len(value), size)
	}
	return value, nil
}

// DeleteExpired deletes the sessions and tokens whose ExpiresAt is at or
// before now.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM tokens WHERE expires_at <= $1`, now)
		return err
	})
	return wrap("delete expired", err)
}
