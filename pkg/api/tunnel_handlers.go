package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// TunnelSubprotocol is the WebSocket subprotocol of the tunnel route. A
// client must offer it; a later, incompatible framing gets a new name.
const TunnelSubprotocol = "blindrelay.v1"

// helloTimeout bounds the write of the first message of a tunnel.
const helloTimeout = 10 * time.Second

// Tunnels carries browser sessions to devices. pkg/server implements it
// with pkg/relay; the API decides who may open which session and leases
// the key slot.
type Tunnels interface {
	// DeviceOnline reports whether this relay node can reach the device
	// now (its management tunnel is up here). Called before the WebSocket
	// upgrade; false is answered 503 device_offline.
	DeviceOnline(deviceID string) bool
	// Serve carries one session on ws, an accepted WebSocket whose first
	// (text) message the API has sent: from then on every binary message
	// is one WireGuard datagram, both ways, and text messages are ignored.
	// It blocks until the session ends (ctx ends, either side closes, the
	// session idles out) and closes ws before it returns. The key slot
	// stays leased until it returns.
	Serve(ctx context.Context, ws *websocket.Conn, s TunnelSession) error
}

// TunnelSession says whom a session is for; the API has checked the
// user's access and leased the slot. Its fields are those of
// relay.Session.
type TunnelSession struct {
	DeviceID  string
	DeviceKey wgkey.Public // the device's WireGuard static public key
	SlotKey   wgkey.Public // the key slot's browser public key
	UserID    string
	Slot      int
}

// tunnel is GET /devices/{id}/tunnel[?slot=i]: it checks the request, the
// user's access and the device's presence, leases a key slot, upgrades to
// a WebSocket, sends the hello and hands the connection to s.tunnels until
// the session ends. Every refusal is a JSON error before the upgrade.
//
// A slot asked for by index that the same user's older session holds is
// taken over: the older WebSocket is closed with StatusReplaced ("replaced")
// and the new session gets the slot (see leases.acquire).
func (s *server) tunnel(w http.ResponseWriter, r *http.Request) {
	user := auth(r).user.ID
	id := chi.URLParam(r, "id")
	want, err := tunnelRequest(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	dev, slots, err := s.tunnelTarget(r, id, user)
	if err != nil {
		s.error(w, r, err)
		return
	}
	byIndex := map[int]keystore.KeySlot{}
	for _, sl := range slots {
		byIndex[sl.Index] = sl
	}
	if _, ok := byIndex[want]; want >= 0 && !ok {
		s.error(w, r, account.Errorf(account.CodeNotFound, "You have no key slot %d on this device.", want))
		return
	}
	if s.tunnels == nil || !s.tunnels.DeviceOnline(id) {
		s.error(w, r, account.Errorf(account.CodeDeviceOffline, "The device is offline."))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	index, ls, release, err := s.leases.acquire(id, user, slotIndexes(slots), want, cancel)
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer release()

	// The server's read and write timeouts are for short requests; this
	// connection lives as long as the session.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{TunnelSubprotocol},
		// sameOrigin has checked Origin against the public URL, which
		// is right behind a proxy too, where Accept's own check (Origin
		// against the Host header) is not.
		InsecureSkipVerify: true,
		// Datagrams are WireGuard ciphertext: compression gains nothing
		// and costs memory per connection.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered (426, 400, ...).
		s.log.DebugContext(ctx, "tunnel upgrade failed", "device_id", id, "user_id", user, "error", err)
		return
	}
	if !s.leases.attach(ls, ws) {
		// A newer session of the user took the slot over during the
		// upgrade.
		<-endReplaced(ws, cancel)
		return
	}
	sess := TunnelSession{DeviceID: id, DeviceKey: dev.PublicKey, SlotKey: byIndex[index].BrowserPublicKey, UserID: user, Slot: index}
	if err := sendHello(ctx, ws, tunnelHello{Slot: index, DevicePublicKey: dev.PublicKey}); err != nil {
		ws.CloseNow()
		s.log.DebugContext(ctx, "tunnel hello failed", "device_id", id, "user_id", user, "error", err)
		return
	}
	s.log.DebugContext(ctx, "tunnel session starts", "device_id", id, "user_id", user, "slot", index)
	if err := s.tunnels.Serve(ctx, ws, sess); err != nil {
		s.log.DebugContext(ctx, "tunnel session ended", "device_id", id, "user_id", user, "slot", index, "error", err)
	}
}

// tunnelRequest checks that r is a WebSocket upgrade offering
// TunnelSubprotocol and returns the slot it asks for (-1: any).
func tunnelRequest(r *http.Request) (int, error) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return 0, invalid("This route takes a WebSocket upgrade.")
	}
	if !headerHasToken(r.Header, "Sec-WebSocket-Protocol", TunnelSubprotocol) {
		return 0, invalid("The WebSocket must offer the subprotocol %s.", TunnelSubprotocol)
	}
	vs := r.URL.Query()["slot"]
	if len(vs) == 0 {
		return -1, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || len(vs) != 1 || n < -1 || n > keystore.MaxSlotIndex {
		return 0, invalid("slot must be a key slot index from 0 to %d, or -1 for any.", keystore.MaxSlotIndex)
	}
	return n, nil
}

// tunnelTarget loads the device and the user's key slots on it:
// keystore.ErrDeviceNotFound if the user has no access.
func (s *server) tunnelTarget(r *http.Request, id, user string) (*keystore.Device, []keystore.KeySlot, error) {
	slots, err := s.devices.KeySlots(r.Context(), id, user) // checks access
	if err != nil {
		return nil, nil, err
	}
	dev, err := s.devices.DeviceByID(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	return dev, slots, nil
}

// sendHello writes the tunnel's first message.
func sendHello(ctx context.Context, ws *websocket.Conn, h tunnelHello) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, b)
}

// headerHasToken reports whether a comma-separated header lists token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
