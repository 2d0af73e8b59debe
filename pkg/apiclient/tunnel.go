package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/coder/websocket"
)

// TunnelSubprotocol is the WebSocket subprotocol of the tunnel route.
const TunnelSubprotocol = "blindrelay.v1"

// MaxDatagram is the read limit DialTunnel sets on the WebSocket: one
// message is one WireGuard datagram, at most 65535 bytes.
const MaxDatagram = 1<<16 - 1

// maxSlotIndex is the highest key slot index.
const maxSlotIndex = 253

// TunnelHello is the relay's first message on a tunnel: the key slot it
// leased for this session and the device's WireGuard public key (the peer
// the session's WireGuard must talk to).
type TunnelHello struct {
	Slot            int    `json:"slot"`
	DevicePublicKey []byte `json:"device_public_key"`
}

// ErrBadHello: the relay's first tunnel message is not a TunnelHello.
var ErrBadHello = errors.New("the relay's first tunnel message is not the expected hello")

// DialTunnel opens a session with a device (GET /devices/{id}/tunnel): a
// WebSocket on which, after the TunnelHello this method reads, every binary
// message is one WireGuard datagram, both ways, and text messages are to be
// ignored. slot picks the key slot to lease, -1 any free one. The
// connection's read limit is MaxDatagram. The caller closes the
// connection; ctx bounds only the dial and the hello.
//
// A refusal before the upgrade is an *Error with the relay's code:
// unauthorized, not_found, all_slots_busy, slot_busy, device_offline, ...
// Natively the request goes through the client's http.Client with its
// session token; under GOOS=js the browser dials, with its cookie, and
// cannot see why a dial failed.
func (c *Client) DialTunnel(ctx context.Context, deviceID string, slot int) (*websocket.Conn, *TunnelHello, error) {
	if slot < -1 || slot > maxSlotIndex {
		return nil, nil, fmt.Errorf("dial tunnel: slot %d is not a key slot index (0 to %d) or -1", slot, maxSlotIndex)
	}
	u := c.base.JoinPath(devicePath(deviceID, "/tunnel"))
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	if slot >= 0 {
		u.RawQuery = "slot=" + strconv.Itoa(slot)
	}
	ws, err := c.dialTunnel(ctx, u.String())
	if err != nil {
		return nil, nil, err
	}
	if p := ws.Subprotocol(); p != TunnelSubprotocol {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("dial tunnel: the relay chose subprotocol %q, want %q", p, TunnelSubprotocol)
	}
	ws.SetReadLimit(MaxDatagram)
	hello, err := readHello(ctx, ws)
	if err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("dial tunnel: %w", err)
	}
	return ws, hello, nil
}

// readHello reads and checks the tunnel's first message.
func readHello(ctx context.Context, ws *websocket.Conn) (*TunnelHello, error) {
	typ, b, err := ws.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	var h TunnelHello
	if typ != websocket.MessageText || json.Unmarshal(b, &h) != nil ||
		len(h.DevicePublicKey) != 32 || h.Slot < 0 || h.Slot > maxSlotIndex {
		return nil, ErrBadHello
	}
	return &h, nil
}
