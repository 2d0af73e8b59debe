package relay_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// TestAcceptEnds checks every way a session ends: what Accept returns, what
// the browser is told, and that the relay's tables are clean afterwards.
func TestAcceptEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		idle       time.Duration
		end        func(t *testing.T, h *harness, b *rawBrowser, sess relay.Session)
		wantErr    error  // nil: Accept returns nil
		wantAnyErr bool   // Accept returns some other error
		wantStatus int    // close status the browser sees (-1 none, 0 not checked)
		wantReason string // close reason the browser sees
	}{
		{
			name: "browser closes",
			end: func(t *testing.T, _ *harness, b *rawBrowser, _ relay.Session) {
				b.ws.Close(websocket.StatusNormalClosure, "bye")
			},
		},
		{
			name: "browser goes away",
			end: func(t *testing.T, _ *harness, b *rawBrowser, _ relay.Session) {
				b.ws.Close(websocket.StatusGoingAway, "")
			},
		},
		{
			name:       "browser's connection breaks",
			end:        func(t *testing.T, _ *harness, b *rawBrowser, _ relay.Session) { b.ws.CloseNow() },
			wantAnyErr: true,
		},
		{
			name: "context cancelled",
			end: func(t *testing.T, h *harness, _ *rawBrowser, sess relay.Session) {
				h.cancel(sess.DeviceID, sess.Slot)
			},
			wantErr:    context.Canceled,
			wantStatus: -1,
		},
		{
			name:       "idle",
			idle:       200 * time.Millisecond,
			end:        func(*testing.T, *harness, *rawBrowser, relay.Session) {},
			wantErr:    relay.ErrIdleTimeout,
			wantStatus: int(websocket.StatusNormalClosure),
			wantReason: "idle timeout",
		},
		{
			name: "replaced",
			end: func(t *testing.T, h *harness, _ *rawBrowser, sess relay.Session) {
				newRawBrowser(t, h, sess) // same slot, a new WebSocket
			},
			wantErr:    relay.ErrReplaced,
			wantStatus: -1,
		},
		{
			name: "message too big",
			end: func(t *testing.T, _ *harness, b *rawBrowser, _ relay.Session) {
				_ = b.ws.Write(t.Context(), websocket.MessageBinary, make([]byte, 70000))
			},
			wantAnyErr: true,
			wantStatus: int(websocket.StatusMessageTooBig),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{idle: tt.idle})
			deviceKey := newSlotKeys(t).pub
			sess := relay.Session{DeviceID: "dev", DeviceKey: deviceKey, SlotKey: newSlotKeys(t).pub, Slot: 2}
			b := newRawBrowser(t, h, sess)
			b.send(t, websocket.MessageBinary, initiation(0x77, deviceKey)) // learns an index
			eventually(t, "index learned", func() bool { return len(h.srv.IndicesForTest("dev")) == 1 })

			tt.end(t, h, b, sess)
			err := waitEnded(t, b.ended)
			switch {
			case tt.wantAnyErr:
				if err == nil || errors.Is(err, relay.ErrIdleTimeout) || errors.Is(err, relay.ErrReplaced) {
					t.Errorf("Accept = %v, want a WebSocket error", err)
				}
			case !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil):
				t.Errorf("Accept = %v, want %v", err, tt.wantErr)
			}
			readErr := b.closed(t)
			if got := int(websocket.CloseStatus(readErr)); tt.wantStatus != 0 && got != tt.wantStatus {
				t.Errorf("browser saw %v, want close status %d", readErr, tt.wantStatus)
			}
			var ce websocket.CloseError
			if tt.wantReason != "" && (!errors.As(readErr, &ce) || ce.Reason != tt.wantReason) {
				t.Errorf("browser saw %v, want reason %q", readErr, tt.wantReason)
			}

			if tt.name == "replaced" {
				// The new session holds the slot; end it too.
				h.cancel(sess.DeviceID, sess.Slot)
				if err := waitEnded(t, b.ended); !errors.Is(err, context.Canceled) {
					t.Errorf("new session's Accept = %v", err)
				}
			}
			if st := h.srv.Stats(); st.Sessions != 0 || st.Devices != 0 {
				t.Errorf("after the end: stats = %+v, want empty tables", st)
			}
			if h.srv.DeviceKnownForTest("dev") || len(h.srv.IndicesForTest("dev")) != 0 {
				t.Error("after the end: device or indices left")
			}
		})
	}
}

// TestIdleOnlyWhenIdle: a session with traffic does not time out.
func TestIdleOnlyWhenIdle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{idle: 200 * time.Millisecond})
	dev := newUDPPeer(t)
	h.srv.SetDeviceEndpoint("dev", dev.addr())
	sess := relay.Session{DeviceID: "dev", DeviceKey: newSlotKeys(t).pub, SlotKey: newSlotKeys(t).pub}
	b := newRawBrowser(t, h, sess)
	for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); {
		b.send(t, websocket.MessageBinary, transport(1, 32))
		if dev.recv(waitFor) == nil {
			t.Fatal("device got nothing")
		}
		time.Sleep(40 * time.Millisecond) // pacing the traffic, not synchronising
	}
	select {
	case err := <-b.ended:
		t.Fatalf("busy session ended: %v", err)
	default:
	}
	if err := waitEnded(t, b.ended); !errors.Is(err, relay.ErrIdleTimeout) {
		t.Errorf("after the traffic stopped: Accept = %v, want ErrIdleTimeout", err)
	}
}

// TestAcceptRejectsBadSession: a Session without device or keys is refused.
func TestAcceptRejectsBadSession(t *testing.T) {
	t.Parallel()
	key := newSlotKeys(t).pub
	for name, sess := range map[string]relay.Session{
		"no device":     {DeviceKey: key, SlotKey: key},
		"no device key": {DeviceID: "d", SlotKey: key},
		"no slot key":   {DeviceID: "d", DeviceKey: key, SlotKey: wgkey.Public{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{})
			ended := h.register(sess)
			ws, err := h.dial(t.Context(), sess.DeviceID, sess.Slot, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			if _, _, err := ws.Read(t.Context()); websocket.CloseStatus(err) != websocket.StatusInternalError {
				t.Errorf("browser saw %v, want an internal error close", err)
			}
			if err := waitEnded(t, ended); err == nil {
				t.Error("Accept = nil, want an error")
			}
			if st := h.srv.Stats(); st.Devices != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// TestNew checks the config validation and Run's life cycle: it returns
// nil when ctx ends and leaves the socket usable, and runs only once.
func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := relay.New(relay.Config{}); err == nil {
		t.Error("New without a socket succeeded")
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if _, err := relay.New(relay.Config{Conn: udp, SessionQueue: -1}); err == nil {
		t.Error("New with a negative queue succeeded")
	}
	srv, err := relay.New(relay.Config{Conn: udp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	// Unclaimed datagrams with no MgmtHandler are counted.
	p := newUDPPeer(t)
	p.send(t, udp.LocalAddr().(*net.UDPAddr).AddrPort(), transport(1, 32))
	eventually(t, "no_mgmt drop", func() bool { return srv.Stats().Drops[relay.DropNoMgmt] == 1 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	if err := srv.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
	// The deadline Run used to stop is gone: the socket still reads.
	p.send(t, udp.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("x"))
	buf := make([]byte, 10)
	if _, _, err := udp.ReadFromUDPAddrPort(buf); err != nil {
		t.Errorf("socket after Run: %v", err)
	}
	// WriteTo sends through the socket.
	if err := srv.WriteTo([]byte("mgmt"), p.addr()); err != nil {
		t.Fatal(err)
	}
	if got := p.recv(waitFor); string(got) != "mgmt" {
		t.Errorf("WriteTo: peer got %q", got)
	}
	if len(relay.DropReasons()) != len(srv.Stats().Drops) {
		t.Errorf("Stats().Drops has %d reasons, DropReasons %d", len(srv.Stats().Drops), len(relay.DropReasons()))
	}
}

// TestNoGoroutineLeak runs sessions with real WireGuard on both ends, tears
// everything down and checks that no goroutine of the relay, the WebSocket
// library or wireguard-go is left. It is not parallel, so no other test's
// goroutines are around.
func TestNoGoroutineLeak(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		d := newTestDevice(t, h, "dev-leak", 2)
		h.srv.SetDeviceEndpoint(d.id, d.addr)
		for slot := range 2 {
			b := newTestBrowser(t, h, d, slot, browserOptions{})
			checkGet(t, b, d, slot)
		}
	})
	deadline := time.Now().Add(waitFor)
	for {
		leaked := goroutinesWith("blindrelay/pkg/relay.", "coder/websocket.", "wireguard/device.")
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutinesWith returns the stacks of goroutines, other than this test's,
// with a frame from one of the packages.
func goroutinesWith(pkgs ...string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "TestNoGoroutineLeak") || strings.Contains(g, "testing.(*T).Parallel") {
			continue
		}
		for _, p := range pkgs {
			if strings.Contains(g, p) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestStalledSessionEnds: a session whose browser stopped reading, with its
// writer blocked on the WebSocket, still ends promptly when its context
// does.
func TestStalledSessionEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{queue: 8, sndbuf: 8 << 10})
	dev := newUDPPeer(t)
	h.srv.SetDeviceEndpoint("dev", dev.addr())
	deviceKey := newSlotKeys(t).pub
	sess := relay.Session{DeviceID: "dev", DeviceKey: deviceKey, SlotKey: newSlotKeys(t).pub}
	ended := h.register(sess)
	ws, err := h.dial(t.Context(), "dev", 0, 4<<10) // and never read
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(t.Context(), websocket.MessageBinary, initiation(7, deviceKey)); err != nil {
		t.Fatal(err)
	}
	if dev.recv(waitFor) == nil {
		t.Fatal("device got no initiation")
	}
	m := transport(7, 1400)
	for h.sessionStats(t, "dev", 0).Drops[relay.DropQueueFull] < 200 {
		for range 64 {
			dev.send(t, h.addr(), m)
		}
	}
	start := time.Now()
	h.cancel("dev", 0)
	if err := waitEnded(t, ended); !errors.Is(err, context.Canceled) {
		t.Errorf("Accept = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stalled session took %v to end", d)
	}
	if st := h.srv.Stats(); st.Sessions != 0 {
		t.Errorf("stats = %+v, want no session", st)
	}
}

// TestRunAddresses: on a dual-stack socket, Run reports IPv4 sources as
// IPv4 (not IPv4-mapped IPv6) and IPv6 sources as they are, and every
// datagram of a burst arrives intact and in order (the read loop takes
// several per system call).
func TestRunAddresses(t *testing.T) {
	t.Parallel()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skipf("no dual-stack UDP: %v", err)
	}
	defer udp.Close()
	mgmt := &recordingMgmt{}
	srv, err := relay.New(relay.Config{Conn: udp, Mgmt: mgmt, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	port := uint16(udp.LocalAddr().(*net.UDPAddr).Port)

	v4 := newUDPPeer(t)
	v6c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	v6 := &udpPeer{c: v6c}
	defer v6c.Close()
	for _, p := range []struct {
		peer *udpPeer
		to   netip.Addr
	}{{v4, netip.MustParseAddr("127.0.0.1")}, {v6, netip.IPv6Loopback()}} {
		var sent [][]byte
		for i := range 40 {
			m := transport(uint32(i), 32+i*37)
			sent = append(sent, m)
			p.peer.send(t, netip.AddrPortFrom(p.to, port), m)
		}
		eventually(t, "all datagrams from "+p.peer.addr().String(), func() bool {
			return len(mgmt.from(p.peer.addr())) == len(sent)
		})
		for i, got := range mgmt.from(p.peer.addr()) {
			if !bytes.Equal(got, sent[i]) {
				t.Fatalf("datagram %d from %v differs", i, p.peer.addr())
			}
		}
	}
}
