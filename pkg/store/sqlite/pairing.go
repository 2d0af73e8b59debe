package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// pairingTokenColumns is the column list scanPairingToken reads, in order.
const pairingTokenColumns = `id, token_hash, user_id, name, max_uses, uses, expires_at, created_at, revoked_at`

// scanPairingToken reads one row of pairingTokenColumns.
func scanPairingToken(row scanner) (*keystore.PairingToken, error) {
	var (
		t                keystore.PairingToken
		expires, created int64
		revoked          sql.NullInt64
	)
	err := row.Scan(&t.ID, &t.TokenHash, &t.UserID, &t.Name, &t.MaxUses, &t.Uses, &expires, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keystore.ErrTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	t.ExpiresAt, t.CreatedAt = goTime(expires), goTime(created)
	if revoked.Valid {
		r := goTime(revoked.Int64)
		t.RevokedAt = &r
	}
	return &t, nil
}

// CreatePairingToken stores t.
func (s *Store) CreatePairingToken(ctx context.Context, t *keystore.PairingToken) error {
	var revoked sql.NullInt64
	if t.RevokedAt != nil {
		revoked = sql.NullInt64{Int64: dbTime(*t.RevokedAt), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO pairing_tokens (`+pairingTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.TokenHash, t.UserID, t.Name, t.MaxUses, t.Uses, dbTime(t.ExpiresAt), dbTime(t.CreatedAt), revoked)
	if isForeignKey(err) {
		return account.ErrUserNotFound
	}
	return wrap("create pairing token", err)
}

// PairingTokens returns the user's pairing tokens, newest first.
func (s *Store) PairingTokens(ctx context.Context, userID string) ([]*keystore.PairingToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+pairingTokenColumns+` FROM pairing_tokens
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, userID)
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
	res, err := s.db.ExecContext(ctx, `UPDATE pairing_tokens SET revoked_at = coalesce(revoked_at, ?)
		WHERE id = ? AND user_id = ?`, dbTime(now), id, userID)
	return wrap("revoke pairing token", mustAffect(res, err, keystore.ErrPairingTokenNotFound))
}

// PairDevice uses one use of a live pairing token and stores the device
// owned by the token's user, in one transaction.
func (s *Store) PairDevice(ctx context.Context, tokenHash []byte, now time.Time, dev *keystore.Device, slots []keystore.KeySlot, sealedName []byte) (*keystore.DeviceUser, error) {
	var owner *keystore.DeviceUser
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanPairingToken(tx.QueryRowContext(ctx, `SELECT `+pairingTokenColumns+`
			FROM pairing_tokens WHERE token_hash = ?`, tokenHash))
		if err != nil {
			return err
		}
		if err := t.Usable(now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pairing_tokens SET uses = uses + 1 WHERE id = ?`, t.ID); err != nil {
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		owner, err = addDevice(ctx, tx, userID, dev, slots, sealedName)
		return err
	})
	if err != nil {
		return nil, wrap("add device for user", err)
	}
	return owner, nil
}

// addDevice inserts dev, its owner userID and the owner's slots.
func addDevice(ctx context.Context, tx *sql.Tx, userID string, dev *keystore.Device, slots []keystore.KeySlot, sealedName []byte) (*keystore.DeviceUser, error) {
	if err := insertDevice(ctx, tx, dev); err != nil {
		return nil, err
	}
	owner := &keystore.DeviceUser{
		DeviceID:   dev.ID,
		UserID:     userID,
		Role:       keystore.RoleOwner,
		SealedName: orNil(sealedName),
		CreatedAt:  goTime(dbTime(dev.CreatedAt)), // as stored
	}
	if err := insertDeviceUser(ctx, tx, owner); err != nil {
		return nil, err
	}
	if err := insertSlots(ctx, tx, dev.ID, userID, slots); err != nil {
		return nil, err
	}
	return owner, nil
}
