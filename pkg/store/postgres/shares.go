package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// deviceUserColumns is the column list deviceUserDest scans, in order.
const deviceUserColumns = `du.device_id, du.user_id, du.role, du.sealed_name, du.sealed_note, du.created_at`

// deviceUserDest returns the scan destinations of deviceUserColumns; done
// converts what they read.
func deviceUserDest(du *keystore.DeviceUser) (dest []any, done func()) {
	var role string
	return []any{&du.DeviceID, &du.UserID, &role, &du.SealedName, &du.SealedNote, &du.CreatedAt}, func() {
		du.Role = keystore.Role(role)
		du.SealedName, du.SealedNote = orNil(du.SealedName), orNil(du.SealedNote)
		utc(&du.CreatedAt)
	}
}

// insertDeviceUser inserts du.
func insertDeviceUser(ctx context.Context, tx pgx.Tx, du *keystore.DeviceUser) error {
	_, err := tx.Exec(ctx, `INSERT INTO device_users (device_id, user_id, role, sealed_name, sealed_note, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		du.DeviceID, du.UserID, string(du.Role), blob(du.SealedName), blob(du.SealedNote), du.CreatedAt)
	return keystoreError(err)
}

// insertSlots inserts the slots for the device and user; their DeviceID
// and UserID must be empty or these.
func insertSlots(ctx context.Context, tx pgx.Tx, deviceID, userID string, slots []keystore.KeySlot) error {
	for _, ks := range slots {
		if (ks.DeviceID != "" && ks.DeviceID != deviceID) || (ks.UserID != "" && ks.UserID != userID) {
			return fmt.Errorf("key slot %d is for device %q, user %q, not %q, %q",
				ks.Index, ks.DeviceID, ks.UserID, deviceID, userID)
		}
		_, err := tx.Exec(ctx, `INSERT INTO key_slots (device_id, user_id, idx, browser_public_key, sealed)
			VALUES ($1, $2, $3, $4, $5)`, deviceID, userID, ks.Index, ks.BrowserPublicKey[:], blob(ks.Sealed))
		if err := keystoreError(err); err != nil {
			return err
		}
	}
	return nil
}

// DevicesForUser returns the devices the user has access to.
func (s *Store) DevicesForUser(ctx context.Context, userID string) ([]keystore.UserDevice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+`, `+deviceUserColumns+`
		FROM device_users du JOIN devices d ON d.id = du.device_id
		WHERE du.user_id = $1
		ORDER BY du.created_at, d.id`, userID)
	if err != nil {
		return nil, wrap("devices for user", err)
	}
	defer rows.Close()
	var list []keystore.UserDevice
	for rows.Next() {
		var ud keystore.UserDevice
		dest, done := deviceUserDest(&ud.Access)
		d, err := scanDevice(rows, dest...)
		if err != nil {
			return nil, wrap("devices for user", err)
		}
		done()
		ud.Device = *d
		list = append(list, ud)
	}
	return list, wrap("devices for user", rows.Err())
}

// DeviceUsers returns everyone with access to the device, owners first.
func (s *Store) DeviceUsers(ctx context.Context, deviceID string) ([]keystore.DeviceUser, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceUserColumns+` FROM device_users du
		WHERE du.device_id = $1
		ORDER BY du.role = 'owner' DESC, du.created_at, du.user_id`, deviceID)
	if err != nil {
		return nil, wrap("device users", err)
	}
	defer rows.Close()
	var list []keystore.DeviceUser
	for rows.Next() {
		var du keystore.DeviceUser
		dest, done := deviceUserDest(&du)
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap("device users", err)
		}
		done()
		list = append(list, du)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("device users", err)
	}
	if len(list) == 0 {
		// A device always has an owner; none means no device.
		return nil, wrap("device users", keystore.ErrDeviceNotFound)
	}
	return list, nil
}

// DeviceUserAccess returns the user's role on the device.
func (s *Store) DeviceUserAccess(ctx context.Context, deviceID, userID string) (keystore.Role, error) {
	var role string
	err := s.pool.QueryRow(ctx, `SELECT role FROM device_users WHERE device_id = $1 AND user_id = $2`,
		deviceID, userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", keystore.ErrDeviceNotFound
	}
	return keystore.Role(role), wrap("device user access", err)
}

// KeySlots returns the user's key slots on the device, by index, in one
// statement: no row means no access, one row of NULLs access without slots.
func (s *Store) KeySlots(ctx context.Context, deviceID, userID string) ([]keystore.KeySlot, error) {
	rows, err := s.pool.Query(ctx, `SELECT ks.idx, ks.browser_public_key, ks.sealed
		FROM device_users du
		LEFT JOIN key_slots ks ON ks.device_id = du.device_id AND ks.user_id = du.user_id
		WHERE du.device_id = $1 AND du.user_id = $2
		ORDER BY ks.idx`, deviceID, userID)
	if err != nil {
		return nil, wrap("key slots", err)
	}
	defer rows.Close()
	var (
		slots  []keystore.KeySlot
		access bool
	)
	for rows.Next() {
		access = true
		var (
			idx         *int
			pub, sealed []byte
		)
		if err := rows.Scan(&idx, &pub, &sealed); err != nil {
			return nil, wrap("key slots", err)
		}
		if idx == nil {
			continue // access, but no slots
		}
		ks := keystore.KeySlot{DeviceID: deviceID, UserID: userID, Index: *idx, Sealed: orNil(sealed)}
		if len(pub) != len(ks.BrowserPublicKey) {
			return nil, fmt.Errorf("postgres: key slots: slot %d: browser public key of %d bytes", *idx, len(pub))
		}
		copy(ks.BrowserPublicKey[:], pub)
		slots = append(slots, ks)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("key slots", err)
	}
	if !access {
		return nil, keystore.ErrDeviceNotFound
	}
	return slots, nil
}

// ShareDevice gives du.UserID access to the device with the slots.
func (s *Store) ShareDevice(ctx context.Context, deviceID string, du keystore.DeviceUser, slots []keystore.KeySlot) error {
	if du.DeviceID != "" && du.DeviceID != deviceID {
		return fmt.Errorf("postgres: share device: device user is for device %q, not %q", du.DeviceID, deviceID)
	}
	du.DeviceID = deviceID
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The foreign keys tell a missing device from a missing user.
		if err := insertDeviceUser(ctx, tx, &du); err != nil {
			return err
		}
		return insertSlots(ctx, tx, deviceID, du.UserID, slots)
	})
	return wrap("share device", err)
}

// SetSealedLabel replaces the user's sealed name and note of the device.
func (s *Store) SetSealedLabel(ctx context.Context, deviceID, userID string, sealedName, sealedNote []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE device_users SET sealed_name = $1, sealed_note = $2
		WHERE device_id = $3 AND user_id = $4`, blob(sealedName), blob(sealedNote), deviceID, userID)
	return wrap("set sealed label", mustAffect(tag, err, keystore.ErrDeviceNotFound))
}

// UnshareDevice removes the user's access and key slots, unless the user is
// the last owner.
func (s *Store) UnshareDevice(ctx context.Context, deviceID, userID string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM device_users WHERE device_id = $1 AND user_id = $2`, deviceID, userID)
		if err := mustAffect(tag, err, keystore.ErrDeviceNotFound); err != nil {
			return err
		}
		// The trigger device_users_last_owner has deleted the device if
		// that was its last owner (it locks the device row first, so a
		// concurrent removal of another owner is seen); refuse, and roll
		// that back.
		if err := deviceExists(ctx, tx, deviceID); errors.Is(err, keystore.ErrDeviceNotFound) {
			return keystore.ErrLastOwner
		} else if err != nil {
			return err
		}
		return nil
	})
	return wrap("unshare device", err)
}

// DeleteUserDeviceAccess removes the user's shares, key slots and pairing
// tokens; the devices the user was the last owner of go too (trigger
// device_users_last_owner).
func (s *Store) DeleteUserDeviceAccess(ctx context.Context, userID string) ([]string, error) {
	var deleted []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM device_users WHERE user_id = $1 AND role = 'owner' RETURNING device_id`, userID)
		if err != nil {
			return err
		}
		owned, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM device_users WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pairing_tokens WHERE user_id = $1`, userID); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT o.id FROM unnest($1::text[]) AS o (id)
			WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = o.id)
			ORDER BY o.id COLLATE "C"`, owned)
		if err != nil {
			return err
		}
		deleted, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, wrap("delete user device access", err)
	}
	return deleted, nil
}
