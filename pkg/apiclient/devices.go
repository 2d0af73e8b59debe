package apiclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// DeviceSlot is one key slot of a user on a device: a WireGuard peer of the
// device's interface. The device makes the browser-side key pair and a
// pre-shared key; the relay keeps the public key and Sealed, which is
// zkcrypto.SealTo(user box public key, browser private key || pre-shared
// key), 112 bytes. Busy is set in DeviceSlots' answer only: a session
// holds the slot.
type DeviceSlot struct {
	Index            int    `json:"index"`
	BrowserPublicKey []byte `json:"browser_public_key"`
	Sealed           []byte `json:"sealed"`
	Busy             bool   `json:"busy,omitempty"`
}

// LogValue leaves the sealed keys out.
func (s DeviceSlot) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("slot", s.Index), slog.Bool("busy", s.Busy))
}

// PairRequest registers a device: its UID (e.g. "warp2-AbCd"), WireGuard
// public key, firmware, control protocol version, its name sealed to the
// user's box key (optional) and the user's key slots (1 to 16). Secret is
// the pairing token's secret for PairDevice; AddDevice sends none.
type PairRequest struct {
	Secret          string       `json:"secret,omitempty"`
	UID             string       `json:"uid"`
	PublicKey       []byte       `json:"public_key"`
	Firmware        string       `json:"firmware"`
	ProtocolVersion int          `json:"protocol_version"`
	SealedName      []byte       `json:"sealed_name,omitempty"`
	Slots           []DeviceSlot `json:"slots"`
}

// LogValue leaves the secret and the sealed blobs out.
func (r *PairRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("uid", r.UID), slog.Int("slots", len(r.Slots)))
}

// PairResult is the relay's answer to a pairing: the device's id and how
// to reach the relay's management tunnel (docs/protocol.md): the relay's
// management WireGuard key and UDP endpoint (host:port), the device's and
// the relay's addresses in the tunnel, and the control protocol's TCP port.
type PairResult struct {
	DeviceID       string `json:"device_id"`
	RelayPublicKey []byte `json:"relay_public_key"`
	RelayEndpoint  string `json:"relay_endpoint"`
	MgmtAddr       string `json:"mgmt_addr"`
	RelayMgmtAddr  string `json:"relay_mgmt_addr"`
	ControlPort    int    `json:"control_port"`
}

// Device is a device as one of its users sees it (GET /devices). Role is
// "owner" or "user"; SealedName is this user's name for it, sealed to the
// user's box key; LastSeenAt is zero if the relay never saw the device.
// SlotsBusy counts the user's slots in use by a session.
type Device struct {
	ID              string    `json:"id"`
	UID             string    `json:"uid"`
	PublicKey       []byte    `json:"public_key"`
	Online          bool      `json:"online"`
	LastSeenAt      time.Time `json:"last_seen_at,omitzero"`
	Firmware        string    `json:"firmware"`
	ProtocolVersion int       `json:"protocol_version"`
	Role            string    `json:"role"`
	SealedName      []byte    `json:"sealed_name,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	SlotsTotal      int       `json:"slots_total"`
	SlotsBusy       int       `json:"slots_busy"`
}

// The roles of a Device.
const (
	RoleOwner = "owner"
	RoleUser  = "user"
)

// PairDevice registers a device with a pairing token's secret (POST
// /devices/pair); no session is needed. Errors with codes token_invalid,
// token_expired, token_used_up, token_revoked, device_exists (the UID or
// key is paired already) and invalid_input.
func (c *Client) PairDevice(ctx context.Context, req *PairRequest) (*PairResult, error) {
	if req.Secret == "" {
		return nil, errors.New("pair device: no token secret (a device logged in as its user calls AddDevice)")
	}
	var out PairResult
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/devices/pair", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddDevice registers a device as the logged-in user (POST /devices), for
// a device that logged in with the user's e-mail and password and checked
// the user's keys itself. req.Secret is not sent.
func (c *Client) AddDevice(ctx context.Context, req *PairRequest) (*PairResult, error) {
	in := *req
	in.Secret = ""
	var out PairResult
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/devices", &in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Devices lists the devices the user has access to (GET /devices).
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out []Device
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/devices", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Device returns one device (GET /devices/{id}); not_found if the user has
// no access to it.
func (c *Client) Device(ctx context.Context, id string) (*Device, error) {
	var out Device
	if _, err := c.do(ctx, http.MethodGet, devicePath(id, ""), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeviceSlots returns the user's key slots on a device, by index (GET
// /devices/{id}/slots).
func (c *Client) DeviceSlots(ctx context.Context, id string) ([]DeviceSlot, error) {
	var out []DeviceSlot
	if _, err := c.do(ctx, http.MethodGet, devicePath(id, "/slots"), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteDevice removes a device (DELETE /devices/{id}): for everyone if the
// user owns it, else only the user's own access.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, devicePath(id, ""), nil, nil)
	return err
}

// devicePath is the API path of device id followed by suffix.
func devicePath(id, suffix string) string {
	return "/api/v1/devices/" + url.PathEscape(id) + suffix
}
