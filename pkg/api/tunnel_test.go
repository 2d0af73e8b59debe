package api

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// waitReleased waits until the leases of the device's slot indexes are
// freed.
func (e *env) waitReleased(t *testing.T, device string, indexes ...int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	var got []int
	for len(got) < len(indexes) {
		select {
		case id := <-e.tunnels.released:
			if id.device != device {
				t.Fatalf("lease of %v freed, want one of device %s", id, device)
			}
			got = append(got, id.index)
		case <-timeout:
			t.Fatalf("leases freed: %v, want %v", got, indexes)
		}
	}
	slices.Sort(got)
	slices.Sort(indexes)
	if !slices.Equal(got, indexes) {
		t.Fatalf("leases freed: %v, want %v", got, indexes)
	}
}

// nextSession returns the session the fake bridge was handed last.
func (e *env) nextSession(t *testing.T) TunnelSession {
	t.Helper()
	select {
	case s := <-e.tunnels.started:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no session reached the bridge")
		return TunnelSession{}
	}
}

func TestTunnel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	bob := e.newUser(t, "bob@example.org")
	d, id := e.pairNew(t, alice, "warp2-AbCd")
	var me userJSON
	e.do("GET", "/api/v1/me", nil, bearer(alice.token)).want(t, 200).decode(t, &me)

	// Refusals before the upgrade.
	_, resp, err := e.dialTunnel(t, "", id, "", nil)
	wantTunnelError(t, resp, err, 401, "unauthorized")
	for _, token := range []string{alice.token, ""} {
		_, resp, err = e.dialTunnel(t, token, id, "", http.Header{"Origin": {"https://evil.example"}})
		wantTunnelError(t, resp, err, 403, "forbidden_origin")
	}
	e.do("GET", "/api/v1/devices/"+id+"/tunnel", nil, bearer(alice.token)).wantError(t, 400, account.CodeInvalidInput)
	_, resp, err = websocket.Dial(t.Context(), e.baseURL+"/api/v1/devices/"+id+"/tunnel", &websocket.DialOptions{
		HTTPClient: e.srv.Client(), HTTPHeader: http.Header{"Authorization": {"Bearer " + alice.token}},
	})
	wantTunnelError(t, resp, err, 400, "invalid_input") // no subprotocol offered
	for _, q := range []string{"?slot=abc", "?slot=254", "?slot=-2", "?slot=1&slot=2"} {
		_, resp, err = e.dialTunnel(t, alice.token, id, q, nil)
		wantTunnelError(t, resp, err, 400, "invalid_input")
	}
	_, resp, err = e.dialTunnel(t, alice.token, id, "?slot=200", nil) // not one of alice's slots
	wantTunnelError(t, resp, err, 404, "not_found")
	e.tunnels.setOffline(id, true)
	_, resp, err = e.dialTunnel(t, alice.token, id, "", nil)
	wantTunnelError(t, resp, err, 503, "device_offline")
	e.tunnels.setOffline(id, false)

	// A session: the hello first, then datagrams.
	ws0, hello := e.openTunnel(t, alice.token, id, "")
	if hello != (tunnelHello{Slot: 0, DevicePublicKey: d.key.Public()}) {
		t.Errorf("hello %+v", hello)
	}
	want := TunnelSession{DeviceID: id, DeviceKey: d.key.Public(), SlotKey: d.slots[0].browser.Public(), UserID: me.ID, Slot: 0}
	if diff := cmp.Diff(want, e.nextSession(t)); diff != "" {
		t.Errorf("session (-want +got):\n%s", diff)
	}
	datagram := bytes.Repeat([]byte{4, 0, 0, 0}, 8)
	if err := ws0.Write(t.Context(), websocket.MessageBinary, datagram); err != nil {
		t.Fatal(err)
	}
	if typ, b, err := ws0.Read(t.Context()); err != nil || typ != websocket.MessageBinary || !bytes.Equal(b, datagram) {
		t.Fatalf("echo: %v %v %x", typ, err, b)
	}

	// The slot shows as busy.
	var slots []slotJSON
	e.do("GET", "/api/v1/devices/"+id+"/slots", nil, bearer(alice.token)).want(t, 200).decode(t, &slots)
	if !slots[0].Busy || slots[1].Busy {
		t.Errorf("slots %+v", slots)
	}

	// Lease the other three (one as a browser would: the cookie and its
	// own Origin), then there is none left.
	_, h1 := e.openTunnel(t, alice.token, id, "")
	ws2, resp, err := e.dialTunnel(t, "", id, "?slot=-1", http.Header{
		"Origin": {e.baseURL}, "Cookie": {sessionCookie + "=" + alice.token},
	})
	if err != nil {
		t.Fatalf("browser-style dial: %v (%s)", err, respError(resp))
	}
	t.Cleanup(func() { ws2.CloseNow() })
	_, h3 := e.openTunnel(t, alice.token, id, "?slot=3")
	if h1.Slot != 1 || h3.Slot != 3 {
		t.Errorf("slots leased: %d and %d, want 1 and 3", h1.Slot, h3.Slot)
	}
	_, resp, err = e.dialTunnel(t, alice.token, id, "", nil)
	wantTunnelError(t, resp, err, 409, "all_slots_busy")
	// (Asking for slot 0 by index now would take it over from ws0:
	// TestTunnelTakeover.)
	var dj deviceJSON
	e.do("GET", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, 200).decode(t, &dj)
	if dj.SlotsBusy != 4 || dj.SlotsTotal != 4 {
		t.Errorf("device %+v", dj)
	}

	// Closing a session frees its slot for the next one.
	if err := ws0.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	e.waitReleased(t, id, 0)
	_, again := e.openTunnel(t, alice.token, id, "?slot=0")
	if again.Slot != 0 {
		t.Errorf("slot %d, want 0", again.Slot)
	}

	// Another user gets nothing: not even whether the device exists.
	_, resp, err = e.dialTunnel(t, bob.token, id, "", nil)
	wantTunnelError(t, resp, err, 404, "not_found")

	// A shared user without key slots has none to lease.
	var bobMe userJSON
	e.do("GET", "/api/v1/me", nil, bearer(bob.token)).want(t, 200).decode(t, &bobMe)
	if err := e.store.ShareDevice(t.Context(), id, keystore.DeviceUser{UserID: bobMe.ID, Role: keystore.RoleUser, CreatedAt: e.clock.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	_, resp, err = e.dialTunnel(t, bob.token, id, "", nil)
	wantTunnelError(t, resp, err, 409, "all_slots_busy")

	// Removing the device ends every session on it.
	for range 4 {
		e.nextSession(t)
	}
	e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, http.StatusNoContent)
	e.waitReleased(t, id, 0, 1, 2, 3)
}

// TestTunnelUnshareEndsSessions checks that a shared user who leaves a
// device loses their sessions, and the owner keeps theirs.
func TestTunnelUnshareEndsSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	bob := e.newUser(t, "bob@example.org")
	_, id := e.pairNew(t, alice, "warp2-AbCd")
	var bobMe userJSON
	e.do("GET", "/api/v1/me", nil, bearer(bob.token)).want(t, 200).decode(t, &bobMe)
	bobDev := newTestDevice(t, "unused", bob, 1)
	slot := keystore.KeySlot{Index: 9, BrowserPublicKey: bobDev.slots[0].browser.Public(), Sealed: bobDev.req.Slots[0].Sealed}
	du := keystore.DeviceUser{UserID: bobMe.ID, Role: keystore.RoleUser, CreatedAt: e.clock.Now()}
	if err := e.store.ShareDevice(t.Context(), id, du, []keystore.KeySlot{slot}); err != nil {
		t.Fatal(err)
	}
	aliceWS, _ := e.openTunnel(t, alice.token, id, "")
	_, h := e.openTunnel(t, bob.token, id, "")
	if h.Slot != 9 {
		t.Fatalf("bob's slot %d, want 9", h.Slot)
	}
	e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(bob.token)).want(t, http.StatusNoContent)
	e.waitReleased(t, id, 9)
	datagram := bytes.Repeat([]byte{4, 0, 0, 0}, 8)
	if err := aliceWS.Write(t.Context(), websocket.MessageBinary, datagram); err != nil {
		t.Fatal(err)
	}
	if _, b, err := aliceWS.Read(t.Context()); err != nil || !bytes.Equal(b, datagram) {
		t.Fatalf("alice's session after bob left: %v", err)
	}
}

// TestTunnelWithoutBridge checks the answer of a relay with no UDP side.
func TestTunnelWithoutBridge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noTunnels: true})
	alice := e.newUser(t, "alice@example.org")
	_, id := e.pairNew(t, alice, "warp2-AbCd")
	_, resp, err := e.dialTunnel(t, alice.token, id, "", nil)
	wantTunnelError(t, resp, err, 503, "device_offline")
}
