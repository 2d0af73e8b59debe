package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

var _ keystore.Store = (*Store)(nil)

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// deviceColumns is the column list scanDevice reads, in order.
const deviceColumns = `d.id, d.uid, d.public_key, d.mgmt_addr, d.firmware, d.protocol_version, d.created_at,
	d.last_endpoint, d.last_seen_at, d.online, d.node`

// scanDevice reads one row of deviceColumns (and extra destinations after
// them).
func scanDevice(row scanner, extra ...any) (*keystore.Device, error) {
	var (
		d        keystore.Device
		pub      []byte
		mgmt, ep string
		created  int64
		lastSeen sql.NullInt64
	)
	dest := append([]any{&d.ID, &d.UID, &pub, &mgmt, &d.Firmware, &d.ProtocolVersion, &created,
		&ep, &lastSeen, &d.Online, &d.Node}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, keystore.ErrDeviceNotFound
		}
		return nil, err
	}
	if len(pub) != len(d.PublicKey) {
		return nil, fmt.Errorf("device %s: public key of %d bytes", d.ID, len(pub))
	}
	copy(d.PublicKey[:], pub)
	var err error
	if d.MgmtAddr, err = netip.ParseAddr(mgmt); err != nil {
		return nil, fmt.Errorf("device %s: mgmt_addr: %w", d.ID, err)
	}
	if ep != "" {
		if d.LastEndpoint, err = netip.ParseAddrPort(ep); err != nil {
			return nil, fmt.Errorf("device %s: last_endpoint: %w", d.ID, err)
		}
	}
	d.CreatedAt = goTime(created)
	if lastSeen.Valid {
		d.LastSeenAt = goTime(lastSeen.Int64)
	}
	return &d, nil
}

// endpointText is the stored form of an endpoint: "" for none.
func endpointText(ep netip.AddrPort) string {
	if !ep.IsValid() {
		return ""
	}
	return ep.String()
}

// nullTime is the stored form of an optional time: NULL for the zero time.
func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: dbTime(t), Valid: true}
}

// blob is the stored form of an opaque byte string: never NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// orNil returns nil for an empty byte string, as the keystore contract
// wants.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// keystoreError translates the constraint violations of the device tables
// into keystore errors and returns other errors unchanged.
func keystoreError(err error) error {
	code := errorCode(err)
	if code != sqlite3.SQLITE_CONSTRAINT_UNIQUE && code != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "devices.uid"), strings.Contains(msg, "devices.public_key"),
		strings.Contains(msg, "devices.mgmt_addr"):
		return keystore.ErrDeviceExists
	case strings.Contains(msg, "key_slots."):
		return keystore.ErrSlotTaken
	case strings.Contains(msg, "device_users."):
		return keystore.ErrAlreadyShared
	}
	return err
}

// insertDevice inserts d (presence as given).
func insertDevice(ctx context.Context, tx *sql.Tx, d *keystore.Device) error {
	if !d.MgmtAddr.IsValid() {
		return fmt.Errorf("device %s: no management address", d.ID)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (id, uid, public_key, mgmt_addr, firmware, protocol_version,
			created_at, last_endpoint, last_seen_at, online, node)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.UID, d.PublicKey[:], d.MgmtAddr.String(), d.Firmware, d.ProtocolVersion,
		dbTime(d.CreatedAt), endpointText(d.LastEndpoint), nullTime(d.LastSeenAt), d.Online, d.Node)
	return keystoreError(err)
}

// deviceExists returns ErrDeviceNotFound unless the device exists.
func deviceExists(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return keystore.ErrDeviceNotFound
	}
	return err
}

// DeviceByID returns the device with this id.
func (s *Store) DeviceByID(ctx context.Context, id string) (*keystore.Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.id = ?`, id))
	return d, wrap("device by id", err)
}

// DeviceByUID returns the device with this UID.
func (s *Store) DeviceByUID(ctx context.Context, uid string) (*keystore.Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.uid = ?`, uid))
	return d, wrap("device by uid", err)
}

// DeviceByPublicKey returns the device with this WireGuard public key.
func (s *Store) DeviceByPublicKey(ctx context.Context, publicKey [32]byte) (*keystore.Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.public_key = ?`,
		publicKey[:]))
	return d, wrap("device by public key", err)
}

// DeviceByEndpoint returns the device last seen at ep; of several, the
// one seen there most recently. Repeating that the endpoint is not empty lets
// SQLite use the partial index of migration 0003.
func (s *Store) DeviceByEndpoint(ctx context.Context, ep netip.AddrPort) (*keystore.Device, error) {
	if !ep.IsValid() {
		return nil, keystore.ErrDeviceNotFound
	}
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d
		WHERE d.last_endpoint = ? AND d.last_endpoint <> ''
		ORDER BY d.last_seen_at DESC NULLS LAST, d.id LIMIT 1`, endpointText(ep)))
	return d, wrap("device by endpoint", err)
}

// DeleteDevice deletes the device; its users and key slots go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteDevice(ctx context.Context, deviceID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM devices WHERE id = ?`, deviceID)
	return wrap("delete device", mustAffect(res, err, keystore.ErrDeviceNotFound))
}

// SetPresence records the device's presence as reported by node, in one
// statement: an offline report applies only if node holds the device.
func (s *Store) SetPresence(ctx context.Context, deviceID string, endpoint netip.AddrPort, online bool, node string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET
			last_endpoint = CASE WHEN ?2 = '' THEN last_endpoint ELSE ?2 END,
			online = ?3, node = ?4, last_seen_at = ?5
		WHERE id = ?1 AND (?3 OR node = '' OR node = ?4)`,
		deviceID, endpointText(endpoint), online, node, dbTime(now))
	if err = mustAffect(res, err, keystore.ErrDeviceNotFound); errors.Is(err, keystore.ErrDeviceNotFound) {
		// Missing, or another node's: only the first is an error.
		err = deviceExists(ctx, s.db, deviceID)
	}
	return wrap("set presence", err)
}

// SetNodeOffline marks the devices node holds offline.
func (s *Store) SetNodeOffline(ctx context.Context, node string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET online = 0 WHERE node = ? AND online = 1`, node)
	if err != nil {
		return 0, wrap("set node offline", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("set node offline", err)
}

// SetFirmware records the device's firmware and protocol version.
func (s *Store) SetFirmware(ctx context.Context, deviceID, firmware string, protocolVersion int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET firmware = ?, protocol_version = ? WHERE id = ?`,
		firmware, protocolVersion, deviceID)
	return wrap("set firmware", mustAffect(res, err, keystore.ErrDeviceNotFound))
}
