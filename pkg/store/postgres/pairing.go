package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// pairingTokenColumns is the column list scanPairingToken reads, in order.
const pairingTokenColumns = `id, token_hash, user_id, name, max_uses, uses, expires_at, created_at, revoked_at`

// scanPairingToken reads one row of pairingTokenColumns.
func scanPairingToken(row pgx.Row) (*keystore.PairingToken, error) {
	var t keystore.PairingToken
	err := row.Scan(&t.ID, &t.TokenHash, &t.UserID, &t.Name, &t.MaxUses, &t.Uses, &t.ExpiresAt, &t.CreatedAt, &t.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keystore.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	utc(&t.ExpiresAt, &t.CreatedAt)
	if t.RevokedAt != nil {
		utc(t.RevokedAt)
	}
	return &t, nil
}

// CreatePairingToken stores t.
func (s *Store) CreatePairingToken(ctx context.Context, t *keystore.PairingToken) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pairing_tokens (`+pairingTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.TokenHash, t.UserID, t.Name, t.MaxUses, t.Uses, t.ExpiresAt, t.CreatedAt, t.RevokedAt)
	return wrap("create pairing token", keystoreError(err))
}

// PairingTokens returns the user's pairing tokens, newest first.
func (s *Store) PairingTokens(ctx context.Context, userID string) ([]*keystore.PairingToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pairingTokenColumns+` FROM pairing_tokens
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, wrap("pairing tokens", err)
	}
	defer rows.Close()
	var list []*keystore.PairingToken
	for rows.Next() {
		t, err := scanPairingToken(rows)
		if err != nil {
			return nil, wrap("pairing tokens", err)
		}
		list = append(list, t)
	}
	return list, wrap("pairing tokens", rows.Err())
}

// RevokePairingToken revokes the user's token id at now.
func (s *Store) RevokePairingToken(ctx context.Context, userID, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE pairing_tokens SET revoked_at = coalesce(revoked_at, $1)
		WHERE id = $2 AND user_id = $3`, now, id, userID)
	return wrap("revoke pairing token", mustAffect(tag, err, keystore.ErrPairingTokenNotFound))
}

// PairDevice uses one use of a live pairing token and stores the device
// owned by the token's user, in one transaction. The token row stays
// locked until the end, so concurrent pairings with one token take turns.
func (s *Store) PairDevice(ctx context.Context, tokenHash []byte, now time.Time, dev *keystore.Device, slots []keystore.KeySlot, sealedName []byte) (*keystore.DeviceUser, error) {
	var owner *keystore.DeviceUser
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := scanPairingToken(tx.QueryRow(ctx, `SELECT `+pairingTokenColumns+`
			FROM pairing_tokens WHERE token_hash = $1 FOR UPDATE`, tokenHash))
		if err != nil {
			return err
		}
		if err := t.Usable(now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE pairing_tokens SET uses = uses + 1 WHERE id = $1`, t.ID); err != nil {
			return err
		}
		owner, err = addDevice(ctx, tx, t.UserID, dev, slots, sealedName)
		return err
	})
	if err != nil {
		return nil, wrap("pair device", err)
	}
	return owner, nil
}

// AddDeviceForUser stores the device owned by userID.
func (s *Store) AddDeviceForUser(ctx context.Context, userID string, dev *keystore.Device, slots []keystore.KeySlot, sealedName []byte) (*keystore.DeviceUser, error) {
	var owner *keystore.DeviceUser
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		owner, err = addDevice(ctx, tx, userID, dev, slots, sealedName)
		return err
	})
	if err != nil {
		return nil, wrap("add device for user", err)
	}
	return owner, nil
}

// addDevice inserts dev, its owner userID and the owner's slots. A missing
// user shows as the foreign key of the owner row.
func addDevice(ctx context.Context, tx pgx.Tx, userID string, dev *keystore.Device, slots []keystore.KeySlot, sealedName []byte) (*keystore.DeviceUser, error) {
	if err := insertDevice(ctx, tx, dev); err != nil {
		return nil, err
	}
	owner := &keystore.DeviceUser{
		DeviceID:   dev.ID,
		UserID:     userID,
		Role:       keystore.RoleOwner,
		SealedName: orNil(sealedName),
		CreatedAt:  dev.CreatedAt.Truncate(time.Microsecond).UTC(), // as stored
	}
	if err := insertDeviceUser(ctx, tx, owner); err != nil {
		return nil, err
	}
	if err := insertSlots(ctx, tx, dev.ID, userID, slots); err != nil {
		return nil, err
	}
	return owner, nil
}
