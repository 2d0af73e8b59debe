package apiclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// echoTunnels stands in for pkg/relay behind the real API: devices are
// online unless marked offline, and a session echoes binary messages.
type echoTunnels struct {
	mu      sync.Mutex
	offline map[string]bool // guarded by mu
}

func (e *echoTunnels) setOffline(id string, off bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offline[id] = off
}

func (e *echoTunnels) DeviceOnline(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.offline[id]
}

func (e *echoTunnels) Serve(ctx context.Context, ws *websocket.Conn, _ api.TunnelSession) error {
	defer ws.CloseNow()
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

// newDeviceRequest is what a device that parsed tok sends: n key slots
// sealed to the token's box key.
func newDeviceRequest(t *testing.T, tok apiclient.PairingToken, uid string, n int) (*apiclient.PairRequest, wgkey.Public) {
	t.Helper()
	key, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	name, err := zkcrypto.SealTo(tok.BoxPublicKey, []byte("Garage"))
	if err != nil {
		t.Fatal(err)
	}
	req := &apiclient.PairRequest{Secret: tok.Secret, UID: uid, PublicKey: pub[:], Firmware: "sim 1.0", ProtocolVersion: 1, SealedName: name}
	for i := range n {
		b, _ := wgkey.NewPrivate()
		psk, _ := wgkey.NewPreshared()
		sealed, err := zkcrypto.SealTo(tok.BoxPublicKey, append(b[:], psk[:]...))
		if err != nil {
			t.Fatal(err)
		}
		bp := b.Public()
		req.Slots = append(req.Slots, apiclient.DeviceSlot{Index: i, BrowserPublicKey: bp[:], Sealed: sealed})
	}
	return req, pub
}

// TestDevices runs pairing, the device list and a tunnel through the
// client against the real API handler.
func TestDevices(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	ctx := t.Context()
	const email, password = "dev@example.com", "correct horse"
	keys := r.signUp(t, email, password)
	c := r.client(t)
	if _, _, err := c.Login(ctx, email, []byte(password)); err != nil {
		t.Fatal(err)
	}

	// The user side: a token and its string, with the keys it verified.
	info, err := c.CreatePairingToken(ctx, "garage", 2, 90*time.Minute+time.Millisecond)
	if err != nil {
		t.Fatalf("CreatePairingToken: %v", err)
	}
	if info.Secret == "" || info.MaxUses != 2 || info.State != apiclient.TokenActive ||
		info.ExpiresAt.Sub(info.CreatedAt) != 90*time.Minute+time.Second {
		t.Fatalf("token %+v", info)
	}
	if _, err := c.NewPairingToken(ctx, info, make([]byte, 32), keys.SignPublic); !errors.Is(err, apiclient.ErrKeysChanged) {
		t.Errorf("NewPairingToken with foreign keys: %v", err)
	}
	tok, err := c.NewPairingToken(ctx, info, keys.BoxPublic[:], keys.SignPublic)
	if err != nil {
		t.Fatalf("NewPairingToken: %v", err)
	}

	// The device side: it knows only the string.
	parsed, err := apiclient.ParsePairingToken(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Relay != r.srv.URL || parsed.Name != "garage" || !bytes.Equal(parsed.BoxPublicKey, keys.BoxPublic[:]) {
		t.Errorf("parsed token %+v", parsed)
	}
	dc, err := apiclient.New(parsed.Relay, apiclient.WithHTTPClient(r.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	req, pub := newDeviceRequest(t, parsed, "warp2-AbCd", 2)
	res, err := dc.PairDevice(ctx, req)
	if err != nil {
		t.Fatalf("PairDevice: %v", err)
	}
	if res.DeviceID == "" || !bytes.Equal(res.RelayPublicKey, r.relayKey[:]) || res.RelayEndpoint != "relay.example:51820" ||
		res.MgmtAddr != wire.MgmtAddr(pub).String() || res.RelayMgmtAddr != wire.RelayMgmtAddr.String() || res.ControlPort != wire.ControlPort {
		t.Errorf("PairDevice = %+v", res)
	}
	_, err = dc.PairDevice(ctx, req)
	wantCode(t, "PairDevice again", err, "device_exists")
	req2, _ := newDeviceRequest(t, parsed, "warp2-Two", 1)
	if _, err := dc.PairDevice(ctx, req2); err != nil {
		t.Fatalf("PairDevice, second use: %v", err)
	}
	req3, _ := newDeviceRequest(t, parsed, "warp2-Three", 1)
	_, err = dc.PairDevice(ctx, req3)
	wantCode(t, "PairDevice, third use of two", err, "token_used_up")
	if e, ok := errors.AsType[*apiclient.Error](err); !ok || e.Status != http.StatusGone {
		t.Errorf("used-up token: %#v", err)
	}
	if _, err := dc.PairDevice(ctx, &apiclient.PairRequest{UID: "x"}); err == nil {
		t.Error("PairDevice without a secret was sent")
	}

	// A device logged in as the user.
	req3.Secret = "ignored"
	if _, err := c.AddDevice(ctx, req3); err != nil {
		t.Fatalf("AddDevice: %v", err)
	}

	// Tokens: the used-up one, a revoked one.
	rev, err := c.CreatePairingToken(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rev.MaxUses != 1 || rev.ExpiresAt.Sub(rev.CreatedAt) != 24*time.Hour {
		t.Errorf("defaults: %+v", rev)
	}
	if err := c.RevokePairingToken(ctx, rev.ID); err != nil {
		t.Fatalf("RevokePairingToken: %v", err)
	}
	wantCode(t, "RevokePairingToken unknown", c.RevokePairingToken(ctx, "pt_x/y"), "not_found")
	list, err := c.PairingTokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("PairingTokens = %+v, %v", list, err)
	}
	states := map[string]string{}
	for _, p := range list {
		states[p.ID] = p.State
		if p.Secret != "" {
			t.Errorf("listed token with its secret")
		}
	}
	if states[info.ID] != apiclient.TokenUsedUp || states[rev.ID] != apiclient.TokenRevoked || list[0].RevokedAt == nil {
		t.Errorf("states %v", states)
	}

	// Devices.
	devs, err := c.Devices(ctx)
	if err != nil || len(devs) != 3 {
		t.Fatalf("Devices = %+v, %v", devs, err)
	}
	d, err := c.Device(ctx, res.DeviceID)
	if err != nil {
		t.Fatalf("Device: %v", err)
	}
	if d.UID != "warp2-AbCd" || !bytes.Equal(d.PublicKey, pub[:]) || d.Role != apiclient.RoleOwner || d.SlotsTotal != 2 ||
		d.Online || !d.LastSeenAt.IsZero() || d.Firmware != "sim 1.0" {
		t.Errorf("Device = %+v", d)
	}
	if name, err := keys.OpenSealed(d.SealedName); err != nil || string(name) != "Garage" {
		t.Errorf("sealed name: %q, %v", name, err)
	}
	_, err = c.Device(ctx, "dev_nothere")
	wantCode(t, "Device unknown", err, "not_found")

	// A tunnel: the hello, an echo, the slot busy, the errors.
	ws, hello, err := c.DialTunnel(ctx, res.DeviceID, -1)
	if err != nil {
		t.Fatalf("DialTunnel: %v", err)
	}
	defer ws.CloseNow()
	if hello.Slot != 0 || !bytes.Equal(hello.DevicePublicKey, pub[:]) {
		t.Errorf("hello %+v", hello)
	}
	msg := bytes.Repeat([]byte{4, 0, 0, 0}, 8)
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !bytes.Equal(b, msg) {
		t.Fatalf("echo: %v", err)
	}
	slots, err := c.DeviceSlots(ctx, res.DeviceID)
	if err != nil || len(slots) != 2 || !slots[0].Busy || slots[1].Busy {
		t.Fatalf("DeviceSlots = %+v, %v", slots, err)
	}
	if plain, err := keys.OpenSealed(slots[1].Sealed); err != nil || len(plain) != 64 ||
		!bytes.Equal(slots[1].BrowserPublicKey, req.Slots[1].BrowserPublicKey) {
		t.Errorf("slot 1 does not open: %v", err)
	}
	// A client with its own http.Client (and its 60-second timeout, which
	// must bound the dial only) in another session of the same user.
	own, err := apiclient.New(r.srv.URL, apiclient.WithInsecureTLS(), apiclient.WithSessionToken(c.SessionToken()))
	if err != nil {
		t.Fatal(err)
	}
	wsOwn, helloOwn, err := own.DialTunnel(ctx, res.DeviceID, 1)
	if err != nil || helloOwn.Slot != 1 {
		t.Fatalf("DialTunnel with the default http.Client: %+v, %v", helloOwn, err)
	}
	if err := wsOwn.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if _, b, err := wsOwn.Read(ctx); err != nil || !bytes.Equal(b, msg) {
		t.Fatalf("echo on the default http.Client: %v", err)
	}
	defer wsOwn.CloseNow()

	// Slot 0 by index again: the same user's newer session takes it over
	// and the older one is closed with 4001 "replaced".
	ws0, hello0, err := c.DialTunnel(ctx, res.DeviceID, 0)
	if err != nil || hello0.Slot != 0 {
		t.Fatalf("DialTunnel slot 0 again: %+v, %v", hello0, err)
	}
	defer ws0.CloseNow()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != 4001 {
		t.Errorf("the replaced session: %v, want close 4001", err)
	}
	_, _, err = c.DialTunnel(ctx, res.DeviceID, -1)
	wantCode(t, "DialTunnel all busy", err, "all_slots_busy")
	r.tunnels.setOffline(res.DeviceID, true)
	_, _, err = c.DialTunnel(ctx, res.DeviceID, -1)
	wantCode(t, "DialTunnel offline", err, "device_offline")
	_, _, err = c.DialTunnel(ctx, "dev_nothere", -1)
	wantCode(t, "DialTunnel unknown", err, "not_found")
	if _, _, err := c.DialTunnel(ctx, res.DeviceID, 254); err == nil {
		t.Error("DialTunnel with slot 254 was sent")
	}
	anon, err := apiclient.New(r.srv.URL, apiclient.WithHTTPClient(r.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = anon.DialTunnel(ctx, res.DeviceID, -1)
	wantCode(t, "DialTunnel without a session", err, "unauthorized")

	// Removing the device.
	if err := c.DeleteDevice(ctx, res.DeviceID); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	_, err = c.Device(ctx, res.DeviceID)
	wantCode(t, "Device after DeleteDevice", err, "not_found")
	wantCode(t, "DeleteDevice again", c.DeleteDevice(ctx, res.DeviceID), "not_found")
}
