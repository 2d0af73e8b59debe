package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/tunnel"
)

// The tests in this file run real wireguard-go on both ends: a device on a
// loopback UDP socket, and browsers over WebSockets to an httptest server
// whose handler calls Accept. The test plays the management side and calls
// SetDeviceEndpoint with the device's UDP address.

// wantHello is what the device's web UI answers slot i's browser.
func wantHello(d *testDevice, slot int) string {
	return fmt.Sprintf("hello from %s to %s:", d.id, slotTunnelAddr(slot))
}

func checkGet(t *testing.T, b *testBrowser, d *testDevice, slot int) {
	t.Helper()
	body, err := b.get(t.Context(), "/")
	if err != nil {
		t.Fatalf("GET through the relay (slot %d): %v", slot, err)
	}
	if !strings.HasPrefix(body, wantHello(d, slot)) {
		t.Fatalf("GET through the relay (slot %d) = %q, want %q...", slot, body, wantHello(d, slot))
	}
}

// TestHTTPThroughRelay: a browser fetches the device's page through the
// relay; closing the browser ends Accept with nil and cleans the tables.
func TestHTTPThroughRelay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	d := newTestDevice(t, h, "dev-http", 1)
	h.srv.SetDeviceEndpoint(d.id, d.addr)
	b := newTestBrowser(t, h, d, 0, browserOptions{})

	checkGet(t, b, d, 0)

	st := h.srv.Stats()
	if st.Sessions != 1 || st.Online != 1 || st.ToDevice.Packets == 0 || st.ToBrowser.Packets == 0 {
		t.Errorf("stats = %+v", st)
	}
	if len(h.mgmt.from(d.addr)) != 0 {
		t.Errorf("session traffic reached the management side")
	}
	if len(h.srv.IndicesForTest(d.id)) == 0 {
		t.Error("no receiver index learned")
	}

	b.close()
	if err := waitEnded(t, b.ended); err != nil {
		t.Errorf("Accept after the browser closed = %v, want nil", err)
	}
	if st := h.srv.Stats(); st.Sessions != 0 || st.Devices != 1 {
		t.Errorf("after close: stats = %+v, want no session, the device still online", st)
	}
	if idx := h.srv.IndicesForTest(d.id); len(idx) != 0 {
		t.Errorf("after close: indices %x left", idx)
	}
}

// TestDeviceInitiatedHandshake: with the browser's session up but silent,
// the device sends first; its handshake initiation reaches the right
// session by mac1 (slot 1 of two), not the management side.
func TestDeviceInitiatedHandshake(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	d := newTestDevice(t, h, "dev-init", 2)
	h.srv.SetDeviceEndpoint(d.id, d.addr)
	other := newTestBrowser(t, h, d, 0, browserOptions{})
	b := newTestBrowser(t, h, d, 1, browserOptions{})
	eventually(t, "both sessions", func() bool { return h.srv.Stats().Sessions == 2 })

	// The browser serves HTTP on its tunnel address; the device fetches.
	ln, err := b.tnet.ListenTCPAddrPort(netip.AddrPortFrom(slotTunnelAddr(1), 8080))
	if err != nil {
		t.Fatal(err)
	}
	go servePage(ln, "served by the browser")
	t.Cleanup(func() { ln.Close() })
	if st := h.srv.Stats(); st.ToDevice.Packets != 0 {
		t.Fatalf("browser sent %d datagrams first", st.ToDevice.Packets)
	}

	dc := &httpClient{tnet: d.tnet}
	body, err := dc.get(t.Context(), netip.AddrPortFrom(slotTunnelAddr(1), 8080))
	if err != nil {
		t.Fatalf("device GET to the browser: %v", err)
	}
	if body != "served by the browser" {
		t.Errorf("device got %q", body)
	}
	if n := len(h.mgmt.from(d.addr)); n != 0 {
		t.Errorf("%d datagrams of the device went to the management side", n)
	}
	if st := h.sessionStats(t, d.id, 0); st.ToBrowser.Packets != 0 {
		t.Errorf("slot 0 got %d datagrams of slot 1's handshake", st.ToBrowser.Packets)
	}
	_ = other
}

// TestTwoSlots: two browsers (two key slots) of one device work at once,
// each answered on its own tunnel address.
func TestTwoSlots(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	d := newTestDevice(t, h, "dev-two", 2)
	h.srv.SetDeviceEndpoint(d.id, d.addr)
	browsers := []*testBrowser{
		newTestBrowser(t, h, d, 0, browserOptions{}),
		newTestBrowser(t, h, d, 1, browserOptions{}),
	}
	var wg sync.WaitGroup
	for slot, b := range browsers {
		for range 8 {
			wg.Go(func() {
				body, err := b.get(t.Context(), "/")
				if err != nil || !strings.HasPrefix(body, wantHello(d, slot)) {
					t.Errorf("slot %d: GET = %q, %v", slot, body, err)
				}
			})
		}
	}
	wg.Wait()
	for slot := range browsers {
		if st := h.sessionStats(t, d.id, slot); st.ToDevice.Packets == 0 || st.ToBrowser.Packets == 0 {
			t.Errorf("slot %d stats = %+v", slot, st)
		}
	}
}

// TestStalledBrowser: a browser that stops reading its WebSocket fills its
// own queue (tail drops, counted) while another session of the same device
// keeps working; when it reads again, it works again.
func TestStalledBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{queue: 16, sndbuf: 16 << 10})
	d := newTestDevice(t, h, "dev-stall", 2)
	h.srv.SetDeviceEndpoint(d.id, d.addr)
	fast := newTestBrowser(t, h, d, 0, browserOptions{})
	slow := newTestBrowser(t, h, d, 1, browserOptions{rcvbuf: 4 << 10})
	checkGet(t, fast, d, 0)
	checkGet(t, slow, d, 1)

	// The device floods the stalled browser with UDP inside the tunnel
	// until the relay's queue for it overflows.
	slow.bind.stall()
	flood, err := d.tnet.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(slotTunnelAddr(1), 9))
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	payload := make([]byte, 1200)
	ctx, stopFlood := context.WithCancel(t.Context())
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for ctx.Err() == nil {
			_, _ = flood.Write(payload)
		}
	}()
	defer func() { stopFlood(); <-flooding }()
	eventually(t, "queue drops on the stalled session", func() bool {
		return h.sessionStats(t, d.id, 1).Drops[relay.DropQueueFull] > 0
	})

	// While the stalled session's queue is full and its writer blocked,
	// the other session works.
	start := time.Now()
	for range 5 {
		checkGet(t, fast, d, 0)
	}
	t.Logf("5 GETs on the other session while one is stalled: %v", time.Since(start))
	if drops := h.sessionStats(t, d.id, 0).Drops[relay.DropQueueFull]; drops != 0 {
		t.Errorf("the other session dropped %d datagrams", drops)
	}
	stopFlood()
	<-flooding

	slow.bind.unstall()
	// TCP inside the stalled tunnel lost many segments and backed off its
	// retransmission timer, so the first request after the stall may time
	// out on a loaded machine: retry, bounded, until one succeeds.
	for deadline := time.Now().Add(60 * time.Second); ; {
		body, err := slow.get(t.Context(), "/")
		if err == nil && strings.HasPrefix(body, wantHello(d, 1)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET on the session that was stalled: %q, %v", body, err)
		}
	}
	st := h.srv.Stats()
	if st.Drops[relay.DropQueueFull] == 0 {
		t.Errorf("global stats = %+v, want queue_full drops", st)
	}
	t.Logf("stalled session: %+v", h.sessionStats(t, d.id, 1))
}

// TestTunnelClient: the project's own client end (pkg/tunnel) reaches the
// device through the relay, and carries on over a new WebSocket and a new
// session when the relay ends the first one.
func TestTunnelClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	d := newTestDevice(t, h, "dev-tunnel", 1)
	h.srv.SetDeviceEndpoint(d.id, d.addr)
	ended := h.register(d.session(0))
	tun, err := tunnel.Dial(t.Context(), tunnel.Config{
		URL:           h.url(d.id, 0),
		PrivateKey:    d.slots[0].priv,
		PeerPublicKey: d.keys.pub,
		PresharedKey:  d.slots[0].psk,
		LocalAddrs:    []netip.Addr{slotTunnelAddr(0)},
		PeerAddrs:     []netip.Prefix{netip.PrefixFrom(deviceTunnelAddr, 32)},
		Logger:        testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	get := func() {
		t.Helper()
		resp, err := tun.HTTPClient().Get("http://" + deviceTunnelAddr.String() + "/")
		if err != nil {
			t.Fatalf("GET through pkg/tunnel: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(body), wantHello(d, 0)) {
			t.Fatalf("GET through pkg/tunnel = %q", body)
		}
	}
	get()

	h.cancel(d.id, 0) // the relay ends the session; the client redials
	if err := waitEnded(t, ended); !errors.Is(err, context.Canceled) {
		t.Errorf("Accept = %v, want context.Canceled", err)
	}
	eventually(t, "the client's new session", func() bool { return h.hasSession(d.id, 0) })
	get()

	tun.Close()
	if err := waitEnded(t, ended); err != nil {
		t.Errorf("Accept after the client closed = %v, want nil", err)
	}
}
