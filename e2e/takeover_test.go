package e2e

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

// TestSlotTakeover opens a session on a key slot and then another of the
// same user on the same slot, as a client that lost its connection
// without noticing does: the newer session gets the slot and works, the
// older WebSocket is closed with api.StatusReplaced ("replaced"), so that
// its client stops redialling. Without a slot index a client never takes
// a slot over.
func TestSlotTakeover(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{quiet: true})
	u := newUser(t, r, "takeover-"+rand8(t)+"@example.test")
	uid := "warp2-" + rand8(t)
	marker := randomMarker()
	d := pairDevice(t, r, u.pairingToken(t, "takeover"), uid, markedUI(uid, marker))
	info := d.Info()
	(&runner{d: d}).run(t)
	u.waitOnline(t, info.DeviceID, 20*time.Second)

	old, hello, err := u.c.DialTunnel(t.Context(), info.DeviceID, 1)
	must(t, "DialTunnel", err)
	defer old.CloseNow()
	if hello.Slot != 1 {
		t.Fatalf("slot %d, want 1", hello.Slot)
	}

	k := u.openSlot(t, info.DeviceID, 1)
	url := "wss" + strings.TrimPrefix(r.srv.URL(), "https") + "/api/v1/devices/" + info.DeviceID + "/tunnel?slot=1"
	tun := u.dialSession(t, url, r.httpClient(), info.PublicKey, k)
	b, err := get(t.Context(), tun, "/marker", 20*time.Second)
	if err != nil || !bytes.Contains(b, []byte(marker)) {
		t.Fatalf("the session that took the slot over: %v", err)
	}
	_, _, err = old.Read(t.Context())
	if ce, ok := errors.AsType[websocket.CloseError](err); !ok || ce.Code != api.StatusReplaced || ce.Reason != "replaced" {
		t.Fatalf("the replaced session ended with %v, want close %d replaced", err, api.StatusReplaced)
	}

	// Any free slot: never the one in use.
	others := make([]*websocket.Conn, 0, 3)
	for range 3 {
		ws, h, err := u.c.DialTunnel(t.Context(), info.DeviceID, -1)
		must(t, "DialTunnel any", err)
		others = append(others, ws)
		if h.Slot == 1 {
			t.Fatal("a session without a slot index took slot 1 over")
		}
	}
	_, _, err = u.c.DialTunnel(t.Context(), info.DeviceID, -1)
	if apiclient.ErrorCode(err) != "all_slots_busy" {
		t.Fatalf("a fifth session: %v, want all_slots_busy", err)
	}
	for _, ws := range others {
		ws.CloseNow()
	}
	if _, err := get(t.Context(), tun, "/marker", 20*time.Second); err != nil {
		t.Fatalf("the session after the others ended: %v", err)
	}
}
