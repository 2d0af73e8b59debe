package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/coder/websocket"
)

// TestRunServesUI is the smoke test: the device runs, and a browser
// wireguard-go of a key slot reaches its web UI through the tunnel, over
// IPv4 and IPv6. The "relay" is the browser's own UDP address, as if the
// relay forwarded verbatim; the browser initiates, as through a relay.
func TestRunServesUI(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "127.0.0.1:9")
	// Slot 0's browser stands where the relay would: the device's relay
	// endpoint is the browser's UDP address, so every datagram of the
	// device (for any peer) goes there, as it would go to the relay.
	b0 := newWGPeer(t, "browser", k.browsers[0], slotAddrs(0), 0,
		"public_key="+st.Private.Public().Hex()+"\npreshared_key="+k.psks[0].Hex()+
			"\nallowed_ip="+wire.DeviceSessionAddr4.String()+"/32\nallowed_ip="+wire.DeviceSessionAddr6.String()+"/128\n")
	st.Relay.Endpoint = localEndpoint(b0.port).String()
	ui := wallbox.New(wallbox.Config{UID: st.UID})
	d, _ := startDevice(t, st, ui, nil)
	if err := b0.dev.IpcSet("public_key=" + st.Private.Public().Hex() + "\nendpoint=" + localEndpoint(d.ListenPort()).String() + "\n"); err != nil {
		t.Fatal(err)
	}
	// Slot 3 (the other user's) from elsewhere: the device answers where
	// the handshake came from.
	b3 := newBrowser(t, st, k, 3, d.ListenPort())

	for slot, b := range map[int]*wgPeer{0: b0, 3: b3} {
		for _, base := range []string{
			"http://" + netip.AddrPortFrom(wire.DeviceSessionAddr4, wire.DeviceUIPort).String(),
			"http://" + netip.AddrPortFrom(wire.DeviceSessionAddr6, wire.DeviceUIPort).String(),
		} {
			page := b.get(t, base+"/")
			if !strings.Contains(page, "Wallbox <span id=\"uid\">warp2-Test</span>") {
				t.Fatalf("slot %d, %s: not the status page:\n%s", slot, base, page)
			}
			if js := b.get(t, base+"/api/status"); !strings.Contains(js, `"uid":"warp2-Test"`) {
				t.Fatalf("slot %d: /api/status: %s", slot, js)
			}
		}
	}
}

// TestUIRefusesRelay: the relay's management peer may send packets to the
// device's session addresses (WireGuard checks only its source address),
// but the UI does not serve it: the relay must see nothing in the clear.
func TestUIRefusesRelay(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "127.0.0.1:9")
	// The relay learns the device's endpoint from its handshake (the
	// device's keepalive starts one), as the real one does.
	relay := newWGPeer(t, "relay", k.relay, []netip.Addr{wire.RelayMgmtAddr}, 0,
		"public_key="+st.Private.Public().Hex()+
			"\nallowed_ip="+st.Relay.MgmtAddr.String()+"/128\nallowed_ip="+wire.DeviceSessionAddr6.String()+"/128\n")
	st.Relay.Endpoint = localEndpoint(relay.port).String()
	startDevice(t, st, wallbox.New(wallbox.Config{UID: st.UID}), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	c, err := relay.net.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(wire.DeviceSessionAddr6, wire.DeviceUIPort))
	if err != nil {
		// Refused outright is fine too.
		return
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if ne, ok := errors.AsType[net.Error](err); n > 0 || err == nil || ok && ne.Timeout() {
		t.Fatalf("the relay read %q (%v) from the device's UI; want the connection closed", buf[:n], err)
	}
}

// TestRunAgain: Run returns when its context ends, refuses a second
// concurrent Run, and runs again afterwards (a device "reboot").
func TestRunAgain(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "127.0.0.1:9")
	dir := t.TempDir()
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{DataDir: dir, UI: wallbox.New(wallbox.Config{UID: st.UID}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		waitFor(t, 10*time.Second, "the device to come up", func() bool { return d.ListenPort() != 0 })
		if err := d.Run(ctx); !errors.Is(err, ErrRunning) {
			t.Fatalf("round %d: second Run: %v", round, err)
		}
		b := newBrowser(t, st, k, 1, d.ListenPort())
		b.get(t, "http://10.77.0.1/api/status")
		b.dev.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Run: %v", round, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: Run did not return", round)
		}
		if d.ListenPort() != 0 {
			t.Fatalf("round %d: still a listen port after Run", round)
		}
	}
}

// TestRunLeavesNoGoroutines runs a device with a session and a live
// WebSocket, stops it, and checks that nothing of it, of wireguard-go or of
// the netstack keeps running. Not parallel, so that no other test's
// goroutines are about.
func TestRunLeavesNoGoroutines(t *testing.T) {
	pkgs := []string{"blindrelay/pkg/device.", "wireguard/device.", "gvisor.dev/", "coder/websocket", "net/http.(*conn).serve"}
	if g := goroutinesWith(pkgs...); len(g) > 0 {
		t.Skipf("goroutines of another test still running:\n%s", strings.Join(g, "\n\n"))
	}
	st, k := newTestState(t, "127.0.0.1:9")
	dir := t.TempDir()
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{DataDir: dir, UI: wallbox.New(wallbox.Config{UID: st.UID}), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.SetControlTimingForTest(50*time.Millisecond, 200*time.Millisecond, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, 10*time.Second, "the device to come up", func() bool { return d.ListenPort() != 0 })
	b := newBrowser(t, st, k, 0, d.ListenPort())
	b.get(t, "http://10.77.0.1/")
	// A WebSocket left open: Run must end its handler.
	ws := openWS(t, b)
	defer ws.CloseNow()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	b.dev.Close()
	ws.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := goroutinesWith(pkgs...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Run:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openWS opens the wallbox's /ws through b's tunnel and reads one push.
func openWS(t *testing.T, b *wgPeer) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://10.77.0.1/ws", &websocket.DialOptions{HTTPClient: b.httpClient()})
	if err != nil {
		t.Fatalf("websocket through the tunnel: %v", err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || !strings.Contains(string(msg), `"uid"`) {
		t.Fatalf("websocket push: %q %v", msg, err)
	}
	return ws
}
