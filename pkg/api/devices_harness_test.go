package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// fakeTunnels stands in for pkg/relay: devices are online unless marked
// offline, and a session echoes every binary message until the client
// closes or the session's context ends.
type fakeTunnels struct {
	mu      sync.Mutex
	offline map[string]bool // guarded by mu

	started  chan TunnelSession // every session Serve was handed
	released chan slotID        // every lease freed (see leases.releasedForTest)
	ended    chan error         // what each Serve returned
}

func newFakeTunnels() *fakeTunnels {
	return &fakeTunnels{
		offline:  map[string]bool{},
		started:  make(chan TunnelSession, 64),
		released: make(chan slotID, 64),
		ended:    make(chan error, 64),
	}
}

func (f *fakeTunnels) setOffline(deviceID string, off bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offline[deviceID] = off
}

func (f *fakeTunnels) DeviceOnline(deviceID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.offline[deviceID]
}

func (f *fakeTunnels) Serve(ctx context.Context, ws *websocket.Conn, s TunnelSession) (err error) {
	defer func() { f.ended <- err }()
	defer ws.CloseNow()
	f.started <- s
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ == websocket.MessageBinary {
			if err := ws.Write(ctx, typ, b); err != nil {
				return err
			}
		}
	}
}

// testDevice is the device side of a pairing: its keys and what it
// uploads.
type testDevice struct {
	key   wgkey.Private
	req   deviceRequest
	slots []testSlot
}

// testSlot is one key slot's secrets, as the device made them.
type testSlot struct {
	browser wgkey.Private
	psk     wgkey.Preshared
}

// newTestDevice makes a device with n key slots (indexes 0..n-1) sealed to
// owner's box key, and a sealed name.
func newTestDevice(t *testing.T, uid string, owner *client, n int) *testDevice {
	t.Helper()
	key, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	d := &testDevice{key: key}
	d.req = deviceRequest{UID: uid, PublicKey: pub[:], Firmware: "warp2 2.6.1", ProtocolVersion: 1,
		SealedName: seal(t, owner, []byte("Garage"))}
	for i := range n {
		var s testSlot
		if s.browser, err = wgkey.NewPrivate(); err != nil {
			t.Fatal(err)
		}
		if s.psk, err = wgkey.NewPreshared(); err != nil {
			t.Fatal(err)
		}
		bpub := s.browser.Public()
		d.slots = append(d.slots, s)
		d.req.Slots = append(d.req.Slots, slotRequest{Index: i, BrowserPublicKey: bpub[:],
			Sealed: seal(t, owner, append(s.browser[:], s.psk[:]...))})
	}
	return d
}

func seal(t *testing.T, to *client, msg []byte) []byte {
	t.Helper()
	b, err := zkcrypto.SealTo(to.keys.BoxPublic[:], msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// createToken makes a pairing token for c and returns it (with secret).
func (e *env) createToken(t *testing.T, c *client, req createPairingTokenRequest) pairingTokenJSON {
	t.Helper()
	var out pairingTokenJSON
	e.do("POST", "/api/v1/pairing-tokens", req, bearer(c.token)).want(t, http.StatusCreated).decode(t, &out)
	return out
}

// pair registers d with a token secret.
func (e *env) pair(secret string, d *testDevice) *response {
	return e.do("POST", "/api/v1/devices/pair", pairRequest{Secret: secret, deviceRequest: d.req})
}

// pairNew pairs a fresh device of c (4 slots) through a new single-use
// token and returns it with its id.
func (e *env) pairNew(t *testing.T, c *client, uid string) (*testDevice, string) {
	t.Helper()
	d := newTestDevice(t, uid, c, 4)
	tok := e.createToken(t, c, createPairingTokenRequest{Name: uid})
	var pr pairResponse
	e.pair(tok.Secret, d).want(t, http.StatusCreated).decode(t, &pr)
	return d, pr.DeviceID
}

// dialTunnel opens the tunnel WebSocket of device id with query (may be
// "") and the extra header h (may be nil), authenticated by token unless
// it is "".
func (e *env) dialTunnel(t *testing.T, token, id, query string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return websocket.Dial(t.Context(), e.baseURL+"/api/v1/devices/"+id+"/tunnel"+query, &websocket.DialOptions{
		HTTPClient:   e.srv.Client(),
		HTTPHeader:   h,
		Subprotocols: []string{TunnelSubprotocol},
	})
}

// openTunnel dials and reads the hello; it fails the test on any error.
func (e *env) openTunnel(t *testing.T, token, id, query string) (*websocket.Conn, tunnelHello) {
	t.Helper()
	ws, resp, err := e.dialTunnel(t, token, id, query, nil)
	if err != nil {
		t.Fatalf("dial tunnel: %v (%s)", err, respError(resp))
	}
	t.Cleanup(func() { ws.CloseNow() })
	if ws.Subprotocol() != TunnelSubprotocol {
		t.Errorf("subprotocol %q", ws.Subprotocol())
	}
	typ, b, err := ws.Read(t.Context())
	if err != nil || typ != websocket.MessageText {
		t.Fatalf("hello: %v %v %q", typ, err, b)
	}
	var h tunnelHello
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("hello %s: %v", b, err)
	}
	return ws, h
}

// wantTunnelError checks that a tunnel dial was refused before the upgrade
// with status and code.
func wantTunnelError(t *testing.T, resp *http.Response, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("tunnel accepted, want %d %s", status, code)
	}
	if resp == nil {
		t.Fatalf("tunnel dial: %v, want HTTP %d", err, status)
	}
	var eb errorBody
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || json.Unmarshal(body, &eb) != nil || string(eb.Error.Code) != code {
		t.Fatalf("tunnel refused with %d %s, want %d %s", resp.StatusCode, body, status, code)
	}
}

func respError(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}
