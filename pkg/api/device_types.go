package api

import (
	"net/netip"
	"time"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// The request and response bodies of the pairing-token, device and tunnel
// routes (docs/api.md "Devices"). Keys and sealed blobs are []byte or
// wgkey.Public: standard base64 with padding on the wire either way.

type createPairingTokenRequest struct {
	Name       string `json:"name"`
	MaxUses    int    `json:"max_uses,omitempty"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
}

// pairingTokenJSON is a pairing token as its user sees it. Secret is set
// only in the answer that created the token.
type pairingTokenJSON struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	UserID    string              `json:"user_id"`
	Secret    string              `json:"secret,omitempty"`
	MaxUses   int                 `json:"max_uses"`
	Uses      int                 `json:"uses"`
	State     keystore.TokenState `json:"state"`
	ExpiresAt time.Time           `json:"expires_at"`
	CreatedAt time.Time           `json:"created_at"`
	RevokedAt *time.Time          `json:"revoked_at,omitempty"`
}

func newPairingTokenJSON(t *keystore.PairingToken, now time.Time) pairingTokenJSON {
	out := pairingTokenJSON{
		ID: t.ID, Name: t.Name, UserID: t.UserID, MaxUses: t.MaxUses, Uses: t.Uses, State: t.State(now),
		ExpiresAt: t.ExpiresAt.UTC(), CreatedAt: t.CreatedAt.UTC(),
	}
	if t.RevokedAt != nil {
		r := t.RevokedAt.UTC()
		out.RevokedAt = &r
	}
	return out
}

// slotRequest is one key slot a registering device uploads.
type slotRequest struct {
	Index            int    `json:"index"`
	BrowserPublicKey []byte `json:"browser_public_key"`
	Sealed           []byte `json:"sealed"`
}

// deviceRequest is the body of POST /devices (a device logged in as its
// user) and, with the token secret, of POST /devices/pair.
type deviceRequest struct {
	UID             string        `json:"uid"`
	PublicKey       []byte        `json:"public_key"`
	Firmware        string        `json:"firmware"`
	ProtocolVersion int           `json:"protocol_version"`
	SealedName      []byte        `json:"sealed_name,omitempty"`
	Slots           []slotRequest `json:"slots"`
}

type pairRequest struct {
	Secret string `json:"secret"`
	deviceRequest
}

// pairResponse tells a paired device its id and how to reach the relay's
// management tunnel.
type pairResponse struct {
	DeviceID       string       `json:"device_id"`
	RelayPublicKey wgkey.Public `json:"relay_public_key"`
	RelayEndpoint  string       `json:"relay_endpoint"`
	MgmtAddr       netip.Addr   `json:"mgmt_addr"`
	RelayMgmtAddr  netip.Addr   `json:"relay_mgmt_addr"`
	ControlPort    int          `json:"control_port"`
}

// deviceJSON is a device as one of its users sees it. Online and
// LastSeenAt are the relay's presence record; SlotsBusy counts this user's
// slots leased on the node that answers.
type deviceJSON struct {
	ID              string        `json:"id"`
	UID             string        `json:"uid"`
	PublicKey       wgkey.Public  `json:"public_key"`
	Online          bool          `json:"online"`
	LastSeenAt      time.Time     `json:"last_seen_at,omitzero"`
	Firmware        string        `json:"firmware"`
	ProtocolVersion int           `json:"protocol_version"`
	Role            keystore.Role `json:"role"`
	SealedName      []byte        `json:"sealed_name,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	SlotsTotal      int           `json:"slots_total"`
	SlotsBusy       int           `json:"slots_busy"`
}

// slotJSON is one of the user's key slots on a device.
type slotJSON struct {
	Index            int          `json:"index"`
	BrowserPublicKey wgkey.Public `json:"browser_public_key"`
	Sealed           []byte       `json:"sealed"`
	Busy             bool         `json:"busy"`
}

// tunnelHello is the relay's first message on a tunnel WebSocket (a text
// message): the leased slot and the key of the device the session reaches.
type tunnelHello struct {
	Slot            int          `json:"slot"`
	DevicePublicKey wgkey.Public `json:"device_public_key"`
}
