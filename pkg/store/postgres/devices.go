package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

var _ keystore.Store = (*Store)(nil)

// deviceColumns is the column list scanDevice reads, in order.
const deviceColumns = `d.id, d.uid, d.public_key, d.mgmt_addr, d.firmware, d.protocol_version, d.created_at,
	d.last_endpoint, d.last_seen_at, d.online, d.node`

// scanDevice reads one row of deviceColumns (and extra destinations after
// them).
func scanDevice(row pgx.Row, extra ...any) (*keystore.Device, error) {
	var (
		d        keystore.Device
		pub      []byte
		ep       string
		lastSeen *time.Time
	)
	dest := append([]any{&d.ID, &d.UID, &pub, &d.MgmtAddr, &d.Firmware, &d.ProtocolVersion, &d.CreatedAt,
		&ep, &lastSeen, &d.Online, &d.Node}, extra...)
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, keystore.ErrDeviceNotFound
		}
		return nil, err
	}
	if len(pub) != len(d.PublicKey) {
		return nil, fmt.Errorf("device %s: public key of %d bytes", d.ID, len(pub))
	}
	copy(d.PublicKey[:], pub)
	if ep != "" {
		var err error
		if d.LastEndpoint, err = netip.ParseAddrPort(ep); err != nil {
			return nil, fmt.Errorf("device %s: last_endpoint: %w", d.ID, err)
		}
	}
	if lastSeen != nil {
		d.LastSeenAt = *lastSeen
	}
	utc(&d.CreatedAt, &d.LastSeenAt)
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
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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
// into domain errors and returns other errors unchanged.
func keystoreError(err error) error {
	e, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return err
	}
	switch e.Code {
	case uniqueViolation:
		switch e.ConstraintName {
		case "devices_uid_key", "devices_public_key_key", "devices_mgmt_addr_key":
			return keystore.ErrDeviceExists
		case "key_slots_pkey", "key_slots_browser_public_key_key":
			return keystore.ErrSlotTaken
		case "device_users_pkey":
			return keystore.ErrAlreadyShared
		}
	case foreignKeyViolation:
		switch e.ConstraintName {
		case "device_users_device_id_fkey":
			return keystore.ErrDeviceNotFound
		case "device_users_user_id_fkey", "pairing_tokens_user_id_fkey":
			return account.ErrUserNotFound
		}
	}
	return err
}

// insertDevice inserts d (presence as given).
func insertDevice(ctx context.Context, tx pgx.Tx, d *keystore.Device) error {
	if !d.MgmtAddr.IsValid() {
		return fmt.Errorf("device %s: no management address", d.ID)
	}
	_, err := tx.Exec(ctx, `INSERT INTO devices (id, uid, public_key, mgmt_addr, firmware, protocol_version,
			created_at, last_endpoint, last_seen_at, online, node)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.ID, d.UID, d.PublicKey[:], d.MgmtAddr, d.Firmware, d.ProtocolVersion,
		d.CreatedAt, endpointText(d.LastEndpoint), nullTime(d.LastSeenAt), d.Online, d.Node)
	return keystoreError(err)
}

// deviceExists returns ErrDeviceNotFound unless the device exists.
func deviceExists(ctx context.Context, q querier, id string) error {
	var exists bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1)`, id).Scan(&exists)
	if err == nil && !exists {
		return keystore.ErrDeviceNotFound
	}
	return err
}

// DeviceByID returns the device with this id.
func (s *Store) DeviceByID(ctx context.Context, id string) (*keystore.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.id = $1`, id))
	return d, wrap("device by id", err)
}

// DeviceByUID returns the device with this UID.
func (s *Store) DeviceByUID(ctx context.Context, uid string) (*keystore.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.uid = $1`, uid))
	return d, wrap("device by uid", err)
}

// DeviceByPublicKey returns the device with this WireGuard public key.
func (s *Store) DeviceByPublicKey(ctx context.Context, publicKey [32]byte) (*keystore.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.public_key = $1`,
		publicKey[:]))
	return d, wrap("device by public key", err)
}

// DeviceByEndpoint returns the device last seen at ep; of several, the
// one seen there most recently. Repeating that the endpoint is not empty lets
// PostgreSQL use the partial index of migration 0003.
func (s *Store) DeviceByEndpoint(ctx context.Context, ep netip.AddrPort) (*keystore.Device, error) {
	if !ep.IsValid() {
		return nil, keystore.ErrDeviceNotFound
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices d
		WHERE d.last_endpoint = $1 AND d.last_endpoint <> ''
		ORDER BY d.last_seen_at DESC NULLS LAST, d.id LIMIT 1`, endpointText(ep)))
	return d, wrap("device by endpoint", err)
}

// DeleteDevice deletes the device; its users and key slots go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteDevice(ctx context.Context, deviceID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM devices WHERE id = $1`, deviceID)
	return wrap("delete device", mustAffect(tag, err, keystore.ErrDeviceNotFound))
}

// SetPresence records the device's presence as reported by node, in one
// statement: an offline report applies only if node holds the device.
func (s *Store) SetPresence(ctx context.Context, deviceID string, endpoint netip.AddrPort, online bool, node string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET
			last_endpoint = CASE WHEN $2 = '' THEN last_endpoint ELSE $2 END,
			online = $3, node = $4, last_seen_at = $5
		WHERE id = $1 AND ($3 OR node = '' OR node = $4)`,
		deviceID, endpointText(endpoint), online, node, now)
	if err == nil && tag.RowsAffected() == 0 {
		// Missing, or another node's: only the first is an error.
		err = deviceExists(ctx, s.pool, deviceID)
	}
	return wrap("set presence", err)
}

// SetNodeOffline marks the devices node holds offline.
func (s *Store) SetNodeOffline(ctx context.Context, node string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET online = false WHERE node = $1 AND online`, node)
	if err != nil {
		return 0, wrap("set node offline", err)
	}
	return int(tag.RowsAffected()), nil
}

// SetFirmware records the device's firmware and protocol version.
func (s *Store) SetFirmware(ctx context.Context, deviceID, firmware string, protocolVersion int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET firmware = $1, protocol_version = $2 WHERE id = $3`,
		firmware, protocolVersion, deviceID)
	return wrap("set firmware", mustAffect(tag, err, keystore.ErrDeviceNotFound))
}
