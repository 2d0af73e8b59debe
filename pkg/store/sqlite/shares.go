package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// deviceUserColumns is the column list scanDeviceUser reads, in order.
const deviceUserColumns = `du.device_id, du.user_id, du.role, du.sealed_name, du.sealed_note, du.created_at`

// deviceUserDest returns the scan destinations of deviceUserColumns; done
// converts what they read.
func deviceUserDest(du *keystore.DeviceUser) (dest []any, done func()) {
	var (
		role    string
		created int64
	)
	return []any{&du.DeviceID, &du.UserID, &role, &du.SealedName, &du.SealedNote, &created}, func() {
		du.Role = keystore.Role(role)
		du.SealedName, du.SealedNote = orNil(du.SealedName), orNil(du.SealedNote)
		du.CreatedAt = goTime(created)
	}
}

// userExists returns account.ErrUserNotFound unless the user exists.
func userExists(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return account.ErrUserNotFound
	}
	return err
}

// insertDeviceUser inserts du.
func insertDeviceUser(ctx context.Context, tx *sql.Tx, du *keystore.DeviceUser) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO device_users (device_id, user_id, role, sealed_name, sealed_note, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		du.DeviceID, du.UserID, string(du.Role), blob(du.SealedName), blob(du.SealedNote), dbTime(du.CreatedAt))
	return keystoreError(err)
}

// insertSlots inserts the slots for the device and user, filling in empty
// DeviceID and UserID fields of copies.
func insertSlots(ctx context.Context, tx *sql.Tx, deviceID, userID string, slots []keystore.KeySlot) error {
	for _, ks := range slots {
		if (ks.DeviceID != "" && ks.DeviceID != deviceID) || (ks.UserID != "" && ks.UserID != userID) {
			return fmt.Errorf("key slot %d is for device %q, user %q, not %q, %q",
				ks.Index, ks.DeviceID, ks.UserID, deviceID, userID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO key_slots (device_id, user_id, idx, browser_public_key, sealed)
			VALUES (?, ?, ?, ?, ?)`, deviceID, userID, ks.Index, ks.BrowserPublicKey[:], blob(ks.Sealed))
		if err := keystoreError(err); err != nil {
			return err
		}
	}
	return nil
}

// DevicesForUser returns the devices the user has access to.
func (s *Store) DevicesForUser(ctx context.Context, userID string) ([]keystore.UserDevice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+`, `+deviceUserColumns+`
		FROM device_users du JOIN devices d ON d.id = du.device_id
		WHERE du.user_id = ?
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
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceUserColumns+` FROM device_users du
		WHERE du.device_id = ?
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
		return nil, keystore.ErrDeviceNotFound
	}
	return list, nil
}

// DeviceUserAccess returns the user's role on the device.
func (s *Store) DeviceUserAccess(ctx context.Context, deviceID, userID string) (keystore.Role, error) {
	var role string
	err := s.db.QueryRowContext(ctx, `SELECT role FROM device_users WHERE device_id = ? AND user_id = ?`,
		deviceID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", keystore.ErrDeviceNotFound
	}
	return keystore.Role(role), wrap("device user access", err)
}

// KeySlots returns the user's key slots on the device, by index, in one
// statement: no row means no access, one row of NULLs access without slots.
func (s *Store) KeySlots(ctx context.Context, deviceID, userID string) ([]keystore.KeySlot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ks.idx, ks.browser_public_key, ks.sealed
		FROM device_users du
		LEFT JOIN key_slots ks ON ks.device_id = du.device_id AND ks.user_id = du.user_id
		WHERE du.device_id = ? AND du.user_id = ?
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
			idx         sql.NullInt64
			pub, sealed []byte
		)
		if err := rows.Scan(&idx, &pub, &sealed); err != nil {
			return nil, wrap("key slots", err)
		}
		if !idx.Valid {
			continue // access, but no slots
		}
		ks := keystore.KeySlot{DeviceID: deviceID, UserID: userID, Index: int(idx.Int64), Sealed: orNil(sealed)}
		if len(pub) != len(ks.BrowserPublicKey) {
			return nil, fmt.Errorf("sqlite: key slots: slot %d: browser public key of %d bytes", ks.Index, len(pub))
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
		return fmt.Errorf("sqlite: share device: device user is for device %q, not %q", du.DeviceID, deviceID)
	}
	du.DeviceID = deviceID
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := deviceExists(ctx, tx, deviceID); err != nil {
			return err
		}
		if err := userExists(ctx, tx, du.UserID); err != nil {
			return err
		}
		if err := insertDeviceUser(ctx, tx, &du); err != nil {
			return err
		}
		return insertSlots(ctx, tx, deviceID, du.UserID, slots)
	})
	return wrap("share device", err)
}

// SetSealedLabel replaces the user's sealed name and note of the device.
func (s *Store) SetSealedLabel(ctx context.Context, deviceID, userID string, sealedName, sealedNote []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE device_users SET sealed_name = ?, sealed_note = ?
		WHERE device_id = ? AND user_id = ?`, blob(sealedName), blob(sealedNote), deviceID, userID)
	return wrap("set sealed label", mustAffect(res, err, keystore.ErrDeviceNotFound))
}

// UnshareDevice removes the user's access and key slots, unless the user is
// the last owner.
func (s *Store) UnshareDevice(ctx context.Context, deviceID, userID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM device_users WHERE device_id = ? AND user_id = ?`, deviceID, userID)
		if err := mustAffect(res, err, keystore.ErrDeviceNotFound); err != nil {
			return err
		}
		// The trigger device_users_last_owner has deleted the device if
		// that was its last owner; refuse, and roll that back.
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		owned, err := ownedDevices(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_users WHERE user_id = ?`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pairing_tokens WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, id := range owned {
			switch err := deviceExists(ctx, tx, id); {
			case errors.Is(err, keystore.ErrDeviceNotFound):
				deleted = append(deleted, id)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("delete user device access", err)
	}
	slices.Sort(deleted)
	return deleted, nil
}

// ownedDevices returns the ids of the devices the user owns.
func ownedDevices(ctx context.Context, tx *sql.Tx, userID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT device_id FROM device_users WHERE user_id = ? AND role = 'owner'`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
